"""DICOM export: de-identified CT series, DICOM-SEG (highdicom) and RTSTRUCT, read back.

The scan is the bundled phantom's DICOM series (carrying a fake identity) imported as a case
imports it, cropped to 40 slices; the structures are its ground-truth labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from skimage.draw import polygon2mask

from imaging.image_io import load_scan, read_image_file
from surgplan.dicom_export import (
    PLACEHOLDER_PATIENT_NAME,
    CaseDicomUids,
    DicomExportError,
    DicomSegment,
    DicomSeriesExport,
    series_headers,
    write_dicom_seg,
    write_dicom_series,
    write_rtstruct,
)
from surgplan.dicom_series_export import int16_encoding
from surgplan.errors import SurgplanError
from surgplan.mask_contours import mask_outline_polygons, polygon_area
from surgplan.phantom.dicom_writer import FAKE_IDENTITY, STUDY_DATE
from surgplan.sample_data import ensure_sample_data

Z_CROP = slice(40, 80)
STRUCTURES = {"liver": 1, "tumour": 2, "hepatic_veins": 4, "kidney_right": 8}


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@dataclass(frozen=True)
class Exported:
    scan: sitk.Image
    segments: list[DicomSegment]
    uids: CaseDicomUids
    series: DicomSeriesExport
    seg_path: Path
    rt_path: Path
    original_identifiers: list[str]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    sample = ensure_sample_data()
    originals = [pydicom.dcmread(p, stop_before_pixels=True) for p in sample.dicom_dir.iterdir()]
    # Values long enough to search for as text; PatientSex "F" and PatientAge are checked by name.
    identifiers = [v for v in FAKE_IDENTITY.values() if len(v) >= 6] + [STUDY_DATE]
    for ds in originals:
        identifiers += [ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]
        identifiers.append(ds.FrameOfReferenceUID)
    scan = load_scan(sample.dicom_dir).image[:, :, Z_CROP]
    labels = read_image_file(sample.folder / "phantom_labels.nrrd")[:, :, Z_CROP]
    segments = [
        DicomSegment(name, sitk.Cast(labels == value, sitk.sitkUInt8))
        for name, value in STRUCTURES.items()
    ]
    out = tmp_path_factory.mktemp("dicom")
    uids = CaseDicomUids.generate()
    series = write_dicom_series(scan, out / "ct", uids=uids)
    write_dicom_seg(series.paths, segments, out / "seg.dcm", uids=uids)
    write_rtstruct(series.paths, segments, out / "rt.dcm", uids=uids)
    return Exported(
        scan, segments, uids, series, out / "seg.dcm", out / "rt.dcm", sorted(set(identifiers))
    )


def _read_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


# --- the series -----------------------------------------------------------------------------


def test_series_reads_back_with_the_scans_grid_and_voxels(exported: Exported) -> None:
    back = _read_series(exported.series.folder)
    scan = exported.scan
    assert back.GetSize() == scan.GetSize() == (200, 168, 40)
    np.testing.assert_allclose(back.GetSpacing(), (1.5, 1.5, 2.0), atol=1e-9)
    np.testing.assert_allclose(back.GetOrigin(), scan.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(back.GetOrigin(), (-150.0, -126.0, -820.0), atol=1e-6)
    np.testing.assert_allclose(back.GetDirection(), np.eye(3).ravel(), atol=1e-9)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(scan))
    assert (exported.series.rescale_slope, exported.series.rescale_intercept) == (1.0, 0.0)
    assert len(exported.series.paths) == 40
    first = pydicom.dcmread(exported.series.paths[0])
    assert first.SOPClassUID == pydicom.uid.CTImageStorage
    assert (first.BitsAllocated, first.PixelRepresentation, first.Modality) == (16, 1, "CT")
    assert [float(v) for v in first.PixelSpacing] == [1.5, 1.5]
    assert float(first.SliceThickness) == 2.0


def test_written_files_have_the_usual_mode(exported: Exported) -> None:
    files = [*exported.series.paths, exported.seg_path, exported.rt_path]
    assert {p.stat().st_mode & 0o777 for p in files} == {0o666 & ~_umask()}
    assert exported.series.folder.stat().st_mode & 0o777 == 0o777 & ~_umask()


def _values(ds: pydicom.Dataset) -> list[str]:
    """Every data element value of ``ds`` (file meta and nested sequences included), as text."""
    out = [str(e.value) for e in ds.file_meta.iterall()] if hasattr(ds, "file_meta") else []
    return out + [str(e.value) for e in ds.iterall() if e.VR not in ("OB", "OW", "SQ")]


def test_no_original_identifier_in_any_exported_element(exported: Exported) -> None:
    assert "PHANTOM^JANE" in exported.original_identifiers
    files = [*exported.series.paths, exported.seg_path, exported.rt_path]
    for path in files:
        ds = pydicom.dcmread(path)
        values = _values(ds)
        assert len(values) > 40
        for identifier in exported.original_identifiers:
            leaked = [v for v in values if identifier in v]
            assert not leaked, (path.name, identifier)
            assert identifier.encode() not in path.read_bytes()
        assert str(ds.PatientName) == PLACEHOLDER_PATIENT_NAME
        assert ds.PatientID == exported.uids.patient_id
        assert ds.PatientID.startswith("SURGPLAN-") and len(ds.PatientID) == 21
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert (ds.PatientBirthDate, ds.StudyDate, ds.AccessionNumber) == ("", "", "")
        assert ds.StudyInstanceUID == exported.uids.study
        assert (ds.PatientSex, "PatientAge" in ds, "InstitutionName" in ds) == ("", False, False)


def test_series_headers_reference_the_written_slices(exported: Exported) -> None:
    headers = series_headers(exported.scan, uids=exported.uids)
    assert tuple(h.SOPInstanceUID for h in headers) == exported.series.sop_instance_uids
    assert "PixelData" not in headers[0]
    assert len(set(exported.series.sop_instance_uids)) == 40


def test_reexport_replaces_the_cases_series_but_not_a_foreign_folder(tmp_path: Path) -> None:
    scan = sitk.GetImageFromArray(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    uids = CaseDicomUids.generate()
    write_dicom_series(scan, tmp_path / "ct", uids=uids)
    again = write_dicom_series(scan + 5, tmp_path / "ct", uids=uids)
    assert sorted(p.name for p in (tmp_path / "ct").iterdir()) == ["CT0001.dcm", "CT0002.dcm"]
    assert sitk.GetArrayFromImage(_read_series(again.folder)).max() == 28
    with pytest.raises(DicomExportError, match="is not this case's DICOM series"):
        write_dicom_series(scan, tmp_path / "ct", uids=CaseDicomUids.generate())
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DicomExportError, match="mine exists"):
        write_dicom_series(scan, tmp_path / "mine", uids=uids)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("values", "slope", "intercept"),
    [
        (np.array([-1024, 3071]), 1.0, 0.0),
        (np.array([0, 65535]), 1.0, 32768.0),
        (np.array([-1.0, 0.25, 1.0]), 2 / 65535, -1 + 32768 * 2 / 65535),
    ],
)
def test_int16_encoding(values: np.ndarray, slope: float, intercept: float) -> None:
    stored, got_slope, got_intercept = int16_encoding(values)
    assert stored.dtype == np.int16
    np.testing.assert_allclose(got_slope, slope, rtol=1e-9)
    np.testing.assert_allclose(got_intercept, intercept, atol=1e-9)  # both Decimal Strings
    np.testing.assert_allclose(stored * got_slope + got_intercept, values, atol=got_slope / 2)


def _oblique_left_handed() -> tuple[sitk.Image, sitk.Image]:
    """A float scan with a rotated, left-handed direction and a mask with one voxel per slice."""
    values = np.linspace(-500.3, 800.7, 5 * 6 * 7).reshape(5, 6, 7)
    scan = sitk.GetImageFromArray(values)
    c, s = np.cos(0.3), np.sin(0.3)
    scan.SetDirection((c, -s, 0, s, c, 0, 0, 0, -1))  # det = -1: slices run feet-ward
    scan.SetSpacing((0.8, 0.9, 2.5))
    scan.SetOrigin((10.0, -20.0, 30.0))
    mask = sitk.Image(scan.GetSize(), sitk.sitkUInt8)
    mask.CopyInformation(scan)
    for k in range(5):
        mask[k, k, k] = 1  # voxel (i=k, j=k) on slice k: reveals any slice-order mix-up
    return scan, mask


def test_oblique_left_handed_scan_and_seg_keep_physical_positions(tmp_path: Path) -> None:
    scan, mask = _oblique_left_handed()
    uids = CaseDicomUids.generate()
    series = write_dicom_series(scan, tmp_path / "ct", uids=uids)
    back = _read_series(tmp_path / "ct")
    assert np.linalg.det(np.reshape(back.GetDirection(), (3, 3))) == pytest.approx(1.0)
    resampled = sitk.Resample(back, scan, sitk.Transform(), sitk.sitkNearestNeighbor)
    error = np.abs(sitk.GetArrayFromImage(resampled) - sitk.GetArrayFromImage(scan))
    assert error.max() <= series.rescale_slope / 2 + 1e-9
    seg_path = tmp_path / "seg.dcm"
    write_dicom_seg(series.paths, [DicomSegment("liver", mask)], seg_path, uids=uids)
    volume = hd.seg.segread(seg_path).get_volume(segment_numbers=[1], combine_segments=True)
    on_grid = sitk.Resample(volume.to_simpleitk(), mask, sitk.Transform(), sitk.sitkNearestNeighbor)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(on_grid), sitk.GetArrayFromImage(mask))


# --- DICOM-SEG ------------------------------------------------------------------------------


def test_seg_reads_back_with_the_same_voxels_and_references(exported: Exported) -> None:
    seg = hd.seg.segread(exported.seg_path)
    numbers = list(range(1, len(exported.segments) + 1))
    assert [seg.get_segment_description(n).segment_label for n in numbers] == list(STRUCTURES)
    liver = seg.get_segment_description(1)
    assert liver.segmented_property_type.value == "10200004"  # SNOMED CT Liver
    assert liver.segmented_property_category.value == "91723000"  # Anatomical Structure
    assert seg.get_segment_description(2).segmented_property_type.value == "108369006"
    assert liver.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
    pixels = seg.get_pixels_by_source_instance(
        list(exported.series.sop_instance_uids), segment_numbers=numbers
    )
    for i, segment in enumerate(exported.segments):
        expected = sitk.GetArrayFromImage(segment.mask)
        assert expected.sum() > 500
        np.testing.assert_array_equal(pixels[..., i], expected)
        volume = seg.get_volume(segment_numbers=[i + 1], combine_segments=True).to_simpleitk()
        on_grid = sitk.Resample(volume, segment.mask, sitk.Transform(), sitk.sitkNearestNeighbor)
        labels = sitk.GetArrayFromImage(on_grid)  # combined: the segment number inside
        np.testing.assert_array_equal(labels, expected * (i + 1))
    (series,) = seg.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == exported.uids.series
    referenced = {item.ReferencedSOPInstanceUID for item in series.ReferencedInstanceSequence}
    assert referenced == set(exported.series.sop_instance_uids)
    assert seg.FrameOfReferenceUID == exported.uids.frame_of_reference
    assert seg.SeriesInstanceUID == exported.uids.seg_series


# --- RTSTRUCT -------------------------------------------------------------------------------


def _rasterise(ds: pydicom.Dataset, roi_number: int, series: list[pydicom.Dataset]) -> np.ndarray:
    """Even-odd fill of an ROI's contours at pixel centres, one slice per referenced image."""
    slice_of = {s.SOPInstanceUID: k for k, s in enumerate(series)}
    rows, cols = int(series[0].Rows), int(series[0].Columns)
    out = np.zeros((len(series), rows, cols), dtype=bool)
    (roi,) = [r for r in ds.ROIContourSequence if r.ReferencedROINumber == roi_number]
    for contour in roi.ContourSequence:
        assert contour.ContourGeometricType == "CLOSED_PLANAR"
        k = slice_of[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
        image = series[k]
        points = np.reshape([float(v) for v in contour.ContourData], (-1, 3))
        assert len(points) == contour.NumberOfContourPoints
        origin = np.array([float(v) for v in image.ImagePositionPatient])
        iop = np.array([float(v) for v in image.ImageOrientationPatient])
        dy, dx = (float(v) for v in image.PixelSpacing)
        offset = points - origin
        np.testing.assert_allclose(offset @ np.cross(iop[:3], iop[3:]), 0.0, atol=1e-3)
        column, row = offset @ iop[:3] / dx, offset @ iop[3:] / dy  # continuous pixel index
        out[k] ^= polygon2mask((rows, cols), np.column_stack([row, column]))
    return out


def test_rtstruct_contours_rasterise_back_to_the_masks(exported: Exported) -> None:
    ds = pydicom.dcmread(exported.rt_path)
    assert ds.SOPClassUID == pydicom.uid.RTStructureSetStorage and ds.Modality == "RTSTRUCT"
    assert [r.ROIName for r in ds.StructureSetROISequence] == list(STRUCTURES)
    assert [r.ROINumber for r in ds.StructureSetROISequence] == [1, 2, 3, 4]
    assert [list(r.ROIDisplayColor) for r in ds.ROIContourSequence][0] == [221, 130, 101]
    assert [o.RTROIInterpretedType for o in ds.RTROIObservationsSequence][:2] == ["ORGAN", "GTV"]
    (frame,) = ds.ReferencedFrameOfReferenceSequence
    assert frame.FrameOfReferenceUID == exported.uids.frame_of_reference
    (series_ref,) = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence
    assert series_ref.SeriesInstanceUID == exported.uids.series
    assert [i.ReferencedSOPInstanceUID for i in series_ref.ContourImageSequence] == list(
        exported.series.sop_instance_uids
    )
    series = [pydicom.dcmread(p, stop_before_pixels=True) for p in exported.series.paths]
    for number, segment in enumerate(exported.segments, start=1):
        expected = sitk.GetArrayFromImage(segment.mask).astype(bool)
        back = _rasterise(ds, number, series)
        for k in np.flatnonzero(expected.any(axis=(1, 2))):
            dice = 2 * (back[k] & expected[k]).sum() / (back[k].sum() + expected[k].sum())
            assert dice >= 0.95, (segment.name, k, dice)
        np.testing.assert_array_equal(back, expected)  # pixel-edge contours are exact


def test_contour_area_equals_pixel_count() -> None:
    ring = np.zeros((7, 8), dtype=bool)
    ring[1:6, 1:7] = True
    ring[3, 3:5] = False  # a 2-pixel hole
    ring[6, 7] = True  # a pixel touching the ring only at a corner
    polygons = mask_outline_polygons(ring)
    assert sorted(polygon_area(p) for p in polygons) == [-2.0, 1.0, 30.0]
    assert [len(p) for p in polygons] == [4, 4, 4]  # collinear corners dropped


# --- UIDs and bad input ---------------------------------------------------------------------


def test_case_uids_round_trip_and_derive_instance_uids() -> None:
    uids = CaseDicomUids.generate()
    assert CaseDicomUids.from_dict(uids.to_dict()) == uids
    assert len(set(uids.to_dict().values())) == 5
    first = uids.instance_uid(uids.series, 1)
    assert first == uids.instance_uid(uids.series, 1) != uids.instance_uid(uids.series, 2)
    assert pydicom.uid.UID(first).is_valid and first.startswith("2.25.")
    assert CaseDicomUids.generate().patient_id != uids.patient_id
    with pytest.raises(DicomExportError, match="'series' is not a valid UID: '1.2.x'"):
        CaseDicomUids.from_dict({**uids.to_dict(), "series": "1.2.x"})
    with pytest.raises(DicomExportError, match="expected"):
        CaseDicomUids.from_dict({"study": uids.study})


def _one_line(error: pytest.ExceptionInfo[Exception]) -> str:
    message = str(error.value)
    assert "\n" not in message and isinstance(error.value, SurgplanError)
    return message


def test_bad_segments_get_one_line_errors(exported: Exported, tmp_path: Path) -> None:
    liver = exported.segments[0]
    shifted = sitk.Image(liver.mask)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    empty = sitk.Image(liver.mask) * 0
    labels = sitk.Image(liver.mask) * 2
    paths = exported.series.paths
    cases = [
        ([DicomSegment("liver", shifted)], "not on the source series' grid: size"),
        ([DicomSegment("liver", liver.mask[:, :, :10])], r"size \(200, 168, 10\)"),
        ([DicomSegment("empty", empty)], "mask of segment 'empty' is empty"),
        ([DicomSegment("labels", labels)], r"'labels' is not binary: values \[0, 2\]"),
        ([], "no segments to export"),
        ([liver, liver], r"repeated: \['liver'\]"),
    ]
    for writer in (write_dicom_seg, write_rtstruct):
        for segments, message in cases:
            out = tmp_path / "out.dcm"
            with pytest.raises(DicomExportError, match=message) as error:
                writer(paths, segments, out, uids=exported.uids)
            _one_line(error)
            assert not out.exists() and not list(tmp_path.iterdir())
        with pytest.raises(DicomExportError, match="not the case's de-identified series"):
            writer(paths, [liver], tmp_path / "x.dcm", uids=CaseDicomUids.generate())
        with pytest.raises(DicomExportError, match="no source slices"):
            writer([], [liver], tmp_path / "x.dcm", uids=exported.uids)
    with pytest.raises(DicomExportError, match="algorithm type 'GUESS'"):
        DicomSegment("liver", liver.mask, algorithm_type="GUESS")


def test_bad_series_requests_get_one_line_errors(tmp_path: Path) -> None:
    uids = CaseDicomUids.generate()
    scan = sitk.GetImageFromArray(np.zeros((2, 3, 4), dtype=np.int16))
    with pytest.raises(DicomExportError, match="supports modality .* got 'US'") as error:
        write_dicom_series(scan, tmp_path / "ct", uids=uids, modality="US")
    _one_line(error)
    with pytest.raises(DicomExportError, match="3-D scalar image, got 2-D"):
        write_dicom_series(scan[:, :, 0], tmp_path / "ct", uids=uids)
    nan = sitk.GetImageFromArray(np.full((2, 3, 4), np.nan))
    with pytest.raises(DicomExportError, match="NaN or infinite"):
        write_dicom_series(nan, tmp_path / "ct", uids=uids)
    with pytest.raises(DicomExportError, match="parent folder of .* does not exist"):
        write_dicom_series(scan, tmp_path / "no" / "ct", uids=uids)
    assert list(tmp_path.iterdir()) == []
