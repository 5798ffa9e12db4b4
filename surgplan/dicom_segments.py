"""Segments to export as DICOM (SEG, RTSTRUCT) and the source series they are drawn on.

A :class:`DicomSegment` is one structure: its name, binary mask on the scan's grid (LPS), how it
was made and its colour. :func:`load_source_series` reads the de-identified series the segments
refer to, orders its slices along the normal ``row x column`` and recovers its voxel grid, and
:meth:`SourceSeries.frames` checks that a mask lies on that grid and returns it as one frame per
source slice, frame ``k`` on slice ``k``. SNOMED CT codes for the project's structure names come
from ``pydicom.sr.codedict.codes`` (:func:`structure_coding`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from imaging.grid import GRID_ATOL
from surgplan.dicom_identity import CaseDicomUids, DicomExportError
from surgplan.dicom_series_export import right_handed

ALGORITHM_TYPES = ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC")
"""Segment Algorithm Type (0062,0008) and ROI Generation Algorithm (3006,0036) values."""
MAX_LABEL_CHARS = 64
"""Segment Label and ROI Name are LO: at most 64 characters."""


@dataclass(frozen=True)
class StructureCoding:
    """How a structure is coded: SNOMED CT category and type, RT ROI Interpreted Type."""

    category: Code
    type: Code
    rt_roi_type: str


_ANATOMY = codes.SCT.AnatomicalStructure
_CODINGS: dict[str, StructureCoding] = {
    "liver": StructureCoding(_ANATOMY, codes.SCT.Liver, "ORGAN"),
    "tumour": StructureCoding(
        codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm, "GTV"
    ),
    "portal_vein": StructureCoding(_ANATOMY, codes.SCT.PortalVein, "ORGAN"),
    "hepatic_veins": StructureCoding(_ANATOMY, codes.SCT.HepaticVein, "ORGAN"),
    "vessels": StructureCoding(_ANATOMY, codes.SCT.BloodVessel, "ORGAN"),
    "ivc": StructureCoding(_ANATOMY, codes.SCT.InferiorVenaCava, "ORGAN"),
    "aorta": StructureCoding(_ANATOMY, codes.SCT.Aorta, "ORGAN"),
    "bone": StructureCoding(_ANATOMY, codes.SCT.Bone, "ORGAN"),
    # SNOMED CT 9846003 / 18639004: right / left kidney structure (not in pydicom's dictionary).
    "kidney_right": StructureCoding(_ANATOMY, Code("9846003", "SCT", "Right kidney"), "ORGAN"),
    "kidney_left": StructureCoding(_ANATOMY, Code("18639004", "SCT", "Left kidney"), "ORGAN"),
    "spleen": StructureCoding(_ANATOMY, codes.SCT.Spleen, "ORGAN"),
    "gallbladder": StructureCoding(_ANATOMY, codes.SCT.Gallbladder, "ORGAN"),
}
_GENERIC = StructureCoding(codes.SCT.Tissue, codes.SCT.Tissue, "")

#: Default display colours (RGB 0-255) by structure name; others cycle through _PALETTE.
_COLOURS: dict[str, tuple[int, int, int]] = {
    "liver": (221, 130, 101),
    "tumour": (255, 255, 0),
    "portal_vein": (0, 151, 206),
    "hepatic_veins": (0, 81, 200),
    "vessels": (0, 120, 210),
    "ivc": (0, 60, 180),
    "aorta": (224, 97, 76),
    "bone": (241, 214, 145),
    "kidney_right": (185, 102, 83),
    "kidney_left": (185, 102, 83),
    "spleen": (157, 108, 162),
}
_PALETTE = ((128, 174, 128), (216, 101, 79), (111, 184, 210), (230, 220, 70), (183, 156, 220))


def structure_coding(name: str) -> StructureCoding:
    """SNOMED CT category and type codes of structure ``name`` (``Tissue`` if unknown)."""
    return _CODINGS.get(name, _GENERIC)


def default_colour(name: str, index: int) -> tuple[int, int, int]:
    """Display colour (RGB 0-255) of structure ``name``, the ``index``-th segment."""
    return _COLOURS.get(name, _PALETTE[index % len(_PALETTE)])


@dataclass(frozen=True)
class DicomSegment:
    """One structure to export.

    Attributes
    ----------
    name : str
        Segment label / ROI name (at most 64 characters).
    mask : SimpleITK.Image
        Binary mask (0/1) on the scan's grid, LPS geometry.
    algorithm_type : str
        ``MANUAL``, ``SEMIAUTOMATIC`` (seeded methods) or ``AUTOMATIC``.
    algorithm_name : str
        Name of the method that made it (Algorithm Name; unused for ``MANUAL``).
    color_rgb : tuple of int or None
        Display colour (0-255); ``None`` for the structure's default.
    """

    name: str
    mask: sitk.Image
    algorithm_type: str = "SEMIAUTOMATIC"
    algorithm_name: str = "surgplan"
    color_rgb: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > MAX_LABEL_CHARS or "\\" in self.name:
            raise DicomExportError(
                f"segment name {self.name!r} must have 1 to {MAX_LABEL_CHARS} characters, no '\\'"
            )
        if self.algorithm_type not in ALGORITHM_TYPES:
            raise DicomExportError(
                f"segment {self.name!r}: algorithm type {self.algorithm_type!r} is not one of "
                f"{ALGORITHM_TYPES}"
            )
        if self.color_rgb is not None and (
            len(self.color_rgb) != 3 or not all(0 <= int(c) <= 255 for c in self.color_rgb)
        ):
            raise DicomExportError(
                f"segment {self.name!r}: colour must be 3 values in 0..255, got {self.color_rgb}"
            )


def check_segments(segments: Sequence[DicomSegment]) -> None:
    """Refuse an empty list or repeated names (one segment per structure)."""
    if not segments:
        raise DicomExportError("no segments to export; give at least one structure")
    names = [s.name for s in segments]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DicomExportError(f"segment names must be unique, repeated: {repeated}")


@dataclass(frozen=True)
class SourceSeries:
    """A single-frame image series ordered along its normal, with its voxel grid (LPS mm).

    Attributes
    ----------
    datasets : tuple of pydicom.Dataset
        The slices, ``datasets[k]`` at grid index ``k``.
    size : tuple of int
        Grid size ``(columns, rows, slices)``.
    origin, spacing : tuple of float
        Position of voxel (0, 0, 0) and voxel size ``(column, row, slice)``, mm.
    direction : tuple of float
        Direction cosines, row-major 3x3 as SimpleITK (columns: row, column, normal).
    """

    datasets: tuple[Dataset, ...]
    size: tuple[int, int, int]
    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, ...]

    @property
    def sop_instance_uids(self) -> tuple[str, ...]:
        """SOP Instance UIDs in slice order."""
        return tuple(str(ds.SOPInstanceUID) for ds in self.datasets)

    def frames(self, segment: DicomSegment) -> np.ndarray:
        """The segment's mask as ``(slices, rows, columns)`` uint8 0/1, frame ``k`` on slice ``k``.

        Raises
        ------
        DicomExportError
            If the mask is not on the series' grid, not binary, or empty.
        """
        mask = right_handed(segment.mask)
        on_grid = (
            mask.GetDimension() == 3
            and mask.GetSize() == self.size
            and np.allclose(mask.GetOrigin(), self.origin, atol=GRID_ATOL)
            and np.allclose(mask.GetSpacing(), self.spacing, atol=GRID_ATOL)
            and np.allclose(mask.GetDirection(), self.direction, atol=GRID_ATOL)
        )
        if not on_grid:
            raise DicomExportError(
                f"mask of segment {segment.name!r} is not on the source series' grid: size "
                f"{mask.GetSize()} origin {_rounded(mask.GetOrigin())} spacing "
                f"{_rounded(mask.GetSpacing())}; expected size {self.size} origin "
                f"{_rounded(self.origin)} spacing {_rounded(self.spacing)}"
            )
        values = sitk.GetArrayFromImage(mask)
        present = np.unique(values)
        if not np.all(np.isin(present, (0, 1))):
            raise DicomExportError(
                f"mask of segment {segment.name!r} is not binary: values {present[:6].tolist()}"
            )
        if not present.any():
            raise DicomExportError(f"mask of segment {segment.name!r} is empty (no voxel set)")
        return values.astype(np.uint8)


def _rounded(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(float(v), 3) for v in values)


def _read(source: Dataset | str | os.PathLike[str]) -> Dataset:
    if isinstance(source, Dataset):
        return source
    try:
        return pydicom.dcmread(source)
    except (pydicom.errors.InvalidDicomError, OSError) as error:
        raise DicomExportError(f"source slice {source} is not readable DICOM: {error}") from None


def _common(datasets: Sequence[Dataset], keyword: str) -> object:
    """The value of ``keyword`` shared by every dataset; DicomExportError otherwise."""
    values = {str(ds.get(keyword, "")) for ds in datasets}
    if len(values) != 1 or values == {""}:
        raise DicomExportError(
            f"source series must share one non-empty {keyword}, got {sorted(values)[:3]}"
        )
    return datasets[0].get(keyword)


def load_source_series(sources: Sequence[Dataset | str | os.PathLike[str]]) -> SourceSeries:
    """Read and order the source series of a SEG or RTSTRUCT; recover its voxel grid.

    Parameters
    ----------
    sources
        The series' slices (datasets or file paths), in any order.

    Raises
    ------
    DicomExportError
        If there are no slices, they belong to different series or frames of reference, differ
        in orientation, size or pixel spacing, or are not evenly spaced along the normal.
    """
    if not sources:
        raise DicomExportError("no source slices given; the SEG/RTSTRUCT needs its source series")
    datasets = [_read(s) for s in sources]
    for keyword in ("SeriesInstanceUID", "FrameOfReferenceUID", "Rows", "Columns"):
        _common(datasets, keyword)
    orientation = np.array([[float(v) for v in ds.ImageOrientationPatient] for ds in datasets])
    pixel = np.array([[float(v) for v in ds.PixelSpacing] for ds in datasets])
    if np.ptp(orientation, axis=0).max() > GRID_ATOL or np.ptp(pixel, axis=0).max() > GRID_ATOL:
        raise DicomExportError("source slices differ in orientation or pixel spacing")
    row, column = orientation[0, :3], orientation[0, 3:]
    normal = np.cross(row, column)
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    steps = np.diff(positions, axis=0)
    dz = float(np.linalg.norm(steps[0])) if len(steps) else float(datasets[0].SliceThickness)
    expected = positions[0] + np.outer(np.arange(len(positions)), normal * dz)
    if dz <= 0 or not np.allclose(positions, expected, atol=10 * GRID_ATOL):
        raise DicomExportError(
            "source slices are not evenly spaced along the slice normal (or repeat a position)"
        )
    first = datasets[order[0]]
    return SourceSeries(
        datasets=tuple(datasets[i] for i in order),
        size=(int(first.Columns), int(first.Rows), len(datasets)),
        origin=tuple(float(v) for v in positions[0]),
        spacing=(float(pixel[0, 1]), float(pixel[0, 0]), dz),
        direction=tuple(float(v) for v in np.column_stack([row, column, normal]).ravel()),
    )


def require_case_series(source: SourceSeries, uids: CaseDicomUids) -> None:
    """Refuse a source series other than the case's de-identified one (wrong UIDs)."""
    first = source.datasets[0]
    if first.SeriesInstanceUID != uids.series or first.StudyInstanceUID != uids.study:
        raise DicomExportError(
            f"source series {first.SeriesInstanceUID} is not the case's de-identified series "
            f"{uids.series}; export it with write_dicom_series (surgplan export --dicom) first"
        )


def case_source_series(
    sources: Sequence[Dataset | str | os.PathLike[str]],
    segments: Sequence[DicomSegment],
    uids: CaseDicomUids,
) -> SourceSeries:
    """Check the segments of a SEG or RTSTRUCT and read their source series, the case's.

    Raises
    ------
    DicomExportError
        As :func:`check_segments`, :func:`load_source_series` and :func:`require_case_series`.
    """
    check_segments(segments)
    source = load_source_series(sources)
    require_case_series(source, uids)
    return source


def output_file(out_path: str | os.PathLike[str]) -> Path:
    """``out_path`` as a path, refused when its folder does not exist."""
    out = Path(out_path)
    if not out.parent.is_dir():
        raise DicomExportError(f"folder of {out} does not exist")
    return out
