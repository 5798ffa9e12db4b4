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

**Rigid mode: the deformation it ignores.** A rigid twin freezes the amplitudes at zero, but
the organ deforms: its amplitudes are ``a ~ N(0, A)``, ``A = diag(prior_std^2)`` (the full
model's amplitude prior). The target then lies at ``y + Phi_t a`` while the rigid twin puts it
at ``y``, and the rigid pose itself is pulled by the surface deformation it tries to explain.
Linearised at the fit (points ``q_i`` with feet on triangles of normal ``n_i``), the surface
deformation adds the residuals ``r = G a``, ``G_i = n_i^T Phi_{s,i}`` (the modes at the foot),
and the Gauss-Newton pose step that absorbs them is ``x = -K a``, ``K = (J^T J)^-1 J^T G``
with the pose Jacobian rows ``J_i = [((q_i - c) x n_i)^T, n_i^T]`` of
:mod:`surgplan.twin.assimilation`. The target's error in model axes is then

    e = Phi_t a - J_t,pose x = (Phi_t + J_t,pose K) a = M a,   J_t,pose = [[y - c]_x, -I],

so the unmodelled term is ``M A M^T`` (:func:`rigid_deformation_covariance`, ``"fitted"``:
a pure translation of the organ gives ``M = 0``, as it should: the rigid fit recovers it).
Ignoring the pose's absorption (``K = 0``, ``"prior"``) gives ``Phi_t A Phi_t^T``, the
organ's whole prior displacement at the target, rigid parts included: a bound that
over-covers. Either is added to ``S`` (in the ``discrepancy`` component: in rigid mode the
model's discrepancy is the deformation it leaves out plus the reduced model's own).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from surgplan.twin._foot_kernel import foot_normal_modes
from surgplan.twin.basis import DeformationBasis
from surgplan.twin.radius import ISOTROPIC_RADIUS95, coverage_radius_mm
from surgplan.twin.state import TargetEstimate

__all__ = [
    "target_jacobians",
    "target_covariances",
    "estimate_targets",
    "rigid_deformation_covariance",
]


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


def rigid_deformation_covariance(
    full_basis: DeformationBasis,
    centre_mm: NDArray[np.float64],
    q_mm: NDArray[np.float64] | None = None,
    normals: NDArray[np.float64] | None = None,
    face: NDArray[np.intp] | None = None,
    beta: NDArray[np.float64] | None = None,
    *,
    absorbed: bool = True,
    modes_v: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """(T, 3, 3) model-axes covariance of the deformation a rigid fit leaves at the targets.

    Parameters
    ----------
    full_basis : DeformationBasis
        The deformable basis (its modes and amplitude prior), not the rigid one.
    centre_mm : numpy.ndarray, shape (3,)
        Rotation centre of the pose perturbation, mm.
    q_mm, normals : numpy.ndarray, shape (N, 3), optional
        The fit's (inlier) points in model space and the surface normals at their feet.
    face, beta : numpy.ndarray, shape (N,) and (N, 3), optional
        Their feet: triangle and barycentric coordinates.
    absorbed : bool, keyword-only
        ``True`` (``"fitted"``): ``M A M^T`` with the pose's absorption of the deformation;
        ``False`` (``"prior"``) or no points: ``Phi_t A Phi_t^T`` (module docstring).
    modes_v : numpy.ndarray, shape (V, 3, k), keyword-only, optional
        ``full_basis.surface_modes`` laid out per vertex (C-contiguous), mm; a caller that
        calls this on every update passes it once made (default: made here).
    """
    k = full_basis.n_modes
    n_t = len(full_basis.target_names)
    if k == 0 or n_t == 0:
        return np.zeros((n_t, 3, 3))
    M = full_basis.target_modes.transpose(1, 2, 0).copy()  # (T, 3, k)
    if absorbed and q_mm is not None and len(q_mm) >= 6:
        if modes_v is None:
            modes_v = per_vertex_modes(full_basis)
        G = np.empty((len(q_mm), k))  # G_i = n_i^T Phi_{s,i}: the modes at the feet
        foot_normal_modes(
            np.ascontiguousarray(full_basis.faces, np.int64), np.ascontiguousarray(face, np.int64),
            np.ascontiguousarray(beta, np.float64), np.ascontiguousarray(normals, np.float64),
            modes_v, G,
        )  # fmt: skip
        J = np.concatenate([np.cross(q_mm - centre_mm, normals), normals], axis=1)
        H = J.T @ J
        try:
            K = np.linalg.solve(H, J.T @ G)  # (6, k)
        except np.linalg.LinAlgError:
            K = np.linalg.lstsq(H, J.T @ G, rcond=None)[0]
        y = full_basis.target_points_mm
        Jp = np.empty((n_t, 3, 6))
        Jp[:, :, :3] = _skew(y - centre_mm)
        Jp[:, :, 3:] = -np.eye(3)
        M += Jp @ K
    A = np.asarray(full_basis.prior_std, np.float64) ** 2
    return np.einsum("tik,k,tjk->tij", M, A, M)


def per_vertex_modes(basis: DeformationBasis) -> NDArray[np.float64]:
    """``basis.surface_modes`` (k, V, 3) laid out per vertex, (V, 3, k) C-contiguous, mm."""
    return np.ascontiguousarray(np.asarray(basis.surface_modes, np.float64).transpose(1, 2, 0))


def estimate_targets(
    basis: DeformationBasis,
    T_model_tracker: NDArray[np.float64],
    amplitudes: NDArray[np.float64],
    covariance: NDArray[np.float64],
    centre_mm: NDArray[np.float64],
    unmodelled_mm2: NDArray[np.float64] | None = None,
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
    unmodelled_mm2 : numpy.ndarray, shape (T, 3, 3), optional
        Model-axes covariance of deformation the twin does not estimate (rigid mode,
        :func:`rigid_deformation_covariance`), mm^2; part of the discrepancy component.

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
    n = len(total)
    if unmodelled_mm2 is not None:
        extra = R.T @ np.asarray(unmodelled_mm2, np.float64) @ R
        total = total + extra
        disc_cov = extra + (basis.discrepancy_mm**2)[:, None, None] * np.eye(3)
        radii = coverage_radius_mm(np.concatenate([total, post, disc_cov]))
        r_disc = radii[2 * n :]
    else:
        radii = coverage_radius_mm(np.concatenate([total, post]))  # one call for both
        r_disc = ISOTROPIC_RADIUS95 * basis.discrepancy_mm
    r_total, r_post = radii[:n], radii[n : 2 * n]
    T_tracker_model = np.linalg.inv(T_model_tracker)
    pos = y @ T_tracker_model[:3, :3].T + T_tracker_model[:3, 3]
    return tuple(
        TargetEstimate(
            name=name,
            position_tracker_mm=pos[i].copy(),
            radius95_mm=float(r_total[i]),
            posterior_mm=float(r_post[i]),
            discrepancy_mm=float(r_disc[i]),
            stiffness_mm=float(ISOTROPIC_RADIUS95 * basis.stiffness_spread_mm[i]),
            covariance_tracker_mm2=total[i].copy(),
        )
        for i, name in enumerate(basis.target_names)
    )
