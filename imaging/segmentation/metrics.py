"""Overlap metrics between binary masks."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

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
