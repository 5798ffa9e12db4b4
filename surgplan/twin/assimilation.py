"""Iterated (Gauss-Newton) Kalman update of the twin's state from one batch of points.

State ``x = [w (3, rad), t (3, mm), a (k)]``: a left perturbation of ``T_model_tracker`` in
model space, rotating by the rotation vector ``w`` about the organ centroid ``c`` and
translating by ``t`` (``q -> R(w)(q - c) + c + t``; rotating about ``c`` rather than the
scanner origin keeps rotation and translation nearly uncorrelated), then the modal amplitudes.

Observation model: a tracker point ``p_i`` maps to ``q_i = T_model_tracker p_i`` and lies on the
deformed surface ``x_j(a) = v_j + Phi_j a`` at its correspondence ``j``
(:mod:`surgplan.twin.surface`). The point-to-plane residual (Chen & Medioni 1992) along the
deformed triangle's normal ``n_j`` at the foot is

    r_i = n_j . (q_i - x_j(a)),   var r_i = n_j^T R Sigma R^T n_j,

with ``Sigma`` the sensor noise covariance in tracker axes and ``R`` the rotation of
``T_model_tracker``. Linearised with ``q ~ q0 + w x (q0 - c) + t`` (Low 2004):

    dr/dw = ((q0 - c) x n)^T,   dr/dt = n^T,   dr/da = -n^T Phi_j.

Each iteration minimises ``||r + J dx||^2_W + ||x + dx - x_prior||^2_{P^-1}`` (the iterated
extended Kalman filter as Gauss-Newton on the MAP objective, Bell & Cathey 1993), ``W`` the
robust weights over the residual variances (:mod:`surgplan.twin.robust`). While the
correspondences are searched (every iteration of the first stage, :func:`assimilate`) the
residuals, normals and Jacobian are re-evaluated in one compiled pass
(:meth:`~surgplan.twin.surface.TwinSurface.residuals`) and ``J^T W J`` accumulated by BLAS
``dsyrk``; once the feet are kept, the iterations are chord steps on that last linearisation
(``J``, ``H`` and its Cholesky factor, the normals kept; the residuals move exactly with the
pose and linearly with the amplitudes, the Tukey weights are re-evaluated): over a step that
slides the points by less than a tenth of a triangle the Jacobian changes at second order, and
these steps cost a matrix-vector product instead of a pass over the modes. The posterior
covariance is ``(P^-1 + J^T W J)^-1`` at that last linearisation, from its Cholesky factor
(LAPACK ``dpotri``). The pose perturbation is folded into
``T_model_tracker`` at the end (error-state reset, Sola 2017, reset Jacobian ~ identity), so
every prior pose perturbation has zero mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.linalg.blas import dsyrk as _syrk
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotri as _potri
from scipy.linalg.lapack import dpotrs as _potrs

from surgplan.twin._chord_kernel import chord_residuals
from surgplan.twin.robust import geman_mcclure, robust_scale, tukey
from surgplan.twin.surface import Foot, TwinSurface

__all__ = ["AssimilationResult", "assimilate", "pose_increment", "point_residuals", "slip_mm"]

#: Robust scale (in noise sigmas) above which the residuals count as not yet explained.
UNEXPLAINED_SIGMAS = 2.0
#: Fewest points whose robust scale decides that regime: the MAD of fewer residuals is no
#: estimate of a scale (one residual is its own MAD, so a lone point 1.35 sigma off would
#: count as unexplained, and Geman-McClure weights with its own scale would accept it at any
#: distance); a smaller batch is judged by Tukey weights against the noise.
MIN_SCALE_POINTS = 10
#: Slip of a step (vertex spacings) below which the correspondence search ends.
SLIP_SPACING = 0.1
#: Points (evenly strided) the slip statistic is computed on.
SLIP_SAMPLES = 256


@dataclass(frozen=True)
class AssimilationResult:
    """Posterior of one batch.

    Attributes
    ----------
    T_model_tracker : numpy.ndarray, shape (4, 4)
        Posterior pose (translation mm).
    amplitudes : numpy.ndarray, shape (k,)
        Posterior amplitudes.
    covariance : numpy.ndarray, shape (6 + k, 6 + k)
        Posterior covariance of ``[w (rad), t (mm), a]`` about that pose.
    iterations : int
        Gauss-Newton iterations run.
    converged : bool
        Whether the last step was below the tolerances.
    residuals_mm, sigma_mm, weights : numpy.ndarray, shape (N,)
        Signed point-to-plane residuals (mm), their noise std (mm) and robust weights at the
        last linearisation (before its step, below the tolerance when converged).
    feet : Foot
        Final correspondences.
    """

    T_model_tracker: NDArray[np.float64]
    amplitudes: NDArray[np.float64]
    covariance: NDArray[np.float64]
    iterations: int
    converged: bool
    residuals_mm: NDArray[np.float64]
    sigma_mm: NDArray[np.float64]
    weights: NDArray[np.float64]
    feet: Foot


def pose_increment(delta: NDArray[np.float64], centre_mm: NDArray[np.float64]) -> NDArray:
    """4x4 map ``q -> R(w)(q - c) + c + t`` of ``delta = [w (rad), t (mm)]`` about ``c``."""
    E = np.eye(4)
    E[:3, :3] = _rotation(delta[:3])
    E[:3, 3] = centre_mm + delta[3:6] - E[:3, :3] @ centre_mm
    return E


def _rotation(w: NDArray[np.float64]) -> NDArray[np.float64]:
    """``exp([w]x)`` by Rodrigues' formula (Taylor terms below 1e-4 rad: exact to 1e-17)."""
    th2 = float(w @ w)
    K = np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])
    if th2 < 1e-8:
        s, c = 1.0 - th2 / 6.0, 0.5 - th2 / 24.0
    else:
        th = math.sqrt(th2)
        s, c = math.sin(th) / th, (1.0 - math.cos(th)) / th2
    return np.eye(3) + s * K + c * (K @ K)


def point_residuals(
    points: NDArray[np.float64],
    T_model_tracker: NDArray[np.float64],
    a: NDArray[np.float64],
    surface: TwinSurface,
    sensor_cov: NDArray[np.float64],
    idx: Foot | None = None,
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray, NDArray | None]:
    """Residuals of tracker points on the deformed surface at one state.

    Returns
    -------
    q : (N, 3) model-space points, mm; idx : Foot, the correspondences; r : (N,) signed residuals,
    mm; sigma : (N,) their noise std, mm; n : (N, 3) deformed normals; phi : (N, 3, k) modes
    at the correspondences (``None`` when ``k = 0``).
    """
    R = T_model_tracker[:3, :3]
    q = points @ R.T + T_model_tracker[:3, 3]
    idx = surface.correspond(q, a, idx)
    x, n, phi = surface.at(idx, a)
    r = np.einsum("ij,ij->i", n, q - x)
    S = R @ sensor_cov @ R.T  # noise covariance in model axes
    sigma = np.sqrt(np.einsum("ij,jk,ik->i", n, S, n))
    return q, idx, r, sigma, n, phi


def _jacobian(q, n, phi, centre):  # noqa: ANN001, ANN202 - private, shapes as in the module
    """Rows ``[((q - c) x n)^T, n^T, -n^T Phi_j]`` of the residual Jacobian."""
    k = 0 if phi is None else phi.shape[2]
    J = np.empty((len(q), 6 + k))
    d = q - centre
    J[:, 0] = d[:, 1] * n[:, 2] - d[:, 2] * n[:, 1]  # (q - c) x n, without np.cross
    J[:, 1] = d[:, 2] * n[:, 0] - d[:, 0] * n[:, 2]
    J[:, 2] = d[:, 0] * n[:, 1] - d[:, 1] * n[:, 0]
    J[:, 3:6] = n
    if k:
        J[:, 6:] = -np.einsum("ij,ijk->ik", n, phi)
    return J


def _spd_factor(A: NDArray[np.float64]) -> NDArray[np.float64]:
    """Lower Cholesky factor of a symmetric positive definite matrix (LAPACK ``dpotrf``)."""
    c, info = _potrf(A, lower=1, clean=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix not positive definite (dpotrf info {info})")
    return c


def _spd_inverse(A: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of a symmetric positive definite matrix from its Cholesky factor (``dpotri``)."""
    inv, info = _potri(_spd_factor(A), lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dpotri info {info}")
    return np.tril(inv) + np.tril(inv, -1).T


def slip_mm(
    q: NDArray[np.float64],
    feet: Foot,
    surface: TwinSurface,
    step: NDArray[np.float64],
    centre_mm: NDArray[np.float64],
    weights: NDArray[np.float64],
) -> float:
    """How far a step slides the points across the surface: 90th percentile over inliers, mm.

    A step ``[w, t, da]`` moves a model-space point by ``w x (q - c) + t`` and its foot by
    ``Phi_foot da``; the difference is how far the point moves relative to the surface
    (an upper bound on its tangential slip). Feet found before a step whose slip is a small
    fraction of a triangle stay the feet a new search would find, up to the points near an
    edge, whose plane changes by the dihedral angle times the slip (second order).
    """
    stride = max(1, len(q) // SLIP_SAMPLES)  # a statistic: an even subsample suffices
    q, weights = q[::stride], weights[::stride]
    feet = Foot(feet.face[::stride], feet.beta[::stride], feet.vertex[::stride])
    w, t = step[:3], step[3:6]
    d = q - centre_mm
    move = np.empty_like(d)
    move[:, 0] = w[1] * d[:, 2] - w[2] * d[:, 1] + t[0]  # w x (q - c) + t
    move[:, 1] = w[2] * d[:, 0] - w[0] * d[:, 2] + t[1]
    move[:, 2] = w[0] * d[:, 1] - w[1] * d[:, 0] + t[2]
    if surface.n_modes:
        move -= surface.displacement(feet, step[6:])
    s = np.sqrt(np.einsum("ij,ij->i", move, move))[weights > 0]
    if len(s) == 0:
        return 0.0 if len(move) == 0 else float("inf")
    return float(np.partition(s, int(0.9 * (len(s) - 1)))[int(0.9 * (len(s) - 1))])


def assimilate(
    points: NDArray[np.float64],
    surface: TwinSurface,
    centre_mm: NDArray[np.float64],
    T_model_tracker: NDArray[np.float64],
    amplitudes: NDArray[np.float64],
    covariance: NDArray[np.float64],
    *,
    sensor_cov: NDArray[np.float64],
    max_iterations: int = 12,
    settle: float = 0.3,
    tolerance: float = 0.05,
    slip_spacing: float = SLIP_SPACING,
) -> AssimilationResult:
    """Fuse one batch of tracker points with the prior (module docstring).

    Iterations re-search the correspondences until the residuals are explained by the noise
    (Tukey weights) and either the step is within ``settle`` posterior standard deviations
    (Mahalanobis length ``sqrt(dx^T H dx)``, ``H`` the posterior information) or it slides the
    points across the surface by less than ``slip_spacing`` vertex spacings
    (:func:`slip_mm`): a new search would find the same feet. Then the feet are kept and
    Gauss-Newton runs to a step below ``tolerance``. (Re-searching to the end makes the
    iterate jitter by about half a posterior standard deviation as feet flip between
    triangles; once the posterior is tight, after a few batches, half a standard deviation is
    a few micrometres and the ``settle`` test alone would never end the search, while the
    slip test does after the first step of a warm update.)

    Parameters
    ----------
    points : numpy.ndarray, shape (N, 3)
        Finite tracker points, mm.
    surface : TwinSurface
        The organ surface and its modes.
    centre_mm : numpy.ndarray, shape (3,)
        Rotation centre of the pose perturbation (model space), mm.
    T_model_tracker, amplitudes, covariance
        Prior mean pose (4, 4), amplitudes (k,) and covariance (6 + k, 6 + k).
    sensor_cov : numpy.ndarray, shape (3, 3), keyword-only
        Localisation noise covariance in tracker axes, mm^2.
    max_iterations : int, keyword-only
        Most Gauss-Newton iterations of each of the two stages.
    settle, tolerance : float, keyword-only
        Step lengths (posterior standard deviations) ending the two stages.
    slip_spacing : float, keyword-only
        Slip (in vertex spacings) below which the search stage ends.

    Returns
    -------
    AssimilationResult
    """
    points = np.ascontiguousarray(points, np.float64)
    a_prior = np.asarray(amplitudes, np.float64)
    centre = np.ascontiguousarray(centre_mm, np.float64)
    P_inv = _spd_inverse(np.asarray(covariance, np.float64))
    slip_limit = slip_spacing * surface.model.spacing_mm
    k = len(a_prior)
    T, a = T_model_tracker.copy(), a_prior.copy()
    xi = np.zeros(6)  # pose perturbation from the prior pose (first order)
    feet: Foot | None = None
    # The last search iteration's linearisation (set there before any chord step uses it).
    J = n = sigma = L = q0 = r0 = a0 = None
    converged, iterations, frozen, stage_its = False, 0, False, 0
    while stage_its < max_iterations:
        iterations += 1
        stage_its += 1
        R = T[:3, :3]
        dev = np.concatenate([xi, a - a_prior])
        if frozen:
            # Chord step: the linearisation of the last search (J, H, normals) is kept and
            # only the residuals move, exactly for the pose and linearly in the amplitudes
            # with the normals frozen: r = r0 + n.(q - q0) + J_a (a - a0); one compiled pass
            # also re-weights them and sums the data gradient J^T (w r / sigma^2).
            r, w, g = np.empty(len(points)), np.empty(len(points)), np.empty(6 + k)
            chord_residuals(points, np.ascontiguousarray(R), np.ascontiguousarray(T[:3, 3]),
                            q0, n, r0, J, a - a0, sigma, r, w, g)  # fmt: skip
            g += P_inv @ dev
        else:
            q = points @ R.T + T[:3, 3]
            feet = surface.correspond(q, a, feet)
            S = R @ sensor_cov @ R.T  # noise covariance in model axes
            _, n, r, sigma, J = surface.residuals(q, feet, a, S, centre)
            scale = robust_scale(r)
            robust = len(r) >= MIN_SCALE_POINTS and scale > UNEXPLAINED_SIGMAS * float(
                np.median(sigma)
            )
            w = geman_mcclure(r, scale) if robust else tukey(r / sigma)
            Js = J * (np.sqrt(w) / sigma)[:, None]
            H = _syrk(1.0, Js.T, trans=0, lower=1)  # lower triangle of J^T W J (Js.T: F-order)
            H += P_inv
            L = _spd_factor(H)
            q0, r0, a0 = q, r, a
            g = J.T @ (w / sigma**2 * r) + P_inv @ dev
        step = -_potrs(L, g, lower=1)[0]
        T = pose_increment(step[:6], centre) @ T
        xi += step[:6]
        a = a + step[6:]
        length = float(np.sqrt(max(-(step @ g), 0.0)))  # sqrt(dx^T H dx), H dx = -g
        if frozen and length < tolerance:
            converged = True
            break
        if (
            not frozen
            and not robust
            and (length < settle or slip_mm(q, feet, surface, step, centre, w) < slip_limit)
        ):
            frozen, stage_its = True, 0
    inv, _ = _potri(L, lower=1)  # the covariance at the last linearisation
    cov = np.tril(inv) + np.tril(inv, -1).T
    return AssimilationResult(
        T_model_tracker=T,
        amplitudes=a,
        covariance=cov,
        iterations=iterations,
        converged=converged,
        residuals_mm=r,
        sigma_mm=sigma,
        weights=w,
        feet=feet,
    )
