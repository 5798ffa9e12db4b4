"""Read scans (DICOM folder, NIfTI, NRRD, MHA) into SimpleITK images, de-identified.

SimpleITK images are in LPS physical space (mm). NIfTI files store RAS in their header; ITK
converts to LPS when reading, so geometry here is always LPS.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from imaging.dicom import read_dicom_series
from imaging.errors import ImageReadError
from imaging.grid import require_orthonormal_direction
from imaging.nifti_check import check_nifti_file

#: File endings read as single-file images, and the kind each is recorded as.
IMAGE_SUFFIXES: dict[str, str] = {
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".mha": "mha",
    ".mhd": "mha",
}


@dataclass(frozen=True)
class LoadedScan:
    """A scan read from disk, stripped of all metadata but its geometry.

    Attributes
    ----------
    image : SimpleITK.Image
        The voxels (finite) and geometry (LPS mm, orthonormal directions).
    source_kind : str
        ``"dicom"``, ``"nifti"``, ``"nrrd"`` or ``"mha"``.
    modality : str or None
        DICOM Modality defined term (``"OT"`` for an unknown value); ``None`` for image files.
    notes : tuple of str
        What the import changed and the user should know (e.g. a gantry tilt resampled).
    """

    image: sitk.Image
    source_kind: str
    modality: str | None
    notes: tuple[str, ...] = ()


def image_suffix(path: str | os.PathLike[str]) -> str:
    """Return the recognised image ending of ``path`` (``.nii.gz`` counts as one), or ``""``."""
    name = Path(path).name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return ""


def strip_metadata(image: sitk.Image) -> sitk.Image:
    """Copy of ``image`` with pixels and geometry only: no header keys (patient tags) survive.

    Parameters
    ----------
    image
        Any SimpleITK image.

    Returns
    -------
    sitk.Image
        Same voxels, origin, spacing and direction; empty metadata dictionary.
    """
    clean = sitk.Image(image)
    for key in clean.GetMetaDataKeys():
        clean.EraseMetaData(key)
    return clean


def read_image_file(path: str | os.PathLike[str]) -> sitk.Image:
    """Read a NIfTI, NRRD or MHA file as-is (metadata included).

    Raises
    ------
    ImageReadError
        Missing file, unknown ending, a file that cannot be decoded, a truncated NIfTI
        (plain or gzip), a sheared NIfTI sform, or a direction matrix that is not orthonormal.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"image file {path} does not exist")
    if not image_suffix(path):
        known = ", ".join(IMAGE_SUFFIXES)
        raise ImageReadError(f"cannot read {path.name}: unknown image type (expected {known})")
    if image_suffix(path) in (".nii", ".nii.gz"):
        check_nifti_file(path)  # ITK zero-fills truncated voxels and coerces a sheared sform
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise ImageReadError(f"cannot read image {path}: {_itk_reason(str(error))}") from None
    require_orthonormal_direction(image, f"image {path.name}")
    return image


def _itk_reason(text: str) -> str:
    """The informative part of an ITK read error (no C++ source line, no object address)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    lines = [re.sub(r"^(itk::)?ITK ERROR: \w+\(0x[0-9a-f]+\): ", "", line) for line in lines]
    lines = [line for line in lines if not line.startswith("Exception thrown in SimpleITK")]
    if not lines:
        return "unreadable"
    reason = lines[-1].removeprefix("[nrrd] ").strip()
    if "No such file or directory" in reason or "cannot be read" in reason:
        return "the file is corrupt or truncated (its voxel data could not be read)"
    reason = re.sub(r"^_?nrrd\w*: ", "", reason)  # teem's function name, e.g. _nrrdSizeCheck
    short = re.match(r"fread got only (\d+) \d+-sized things, not (\d+)", reason)
    if short:
        return (
            f"the file is truncated: {short[1]} of the header's {short[2]} voxel values are there"
        )
    short = re.match(r"expected (\d+) bytes but received (\d+)", reason)
    if short:
        return (
            f"the file is truncated or corrupt: {short[2]} of the header's {short[1]} bytes of "
            "voxel data could be decompressed"
        )
    if "ReadImageInformation" in text:
        return f"its header is invalid ({reason.rstrip('!')})"[:200]
    return reason[:200]


def count_non_finite(image: sitk.Image) -> int:
    """Number of NaN or infinite voxel values (every component counts; 0 for integer types)."""
    array = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(array.dtype, np.inexact):
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def require_finite(image: sitk.Image, what: str) -> None:
    """Raise :class:`ImageReadError` naming ``what`` and the count if any voxel is NaN or inf.

    Parameters
    ----------
    image
        The image to check.
    what
        How to name it in the message (a file name, or "the DICOM series").
    """
    bad = count_non_finite(image)
    if bad:
        total = int(np.prod(image.GetSize())) * image.GetNumberOfComponentsPerPixel()
        raise ImageReadError(
            f"{what} holds {bad} NaN or infinite voxel value(s) of {total}; every voxel "
            "must be a finite number"
        )


def load_scan(source: str | os.PathLike[str], *, series_uid: str | None = None) -> LoadedScan:
    """Read a scan from a DICOM folder or an image file, de-identified, as a 3-D image.

    Parameters
    ----------
    source
        A folder of DICOM files or a ``.nii``/``.nii.gz``/``.nrrd``/``.mha`` file.
    series_uid
        The series to read when a DICOM folder holds several.

    Returns
    -------
    LoadedScan
        The image with no metadata besides geometry, and where it came from.

    Raises
    ------
    ImageReadError, DicomSeriesError
        For anything that cannot be read as one 3-D scan of finite voxel values.
    """
    source = Path(source)
    notes: tuple[str, ...] = ()
    if source.is_dir():
        volume = read_dicom_series(source, series_uid=series_uid)
        image, kind, modality = volume.image, "dicom", volume.modality
        what = "the DICOM series"  # folder names of real exports carry patient names
        if volume.gantry_tilt_deg > 0:
            notes = (
                f"gantry tilt of {volume.gantry_tilt_deg:.2f} deg: slices resampled onto an "
                f"orthogonal grid ({volume.slice_spacing_mm:.3f} mm along the slice normal)",
            )
    else:
        image, kind, modality = (
            read_image_file(source),
            IMAGE_SUFFIXES.get(image_suffix(source)),
            None,
        )
        what = f"image {source.name}"
    if image.GetDimension() != 3:
        raise ImageReadError(f"{what} is a {image.GetDimension()}-D image; a 3-D scan is needed")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageReadError(f"{what} has vector pixels; a scalar (grey-value) scan is needed")
    if min(image.GetSize()) < 2:
        size = "x".join(str(n) for n in image.GetSize())
        raise ImageReadError(
            f"{what} is {size} voxels: one slice thick, a 2-D image; a 3-D scan is needed"
        )
    require_finite(image, what)
    return LoadedScan(
        image=strip_metadata(image), source_kind=kind or "image", modality=modality, notes=notes
    )


def write_image(image: sitk.Image, path: str | os.PathLike[str], *, compress: bool = True) -> None:
    """Write an image (NRRD, NIfTI or MHA chosen by the ending), metadata-free.

    Parameters
    ----------
    image
        Image to write.
    path
        Destination; the caller makes the write atomic (write to a temporary name, rename).
    compress
        Use the format's lossless compression.
    """
    try:
        sitk.WriteImage(strip_metadata(image), str(path), compress)
    except RuntimeError as error:
        raise ImageReadError(
            f"cannot write image {path}: {str(error).strip().splitlines()[-1]}"
        ) from None
