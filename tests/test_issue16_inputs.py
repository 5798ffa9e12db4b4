"""Issue 16's input reproducers that the earlier hardening tests left uncovered.

Found by the audit of the issue's "Tracebacks", "Silent acceptance" and "Noise" sections: export
destinations where nothing can be written, transform destinations that refuse a new file, teem's
cryptic NRRD messages, one-slice scans, seeded segmentation of a scan too thin for its smoothing,
a neo-Hookean scenario of degree 1, truncated legacy VTK files read as models or as points, and a
non-UTF-8 ``case.json`` for the case commands the earlier test did not run. Every refusal is one
``error:`` line, exit code 2, no traceback, the case byte-identical.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv
import SimpleITK as sitk
from click.testing import CliRunner

from imaging.errors import ImageReadError, MeshingError
from imaging.image_io import load_scan, read_image_file
from imaging.mesh_io import read_surface, write_surface
from registration.io import PointFileError, read_points
from surgplan.cli import cli
from surgplan.scenario import ScenarioError, read_scenario
from surgplan.segment import MIN_SEEDED_AXIS_VOXELS
from tests.cli_fuzzing import digest, make_fixtures

#: A folder where no file can be created, even by root (sysfs refuses new files).
UNWRITABLE = Path("/sys")


def refused(*args: object, unchanged: Path | None = None) -> str:
    """Invoke in-process; one ``error:`` line, exit 2, no traceback, ``unchanged`` kept."""
    before = digest(str(unchanged)) if unchanged is not None else None
    result = CliRunner().invoke(cli, [str(a) for a in args])
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (args, result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    if unchanged is not None:
        assert digest(str(unchanged)) == before, f"case changed on refusal: {args}"
    return lines[0]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_fixtures(tmp_path_factory.mktemp("issue16") / "fixtures")


@pytest.fixture
def case(fixtures: dict[str, Path], tmp_path: Path) -> Path:
    folder = tmp_path / "case"
    shutil.copytree(fixtures["case"], folder)
    return folder


# -- export destinations --------------------------------------------------------------------


def test_unwritable_folder_is_really_unwritable() -> None:
    with pytest.raises(PermissionError):
        (UNWRITABLE / "surgplan-probe.tfm").write_text("x")


@pytest.mark.parametrize(
    ("option", "target", "needle"),
    [
        ("--label", "{tmp}/d.nii.gz/", "is a folder; expected a file name for the export"),
        ("--mesh", "{tmp}/d.vtp/", "is a folder; expected a file name for the export"),
        ("--label", "/sys/x.nii.gz", "cannot write in /sys (Permission denied)"),
        ("--mesh", "/proc/x.vtp", "cannot write in /proc"),
        ("--label", "{tmp}/file/x.nii.gz", "cannot write here ({tmp}/file is a file"),
        ("--scene", "/proc/x.mrb", "cannot write in /proc"),
        ("--dicom", "{tmp}/file", "is a file; expected a folder for the DICOM series"),
        ("--dicom", "/sys/dcm", "cannot write in /sys (Permission denied)"),
    ],
)
def test_export_destination_is_checked_before_any_work(
    case: Path, tmp_path: Path, option: str, target: str, needle: str
) -> None:
    (tmp_path / "file").write_text("x")
    out = target.format(tmp=tmp_path)
    if out.endswith("/"):
        out = out.rstrip("/")
        Path(out).mkdir()
    structure = ["--structure", "liver"] if option in ("--label", "--mesh") else []
    line = refused("export", case, *structure, option, out, unchanged=case)
    assert line.startswith(f"error: {out}: ") and needle.format(tmp=tmp_path) in line, line
    assert "tmp" not in line.replace(str(tmp_path), "")  # no temporary file name in the message
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


# -- register --write-transform -------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "needle"),
    [
        ("/sys/t.tfm", "/sys/t.tfm: cannot write in /sys (Permission denied)"),
        ("{tmp}/file/t.tfm", "{tmp}/file/t.tfm: cannot write here ({tmp}/file is a file"),
    ],
)
def test_write_transform_refuses_a_folder_that_takes_no_file(
    fixtures: dict[str, Path], tmp_path: Path, destination: str, needle: str
) -> None:
    (tmp_path / "file").write_text("x")
    line = refused(
        "register", "--model", fixtures["vtp"], "--points", fixtures["csv"],
        "--write-transform", destination.format(tmp=tmp_path),
    )  # fmt: skip
    assert needle.format(tmp=tmp_path) in line, line


# -- images ---------------------------------------------------------------------------------


def _ct(size_zyx: tuple[int, int, int]) -> sitk.Image:
    array = np.full(size_zyx, -900, np.int16)
    z, y, x = size_zyx
    array[:, y // 4 : 3 * y // 4, x // 4 : 3 * x // 4] = 60
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 2.0))
    return image


def test_truncated_nrrd_messages_say_what_is_wrong(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray((np.arange(12 * 14 * 16) % 700 - 300).reshape(12, 14, 16))
    image = sitk.Cast(image, sitk.sitkInt16)
    raw, gz = tmp_path / "raw.nrrd", tmp_path / "gz.nrrd"
    sitk.WriteImage(image, str(raw), False)
    sitk.WriteImage(image, str(gz), True)
    raw.write_bytes(raw.read_bytes()[:-300])
    gz.write_bytes(gz.read_bytes()[:-300])
    with pytest.raises(ImageReadError) as caught:
        read_image_file(raw)
    assert str(caught.value) == (
        f"cannot read image {raw}: the file is truncated: 2538 of the header's 2688 voxel "
        "values are there"
    )
    with pytest.raises(ImageReadError, match=r"truncated or corrupt: \d+ of the header's 5376 b"):
        read_image_file(gz)
    header = tmp_path / "zero.nrrd"
    header.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 0 0 1\nencoding: raw\n\n")
    with pytest.raises(ImageReadError) as caught:
        read_image_file(header)
    assert str(caught.value) == (
        f"cannot read image {header}: its header is invalid (axis 0 size is zero)"
    )


@pytest.mark.parametrize("size", [(1, 100, 100), (30, 1, 40)])
def test_one_slice_scan_is_refused_at_import(tmp_path: Path, size: tuple[int, int, int]) -> None:
    source = tmp_path / "flat.nii.gz"
    sitk.WriteImage(_ct(size), str(source))
    dims = "x".join(str(n) for n in size[::-1])
    with pytest.raises(ImageReadError, match=f"is {dims} voxels: one slice thick, a 2-D image"):
        load_scan(source)
    line = refused("import", source, tmp_path / "case")
    assert "one slice thick" in line
    assert not (tmp_path / "case" / "case.json").exists()


def test_seeded_segmentation_refuses_a_scan_too_thin_to_smooth(tmp_path: Path) -> None:
    source = tmp_path / "thin.nrrd"
    sitk.WriteImage(_ct((MIN_SEEDED_AXIS_VOXELS - 2, 60, 60)), str(source))
    case = tmp_path / "case"
    assert CliRunner().invoke(cli, ["import", str(source), str(case)]).exit_code == 0
    for structure in ("liver", "tumour", "vessels"):
        line = refused(
            "segment", case, "--structure", structure, "--seed", 30, 30, 2, unchanged=case
        )
        assert "is 60x60x2 voxels" in line and "at least 4 voxels along every axis" in line


# -- scenarios ------------------------------------------------------------------------------


@pytest.mark.parametrize("degree", ["", "degree = 1\n"])
def test_neohookean_of_degree_one_is_refused_by_the_scenario(
    fixtures: dict[str, Path], tmp_path: Path, degree: str
) -> None:
    text = fixtures["scenario.toml"].read_text()
    text = text.replace('type = "linear"\n', f'type = "neohookean"\n{degree}')
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=r"model: degree = 1 with type = \"neohookean\""):
        read_scenario(path)
    line = refused("simulate", fixtures["box"], "--scenario", path, unchanged=fixtures["box"])
    assert "needs degree = 2 or 3" in line and "must be >= 1" not in line, line
    path.write_text(
        text.replace(f'type = "neohookean"\n{degree}', 'type = "neohookean"\ndegree = 2\n')
    )
    assert read_scenario(path).model.degree == 2


# -- truncated legacy VTK ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def truncated_vtk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A binary legacy VTK surface cut in half: its points are whole, its cells end early."""
    folder = tmp_path_factory.mktemp("truncated")
    sphere = pv.Sphere(theta_resolution=14, phi_resolution=14).scale((45, 40, 22))
    good = write_surface(sphere, folder / "good.vtk")
    cut = folder / "cut.vtk"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_truncated_legacy_vtk_is_refused_as_model_and_as_points(
    truncated_vtk: Path, fixtures: dict[str, Path]
) -> None:
    good = truncated_vtk.with_name("good.vtk")
    assert read_surface(good).n_points == read_points(good).shape[0] > 0
    for _ in range(3):  # VTK fills the missing cells from whatever memory held: never accepted
        with pytest.raises(MeshingError, match="corrupt or truncated"):
            read_surface(truncated_vtk)
        with pytest.raises(PointFileError, match="corrupt or truncated mesh file"):
            read_points(truncated_vtk)
    line = refused("register", "--model", good, "--points", truncated_vtk)
    assert line == (
        f"error: {truncated_vtk}: corrupt or truncated mesh file (VTK: Error reading binary data)"
    )
    assert "corrupt or truncated" in refused(
        "register", "--model", truncated_vtk, "--points", fixtures["csv"]
    )


def test_truncated_legacy_vtk_gives_one_line_on_the_real_stderr(
    truncated_vtk: Path, fixtures: dict[str, Path]
) -> None:
    """In a real process (fd 2 is the terminal's): VTK's own warning must not reach it."""
    done = subprocess.run(
        [sys.executable, "-c", "from surgplan.cli import main; main()", "register",
         "--model", truncated_vtk, "--points", fixtures["csv"]],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: cannot read surface file {truncated_vtk}: corrupt or truncated "
        "(VTK: Error reading binary data)\n"
    )


def test_legacy_vtk_with_a_binary_space_field_is_refused(tmp_path: Path) -> None:
    """Found by benchmarks/cli_fuzz.py (seed 16, 500 per format, vtk_219): a traceback."""
    sphere = pv.Sphere(theta_resolution=8, phi_resolution=8)
    data = write_surface(sphere, tmp_path / "good.vtk").read_bytes()
    assert data.count(b"\xc3LPS") == 1  # the SPACE field: VTK's length-prefixed binary string
    bad = tmp_path / "bad.vtk"
    bad.write_bytes(data.replace(b"\xc3LPS", b"\xc3L\xa8S"))
    with pytest.raises(MeshingError, match="is corrupt: its SPACE field is not ASCII text"):
        read_surface(bad)
    case = tmp_path / "case"
    line = refused("import-model", bad, case, "--structure", "liver")
    assert line == f"error: surface file {bad} is corrupt: its SPACE field is not ASCII text"
    assert not (case / "case.json").exists()


@pytest.mark.parametrize("offset", [float("nan"), float("inf"), -4.0, 1e30])
def test_nifti_with_an_impossible_voxel_offset_is_refused(tmp_path: Path, offset: float) -> None:
    """Found by benchmarks/cli_fuzz.py (seed 16, 500 per format, nii_gz_98): a traceback."""
    import gzip
    import struct

    plain = tmp_path / "plain.nii"
    sitk.WriteImage(_ct((6, 8, 8)), str(plain))
    header = bytearray(plain.read_bytes())
    header[108:112] = struct.pack("<f", offset)
    source = tmp_path / "bad.nii.gz"
    source.write_bytes(gzip.compress(bytes(header)))
    with pytest.raises(ImageReadError, match=r"bad.nii.gz: corrupt NIfTI header \(voxel data off"):
        read_image_file(source)
    assert "corrupt NIfTI header" in refused("import", source, tmp_path / "case")


# -- a non-UTF-8 case.json: the commands tests/test_corrupt_manifest.py does not run ----------

_MORE_CASE_COMMANDS = {
    "import": ["import", "{nrrd}", "{case}"],
    "segment --labels": ["segment", "{case}", "--labels", "{labels.nii.gz}", "--names",
                         "{names}", "--structure", "liver"],
    "simulate": ["simulate", "{case}", "--scenario", "{scenario.toml}"],
    "pivot": ["pivot", "{case}", "{csv}"],
    "snapshot": ["snapshot", "{case}", "--out", "{tmp}/s.png"],
    "credibility": ["credibility", "{case}", "--out", "{tmp}/cred"],
    "import-model": ["import-model", "{vtp}", "{case}", "--structure", "liver"],
    "vr": ["vr", "{case}", "--backend", "simulated", "--frames", "1"],
    "vr-calibrate": ["vr-calibrate", "{case}", "--headset-points", "{csv}",
                     "--tracker-points", "{csv}"],
    "export --scene": ["export", "{case}", "--scene", "{tmp}/x.mrb"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_MORE_CASE_COMMANDS))
def test_non_utf8_manifest_for_the_other_case_commands(
    fixtures: dict[str, Path], tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "case"
    folder.mkdir()
    junk = b"\x7f\x00\x81\xfe" * 16
    (folder / "case.json").write_bytes(junk)
    names = {**fixtures, "case": folder, "tmp": tmp_path}
    args = []
    for token in _MORE_CASE_COMMANDS[name]:
        for key, value in names.items():
            token = token.replace("{" + key + "}", str(value))
        assert "{" not in token, token
        args.append(token)
    line = refused(*args, unchanged=folder)
    assert line == f"error: cannot read {folder / 'case.json'}: not UTF-8 text (corrupt?)"
    assert (folder / "case.json").read_bytes() == junk


# -- a seed on the scanner table --------------------------------------------------------------


@pytest.fixture(scope="module")
def ct_with_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A body (soft tissue with a brighter lesion and vessel) above a separate dense table."""
    z, y, x = np.mgrid[:24, :64, :64]
    hu = np.full(z.shape, -1000.0)
    hu[((x - 32) ** 2 + (y - 26) ** 2) < 22**2] = 50.0  # the body
    hu[((x - 32) ** 2 + (y - 26) ** 2 + (z - 12) ** 2) < 5**2] = 140.0  # a lesion
    hu[(y >= 54) & (y <= 58) & (x >= 4) & (x <= 60)] = 150.0  # the table, 6 mm below the body
    image = sitk.GetImageFromArray(hu.astype(np.int16))
    image.SetSpacing((1.5, 1.5, 2.0))
    path = tmp_path_factory.mktemp("table") / "ct.nrrd"
    sitk.WriteImage(image, str(path))
    return path


def test_tumour_and_vessel_seeds_on_the_table_are_refused(
    ct_with_table: Path, tmp_path: Path
) -> None:
    from imaging.errors import SegmentationError
    from imaging.segmentation import segment_tumour, segment_vessels

    image = sitk.ReadImage(str(ct_with_table))
    on_table = image.TransformIndexToPhysicalPoint((32, 56, 12))
    in_lesion = image.TransformIndexToPhysicalPoint((32, 26, 12))
    with pytest.raises(SegmentationError, match="lies outside the patient's body"):
        segment_tumour(image, on_table)
    with pytest.raises(SegmentationError, match=r"seed 1 \(.*\) mm lies outside the patient's"):
        segment_vessels(image, [in_lesion, on_table])
    lesion = sitk.GetArrayFromImage(segment_tumour(image, in_lesion))
    assert 200 < int(lesion.sum()) < 800  # the 5-voxel-radius ball: the body's seeds still work
    case = tmp_path / "case"
    assert CliRunner().invoke(cli, ["import", str(ct_with_table), str(case)]).exit_code == 0
    seed = [f"{c:.2f}" for c in on_table]
    for structure in ("tumour", "vessels"):
        line = refused("segment", case, "--structure", structure, "--seed", *seed, unchanged=case)
        assert "lies outside the patient's body (on the scanner table" in line


@pytest.mark.parametrize(("modality", "structure"), [("MR", "liver"), ("US", "tumour"),
                                                     ("MR", "vessels")])  # fmt: skip
def test_seeded_ct_methods_refuse_an_mr_or_us_scan(
    tmp_path: Path, modality: str, structure: str
) -> None:
    """tests/test_dicom_validation.py runs the bone preset; the seeded methods threshold HU too."""
    from tests.dicom_factory import write_series

    write_series(tmp_path / "s", modality=modality)
    case = tmp_path / "case"
    assert CliRunner().invoke(cli, ["import", str(tmp_path / "s"), str(case)]).exit_code == 0
    line = refused("segment", case, "--structure", structure, "--seed", 0, 0, 15, unchanged=case)
    assert f"the case's scan is modality {modality}, not CT" in line
