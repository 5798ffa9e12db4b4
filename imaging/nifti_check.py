"""Checks on a NIfTI file that ITK's reader does not make.

ITK fills a truncated ``.nii`` or ``.nii.gz`` with zeros without a word, and coerces a
non-orthogonal ``sform`` to an orthogonal direction (a warning on stderr, a different
geometry). :func:`check_nifti_file` reads the NIfTI-1/-2 header (layout at
https://nifti.nimh.nih.gov/nifti-1/documentation/nifti1fields and the NIfTI-2 header), streams
the whole (decompressed) file once, and refuses both.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from imaging.errors import ImageReadError

#: Tolerance on the orthogonality of the sform's normalised columns (cosine of their angle).
SFORM_ORTHO_ATOL = 1e-4
_CHUNK = 1 << 20


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def _stream_length(path: Path, gzipped: bool) -> tuple[bytes, int]:
    """The first 540 bytes and the full (decompressed) length; a gzip stream fully checked."""
    try:
        if not gzipped:
            with open(path, "rb") as handle:
                return handle.read(540), path.stat().st_size
        with gzip.open(path, "rb") as handle:
            head = handle.read(540)
            length = len(head)
            while chunk := handle.read(_CHUNK):
                length += len(chunk)
            return head, length
    except EOFError:
        raise ImageReadError(
            f"{path.name} is a truncated gzip file (the compressed stream ends early); "
            "re-copy or re-export it"
        ) from None
    except (OSError, zlib.error) as error:
        raise ImageReadError(f"{path.name} is a corrupt gzip file: {error}") from None


def _fields(head: bytes, path: Path) -> tuple[np.ndarray, int, int, int, np.ndarray]:
    """dim, bitpix, vox_offset, sform_code and the 3x4 sform of a NIfTI-1 or -2 header."""
    for endian in "<>":
        if len(head) >= 4 and struct.unpack(f"{endian}i", head[:4])[0] in (348, 540):
            break
    else:
        raise ImageReadError(f"{path.name} is not a NIfTI-1 or NIfTI-2 file")
    if struct.unpack(f"{endian}i", head[:4])[0] == 348:
        if len(head) < 348:
            raise ImageReadError(f"{path.name}: NIfTI header truncated ({len(head)} bytes)")
        dim = np.array(struct.unpack(f"{endian}8h", head[40:56]), dtype=np.int64)
        bitpix = struct.unpack(f"{endian}h", head[72:74])[0]
        offset = struct.unpack(f"{endian}f", head[108:112])[0]
        if not (np.isfinite(offset) and 0 <= offset < 2**31):
            raise ImageReadError(
                f"{path.name}: corrupt NIfTI header (voxel data offset {offset!r}; expected a "
                "byte count such as 352)"
            )
        vox_offset = int(offset)
        sform_code = struct.unpack(f"{endian}h", head[254:256])[0]
        srow = np.array(struct.unpack(f"{endian}12f", head[280:328]), dtype=float)
    else:
        if len(head) < 540:
            raise ImageReadError(f"{path.name}: NIfTI-2 header truncated ({len(head)} bytes)")
        dim = np.array(struct.unpack(f"{endian}8q", head[16:80]), dtype=np.int64)
        bitpix = struct.unpack(f"{endian}h", head[14:16])[0]
        vox_offset = int(struct.unpack(f"{endian}q", head[168:176])[0])
        sform_code = struct.unpack(f"{endian}i", head[348:352])[0]
        srow = np.array(struct.unpack(f"{endian}12d", head[400:496]), dtype=float)
    return dim, bitpix, vox_offset, sform_code, srow.reshape(3, 4)


def _expected_bytes(dim: np.ndarray, bitpix: int, path: Path) -> int:
    ndim = int(dim[0])
    if not 1 <= ndim <= 7 or np.any(dim[1 : ndim + 1] < 1) or bitpix <= 0 or bitpix % 8:
        raise ImageReadError(
            f"{path.name}: NIfTI header has invalid dimensions {dim[1 : max(ndim, 0) + 1]} "
            f"or bits per voxel {bitpix}"
        )
    return int(np.prod(dim[1 : ndim + 1], dtype=np.int64)) * bitpix // 8


def _check_sform(sform_code: int, srow: np.ndarray, path: Path) -> None:
    if sform_code <= 0:
        return
    columns = srow[:, :3]
    norms = np.linalg.norm(columns, axis=0)
    if not np.all(np.isfinite(columns)) or np.any(norms <= 0):
        raise ImageReadError(f"{path.name}: NIfTI sform is singular or not finite")
    unit = columns / norms
    off = float(np.max(np.abs(unit.T @ unit - np.eye(3))))
    if off > SFORM_ORTHO_ATOL:
        angle = float(np.degrees(np.arccos(np.clip(1 - off, -1.0, 1.0))))
        raise ImageReadError(
            f"{path.name}: NIfTI sform axes are not orthogonal (largest cosine {off:.4f}, "
            f"{90 - angle:.2f} deg from perpendicular); a sheared grid cannot be stored as a "
            "scan, resample it first"
        )


def check_nifti_file(path: Path) -> None:
    """Refuse a NIfTI file whose voxel data is incomplete or whose sform is sheared.

    Parameters
    ----------
    path
        A single-file NIfTI (``.nii`` or ``.nii.gz``).

    Raises
    ------
    ImageReadError
        Truncated or corrupt gzip stream, fewer voxel bytes than the header's dimensions
        need (names both counts), or a non-orthogonal sform.
    """
    head, length = _stream_length(path, _is_gzip(path))
    dim, bitpix, vox_offset, sform_code, srow = _fields(head, path)
    expected = _expected_bytes(dim, bitpix, path)
    if length < vox_offset + expected:
        got = max(length - vox_offset, 0)
        raise ImageReadError(
            f"{path.name} is truncated: {got} bytes of voxel data, the header's "
            f"{'x'.join(str(int(d)) for d in dim[1 : int(dim[0]) + 1])} voxels of "
            f"{bitpix} bits need {expected}"
        )
    _check_sform(sform_code, srow, path)
