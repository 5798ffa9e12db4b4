"""Write a case's structures as a DICOM RT Structure Set (RTSTRUCT) with pydicom.

highdicom has no RTSTRUCT writer, and ``rt-utils`` (MIT) needs OpenCV and traces contours
through boundary pixel centres, which loses half a pixel all round; so the contours are traced
here (:mod:`surgplan.mask_contours`) along the pixel edges of each slice of each mask:
CLOSED_PLANAR polygons whose even-odd fill at the pixel centres is the mask exactly (holes are
separate contours, the XOR representation of DICOM PS3.3 C.8.8.6.3). Points are in patient
LPS mm (DICOM's patient coordinates) on the plane of the source slice they reference.

Implicit VR little endian is used, as DICOM PS3.3 C.8.8.6 notes that Contour Data longer than
65534 bytes cannot be encoded with an explicit VR transfer syntax.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ImplicitVRLittleEndian,
    RTStructureSetStorage,
)

from surgplan.atomic import atomic_path
from surgplan.dicom_identity import (
    MANUFACTURER,
    CaseDicomUids,
    set_deidentified_patient_and_study,
    software_version,
)
from surgplan.dicom_segments import (
    DicomSegment,
    SourceSeries,
    case_source_series,
    default_colour,
    output_file,
    structure_coding,
)
from surgplan.mask_contours import mask_outline_polygons

#: Referenced SOP Class UID of an RT Referenced Study item (Study Component Management, as
#: written by treatment planning systems).
STUDY_REFERENCE_CLASS_UID = "1.2.840.10008.3.1.2.3.1"


@dataclass(frozen=True)
class RtstructExport:
    """What :func:`write_rtstruct` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The RTSTRUCT file.
    sop_instance_uid, series_uid : str
        Its SOP Instance UID and Series Instance UID.
    roi_numbers : dict of str to int
        ROI Number by structure name.
    n_contours : dict of str to int
        Number of closed contours written per structure.
    """

    path: Path
    sop_instance_uid: str
    series_uid: str
    roi_numbers: dict[str, int]
    n_contours: dict[str, int]


def _ref(class_uid: str, instance_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = class_uid
    item.ReferencedSOPInstanceUID = instance_uid
    return item


def _referenced_frame(source: SourceSeries) -> Dataset:
    """ReferencedFrameOfReferenceSequence item: frame -> study -> series -> every slice."""
    first = source.datasets[0]
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = [
        _ref(ds.SOPClassUID, ds.SOPInstanceUID) for ds in source.datasets
    ]
    study = _ref(STUDY_REFERENCE_CLASS_UID, first.StudyInstanceUID)
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence = [study]
    return frame


def corners_to_lps_mm(source: SourceSeries, corners: np.ndarray, k: int) -> np.ndarray:
    """Pixel-corner coordinates ``(x, y)`` on slice ``k`` -> ``(N, 3)`` patient LPS mm points.

    A corner ``(x, y)`` has continuous index ``(x - 0.5, y - 0.5, k)``; the point is
    ``origin + D @ (spacing * index)`` (the series' grid, as SimpleITK maps indices).
    """
    index = np.column_stack([corners - 0.5, np.full(len(corners), float(k))])
    direction = np.asarray(source.direction, dtype=float).reshape(3, 3)
    return np.asarray(source.origin) + (index * np.asarray(source.spacing)) @ direction.T


def _contours(source: SourceSeries, frames: np.ndarray) -> list[Dataset]:
    """ContourSequence items of one structure, one CLOSED_PLANAR polygon each."""
    items = []
    for k in np.flatnonzero(frames.reshape(len(frames), -1).any(axis=1)):
        ds = source.datasets[k]
        for corners in mask_outline_polygons(frames[k]):
            points = corners_to_lps_mm(source, corners, int(k))
            item = Dataset()
            item.ContourNumber = len(items) + 1
            item.ContourImageSequence = [_ref(ds.SOPClassUID, ds.SOPInstanceUID)]
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(points)
            item.ContourData = [f"{v:.4f}".rstrip("0").rstrip(".") for v in points.ravel()]
            items.append(item)
    return items


def _roi_items(
    source: SourceSeries, number: int, segment: DicomSegment
) -> tuple[Dataset, Dataset, Dataset]:
    """StructureSetROI, ROIContour and RTROIObservations items of one structure."""
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = source.datasets[0].FrameOfReferenceUID
    roi.ROIName = segment.name
    roi.ROIGenerationAlgorithm = segment.algorithm_type
    contour = Dataset()
    contour.ReferencedROINumber = number
    contour.ROIDisplayColor = list(segment.color_rgb or default_colour(segment.name, number - 1))
    contour.ContourSequence = _contours(source, source.frames(segment))
    coding = structure_coding(segment.name)
    observation = Dataset()
    observation.ObservationNumber = number
    observation.ReferencedROINumber = number
    observation.RTROIInterpretedType = coding.rt_roi_type
    observation.ROIInterpreter = ""
    code = Dataset()
    code.CodeValue = coding.type.value
    code.CodingSchemeDesignator = coding.type.scheme_designator
    code.CodeMeaning = coding.type.meaning
    observation.RTROIIdentificationCodeSequence = [code]
    return roi, contour, observation


def _structure_set(source: SourceSeries, uids: CaseDicomUids, description: str) -> Dataset:
    """The RTSTRUCT's header: SOP common, patient and study, RT series, structure set."""
    sop_uid = uids.instance_uid(uids.rtstruct_series, 1)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = sop_uid
    set_deidentified_patient_and_study(ds, uids)
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = uids.rtstruct_series
    ds.SeriesNumber = 3
    ds.SeriesDescription = description
    ds.OperatorsName = ""
    ds.Manufacturer = MANUFACTURER
    ds.SoftwareVersions = software_version()
    ds.StructureSetLabel = "SURGPLAN"
    ds.StructureSetDate = ""
    ds.StructureSetTime = ""
    ds.InstanceNumber = 1
    ds.ReferencedFrameOfReferenceSequence = [_referenced_frame(source)]
    return ds


def write_rtstruct(
    source_datasets: Sequence[Dataset | str | os.PathLike[str]],
    segments: Sequence[DicomSegment],
    out_path: str | os.PathLike[str],
    *,
    uids: CaseDicomUids,
    series_description: str = "surgplan structures",
) -> RtstructExport:
    """Write ``segments`` as an RT Structure Set on the case's de-identified series.

    Parameters
    ----------
    source_datasets
        The case's de-identified series (datasets or paths), in any order.
    segments
        One ROI per structure; masks on the series' grid (the scan's grid, LPS).
    out_path
        Destination ``.dcm`` file; written atomically. Its folder must exist.
    uids
        The case's DICOM UIDs: the RTSTRUCT gets series ``uids.rtstruct_series``, instance 1.
    series_description
        Series Description (must not carry identifiers).

    Returns
    -------
    RtstructExport
        Path, UIDs, ROI numbers and contour counts by structure name.

    Raises
    ------
    DicomExportError
        No segments, repeated names, a mask off the grid, empty or not binary, a source series
        that is not the case's, or a missing destination folder.
    """
    source = case_source_series(source_datasets, segments, uids)
    out = output_file(out_path)
    ds = _structure_set(source, uids, series_description)
    items = [_roi_items(source, i + 1, s) for i, s in enumerate(segments)]
    ds.StructureSetROISequence = [roi for roi, _, _ in items]
    ds.ROIContourSequence = [contour for _, contour, _ in items]
    ds.RTROIObservationsSequence = [observation for _, _, observation in items]
    with atomic_path(out) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return RtstructExport(
        path=out,
        sop_instance_uid=str(ds.SOPInstanceUID),
        series_uid=uids.rtstruct_series,
        roi_numbers={s.name: i + 1 for i, s in enumerate(segments)},
        n_contours={
            s.name: len(c.ContourSequence) for s, (_, c, _) in zip(segments, items, strict=True)
        },
    )
