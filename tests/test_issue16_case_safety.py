"""Issue 16 audit, "Data loss and corruption", "Crashes" and "Patient data": the gaps left.

What the earlier hardening tests (``test_case_integrity.py``, ``test_case_kill.py``,
``test_input_validation.py``, ``test_dicom_validation.py``) did not cover, found by
reproducing the issue's cases with the real CLI:

- every path field of a received ``case.json`` (not only a label's) is refused when it leads
  outside the case, and nothing outside is touched;
- ``snapshot --out``, ``credibility --out`` and ``register --case --write-transform`` wrote
  inside the case, where the next step deleted them as files the manifest does not name;
- ``vr-calibrate``, a validation-data manifest of ``credibility`` and a twin study's
  ``decoy_surface`` handed a legacy ``.vtk`` file to VTK's reader in the process itself: a
  mutated file killed it with SIGSEGV;
- a single DICOM file given as ``import``'s SOURCE was refused with its file name, which real
  exports make from the patient's name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pyvista as pv
import SimpleITK as sitk

from imaging.mesh_io import write_surface
from surgplan.phantom.generate import generate_phantom
from tests.dicom_factory import write_series
from tests.test_case_integrity import one_error_line, run, snapshot

LIVER_MODELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "liver_models"


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("scans")
    phantom = generate_phantom(seed=0, spacing_mm=(5.0, 5.0, 5.0))
    paths = {"a": folder / "a.nrrd", "b": folder / "b.nrrd"}
    sitk.WriteImage(phantom.ct, str(paths["a"]))
    sitk.WriteImage(generate_phantom(seed=1, spacing_mm=(5.0, 5.0, 5.0)).ct, str(paths["b"]))
    return {**paths, "liver_seed": phantom.seeds_lps_mm["liver"]}


@pytest.fixture(scope="module")
def meshed_case(tmp_path_factory: pytest.TempPathFactory, scans: dict) -> Path:
    """The phantom with its liver, surface and volume mesh, and an FE result entry."""
    case = tmp_path_factory.mktemp("base") / "case"
    assert run("import", scans["a"], case)[0] == 0
    code, _, err = run("segment", case, "--structure", "liver", "--seed", *scans["liver_seed"])
    assert code == 0, err
    code, _, err = run("mesh", case, "--edge-mm", "15")
    assert code == 0, err
    from surgplan.case import Case

    with Case.open(case).transaction() as tx:
        for rel in ("fe/r.vtu", "fe/r.h5"):
            tx.path(rel).write_text(rel)
        tx.record_artifact("fe_result", "r", "fe/r.vtu", {}, files=["fe/r.h5"])
    return case


@pytest.fixture()
def case(meshed_case: Path, tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.copytree(meshed_case, target)
    return target


# --- data loss: every manifest path must stay inside the case -------------------------------


def _point_outside(data: dict, field: str, bad: str) -> str:
    """Set one path field of the manifest to ``bad``; return its name in the error."""
    if field == "image.path":
        data["image"]["path"] = bad
    elif field == "segmentation.path":
        data["segmentation"]["path"] = bad
    elif field == "surfaces.liver.path":
        data["surfaces"]["liver"]["path"] = bad
    elif field.startswith("volume_mesh."):
        data["volume_mesh"][field.split(".")[1]] = bad
    elif field == "artifacts.fe_result/r.path":
        data["artifacts"]["fe_result/r"]["path"] = bad
    elif field == "artifacts.fe_result/r.files":
        data["artifacts"]["fe_result/r"]["files"] = [bad]
    elif field == "files":
        data["files"][bad] = data["files"].pop("meshes/volume.msh")
    return field


@pytest.mark.parametrize(
    "field",
    [
        "image.path",
        "segmentation.path",
        "surfaces.liver.path",
        "volume_mesh.path",
        "volume_mesh.msh_path",
        "volume_mesh.boundary_path",
        "artifacts.fe_result/r.path",
        "artifacts.fe_result/r.files",
        "files",
    ],
)
@pytest.mark.parametrize("form", ["dotdot", "absolute"])
def test_every_manifest_path_outside_the_case_is_refused(
    case: Path, scans: dict, tmp_path: Path, field: str, form: str
) -> None:
    """Issue 16, 1, for every path the manifest holds: the re-import that used to delete the
    file is refused naming the field, the victim survives, the case is unchanged."""
    victim = tmp_path / "victim" / "important.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    data = json.loads((case / "case.json").read_text())
    bad = "../victim/important.txt" if form == "dotdot" else str(victim)
    name = _point_outside(data, field, bad)
    (case / "case.json").write_text(json.dumps(data))
    before = snapshot(case)
    code, _, err = run("import", scans["b"], case)
    assert code == 2
    line = one_error_line(err)
    assert name.split(".")[0] in line and "stay inside the case" in line, line
    assert victim.read_text() == "keep me"
    assert snapshot(case) == before


# --- data loss: outputs of other commands inside the case -----------------------------------


def test_snapshot_credibility_and_transform_outputs_inside_the_case_are_refused(
    case: Path, tmp_path: Path
) -> None:
    """They used to be written there, then deleted by the next step as files the manifest
    does not name (``warning: ... removed labels/x.png``)."""
    before = snapshot(case)
    swabs = tmp_path / "swabs.csv"
    swabs.write_text("0,0,0\n1,0,0\n0,1,0\n0,0,1\n1,1,0\n0,1,1\n")
    attempts = [
        ("snapshot", case, "--out", case / "labels" / "x.png"),
        ("snapshot", case, "--out", case / "x.png"),
        ("credibility", case, "--out", case / "report"),
        ("credibility", case, "--out", case / "meshes"),
        ("register", "--case", case, "--points", swabs, "--write-transform", case / "t.tfm"),
    ]
    for args in attempts:
        code, _, err = run(*args)
        assert code == 2, (args, err)
        assert "inside the case folder" in one_error_line(err), err
    assert snapshot(case) == before
    assert not (case / "report").exists()


# --- crashes of the process itself ----------------------------------------------------------


@pytest.fixture(scope="module")
def vtk_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A good legacy VTK sphere and the same with its version line garbled: VTK's legacy
    reader dies of SIGSEGV on it (``test_input_validation.py`` proves that it does)."""
    folder = tmp_path_factory.mktemp("vtk")
    good = write_surface(pv.Sphere(radius=40.0), folder / "good.vtk")
    bad = folder / "bad.vtk"
    bad.write_bytes(good.read_bytes().replace(b"Version 5.1", b"Version Q.1", 1))
    assert bad.read_bytes() != good.read_bytes()
    return good, bad


CHILD = r"""
import json, sys, types
from pathlib import Path
import numpy as np
from click.testing import CliRunner
from surgplan.cli import cli
from surgplan.credibility.user_data import UserDataError, load_acquisition

case, good, bad, manifest = sys.argv[1:]
out = {}
for name, args in {
    "headset": ["vr-calibrate", case, "--headset-points", bad, "--tracker-points", good],
    "tracker": ["vr-calibrate", case, "--headset-points", good, "--tracker-points", bad],
}.items():
    r = CliRunner().invoke(cli, args)
    out[name] = [r.exit_code, r.stderr]
model = types.SimpleNamespace(vertices_mm=np.array([[0.0, 0, 0], [100, 100, 100]]))
try:
    load_acquisition(manifest, model)
    out["validation_data"] = "accepted"
except UserDataError as error:
    out["validation_data"] = str(error)
print(json.dumps(out))
"""


def test_point_files_that_crash_vtk_are_one_error_line(
    case: Path, vtk_files: tuple[Path, Path], tmp_path: Path
) -> None:
    """``vr-calibrate`` and credibility's validation data read a ``.vtk`` points file in the
    process: SIGSEGV. Run in a child, so that a crash fails this test instead of pytest."""
    good, bad = vtk_files
    manifest = tmp_path / "acq.toml"
    manifest.write_text(
        f'description = "phantom"\npoints = "{bad}"\n'
        "[targets.t]\nmodel_mm = [1.0, 2.0, 3.0]\ntracker_mm = [1.0, 2.0, 3.0]\n"
    )
    before = snapshot(case)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(case), str(good), str(bad), str(manifest)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("headset", "tracker"):
        code, err = out[name]
        assert code == 2, err
        assert "VTK's reader crashed with SIGSEGV" in one_error_line(err), err
        assert str(bad) in err
    assert f"{manifest}: field 'points'" in out["validation_data"]
    assert "VTK's reader crashed with SIGSEGV" in out["validation_data"]
    assert snapshot(case) == before


def test_a_twin_study_decoy_that_crashes_vtk_is_refused_before_any_output(
    case: Path, vtk_files: tuple[Path, Path], tmp_path: Path
) -> None:
    """The decoy surface was first read by a study worker, after the output folder was made."""
    _, bad = vtk_files
    spec = tmp_path / "twin.toml"
    spec.write_text(
        f'kind = "twin_virtual_patients"\nname = "twin"\nrepeats = 1\ncase = "{case}"\n'
        f'structure = "liver"\ndecoy_surface = "{bad}"\nmodes = ["rigid"]\n'
        f'[patients]\nliver_models = "{LIVER_MODELS}"\nn = 2\n'
        '[protocol]\nsensor = ["swabs"]\nn_points = [100]\ncase = ["wrong_organ"]\n'
    )
    code, _, err = run("study", spec, "--out", tmp_path / "out")
    assert code == 2
    line = one_error_line(err)
    assert f"cannot read mesh file {bad}" in line and "crashed with SIGSEGV" in line, line
    assert not (tmp_path / "out").exists()


# --- patient data ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".dcm", ""])
def test_a_single_dicom_file_as_source_is_refused_without_its_name(
    tmp_path: Path, suffix: str
) -> None:
    """``import DOE_JOHN_..._003.dcm CASE`` said "cannot read DOE_JOHN_..._003.dcm: unknown
    image type": the file name of a real export carries the patient's name."""
    folder = tmp_path / "DOE^JOHN CT 2024"
    files = write_series(folder, n_slices=3, name=lambda k: f"DOE_JOHN_19700101_{k:03d}.dcm")
    source = files[1].rename(files[1].with_suffix(suffix)) if not suffix else files[1]
    case = tmp_path / "case"
    for args in (("import", source, case), ("import", source, case, "--json")):
        code, out, err = run(*args)
        assert code == 2
        line = one_error_line(err)
        assert "single DICOM file" in line and "folder" in line, line
        assert "DOE" not in err + out and "JOHN" not in err + out
    assert not case.exists()
    code, _, err = run("import", folder, case)  # the folder itself imports
    assert code == 0, err


# --- data loss: a step that drops what does not depend on it ---------------------------------


def test_a_structure_outside_the_volume_mesh_keeps_it_and_its_fe_results(
    case: Path, scans: dict, tmp_path: Path
) -> None:
    """``segment --structure bone`` (or ``import-model`` of a cyst) on a meshed liver deleted
    the volume mesh, whose regions are the liver's, silently, with exit 0; re-segmenting the
    liver itself still drops it."""
    from surgplan.case import Case

    mesh_files = ["meshes/volume.vtu", "meshes/volume.msh", "meshes/volume_boundary.vtp"]
    before = snapshot(case)
    code, _, err = run("segment", case, "--structure", "bone")
    assert code == 0 and err == "", err
    cyst = write_surface(pv.Sphere(radius=6.0, center=scans["liver_seed"]), tmp_path / "c.vtp")
    code, _, err = run("import-model", cyst, case, "--structure", "cyst")
    assert code == 0, err
    opened = Case.open(case)
    assert opened.manifest.volume_mesh is not None and "fe_result/r" in opened.artifacts
    assert {"bone", "liver"} <= set(opened.manifest.structures)
    assert "cyst" in opened.manifest.surfaces and opened.verify() == []
    assert all(snapshot(case)[rel] == before[rel] for rel in [*mesh_files, "fe/r.vtu"])
    code, _, err = run("segment", case, "--structure", "liver", "--seed", *scans["liver_seed"])
    assert code == 0, err
    opened = Case.open(case)
    assert opened.manifest.volume_mesh is None and opened.verify() == []
    assert not any((case / rel).exists() for rel in mesh_files)
