"""Small synthetic DICOM series for import tests, written with pydicom (and Pillow's JPEG 2000).

Voxel values follow a known linear field of the physical position, ``f(x) = 100 + 3 x + 2 y +
5 z`` (x, y, z in LPS mm), so the geometry a reader gives can be checked value by value.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid


def field(points: np.ndarray) -> np.ndarray:
    """The linear test field at LPS points ``(..., 3)``."""
    return 100.0 + 3.0 * points[..., 0] + 2.0 * points[..., 1] + 5.0 * points[..., 2]


def write_series(
    folder: Path,
    *,
    n_slices: int = 6,
    rows: int = 12,
    columns: int = 10,
    pixel_spacing: tuple[float, float] = (0.8, 0.7),
    step_mm: tuple[float, float, float] = (0.0, 0.0, 2.0),
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    origin: tuple[float, float, float] = (-4.0, -5.0, 10.0),
    modality: str = "CT",
    name: Callable[[int], str] = lambda k: f"slice{k:03d}.dcm",
    tags: Mapping[str, object] | None = None,
    jpeg2000: bool = False,
    values: Callable[[np.ndarray], np.ndarray] = field,
) -> list[Path]:
    """Write a series, slice ``k`` at ``origin + k * step_mm``; return the files in slice order.

    ``tags`` (DICOM keyword -> value) are set on every slice (identities for de-id tests);
    ``values`` gives the HU at LPS points ``(..., 3)`` (default :func:`field`).
    """
    with warnings.catch_warnings():  # identities and odd values are what de-id tests need
        warnings.simplefilter("ignore", UserWarning)
        return _write(
            folder,
            n_slices,
            rows,
            columns,
            pixel_spacing,
            step_mm,
            orientation,
            origin,
            modality,
            name,
            tags or {},
            jpeg2000,
            values,
        )


def _write(
    folder: Path,
    n_slices: int,
    rows: int,
    columns: int,
    pixel_spacing: tuple[float, float],
    step_mm: tuple[float, float, float],
    orientation: tuple[float, ...],
    origin: tuple[float, float, float],
    modality: str,
    name: Callable[[int], str],
    tags: Mapping[str, object],
    jpeg2000: bool,
    values: Callable[[np.ndarray], np.ndarray],
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    row, col = np.array(orientation[:3], float), np.array(orientation[3:], float)
    files = []
    for k in range(n_slices):
        position = np.array(origin) + k * np.array(step_mm)
        jj, ii = np.mgrid[0:rows, 0:columns]
        points = (
            position
            + ii[..., None] * pixel_spacing[1] * row
            + jj[..., None] * pixel_spacing[0] * col
        )
        stored = np.round(values(points) + 1024).astype(np.uint16)
        ds = _dataset(study, series, frame, modality, k, rows, columns)
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.PixelSpacing = list(pixel_spacing)
        ds.SliceThickness = float(np.linalg.norm(step_mm))
        for keyword, value in tags.items():
            setattr(ds, keyword, value)
        if jpeg2000:
            buffer = io.BytesIO()
            Image.fromarray(stored).save(buffer, "JPEG2000", irreversible=False, no_jp2=True)
            ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
            ds.PixelData = encapsulate([buffer.getvalue()])
            ds["PixelData"].VR = "OB"
        else:
            ds.PixelData = stored.tobytes()
        path = folder / name(k)
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def _dataset(
    study: str, series: str, frame: str, modality: str, k: int, rows: int, columns: int
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    ds.Modality = modality
    ds.InstanceNumber = k + 1
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    return ds
