"""Sensor noise and the process noise of organ motion between batches."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from surgplan.twin.errors import PointsError

__all__ = ["ProcessNoise", "sensor_covariance"]


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
