"""Issue 16 reproducers for DICOM import: nothing odd is accepted in silence, no name is echoed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from imaging.dicom import read_dicom_series
from imaging.dicom_terms import safe_modality
from imaging.errors import DicomSeriesError, ImageReadError
from imaging.image_io import load_scan
from surgplan.cli import cli
from tests.dicom_factory import field, write_series

#: A folder and file names as real exports make them: after the patient.
SECRET = "DOE^JOHN"


def _named(k: int) -> str:
    return f"DOE_JOHN_19700101_{k:03d}.dcm"


def _folder(tmp_path: Path) -> Path:
    return tmp_path / f"{SECRET} CT 2024"


def _no_names(message: str) -> None:
    assert "DOE" not in message and "JOHN" not in message, message


@pytest.mark.parametrize(
    ("step", "size"),
    [
        # 2 mm along the normal, 1 mm drift in y per slice: |step| 2.236 mm, 26.57 deg, as in
        # the issue; 7 x 1 mm = 8.75 rows of 0.8 mm, so 9 more rows hold every slice
        ((0.0, 1.0, 2.0), (10, 21, 8)),
        # drift towards -x and +y: 7 x 0.7 mm = 7 columns of 0.7 mm, 7 x 0.35 mm = 3.06 rows
        ((-0.7, 0.35, 2.0), (17, 16, 8)),
    ],
)
def test_gantry_tilt_is_resampled_with_the_shear(
    tmp_path: Path, step: tuple[float, float, float], size: tuple[int, int, int]
) -> None:
    files = write_series(tmp_path / "tilt", n_slices=8, step_mm=step)
    plain = sitk.ImageSeriesReader()
    plain.SetFileNames([str(f) for f in files])
    spacing_bug = plain.Execute().GetSpacing()[2]
    assert spacing_bug == pytest.approx(np.linalg.norm(step), abs=1e-3)  # the bug: shear lost
    volume = read_dicom_series(tmp_path / "tilt")
    image = volume.image
    drift = np.array(step[:2])
    assert volume.gantry_tilt_deg == pytest.approx(np.degrees(np.arctan(np.hypot(*drift) / 2)))
    assert image.GetSpacing() == pytest.approx((0.7, 0.8, 2.0))
    assert image.GetSize() == size
    np.testing.assert_allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-9)
    # every output voxel that lies inside its acquired slice has the field's value there
    kk, jj, ii = np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij")
    origin, spacing = np.array(image.GetOrigin()), np.array(image.GetSpacing())
    points = origin + np.stack([ii, jj, kk], axis=-1) * spacing  # identity direction
    in_slice = points[..., :2] - kk[..., None] * drift - np.array([-4.0, -5.0])
    extent = np.array([9 * 0.7, 11 * 0.8])
    inside = np.all((in_slice >= -1e-6) & (in_slice <= extent + 1e-6), -1)
    far = np.any((in_slice < -spacing[:2]) | (in_slice > extent + spacing[:2]), -1)
    values = sitk.GetArrayFromImage(image).astype(float)
    assert inside.sum() >= 0.85 * 8 * 10 * 12  # about one output voxel per acquired pixel
    np.testing.assert_allclose(values[inside], field(points[inside]), atol=1.01)
    assert far.sum() > 100 and np.all(values[far] == values.min())  # background outside
    notes = load_scan(tmp_path / "tilt").notes
    assert notes == (
        f"gantry tilt of {volume.gantry_tilt_deg:.2f} deg: slices resampled onto an orthogonal "
        "grid (2.000 mm along the slice normal)",
    )


def test_untilted_series_keeps_simpleitk_geometry(tmp_path: Path) -> None:
    write_series(tmp_path / "s", n_slices=5)
    volume = read_dicom_series(tmp_path / "s")
    assert volume.gantry_tilt_deg == 0.0
    assert volume.image.GetSize() == (10, 12, 5)
    assert volume.image.GetSpacing() == pytest.approx((0.7, 0.8, 2.0))
    point = np.array(volume.image.TransformIndexToPhysicalPoint((3, 4, 2)))
    value = sitk.GetArrayViewFromImage(volume.image)[2, 4, 3]
    assert value == pytest.approx(field(point), abs=0.51)


def test_slices_off_a_straight_line_are_refused(tmp_path: Path) -> None:
    files = write_series(tmp_path / "s", n_slices=6, step_mm=(0.0, 1.0, 2.0))
    ds = pydicom.dcmread(files[3])
    ds.ImagePositionPatient[1] += 3.0
    ds.save_as(files[3])
    with pytest.raises(DicomSeriesError, match="do not lie on a straight line"):
        read_dicom_series(tmp_path / "s")


def test_non_orthogonal_orientation_is_refused_not_replaced(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    write_series(folder, orientation=(1, 0, 0, 0.2, 0.98, 0), name=_named)
    with pytest.raises(ImageReadError, match="file 1 of 6: ImageOrientationPatient is not ") as e:
        read_dicom_series(folder)
    assert "dot product 0.2000" in str(e.value)
    _no_names(str(e.value))


def test_one_rgb_slice_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    files = write_series(folder, name=_named)
    ds = pydicom.dcmread(files[2])
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = np.full((12, 10, 3), 200, np.uint8).tobytes()
    ds.save_as(files[2])
    with pytest.raises(ImageReadError, match=r"file 3 of 6 is a colour image \(3 samples") as e:
        read_dicom_series(folder)
    _no_names(str(e.value))


def test_truncated_final_jpeg2000_slice_is_refused_not_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _folder(tmp_path)
    files = write_series(folder, n_slices=5, jpeg2000=True, name=_named)
    complete = read_dicom_series(folder)  # the JPEG 2000 series itself reads
    assert complete.image.GetSize() == (10, 12, 5)
    data = files[-1].read_bytes()
    files[-1].write_bytes(data[: len(data) - 40])
    # pydicom warns naming the file: captured (pytest turns a leaked warning into an error)
    pydicom_logger = logging.getLogger("pydicom")
    handlers, propagate = list(pydicom_logger.handlers), pydicom_logger.propagate
    with caplog.at_level(logging.DEBUG), pytest.raises(ImageReadError, match="file 5 of 5 is") as e:
        read_dicom_series(folder)
    _no_names(str(e.value))
    assert str(e.value) == "DICOM file 5 of 5 is truncated: an image header, no pixel data"
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]  # nothing logged
    assert pydicom_logger.handlers == handlers and pydicom_logger.propagate == propagate


def test_jpeg2000_frame_without_end_marker_is_refused(tmp_path: Path) -> None:
    files = write_series(tmp_path / "s", n_slices=3, jpeg2000=True)
    ds = pydicom.dcmread(files[1])
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = pydicom.encaps.encapsulate([frame[: len(frame) // 2]])
    ds.save_as(files[1])
    with pytest.raises(ImageReadError, match="file 2 of 3 is truncated: its compressed frame"):
        read_dicom_series(tmp_path / "s")


def test_uncompressed_truncated_and_duplicate_messages_name_no_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    files = write_series(folder, name=_named)
    data = files[4].read_bytes()
    files[4].write_bytes(data[:-50])
    with pytest.raises(ImageReadError, match="file 5 of 6 is truncated: pixel data") as e:
        read_dicom_series(folder)
    _no_names(str(e.value))
    files[4].write_bytes(data)
    ds = pydicom.dcmread(files[4])
    ds.ImagePositionPatient = pydicom.dcmread(files[3]).ImagePositionPatient
    ds.save_as(files[4])
    with pytest.raises(DicomSeriesError, match="two slices at the same position") as e:
        read_dicom_series(folder)
    _no_names(str(e.value))


def test_two_series_error_lists_no_uid_and_choice_by_number(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    first = write_series(folder, n_slices=4, name=_named)
    write_series(folder / "b", n_slices=3, modality="MR", name=_named)
    uids = {str(pydicom.dcmread(f).SeriesInstanceUID) for f in [first[0], *folder.glob("b/*")]}
    with pytest.raises(DicomSeriesError, match="holds 2 DICOM series; choose one") as e:
        read_dicom_series(folder)
    message = str(e.value)
    assert "1: CT, 4 files; 2: MR, 3 files" in message
    assert not any(uid in message for uid in uids)
    _no_names(message)
    assert read_dicom_series(folder, series_uid="2").image.GetSize() == (10, 12, 3)
    with pytest.raises(DicomSeriesError, match="choose --series 1..2") as e:
        read_dicom_series(folder, series_uid="1.2.3.4")


@pytest.mark.parametrize(
    ("value", "kept"),
    [("CT", "CT"), ("mr", "MR"), (" US ", "US"), ("ZZSECRET^ALICE", "OT"), ("", None)],
)
def test_modality_is_copied_only_from_the_defined_terms(value: str, kept: str | None) -> None:
    assert safe_modality(value) == kept


def test_secret_modality_never_reaches_the_case(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    write_series(folder, modality="ZZSECRET^ALICE", name=_named)
    case = tmp_path / "case"
    result = CliRunner().invoke(cli, ["import", str(folder), str(case), "--json"])
    assert result.exit_code == 0, result.stderr
    text = (case / "case.json").read_text()
    assert "ZZSECRET" not in text and "ALICE" not in text and "ZZSECRET" not in result.stdout
    assert json.loads(text)["image"]["modality"] == "OT"


@pytest.mark.parametrize("modality", ["MR", "US"])
def test_hu_preset_segmentation_refuses_a_non_ct_scan(tmp_path: Path, modality: str) -> None:
    write_series(tmp_path / "s", modality=modality)
    case = tmp_path / "case"
    runner = CliRunner()
    assert runner.invoke(cli, ["import", str(tmp_path / "s"), str(case)]).exit_code == 0
    before = (case / "case.json").read_bytes()
    result = runner.invoke(cli, ["segment", str(case), "--structure", "bone"])
    assert result.exit_code == 2
    assert f"modality {modality}, not CT" in result.stderr
    assert result.stderr.count("error:") == 1
    assert (case / "case.json").read_bytes() == before


def test_cli_error_for_a_broken_series_names_no_file_or_folder(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    files = write_series(folder, n_slices=5, jpeg2000=True, name=_named)
    files[-1].write_bytes(files[-1].read_bytes()[:-40])
    result = CliRunner().invoke(cli, ["import", str(folder), str(tmp_path / "case"), "--json"])
    assert result.exit_code == 2
    assert "file 5 of 5 is truncated" in result.stderr
    _no_names(result.stderr + result.stdout)


def test_dcm_file_cut_before_its_header_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    files = write_series(folder, name=_named)
    files[-1].write_bytes(files[-1].read_bytes()[:100])  # not even the "DICM" prefix left
    (folder / "README.txt").write_text("exported by a PACS")  # other files are still skipped
    with pytest.raises(ImageReadError, match="file 6 of 7 is named .dcm but has no DICOM head"):
        read_dicom_series(folder)


def test_undecodable_slice_is_one_error_naming_no_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    files = write_series(folder, n_slices=3, jpeg2000=True, name=_named)
    ds = pydicom.dcmread(files[1])
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    garbage = frame[:20] + bytes(len(frame) - 22) + b"\xff\xd9"  # ends right, decodes wrong
    ds.PixelData = pydicom.encaps.encapsulate([garbage])
    ds.save_as(files[1])
    with pytest.raises(ImageReadError, match=r"^cannot read the DICOM series \(3 files\): ") as e:
        read_dicom_series(folder)
    assert "ITK ERROR" not in str(e.value)
    _no_names(str(e.value))


def test_tilted_series_imports_into_a_case_on_the_orthogonal_grid(tmp_path: Path) -> None:
    write_series(tmp_path / "tilt", n_slices=8, step_mm=(0.0, 1.0, 2.0))
    case = tmp_path / "case"
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "tilt"), str(case), "--json"])
    assert result.exit_code == 0, result.stderr
    image = json.loads((case / "case.json").read_text())["image"]
    assert image["size"] == [10, 21, 8]
    assert image["spacing_mm"] == pytest.approx([0.7, 0.8, 2.0])  # not 2.236 along z
    assert image["origin_mm"] == pytest.approx([-4.0, -5.0, 10.0])
    report = json.loads(result.stdout)
    assert report["modality"] == "CT"
    assert len(report["notes"]) == 1 and report["notes"][0].startswith("gantry tilt of 26.57 deg")
    assert f"note: {report['notes'][0]}" in result.stderr  # said on stderr too, not only in JSON


def test_untilted_import_reports_no_notes(tmp_path: Path) -> None:
    write_series(tmp_path / "s", n_slices=5)
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "s"), str(tmp_path / "c"), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["notes"] == []
    assert "note:" not in result.stderr
