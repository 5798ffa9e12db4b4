"""Fit conditioning and the reliability verdict of a surface registration.

The verdict combines four checks, each with a reason when it fails:

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

from registration._knn import knn_mean_residuals

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
        """Distance (mm) under which a point counts as on the surface."""
        return max(self.inlier_sigma * noise_mm, self.min_inlier_threshold_spacing * spacing_mm)


def pose_conditioning(
    points: NDArray[np.float64], normals: NDArray[np.float64]
) -> tuple[float, float, NDArray[np.float64]]:
    """Conditioning of the point-to-plane fit (how well points pin down the 6 DoF pose).

    Builds ``A = sum_i J_i^T J_i`` with ``J_i = [((p_i - c) x n_i) / L, n_i]`` (``c`` the point
    centroid, ``L`` their RMS radius, so rotations count as the displacement they cause at the
    patch scale); this is the Gauss-Newton information matrix whose inverse, times the noise
    variance, is the pose covariance.

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
    c = points.mean(axis=0)
    L = float(np.sqrt(np.mean(np.sum((points - c) ** 2, axis=1)))) or 1.0
    a, n = points - c, normals
    J = np.empty((len(points), 6))
    J[:, 0] = (a[:, 1] * n[:, 2] - a[:, 2] * n[:, 1]) / L  # (p - c) x n, without np.cross
    J[:, 1] = (a[:, 2] * n[:, 0] - a[:, 0] * n[:, 2]) / L
    J[:, 2] = (a[:, 0] * n[:, 1] - a[:, 1] * n[:, 0]) / L
    J[:, 3:] = n
    return conditioning_of(J.T @ J, len(points))


def conditioning_of(
    information: NDArray[np.float64], n_points: int
) -> tuple[float, float, NDArray[np.float64]]:
    """Condition number, weakest constraint and weakest motion of an information matrix.

    See :func:`pose_conditioning`; ``information`` is its ``A`` over ``n_points`` points.
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

    ``max_queries`` (real-time use): average over the neighbourhoods of at most this many points,
    evenly strided through the input (neighbours are still searched among all points), an
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
) -> tuple[bool, str]:
    """Return ``(trustworthy, reason)``; all failed checks are listed in the reason."""
    reasons = []
    if n_points < criteria.min_points:
        reasons.append(
            f"too few points to tell ({n_points} < {criteria.min_points}): insufficient evidence"
        )
    if inlier_fraction < criteria.min_inlier_fraction:
        reasons.append(
            f"too few inliers ({inlier_fraction:.0%} < {criteria.min_inlier_fraction:.0%}): "
            "outliers, wrong organ or wrong local minimum"
        )
    rms_max = criteria.rms_sigma * noise_mm + criteria.rms_floor_mm
    if not inlier_rms_mm <= rms_max:
        reasons.append(
            f"inlier RMS {inlier_rms_mm:.2f} mm above {rms_max:.2f} mm expected from "
            f"{noise_mm:g} mm noise: shape mismatch or wrong local minimum"
        )
    sys_max = criteria.systematic_sigma * noise_mm + criteria.systematic_floor_mm
    if not systematic_mm <= sys_max:
        reasons.append(
            f"systematic residual {systematic_mm:.2f} mm above {sys_max:.2f} mm: the points do "
            "not have the model's shape (wrong or mirrored organ, deformation, wrong minimum)"
        )
    if weakest_constraint < criteria.min_weakest_constraint:
        reasons.append(
            f"pose poorly constrained (weakest motion constrained by {weakest_constraint:.3f} of "
            f"points < {criteria.min_weakest_constraint}): points nearly planar or sphere-like"
        )
    if np.isfinite(runner_up_separation_mm) and (
        runner_up_separation_mm > criteria.min_runner_up_separation_mm
    ):
        reasons.append(
            f"ambiguous: a pose {runner_up_separation_mm:.0f} mm away fits nearly as well"
        )
    return (not reasons), ("ok" if not reasons else "; ".join(reasons))
