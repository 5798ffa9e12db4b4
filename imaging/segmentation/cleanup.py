"""Morphological clean-up of binary masks (``sitkUInt8``, 0/1) on an image grid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from imaging.errors import SegmentationError
from imaging.segmentation._seed import seed_index


def _binary(mask: sitk.Image) -> sitk.Image:
    if not isinstance(mask, sitk.Image):
        raise SegmentationError(f"mask must be a SimpleITK.Image, got {type(mask).__name__}")
    if mask.GetDimension() != 3:
        raise SegmentationError(f"mask must be 3D, got {mask.GetDimension()}D")
    return sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)


def radius_voxels(image: sitk.Image, radius_mm: float) -> list[int]:
    """Convert a radius in mm to a per-axis structuring-element radius in voxels (>= 1).

    Parameters
    ----------
    image : SimpleITK.Image
        Image whose spacing (mm) sets the conversion.
    radius_mm : float
        Radius, mm.
    """
    return [max(1, int(round(radius_mm / sp))) for sp in image.GetSpacing()]


def largest_component(mask: sitk.Image) -> sitk.Image:
    """Keep the largest face-connected component of a mask.

    Parameters
    ----------
    mask : SimpleITK.Image
        Binary mask (non-zero is foreground).

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 mask on the same grid; all zero if the input is empty.
    """
    binary = _binary(mask)
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(binary), sortByObjectSize=True)
    return sitk.Cast(sitk.Equal(labels, 1), sitk.sitkUInt8)


def component_containing(mask: sitk.Image, seed_lps_mm: Sequence[float]) -> sitk.Image:
    """Keep the connected component of a mask that contains a seed.

    Parameters
    ----------
    mask : SimpleITK.Image
        Binary mask (non-zero is foreground).
    seed_lps_mm : sequence of 3 float
        Seed in LPS physical space (mm).

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 mask of the seed's component.

    Raises
    ------
    SegmentationError
        If the seed is outside the grid or on a background voxel.
    """
    binary = _binary(mask)
    idx = seed_index(binary, seed_lps_mm)
    labels = sitk.ConnectedComponent(binary)
    value = labels[idx]
    if value == 0:
        point = tuple(round(float(c), 2) for c in seed_lps_mm)
        raise SegmentationError(
            f"seed {point} mm (voxel {idx}) is not inside the mask; expected a foreground voxel"
        )
    return sitk.Cast(sitk.Equal(labels, value), sitk.sitkUInt8)


def component_at_index(mask: sitk.Image, idx: Sequence[int]) -> sitk.Image | None:
    """Component of ``mask`` containing voxel ``idx`` or ``None`` if that voxel is background.

    Parameters
    ----------
    mask : SimpleITK.Image
        Binary mask.
    idx : sequence of int
        Voxel index ``(i, j, k)`` (not mm).
    """
    labels = sitk.ConnectedComponent(_binary(mask))
    value = labels[tuple(int(i) for i in idx)]
    if value == 0:
        return None
    return sitk.Cast(sitk.Equal(labels, value), sitk.sitkUInt8)


def fill_holes(mask: sitk.Image, *, slice_wise: bool = False) -> sitk.Image:
    """Fill cavities not connected to the image border.

    Parameters
    ----------
    mask : SimpleITK.Image
        Binary mask (non-zero is foreground).
    slice_wise : bool
        Also fill 2D holes in every axial slice (cavities that open to the outside only
        through the top or bottom of the object).

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 mask with holes filled.
    """
    binary = _binary(mask)
    arr = sitk.GetArrayViewFromImage(binary) > 0
    filled = ndi.binary_fill_holes(arr)
    if slice_wise:
        for k in range(filled.shape[0]):
            if filled[k].any():
                filled[k] = ndi.binary_fill_holes(filled[k])
    out = sitk.GetImageFromArray(filled.astype(np.uint8))
    out.CopyInformation(binary)
    return out


def smooth_mask(mask: sitk.Image, *, radius_mm: float = 2.0) -> sitk.Image:
    """Smooth a mask by a morphological closing then opening with a ball of ``radius_mm``.

    Parameters
    ----------
    mask : SimpleITK.Image
        Binary mask (non-zero is foreground).
    radius_mm : float
        Ball radius (mm); converted per axis to at least one voxel.

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 mask.
    """
    if not radius_mm > 0:
        raise SegmentationError(f"radius_mm must be > 0, got {radius_mm!r}")
    binary = _binary(mask)
    radius = radius_voxels(binary, radius_mm)
    closed = sitk.BinaryMorphologicalClosing(binary, radius, sitk.sitkBall)
    opened = sitk.BinaryMorphologicalOpening(closed, radius, sitk.sitkBall)
    return sitk.Cast(opened, sitk.sitkUInt8)
