"""Write a case's structures as one binary DICOM Segmentation (DICOM-SEG) with highdicom.

One segment per structure, coded with SNOMED CT (:func:`surgplan.dicom_segments.structure_coding`),
on the frames of the case's de-identified series (:func:`surgplan.dicom_series_export.
write_dicom_series`): frame ``k`` of a segment covers source slice ``k`` and references its SOP
Instance UID. Empty frames are omitted, as highdicom does by default.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from surgplan.atomic import atomic_path
from surgplan.dicom_identity import (
    MANUFACTURER,
    CaseDicomUids,
    set_deidentified_patient_and_study,
    software_version,
)
from surgplan.dicom_segments import (
    DicomSegment,
    case_source_series,
    default_colour,
    output_file,
    structure_coding,
)


@dataclass(frozen=True)
class DicomSegExport:
    """What :func:`write_dicom_seg` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The SEG file.
    sop_instance_uid, series_uid : str
        Its SOP Instance UID and Series Instance UID.
    segment_numbers : dict of str to int
        Segment Number (1-based) by structure name.
    referenced_sop_instance_uids : tuple of str
        The source slices, in slice order.
    """

    path: Path
    sop_instance_uid: str
    series_uid: str
    segment_numbers: dict[str, int]
    referenced_sop_instance_uids: tuple[str, ...]


def _description(number: int, segment: DicomSegment) -> hd.seg.SegmentDescription:
    coding = structure_coding(segment.name)
    algorithm = None
    if segment.algorithm_type != "MANUAL":
        # CID 7162: region growing from seeds and thresholds analyse voxel neighbourhoods.
        algorithm = hd.AlgorithmIdentificationSequence(
            name=segment.algorithm_name,
            family=codes.cid7162.NeighborhoodAnalysis,
            version=software_version(),
        )
    rgb = segment.color_rgb or default_colour(segment.name, number - 1)
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=segment.name,
        segmented_property_category=coding.category,
        segmented_property_type=coding.type,
        algorithm_type=segment.algorithm_type,
        algorithm_identification=algorithm,
        display_color=hd.color.CIELabColor.from_rgb(*(int(c) for c in rgb)),
    )


def write_dicom_seg(
    source_datasets: Sequence[Dataset | str | os.PathLike[str]],
    segments: Sequence[DicomSegment],
    out_path: str | os.PathLike[str],
    *,
    uids: CaseDicomUids,
    series_description: str = "surgplan segmentation",
) -> DicomSegExport:
    """Write ``segments`` as a binary DICOM-SEG referencing ``source_datasets``.

    Parameters
    ----------
    source_datasets
        The case's de-identified series (datasets or paths), in any order.
    segments
        One per structure; masks on the series' grid (the scan's grid, LPS).
    out_path
        Destination ``.dcm`` file; written atomically. Its folder must exist.
    uids
        The case's DICOM UIDs: the SEG gets series ``uids.seg_series``, instance 1.
    series_description
        Series Description of the SEG (must not carry identifiers).

    Returns
    -------
    DicomSegExport
        Path, UIDs, segment numbers by name, referenced source SOP Instance UIDs.

    Raises
    ------
    DicomExportError
        No segments, repeated names, a mask off the grid, empty or not binary, a source series
        that is not the case's, or a missing destination folder.
    """
    source = case_source_series(source_datasets, segments, uids)
    frames = np.stack([source.frames(s) for s in segments], axis=-1)  # (slices, rows, cols, seg)
    out = output_file(out_path)
    sop_uid = uids.instance_uid(uids.seg_series, 1)
    seg = hd.seg.Segmentation(
        source_images=list(source.datasets),
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_description(i + 1, s) for i, s in enumerate(segments)],
        series_instance_uid=uids.seg_series,
        series_number=2,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER,
        software_versions=software_version(),
        device_serial_number="0",
        content_label="SURGPLAN",
        content_description=series_description,
    )
    seg.SeriesDescription = series_description
    set_deidentified_patient_and_study(seg, uids)
    with atomic_path(out) as tmp:
        seg.save_as(tmp)
    return DicomSegExport(
        path=out,
        sop_instance_uid=sop_uid,
        series_uid=uids.seg_series,
        segment_numbers={s.name: i + 1 for i, s in enumerate(segments)},
        referenced_sop_instance_uids=source.sop_instance_uids,
    )
