"""MR-like image formation of the phantom: T1-weighted contrast, bias field, Rician noise.

An option of :func:`surgplan.phantom.generate_phantom` (``modality="mr"``); the default CT is
unchanged. The signal has no physical scale (arbitrary units, unsigned 16-bit): fat is bright,
liver brighter than spleen and kidney, fluid, vessels (without contrast) and cortical bone
dark, air and lung near zero. The noise-free image is blurred by the PSF, multiplied by a
smooth receive-coil bias field (a linear ramp and a quadratic fall-off from the coil centre)
and given Rician noise: the magnitude of the signal plus complex Gaussian noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from surgplan.phantom.sdf import FloatArray, Grid

T1: dict[str, float] = {
    "air": 0.0,
    "lung": 40.0,
    "bowel_gas": 0.0,
    "fat": 950.0,
    "visceral_fat": 900.0,
    "fluid": 120.0,
    "spinal_canal": 150.0,
    "muscle": 330.0,
    "bowel_wall": 360.0,
    "disc": 280.0,
    "liver": 620.0,
    "tumour": 360.0,
    "spleen": 430.0,
    "kidney": 470.0,
    "portal_vein": 180.0,
    "hepatic_veins": 170.0,
    "ivc": 170.0,
    "aorta": 160.0,
    "cancellous_bone": 700.0,
    "rib_marrow": 650.0,
    "cortical_bone": 40.0,
}
"""T1-weighted signal of each tissue before bias, blur and noise (arbitrary units); the keys
are those of :data:`surgplan.phantom.ct.HU`."""

#: Peak-to-peak amplitude of the bias field (fraction of the mean gain).
BIAS_AMPLITUDE = 0.3
#: Largest signal stored (unsigned 16-bit).
MR_MAX = 65535


def bias_field(grid: Grid, amplitude: float = BIAS_AMPLITUDE) -> FloatArray:
    """Smooth multiplicative gain ``(nz, ny, nx)``, mean about 1, range about ``amplitude``.

    A left-right linear ramp plus a quadratic fall-off away from an anterior coil centre.
    """
    x, y, z = grid.axes()
    lo = np.asarray(grid.origin_mm, float)
    hi = lo + np.asarray(grid.spacing_mm) * (np.asarray(grid.size) - 1)
    centre, half = (lo + hi) / 2.0, (hi - lo) / 2.0
    u = (x - centre[0]) / half[0]
    v = (y - lo[1]) / (2.0 * half[1])  # 0 at the anterior edge (coil), 1 posterior
    w = (z - centre[2]) / half[2]
    gain = 1.0 + 0.5 * amplitude * u - 0.5 * amplitude * (v**2 + 0.5 * w**2)
    return np.broadcast_to(gain / float(np.mean(gain)), grid.shape_zyx)


def mr_formation(
    signal: FloatArray,
    grid: Grid,
    *,
    psf_sigma_mm: float,
    noise: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Blur, bias and Rician noise of a noise-free T1 image; unsigned 16-bit result.

    Parameters
    ----------
    signal
        Noise-free T1 signal (arbitrary units), ``(nz, ny, nx)``.
    grid
        Its grid (spacing for the PSF, extent for the bias field).
    psf_sigma_mm
        Standard deviation of the Gaussian point-spread function, mm (0 for none).
    noise
        Standard deviation of each of the two Gaussian noise channels (signal units).
    rng
        Source of the noise.
    """
    out = signal
    if psf_sigma_mm > 0:
        sigma_vox = [psf_sigma_mm / s for s in grid.spacing_mm[::-1]]
        out = ndimage.gaussian_filter(out, sigma=sigma_vox, mode="nearest", truncate=3.0)
    out = out * bias_field(grid)
    if noise > 0:
        real = out + rng.normal(0.0, noise, size=out.shape)
        imag = rng.normal(0.0, noise, size=out.shape)
        out = np.hypot(real, imag)
    return np.clip(np.rint(out), 0, MR_MAX).astype(np.uint16)
