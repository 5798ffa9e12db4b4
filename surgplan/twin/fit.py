"""Registration's reliability checks on the twin's residuals against the deformed surface."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from registration import ReliabilityCriteria, Verdict
from registration.reliability import assess, pose_conditioning, systematic_residual
from registration.surface import REALTIME_SYSTEMATIC_QUERIES

__all__ = ["deformed_fit_verdict", "surface_distance_mm"]


def surface_distance_mm(
    q_mm: NDArray[np.float64],
    residuals_mm: NDArray[np.float64],
    foot_mm: NDArray[np.float64],
    spacing_mm: float,
) -> NDArray[np.float64]:
    """Each point's distance to the deformed surface as the verdict counts it, mm.

    As registration's surface residuals: ``|r|``, or the distance to the foot less one vertex
    spacing when larger (the foot is the nearest point only up to the triangle it was searched
    in).
    """
    d = q_mm - foot_mm
    to_foot = np.sqrt(np.einsum("ij,ij->i", d, d))
    return np.maximum(np.abs(residuals_mm), to_foot - spacing_mm)


def deformed_fit_verdict(
    q_mm: NDArray[np.float64],
    residuals_mm: NDArray[np.float64],
    foot_mm: NDArray[np.float64],
    normals: NDArray[np.float64],
    *,
    noise_mm: float,
    spacing_mm: float,
    criteria: ReliabilityCriteria | None = None,
    distance_mm: NDArray[np.float64] | None = None,
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
    distance_mm : numpy.ndarray, shape (N,), optional
        The points' distances to the surface as computed here (:func:`surface_distance_mm`),
        when the caller has them already.

    Returns
    -------
    registration.Verdict
    """
    crit = criteria or ReliabilityCriteria()
    thr = crit.inlier_threshold_mm(noise_mm, spacing_mm)
    if distance_mm is None:
        distance_mm = surface_distance_mm(q_mm, residuals_mm, foot_mm, spacing_mm)
    inl = distance_mm <= thr
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
