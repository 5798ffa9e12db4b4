"""Where to measure next: rank surface patches by the target error left after measuring there.

Candidates are the exposed surface: vertices whose outward normal lies within
``max_angle_deg`` (75 degrees) of the view direction (default anterior, LPS ``(0, -1, 0)``,
in model space), split into patches of radius ``radius_mm`` (20 mm) around farthest-point
centres (:func:`registration.farthest_point_sample`). Acquiring ``m`` points on patch ``p``
adds point-to-plane rows ``h_i`` (the assimilation's Jacobian rows, evaluated at up to
:data:`ROWS_PER_PATCH` of the patch's vertices, deformed by the current amplitudes, each
standing for ``m / n_rows`` points) with variance ``sigma_i^2``; the expected posterior is the
information update ``P' = (P^-1 + H^T D H)^-1``,
``D^-1 = diag(n_rows sigma_i^2 / m + d^2)`` (``d`` the model's surface discrepancy, which
nearby points share, so it does not average out). Only the
target's 3x3 block is needed, so each patch is a low-rank (Woodbury) update of the current
covariance, all patches in one batched solve:

    J P' J^T = J P J^T - C^T (D^-1 + H P H^T)^-1 C,    C = H P J^T.

The score is the target's 95 % radius after (:mod:`surgplan.twin.radius`, model discrepancy
included); the patch with the smallest is recommended. Normals are the undeformed ones (a
ranking approximation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration import farthest_point_sample
from surgplan.twin.assimilation import _jacobian
from surgplan.twin.radius import coverage_radius_mm
from surgplan.twin.surface import TwinSurface

__all__ = ["Patches", "candidate_patches", "expected_radii", "ANTERIOR_LPS", "ROWS_PER_PATCH"]

#: Default view direction: anterior in LPS.
ANTERIOR_LPS = (0.0, -1.0, 0.0)
#: Jacobian rows evaluated per patch.
ROWS_PER_PATCH = 24


@dataclass(frozen=True, eq=False)
class Patches:
    """Candidate patches of the exposed surface.

    Attributes
    ----------
    centres : numpy.ndarray of int, shape (C,)
        Vertex index of each patch centre.
    members : tuple of numpy.ndarray
        Vertex indices of each patch.
    rows : numpy.ndarray of int, shape (C, ROWS_PER_PATCH)
        Vertices whose Jacobian rows stand for the patch (``-1``: padding).
    """

    centres: NDArray[np.intp]
    members: tuple[NDArray[np.intp], ...]
    rows: NDArray[np.intp]


def candidate_patches(
    surface: TwinSurface,
    *,
    view_direction: ArrayLike = ANTERIOR_LPS,
    max_angle_deg: float = 75.0,
    radius_mm: float = 20.0,
) -> Patches:
    """Split the exposed surface into patches (module docstring); built once per twin."""
    m = surface.model
    view = np.asarray(view_direction, np.float64)
    view = view / np.linalg.norm(view)
    exposed = np.nonzero(m.normals @ view >= np.cos(np.radians(max_angle_deg)))[0]
    if len(exposed) == 0:
        return Patches(np.zeros(0, np.intp), (), np.zeros((0, ROWS_PER_PATCH), np.intp))
    pts = m.vertices[exposed]
    centres = exposed[farthest_point_sample(pts, spacing_mm=radius_mm)]
    members, rows = [], np.full((len(centres), ROWS_PER_PATCH), -1, dtype=np.intp)
    for i, c in enumerate(centres):
        inside = exposed[np.linalg.norm(pts - m.vertices[c], axis=1) <= radius_mm]
        members.append(inside)
        pick = inside[farthest_point_sample(m.vertices[inside], ROWS_PER_PATCH)]
        rows[i, : len(pick)] = pick
    return Patches(centres=centres, members=tuple(members), rows=rows)


def expected_radii(
    surface: TwinSurface,
    patches: Patches,
    *,
    T_model_tracker: NDArray[np.float64],
    amplitudes: NDArray[np.float64],
    covariance: NDArray[np.float64],
    centre_mm: NDArray[np.float64],
    target_jacobian: NDArray[np.float64],
    model_variance_mm2: float,
    sensor_cov: NDArray[np.float64],
    n_points: int,
    surface_discrepancy_mm: float = 0.0,
) -> NDArray[np.float64]:
    """Target 95 % radius (mm) expected after acquiring ``n_points`` on each patch.

    Parameters
    ----------
    surface, patches
        The surface and its candidate patches.
    T_model_tracker, amplitudes, covariance
        Current state (pose (4, 4), amplitudes (k,), covariance (6 + k, 6 + k)).
    centre_mm : numpy.ndarray, shape (3,)
        Rotation centre of the pose perturbation, mm.
    target_jacobian : numpy.ndarray, shape (3, 6 + k)
        ``J_t`` of the target in model axes (:func:`surgplan.twin.targets.target_jacobians`).
    model_variance_mm2 : float
        Discrepancy^2 + stiffness spread^2 of the target, mm^2.
    sensor_cov : numpy.ndarray, shape (3, 3)
        Localisation noise covariance in tracker axes, mm^2.
    n_points : int
        Points acquired on the patch.
    surface_discrepancy_mm : float
        The reduced model's surface discrepancy (per-axis standard deviation), mm: a misfit
        shared by the points near one another, so it does not average out over a row's
        points (each row's variance is ``n^T Sigma n / m_row + d^2``): more points on one
        patch saturate, and the ranking weighs spreading the points out.

    Returns
    -------
    numpy.ndarray, shape (C,)
    """
    n_p, r = patches.rows.shape
    if n_p == 0:
        return np.zeros(0)
    valid = patches.rows >= 0
    idx = np.where(valid, patches.rows, 0).ravel()
    m = surface.model
    x = m.vertices[idx]
    phi = surface.modes_v[idx] if surface.n_modes else None
    if phi is not None:
        x = x + phi @ amplitudes
    n = m.normals[idx]
    R = T_model_tracker[:3, :3]
    var = np.einsum("ij,jk,ik->i", n, R @ sensor_cov @ R.T, n)
    H = _jacobian(x, n, phi, centre_mm) * valid.ravel()[:, None]  # (n_p r, d), zero padding
    per_row = n_points / np.maximum(valid.sum(axis=1), 1)  # points each row stands for
    d2 = float(surface_discrepancy_mm) ** 2
    d_inv = np.where(valid, var.reshape(n_p, r) / per_row[:, None] + d2, 1.0)  # D^-1
    HP = H @ covariance  # (n_p r, d)
    Hb, HPb = H.reshape(n_p, r, -1), HP.reshape(n_p, r, -1)
    S = HPb @ Hb.transpose(0, 2, 1)  # H P H^T per patch
    S[:, np.arange(r), np.arange(r)] += d_inv
    C = HPb @ target_jacobian.T  # (n_p, r, 3)
    base = target_jacobian @ covariance @ target_jacobian.T
    after = base - C.transpose(0, 2, 1) @ np.linalg.solve(S, C)
    after = R.T @ after @ R + model_variance_mm2 * np.eye(3)
    return coverage_radius_mm(0.5 * (after + after.transpose(0, 2, 1)))
