"""Robust weights of the point-to-plane residuals.

Two regimes (as in the real-time registrar): while the residuals are not yet explained by the
noise (robust scale ``s = 1.4826 MAD`` above 1.5 sigma: a cold start or a deformation not yet
found), Geman-McClure weights ``w = 1 / (1 + (r / 3s)^2)^2`` with that scale (Geman &
McClure 1987; Black & Rangarajan 1996); then Huber weights on the standardised residual
``z = r / sigma``: ``w = 1`` for ``|z| <= 3``, ``3 / |z|`` up to 5, and hard rejection beyond
5 sigma, so gross outliers carry no weight and cannot bend the organ.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["robust_scale", "geman_mcclure", "huber_reject", "HUBER_Z", "REJECT_Z"]

#: Standardised residual where Huber down-weighting starts.
HUBER_Z = 3.0
#: Standardised residual beyond which a point is rejected.
REJECT_Z = 5.0


def robust_scale(r: NDArray[np.float64]) -> float:
    """``1.4826 * median(|r|)``: the noise std a Gaussian with these residuals would have, mm."""
    return float(1.4826 * np.median(np.abs(r))) if len(r) else 0.0


def geman_mcclure(r: NDArray[np.float64], scale_mm: float) -> NDArray[np.float64]:
    """Geman-McClure IRLS weights with kernel ``3 * scale_mm``."""
    k = 3.0 * scale_mm
    return 1.0 / (1.0 + (r / k) ** 2) ** 2


def huber_reject(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Huber weights on standardised residuals ``z``, zero beyond :data:`REJECT_Z`."""
    az = np.abs(z)
    w = np.minimum(1.0, HUBER_Z / np.maximum(az, 1e-300))
    w[az > REJECT_Z] = 0.0
    return w
