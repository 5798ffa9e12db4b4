r"""Write a case's scan as a de-identified DICOM CT or MR series (one file per slice).

Explicit VR little endian, uncompressed, 16-bit stored values.

- **CT** (CT Image Storage): signed stored values with Rescale Slope and Intercept (HU = slope *
  stored + intercept, Rescale Type ``HU``). Integer images whose range spans at most 65536
  values are stored exactly (slope 1); other images are scaled linearly onto the int16 range
  (error at most half a slope).
- **MR** (MR Image Storage, :func:`mr_encoding`): MR values are not HU and the MR Image IOD has
  no Modality LUT (no Rescale Slope/Intercept, PS3.3 A.4), so integer images that fit 16 bits
  (unsigned 0..65535 or signed) are stored as they are, with no rescale attributes. Any other
  image is stored as for CT but with Rescale Type ``US`` (unspecified), a standard attribute the
  IOD does not define (the result's ``notes`` say so). The MR Image module's acquisition
  attributes are not kept by the import (only the voxels are): the type 1 ones get the values
  that claim nothing (Image Type ``DERIVED\SECONDARY\OTHER``, Scanning Sequence ``RM``
  "research mode", Sequence Variant ``NONE``), the type 2 ones (Scan Options, MR Acquisition
  Type, Repetition Time, Echo Time, Echo Train Length) are present and empty ("unknown").

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
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
)
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
UINT16_MAX = 65535
#: SOP Class of each modality :func:`write_dicom_series` writes.
STORAGE_SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage}
#: What :func:`write_dicom_series` and :func:`series_headers` write.
SERIES_MODALITIES = tuple(STORAGE_SOP_CLASS)
DEFAULT_DESCRIPTION = "surgplan de-identified scan"
#: MR Image module (PS3.3 C.8.3.1) attributes the import does not keep: type 1 with the values
#: that claim nothing (research mode, no sequence variant), type 2 present and empty (unknown).
MR_UNKNOWN_ACQUISITION = {
    "ScanningSequence": "RM",
    "SequenceVariant": "NONE",
    "ScanOptions": "",
    "MRAcquisitionType": "",
    "RepetitionTime": "",
    "EchoTime": "",
    "EchoTrainLength": "",
}
IMAGE_TYPE = {"CT": ["DERIVED", "SECONDARY", "AXIAL"], "MR": ["DERIVED", "SECONDARY", "OTHER"]}


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
        Value = slope * stored + intercept (HU for CT; 1 and 0 for an MR series stored as is).
    modality : str
        ``"CT"`` (CT Image Storage) or ``"MR"`` (MR Image Storage).
    rescale_type : str or None
        Rescale Type written: ``"HU"`` (CT), ``"US"`` (an MR series that needed a rescale),
        ``None`` (MR stored as is: no rescale attributes).
    notes : tuple of str
        What a user should know about the encoding (an MR rescale, rounding).
    """

    folder: Path
    paths: tuple[Path, ...]
    series_uid: str
    sop_instance_uids: tuple[str, ...]
    rescale_slope: float
    rescale_intercept: float
    modality: str = "CT"
    rescale_type: str | None = "HU"
    notes: tuple[str, ...] = ()


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


def _require_finite(values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise DicomExportError("the scan has NaN or infinite voxels; DICOM needs finite values")


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
    _require_finite(values)
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


def mr_encoding(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Stored 16-bit values, slope and intercept of an MR series for ``values``.

    Parameters
    ----------
    values
        Voxel values (any numeric dtype, no unit: MR values are not HU), finite.

    Returns
    -------
    stored, slope, intercept
        ``stored`` equal to ``values`` (uint16 when they are integers in 0..65535, else int16
        when they fit it) with slope 1 and intercept 0: no rescale needed. Otherwise the
        encoding of :func:`int16_encoding` (exact for integers spanning at most 65536 values,
        else within half a slope).
    """
    _require_finite(values)
    if values.size and np.array_equal(values, np.round(values)):
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0 and hi <= UINT16_MAX:
            return values.astype("<u2"), 1.0, 0.0
        if lo >= INT16_MIN and hi <= INT16_MAX:
            return values.astype("<i2"), 1.0, 0.0
    return int16_encoding(values)


def _encode(values: np.ndarray, modality: str) -> tuple[np.ndarray, tuple[float, float], bool]:
    """Stored values, ``(slope, intercept)`` and whether rescale attributes are written."""
    if modality == "CT":
        stored, slope, intercept = int16_encoding(values)
        return stored, (slope, intercept), True
    stored, slope, intercept = mr_encoding(values)
    return stored, (slope, intercept), (slope, intercept) != (1.0, 0.0)


def _encoding_notes(rescale: tuple[float, float], rescaled: bool, modality: str) -> list[str]:
    """What a user should know about an MR series that needed a rescale."""
    if modality == "CT" or not rescaled:
        return []
    notes = [
        "the MR values do not fit 16-bit stored values as they are: written with Rescale "
        f"Slope {rescale[0]:g} and Intercept {rescale[1]:g} (Rescale Type US), attributes "
        "the MR Image IOD does not define; a reader that ignores them shows stored values"
    ]
    if rescale[0] != 1.0:
        notes.append(f"MR values rounded to a step of {rescale[0]:g} (error at most half)")
    return notes


def _file_meta(sop_uid: str, sop_class: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
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


def _modality_attributes(ds: Dataset, modality: str, rescale: tuple[float, float] | None) -> None:
    """The CT or MR Image module's own attributes; rescale ``None``: none written (MR only)."""
    if modality == "CT":
        ds.KVP = ""
    else:
        for keyword, value in MR_UNKNOWN_ACQUISITION.items():
            setattr(ds, keyword, value)
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = _ds(rescale[0]), _ds(rescale[1])
        ds.RescaleType = "HU" if modality == "CT" else "US"


def _slice_dataset(
    image: sitk.Image,
    stored: np.ndarray,
    k: int,
    uids: CaseDicomUids,
    rescale: tuple[float, float] | None,
    description: str,
    modality: str = "CT",
) -> Dataset:
    """Dataset of slice ``k`` (``stored``: 16-bit rows x columns; ``rescale`` as above)."""
    sop_uid = uids.instance_uid(uids.series, k + 1)
    sop_class = STORAGE_SOP_CLASS[modality]
    ds = Dataset()
    ds.file_meta = _file_meta(sop_uid, sop_class)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = IMAGE_TYPE[modality]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    set_deidentified_patient_and_study(ds, uids)
    ds.Modality = modality
    ds.SeriesInstanceUID = uids.series
    ds.SeriesNumber = 1
    ds.SeriesDescription = description
    ds.Manufacturer = MANUFACTURER
    ds.SoftwareVersions = software_version()
    ds.FrameOfReferenceUID = uids.frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = ""
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = k + 1
    _geometry(ds, image, k)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if stored.dtype.kind == "i" else 0
    _modality_attributes(ds, modality, rescale)
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
    from them without the series on disk. The SOP Class, Modality and SOP Instance UIDs are those
    of the written slices (rescale attributes may differ).

    Parameters
    ----------
    image, uids, modality, description
        As for :func:`write_dicom_series`.

    Returns
    -------
    list of pydicom.Dataset
        One per slice, in slice order, without Pixel Data.
    """
    _check_image(image, modality, SERIES_MODALITIES)
    image = right_handed(image)
    shape = (image.GetSize()[1], image.GetSize()[0])
    rescale = (1.0, 0.0) if modality == "CT" else None
    headers = []
    for k in range(image.GetSize()[2]):
        stored = np.zeros(shape, "<i2")
        ds = _slice_dataset(image, stored, k, uids, rescale, description, modality)
        del ds.PixelData
        headers.append(ds)
    return headers


def _check_image(image: sitk.Image, modality: str, supported: tuple[str, ...]) -> None:
    if modality not in supported:
        raise DicomExportError(
            f"DICOM series export supports modality {supported}, got {modality!r}"
        )
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise DicomExportError(
            f"DICOM series export needs a 3-D scalar image, got {image.GetDimension()}-D with "
            f"{image.GetNumberOfComponentsPerPixel()} components"
        )


def _check_request(image: sitk.Image, final: Path, uids: CaseDicomUids, modality: str) -> None:
    _check_image(image, modality, SERIES_MODALITIES)
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
    """Write ``image`` (LPS geometry) as a de-identified DICOM CT or MR series in ``out_dir``.

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
        ``"CT"`` (CT Image Storage) or ``"MR"`` (MR Image Storage); see the module docstring.
    description
        Series Description (must not carry identifiers).

    Returns
    -------
    DicomSeriesExport
        Folder, files and SOP Instance UIDs in slice order, the encoding and its notes.

    Raises
    ------
    DicomExportError
        For another modality, a non-3-D image, non-finite values, a missing parent folder or
        an existing folder that is not this case's series.
    """
    final = Path(out_dir)
    _check_request(image, final, uids, modality)
    image = right_handed(image)
    stored, rescale, rescaled = _encode(sitk.GetArrayViewFromImage(image), modality)
    names, sop_uids = _write_slices(
        image, stored, final, uids, rescale if rescaled else None, description, modality
    )
    return DicomSeriesExport(
        folder=final,
        paths=tuple(final / name for name in names),
        series_uid=uids.series,
        sop_instance_uids=tuple(sop_uids),
        rescale_slope=rescale[0],
        rescale_intercept=rescale[1],
        modality=modality,
        rescale_type=("HU" if modality == "CT" else "US") if rescaled else None,
        notes=tuple(_encoding_notes(rescale, rescaled, modality)),
    )


def _write_slices(
    image: sitk.Image,
    stored: np.ndarray,
    final: Path,
    uids: CaseDicomUids,
    rescale: tuple[float, float] | None,
    description: str,
    modality: str,
) -> tuple[list[str], list[str]]:
    """Write every slice into a temporary folder renamed onto ``final``; names and SOP UIDs."""
    width = max(4, len(str(stored.shape[0])))
    tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()  # the usual folder mode (0o777 less the umask)
    names, sop_uids = [], []
    try:
        for k in range(stored.shape[0]):
            ds = _slice_dataset(image, stored[k], k, uids, rescale, description, modality)
            name = f"{modality}{k + 1:0{width}d}.dcm"
            ds.save_as(tmp / name, enforce_file_format=True)
            fsync_file(tmp / name)
            names.append(name)
            sop_uids.append(str(ds.SOPInstanceUID))
        fsync_file(tmp)
        _replace_folder(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return names, sop_uids


def _replace_folder(new: Path, final: Path) -> None:
    """Rename folder ``new`` onto ``final``, moving an existing ``final`` aside first."""
    old = final.parent / f".{final.name}.{uuid.uuid4().hex}.old"
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    fsync_file(final.parent)
    if old.exists():
        shutil.rmtree(old)
