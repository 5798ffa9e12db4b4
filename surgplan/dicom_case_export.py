"""DICOM export of a whole case: its scan as a series, its structures as DICOM-SEG or RTSTRUCT.

The series follows the modality the case's DICOM import recorded (:func:`series_modality`):
``CT`` is written as CT Image Storage, ``MR`` as MR Image Storage; any other DICOM modality
(``US``, ``PT``, ``OT``...) is refused, as is a SEG or RTSTRUCT on it (its series cannot be
exported). A scan imported from an image file (NIfTI, NRRD, MHA) records no modality: it is
written as CT Image Storage with its values taken as HU, and the result's ``notes`` say so.

The case's DICOM identity (:class:`~surgplan.dicom_identity.CaseDicomUids`) is generated on its
first DICOM export and recorded in the manifest (``dicom_uids``), in a case transaction, only
after that export's files were written: a failed export leaves the case byte-identical. Later
exports reuse it, so a SEG or RTSTRUCT written at any time references the slices of the
de-identified series that ``--dicom`` writes (or wrote) for the same case: the references are
derived from the UIDs (:func:`~surgplan.dicom_series_export.series_headers`), the series need
not be on disk. No original identifier is ever written.

Each structure's Segment Algorithm Type follows from how it was made
(:func:`algorithm_type`): seeded region growing (``organ``, ``tumour``, ``vessels``) is
``SEMIAUTOMATIC``, thresholds (``bone``, ``air``) are ``AUTOMATIC``, imported labels (drawn or
computed elsewhere) are ``MANUAL``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from imaging.image_io import read_image_file
from surgplan.case import Case
from surgplan.dicom_identity import CaseDicomUids, DicomExportError
from surgplan.dicom_seg_export import DicomSegExport, write_dicom_seg
from surgplan.dicom_segments import DicomSegment
from surgplan.dicom_series_export import (
    SERIES_MODALITIES,
    series_headers,
    write_dicom_series,
)
from surgplan.export import ExportError, display_style, require_outside_case, structure_names
from surgplan.manifest import DicomUidsEntry
from surgplan.rtstruct_export import RtstructExport, write_rtstruct

#: Segment Algorithm Type by the manifest's structure ``method``; anything else is ``MANUAL``.
ALGORITHM_TYPE_OF_METHOD = {
    "organ": "SEMIAUTOMATIC",
    "tumour": "SEMIAUTOMATIC",
    "vessels": "SEMIAUTOMATIC",
    "bone": "AUTOMATIC",
    "air": "AUTOMATIC",
}


@dataclass(frozen=True)
class CaseDicomExport:
    """What a case's DICOM export wrote.

    Attributes
    ----------
    kind : str
        ``"dicom"`` (the scan as a CT or MR series), ``"dicom-seg"`` or ``"rtstruct"``.
    output : pathlib.Path
        The series folder, or the SEG / RTSTRUCT file.
    uids : CaseDicomUids
        The case's DICOM UIDs used.
    uids_recorded : bool
        Whether this export generated them and recorded them in the manifest (the case's first
        DICOM export).
    series_uid : str
        Series Instance UID of what was written (a SEG or RTSTRUCT references the scan's
        series ``uids.series``).
    details : dict
        Kind-specific figures: ``n_files``, ``modality``, ``rescale_slope``,
        ``rescale_intercept``, ``rescale_type`` (series); ``segments`` (SEG: name, number,
        algorithm type); ``rois`` (RTSTRUCT: name, number, contours); and for every kind
        ``notes``: assumptions a user should know (a scan with no recorded modality written as
        CT, an MR rescale).
    """

    kind: str
    output: Path
    uids: CaseDicomUids
    uids_recorded: bool
    series_uid: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan export --dicom/--dicom-seg/--rtstruct --json``."""
        report = {
            "action": "export",
            "kind": self.kind,
            "output": str(self.output),
            "series_uid": self.series_uid,
            "study_uid": self.uids.study,
            "frame_of_reference_uid": self.uids.frame_of_reference,
            "uids_recorded": self.uids_recorded,
        }
        if self.kind != "dicom":
            report["referenced_series_uid"] = self.uids.series
        return {**report, **self.details}


def algorithm_type(method: str) -> str:
    """DICOM Segment Algorithm Type of a structure made by ``method`` (see module docstring)."""
    return ALGORITHM_TYPE_OF_METHOD.get(method, "MANUAL")


def case_dicom_uids(case: Case) -> tuple[CaseDicomUids, bool]:
    """The case's recorded DICOM UIDs, or new ones (not yet recorded).

    Returns
    -------
    uids, new
        The UIDs, and whether they were generated now (record them with :func:`record_uids`
        once the export succeeded).

    Raises
    ------
    DicomExportError
        If the recorded UIDs are not valid (a hand-edited manifest).
    """
    entry = case.manifest.dicom_uids
    if entry is None:
        return CaseDicomUids.generate(), True
    return CaseDicomUids.from_dict(entry.model_dump()), False


def record_uids(case: Case, uids: CaseDicomUids) -> None:
    """Record ``uids`` as the case's DICOM UIDs (a case transaction that changes only these).

    The manifest is read afresh, so a change another step committed during the export is kept.

    Raises
    ------
    DicomExportError
        If another export recorded different UIDs meanwhile (export again: the file just
        written carries UIDs the case does not keep).
    """
    fresh = Case.open(case.root)
    recorded = fresh.manifest.dicom_uids
    if recorded is not None and recorded.model_dump() != uids.to_dict():
        raise DicomExportError(
            f"another export recorded the DICOM UIDs of case {case.root} meanwhile; export again"
        )
    with fresh.transaction() as tx:
        tx.manifest.dicom_uids = DicomUidsEntry(**uids.to_dict())
    case.manifest = fresh.manifest


def case_segments(case: Case, structures: Sequence[str] = ()) -> list[DicomSegment]:
    """The case's structures as DICOM segments: masks on the scan's grid, colours, algorithms.

    Parameters
    ----------
    case
        The case.
    structures
        Structures to include, in this order; all of the case's, in manifest order, when empty.

    Raises
    ------
    ExportError
        If the case has no structures.
    CaseError
        For a structure the case does not have.
    """
    names = structure_names(case, structures)
    if not names:
        raise ExportError(f"case {case.root} has no structures; run 'surgplan segment' first")
    segments = []
    for name in names:
        path = case.require_structure(name)
        entry = case.manifest.structures[name]
        rgb, _ = display_style(case, name)
        segments.append(
            DicomSegment(
                name=name,
                mask=sitk.Cast(read_image_file(path), sitk.sitkUInt8),
                algorithm_type=algorithm_type(entry.method),
                algorithm_name=f"surgplan {entry.method}",
                color_rgb=tuple(int(round(255 * min(max(c, 0.0), 1.0))) for c in rgb),
            )
        )
    return segments


def series_modality(case: Case) -> tuple[str, list[str]]:
    """The modality the case's scan is exported as, and the notes that assumption needs.

    Returns
    -------
    modality, notes
        ``"CT"`` or ``"MR"`` as the import recorded it (no notes), or ``"CT"`` for a scan with
        no recorded modality (an image file) or an unknown one (``"OT"``), with a note saying so.

    Raises
    ------
    DicomExportError
        For another recorded modality (one line naming it and what is supported).
    """
    entry = case.manifest.image
    modality = entry.modality if entry is not None else None
    if modality is None:
        source = entry.source_kind if entry is not None else "unknown"
        return "CT", [
            f"the scan was imported from a {source} source that records no modality: "
            "written as CT Image Storage, its values taken as HU"
        ]
    if modality == "OT":  # the import's code for a missing or unrecognised Modality value
        return "CT", [
            "the scan's DICOM Modality was missing or not a defined term (recorded as OT): "
            "written as CT Image Storage, its values taken as HU"
        ]
    if modality not in SERIES_MODALITIES:
        raise DicomExportError(
            f"case {case.root}: its scan is modality {modality!r} (recorded by its DICOM "
            f"import); DICOM export supports {' and '.join(SERIES_MODALITIES)} scans only"
        )
    return modality, []


def _open(
    case_folder: str | os.PathLike[str], out: Path
) -> tuple[Case, sitk.Image, str, list[str]]:
    """The case, its scan, the modality it is exported as and notes (:func:`series_modality`)."""
    case = Case.open(case_folder)
    require_outside_case(case, out)
    path = case.require_image()
    modality, notes = series_modality(case)
    return case, read_image_file(path), modality, notes


def export_dicom_series(
    case_folder: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> CaseDicomExport:
    """Write the case's de-identified scan as a DICOM CT or MR series into ``out_dir``.

    The modality follows the case's import (:func:`series_modality`).

    Parameters
    ----------
    case_folder
        The case.
    out_dir
        Destination folder outside the case: new, empty, or this case's previous series
        (replaced). Its parent must exist.

    Returns
    -------
    CaseDicomExport
        Kind ``"dicom"``: the folder, the case's UIDs, file count, modality, rescale
        slope/intercept/type and notes.

    Raises
    ------
    ExportError
        A destination inside the case.
    DicomExportError
        A folder holding anything but this case's series, a missing parent, a scan DICOM
        cannot hold, a modality other than CT or MR.
    """
    out = Path(out_dir)
    case, scan, modality, notes = _open(case_folder, out)
    uids, new = case_dicom_uids(case)
    series = write_dicom_series(scan, out, uids=uids, modality=modality)
    if new:
        record_uids(case, uids)
    details = {
        "n_files": len(series.paths),
        "modality": series.modality,
        "rescale_slope": series.rescale_slope,
        "rescale_intercept": series.rescale_intercept,
        "rescale_type": series.rescale_type,
        "notes": [*notes, *series.notes],
    }
    return CaseDicomExport("dicom", out, uids, new, series.series_uid, details)


def _check_file(out: Path, option: str) -> None:
    if out.suffix.lower() != ".dcm":
        raise DicomExportError(f"{option} {out.name}: the output file must end in .dcm")
    if out.is_dir():
        raise DicomExportError(f"{option} {out}: is a folder; give a .dcm file")


def _export_segments(
    case_folder: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    structures: Sequence[str],
    *,
    kind: str,
    write: Callable[..., Any],
    details: Callable[[list[DicomSegment], Any], dict[str, Any]],
) -> CaseDicomExport:
    """Write the case's structures with ``write`` (a SEG or RTSTRUCT writer) on its series.

    Parameters
    ----------
    case_folder, out_path, structures
        As :func:`export_dicom_seg`.
    kind
        ``"dicom-seg"`` or ``"rtstruct"``: the export's kind and (``--<kind>``) its option.
    write
        ``write(source_datasets, segments, out, uids=uids)``, returning what it wrote (with a
        ``series_uid``).
    details
        ``details(segments, written)``: the kind-specific figures of :class:`CaseDicomExport`.
    """
    out = Path(out_path)
    _check_file(out, f"--{kind}")
    case, scan, modality, notes = _open(case_folder, out)
    segments = case_segments(case, structures)
    uids, new = case_dicom_uids(case)
    headers = series_headers(scan, uids=uids, modality=modality)
    written = write(headers, segments, out, uids=uids)
    if new:
        record_uids(case, uids)
    figures = {**details(segments, written), "notes": notes}
    return CaseDicomExport(kind, out, uids, new, written.series_uid, figures)


def export_dicom_seg(
    case_folder: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    structures: Sequence[str] = (),
) -> CaseDicomExport:
    """Write the case's structures as a binary DICOM-SEG on its de-identified series.

    Parameters
    ----------
    case_folder
        The case.
    out_path
        Destination ``.dcm`` outside the case; its folder must exist.
    structures
        Structures to include (segments 1, 2, ... in this order); all when empty.

    Returns
    -------
    CaseDicomExport
        Kind ``"dicom-seg"``, with ``segments``: name, segment number and algorithm type.

    Raises
    ------
    ExportError
        A destination inside the case, a case without structures.
    DicomExportError
        A bad destination, an empty or off-grid mask, a scan modality other than CT or MR.
    """
    return _export_segments(
        case_folder,
        out_path,
        structures,
        kind="dicom-seg",
        write=write_dicom_seg,
        details=_segment_details,
    )


def _segment_details(segments: list[DicomSegment], written: DicomSegExport) -> dict[str, Any]:
    listed = [
        {
            "name": s.name,
            "number": written.segment_numbers[s.name],
            "algorithm_type": s.algorithm_type,
        }
        for s in segments
    ]
    return {"segments": listed}


def export_rtstruct(
    case_folder: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    structures: Sequence[str] = (),
) -> CaseDicomExport:
    """Write the case's structures as an RT Structure Set on its de-identified series.

    Parameters
    ----------
    case_folder
        The case.
    out_path
        Destination ``.dcm`` outside the case; its folder must exist.
    structures
        Structures to include (one ROI each, numbered 1, 2, ... in this order); all when empty.

    Returns
    -------
    CaseDicomExport
        Kind ``"rtstruct"``, with ``rois``: name, ROI number and number of closed contours.

    Raises
    ------
    ExportError
        A destination inside the case, a case without structures.
    DicomExportError
        A bad destination, an empty or off-grid mask, a scan modality other than CT or MR.
    """
    return _export_segments(
        case_folder,
        out_path,
        structures,
        kind="rtstruct",
        write=write_rtstruct,
        details=_roi_details,
    )


def _roi_details(segments: list[DicomSegment], written: RtstructExport) -> dict[str, Any]:
    rois = [
        {
            "name": s.name,
            "number": written.roi_numbers[s.name],
            "contours": written.n_contours[s.name],
        }
        for s in segments
    ]
    return {"rois": rois}
