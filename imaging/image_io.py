"""Read scans (DICOM folder, NIfTI, NRRD, MHA) into SimpleITK images, de-identified.

SimpleITK images are in LPS physical space (mm). NIfTI files store RAS in their header; ITK
converts to LPS when reading, so geometry here is always LPS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from imaging.dicom import read_dicom_series
from imaging.errors import ImageReadError

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
    """A scan read from disk, stripped of all metadata but its geometry."""

    image: sitk.Image
    source_kind: str
    modality: str | None


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
        Missing file, unknown ending, or a file that cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"image file {path} does not exist")
    if not image_suffix(path):
        known = ", ".join(IMAGE_SUFFIXES)
        raise ImageReadError(f"cannot read {path.name}: unknown image type (expected {known})")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
        raise ImageReadError(f"cannot read image {path}: {detail}") from None


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
        For anything that cannot be read as one 3-D scan.
    """
    source = Path(source)
    if source.is_dir():
        volume = read_dicom_series(source, series_uid=series_uid)
        image, kind, modality = volume.image, "dicom", volume.modality
    else:
        image, kind, modality = (
            read_image_file(source),
            IMAGE_SUFFIXES.get(image_suffix(source)),
            None,
        )
    if image.GetDimension() != 3:
        raise ImageReadError(f"{source} is a {image.GetDimension()}-D image; a 3-D scan is needed")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageReadError(f"{source} has vector pixels; a scalar (grey-value) scan is needed")
    return LoadedScan(image=strip_metadata(image), source_kind=kind or "image", modality=modality)


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
