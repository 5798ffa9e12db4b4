"""The case-building CLI end to end: JSON contract, one-line errors, case left unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import pyvista as pv
import SimpleITK as sitk
from click.testing import CliRunner

from surgplan.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def real_case(tmp_path_factory: pytest.TempPathFactory, totalseg_dir: Path) -> Path:
    case = tmp_path_factory.mktemp("cli") / "case"
    code, out, err = run("import", totalseg_dir / "example_ct_sm.nii.gz", case, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["size"] == [122, 101, 30] and report["spacing_mm"] == [3.0, 3.0, 3.0]
    assert report["direction"] == [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0]
    return case


@pytest.fixture()
def case_copy(real_case: Path, tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.copytree(real_case, target)
    return target


def test_import_labels_then_export_round_trip(
    case_copy: Path, totalseg_dir: Path, tmp_path: Path
) -> None:
    code, out, err = run(
        "segment",
        case_copy,
        "--labels",
        totalseg_dir / "example_seg.nii.gz",
        "--names",
        totalseg_dir / "labels.json",
        "--structure",
        "liver",
        "--structure",
        "aorta",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(totalseg_dir / "example_seg.nii.gz")))
    expected_ml = np.count_nonzero(reference == 5) * 27.0 / 1000.0
    assert report["structures"]["liver"]["volume_ml"] == pytest.approx(expected_ml)
    out_label = tmp_path / "liver.nii.gz"
    code, out, err = run(
        "export", case_copy, "--structure", "liver", "--label", out_label, "--json"
    )
    assert code == 0, err
    exported = sitk.ReadImage(str(out_label))
    assert exported.GetDirection() == (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(exported), (reference == 5).astype(np.uint8)
    )


def test_import_all_named_labels_present(case_copy: Path, totalseg_dir: Path) -> None:
    code, out, err = run(
        "segment",
        case_copy,
        "--labels",
        totalseg_dir / "example_seg.nii.gz",
        "--names",
        totalseg_dir / "labels.json",
        "--json",
    )
    assert code == 0, err
    assert len(json.loads(out)["structures"]) == 41


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda d: d, "is empty"),
        (lambda d: (d / "a.txt").write_text("hello") and d, "no DICOM image"),
    ],
    ids=["empty-folder", "non-dicom-files"],
)
def test_bad_sources_leave_no_case(tmp_path: Path, make_source, message: str) -> None:
    source = tmp_path / "src"
    source.mkdir()
    make_source(source)
    code, out, err = run("import", source, tmp_path / "case", "--json")
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "case").exists()


def _broken_series(totalseg_dir: Path, target: Path, kind: str) -> Path:
    files = sorted(
        (totalseg_dir / "example_ct_dicom").iterdir(),
        key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]),
    )
    target.mkdir()
    for i, f in enumerate(files):
        if kind == "missing" and i == 10:
            continue
        shutil.copy(f, target / f.name)
    if kind == "truncated":
        victim = target / files[3].name
        victim.write_bytes(victim.read_bytes()[:5000])
    if kind == "two-series":
        ds = pydicom.dcmread(files[0])
        ds.SeriesInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["other"])
        ds.save_as(target / "other.dcm")
    return target


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncated", "truncated"),
        ("two-series", "holds 2 DICOM series"),
        ("missing", "missing 1 slice"),
    ],
)
def test_bad_series_leave_existing_case_unchanged(
    case_copy: Path, totalseg_dir: Path, tmp_path: Path, kind: str, message: str
) -> None:
    source = _broken_series(totalseg_dir, tmp_path / "series", kind)
    before = snapshot(case_copy)
    code, _, err = run("import", source, case_copy)
    assert code == 2 and message in err and err.count("\n") == 1
    assert snapshot(case_copy) == before


def test_seed_outside_the_body(case_copy: Path) -> None:
    before = snapshot(case_copy)
    # LPS point in the air in front of the abdomen (anterior is -y; HU about -900 there)
    code, _, err = run("segment", case_copy, "--structure", "liver", "--seed", "-5", "-296", "139")
    assert code == 2 and "outside the body" in err and err.count("\n") == 1
    code, _, err = run("segment", case_copy, "--structure", "liver", "--seed", "9000", "0", "0")
    assert code == 2 and "outside the image" in err
    assert snapshot(case_copy) == before


def test_label_absent_from_label_map(case_copy: Path, totalseg_dir: Path) -> None:
    before = snapshot(case_copy)
    code, _, err = run(
        "segment",
        case_copy,
        "--labels",
        totalseg_dir / "example_seg.nii.gz",
        "--names",
        totalseg_dir / "labels.json",
        "--structure",
        "liver",
        "--structure",
        "brain",
    )
    assert code == 2 and "'brain'" in err and "absent from the label map" in err
    assert snapshot(case_copy) == before
    code, _, err = run("export", case_copy, "--structure", "brain", "--mesh", "x.vtp")
    assert code == 2 and "no structure 'brain'" in err


def test_commands_have_help() -> None:
    for command in ("import", "segment", "mesh", "export", "demo"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "--json" in out


def test_mesh_and_export_surface(case_copy: Path, totalseg_dir: Path, tmp_path: Path) -> None:
    code, _, err = run(
        "segment",
        case_copy,
        "--labels",
        totalseg_dir / "example_seg.nii.gz",
        "--names",
        totalseg_dir / "labels.json",
        "--structure",
        "liver",
    )
    assert code == 0, err
    before = (case_copy / "case.json").read_bytes()
    code, out, err = run("mesh", case_copy, "--edge-mm", "8", "--max-tets", "1000")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "over the limit of 1,000; use an edge of at least" in err and "--max-tets" in err
    assert (case_copy / "case.json").read_bytes() == before  # refused before anything is saved
    code, out, err = run("mesh", case_copy, "--edge-mm", "8", "--json")
    assert code == 0, err
    report = json.loads(out)
    liver = report["surfaces"]["liver"]
    assert liver["is_closed"] and liver["is_manifold"]
    assert abs(liver["volume_error_pct"]) < 3.0
    assert report["volume_mesh"]["regions"] == {"liver": 1}
    assert report["volume_mesh"]["quality"]["n_inverted"] == 0
    grid = pv.read(report["volume_mesh"]["path"])
    assert grid.volume == pytest.approx(liver["volume_ml"] * 1000.0, rel=0.05)
    assert report["dropped_artifacts"] == []
    stl = tmp_path / "liver.stl"
    code, out, err = run("export", case_copy, "--structure", "liver", "--mesh", stl, "--json")
    assert code == 0, err
    surface = pv.read(stl)
    # LPS: the real CT's liver lies on the patient's right (negative x) of the spine
    assert surface.n_cells > 1000 and surface.center[0] < 0
    code, _, err = run("export", case_copy, "--structure", "liver", "--mesh", tmp_path / "x.abc")
    assert code == 2 and "use one of" in err


def test_remesh_drops_results_of_the_old_mesh(case_copy: Path, totalseg_dir: Path) -> None:
    """An FE result and a reduced model computed on a replaced mesh leave the case, files too."""
    from surgplan.case import Case

    code, _, err = run(
        "segment", case_copy, "--labels", totalseg_dir / "example_seg.nii.gz",
        "--names", totalseg_dir / "labels.json", "--structure", "liver",
    )  # fmt: skip
    assert code == 0, err
    assert run("mesh", case_copy, "--edge-mm", "10")[0] == 0
    with Case.open(case_copy).transaction() as tx:
        for kind, rel in (("fe_result", "fe/old.npz"), ("rom", "rom/linear.npz")):
            tx.path(rel).write_bytes(b"computed on the old mesh")
            tx.record_artifact(kind, "old" if kind == "fe_result" else "linear", rel, {})
        tx.path("sessions/kept.txt").write_bytes(b"a session does not depend on the mesh")
        tx.record_artifact("session", "kept", "sessions/kept.txt", {})
    code, out, err = run("mesh", case_copy, "--edge-mm", "10", "--json")
    assert code == 0, err
    assert json.loads(out)["dropped_artifacts"] == ["fe_result/old", "rom/linear"]
    manifest = json.loads((case_copy / "case.json").read_text())
    assert list(manifest["artifacts"]) == ["session/kept"]
    assert not (case_copy / "fe" / "old.npz").exists()
    assert not (case_copy / "rom" / "linear.npz").exists()
    assert (case_copy / "sessions" / "kept.txt").is_file()
