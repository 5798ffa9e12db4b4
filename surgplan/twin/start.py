"""Whether the deformable twin's start is ambiguous when the pose was unknown.

The rigid global search (:func:`registration.register_surface`) ranks poses by how well the
points fit the *undeformed* surface. On a partial swab or scan of an organ deformed by
centimetres another pose may fit as well once the organ is allowed to deform: deformation
can make a wrong pose look good. When the rigid fit is not trustworthy and the multi-start
search ran, the deformable twin therefore runs its assimilation from the rigid pose and from
each distinct candidate of the search
(:attr:`registration.SurfaceRegistrationResult.candidate_poses`) and scores each deformed
fit by its MAP objective: the robust data cost (truncated quadratic of the standardised
surface distances, :data:`~surgplan.twin.robust.TUKEY_Z`) plus the amplitudes' prior cost
``sum (a_i / s_i)^2``. The twin keeps the rigid pose (choosing the lowest objective instead
was tried on the virtual patients and moved more starts to a wrong pose than it mended: a
wrong pose on a smooth patch needs less deformation than the true one). When another start
ends at a distinct deformed fit (the points placed more than the search's inlier threshold
apart, RMS) scoring within :data:`NEAR_EQUAL` of the rigid pose's, or better, the start is
ambiguous: :attr:`StartCheck.runner_up_separation_mm` says how far apart, and the twin's
verdict refuses a separation beyond registration's ``min_runner_up_separation_mm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from registration import SurfaceModel
from registration._points import apply_transform, rms_distance_mm
from surgplan.twin.assimilation import AssimilationResult, assimilate
from surgplan.twin.fit import surface_distance_mm
from surgplan.twin.robust import TUKEY_Z
from surgplan.twin.surface import TwinSurface

__all__ = ["MAX_STARTS", "NEAR_EQUAL", "StartCheck", "check_start", "distinct_poses", "map_cost"]

#: Most distinct rigid poses the deformable assimilation is run from.
MAX_STARTS = 5
#: A competing start's MAP objective within this factor of the rigid start's is near-equal.
NEAR_EQUAL = 1.1


@dataclass(frozen=True)
class StartCheck:
    """What the competing starts scored against the rigid pose's.

    Attributes
    ----------
    costs : tuple of float
        MAP objective of the deformed fit from each distinct start (dimensionless); the
        first is the rigid pose's.
    runner_up_separation_mm : float
        RMS distance between the points placed by the rigid start's deformed fit and by the
        nearest distinct competitor scoring within :data:`NEAR_EQUAL` of it or better
        (``inf``: none), mm.
    """

    costs: tuple[float, ...]
    runner_up_separation_mm: float = float("inf")


def distinct_poses(
    poses: list[NDArray[np.float64]], points: NDArray[np.float64], separation_mm: float
) -> list[NDArray[np.float64]]:
    """The first :data:`MAX_STARTS` of ``poses`` that are distinct from the ones before.

    A pose is distinct when it places the points more than ``separation_mm`` (RMS) from where
    every pose kept before it places them.
    """
    kept: list[NDArray[np.float64]] = []
    placed: list[NDArray[np.float64]] = []
    for T in poses:
        p = apply_transform(T, points)
        if all(rms_distance_mm(p, q) > separation_mm for q in placed):
            kept.append(T)
            placed.append(p)
        if len(kept) >= MAX_STARTS:
            break
    return kept


def map_cost(
    points: NDArray[np.float64],
    surface: TwinSurface,
    centre_mm: NDArray[np.float64],
    result: AssimilationResult,
    sensor_cov: NDArray[np.float64],
    prior_std: NDArray[np.float64],
) -> float:
    """MAP objective (module docstring) of an assimilation result, dimensionless."""
    T, a, feet = result.T_model_tracker, result.amplitudes, result.feet
    R = T[:3, :3]
    q = points @ R.T + T[:3, 3]
    x, _, r, sigma, _ = surface.residuals(q, feet, a, R @ sensor_cov @ R.T, centre_mm,
                                          jacobian=False)  # fmt: skip
    d = surface_distance_mm(q, r, x, surface.model.spacing_mm)
    z2 = (d / np.maximum(sigma, 1e-12)) ** 2
    data = float(np.sum(np.minimum(z2, TUKEY_Z**2)))
    prior = float(np.sum((a / np.maximum(prior_std, 1e-12)) ** 2)) if len(a) else 0.0
    return data + prior


def check_start(
    points: NDArray[np.float64],
    surface: TwinSurface,
    centre_mm: NDArray[np.float64],
    T_rigid: NDArray[np.float64],
    candidates: tuple[NDArray[np.float64], ...],
    prior_cov: NDArray[np.float64],
    prior_std: NDArray[np.float64],
    *,
    sensor_cov: NDArray[np.float64],
    noise_mm: float,
) -> StartCheck:
    """Score the deformed fits from the rigid pose and each distinct candidate (docstring).

    Parameters
    ----------
    points : numpy.ndarray, shape (N, 3)
        The first batch, tracker space, mm.
    surface : TwinSurface
        The twin's surface and modes.
    centre_mm : numpy.ndarray, shape (3,)
        Rotation centre of the pose perturbation, mm.
    T_rigid : numpy.ndarray, shape (4, 4)
        ``T_model_tracker`` of the rigid registration (the twin's start).
    candidates : tuple of numpy.ndarray (4, 4)
        The global search's refined poses (``T_model_tracker``).
    prior_cov : numpy.ndarray, shape (6 + k, 6 + k)
        The first update's prior covariance about a start pose.
    prior_std : numpy.ndarray, shape (k,)
        Prior standard deviations of the amplitudes.
    sensor_cov : numpy.ndarray, shape (3, 3), keyword-only
        Observation noise covariance in tracker axes, mm^2.
    noise_mm : float, keyword-only
        Isotropic noise the candidates are told apart with (as the global search), mm.
    """
    model: SurfaceModel = surface.model
    separation = max(3.0 * noise_mm, 0.05 * model.radius_mm)
    poses = distinct_poses([T_rigid, *candidates], points, separation)
    k = surface.n_modes
    costs, placed = [], []
    for T in poses:
        res = assimilate(points, surface, centre_mm, T, np.zeros(k), prior_cov,
                         sensor_cov=sensor_cov)  # fmt: skip
        costs.append(map_cost(points, surface, centre_mm, res, sensor_cov, prior_std))
        placed.append(apply_transform(res.T_model_tracker, points))
    sep = float("inf")
    for i in range(1, len(poses)):
        d = rms_distance_mm(placed[i], placed[0])
        if costs[i] <= NEAR_EQUAL * costs[0] and d > separation:
            sep = min(sep, d)
    return StartCheck(tuple(costs), sep)
