"""Sensor noise, the model's surface discrepancy, and the process noise of organ motion.

Observation model of the deformable twin: a point-to-plane residual of a *correct* fit is the
sensor's localisation noise plus what the reduced model cannot represent of the organ's true
surface (its surface discrepancy, per-axis standard deviation ``d``, measured against full FE
on held-out and other-physics load cases, :func:`surgplan.case_rom.build_default_case_rom`):

    var r = n^T (Sigma + d^2 I) n        (:func:`observation_covariance`).

The verdict's thresholds are multiples of the noise a correct fit leaves. Its RMS and inlier
thresholds take the effective noise ``sqrt(sigma^2 + d^2)``. The systematic-residual check
averages each residual with its ``k`` neighbours: independent sensor noise shrinks to
``sigma^2 / (k + 1)`` while the discrepancy, smooth over a neighbourhood a few millimetres
across, keeps its full variance, so a correct fit's statistic is
``sqrt(sigma^2 / (k + 1) + d^2) = sqrt(sigma^2 + (k + 1) d^2) / sqrt(k + 1)``: the check takes
``sqrt(sigma^2 + (k + 1) d^2)`` as its noise (:func:`systematic_noise_mm`), keeping the same
multiple of a correct fit's statistic that registration calibrated for noise alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from surgplan.twin.errors import PointsError

__all__ = [
    "ProcessNoise",
    "effective_noise_mm",
    "observation_covariance",
    "sensor_covariance",
    "systematic_noise_mm",
]


@dataclass(frozen=True)
class ProcessNoise:
    """Random-walk process noise added to the covariance before each warm update.

    Defaults model a still, retracted organ drifting slowly between batches. Large values
    make the filter forget: with 1 mm and 0.5 degrees per batch the pose covariance stops
    shrinking after about one 100-point batch (the steady state of a random walk), so the
    hundredth swab no longer improves on the first ninety-nine; set them from the tracking
    rate and the motion expected (e.g. breathing without gating).

    Attributes
    ----------
    rotation_deg : float
        Standard deviation of the rotation per batch, degrees.
    translation_mm : float
        Standard deviation of the translation per batch, mm.
    amplitude_fraction : float
        Standard deviation of each amplitude's drift per batch, as a fraction of its prior
        standard deviation.
    """

    rotation_deg: float = 0.05
    translation_mm: float = 0.1
    amplitude_fraction: float = 0.01

    def covariance(self, prior_std: NDArray[np.float64]) -> NDArray[np.float64]:
        """Diagonal ``Q`` over ``[rotation (rad), translation (mm), amplitudes]``."""
        d = np.concatenate(
            [
                np.full(3, math.radians(self.rotation_deg) ** 2),
                np.full(3, self.translation_mm**2),
                (self.amplitude_fraction * np.asarray(prior_std, np.float64)) ** 2,
            ]
        )
        return np.diag(d)


def sensor_covariance(noise_mm: float | ArrayLike) -> NDArray[np.float64]:
    """3x3 localisation noise covariance in tracker axes from a scalar or per-axis std (mm).

    Raises
    ------
    PointsError
        Not one or three finite positive values.
    """
    sd = np.asarray(noise_mm, dtype=np.float64)
    if sd.ndim == 0:
        sd = np.full(3, float(sd))
    if sd.shape != (3,) or not np.all(np.isfinite(sd)) or np.any(sd <= 0):
        raise PointsError(f"noise_mm must be one or three positive numbers (mm), got {noise_mm!r}")
    return np.diag(sd**2)


def observation_covariance(
    sensor_cov: NDArray[np.float64], surface_discrepancy_mm: float
) -> NDArray[np.float64]:
    """Residual covariance of a correct fit: ``Sigma + d^2 I`` (module docstring), mm^2."""
    d = float(surface_discrepancy_mm)
    if not (math.isfinite(d) and d >= 0):
        raise PointsError(f"surface discrepancy must be finite and >= 0 mm, got {d!r}")
    return np.asarray(sensor_cov, np.float64) + d * d * np.eye(3)


def effective_noise_mm(noise_mm: float, surface_discrepancy_mm: float) -> float:
    """``sqrt(sigma^2 + d^2)``: the RMS a correct fit's residuals have, mm."""
    return math.hypot(float(noise_mm), float(surface_discrepancy_mm))


def systematic_noise_mm(
    noise_mm: float, surface_discrepancy_mm: float, neighbours: int | None = None
) -> float:
    """``sqrt(sigma^2 + (k + 1) d^2)``: the noise of the systematic check (module docstring)."""
    if neighbours is None:
        from registration.reliability import SYSTEMATIC_NEIGHBOURS as neighbours
    return math.sqrt(float(noise_mm) ** 2 + (neighbours + 1) * float(surface_discrepancy_mm) ** 2)
