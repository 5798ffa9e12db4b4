"""CT image formation: attenuation values, partial-volume painting, blur and noise.

The phase imitated is a contrast-enhanced **portal-venous** CT (about 70 s after injection):
liver parenchyma 100 HU, a hypodense tumour 35 HU below it, portal and hepatic veins, vena cava
and aorta 185-200 HU.

Image formation follows the usual analytic-phantom recipe: each structure's signed distance
``d`` (mm) gives the fraction of a voxel it covers, ``f = clip(1/2 - d / w, 0, 1)`` with ``w``
the voxel's mean edge length (a linear partial-volume ramp across the boundary); structures are
painted one over the other, ``hu <- hu + f (hu_structure - hu)``; the result is blurred by a
Gaussian point-spread function and white Gaussian noise is added.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from surgplan.phantom.sdf import FloatArray, Grid

HU: dict[str, float] = {
    "air": -1000.0,
    "lung": -850.0,
    "bowel_gas": -950.0,
    "fat": -100.0,
    "visceral_fat": -90.0,
    "fluid": 15.0,
    "spinal_canal": 20.0,
    "muscle": 50.0,
    "bowel_wall": 45.0,
    "disc": 80.0,
    "liver": 100.0,
    "tumour": 65.0,
    "spleen": 115.0,
    "kidney": 170.0,
    "portal_vein": 200.0,
    "hepatic_veins": 185.0,
    "ivc": 185.0,
    "aorta": 200.0,
    "cancellous_bone": 250.0,
    "rib_marrow": 300.0,
    "cortical_bone": 700.0,
}
"""Attenuation of each tissue before blur and noise, Hounsfield units (portal-venous phase)."""

LABEL_NAMES: dict[int, str] = {
    1: "liver",
    2: "tumour",
    3: "portal_vein",
    4: "hepatic_veins",
    5: "ivc",
    6: "aorta",
    7: "bone",
    8: "kidney_right",
    9: "kidney_left",
    10: "spleen",
}
"""Label value -> structure name of the label map. Label 1 holds the liver parenchyma only: the
tumour and the intrahepatic vessels carry their own labels. The liver envelope (parenchyma +
tumour + intrahepatic vessels) is ``Phantom.masks["liver"]``."""

LABEL_ORDER: tuple[str, ...] = (
    "liver",
    "kidney_right",
    "kidney_left",
    "spleen",
    "tumour",
    "hepatic_veins",
    "portal_vein",
    "ivc",
    "aorta",
    "bone",
)
"""Order in which labels are written into the label map; a later one wins where masks overlap."""


class Painter:
    """Accumulates a partial-volume HU image structure by structure (painter's algorithm).

    Parameters
    ----------
    grid
        The voxel grid.
    background_hu
        Value of voxels no structure covers.
    """

    def __init__(self, grid: Grid, background_hu: float) -> None:
        self.grid = grid
        self.hu = np.full(grid.shape_zyx, background_hu, dtype=np.float64)
        # Width of the partial-volume ramp: the voxel's mean edge length (mm).
        self.ramp_mm = float(np.prod(grid.spacing_mm) ** (1.0 / 3.0))

    def coverage(self, sdf_mm: FloatArray) -> FloatArray:
        """Fraction (0-1) of each voxel inside the surface ``sdf_mm = 0``."""
        return np.clip(0.5 - sdf_mm / self.ramp_mm, 0.0, 1.0)

    def paint(self, sdf_mm: FloatArray, hu: float) -> None:
        """Paint the structure with signed distance ``sdf_mm`` (grid-shaped) at ``hu``."""
        f = self.coverage(sdf_mm)
        self.hu += f * (hu - self.hu)


def blur_and_noise(
    hu: FloatArray,
    grid: Grid,
    *,
    psf_sigma_mm: float,
    noise_hu: float,
    rng: np.random.Generator,
) -> FloatArray:
    """Blur by an isotropic Gaussian PSF and add white Gaussian noise.

    Parameters
    ----------
    hu
        Noise-free image, HU, ``(nz, ny, nx)``.
    grid
        Its grid (for the spacing).
    psf_sigma_mm
        Standard deviation of the Gaussian point-spread function, mm (0 for none).
    noise_hu
        Standard deviation of the added noise, HU (0 for none).
    rng
        Source of the noise.

    Returns
    -------
    numpy.ndarray
        The blurred, noisy image, HU, float64.
    """
    out = hu
    if psf_sigma_mm > 0:
        sigma_vox = [psf_sigma_mm / s for s in grid.spacing_mm[::-1]]
        out = ndimage.gaussian_filter(out, sigma=sigma_vox, mode="nearest", truncate=3.0)
    if noise_hu > 0:
        out = out + rng.normal(0.0, noise_hu, size=out.shape)
    return out


def label_map(masks: dict[str, np.ndarray]) -> np.ndarray:
    """Combine boolean structure masks into a uint8 label map (values of :data:`LABEL_NAMES`).

    Masks are written in :data:`LABEL_ORDER`; where they overlap the later one wins, so the
    liver's label ends up on the parenchyma only.
    """
    value_of = {name: value for value, name in LABEL_NAMES.items()}
    shape = next(iter(masks.values())).shape
    labels = np.zeros(shape, dtype=np.uint8)
    for name in LABEL_ORDER:
        labels[masks[name]] = value_of[name]
    return labels
