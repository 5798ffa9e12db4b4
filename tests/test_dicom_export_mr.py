"""DICOM export of an MR case: MR Image Storage, exact voxels, SEG/RTSTRUCT on it; others refused.

The MR case is imported (``surgplan import``) from a synthetic MR series (``tests/dicom_factory``)
that carries a made-up identity and made-up acquisition values; values above 32767 need the
unsigned 16-bit encoding. The exports are read back with pydicom, SimpleITK and highdicom, and
checked against the MR Image IOD's modules as highdicom's copy of the standard lists them.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from highdicom._standard_utils import (
    check_required_attributes,
    get_iod_module_map,
    get_module_attribute_map,
    get_sop_class_iod_map,
)
from pydicom.uid import MRImageStorage

from surgplan.case import Case
from surgplan.dicom_identity import PLACEHOLDER_PATIENT_NAME, CaseDicomUids
from surgplan.dicom_series_export import mr_encoding, write_dicom_series
from tests.dicom_factory import field, write_series
from tests.test_export_cli import run, run_json  # the CLI in-process, as the export tests

#: A made-up identity and acquisition, on every slice of the source series.
ORIGINAL_TAGS = {
    "PatientName": "MRPATIENT^SECRETA",
    "PatientID": "MRID-778899",
    "PatientBirthDate": "19610203",
    "StudyDate": "20230405",
    "SeriesDate": "20230405",
    "AccessionNumber": "ACC991122",
    "InstitutionName": "SECRET CLINIC MR",
    "ProtocolName": "PROTO-SECRET-77",
    "SequenceName": "*secretseq3d1",
    "ScanningSequence": "GR",
    "SequenceVariant": "SP",
    "MRAcquisitionType": "3D",
    "RepetitionTime": 1234.5,
    "EchoTime": 4.56,
}
ORIENTATION = (0.8, 0.6, 0.0, -0.6, 0.8, 0.0)  # rotated about the patient's z axis
LABEL_NAMES = {"1": "liver", "2": "tumour"}


def mr_values(points: np.ndarray) -> np.ndarray:
    """MR grey values at LPS points: up to ~55000, beyond int16 (stored + 1024 by the factory)."""
    return 250.0 * field(points)


def _write_mr_series(folder: Path) -> list[Path]:
    """The factory's series as an MR one: MR Image Storage, no rescale (as MR scanners write)."""
    files = write_series(
        folder, modality="MR", orientation=ORIENTATION, tags=ORIGINAL_TAGS, values=mr_values
    )
    for path in files:
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        del ds.RescaleSlope, ds.RescaleIntercept
        ds.save_as(path, enforce_file_format=True)
    return files


def _original_identifiers(files: list[Path]) -> list[str]:
    found = {str(v) for k, v in ORIGINAL_TAGS.items() if isinstance(v, str) and len(v) >= 6}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found |= {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}
        found |= {ds.FrameOfReferenceUID, ds.file_meta.MediaStorageSOPInstanceUID}
    return sorted(found)


def _import_labels(case: Path, folder: Path) -> None:
    """Two box structures on the case's scan grid, imported as a named label map."""
    scan = sitk.ReadImage(str(case / "images" / "scan.nrrd"))
    labels = np.zeros(sitk.GetArrayViewFromImage(scan).shape, np.uint8)
    labels[1:5, 2:10, 2:8] = 1
    labels[2:4, 4:7, 3:6] = 2
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(scan)
    sitk.WriteImage(image, str(folder / "labels.nrrd"))
    (folder / "names.json").write_text(json.dumps(LABEL_NAMES))
    code, _, err = run("segment", case, "--labels", folder / "labels.nrrd", "--names",
                       folder / "names.json")  # fmt: skip
    assert code == 0, err


@dataclass(frozen=True)
class MrCase:
    case: Path
    root: Path
    imported: dict[str, Any]
    series: dict[str, Any]
    seg: dict[str, Any]
    rtstruct: dict[str, Any]
    identifiers: list[str]


@pytest.fixture(scope="module")
def mr(tmp_path_factory: pytest.TempPathFactory) -> MrCase:
    root = tmp_path_factory.mktemp("mr_export")
    files = _write_mr_series(root / "source")
    case = root / "case"
    imported = run_json("import", root / "source", case)
    _import_labels(case, root)
    series = run_json("export", case, "--dicom", root / "mr")
    seg = run_json("export", case, "--dicom-seg", root / "seg.dcm")
    rtstruct = run_json("export", case, "--rtstruct", root / "rt.dcm")
    return MrCase(case, root, imported, series, seg, rtstruct, _original_identifiers(files))


def _series_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.dcm"))


def _read_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


# --- the series -----------------------------------------------------------------------------


def test_mr_case_is_written_as_mr_image_storage(mr: MrCase) -> None:
    assert mr.imported["modality"] == "MR"
    assert Case.open(mr.case).manifest.image.modality == "MR"
    report = mr.series
    assert (report["kind"], report["modality"], report["n_files"]) == ("dicom", "MR", 6)
    assert (report["rescale_type"], report["notes"]) == (None, [])
    files = _series_files(mr.root / "mr")
    assert [p.name for p in files] == [f"MR{k:04d}.dcm" for k in range(1, 7)]
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == MRImageStorage
        assert ds.Modality == "MR"
        assert ds.SeriesInstanceUID == report["series_uid"]
        assert (ds.BitsAllocated, ds.PixelRepresentation) == (16, 0)  # values above 32767
        for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "KVP"):
            assert keyword not in ds, keyword  # MR values are not HU; no Modality LUT in MR


def test_mr_image_module_attributes_claim_nothing_of_the_original(mr: MrCase) -> None:
    ds = pydicom.dcmread(_series_files(mr.root / "mr")[0])
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "OTHER"]
    assert (ds.ScanningSequence, ds.SequenceVariant) == ("RM", "NONE")  # type 1
    for keyword in ("ScanOptions", "MRAcquisitionType", "RepetitionTime", "EchoTime"):
        assert keyword in ds and ds[keyword].is_empty, keyword  # type 2: present, unknown
    assert "EchoTrainLength" in ds and "SequenceName" not in ds and "ProtocolName" not in ds


def _mr_iod_modules() -> list[str]:
    iod = get_sop_class_iod_map()[MRImageStorage]
    return [m["key"] for m in get_iod_module_map()[iod] if m["usage"] == "M"]


def test_every_required_attribute_of_the_mr_image_iod_is_present(mr: MrCase) -> None:
    modules = _mr_iod_modules()
    assert {"mr-image", "image-plane", "image-pixel", "general-series"} <= set(modules)
    type1 = [
        a["keyword"]
        for module in modules
        for a in get_module_attribute_map()[module]
        if a["type"] == "1" and not a["path"]
    ]
    for path in _series_files(mr.root / "mr"):
        ds = pydicom.dcmread(path)
        for module in modules:
            check_required_attributes(ds, module)  # every type 1 and type 2 attribute
        empty = [k for k in type1 if k != "PixelData" and ds[k].is_empty]
        assert not empty, (path.name, empty)  # type 1: a value, never empty


def test_values_are_valid_for_their_vrs(mr: MrCase) -> None:
    files = [*_series_files(mr.root / "mr"), mr.root / "seg.dcm", mr.root / "rt.dcm"]
    # pydicom checks each value against its VR's rules (PS3.5 6.2) as it reads it: an invalid
    # one raises (strict reading) or warns (an error here).
    with pydicom.config.strict_reading(), warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in files:
            ds = pydicom.dcmread(path)
            assert len([element.value for element in ds.iterall()]) > 40


def test_voxels_and_geometry_equal_the_cases_scan(mr: MrCase) -> None:
    back = _read_series(mr.root / "mr")
    scan = sitk.ReadImage(str(mr.case / "images" / "scan.nrrd"))
    assert back.GetSize() == scan.GetSize() == (10, 12, 6)
    np.testing.assert_allclose(back.GetSpacing(), scan.GetSpacing(), atol=1e-9)
    np.testing.assert_allclose(back.GetOrigin(), scan.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(back.GetDirection(), scan.GetDirection(), atol=1e-9)
    columns = np.array(back.GetDirection()).reshape(3, 3).T  # the x, y, z axes
    np.testing.assert_allclose(columns[:2].ravel(), ORIENTATION, atol=1e-9)
    expected = sitk.GetArrayFromImage(scan)
    assert expected.max() > 32767  # the unsigned range is needed
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), expected)
    slices = [pydicom.dcmread(p) for p in _series_files(mr.root / "mr")]
    slices.sort(key=lambda ds: int(ds.InstanceNumber))
    np.testing.assert_array_equal(np.stack([ds.pixel_array for ds in slices]), expected)


def _values(ds: pydicom.Dataset) -> list[str]:
    """Every data element value of ``ds`` (file meta and nested sequences included), as text."""
    out = [str(e.value) for e in ds.file_meta.iterall()] if hasattr(ds, "file_meta") else []
    return out + [str(e.value) for e in ds.iterall() if e.VR not in ("OB", "OW", "SQ")]


def test_no_original_identifier_in_any_exported_file(mr: MrCase) -> None:
    assert "MRPATIENT^SECRETA" in mr.identifiers
    assert len(mr.identifiers) == 8 + 3 + 6  # texts; study, series, frame UIDs; 6 instances
    files = [*_series_files(mr.root / "mr"), mr.root / "seg.dcm", mr.root / "rt.dcm"]
    for path in files:
        ds = pydicom.dcmread(path)
        values = _values(ds)
        data = path.read_bytes()
        for identifier in mr.identifiers:
            assert not [v for v in values if identifier in v], (path.name, identifier)
            assert identifier.encode() not in data, (path.name, identifier)
        assert str(ds.PatientName) == PLACEHOLDER_PATIENT_NAME
        assert ds.PatientID.startswith("SURGPLAN-") and ds.PatientIdentityRemoved == "YES"
        assert (ds.PatientBirthDate, ds.StudyDate, ds.AccessionNumber) == ("", "", "")
        assert "InstitutionName" not in ds and "SeriesDate" not in ds


# --- SEG and RTSTRUCT on the MR series --------------------------------------------------------


def test_seg_references_the_mr_series_and_reads_back(mr: MrCase) -> None:
    slices = sorted(
        (pydicom.dcmread(p) for p in _series_files(mr.root / "mr")),
        key=lambda ds: int(ds.InstanceNumber),
    )
    sop_uids = [ds.SOPInstanceUID for ds in slices]
    assert mr.seg["referenced_series_uid"] == mr.series["series_uid"] and mr.seg["notes"] == []
    assert [s["name"] for s in mr.seg["segments"]] == ["liver", "tumour"]
    seg = hd.seg.segread(mr.root / "seg.dcm")
    (refs,) = seg.ReferencedSeriesSequence
    assert refs.SeriesInstanceUID == mr.series["series_uid"]
    assert {r.ReferencedSOPClassUID for r in refs.ReferencedInstanceSequence} == {MRImageStorage}
    assert {r.ReferencedSOPInstanceUID for r in refs.ReferencedInstanceSequence} <= set(sop_uids)
    assert seg.FrameOfReferenceUID == slices[0].FrameOfReferenceUID
    labels = sitk.ReadImage(str(mr.root / "labels.nrrd"))
    expected = sitk.GetArrayFromImage(labels)
    pixels = seg.get_pixels_by_source_instance(sop_uids, segment_numbers=[1, 2])
    for i in range(2):
        np.testing.assert_array_equal(pixels[..., i], expected == i + 1)
        volume = seg.get_volume(segment_numbers=[i + 1], combine_segments=True).to_simpleitk()
        on_grid = sitk.Resample(volume, labels, sitk.Transform(), sitk.sitkNearestNeighbor)
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(on_grid), (expected == i + 1) * (i + 1)
        )


def test_rtstruct_references_the_mr_series_and_reads_back(mr: MrCase) -> None:
    slices = {pydicom.dcmread(p).SOPInstanceUID for p in _series_files(mr.root / "mr")}
    rt = pydicom.dcmread(mr.root / "rt.dcm")
    assert rt.Modality == "RTSTRUCT" and mr.rtstruct["notes"] == []
    study = rt.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    series = study.RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == mr.series["series_uid"]
    images = series.ContourImageSequence
    assert {i.ReferencedSOPClassUID for i in images} == {MRImageStorage}
    assert {i.ReferencedSOPInstanceUID for i in images} == slices
    assert [r.ROIName for r in rt.StructureSetROISequence] == ["liver", "tumour"]
    for roi in rt.ROIContourSequence:
        for contour in roi.ContourSequence:
            ref = contour.ContourImageSequence[0]
            assert ref.ReferencedSOPClassUID == MRImageStorage
            assert ref.ReferencedSOPInstanceUID in slices


# --- other modalities -------------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_an_ultrasound_case_is_refused_with_one_line_and_nothing_written(tmp_path: Path) -> None:
    write_series(tmp_path / "source", modality="US")
    case = tmp_path / "case"
    assert run_json("import", tmp_path / "source", case)["modality"] == "US"
    out = tmp_path / "out"
    out.mkdir()
    before = _snapshot(tmp_path)
    for option, target in (("--dicom", out / "us"), ("--dicom-seg", out / "seg.dcm"),
                           ("--rtstruct", out / "rt.dcm")):  # fmt: skip
        code, stdout, stderr = run("export", case, option, target)
        assert code == 2, (option, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        assert "modality 'US'" in lines[0] and "CT and MR" in lines[0], lines[0]
        assert "Traceback" not in stderr and stdout == ""
        assert _snapshot(tmp_path) == before and list(out.iterdir()) == []


def test_an_image_file_case_is_written_as_ct_and_says_so(tmp_path: Path) -> None:
    values = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 50
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.5, 0.6, 1.5))
    sitk.WriteImage(image, str(tmp_path / "scan.nii.gz"))
    run_json("import", tmp_path / "scan.nii.gz", tmp_path / "case")
    report = run_json("export", tmp_path / "case", "--dicom", tmp_path / "ct")
    assert (report["modality"], report["rescale_type"]) == ("CT", "HU")
    assert len(report["notes"]) == 1 and "records no modality" in report["notes"][0]
    ds = pydicom.dcmread(_series_files(tmp_path / "ct")[0])
    assert (ds.Modality, ds.RescaleType) == ("CT", "HU")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(_read_series(tmp_path / "ct")), values)


# --- the MR encoding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "dtype"),
    [(np.array([0, 65535]), np.uint16), (np.array([-5, 32767]), np.int16)],
)
def test_mr_encoding_stores_16_bit_integers_as_they_are(values: np.ndarray, dtype: type) -> None:
    stored, slope, intercept = mr_encoding(values)
    assert stored.dtype == dtype and (slope, intercept) == (1.0, 0.0)
    np.testing.assert_array_equal(stored, values)


def test_mr_values_beyond_16_bits_get_an_unspecified_rescale(tmp_path: Path) -> None:
    values = np.linspace(-3.5, 1000.25, 3 * 4 * 5).reshape(3, 4, 5)
    scan = sitk.GetImageFromArray(values)
    series = write_dicom_series(scan, tmp_path / "mr", uids=CaseDicomUids.generate(), modality="MR")
    assert series.rescale_type == "US" and len(series.notes) == 2
    assert "Rescale Type US" in series.notes[0]
    ds = pydicom.dcmread(series.paths[0])
    assert (ds.RescaleType, ds.Modality, ds.SOPClassUID) == ("US", "MR", MRImageStorage)
    back = sitk.GetArrayFromImage(_read_series(tmp_path / "mr"))
    np.testing.assert_allclose(back, values, atol=series.rescale_slope / 2 + 1e-9)
