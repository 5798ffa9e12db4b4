"""DICOM export of a case: the de-identified scan as a CT series, DICOM-SEG and RTSTRUCT.

The public API, gathered from its small modules::

    uids = CaseDicomUids.generate()                    # once per case; kept in the manifest
    series = write_dicom_series(scan, "out/ct", uids=uids)              -> DicomSeriesExport
    segments = [DicomSegment("liver", liver_mask), ...]                  # masks on the scan grid
    write_dicom_seg(series.paths, segments, "out/seg.dcm", uids=uids)   -> DicomSegExport
    write_rtstruct(series.paths, segments, "out/rt.dcm", uids=uids)     -> RtstructExport

The SEG and RTSTRUCT reference the series by its derived SOP Instance UIDs; without the series
on disk, :func:`series_headers` gives the same references. Every object carries the case's
UIDs, a pseudonym and a placeholder name, never an original identifier; errors are
:class:`DicomExportError` (a :class:`~surgplan.errors.SurgplanError`).
"""

from surgplan.dicom_identity import (
    PLACEHOLDER_PATIENT_NAME,
    CaseDicomUids,
    DicomExportError,
)
from surgplan.dicom_seg_export import DicomSegExport, write_dicom_seg
from surgplan.dicom_segments import DicomSegment, load_source_series, structure_coding
from surgplan.dicom_series_export import DicomSeriesExport, series_headers, write_dicom_series
from surgplan.rtstruct_export import RtstructExport, write_rtstruct

__all__ = [
    "PLACEHOLDER_PATIENT_NAME",
    "CaseDicomUids",
    "DicomExportError",
    "DicomSegExport",
    "DicomSegment",
    "DicomSeriesExport",
    "RtstructExport",
    "load_source_series",
    "series_headers",
    "structure_coding",
    "write_dicom_seg",
    "write_dicom_series",
    "write_rtstruct",
]
