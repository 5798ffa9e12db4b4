"""Checks that two images share one voxel grid (size, origin, spacing, direction)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from imaging.errors import ImageReadError, LabelMapError

#: Absolute tolerance on origin (mm), spacing (mm) and direction cosines for "same grid".
GRID_ATOL = 1e-3


def same_grid(a: sitk.Image, b: sitk.Image, *, atol: float = GRID_ATOL) -> bool:
    """Whether ``a`` and ``b`` have the same size, origin, spacing and direction.

    Parameters
    ----------
    a, b : SimpleITK.Image
        The images to compare.
    atol : float, keyword-only
        Absolute tolerance on origin and spacing (mm) and on the direction cosines.
    """
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=atol)
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=atol)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=atol)
    )


def require_same_grid(reference: sitk.Image, other: sitk.Image, what: str) -> None:
    """Raise :class:`LabelMapError` naming ``what`` unless ``other`` lies on ``reference``'s grid.

    Parameters
    ----------
    reference
        The scan whose grid is expected.
    other
        The image to check (e.g. an imported label map).
    what
        How to name ``other`` in the message (a file name).
    """
    if same_grid(reference, other):
        return
    raise LabelMapError(
        f"{what} is not on the scan's grid: size {other.GetSize()} spacing "
        f"{tuple(round(s, 4) for s in other.GetSpacing())} origin "
        f"{tuple(round(o, 3) for o in other.GetOrigin())}; expected size {reference.GetSize()} "
        f"spacing {tuple(round(s, 4) for s in reference.GetSpacing())} origin "
        f"{tuple(round(o, 3) for o in reference.GetOrigin())}"
    )


def voxel_volume_ml(image: sitk.Image) -> float:
    """Volume of one voxel in millilitres (spacing in mm; 1 mL = 1000 mm^3)."""
    return float(np.prod(image.GetSpacing())) / 1000.0


#: Tolerance on ``D^T D = I`` for an image's direction matrix.
DIRECTION_ORTHO_ATOL = 1e-4


def require_orthonormal_direction(image: sitk.Image, what: str) -> None:
    """Raise :class:`ImageReadError` naming ``what`` unless ``image``'s direction is orthonormal.

    A sheared or scaled direction matrix (from a hand-written NRRD ``space directions`` or an
    MHA ``TransformMatrix``) would make every physical position, volume and mesh wrong.

    Parameters
    ----------
    image
        The image to check.
    what
        How to name the image in the message (a file name).
    """
    dim = image.GetDimension()
    direction = np.array(image.GetDirection(), dtype=float).reshape(dim, dim)
    off = float(np.max(np.abs(direction.T @ direction - np.eye(dim))))
    if not np.isfinite(off) or off > DIRECTION_ORTHO_ATOL:
        raise ImageReadError(
            f"{what} has a direction matrix that is not orthonormal (max |D^T D - I| = "
            f"{off:.4g}, tolerance {DIRECTION_ORTHO_ATOL}); its axes are sheared or scaled: "
            "resample it onto an orthogonal grid first"
        )
