"""Target positions in tracker space and their predicted 95 % error radius.

A target moves with the organ: ``y(a) = t0 + Phi_t a`` in model space, ``T_tracker_model y``
in tracker space. Under the left pose perturbation of :mod:`surgplan.twin.assimilation`
(``T_model_tracker -> E(w, t) T_model_tracker``), the target's tracker position is
``T_tracker_model E^-1 y ~ T_tracker_model (y - t - w x (y - c))``, so its Jacobian in model
axes is ``J_t = [[y - c]_x, -I, Phi_t]`` and its error covariance in tracker axes

    S = R^T J_t P J_t^T R + (d^2 + s^2) I,

``R`` the rotation of ``T_model_tracker``, ``P`` the posterior covariance, ``d`` the model's
discrepancy and ``s`` the stiffness spread (per-axis standard deviations). The 95 % radius of
``S`` is the exact generalised chi-square quantile (:mod:`surgplan.twin.radius`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from surgplan.twin.basis import DeformationBasis
from surgplan.twin.radius import ISOTROPIC_RADIUS95, coverage_radius_mm
from surgplan.twin.state import TargetEstimate

__all__ = ["target_jacobians", "target_covariances", "estimate_targets"]


def _skew(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """(T, 3, 3) cross-product matrices ``[v]_x`` of (T, 3) vectors."""
    z = np.zeros(len(v))
    x, y, w = v[:, 0], v[:, 1], v[:, 2]
    return np.stack(
        [np.stack([z, -w, y], -1), np.stack([w, z, -x], -1), np.stack([-y, x, z], -1)], 1
    )


def target_jacobians(
    basis: DeformationBasis, amplitudes: NDArray[np.float64], centre_mm: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Model-space target positions (T, 3) mm and Jacobians ``J_t`` (T, 3, 6 + k)."""
    y = basis.target_positions_mm(amplitudes)
    k = basis.n_modes
    J = np.empty((len(y), 3, 6 + k))
    J[:, :, :3] = _skew(y - centre_mm)
    J[:, :, 3:6] = -np.eye(3)
    if k:
        J[:, :, 6:] = basis.target_modes.transpose(1, 2, 0)
    return y, J


def target_covariances(
    J: NDArray[np.float64], covariance: NDArray[np.float64], R_model_tracker: NDArray
) -> NDArray[np.float64]:
    """(T, 3, 3) posterior covariances ``R^T J P J^T R`` in tracker axes, mm^2."""
    S = J @ covariance @ J.transpose(0, 2, 1)
    return R_model_tracker.T @ S @ R_model_tracker


def estimate_targets(
    basis: DeformationBasis,
    T_model_tracker: NDArray[np.float64],
    amplitudes: NDArray[np.float64],
    covariance: NDArray[np.float64],
    centre_mm: NDArray[np.float64],
) -> tuple[TargetEstimate, ...]:
    """Every target's tracker position and 95 % radius with its three components.

    Parameters
    ----------
    basis : DeformationBasis
        Targets, their modes, discrepancy and stiffness spread.
    T_model_tracker : numpy.ndarray, shape (4, 4)
        Posterior pose.
    amplitudes : numpy.ndarray, shape (k,)
        Posterior amplitudes.
    covariance : numpy.ndarray, shape (6 + k, 6 + k)
        Posterior covariance.
    centre_mm : numpy.ndarray, shape (3,)
        Rotation centre of the pose perturbation, mm.

    Returns
    -------
    tuple of TargetEstimate
    """
    if not basis.target_names:
        return ()
    y, J = target_jacobians(basis, amplitudes, centre_mm)
    R = T_model_tracker[:3, :3]
    post = target_covariances(J, covariance, R)
    model_var = basis.discrepancy_mm**2 + basis.stiffness_spread_mm**2
    total = post + model_var[:, None, None] * np.eye(3)
    radii = coverage_radius_mm(np.concatenate([total, post]))  # one call for both
    r_total, r_post = radii[: len(total)], radii[len(total) :]
    T_tracker_model = np.linalg.inv(T_model_tracker)
    pos = y @ T_tracker_model[:3, :3].T + T_tracker_model[:3, 3]
    return tuple(
        TargetEstimate(
            name=name,
            position_tracker_mm=pos[i].copy(),
            radius95_mm=float(r_total[i]),
            posterior_mm=float(r_post[i]),
            discrepancy_mm=float(ISOTROPIC_RADIUS95 * basis.discrepancy_mm[i]),
            stiffness_mm=float(ISOTROPIC_RADIUS95 * basis.stiffness_spread_mm[i]),
            covariance_tracker_mm2=total[i].copy(),
        )
        for i, name in enumerate(basis.target_names)
    )
