"""Contrast-enhanced vessels from seeds.

Combines a HU half-maximum threshold, multiscale Hessian objectness (Frangi-type, via
``sitk.ObjectnessMeasure``) and region growing from the seeds.

Method:

1. Crop to the restriction mask (plus a margin) for speed; smooth lightly.
2. Vessel HU = robust statistics in small balls at the seeds; background HU = robust
   statistics of the restriction mask (or of a shell around the seeds without one).
3. Candidates are voxels above the half-maximum level ``bg + 0.5 (vessel - bg)`` (the edge
   of a blurred tube wider than the blur), plus thin vessels whose contrast the blur lowered:
   voxels above ``bg + 0.25 (vessel - bg)`` with a strong bright-tube objectness at scales
   ``min_radius_mm .. max_radius_mm``.
4. Candidates inside the restriction mask (widened by ``margin_mm``) and connected to a seed
   are kept; small gaps closed. In the margin, only what continues a vessel inside the mask
   is kept (vessels entering or leaving the organ, not one lying along its surface).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from imaging.errors import SegmentationError
from imaging.segmentation._intensity import ball_values, robust_stats
from imaging.segmentation._roi import crop_box, paste, restriction
from imaging.segmentation._seed import require_in_body_mask, seed_indices
from imaging.segmentation.organ import _check_image

#: Fraction of the vessel-background contrast at which the vessel edge is placed.
HALF_MAX = 0.5
#: Lower fraction accepted where the Hessian says "bright tube" (thin, blurred vessels).
THIN_FRACTION = 0.25
#: Objectness (normalised to its maximum) above which a voxel counts as tube-like.
OBJECTNESS_LEVEL = 0.08
#: Smallest vessel-background contrast (HU) accepted as a contrast vessel.
MIN_CONTRAST_HU = 40.0


def _objectness(smooth: sitk.Image, min_radius_mm: float, max_radius_mm: float) -> np.ndarray:
    """Maximum over scales of the bright-tube objectness, normalised to [0, 1]."""
    n_scales = 3 if max_radius_mm > 2 * min_radius_mm else 2
    radii = np.geomspace(min_radius_mm, max_radius_mm, n_scales)
    best = None
    for radius in radii:
        # a tube of radius r gives the strongest normalised response at sigma ~ r / sqrt(3)
        sigma = float(max(radius / np.sqrt(3.0), 0.5 * min(smooth.GetSpacing())))
        hessian_input = sitk.SmoothingRecursiveGaussian(smooth, sigma)
        obj = sitk.ObjectnessMeasure(
            hessian_input,
            alpha=0.5,
            beta=0.5,
            gamma=5.0,
            scaleObjectnessMeasure=True,
            objectDimension=1,
            brightObject=True,
        )
        arr = sitk.GetArrayFromImage(obj) * sigma**2
        best = arr if best is None else np.maximum(best, arr)
    assert best is not None
    top = float(best.max())
    return best / top if top > 0 else best


def segment_vessels(
    image: sitk.Image,
    seeds_lps_mm: Sequence[Sequence[float]] | np.ndarray,
    *,
    within: sitk.Image | None = None,
    min_radius_mm: float = 1.0,
    max_radius_mm: float = 8.0,
    margin_mm: float = 0.0,
) -> sitk.Image:
    """Segment contrast-filled vessels connected to one or more seeds.

    Parameters
    ----------
    image : SimpleITK.Image
        3D contrast CT in HU, LPS physical space (mm).
    seeds_lps_mm : (N, 3) array_like
        Points inside vessel lumens (LPS, mm), e.g. one in the portal vein and one in a
        hepatic vein.
    within : SimpleITK.Image, optional
        Mask on the image grid the vessels are confined to (e.g. a dilated liver).
    min_radius_mm, max_radius_mm : float
        Range of vessel radii (mm) probed by the Hessian objectness.
    margin_mm : float, default 0
        How far (mm) outside ``within`` the vessels may reach where they enter or leave it
        (the portal trunk at the hilum, the hepatic veins at the vena cava). Outside
        ``within``, only vessel voxels within this distance of the vessels inside it are
        kept, so a large vessel running along the outside of the organ (the vena cava beside
        the liver) is not cut into a flat sheet at the margin's edge.

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 mask on the grid of ``image``.

    Raises
    ------
    SegmentationError
        On bad seeds (outside the image, in air), radii, a ``within`` mask on another grid,
        or seeds that are not brighter than their surroundings.
    """
    _check_image(image)
    if not (0 < min_radius_mm <= max_radius_mm):
        raise SegmentationError(
            f"vessel radii must satisfy 0 < min_radius_mm <= max_radius_mm, got "
            f"min_radius_mm={min_radius_mm!r}, max_radius_mm={max_radius_mm!r}"
        )
    if not (np.isfinite(margin_mm) and 0.0 <= margin_mm <= 50.0):
        raise SegmentationError(f"margin_mm must lie in [0, 50] mm, got {margin_mm!r}")
    seeds = seed_indices(image, seeds_lps_mm)
    require_in_body_mask(image, seeds, seeds_lps_mm)
    organ = restriction(image, within)
    mask = _widened(organ, margin_mm)

    start, size = crop_box(image, mask, seeds, margin_mm=2.0 * max_radius_mm)
    roi = sitk.RegionOfInterest(sitk.Cast(image, sitk.sitkFloat32), size, start)
    roi_mask = None if mask is None else sitk.RegionOfInterest(mask, size, start)
    local = [tuple(int(i - s) for i, s in zip(idx, start, strict=True)) for idx in seeds]
    smooth = sitk.SmoothingRecursiveGaussian(roi, float(0.5 * max(roi.GetSpacing())))
    vessel_hu, background_hu = _vessel_and_background_hu(
        smooth, roi_mask, local, min_radius_mm, max_radius_mm
    )
    contrast = vessel_hu - background_hu
    arr = sitk.GetArrayViewFromImage(smooth)
    tube = _objectness(smooth, min_radius_mm, max_radius_mm)
    candidates = (arr > background_hu + HALF_MAX * contrast) | (
        (arr > background_hu + THIN_FRACTION * contrast) & (tube > OBJECTNESS_LEVEL)
    )
    if roi_mask is not None:
        candidates &= sitk.GetArrayViewFromImage(roi_mask) > 0
    cand = sitk.GetImageFromArray(candidates.astype(np.uint8))
    cand.CopyInformation(roi)
    out = _seeded_components(cand, local, vessel_hu, background_hu)
    out = sitk.BinaryMorphologicalClosing(out, [1, 1, 1], sitk.sitkBall)
    if roi_mask is not None:
        out = sitk.And(out, roi_mask)
    if organ is not None and margin_mm > 0:
        roi_organ = sitk.RegionOfInterest(organ, size, start)
        out = _entering_only(out, roi_organ, local, margin_mm)
    return paste(out, image)


def _widened(organ: sitk.Image | None, margin_mm: float) -> sitk.Image | None:
    """The organ mask dilated by ``margin_mm`` (a ball, at least one voxel per axis)."""
    if organ is None or margin_mm <= 0:
        return organ
    radius = [max(1, round(margin_mm / s)) for s in organ.GetSpacing()]
    return sitk.BinaryDilate(organ, radius, sitk.sitkBall, 0, 1)


def _entering_only(
    vessels: sitk.Image, organ: sitk.Image, local: Sequence[tuple[int, ...]], margin_mm: float
) -> sitk.Image:
    """Vessels inside the organ, and outside it only within ``margin_mm`` of those (or seeds).

    The part of the tree outside the organ is kept where it continues a vessel inside it
    (a trunk crossing the capsule), not where another vessel merely lies along the capsule.
    """
    inner = sitk.And(vessels, organ)
    for idx in local:  # a seed in the entering trunk outside the organ keeps its lumen
        inner[idx] = int(vessels[idx])
    spacing = vessels.GetSpacing()
    radius = [max(1, round(margin_mm / s)) + 1 for s in spacing]
    near = sitk.BinaryDilate(inner, radius, sitk.sitkBall, 0, 1)
    kept = sitk.Or(inner, sitk.And(vessels, near))
    return sitk.Cast(kept, sitk.sitkUInt8)


def _vessel_and_background_hu(
    smooth: sitk.Image,
    roi_mask: sitk.Image | None,
    local: Sequence[tuple[int, ...]],
    min_radius_mm: float,
    max_radius_mm: float,
) -> tuple[float, float]:
    """Robust vessel HU at the seeds and background HU; refused below :data:`MIN_CONTRAST_HU`.

    The background is the restriction mask, or without one a shell around the seeds.
    """
    probe_mm = max(min_radius_mm, 1.5 * min(smooth.GetSpacing()))
    vessel_hu, _ = robust_stats(
        np.concatenate([ball_values(smooth, idx, probe_mm) for idx in local])
    )
    arr = sitk.GetArrayViewFromImage(smooth)
    if roi_mask is not None:
        background_hu, _ = robust_stats(arr[sitk.GetArrayViewFromImage(roi_mask) > 0])
    else:
        shell = np.concatenate([ball_values(smooth, idx, 3.0 * max_radius_mm) for idx in local])
        background_hu, _ = robust_stats(shell[shell < vessel_hu - MIN_CONTRAST_HU / 2])
    contrast = vessel_hu - background_hu
    if contrast < MIN_CONTRAST_HU:
        raise SegmentationError(
            f"seeds lie at {vessel_hu:.0f} HU, only {contrast:.0f} HU above the background "
            f"({background_hu:.0f} HU); expected contrast-filled vessels at least "
            f"{MIN_CONTRAST_HU:.0f} HU brighter"
        )
    return vessel_hu, background_hu


def _seeded_components(
    cand: sitk.Image, local: Sequence[tuple[int, ...]], vessel_hu: float, background_hu: float
) -> sitk.Image:
    """The connected components of ``cand`` that hold a seed (0/1 ``sitkUInt8``)."""
    labels = sitk.ConnectedComponent(cand, True)
    keep = sorted({int(labels[idx]) for idx in local} - {0})
    if not keep:
        raise SegmentationError(
            f"no vessel voxel at the seeds (vessel {vessel_hu:.0f} HU, background "
            f"{background_hu:.0f} HU); expected seeds inside contrast-filled lumens"
        )
    lab_arr = sitk.GetArrayViewFromImage(labels)
    out = sitk.GetImageFromArray(np.isin(lab_arr, keep).astype(np.uint8))
    out.CopyInformation(cand)
    return out
