"""Robust intensity statistics and resampling shared by the seeded segmenters (private)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

#: Factor turning a median absolute deviation into a Gaussian standard deviation.
MAD_TO_SIGMA = 1.4826
#: Smallest standard deviation (HU) a region is given, so that flat synthetic images work.
MIN_SIGMA_HU = 2.0


def robust_stats(values: np.ndarray, *, clip_sigmas: float = 3.0) -> tuple[float, float]:
    """Mean-like centre and spread (HU) of a sample, insensitive to outliers.

    Starts from the median and MAD-based sigma, then re-estimates median and standard
    deviation three times on the values within ``clip_sigmas`` of the centre.

    Returns
    -------
    tuple of float
        ``(centre_hu, sigma_hu)`` with ``sigma_hu >= MIN_SIGMA_HU``.
    """
    v = np.asarray(values, dtype=float).ravel()
    centre = float(np.median(v))
    sigma = max(MAD_TO_SIGMA * float(np.median(np.abs(v - centre))), MIN_SIGMA_HU)
    for _ in range(3):
        kept = v[np.abs(v - centre) <= clip_sigmas * sigma]
        if kept.size < 5:
            break
        centre = float(np.median(kept))
        sigma = max(float(kept.std()), MIN_SIGMA_HU)
    return centre, sigma


def ball_values(image: sitk.Image, idx: tuple[int, int, int], radius_mm: float) -> np.ndarray:
    """Voxel values within ``radius_mm`` of voxel ``idx`` (SimpleITK ``(x, y, z)`` order)."""
    arr = sitk.GetArrayViewFromImage(image)
    sp = np.array(image.GetSpacing()[::-1])
    centre = np.array(idx[::-1])
    r = np.ceil(radius_mm / sp).astype(int)
    lo = np.maximum(centre - r, 0)
    hi = np.minimum(centre + r + 1, arr.shape)
    sub = arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    zz, yy, xx = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    d2 = (
        ((zz - centre[0]) * sp[0]) ** 2
        + ((yy - centre[1]) * sp[1]) ** 2
        + ((xx - centre[2]) * sp[2]) ** 2
    )
    return np.asarray(sub[d2 <= radius_mm**2])


def working_grid(image: sitk.Image, min_spacing_mm: float) -> sitk.Image | None:
    """Coarser copy of ``image`` with every spacing at least ``min_spacing_mm``, or ``None``.

    ``None`` means the image is already coarse enough and is used as it is.
    """
    spacing = np.array(image.GetSpacing())
    if np.all(spacing >= min_spacing_mm - 1e-6):
        return None
    new_spacing = np.maximum(spacing, min_spacing_mm)
    size = np.array(image.GetSize())
    new_size = np.maximum(np.round(size * spacing / new_spacing).astype(int), 1)
    # keep the physical extent: first voxel centre shifted by half the spacing change
    direction = np.array(image.GetDirection()).reshape(3, 3)
    shift = direction @ ((new_spacing - spacing) / 2.0)
    origin = np.array(image.GetOrigin()) + shift
    return sitk.Resample(
        image,
        [int(n) for n in new_size],
        sitk.Transform(),
        sitk.sitkLinear,
        [float(o) for o in origin],
        [float(s) for s in new_spacing],
        image.GetDirection(),
        0.0,
        sitk.sitkFloat32,
    )


def mask_to_grid(mask: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Resample a 0/1 mask onto ``reference`` (linear, threshold at 0.5) as ``sitkUInt8``."""
    if (
        mask.GetSize() == reference.GetSize()
        and np.allclose(mask.GetSpacing(), reference.GetSpacing())
        and np.allclose(mask.GetOrigin(), reference.GetOrigin())
    ):
        out = sitk.Cast(mask, sitk.sitkUInt8)
        out.CopyInformation(reference)
        return out
    soft = sitk.Resample(
        sitk.Cast(mask, sitk.sitkFloat32),
        reference,
        sitk.Transform(),
        sitk.sitkLinear,
        0.0,
        sitk.sitkFloat32,
    )
    return sitk.Cast(sitk.GreaterEqual(soft, 0.5), sitk.sitkUInt8)
