"""Hypo- or hyperdense lesions from one seed inside the lesion.

Method:

1. Smooth (Gaussian, ``smoothing_mm``); lesion HU = robust statistics in a small ball at the seed.
2. A first region: voxels within ``K_INITIAL`` sigma of the lesion HU, opened, seed component.
3. Surrounding HU = robust statistics of a shell ``SHELL_MM`` around that region (inside the
   restriction mask when given). The lesion edge is placed half way between lesion and
   surrounding HU (the half-maximum of a blurred step), on the lesion's side.
4. Threshold at that level, restricted to ``within``, open to cut leaks through narrow necks,
   keep the seed's component, fill holes, and repeat steps 3-4 once with the refined region.
"""

from __future__ import annotations

from collections.abc import Sequence

import SimpleITK as sitk

from imaging.errors import SegmentationError
from imaging.segmentation._intensity import ball_values, robust_stats
from imaging.segmentation._roi import restriction
from imaging.segmentation._seed import check_in_body, require_in_body_mask, seed_index
from imaging.segmentation.cleanup import component_at_index, fill_holes, radius_voxels
from imaging.segmentation.organ import _check_image

#: Window (in noise sigmas of the smoothed image) of the first, conservative region.
K_INITIAL = 2.0
#: Thickness of the shell (mm) around the lesion where the surrounding HU is measured.
SHELL_MM = 6.0
#: Smallest lesion-surrounding contrast (HU) that can be segmented.
MIN_CONTRAST_HU = 8.0
#: Radius (mm) of the opening that cuts leaks through narrow necks.
OPEN_MM = 2.0


def _threshold_region(
    smooth: sitk.Image,
    idx: tuple[int, int, int],
    lower: float,
    upper: float,
    mask: sitk.Image | None,
) -> sitk.Image | None:
    region = sitk.BinaryThreshold(smooth, lower, upper, 1, 0)
    if mask is not None:
        region = sitk.And(region, mask)
    opened = sitk.BinaryMorphologicalOpening(region, radius_voxels(smooth, OPEN_MM), sitk.sitkBall)
    kept = component_at_index(opened, idx)
    if kept is None:
        kept = component_at_index(region, idx)
    return kept


def _shell_stats(smooth: sitk.Image, region: sitk.Image, mask: sitk.Image | None) -> float:
    outer = sitk.BinaryDilate(region, radius_voxels(smooth, SHELL_MM), sitk.sitkBall)
    inner = sitk.BinaryDilate(region, radius_voxels(smooth, 1.0), sitk.sitkBall)
    shell = sitk.GetArrayFromImage(sitk.And(outer, sitk.Not(inner))) > 0
    if mask is not None:
        shell &= sitk.GetArrayViewFromImage(mask) > 0
    values = sitk.GetArrayViewFromImage(smooth)[shell]
    if values.size < 10:
        raise SegmentationError(
            "the lesion fills the whole restriction mask: no surrounding tissue to compare "
            "with; expected a lesion smaller than the within mask"
        )
    return robust_stats(values)[0]


def segment_tumour(
    image: sitk.Image,
    seed_lps_mm: Sequence[float],
    *,
    within: sitk.Image | None = None,
    smoothing_mm: float = 2.0,
) -> sitk.Image:
    """Segment a hypo- or hyperdense lesion from a seed inside it.

    Parameters
    ----------
    image : SimpleITK.Image
        3D CT in HU, LPS physical space (mm).
    seed_lps_mm : sequence of 3 float
        A point inside the lesion, LPS (mm).
    within : SimpleITK.Image, optional
        Mask on the image grid (e.g. the liver) the lesion is confined to.
    smoothing_mm : float
        Gaussian smoothing sigma (mm) applied before thresholding.

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 lesion mask on the grid of ``image``.

    Raises
    ------
    SegmentationError
        If the seed is outside the image, in air, outside ``within``, or the lesion does not
        differ from its surroundings by at least ``MIN_CONTRAST_HU``.
    """
    _check_image(image)
    if not smoothing_mm > 0:
        raise SegmentationError(f"smoothing_mm must be > 0, got {smoothing_mm!r}")
    idx = seed_index(image, seed_lps_mm)
    check_in_body(image, idx, seed_lps_mm)
    require_in_body_mask(image, [idx], seed_lps_mm)
    mask = restriction(image, within)
    if mask is not None and mask[idx] == 0:
        point = tuple(round(float(c), 2) for c in seed_lps_mm)
        raise SegmentationError(
            f"seed {point} mm lies outside the within mask; expected a seed inside it"
        )

    smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), smoothing_mm)
    probe_mm = max(3.0, 1.5 * max(image.GetSpacing()))
    lesion_hu, sigma = robust_stats(ball_values(smooth, idx, probe_mm))

    region = _threshold_region(
        smooth, idx, lesion_hu - K_INITIAL * sigma, lesion_hu + K_INITIAL * sigma, mask
    )
    if region is None:
        raise SegmentationError(f"no lesion found at seed {tuple(seed_lps_mm)} mm")
    for _ in range(2):
        around_hu = _shell_stats(smooth, region, mask)
        contrast = around_hu - lesion_hu
        if abs(contrast) < MIN_CONTRAST_HU:
            raise SegmentationError(
                f"lesion at seed {tuple(round(float(c), 2) for c in seed_lps_mm)} mm "
                f"({lesion_hu:.0f} HU) differs from its surroundings ({around_hu:.0f} HU) by "
                f"{abs(contrast):.0f} HU; expected at least {MIN_CONTRAST_HU:.0f} HU"
            )
        edge = lesion_hu + 0.5 * contrast
        # stay within a few lesion sigmas on the far side so air or bone is never included
        if contrast > 0:  # hypodense lesion
            lower, upper = lesion_hu - 4.0 * sigma - abs(contrast), edge
        else:  # hyperdense lesion
            lower, upper = edge, lesion_hu + 4.0 * sigma + abs(contrast)
        grown = _threshold_region(smooth, idx, float(lower), float(upper), mask)
        if grown is None:
            break
        region = fill_holes(grown)
        inner = sitk.GetArrayFromImage(sitk.BinaryErode(region, [1, 1, 1])) > 0
        if inner.sum() >= 20:
            lesion_hu = robust_stats(sitk.GetArrayViewFromImage(smooth)[inner])[0]
    return sitk.Cast(region, sitk.sitkUInt8)
