"""Validation of seed points given in LPS millimetres (private helpers of the package)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from imaging.errors import SegmentationError

#: Below this HU a seed is taken to lie in air (outside the body, lung or bowel gas).
BODY_MIN_HU = -300.0


def _as_point(seed_lps_mm: Sequence[float], what: str) -> tuple[float, float, float]:
    point = np.asarray(seed_lps_mm, dtype=float)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise SegmentationError(
            f"{what} must be 3 finite LPS coordinates in mm, got {seed_lps_mm!r}"
        )
    return (float(point[0]), float(point[1]), float(point[2]))


def seed_index(
    image: sitk.Image, seed_lps_mm: Sequence[float], *, what: str = "seed"
) -> tuple[int, int, int]:
    """Return the voxel index ``(i, j, k)`` of an LPS seed, checking it lies in the image.

    Parameters
    ----------
    image : SimpleITK.Image
        The image whose grid the seed is mapped onto.
    seed_lps_mm : sequence of 3 float
        Seed in patient LPS physical space (mm).
    what : str
        Name of the seed used in error messages.

    Returns
    -------
    tuple of int
        Index in SimpleITK ``(x, y, z)`` order.

    Raises
    ------
    SegmentationError
        If the seed is not 3 finite numbers or lies outside the image extent.
    """
    point = _as_point(seed_lps_mm, what)
    cont = image.TransformPhysicalPointToContinuousIndex(point)
    size = image.GetSize()
    idx = tuple(int(round(c)) for c in cont)
    if any(i < 0 or i >= n for i, n in zip(idx, size, strict=True)):
        corner_a = image.TransformIndexToPhysicalPoint((0, 0, 0))
        corner_b = image.TransformIndexToPhysicalPoint(tuple(n - 1 for n in size))
        lo = tuple(round(min(a, b), 1) for a, b in zip(corner_a, corner_b, strict=True))
        hi = tuple(round(max(a, b), 1) for a, b in zip(corner_a, corner_b, strict=True))
        raise SegmentationError(
            f"{what} {tuple(round(c, 2) for c in point)} mm lies outside the image extent "
            f"{lo} .. {hi} mm (LPS); expected a point inside the image"
        )
    return idx  # type: ignore[return-value]


def check_in_body(
    image: sitk.Image,
    idx: tuple[int, int, int],
    seed_lps_mm: Sequence[float],
    *,
    what: str = "seed",
) -> float:
    """Return the median HU of the 3x3x3 neighbourhood of a seed, refusing air.

    Raises
    ------
    SegmentationError
        If the neighbourhood median is below :data:`BODY_MIN_HU`.
    """
    arr = sitk.GetArrayViewFromImage(image)
    k, j, i = idx[2], idx[1], idx[0]
    block = arr[max(k - 1, 0) : k + 2, max(j - 1, 0) : j + 2, max(i - 1, 0) : i + 2]
    hu = float(np.median(block))
    if hu < BODY_MIN_HU:
        point = tuple(round(float(c), 2) for c in seed_lps_mm)
        raise SegmentationError(
            f"{what} {point} mm lies outside the body (HU {hu:.0f} around it; expected "
            f"tissue at >= {BODY_MIN_HU:.0f} HU)"
        )
    return hu


def seed_indices(
    image: sitk.Image, seeds_lps_mm: Sequence[Sequence[float]] | np.ndarray, *, what: str = "seed"
) -> list[tuple[int, int, int]]:
    """Validate an ``(N, 3)`` array of LPS seeds (mm); return their voxel indices.

    Raises
    ------
    SegmentationError
        If there are no seeds, the array is not ``(N, 3)``, or any seed is outside the
        image or in air.
    """
    pts = np.asarray(seeds_lps_mm, dtype=float)
    if pts.ndim == 1 and pts.shape == (3,):
        pts = pts[None, :]
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] == 0:
        raise SegmentationError(
            f"{what}s must be an (N, 3) array of LPS points in mm with N >= 1, got shape "
            f"{pts.shape}"
        )
    out = []
    for n, p in enumerate(pts):
        idx = seed_index(image, p, what=f"{what} {n}")
        check_in_body(image, idx, p, what=f"{what} {n}")
        out.append(idx)
    return out


def require_in_body_mask(
    image: sitk.Image,
    indices: Sequence[tuple[int, int, int]],
    seeds_lps_mm: Sequence[Sequence[float]] | np.ndarray,
    *,
    what: str = "seed",
) -> None:
    """Refuse seeds outside the patient's body (:func:`imaging.segmentation._body.find_body`).

    :func:`check_in_body` refuses air only: the scanner table is as dense as tissue, and a
    seed on it grows a "lesion" or "vessel" along the table.

    Raises
    ------
    SegmentationError
        Naming the first seed that lies outside the body.
    """
    from imaging.segmentation._body import find_body

    body = find_body(image).mask
    for n, (idx, seed) in enumerate(zip(indices, np.reshape(seeds_lps_mm, (-1, 3)), strict=True)):
        if not body[idx[2], idx[1], idx[0]]:
            point = tuple(round(float(c), 2) for c in seed)
            label = what if len(indices) == 1 else f"{what} {n}"
            raise SegmentationError(
                f"{label} {point} mm lies outside the patient's body (on the scanner table or "
                "another object in the scan); expected a seed inside the structure"
            )
