"""Fit quality, conditioning and the reliability verdict of a surface fit at a given pose.

:func:`assess_fit` is what :func:`registration.register_surface` and
:class:`registration.RealTimeRegistrar` run on their final pose; it can also judge a pose from
elsewhere (another registration method, a pose read from a file).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration._fit_kernels import inlier_statistics
from registration._points import apply_transform, as_points, as_transform
from registration.icp import surface_residuals
from registration.model import SurfaceModel
from registration.reliability import (
    ReliabilityCriteria,
    assess,
    conditioning_of,
    systematic_residual,
)
from registration.verdict import Verdict

__all__ = ["FitAssessment", "assess_fit"]


@dataclass(frozen=True)
class FitAssessment:
    """How well points fit a surface at one pose, and whether to trust it.

    Attributes
    ----------
    inlier_fraction : float
        Fraction of the points within ``inlier_threshold_mm`` of the surface.
    inlier_rms_mm : float
        RMS point-to-surface distance of the inliers, mm (``inf`` with no inlier).
    inlier_threshold_mm : float
        Distance defining an inlier, mm.
    condition_number : float
        ``sqrt(lambda_max / lambda_min)`` of the inliers' 6x6 point-to-plane information matrix.
    weakest_constraint : float
        ``lambda_min / n_inliers`` of that matrix, in [0, 1].
    weakest_motion : numpy.ndarray, shape (6,)
        Unit eigenvector of the least constrained motion, ``(rotation (scaled), translation)``.
    systematic_residual_mm : float
        RMS of the inlier residuals averaged over nearest neighbours, mm.
    runner_up_separation_mm : float
        The separation of a competing pose that the verdict was given, mm (``inf``: none).
    verdict : Verdict
        The reliability checks' outcome.
    """

    inlier_fraction: float
    inlier_rms_mm: float
    inlier_threshold_mm: float
    condition_number: float
    weakest_constraint: float
    weakest_motion: NDArray[np.float64]
    systematic_residual_mm: float
    runner_up_separation_mm: float
    verdict: Verdict

    @property
    def trustworthy(self) -> bool:
        """Whether every check of the verdict passed."""
        return self.verdict.trustworthy


def assess_fit(
    points: ArrayLike,
    model: SurfaceModel,
    T_model_points: ArrayLike,
    *,
    noise_mm: float,
    criteria: ReliabilityCriteria | None = None,
    runner_up_separation_mm: float = np.inf,
    residuals: NDArray[np.float64] | None = None,
    indices: NDArray[np.intp] | None = None,
    max_queries: int | None = None,
) -> FitAssessment:
    """Fit statistics, conditioning and verdict of ``points`` on ``model`` at a pose.

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Finite points in their own space (e.g. tracker), mm.
    model : SurfaceModel
        Prepared target.
    T_model_points : array_like, shape (4, 4)
        Pose mapping the points into model space; translation in mm.
    noise_mm : float, keyword-only
        Expected localisation noise (per-axis standard deviation), mm: sets the inlier
        threshold and the residual checks.
    criteria : ReliabilityCriteria, optional
        Verdict thresholds (default :class:`ReliabilityCriteria`).
    runner_up_separation_mm : float, keyword-only
        Distance to a distinct competing pose of near-equal score found by a global search,
        mm (``inf``: none; the ambiguity check then passes).
    residuals, indices : numpy.ndarray, shape (N,), optional
        Signed point-to-plane residuals (mm) and nearest-vertex indices at this pose, e.g. of
        the last ICP iteration (:class:`registration.icp.IcpState`), reused instead of a new
        correspondence search. Give both or neither.
    max_queries : int, optional
        Most neighbourhoods averaged by the systematic-residual check (real-time use).

    Returns
    -------
    FitAssessment
    """
    pts = as_points(points)
    T = as_transform(T_model_points, name="T_model_points")
    if (residuals is None) != (indices is None):
        raise ValueError("give both residuals and indices, or neither")
    crit = criteria or ReliabilityCriteria()
    thr = crit.inlier_threshold_mm(noise_mm, model.spacing_mm)
    if residuals is None:
        residuals, _, indices = surface_residuals(
            apply_transform(T, pts),
            model.vertices,
            model.normals,
            model.tree,
            model.spacing_mm,
            nearest=model.nearest_vertex,
        )
    p_in = np.empty((len(pts), 3))
    r_in = np.empty(len(pts))
    n_inl, sum_d2, information = inlier_statistics(
        np.ascontiguousarray(pts, dtype=np.float64),
        np.ascontiguousarray(T[:3, :3]),
        np.ascontiguousarray(T[:3, 3]),
        np.ascontiguousarray(residuals, dtype=np.float64),
        np.ascontiguousarray(indices, dtype=np.int64),
        model.vertices,
        model.normals,
        model.vertex_reach(),
        float(thr),
        p_in,
        r_in,
    )
    frac = n_inl / len(pts)
    rms = float(np.sqrt(sum_d2 / n_inl)) if n_inl else float("inf")
    cond, weakest, motion = conditioning_of(information, n_inl)
    systematic = systematic_residual(p_in[:n_inl], r_in[:n_inl], max_queries=max_queries)
    verdict = assess(
        crit,
        n_points=len(pts),
        inlier_fraction=frac,
        inlier_rms_mm=rms,
        noise_mm=noise_mm,
        weakest_constraint=weakest,
        runner_up_separation_mm=runner_up_separation_mm,
        systematic_mm=systematic,
    )
    return FitAssessment(
        inlier_fraction=frac,
        inlier_rms_mm=rms,
        inlier_threshold_mm=thr,
        condition_number=cond,
        weakest_constraint=weakest,
        weakest_motion=motion,
        systematic_residual_mm=systematic,
        runner_up_separation_mm=float(runner_up_separation_mm),
        verdict=verdict,
    )
