"""Write a case's scan as a de-identified DICOM CT series (one file per slice).

CT Image Storage, explicit VR little endian, uncompressed, signed 16-bit stored values with
Rescale Slope and Intercept (HU = slope * stored + intercept). Integer images whose range spans
at most 65536 values are stored exactly (slope 1); other images are scaled linearly onto the
int16 range (error at most half a slope).

Geometry: DICOM's patient coordinates are LPS millimetres, the space SimpleITK images live in,
so positions and cosines are written as they are. Slice ``k`` has Image Position (Patient) at
voxel ``(0, 0, k)``, Image Orientation (Patient) the image's first two direction columns, Pixel
Spacing ``[row spacing, column spacing]`` = ``[spacing_y, spacing_x]``. DICOM readers order
slices along the normal ``row x column``; an image whose third axis points the other way
(left-handed direction) is first flipped along that axis (:func:`right_handed`), which changes
no voxel's physical position.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian
from pydicom.valuerep import format_number_as_ds

from surgplan.atomic import fsync_file
from surgplan.dicom_identity import (
    MANUFACTURER,
    CaseDicomUids,
    DicomExportError,
    set_deidentified_patient_and_study,
    software_version,
)

INT16_MIN, INT16_MAX = -32768, 32767
SUPPORTED_MODALITIES = ("CT",)
DEFAULT_DESCRIPTION = "surgplan de-identified scan"


@dataclass(frozen=True)
class DicomSeriesExport:
    """What :func:`write_dicom_series` wrote.

    Attributes
    ----------
    folder : pathlib.Path
        The series folder.
    paths : tuple of pathlib.Path
        One file per slice, in slice order (along the normal ``row x column``).
    series_uid : str
        Series Instance UID.
    sop_instance_uids : tuple of str
        SOP Instance UID of each file, in the order of ``paths``.
    rescale_slope, rescale_intercept : float
        Value = slope * stored + intercept (HU for CT).
    """

    folder: Path
    paths: tuple[Path, ...]
    series_uid: str
    sop_instance_uids: tuple[str, ...]
    rescale_slope: float
    rescale_intercept: float


def right_handed(image: sitk.Image) -> sitk.Image:
    """``image`` with its third axis along ``x-axis x y-axis`` (flipped along k if needed).

    The flip reverses slice order and moves the origin, so every voxel keeps its physical
    (LPS mm) position; an image that is already right-handed is returned as is.
    """
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    if np.linalg.det(direction) > 0:
        return image
    return sitk.Flip(image, [False, False, True])


def _ds(value: float) -> str:
    """``value`` as a DICOM Decimal String (at most 16 characters)."""
    return format_number_as_ds(float(value))


def int16_encoding(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Stored int16 values, Rescale Slope and Rescale Intercept for ``values``.

    Parameters
    ----------
    values
        Voxel values (any numeric dtype), finite.

    Returns
    -------
    stored, slope, intercept
        ``values ~= slope * stored + intercept``: exact for integers spanning at most 65536
        values, else within half a slope.
    """
    if not np.all(np.isfinite(values)):
        raise DicomExportError("the scan has NaN or infinite voxels; DICOM needs finite values")
    lo, hi = float(values.min()), float(values.max())
    if np.array_equal(values, np.round(values)) and hi - lo <= INT16_MAX - INT16_MIN:
        slope = 1.0
        intercept = 0.0 if lo >= INT16_MIN and hi <= INT16_MAX else lo - INT16_MIN
        stored = values.astype(np.float64) - intercept
    else:
        slope = float(_ds((hi - lo) / (INT16_MAX - INT16_MIN))) or 1.0
        intercept = float(_ds(lo - INT16_MIN * slope))
        stored = np.round((values.astype(np.float64) - intercept) / slope)
    return np.clip(stored, INT16_MIN, INT16_MAX).astype("<i2"), slope, intercept


def _file_meta(sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def _geometry(ds: Dataset, image: sitk.Image, k: int) -> None:
    """Image Plane module of slice ``k`` (LPS mm, as SimpleITK's physical space)."""
    spacing = image.GetSpacing()
    direction = image.GetDirection()
    position = image.TransformIndexToPhysicalPoint((0, 0, k))
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = [_ds(v) for v in (*direction[0:9:3], *direction[1:9:3])]
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # row spacing (y), column (x)
    ds.SliceThickness = _ds(spacing[2])
    ds.SpacingBetweenSlices = _ds(spacing[2])
    normal = np.asarray(direction, dtype=float).reshape(3, 3)[:, 2]
    ds.SliceLocation = _ds(float(np.dot(position, normal)))


def _slice_dataset(
    image: sitk.Image,
    stored: np.ndarray,
    k: int,
    uids: CaseDicomUids,
    rescale: tuple[float, float],
    description: str,
) -> Dataset:
    """Dataset of slice ``k`` (``stored``: int16 rows x columns)."""
    sop_uid = uids.instance_uid(uids.series, k + 1)
    ds = Dataset()
    ds.file_meta = _file_meta(sop_uid)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    set_deidentified_patient_and_study(ds, uids)
    ds.Modality = "CT"
    ds.SeriesInstanceUID = uids.series
    ds.SeriesNumber = 1
    ds.SeriesDescription = description
    ds.Manufacturer = MANUFACTURER
    ds.SoftwareVersions = software_version()
    ds.FrameOfReferenceUID = uids.frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = ""
    ds.KVP = ""
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = k + 1
    _geometry(ds, image, k)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope, ds.RescaleIntercept = _ds(rescale[0]), _ds(rescale[1])
    ds.RescaleType = "HU"
    ds.PixelData = stored.tobytes()
    return ds


def series_headers(
    image: sitk.Image,
    *,
    uids: CaseDicomUids,
    modality: str = "CT",
    description: str = DEFAULT_DESCRIPTION,
) -> list[Dataset]:
    """The datasets :func:`write_dicom_series` writes for ``image``, without pixel data.

    UIDs are derived from ``uids``, so these headers reference exactly the slices that
    :func:`write_dicom_series` writes (or wrote) for the same case: a SEG or RTSTRUCT can be made
    from them without the series on disk.

    Parameters
    ----------
    image, uids, modality, description
        As for :func:`write_dicom_series`.

    Returns
    -------
    list of pydicom.Dataset
        One per slice, in slice order, without Pixel Data.
    """
    _check_image(image, modality)
    image = right_handed(image)
    shape = (image.GetSize()[1], image.GetSize()[0])
    headers = []
    for k in range(image.GetSize()[2]):
        ds = _slice_dataset(image, np.zeros(shape, "<i2"), k, uids, (1.0, 0.0), description)
        del ds.PixelData
        headers.append(ds)
    return headers


def _check_image(image: sitk.Image, modality: str) -> None:
    if modality not in SUPPORTED_MODALITIES:
        raise DicomExportError(
            f"DICOM series export supports modality {SUPPORTED_MODALITIES}, got {modality!r}"
        )
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise DicomExportError(
            f"DICOM series export needs a 3-D scalar image, got {image.GetDimension()}-D with "
            f"{image.GetNumberOfComponentsPerPixel()} components"
        )


def _check_request(image: sitk.Image, final: Path, uids: CaseDicomUids, modality: str) -> None:
    _check_image(image, modality)
    if not final.parent.is_dir():
        raise DicomExportError(f"parent folder of {final} does not exist")
    if final.exists() and not _is_previous_export(final, uids):
        raise DicomExportError(
            f"{final} exists and is not this case's DICOM series; give a new or empty folder"
        )


def _is_previous_export(folder: Path, uids: CaseDicomUids) -> bool:
    """Whether ``folder`` is empty or holds only this case's series (safe to replace)."""
    if not folder.is_dir():
        return False
    for entry in folder.iterdir():
        if not entry.is_file() or entry.suffix != ".dcm":
            return False
        try:
            header = pydicom.dcmread(entry, stop_before_pixels=True)
        except (InvalidDicomError, OSError):
            return False
        if header.get("SeriesInstanceUID") != uids.series:
            return False
    return True


def write_dicom_series(
    image: sitk.Image,
    out_dir: str | os.PathLike[str],
    *,
    uids: CaseDicomUids,
    modality: str = "CT",
    description: str = DEFAULT_DESCRIPTION,
) -> DicomSeriesExport:
    """Write ``image`` (LPS geometry) as a de-identified DICOM CT series in ``out_dir``.

    The series is written into a temporary folder beside ``out_dir`` and renamed onto it: the
    folder holds either the previous complete series or the new one, never a mixture.

    Parameters
    ----------
    image
        The case's scan (3-D, scalar, values in HU for CT), any direction.
    out_dir
        Destination folder: new, empty, or this case's previous series export (replaced).
    uids
        The case's DICOM UIDs; slice ``k`` gets ``uids.instance_uid(uids.series, k + 1)``.
    modality
        Modality of the series; only ``"CT"`` (CT Image Storage) is supported.
    description
        Series Description (must not carry identifiers).

    Returns
    -------
    DicomSeriesExport
        Folder, files and SOP Instance UIDs in slice order, rescale slope and intercept.

    Raises
    ------
    DicomExportError
        For another modality, a non-3-D image, non-finite values, a missing parent folder or
        an existing folder that is not this case's series.
    """
    final = Path(out_dir)
    _check_request(image, final, uids, modality)
    image = right_handed(image)
    stored, slope, intercept = int16_encoding(sitk.GetArrayViewFromImage(image))
    width = max(4, len(str(stored.shape[0])))
    tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()  # the usual folder mode (0o777 less the umask)
    names, sop_uids = [], []
    try:
        for k in range(stored.shape[0]):
            ds = _slice_dataset(image, stored[k], k, uids, (slope, intercept), description)
            name = f"CT{k + 1:0{width}d}.dcm"
            ds.save_as(tmp / name, enforce_file_format=True)
            fsync_file(tmp / name)
            names.append(name)
            sop_uids.append(str(ds.SOPInstanceUID))
        fsync_file(tmp)
        _replace_folder(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return DicomSeriesExport(
        folder=final,
        paths=tuple(final / name for name in names),
        series_uid=uids.series,
        sop_instance_uids=tuple(sop_uids),
        rescale_slope=slope,
        rescale_intercept=intercept,
    )


def _replace_folder(new: Path, final: Path) -> None:
    """Rename folder ``new`` onto ``final``, moving an existing ``final`` aside first."""
    old = final.parent / f".{final.name}.{uuid.uuid4().hex}.old"
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    fsync_file(final.parent)
    if old.exists():
        shutil.rmtree(old)
