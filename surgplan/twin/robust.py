"""Robust weights of the point-to-plane residuals.

Two regimes, as in the real-time registrar. While the residuals are not yet explained by the
noise (robust scale ``s = 1.4826 MAD`` above 2 sigma: a cold start or a deformation not yet
found; 30 % gross outliers alone give about 1.6 sigma): Geman-McClure weights
``w = 1 / (1 + (r / 3s)^2)^2`` with that scale (Geman & McClure 1987; Black & Rangarajan
1996). Then Tukey's biweight (Beaton & Tukey 1974) on the standardised residual
``z = r / sigma``: ``w = (1 - (z / c)^2)^2`` for ``|z| < c = 4.685`` (95 % efficiency under
Gaussian noise) and hard rejection beyond, so gross outliers carry no weight and the
near-surface ones (an outlier 10-50 mm off in a random direction lands within 5 mm of the
surface about a quarter of the time) little influence.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["robust_scale", "geman_mcclure", "tukey", "TUKEY_Z"]

#: Tukey's constant: standardised residual beyond which a point is rejected.
TUKEY_Z = 4.685


def robust_scale(r: NDArray[np.float64]) -> float:
    """``1.4826 * median(|r|)``: the noise std a Gaussian with these residuals would have, mm."""
    return float(1.4826 * np.median(np.abs(r))) if len(r) else 0.0


def geman_mcclure(r: NDArray[np.float64], scale_mm: float) -> NDArray[np.float64]:
    """Geman-McClure IRLS weights with kernel ``3 * scale_mm``."""
    k = 3.0 * scale_mm
    return 1.0 / (1.0 + (r / k) ** 2) ** 2


def tukey(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Tukey biweight weights on standardised residuals ``z`` (zero beyond :data:`TUKEY_Z`)."""
    u = np.minimum((z / TUKEY_Z) ** 2, 1.0)
    return (1.0 - u) ** 2
