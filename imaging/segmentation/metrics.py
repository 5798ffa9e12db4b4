"""Overlap metrics between binary masks."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from imaging.errors import SegmentationError

#: Physical-grid tolerance (mm, or direction cosine) when checking that two masks align.
GRID_TOL = 1e-4


def check_same_grid(
    a: sitk.Image, b: sitk.Image, *, names: tuple[str, str] = ("mask a", "mask b")
) -> None:
    """Raise :class:`SegmentationError` unless two images share size, spacing, origin, direction.

    Parameters
    ----------
    a, b : SimpleITK.Image
        The images (spacing and origin in mm).
    names : tuple of str, keyword-only
        How the two images are called in the error message.
    """
    for name, img in zip(names, (a, b), strict=True):
        if not isinstance(img, sitk.Image):
            raise SegmentationError(f"{name} must be a SimpleITK.Image, got {type(img).__name__}")
    if a.GetSize() != b.GetSize():
        raise SegmentationError(
            f"{names[0]} and {names[1]} are on different grids: size {a.GetSize()} vs "
            f"{b.GetSize()} voxels; "
            "expected identical grids"
        )
    for what, va, vb in (
        ("spacing", a.GetSpacing(), b.GetSpacing()),
        ("origin", a.GetOrigin(), b.GetOrigin()),
        ("direction", a.GetDirection(), b.GetDirection()),
    ):
        if not np.allclose(va, vb, atol=GRID_TOL):
            raise SegmentationError(
                f"{names[0]} and {names[1]} are on different grids: {what} {tuple(va)} vs "
                f"{tuple(vb)}; "
                "expected identical grids"
            )


def dice(a: sitk.Image, b: sitk.Image) -> float:
    """Dice similarity coefficient ``2|A∩B| / (|A| + |B|)`` of two masks on the same grid.

    Parameters
    ----------
    a, b : SimpleITK.Image
        Masks (non-zero is foreground) with identical size, spacing, origin and direction.

    Returns
    -------
    float
        Dice in [0, 1]; 1.0 when both masks are empty.

    Raises
    ------
    SegmentationError
        If the masks are not on the same grid.
    """
    check_same_grid(a, b)
    arr_a = sitk.GetArrayViewFromImage(a) != 0
    arr_b = sitk.GetArrayViewFromImage(b) != 0
    total = int(arr_a.sum()) + int(arr_b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(arr_a, arr_b).sum()) / total


def spread_seeds(
    reference: sitk.Image, n: int, *, min_depth_mm: float = 9.0, rng_seed: int = 0
) -> list[tuple[float, float, float]]:
    """``n`` seeds (LPS mm) spread through a reference mask, each ``min_depth_mm`` inside it.

    Candidates are the voxels whose distance to the mask's boundary (Euclidean, mm) is at
    least ``min_depth_mm``; the first seed is drawn at random (``numpy`` generator seeded by
    ``rng_seed``), each next one is the candidate farthest from those chosen (farthest-point
    sampling), so the seeds cover the organ, its edges included.

    Raises
    ------
    SegmentationError
        If no voxel is ``min_depth_mm`` inside the mask.
    """
    arr = sitk.GetArrayViewFromImage(reference) != 0
    depth = ndi.distance_transform_edt(arr, sampling=reference.GetSpacing()[::-1])
    zyx = np.argwhere(depth >= min_depth_mm)
    if zyx.size == 0:
        raise SegmentationError(
            f"no voxel of the reference mask lies {min_depth_mm} mm inside it; expected a "
            "thicker structure or a smaller depth"
        )
    sp = np.array(reference.GetSpacing()[::-1])
    chosen = [int(np.random.default_rng(rng_seed).integers(len(zyx)))]
    dist = (((zyx - zyx[chosen[0]]) * sp) ** 2).sum(axis=1)
    for _ in range(n - 1):
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, (((zyx - zyx[j]) * sp) ** 2).sum(axis=1))
    return [reference.TransformIndexToPhysicalPoint([int(v) for v in zyx[j][::-1]]) for j in chosen]
