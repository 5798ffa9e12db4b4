"""Seeded segmentation of solid abdominal organs (liver, spleen, kidney) from one seed.

Method (all parameters in mm and derived from the image, none tuned to one seed):

1. Gaussian smoothing (``sigma = smoothing_mm``) on a working grid of at least
   ``work_spacing_mm`` (finer images are downsampled for speed; the mask is resampled back).
2. Robust intensity statistics (median / clipped standard deviation) in a ball around the seed;
   the HU window is ``[centre - k_low * sigma, centre + k_high * sigma]``.
3. Threshold, a small opening (``open_mm``) to cut thin bridges, component containing the seed.
4. Inclusion of enclosed structures (:func:`_include_enclosed`): a closing of radius
   ``inclusion_mm`` (about the largest intra-organ vessel radius) proposes the voxels the
   parenchyma surrounds; only voxels outside the window but neither background (above the
   half-maximum towards the darker neighbour) nor beyond ``vessel_contrast_hu`` are taken,
   and only in connected pieces whose boundary opens to the outside of the closing for at
   most ``max_open_fraction`` (tunnels of vessels and embedded lesions, not grooves between
   the organ and a neighbour). Holes are then filled (3D and axial slices). Done BEFORE the
   split so that vessels riddling the organ do not cut it into watershed basins.
5. Split of thick leaks (vena cava, aorta, stomach touching the organ): watershed of the
   inverted distance map from h-maxima markers (``split_h_mm``), keeping the seed's basin.
6. The statistics are re-estimated inside the eroded result and steps 3-5 repeated
   (``iterations`` times), so that the window no longer depends on where the seed fell.
   The window is never narrower than ``min_sigma_hu`` per sigma: parenchyma varies by
   several HU (perfusion, partial volume near vessels) even where the noise is low.
7. Hole filling, a final opening (``final_open_mm``) with the seed's component kept; the
   opening's loss is given back where it is finer than the working voxel (``detail_mm``)
   and for bright (vessel) voxels within ``restore_mm``; the edge is moved to the
   half-maximum (:func:`_boundary_rim`), then a closing (``close_mm``) and 2D + 3D hole
   filling: the mask is the organ's whole envelope, including its vessels and lesions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from imaging.errors import SegmentationError
from imaging.segmentation._body import Body, air_level, find_body, n4_corrected
from imaging.segmentation._intensity import (
    ball_values,
    mask_to_grid,
    robust_stats,
    working_grid,
)
from imaging.segmentation._seed import check_in_body, seed_index
from imaging.segmentation.checks import (
    Attempt,
    Check,
    CheckedSegmentation,
    SegmentationCheckError,
    ShapeLimits,
    VolumeLimits,
    failed,
    growth_curve,
    organ_checks,
    refusal,
)
from imaging.segmentation.cleanup import component_at_index, fill_holes, radius_voxels


@dataclass(frozen=True)
class OrganModel:
    """Parameters of :func:`segment_organ` for one organ (lengths in mm)."""

    stats_radius_mm: float = 10.0
    smoothing_mm: float = 1.5
    work_spacing_mm: float = 2.0
    k_low: float = 3.5
    k_high: float = 3.0
    open_mm: float = 3.0
    split_h_mm: float = 6.0
    final_open_mm: float = 6.0
    close_mm: float = 3.0
    iterations: int = 2
    rim_mm: float = 4.0
    vessel_contrast_hu: float = 250.0
    inclusion_mm: float = 8.0
    min_sigma_hu: float = 8.0
    max_open_fraction: float = 0.1
    restore_mm: float = 8.0
    detail_mm: float = 2.0
    dark_floor: float | None = None
    final_open_voxels: int = 1
    recentre: bool = False
    first_window_scale: float = 1.0


#: Spleen and kidney keep the window, split and final steps they were validated with on the
#: real CT: no enclosed-structure inclusion, window floor or restoration (those are for the
#: vessel-riddled liver; on the kidney they add the renal sinus and leak to the neighbours).
_COMPACT = {
    "inclusion_mm": 0.0,
    "min_sigma_hu": 0.0,
    "restore_mm": 0.0,
    "detail_mm": 0.0,
    "recentre": True,
}

#: Organ models known to :func:`segment_organ`.
ORGANS: dict[str, OrganModel] = {
    "liver": OrganModel(final_open_voxels=3),
    "spleen": OrganModel(k_low=3.0, split_h_mm=4.0, final_open_mm=4.5, **_COMPACT),
    "kidney": OrganModel(stats_radius_mm=6.0, split_h_mm=4.0, final_open_mm=3.0, **_COMPACT),
}


def _basin_of_seed(region: sitk.Image, idx: tuple[int, int, int], h_mm: float) -> sitk.Image:
    """Watershed split of ``region`` on its distance map; the basin containing ``idx``."""
    dist = sitk.SignedMaurerDistanceMap(
        region, insideIsPositive=True, squaredDistance=False, useImageSpacing=True
    )
    dist = sitk.Mask(dist, region)
    top = float(np.max(sitk.GetArrayViewFromImage(dist)))
    peaks = sitk.RegionalMaxima(
        sitk.HMaxima(dist, h_mm), backgroundValue=0, foregroundValue=1, fullyConnected=True
    )
    markers = sitk.ConnectedComponent(sitk.Mask(peaks, region))
    basins = sitk.MorphologicalWatershedFromMarkers(
        sitk.InvertIntensity(dist, top), markers, markWatershedLine=False, fullyConnected=True
    )
    basins = sitk.Mask(basins, region)
    return sitk.Cast(sitk.Equal(basins, basins[idx]), sitk.sitkUInt8)


def _grow(
    smooth: sitk.Image, idx: tuple[int, int, int], lower: float, upper: float, model: OrganModel
) -> sitk.Image | None:
    """Threshold window, opening, seed component and distance-watershed split."""
    window = sitk.BinaryThreshold(smooth, lower, upper, 1, 0)
    window = sitk.BinaryMorphologicalOpening(
        window, radius_voxels(smooth, model.open_mm), sitk.sitkBall
    )
    region = component_at_index(window, idx)
    if region is None:
        return None
    if model.inclusion_mm > 0:
        region = _include_enclosed(smooth, region, lower, upper, model)
    return _basin_of_seed(region, idx, model.split_h_mm)


def _include_enclosed(
    smooth: sitk.Image, region: sitk.Image, lower: float, upper: float, model: OrganModel
) -> sitk.Image:
    """Add the vessels and lesions that ``region`` (parenchyma in the HU window) encloses.

    Candidates are voxels outside the window that are neither background (below the
    half-maximum between the organ and its darker surroundings) nor brighter than the organ
    by more than ``vessel_contrast_hu``, inside a closing of ``region`` by ``inclusion_mm``.
    A connected piece of candidates is kept when at most ``max_open_fraction`` of its
    boundary faces the outside of the closing: a vessel tunnel or an embedded lesion is
    surrounded by parenchyma, a groove between the organ and a neighbour is open on one
    side. Holes are filled in 3D and in axial slices.
    """
    arr = sitk.GetArrayViewFromImage(smooth)
    reg = sitk.GetArrayViewFromImage(region) > 0
    centre = 0.5 * (lower + upper)
    steps = max(1, int(round(model.rim_mm / min(smooth.GetSpacing()))))
    outer = sitk.GetArrayFromImage(sitk.BinaryDilate(region, [2 * steps] * 3, sitk.sitkBall))
    dark = arr[(outer > 0) & ~reg & (arr < lower)]
    level = 0.5 * (centre + float(np.median(dark))) if dark.size else lower
    floor = level if model.dark_floor is None else model.dark_floor
    cand = ((arr >= floor) & (arr < lower)) | (
        (arr > upper) & (arr <= centre + model.vessel_contrast_hu)
    )
    closed = sitk.BinaryMorphologicalClosing(
        region, radius_voxels(smooth, model.inclusion_mm), sitk.sitkBall
    )
    closed_arr = sitk.GetArrayViewFromImage(closed) > 0
    add = closed_arr & cand & ~reg
    labels, n = ndi.label(add, structure=np.ones((3, 3, 3), bool))
    if n:
        shell = ndi.grey_dilation(labels, size=(3, 3, 3)) * (labels == 0)
        open_side = np.bincount(shell[~closed_arr].ravel(), minlength=n + 1)
        total = np.bincount(shell.ravel(), minlength=n + 1)
        frac = open_side / np.maximum(total, 1)
        keep = np.flatnonzero(frac <= model.max_open_fraction)
        add = np.isin(labels, keep[keep > 0])
    out = sitk.GetImageFromArray((reg | add).astype(np.uint8))
    out.CopyInformation(region)
    return fill_holes(out, slice_wise=True)


#: Plausible volumes of the organs (adult, mL) and their largest share of the body in a scan.
ORGAN_VOLUMES: dict[str, VolumeLimits] = {
    "liver": VolumeLimits(min_ml=300.0, max_ml=3500.0, max_body_fraction=0.5, height_mm=160.0),
    "spleen": VolumeLimits(min_ml=40.0, max_ml=1500.0, max_body_fraction=0.2, height_mm=110.0),
    "kidney": VolumeLimits(min_ml=40.0, max_ml=450.0, max_body_fraction=0.1, height_mm=110.0),
}
#: Plausible shapes and places of the organs: least compactness, largest growth-curve jump,
#: centroid across the body (0 = patient's right / anterior edge, 1 = left / posterior edge).
ORGAN_SHAPES: dict[str, ShapeLimits] = {
    "liver": ShapeLimits(0.3, 6.0, lateral=(0.0, 0.6), ap=(0.1, 0.7)),
    "spleen": ShapeLimits(0.3, 6.0, lateral=(0.5, 1.0), ap=(0.3, 0.85)),
    "kidney": ShapeLimits(0.3, 6.0, lateral=(0.1, 0.9), ap=(0.4, 0.78)),
}


#: Least window sigma of an image without HU scale (MR), in its "HU" (see
#: :func:`_without_hu_scale`): a residual bias field and coil shading make the parenchyma vary
#: by several percent of the tissue-air contrast, more than the noise the seed's ball shows.
MR_MIN_SIGMA = 40.0
#: Volume ratio (recentred / seed's own) within which the recentred result is taken.
RECENTRE_RATIO = (0.8, 1.25)
#: Least window sigma (image units) of the last parameter set :func:`parameter_sets` tries.
WIDE_SIGMA = 8.0


def parameter_sets(model: OrganModel) -> list[tuple[str, OrganModel]]:
    """The parameter sets :func:`segment_organ_checked` tries in turn.

    The organ's own model, then the same model whose first pass grows in a window narrowed
    to 70 % (statistics learned on a core clear of neighbours when the seed's ball reaches
    into one, e.g. renal-sinus fat; the later passes use the model's window), then a window
    narrowed to 70 % throughout (fewer neighbours of similar intensity), then that window
    with a finer split and a wider opening (cuts thick leaks), then a window at least
    :data:`WIDE_SIGMA` noise sigmas wide (a seed in a locally uniform patch, e.g. the renal
    sinus, whose spread underestimates the organ's).
    """
    narrow = replace(model, k_low=0.7 * model.k_low, k_high=0.7 * model.k_high)
    split = replace(narrow, split_h_mm=0.5 * model.split_h_mm, open_mm=1.5 * model.open_mm)
    wide = replace(model, min_sigma_hu=max(model.min_sigma_hu, WIDE_SIGMA))
    return [
        ("default", model),
        ("narrow_start", replace(model, first_window_scale=0.7)),
        ("narrow_window", narrow),
        ("narrow_window_fine_split", split),
        ("wide_window", wide),
    ]


def segment_organ(
    image: sitk.Image, seed_lps_mm: Sequence[float], *, organ: str = "liver"
) -> sitk.Image:
    """Segment a solid organ from one seed inside it; the mask of :func:`segment_organ_checked`.

    Parameters
    ----------
    image : SimpleITK.Image
        3D CT (HU) or MR, LPS physical space (mm).
    seed_lps_mm : sequence of 3 float
        A point inside the organ parenchyma, LPS (mm).
    organ : str
        One of :data:`ORGANS` (``"liver"``, ``"spleen"``, ``"kidney"``).

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 mask on the grid of ``image`` (the whole organ envelope, holes
        such as vessels and lesions filled).

    Raises
    ------
    SegmentationError
        As :func:`segment_organ_checked`.
    """
    return segment_organ_checked(image, seed_lps_mm, organ=organ).mask


def segment_organ_checked(
    image: sitk.Image, seed_lps_mm: Sequence[float], *, organ: str = "liver"
) -> CheckedSegmentation:
    """Segment a solid organ from one seed and check the result before returning it.

    Each of :func:`parameter_sets` is tried in turn until a result passes every check of
    :func:`imaging.segmentation.checks.organ_checks` (seed neighbourhood inside, volume for
    the body's size, share of the body, outside the body, on the image border, one piece,
    compactness, growth-curve jump).

    Parameters
    ----------
    image : SimpleITK.Image
        3D CT (HU) or MR, LPS physical space (mm).
    seed_lps_mm : sequence of 3 float
        A point inside the organ parenchyma, LPS (mm).
    organ : str
        One of :data:`ORGANS`.

    Returns
    -------
    CheckedSegmentation
        The mask (``sitkUInt8`` 0/1 on the grid of ``image``), the checks and their values,
        the parameter set used and the ones rejected before it.

    Raises
    ------
    SegmentationCheckError
        If no parameter set gives a result that passes; the message names the failed checks
        and their values.
    SegmentationError
        If the organ is unknown or the seed lies outside the image or in air (CT < -300 HU).
    """
    if organ not in ORGANS:
        raise SegmentationError(f"unknown organ {organ!r}; expected one of {sorted(ORGANS)}")
    _check_image(image)
    idx_in = seed_index(image, seed_lps_mm)
    check_in_body(image, idx_in, seed_lps_mm)

    work = working_grid(image, ORGANS[organ].work_spacing_mm)
    work = sitk.Cast(image, sitk.sitkFloat32) if work is None else work
    idx = seed_index(work, seed_lps_mm)
    body = find_body(work)
    work, unit, floor = _without_hu_scale(work, body)
    rejected: list[Attempt] = []
    smooth_of: dict[float, sitk.Image] = {}
    for name, hu_model in parameter_sets(ORGANS[organ]):
        model = _in_image_units(hu_model, unit, floor)
        if model.smoothing_mm not in smooth_of:
            smooth_of[model.smoothing_mm] = sitk.SmoothingRecursiveGaussian(
                work, model.smoothing_mm
            )
        smooth = smooth_of[model.smoothing_mm]
        start = _snapped_seed(smooth, idx, model)
        organ_mask, window = _recentred(smooth, start, model)
        if organ_mask is None:
            rejected.append(Attempt(name, (Check("seed_region_ml", 0.0, lower=0.001, unit="mL"),)))
            continue
        curve = growth_curve(
            smooth, start, window.centre, window.lower, window.upper, model.open_mm
        )
        checks = organ_checks(
            organ_mask, idx, body, ORGAN_VOLUMES[organ], ORGAN_SHAPES[organ], curve
        )
        bad = failed(checks)
        if not bad:
            return CheckedSegmentation(
                mask=mask_to_grid(organ_mask, image),
                structure=organ,
                parameters=name,
                checks=checks,
                rejected=tuple(rejected),
            )
        rejected.append(Attempt(name, tuple(bad)))
    raise SegmentationCheckError(refusal(organ, seed_lps_mm, rejected), rejected)


def _without_hu_scale(work: sitk.Image, body: Body) -> tuple[sitk.Image, float, float | None]:
    """An image without a HU scale (no negative values: MR) made ready for the organ model.

    Returns the image (bias-corrected by N4 inside the body when it has no HU scale), the
    size of one "HU" in its units (``(median body - air level) / 1000``, so that body tissue
    against air spans 1000 as in CT; 1 for CT) and the floor of enclosed dark structures
    (its air level: vessels may be darker than the parenchyma; ``None`` for CT).
    """
    arr = sitk.GetArrayViewFromImage(work)
    if float(arr.min()) < 0:
        return work, 1.0, None
    work = n4_corrected(work, body.mask)
    arr = sitk.GetArrayViewFromImage(work)
    air = air_level(arr)
    unit = max((float(np.median(arr[body.mask])) - air) / 1000.0, 1e-6)
    return work, unit, air


def _in_image_units(model: OrganModel, unit: float, floor: float | None) -> OrganModel:
    """``model`` with its HU constants in the image's units and the enclosed dark floor."""
    if unit == 1.0 and floor is None:
        return model
    return replace(
        model,
        vessel_contrast_hu=model.vessel_contrast_hu * unit,
        min_sigma_hu=max(model.min_sigma_hu, MR_MIN_SIGMA) * unit,
        dark_floor=floor,
    )


def _recentred(
    smooth: sitk.Image, idx: tuple[int, int, int], model: OrganModel
) -> tuple[sitk.Image | None, _Window]:
    """Segment from the seed, then (``model.recentre``) from the deepest point of the result.

    The statistics and the basin of a seed near the organ's edge or a vessel differ from
    those of its core; the second run starts where the organ is thickest and is kept when
    the seed still lies in it, so that seeds anywhere in the organ give the same result.
    """
    first, window = _segment_once(smooth, idx, model)
    if first is None or not model.recentre:
        return first, window
    depth = sitk.GetArrayViewFromImage(
        sitk.SignedMaurerDistanceMap(first, insideIsPositive=True, useImageSpacing=True)
    )
    k, j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
    deep = (int(i), int(j), int(k))
    if deep == tuple(idx):
        return first, window
    second, deep_window = _segment_once(smooth, deep, model)
    if second is None or second[tuple(int(v) for v in idx)] == 0:
        return first, window
    ratio = _count(second) / max(_count(first), 1)
    if not RECENTRE_RATIO[0] <= ratio <= RECENTRE_RATIO[1]:
        return first, window  # one of the two leaked or lost a part: keep the seed's own
    return second, deep_window


def _count(mask: sitk.Image) -> int:
    return int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))


def _segment_once(
    smooth: sitk.Image, idx: tuple[int, int, int], model: OrganModel
) -> tuple[sitk.Image | None, _Window]:
    """Steps 2-7 of the method on the smoothed working image; ``None`` if nothing grows."""
    organ_mask, window = _grow_iteratively(smooth, idx, model)
    if organ_mask is None:
        return None, window
    organ_mask = _open_to_seed_component(fill_holes(organ_mask), smooth, idx, window, model)
    organ_mask = _boundary_rim(smooth, organ_mask, window.centre, window.lower, window.upper, model)
    organ_mask = sitk.BinaryMorphologicalClosing(
        organ_mask, radius_voxels(smooth, model.close_mm), sitk.sitkBall
    )
    organ_mask = fill_holes(organ_mask, slice_wise=True)
    # the restored vessels may leave specks apart from the organ: keep the seed's piece
    return component_at_index(organ_mask, idx) or organ_mask, window


@dataclass(frozen=True)
class _Window:
    """The organ's HU statistics (robust centre and spread) and the HU window grown in."""

    centre: float
    sigma: float
    lower: float
    upper: float


def _grow_iteratively(
    smooth: sitk.Image, idx: tuple[int, int, int], model: OrganModel
) -> tuple[sitk.Image | None, _Window]:
    """Grow in a HU window around the seed's statistics, re-estimated on the grown core.

    The first pass uses the stricter of ``k_low`` and ``k_high`` below the centre (both
    scaled by ``first_window_scale``); each of the ``model.iterations`` passes after it
    re-estimates centre and spread from the eroded region. Returns the last grown region
    (``None`` if none) and the window that grew it.
    """
    smooth_arr = sitk.GetArrayViewFromImage(smooth)
    centre, sigma = robust_stats(ball_values(smooth, idx, model.stats_radius_mm))
    organ_mask: sitk.Image | None = None
    for it in range(model.iterations + 1):
        sigma = max(sigma, model.min_sigma_hu)
        lower, upper = _window_bounds(centre, sigma, model, first=it == 0)
        grown = _grow(smooth, idx, float(lower), float(upper), model)
        if grown is None:
            break
        organ_mask = grown
        if it < model.iterations:
            core = sitk.GetArrayFromImage(sitk.BinaryErode(grown, [1, 1, 1])) > 0
            if core.sum() < 20:
                break
            centre, sigma = robust_stats(smooth_arr[core])
    return organ_mask, _Window(float(centre), float(sigma), float(lower), float(upper))


def _window_bounds(
    centre: float, sigma: float, model: OrganModel, *, first: bool
) -> tuple[float, float]:
    """HU window of one growing pass (the first is the stricter below the centre, scaled)."""
    if not first:
        return centre - model.k_low * sigma, centre + model.k_high * sigma
    scale = model.first_window_scale
    return centre - scale * max(model.k_low, model.k_high) * sigma, centre + scale * (
        model.k_high * sigma
    )


def _snapped_seed(
    smooth: sitk.Image, idx: tuple[int, int, int], model: OrganModel
) -> tuple[int, int, int]:
    """The seed, or the nearest voxel of its first opened window within ``stats_radius_mm``.

    On a noisy scan the seed's own voxel may fall outside the window learned from its ball,
    or be removed by the opening with the thin piece around it, though the ball lies in the
    organ; growing then starts from the nearest voxel that survives (the checks still judge
    the result at the user's seed). The seed itself when none lies within the radius.
    """
    centre, sigma = robust_stats(ball_values(smooth, idx, model.stats_radius_mm))
    lower, upper = _window_bounds(centre, max(sigma, model.min_sigma_hu), model, first=True)
    window = sitk.BinaryMorphologicalOpening(
        sitk.BinaryThreshold(smooth, float(lower), float(upper), 1, 0),
        radius_voxels(smooth, model.open_mm),
        sitk.sitkBall,
    )
    arr = sitk.GetArrayViewFromImage(window)
    i, j, k = idx
    if arr[k, j, i]:
        return idx
    spacing = np.asarray(smooth.GetSpacing()[::-1])
    reach = np.ceil(model.stats_radius_mm / spacing).astype(int)
    centre_zyx = np.array([k, j, i])
    lo = np.maximum(centre_zyx - reach, 0)
    hi = np.minimum(centre_zyx + reach + 1, arr.shape)
    near = np.argwhere(arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] > 0) + lo
    if near.size == 0:
        return idx
    dist = np.linalg.norm((near - centre_zyx) * spacing, axis=1)
    best = int(np.argmin(dist))
    if dist[best] > model.stats_radius_mm:
        return idx
    z, y, x = (int(v) for v in near[best])
    return (x, y, z)


def _open_to_seed_component(
    organ_mask: sitk.Image,
    smooth: sitk.Image,
    idx: tuple[int, int, int],
    window: _Window,
    model: OrganModel,
) -> sitk.Image:
    """Open by ``final_open_mm`` (at least ``final_open_voxels``) and keep the seed's piece.

    Partial-volume bridges to a neighbour are a few voxels wide whatever the voxel size, so
    the radius is also at least ``final_open_voxels`` working voxels (3 for the liver: 6 mm
    on a 2 mm grid, 9 mm on a 3 mm CT, where its aorta and vena cava otherwise stay on).

    Bright (above the window) voxels within ``restore_mm`` of the kept piece and any voxel of
    the mask within ``detail_mm`` of it come back. A seed in a part thinner than the opening
    (a thin lobe) keeps that part and the piece it joins (:func:`_share_of_seed`), so that a
    leak the opening cut off stays cut.
    """
    opened = sitk.BinaryMorphologicalOpening(
        organ_mask,
        [max(r, model.final_open_voxels) for r in radius_voxels(smooth, model.final_open_mm)],
        sitk.sitkBall,
    )
    kept = component_at_index(opened, idx)
    if kept is None:
        kept = _share_of_seed(organ_mask, opened, idx)
    if model.restore_mm > 0:
        bright = sitk.Cast(sitk.Greater(smooth, float(window.upper)), sitk.sitkUInt8)
        kept = sitk.Or(
            kept,
            sitk.And(
                sitk.And(organ_mask, bright),
                sitk.BinaryDilate(kept, radius_voxels(smooth, model.restore_mm), sitk.sitkBall),
            ),
        )
    detail = [int(np.floor(model.detail_mm / sp + 1e-6)) for sp in smooth.GetSpacing()]
    if min(detail) > 0:
        kept = sitk.Or(kept, sitk.And(organ_mask, sitk.BinaryDilate(kept, detail, sitk.sitkBall)))
    return kept


def _share_of_seed(
    organ_mask: sitk.Image, opened: sitk.Image, idx: tuple[int, int, int]
) -> sitk.Image:
    """The seed's thin part of ``organ_mask`` and the piece of ``opened`` it touches most.

    The thin part is the connected piece of ``organ_mask - opened`` around the seed (a thin
    lobe); the rest of what the opening removed (bridges to a neighbour, the neighbour
    itself) stays removed. Without an opened piece touching it, the thin part alone.
    """
    mask = sitk.GetArrayViewFromImage(organ_mask) > 0
    pieces = sitk.GetArrayFromImage(sitk.ConnectedComponent(opened))
    thin_labels, _ = ndi.label(mask & (pieces == 0))
    i, j, k = idx
    if thin_labels[k, j, i] == 0:  # the seed is not in the mask: nothing of its own to keep
        return organ_mask
    thin = thin_labels == thin_labels[k, j, i]
    contact = pieces[ndi.binary_dilation(thin) & ~thin]
    contact = contact[contact > 0]
    if contact.size:
        thin |= pieces == np.bincount(contact).argmax()
    out = sitk.GetImageFromArray(thin.astype(np.uint8))
    out.CopyInformation(organ_mask)
    return out


def _boundary_rim(
    smooth: sitk.Image,
    core: sitk.Image,
    centre: float,
    lower: float,
    upper: float,
    model: OrganModel,
) -> sitk.Image:
    """Move the edge from the strict HU window out to the half-maximum level.

    The window's lower bound lies a few noise sigmas below the organ HU, i.e. on the organ
    side of a blurred edge; the true edge is at the half-maximum between organ and darker
    neighbour (fat, lesion). Grow by geodesic dilation, at most ``rim_mm``, into voxels
    only through voxels outside the HU window (partial volume towards darker tissue, or
    contrast vessels at the hilum up to ``centre + vessel_contrast_hu``): tissue inside the
    window that the opening and split gave to a neighbour stays excluded.
    """
    arr = sitk.GetArrayViewFromImage(smooth)
    reach = model.vessel_contrast_hu
    core_arr = sitk.GetArrayViewFromImage(core) > 0
    steps = max(1, int(round(model.rim_mm / min(smooth.GetSpacing()))))
    # neighbour HU measured beyond the blurred edge: a shell 1x to 3x the rim width out
    inner = sitk.GetArrayFromImage(sitk.BinaryDilate(core, [steps] * 3, sitk.sitkBall)) > 0
    outer = sitk.GetArrayFromImage(sitk.BinaryDilate(core, [3 * steps] * 3, sitk.sitkBall))
    dark = arr[(outer > 0) & ~inner & ~core_arr & (arr < lower)]
    if dark.size == 0:
        return core
    level = min(0.5 * (centre + float(np.median(dark))), lower)
    allowed = sitk.GetImageFromArray(
        (((arr >= level) & (arr < lower)) | ((arr > upper) & (arr <= centre + reach))).astype(
            np.uint8
        )
    )
    allowed.CopyInformation(smooth)
    grown = core
    for _ in range(steps):
        grown = sitk.Or(grown, sitk.And(sitk.BinaryDilate(grown, [1, 1, 1]), allowed))
    return grown


def _check_image(image: sitk.Image) -> None:
    if not isinstance(image, sitk.Image):
        raise SegmentationError(f"image must be a SimpleITK.Image, got {type(image).__name__}")
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise SegmentationError(
            f"image must be a 3D scalar image, got {image.GetDimension()}D with "
            f"{image.GetNumberOfComponentsPerPixel()} components"
        )
