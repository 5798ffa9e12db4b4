"""Restriction masks and regions of interest shared by the seeded segmenters (private)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from imaging.errors import SegmentationError
from imaging.segmentation.metrics import check_same_grid


def restriction(image: sitk.Image, within: sitk.Image | None) -> sitk.Image | None:
    """Validate an optional restriction mask; return it as ``sitkUInt8`` 0/1 or ``None``."""
    if within is None:
        return None
    check_same_grid(image, within, names=("image", "within"))
    binary = sitk.Cast(sitk.NotEqual(within, 0), sitk.sitkUInt8)
    binary.CopyInformation(image)
    if not np.any(sitk.GetArrayViewFromImage(binary)):
        raise SegmentationError("within mask is empty; expected a mask with foreground voxels")
    return binary


def crop_box(
    image: sitk.Image,
    within: sitk.Image | None,
    seeds: list[tuple[int, int, int]],
    margin_mm: float,
) -> tuple[list[int], list[int]]:
    """Index box ``(start, size)`` covering ``within`` (or the whole image) and all seeds."""
    size = np.array(image.GetSize())
    if within is None:
        return [0, 0, 0], [int(n) for n in size]
    arr = sitk.GetArrayViewFromImage(within)
    nz = np.nonzero(arr)
    lo = np.array([nz[2].min(), nz[1].min(), nz[0].min()])
    hi = np.array([nz[2].max(), nz[1].max(), nz[0].max()])
    s = np.array(seeds)
    lo = np.minimum(lo, s.min(axis=0))
    hi = np.maximum(hi, s.max(axis=0))
    margin = np.ceil(margin_mm / np.array(image.GetSpacing())).astype(int)
    lo = np.maximum(lo - margin, 0)
    hi = np.minimum(hi + margin, size - 1)
    return [int(v) for v in lo], [int(v) for v in hi - lo + 1]


def paste(mask: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Place a cropped mask back onto the full grid of ``reference`` as ``sitkUInt8``."""
    full = sitk.Image(reference.GetSize(), sitk.sitkUInt8)
    full.CopyInformation(reference)
    start = reference.TransformPhysicalPointToIndex(mask.GetOrigin())
    return sitk.Paste(full, sitk.Cast(mask, sitk.sitkUInt8), mask.GetSize(), [0, 0, 0], start)
