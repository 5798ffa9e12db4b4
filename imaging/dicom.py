"""Read a DICOM series from a folder, with the checks a CT import needs.

The folder is scanned with pydicom (headers, plus pixel-data length and structure checks), files
are grouped by SeriesInstanceUID, the chosen series is sorted by position along the slice normal
and checked for uniform spacing and missing slices; the voxels are then read by SimpleITK's
series reader from that sorted file list, so origin, spacing and direction are SimpleITK's.

A series acquired with a tilted gantry (slice positions advancing out of the slice normal) is
resampled onto an orthogonal grid with the shear applied; non-orthonormal orientations, colour
slices, image files without (complete) pixel data and readable-slice counts that differ from
the file count are refused.

Messages never name a DICOM file or folder, nor quote a UID or a free-text tag (real exports
name files and folders after the patient): files are referred to by their place in the
folder's sorted listing ("file 12 of 40"), and pydicom's warnings are captured, not printed.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.uid import RLELossless

from imaging.dicom_terms import safe_modality
from imaging.errors import DicomSeriesError, ImageReadError

#: Relative tolerance on slice spacing before a series is called non-uniform.
SLICE_SPACING_RTOL = 0.01
#: Tolerance on the unit length and orthogonality of ImageOrientationPatient's two cosines.
ORIENTATION_ATOL = 1e-3
#: In-plane drift of the slices over the whole series, in pixels, above which it is a tilt.
TILT_MIN_SHIFT_PX = 0.1
#: Largest deviation (pixels) of a slice from the straight line of a tilted series.
TILT_LINE_TOL_PX = 0.5
#: Photometric interpretations accepted for grey-value (CT, MR, PET...) series.
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class SeriesSummary:
    """One DICOM series found in a folder.

    ``series_uid`` is the original UID (for choosing with ``series_uid=``); it is never
    written to a case or a message. ``description`` is always ``None`` (free text is not kept).
    """

    series_uid: str
    n_files: int
    modality: str | None
    description: str | None


@dataclass(frozen=True)
class DicomVolume:
    """A DICOM series read as a 3-D image, with de-identified facts about its origin.

    Attributes
    ----------
    image : SimpleITK.Image
        Rescaled voxels (e.g. HU), LPS mm, no metadata.
    series_uid : str
        The original SeriesInstanceUID (never stored in a case).
    modality : str or None
        A DICOM Modality defined term (``"CT"``, ``"MR"``...), ``"OT"`` for an unknown value,
        ``None`` when the files have none.
    manufacturer : None
        Not kept (free text); the field stays for compatibility.
    n_slices : int
        Slices read (equal to the image files of the series).
    slice_spacing_mm : float
        Spacing along the slice normal, mm.
    gantry_tilt_deg : float
        Tilt of the slice stack from the slice normal (0 unless the gantry was tilted; the
        image is then resampled onto an orthogonal grid).
    """

    image: sitk.Image
    series_uid: str
    modality: str | None
    manufacturer: str | None
    n_slices: int
    slice_spacing_mm: float
    gantry_tilt_deg: float = 0.0


@dataclass(frozen=True)
class _SliceHeader:
    path: Path
    ref: str
    series_uid: str
    position: np.ndarray
    orientation: np.ndarray
    pixel_spacing: tuple[float, float]
    modality: str | None


@contextmanager
def _captured_pydicom_messages() -> Iterator[list[str]]:
    """Capture pydicom's warnings and log records (they quote file names and tag values)."""
    captured: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record.getMessage())

    logger = logging.getLogger("pydicom")
    handler, propagate = _Collect(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield captured
        captured.extend(str(w.message) for w in caught)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _expected_pixel_bytes(ds: pydicom.Dataset) -> int:
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    return int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 8 * samples * frames


def _looks_like_image(ds: pydicom.Dataset) -> bool:
    """Whether a dataset without pixel data still has an image's header (a truncated file)."""
    meta = getattr(ds, "file_meta", None)
    classes = [ds.get("SOPClassUID"), meta.get("MediaStorageSOPClassUID") if meta else None]
    named = [str(getattr(uid, "name", "")) for uid in classes if uid is not None]
    return any("Image Storage" in n for n in named) or ("Rows" in ds and "Columns" in ds)


def _check_pixel_data(ds: pydicom.Dataset, ref: str) -> None:
    """Refuse truncated or structurally broken pixel data (plain and encapsulated)."""
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_encapsulated:
        if len(ds.PixelData) < _expected_pixel_bytes(ds):
            raise ImageReadError(
                f"DICOM {ref} is truncated: pixel data has {len(ds.PixelData)} bytes, "
                f"expected {_expected_pixel_bytes(ds)}"
            )
        return
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    try:
        encoded = list(generate_frames(ds.PixelData, number_of_frames=frames))
    except Exception as error:  # pydicom raises ValueError/KeyError/struct errors here
        raise ImageReadError(
            f"DICOM {ref} has broken encapsulated pixel data ({type(error).__name__})"
        ) from None
    if len(encoded) != frames:
        raise ImageReadError(f"DICOM {ref} holds {len(encoded)} of its {frames} frame(s)")
    if syntax != RLELossless:  # JPEG, JPEG-LS, JPEG 2000, HTJ2K end with the EOC/EOI marker
        for frame in encoded:
            if not frame.rstrip(b"\x00").endswith(b"\xff\xd9"):
                raise ImageReadError(
                    f"DICOM {ref} is truncated: its compressed frame lacks the end-of-image marker"
                )


def _orientation(ds: pydicom.Dataset, ref: str) -> np.ndarray:
    """ImageOrientationPatient, refused unless its two cosines are unit and orthogonal."""
    orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
    if orientation.shape != (6,) or not np.all(np.isfinite(orientation)):
        raise ImageReadError(f"DICOM {ref}: ImageOrientationPatient must hold 6 finite numbers")
    row, col = orientation[:3], orientation[3:]
    norms = (float(np.linalg.norm(row)), float(np.linalg.norm(col)))
    dot = float(row @ col)
    if max(abs(norms[0] - 1), abs(norms[1] - 1), abs(dot)) > ORIENTATION_ATOL:
        raise ImageReadError(
            f"DICOM {ref}: ImageOrientationPatient is not orthonormal (row and column cosine "
            f"lengths {norms[0]:.4f}, {norms[1]:.4f}, dot product {dot:.4f}; expected 1, 1, 0)"
        )
    return orientation


def _check_monochrome(ds: pydicom.Dataset, ref: str) -> None:
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if samples != 1 or photometric not in MONOCHROME:
        shown = photometric if photometric.replace("_", "").isalnum() else "unknown"
        raise ImageReadError(
            f"DICOM {ref} is a colour image ({samples} samples per pixel, photometric "
            f"interpretation {shown[:16]}); a CT, MR or PET series must be monochrome"
        )


def _read_header(path: Path, ref: str) -> _SliceHeader | None:
    """Header of one file; ``None`` if it is not a DICOM image; ImageReadError if broken."""
    with _captured_pydicom_messages():
        try:
            ds = pydicom.dcmread(path, force=False)
        except InvalidDicomError:
            if path.suffix.lower() == ".dcm":  # named as DICOM: a file cut before its header
                raise ImageReadError(
                    f"DICOM {ref} is named .dcm but has no DICOM header (truncated or corrupt)"
                ) from None
            return None
        except Exception as error:  # pydicom raises many types on truncated files
            raise ImageReadError(
                f"DICOM {ref} is corrupt or truncated ({type(error).__name__})"
            ) from None
        if "PixelData" not in ds:
            if _looks_like_image(ds):
                raise ImageReadError(f"DICOM {ref} is truncated: an image header, no pixel data")
            return None  # DICOMDIR, structured reports, presentation states...
        if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
            raise ImageReadError(
                f"DICOM {ref} is marked BurnedInAnnotation YES: its pixels may show patient "
                "identity; export the series without burned-in text"
            )
        try:
            _check_monochrome(ds, ref)
            _check_pixel_data(ds, ref)
            position = np.array([float(v) for v in ds.ImagePositionPatient])
            orientation = _orientation(ds, ref)
            pixel_spacing = tuple(float(v) for v in ds.PixelSpacing)
        except ImageReadError:
            raise
        except (AttributeError, KeyError, ValueError, TypeError):
            raise ImageReadError(
                f"DICOM {ref} lacks usable geometry (ImagePositionPatient, "
                "ImageOrientationPatient, PixelSpacing or the pixel description)"
            ) from None
    if position.shape != (3,) or len(pixel_spacing) != 2 or not np.all(np.isfinite(position)):
        raise ImageReadError(f"DICOM {ref}: ImagePositionPatient or PixelSpacing is malformed")
    return _SliceHeader(
        path=path,
        ref=ref,
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        position=position,
        orientation=orientation,
        pixel_spacing=(pixel_spacing[0], pixel_spacing[1]),
        modality=safe_modality(ds.get("Modality")),
    )


def _scan_folder(folder: Path) -> dict[str, list[_SliceHeader]]:
    if not folder.is_dir():
        raise ImageReadError("the DICOM folder given does not exist or is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DicomSeriesError("the DICOM folder is empty: no DICOM files to import")
    series: dict[str, list[_SliceHeader]] = defaultdict(list)
    for index, path in enumerate(files, start=1):
        header = _read_header(path, f"file {index} of {len(files)}")
        if header is not None:
            series[header.series_uid].append(header)
    if not series:
        raise DicomSeriesError(f"the DICOM folder holds {len(files)} file(s) but no DICOM image")
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
        One entry per SeriesInstanceUID, largest series first (ties in UID order); the
        1-based place in this list is what ``read_dicom_series(series_uid="2")`` accepts.
    """
    return _summaries(_scan_folder(Path(folder)))


def _summaries(series: dict[str, list[_SliceHeader]]) -> list[SeriesSummary]:
    summaries = [SeriesSummary(uid, len(h), h[0].modality, None) for uid, h in series.items()]
    return sorted(summaries, key=lambda s: (-s.n_files, s.series_uid))


def _choose_series(series: dict[str, list[_SliceHeader]], series_uid: str | None) -> str:
    """The UID of the series asked for (by UID or 1-based place in :func:`list_series`)."""
    summaries = _summaries(series)
    if series_uid is None:
        if len(series) == 1:
            return summaries[0].series_uid
        listing = "; ".join(
            f"{i}: {s.modality or 'unknown modality'}, {s.n_files} files"
            for i, s in enumerate(summaries, start=1)
        )
        raise DicomSeriesError(
            f"the DICOM folder holds {len(series)} DICOM series; choose one with --series N "
            f"(N as listed: {listing})"
        )
    if series_uid in series:
        return series_uid
    if series_uid.strip().isdigit() and 1 <= int(series_uid) <= len(summaries):
        return summaries[int(series_uid) - 1].series_uid
    raise DicomSeriesError(
        f"the requested series is not in the DICOM folder; it holds {len(series)} series: "
        f"choose --series 1..{len(series)} (largest first) or a SeriesInstanceUID"
    )


@dataclass(frozen=True)
class _Stack:
    """A sorted, checked slice stack: files, normal spacing and in-plane shear per slice."""

    files: list[Path]
    spacing_mm: float
    normal: np.ndarray
    shift_per_slice_mm: np.ndarray
    tilt_deg: float


def _sort_and_check(headers: list[_SliceHeader]) -> _Stack:
    orientation = headers[0].orientation
    for header in headers[1:]:
        if not np.allclose(header.orientation, orientation, atol=1e-4):
            raise DicomSeriesError(f"the series mixes slice orientations ({header.ref} differs)")
    normal = np.cross(orientation[:3], orientation[3:])
    normal /= np.linalg.norm(normal)
    distances = np.array([float(h.position @ normal) for h in headers])
    order = np.argsort(distances, kind="stable")
    distances = distances[order]
    ordered = [headers[i] for i in order]
    if len(ordered) < 2:
        raise DicomSeriesError("the series has a single slice; a 3-D volume needs >= 2")
    gaps = np.diff(distances)
    if np.any(gaps < 1e-6):
        i = int(np.argmin(gaps))
        raise DicomSeriesError(
            f"the series has two slices at the same position ({ordered[i].ref} and "
            f"{ordered[i + 1].ref}, at {distances[i]:.3f} mm)"
        )
    spacing = float(np.median(gaps))
    if np.any(np.abs(gaps - spacing) > SLICE_SPACING_RTOL * spacing):
        i = int(np.argmax(np.abs(gaps - spacing)))
        missing = round(gaps[i] / spacing) - 1
        if missing >= 1 and abs(gaps[i] - (missing + 1) * spacing) <= SLICE_SPACING_RTOL * spacing:
            raise DicomSeriesError(
                f"the series is missing {missing} slice(s) between positions "
                f"{distances[i]:.2f} mm and {distances[i + 1]:.2f} mm (spacing {spacing:.3f} mm)"
            )
        raise DicomSeriesError(
            f"the series has non-uniform slice spacing: {gaps[i]:.3f} mm between "
            f"{ordered[i].ref} and {ordered[i + 1].ref}, typical {spacing:.3f} mm"
        )
    shift, tilt = _shear(ordered, distances, normal)
    return _Stack([h.path for h in ordered], spacing, normal, shift, tilt)


def _shear(
    ordered: list[_SliceHeader], distances: np.ndarray, normal: np.ndarray
) -> tuple[np.ndarray, float]:
    """In-plane shift per slice (mm) and tilt angle (degrees) of a sorted stack.

    Zero when the drift over the whole stack is under :data:`TILT_MIN_SHIFT_PX` pixels;
    refused when the slices do not lie on one straight line.
    """
    positions = np.array([h.position for h in ordered])
    offsets = positions - positions[0]
    in_plane = offsets - np.outer(offsets @ normal, normal)
    along = distances - distances[0]
    pixel = min(ordered[0].pixel_spacing)
    if float(np.max(np.linalg.norm(in_plane, axis=1))) < TILT_MIN_SHIFT_PX * pixel:
        return np.zeros(3), 0.0
    per_mm = np.linalg.lstsq(along[:, None], in_plane, rcond=None)[0][0]
    residual = float(np.max(np.linalg.norm(in_plane - np.outer(along, per_mm), axis=1)))
    if residual > TILT_LINE_TOL_PX * pixel:
        raise DicomSeriesError(
            f"the series' slice positions do not lie on a straight line (a slice is "
            f"{residual:.2f} mm off it); cannot correct it as a gantry tilt"
        )
    step = float(np.median(np.diff(along)))
    tilt = math.degrees(math.atan(float(np.linalg.norm(per_mm))))
    return per_mm * step, tilt


@contextmanager
def _itk_warnings_off() -> Iterator[None]:
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def _scrub(text: str, paths: list[Path]) -> str:
    """``text`` with every file path and name of ``paths`` replaced by its place in the list."""
    for number, path in sorted(enumerate(paths, 1), key=lambda p: -len(str(p[1]))):
        text = text.replace(str(path), f"<file {number}>")
    for number, path in sorted(enumerate(paths, 1), key=lambda p: -len(p[1].name)):
        text = text.replace(path.name, f"<file {number}>")
    for parent in {p.parent for p in paths}:
        text = text.replace(str(parent), "<folder>")
    return text


def _read_voxels(stack: _Stack) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in stack.files])
    reader.MetaDataDictionaryArrayUpdateOff()
    reader.LoadPrivateTagsOff()
    try:
        with _itk_warnings_off():
            image = reader.Execute()
    except RuntimeError as error:
        lines = str(error).strip().splitlines() or ["unreadable"]
        detail = re.sub(r"^(itk::)?ITK ERROR: \w+\(0x[0-9a-f]+\): ", "", lines[-1].strip())
        detail = _scrub(detail, stack.files)[:200]
        raise ImageReadError(
            f"cannot read the DICOM series ({len(stack.files)} files): {detail}"
        ) from None
    if image.GetDimension() != 3 or image.GetSize()[2] != len(stack.files):
        depth = image.GetSize()[2] if image.GetDimension() == 3 else 1
        raise ImageReadError(
            f"the DICOM series has {len(stack.files)} image files but {depth} slices could "
            "be read; expected one slice per file"
        )
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageReadError("the DICOM series has colour pixels; a monochrome series is needed")
    return image


def _check_itk_geometry(image: sitk.Image, orientation: np.ndarray) -> None:
    """Refuse if SimpleITK's in-plane directions differ from ImageOrientationPatient."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    if not np.allclose(direction[:, :2].T, orientation.reshape(2, 3), atol=1e-3):
        raise ImageReadError(
            "SimpleITK read the DICOM series with directions that differ from its "
            "ImageOrientationPatient; refusing a silently changed geometry"
        )


def _untilt(image: sitk.Image, stack: _Stack, origin: np.ndarray) -> sitk.Image:
    """Resample a gantry-tilted stack onto an orthogonal grid covering every slice.

    Slice ``k`` lies at normal distance ``k * s`` and is shifted in-plane by ``k * t``
    (``t`` = :attr:`_Stack.shift_per_slice_mm`). The stack is first given the orthogonal
    geometry (``origin``, in-plane cosines, normal, spacing ``s``), then resampled through
    the shear ``x -> x - t (n . (x - origin)) / s`` that maps true positions to it.
    """
    direction = np.array(image.GetDirection()).reshape(3, 3)
    direction[:, 2] = stack.normal
    spacing = np.array(image.GetSpacing(), dtype=float)
    spacing[2] = stack.spacing_mm
    stacked = sitk.Image(image)
    stacked.SetDirection(direction.ravel().tolist())
    stacked.SetSpacing(spacing.tolist())
    stacked.SetOrigin(origin.tolist())
    size = np.array(image.GetSize())
    total = stack.shift_per_slice_mm * (size[2] - 1)  # in-plane drift of the last slice
    drift_px = np.array([total @ direction[:, 0], total @ direction[:, 1]]) / spacing[:2]
    out_origin = origin + direction[:, :2] @ (np.minimum(drift_px, 0) * spacing[:2])
    out_size = size.copy()
    out_size[:2] += np.ceil(np.abs(drift_px) - 1e-6).astype(int)
    shear = sitk.AffineTransform(3)
    matrix = np.eye(3) - np.outer(stack.shift_per_slice_mm, stack.normal) / stack.spacing_mm
    shear.SetMatrix(matrix.ravel().tolist())
    shear.SetCenter(origin.tolist())
    source = sitk.GetArrayViewFromImage(image)
    resampled = sitk.Resample(
        stacked,
        [int(v) for v in out_size],
        shear,
        sitk.sitkLinear,
        out_origin.tolist(),
        spacing.tolist(),
        direction.ravel().tolist(),
        float(np.min(source)),  # background: the scan's lowest value (air)
        sitk.sitkFloat64,
    )
    values = sitk.GetArrayViewFromImage(resampled)
    if np.issubdtype(source.dtype, np.integer):
        values = np.rint(values)  # round, not truncate, back to the stored type
    result = sitk.GetImageFromArray(values.astype(source.dtype))
    result.CopyInformation(resampled)
    return result


def read_dicom_series(
    folder: str | os.PathLike[str], *, series_uid: str | None = None
) -> DicomVolume:
    """Read one DICOM series from a folder as a 3-D image in LPS millimetres.

    Parameters
    ----------
    folder
        Folder holding the series (searched recursively).
    series_uid
        The series to read when the folder holds several: its SeriesInstanceUID, or its
        1-based place in :func:`list_series` (``"2"``).

    Returns
    -------
    DicomVolume
        The image (pixel values rescaled to e.g. HU, geometry as SimpleITK's series reader
        gives it; a gantry-tilted series resampled onto an orthogonal grid) and
        non-identifying facts. The image carries no DICOM metadata.

    Raises
    ------
    DicomSeriesError
        Empty folder, no DICOM images, several series and none chosen, unknown series,
        mixed orientations, duplicate positions, missing slices, non-uniform spacing, or
        slice positions off a straight line.
    ImageReadError
        A truncated or corrupt file, a colour slice, burned-in annotation, a non-orthonormal
        orientation, or fewer readable slices than files (the file is named by its place in
        the folder).
    """
    folder = Path(folder)
    series = _scan_folder(folder)
    chosen = _choose_series(series, series_uid)
    headers = series[chosen]
    stack = _sort_and_check(headers)
    image = _read_voxels(stack)
    first = next(h for h in headers if h.path == stack.files[0])
    _check_itk_geometry(image, first.orientation)
    if stack.tilt_deg > 0.0:
        image = _untilt(image, stack, first.position)
    elif abs(image.GetSpacing()[2] - stack.spacing_mm) > SLICE_SPACING_RTOL * stack.spacing_mm:
        raise ImageReadError(
            f"SimpleITK read the DICOM series with slice spacing {image.GetSpacing()[2]:.3f} mm "
            f"but its positions are {stack.spacing_mm:.3f} mm apart"
        )
    for key in image.GetMetaDataKeys():
        image.EraseMetaData(key)
    return DicomVolume(
        image=image,
        series_uid=chosen,
        modality=headers[0].modality,
        manufacturer=None,
        n_slices=len(stack.files),
        slice_spacing_mm=stack.spacing_mm,
        gantry_tilt_deg=stack.tilt_deg,
    )
