"""Robust point-to-plane ICP by vectorised Gauss-Newton against a prebuilt KD-tree.

Each iteration linearises the point-to-plane residual ``r_i = n_i . (R p_i + t - q_i)`` about the
current pose (Chen & Medioni 1992; Low 2004, "Linear least-squares optimization for point-to-plane
ICP surface registration") and solves the 6x6 weighted normal equations. Weights come from the
Geman-McClure robust kernel ``rho(r) = (r^2/2) / (1 + r^2/k^2)`` (iteratively reweighted least
squares, weight ``w = 1 / (1 + r^2/k^2)^2``), which discounts outliers and points with no
counterpart under partial overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

__all__ = ["IcpState", "robust_icp", "surface_residuals"]


@dataclass(frozen=True)
class IcpState:
    """Outcome of :func:`robust_icp`: pose, iterations used and whether it converged.

    ``residuals`` (signed point-to-plane, mm) and ``indices`` (nearest target vertex) are those
    of the last iteration, evaluated at the pose before its (converged, hence tiny) update: a
    caller may reuse them for fit statistics instead of searching correspondences again.
    """

    T: NDArray[np.float64]
    iterations: int
    converged: bool
    residuals: NDArray[np.float64] | None = None
    indices: NDArray[np.intp] | None = None


def surface_residuals(
    p: NDArray[np.float64],
    vertices: NDArray[np.float64],
    normals: NDArray[np.float64],
    tree: cKDTree,
    spacing_mm: float,
    nearest: Callable[[NDArray[np.float64]], NDArray[np.intp]] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Signed point-to-plane residuals and an approximate point-to-surface distance.

    Returns
    -------
    r : numpy.ndarray, shape (N,)
        Signed distance along the nearest vertex normal, mm.
    dist : numpy.ndarray, shape (N,)
        ``max(|r|, d_vertex - spacing_mm)``: close to the true distance to the surface near it,
        and never much smaller than the truth far from it, mm.
    idx : numpy.ndarray, shape (N,)
        Index of the nearest vertex.

    Other Parameters
    ----------------
    nearest : callable, optional
        Nearest-vertex lookup used instead of ``tree`` (e.g. a precomputed voxel grid).
    """
    if nearest is None:
        d, idx = tree.query(p, k=1)
    else:
        idx = nearest(p)
        d = np.linalg.norm(p - vertices[idx], axis=1)
    r = np.einsum("ij,ij->i", p - vertices[idx], normals[idx])
    return r, np.maximum(np.abs(r), d - spacing_mm), idx


def robust_icp(
    points: NDArray[np.float64],
    vertices: NDArray[np.float64],
    normals: NDArray[np.float64],
    tree: cKDTree,
    T_init: NDArray[np.float64],
    *,
    kernel_mm: float | tuple[float, float],
    max_iterations: int = 30,
    max_distance_mm: float = np.inf,
    tol_rad: float = 1e-4,
    tol_mm: float = 1e-3,
    nearest: Callable[[NDArray[np.float64]], NDArray[np.intp]] | None = None,
    max_residual_mm: float = np.inf,
) -> IcpState:
    """Robust point-to-plane ICP from ``T_init``.

    Parameters
    ----------
    points : numpy.ndarray, shape (N, 3)
        Source points, mm.
    vertices, normals : numpy.ndarray, shape (V, 3)
        Target vertices (mm) and unit normals.
    tree : scipy.spatial.cKDTree
        KD-tree on ``vertices`` (prebuilt).
    T_init : numpy.ndarray, shape (4, 4)
        Starting pose mapping points into target space.
    kernel_mm : float or (float, float)
        Geman-McClure scale ``k`` in mm; a pair ``(start, end)`` anneals geometrically over the
        iterations (wide basin first, tight fit last).
    max_iterations : int
        Gauss-Newton iterations at most.
    max_distance_mm : float
        Correspondences farther than this get zero weight.
    tol_rad, tol_mm : float
        Convergence thresholds on the update's rotation (rad) and translation (mm).
    nearest : callable, optional
        Returns the nearest-vertex index of each point (e.g. a precomputed voxel lookup,
        :meth:`registration.model.SurfaceModel.nearest_vertex`) instead of querying ``tree``;
        ``max_distance_mm`` is then ignored.
    max_residual_mm : float
        Points whose point-to-plane residual exceeds this get zero weight (a truncated kernel;
        with ``kernel_mm=inf`` an iteration is plain least squares on these inliers).

    Returns
    -------
    IcpState
    """
    R = T_init[:3, :3].copy()
    t = T_init[:3, 3].copy()
    k0, k1 = (kernel_mm, kernel_mm) if np.isscalar(kernel_mm) else kernel_mm
    converged = False
    it = 0
    for it in range(1, max_iterations + 1):
        frac = 1.0 if k0 == k1 else min(1.0, (it - 1) / max(1, max_iterations // 2))
        k = k0 if k0 == k1 else k0 * (k1 / k0) ** frac
        p = points @ R.T + t
        if nearest is None:
            d, idx = tree.query(p, k=1)
        else:
            idx = nearest(p)
        q, n = vertices[idx], normals[idx]
        r = np.einsum("ij,ij->i", p - q, n)
        w = 1.0 / (1.0 + (r / k) ** 2) ** 2
        if nearest is None and np.isfinite(max_distance_mm):
            w[d > max_distance_mm] = 0.0
        if np.isfinite(max_residual_mm):
            w[np.abs(r) > max_residual_mm] = 0.0
        c = (w[:, None] * p).sum(axis=0) / max(w.sum(), 1e-12)
        J = np.empty((len(p), 6))
        a = p - c  # d r / d omega = (p - c) x n, rotation about c (np.cross is slow)
        J[:, 0] = a[:, 1] * n[:, 2] - a[:, 2] * n[:, 1]
        J[:, 1] = a[:, 2] * n[:, 0] - a[:, 0] * n[:, 2]
        J[:, 2] = a[:, 0] * n[:, 1] - a[:, 1] * n[:, 0]
        J[:, 3:] = n  # d r / d v
        Jw = J * w[:, None]
        H = Jw.T @ J + 1e-9 * np.eye(6)
        x = -np.linalg.solve(H, Jw.T @ r)
        dR = Rotation.from_rotvec(x[:3]).as_matrix()  # exp([omega]x), Rodrigues
        R = dR @ R
        t = dR @ (t - c) + c + x[3:]
        if np.linalg.norm(x[:3]) < tol_rad and np.linalg.norm(x[3:]) < tol_mm and frac >= 1.0:
            converged = True
            break
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return IcpState(T=T, iterations=it, converged=converged, residuals=r, indices=idx)
