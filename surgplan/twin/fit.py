"""Registration's reliability checks on the twin's residuals against the deformed surface."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from registration import ReliabilityCriteria, Verdict
from registration.reliability import assess, pose_conditioning, systematic_residual
from registration.surface import REALTIME_SYSTEMATIC_QUERIES

__all__ = ["deformed_fit_verdict"]


def deformed_fit_verdict(
    q_mm: NDArray[np.float64],
    residuals_mm: NDArray[np.float64],
    foot_mm: NDArray[np.float64],
    normals: NDArray[np.float64],
    *,
    noise_mm: float,
    spacing_mm: float,
    criteria: ReliabilityCriteria | None = None,
) -> Verdict:
    """:func:`registration.reliability.assess` on residuals to the deformed surface.

    Parameters
    ----------
    q_mm : numpy.ndarray, shape (N, 3)
        Points in model space, mm.
    residuals_mm : numpy.ndarray, shape (N,)
        Signed point-to-plane residuals, mm.
    foot_mm : numpy.ndarray, shape (N, 3)
        Their feet on the deformed surface, mm.
    normals : numpy.ndarray, shape (N, 3)
        Deformed normals at the feet.
    noise_mm : float, keyword-only
        Localisation noise (per-axis standard deviation), mm.
    spacing_mm : float, keyword-only
        Vertex spacing, mm.
    criteria : ReliabilityCriteria, optional
        Thresholds (default registration's).

    Returns
    -------
    registration.Verdict
    """
    crit = criteria or ReliabilityCriteria()
    thr = crit.inlier_threshold_mm(noise_mm, spacing_mm)
    # As registration's surface_residuals: |r|, or the distance to the foot less one spacing
    # (the foot is the nearest point only up to the triangle it was searched in).
    dist = np.maximum(np.abs(residuals_mm), np.linalg.norm(q_mm - foot_mm, axis=1) - spacing_mm)
    inl = dist <= thr
    n_in = int(inl.sum())
    rms = float(np.sqrt(np.mean(residuals_mm[inl] ** 2))) if n_in else float("inf")
    _, weakest, _ = pose_conditioning(q_mm[inl], normals[inl])
    systematic = systematic_residual(
        q_mm[inl], residuals_mm[inl], max_queries=REALTIME_SYSTEMATIC_QUERIES
    )
    return assess(
        crit,
        n_points=len(q_mm),
        inlier_fraction=n_in / max(len(q_mm), 1),
        inlier_rms_mm=rms,
        noise_mm=noise_mm,
        weakest_constraint=weakest,
        systematic_mm=systematic,
    )
