"""Fit conditioning and the reliability verdict of a surface registration.

The verdict combines six checks (:class:`registration.verdict.VerdictCheck`); each failed one
is recorded with its measured value and threshold (:class:`registration.verdict.FailedCheck`):

- enough points (``min_points``): with fewer, the statistics below cannot tell a wrong organ
  from the right one, and the verdict is *not trustworthy: insufficient evidence*;
- enough inliers (a fit that leaves many points off the surface: gross outliers, the wrong
  organ, a mirrored organ, a wrong local minimum);
- inlier RMS consistent with the expected localisation noise (a wrong shape or local minimum
  leaves systematic residuals well above the noise);
- no systematic residual: the residuals of a correct fit are independent noise, so averaging
  each with its nearest neighbours shrinks them by about ``sqrt(k)``; a shape mismatch (wrong or
  mirrored organ, flattened points, wrong local minimum) leaves a spatially smooth residual that
  survives the averaging;
- conditioning: the least constrained motion of the point-to-plane information matrix must be
  constrained by a minimum share of points (a flat or sphere-like patch slides freely);
- no distinct competing pose of nearly equal score from the global search (ambiguity).

Thresholds live in :class:`ReliabilityCriteria`, one place, chosen from the accuracy study
(tuned on ``benchmarks/registration_verdict_study.py --seed 1``, reported on a fresh seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from registration._fit_kernels import information_matrix
from registration._knn import knn_mean_residuals
from registration.verdict import FailedCheck, Verdict, VerdictCheck

__all__ = [
    "ReliabilityCriteria",
    "assess",
    "conditioning_of",
    "pose_conditioning",
    "systematic_residual",
]

#: Neighbours averaged by :func:`systematic_residual`.
SYSTEMATIC_NEIGHBOURS = 8


@dataclass(frozen=True)
class ReliabilityCriteria:
    """Thresholds of the reliability verdict.

    Attributes
    ----------
    min_points : int
        Fewest points for a trustworthy surface fit. Below about 200 swab points over a 30 %
        patch, a good fit and a fit of the wrong organ (gallbladder points on the liver) leave
        statistically indistinguishable residuals, so the verdict reports insufficient evidence.
    inlier_sigma : float
        Inlier threshold in multiples of the noise standard deviation.
    min_inlier_threshold_spacing : float
        Inlier threshold floor in multiples of the model vertex spacing.
    min_inlier_fraction : float
        Fewest inliers (fraction of points).
    rms_sigma : float
        Largest inlier RMS in multiples of the noise standard deviation ...
    rms_floor_mm : float
        ... plus this floor (mesh discretisation), mm.
    min_weakest_constraint : float
        Smallest share of points constraining the least constrained motion.
    systematic_sigma : float
        Largest neighbour-averaged residual RMS in multiples of the noise standard deviation
        (about 1/3 for a correct fit, 0.28-0.37 in the tuning trials; 0.56 and up for the wrong
        organ with >= 300 points) ...
    systematic_floor_mm : float
        ... plus this floor, mm.
    min_runner_up_separation_mm : float
        A competing global-search pose of near-equal score farther than this is an ambiguity, mm.
    """

    min_points: int = 200
    inlier_sigma: float = 3.0
    min_inlier_threshold_spacing: float = 0.5
    min_inlier_fraction: float = 0.85
    rms_sigma: float = 1.3
    rms_floor_mm: float = 0.25
    min_weakest_constraint: float = 0.01
    systematic_sigma: float = 0.37
    systematic_floor_mm: float = 0.1
    min_runner_up_separation_mm: float = 10.0

    def inlier_threshold_mm(self, noise_mm: float, spacing_mm: float) -> float:
        """Distance (mm) under which a point counts as on the surface.

        Parameters
        ----------
        noise_mm : float
            Expected localisation noise (per-axis standard deviation), mm.
        spacing_mm : float
            Model vertex spacing, mm.

        Returns
        -------
        float
            ``max(inlier_sigma * noise_mm, min_inlier_threshold_spacing * spacing_mm)``, mm.
        """
        return max(self.inlier_sigma * noise_mm, self.min_inlier_threshold_spacing * spacing_mm)


def pose_conditioning(
    points: NDArray[np.float64], normals: NDArray[np.float64]
) -> tuple[float, float, NDArray[np.float64]]:
    """Conditioning of the point-to-plane fit (how well points pin down the 6 DoF pose).

    Builds ``A = sum_i J_i^T J_i`` with ``J_i = [((p_i - c) x n_i) / L, n_i]`` (``c`` the point
    centroid, ``L`` their RMS radius, so rotations count as the displacement they cause at the
    patch scale); this is the Gauss-Newton information matrix whose inverse, times the noise
    variance, is the pose covariance.

    Parameters
    ----------
    points : numpy.ndarray, shape (N, 3)
        Points on the surface, mm.
    normals : numpy.ndarray, shape (N, 3)
        Unit surface normals at them.

    Returns
    -------
    condition_number : float
        ``sqrt(lambda_max / lambda_min)`` (``inf`` if singular).
    weakest_constraint : float
        ``lambda_min / N``: share of points constraining the least constrained motion.
    weakest_motion : numpy.ndarray, shape (6,)
        Its unit eigenvector (scaled rotation, translation).
    """
    if len(points) < 6:
        return float("inf"), 0.0, np.zeros(6)
    A = information_matrix(
        np.ascontiguousarray(points, np.float64), np.ascontiguousarray(normals, np.float64)
    )  # one compiled pass (the array version's temporaries cost ~0.5 ms for 2,000 points)
    return conditioning_of(A, len(points))


def conditioning_of(
    information: NDArray[np.float64], n_points: int
) -> tuple[float, float, NDArray[np.float64]]:
    """Condition number, weakest constraint and weakest motion of an information matrix.

    See :func:`pose_conditioning`.

    Parameters
    ----------
    information : numpy.ndarray, shape (6, 6)
        Its ``A``: rotations scaled by the points' RMS radius, so dimensionless.
    n_points : int
        Points summed into ``information``.

    Returns
    -------
    condition_number, weakest_constraint, weakest_motion
        As :func:`pose_conditioning` returns them.
    """
    if n_points < 6:
        return float("inf"), 0.0, np.zeros(6)
    lam, vec = np.linalg.eigh(information)
    lam = np.maximum(lam, 0.0)
    cond = float(np.sqrt(lam[-1] / lam[0])) if lam[0] > 0 else float("inf")
    return cond, float(lam[0] / n_points), vec[:, 0]


def systematic_residual(
    points: NDArray[np.float64],
    residuals: NDArray[np.float64],
    k: int = SYSTEMATIC_NEIGHBOURS,
    *,
    max_queries: int | None = None,
) -> float:
    """RMS of the signed residuals averaged over each point's ``k`` nearest neighbours, mm.

    For independent noise of standard deviation ``sigma`` this is about ``sigma / sqrt(k + 1)``;
    a systematic (spatially smooth) misfit keeps its full size.

    Parameters
    ----------
    points : numpy.ndarray, shape (N, 3)
        Inlier points (model space), mm.
    residuals : numpy.ndarray, shape (N,)
        Their signed point-to-plane residuals, mm.
    k : int
        Neighbours averaged with each point (itself included: ``k + 1`` values).
    max_queries : int, optional
        Real-time use: average over the neighbourhoods of at most this many points, evenly
        strided through the input (neighbours are still searched among all points), an
        unbiased estimate of the same RMS at a fraction of the search cost.
    """
    if len(points) <= k:
        return float(np.sqrt(np.mean(residuals**2))) if len(points) else 0.0
    step = 1
    if max_queries is not None and len(points) > max_queries:
        step = int(np.ceil(len(points) / max_queries))
    queries = np.arange(0, len(points), step, dtype=np.int64)
    means = knn_mean_residuals(
        np.ascontiguousarray(points, dtype=np.float64),
        np.ascontiguousarray(residuals, dtype=np.float64),
        queries,
        k + 1,
    )
    return float(np.sqrt(np.mean(means**2)))


def assess(
    criteria: ReliabilityCriteria,
    *,
    n_points: int,
    inlier_fraction: float,
    inlier_rms_mm: float,
    noise_mm: float,
    weakest_constraint: float,
    runner_up_separation_mm: float = np.inf,
    systematic_mm: float = 0.0,
) -> Verdict:
    """Run every check of the verdict; all failed checks are recorded with their values.

    Parameters
    ----------
    criteria : ReliabilityCriteria
        Thresholds.
    n_points : int, keyword-only
        Points used by the fit.
    inlier_fraction : float, keyword-only
        Fraction of those points within the inlier threshold, in [0, 1].
    inlier_rms_mm : float, keyword-only
        RMS point-to-surface distance of the inliers, mm.
    noise_mm : float, keyword-only
        Expected localisation noise (per-axis standard deviation), mm.
    weakest_constraint : float, keyword-only
        Share of points constraining the least constrained motion, in [0, 1].
    runner_up_separation_mm : float, keyword-only
        Distance to a distinct competing pose of near-equal score (``inf``: none), mm.
    systematic_mm : float, keyword-only
        Neighbour-averaged residual RMS (:func:`systematic_residual`), mm.

    Returns
    -------
    Verdict
        Trustworthy when no check failed; ``verdict.reason`` is the human-readable account.
    """
    c = criteria
    rms_max = c.rms_sigma * noise_mm + c.rms_floor_mm
    sys_max = c.systematic_sigma * noise_mm + c.systematic_floor_mm
    sep = runner_up_separation_mm
    # (check, failed, value, threshold, noise the threshold derives from)
    checks = (
        (VerdictCheck.TOO_FEW_POINTS, n_points < c.min_points, n_points, c.min_points, np.nan),
        (
            VerdictCheck.LOW_INLIER_FRACTION,
            inlier_fraction < c.min_inlier_fraction,
            inlier_fraction,
            c.min_inlier_fraction,
            np.nan,
        ),
        (
            VerdictCheck.HIGH_INLIER_RMS,
            not inlier_rms_mm <= rms_max,
            inlier_rms_mm,
            rms_max,
            noise_mm,
        ),
        (
            VerdictCheck.SYSTEMATIC_RESIDUAL,
            not systematic_mm <= sys_max,
            systematic_mm,
            sys_max,
            noise_mm,
        ),
        (
            VerdictCheck.POORLY_CONSTRAINED,
            weakest_constraint < c.min_weakest_constraint,
            weakest_constraint,
            c.min_weakest_constraint,
            np.nan,
        ),
        (
            VerdictCheck.AMBIGUOUS,
            bool(np.isfinite(sep)) and sep > c.min_runner_up_separation_mm,
            sep,
            c.min_runner_up_separation_mm,
            np.nan,
        ),
    )
    return Verdict(
        tuple(
            FailedCheck(check, float(value), float(limit), float(noise))
            for check, failed, value, limit, noise in checks
            if failed
        )
    )
