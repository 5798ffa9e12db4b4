"""Read a DICOM series from a folder, with the checks a CT import needs.

The folder is scanned with pydicom (headers only, plus a pixel-data length check), files are
grouped by SeriesInstanceUID, the chosen series is sorted by position along the slice normal and
checked for uniform spacing and missing slices; the voxels are then read by SimpleITK's series
reader from that sorted file list, so origin, spacing and direction are exactly SimpleITK's.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from imaging.errors import DicomSeriesError, ImageReadError

#: Relative tolerance on slice spacing before a series is called non-uniform.
SLICE_SPACING_RTOL = 0.01


@dataclass(frozen=True)
class SeriesSummary:
    """One DICOM series found in a folder (no patient identifiers)."""

    series_uid: str
    n_files: int
    modality: str | None
    description: str | None


@dataclass(frozen=True)
class DicomVolume:
    """A DICOM series read as a 3-D image, with de-identified facts about its origin."""

    image: sitk.Image
    series_uid: str
    modality: str | None
    manufacturer: str | None
    n_slices: int
    slice_spacing_mm: float


@dataclass(frozen=True)
class _SliceHeader:
    path: Path
    series_uid: str
    position: np.ndarray
    orientation: np.ndarray
    modality: str | None
    description: str | None
    manufacturer: str | None


def _expected_pixel_bytes(ds: pydicom.Dataset) -> int:
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    return int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 8 * samples * frames


def _read_header(path: Path) -> _SliceHeader | None:
    """Header of one file; ``None`` if it is not DICOM; ImageReadError if it is broken."""
    try:
        ds = pydicom.dcmread(path, force=False)
    except InvalidDicomError:
        return None
    except Exception as error:  # pydicom raises many types on truncated files
        raise ImageReadError(f"DICOM file {path.name} is corrupt or truncated: {error}") from None
    if "PixelData" not in ds:
        return None  # DICOMDIR, structured reports, presentation states...
    try:
        uncompressed = not ds.file_meta.TransferSyntaxUID.is_compressed
        if uncompressed and len(ds.PixelData) < _expected_pixel_bytes(ds):
            raise ImageReadError(
                f"DICOM file {path.name} is truncated: pixel data has {len(ds.PixelData)} bytes, "
                f"expected {_expected_pixel_bytes(ds)}"
            )
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
    except ImageReadError:
        raise
    except (AttributeError, KeyError, ValueError, TypeError) as error:
        raise ImageReadError(
            f"DICOM file {path.name} lacks usable geometry (ImagePositionPatient/"
            f"ImageOrientationPatient/pixel description): {error}"
        ) from None
    return _SliceHeader(
        path=path,
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        position=position,
        orientation=orientation,
        modality=ds.get("Modality"),
        description=ds.get("SeriesDescription"),
        manufacturer=ds.get("Manufacturer"),
    )


def _scan_folder(folder: Path) -> dict[str, list[_SliceHeader]]:
    if not folder.is_dir():
        raise ImageReadError(f"DICOM folder {folder} does not exist or is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DicomSeriesError(f"folder {folder} is empty: no DICOM files to import")
    series: dict[str, list[_SliceHeader]] = defaultdict(list)
    for path in files:
        header = _read_header(path)
        if header is not None:
            series[header.series_uid].append(header)
    if not series:
        raise DicomSeriesError(
            f"folder {folder} holds {len(files)} file(s) but no DICOM image (e.g. {files[0].name})"
        )
    return series


def list_series(folder: str | os.PathLike[str]) -> list[SeriesSummary]:
    """List the DICOM image series in a folder (searched recursively).

    Parameters
    ----------
    folder
        Folder holding DICOM files.

    Returns
    -------
    list of SeriesSummary
        One entry per SeriesInstanceUID, largest series first.
    """
    series = _scan_folder(Path(folder))
    summaries = [
        SeriesSummary(uid, len(h), h[0].modality, h[0].description) for uid, h in series.items()
    ]
    return sorted(summaries, key=lambda s: -s.n_files)


def _sort_and_check(headers: list[_SliceHeader], folder: Path) -> tuple[list[Path], float]:
    orientation = headers[0].orientation
    for header in headers[1:]:
        if not np.allclose(header.orientation, orientation, atol=1e-4):
            raise DicomSeriesError(
                f"series in {folder} mixes slice orientations ({header.path.name} differs)"
            )
    normal = np.cross(orientation[:3], orientation[3:])
    distances = np.array([float(h.position @ normal) for h in headers])
    order = np.argsort(distances, kind="stable")
    distances = distances[order]
    ordered = [headers[i].path for i in order]
    if len(ordered) < 2:
        raise DicomSeriesError(f"series in {folder} has a single slice; a 3-D volume needs >= 2")
    gaps = np.diff(distances)
    if np.any(gaps < 1e-6):
        i = int(np.argmin(gaps))
        raise DicomSeriesError(
            f"series in {folder} has two slices at the same position "
            f"({ordered[i].name}, {ordered[i + 1].name}, at {distances[i]:.3f} mm)"
        )
    spacing = float(np.median(gaps))
    if np.any(np.abs(gaps - spacing) > SLICE_SPACING_RTOL * spacing):
        i = int(np.argmax(np.abs(gaps - spacing)))
        missing = round(gaps[i] / spacing) - 1
        if missing >= 1 and abs(gaps[i] - (missing + 1) * spacing) <= SLICE_SPACING_RTOL * spacing:
            raise DicomSeriesError(
                f"series in {folder} is missing {missing} slice(s) between positions "
                f"{distances[i]:.2f} mm and {distances[i + 1]:.2f} mm (spacing {spacing:.3f} mm)"
            )
        raise DicomSeriesError(
            f"series in {folder} has non-uniform slice spacing: {gaps[i]:.3f} mm between "
            f"{ordered[i].name} and {ordered[i + 1].name}, typical {spacing:.3f} mm"
        )
    return ordered, spacing


def read_dicom_series(
    folder: str | os.PathLike[str], *, series_uid: str | None = None
) -> DicomVolume:
    """Read one DICOM series from a folder as a 3-D image in LPS millimetres.

    Parameters
    ----------
    folder
        Folder holding the series (searched recursively).
    series_uid
        SeriesInstanceUID to read when the folder holds several series.

    Returns
    -------
    DicomVolume
        The image (pixel values rescaled to e.g. HU, geometry exactly as SimpleITK's series reader
        gives it) and non-identifying facts. The image carries no DICOM metadata.

    Raises
    ------
    DicomSeriesError
        Empty folder, no DICOM images, several series and none chosen, unknown ``series_uid``,
        mixed orientations, duplicate positions, missing slices or non-uniform spacing.
    ImageReadError
        A truncated or corrupt file (named in the message).
    """
    folder = Path(folder)
    series = _scan_folder(folder)
    if series_uid is None:
        if len(series) > 1:
            listing = "; ".join(f"{s.series_uid} ({s.n_files} files)" for s in list_series(folder))
            raise DicomSeriesError(
                f"folder {folder} holds {len(series)} DICOM series; "
                f"choose one with --series: {listing}"
            )
        series_uid = next(iter(series))
    if series_uid not in series:
        raise DicomSeriesError(f"series {series_uid} not found in {folder}")
    headers = series[series_uid]
    ordered, spacing = _sort_and_check(headers, folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in ordered])
    reader.MetaDataDictionaryArrayUpdateOff()
    reader.LoadPrivateTagsOff()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise ImageReadError(
            f"cannot read the DICOM series in {folder}: {str(error).strip().splitlines()[-1]}"
        ) from None
    return DicomVolume(
        image=image,
        series_uid=series_uid,
        modality=headers[0].modality,
        manufacturer=headers[0].manufacturer,
        n_slices=len(ordered),
        slice_spacing_mm=spacing,
    )
