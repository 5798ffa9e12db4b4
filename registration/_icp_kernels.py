"""Compiled (Numba) inner loops of the warm-started point-to-plane ICP.

One pass over the points per call, no temporaries: the nearest-vertex search (voxel-grid guess
refined by steepest descent over the mesh's vertex graph) and the accumulation of the 6x6
Gauss-Newton normal equations. Single-threaded; compiled on first use and cached on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _descend(
    x: float,
    y: float,
    z: float,
    v: int,
    vertices: np.ndarray,
    nb_ptr: np.ndarray,
    nb_idx: np.ndarray,
    nb_xyz: np.ndarray,
) -> tuple[int, float]:
    """Walk the vertex graph from ``v`` towards the vertex nearest ``(x, y, z)``.

    Steepest descent of the squared distance over each vertex's neighbours up to two edges
    away (one ring is not enough: obtuse or long triangles can hide a nearer vertex behind a
    farther neighbour); the neighbours' positions are read from ``nb_xyz`` (float32, stored
    beside each other). Every step strictly lowers the squared distance, so the walk ends.
    Returns the vertex and its squared distance, mm^2.
    """
    dx = x - vertices[v, 0]
    dy = y - vertices[v, 1]
    dz = z - vertices[v, 2]
    best = dx * dx + dy * dy + dz * dz
    while True:
        step_to = -1
        for k in range(nb_ptr[v], nb_ptr[v + 1]):
            dx = x - nb_xyz[k, 0]
            dy = y - nb_xyz[k, 1]
            dz = z - nb_xyz[k, 2]
            d = dx * dx + dy * dy + dz * dz
            if d < best:
                best = d
                step_to = k
        if step_to < 0:
            break
        # Keep the distance that won (from the float32 copy): recomputing it in float64 could
        # make the previous vertex look nearer again and the walk cycle between ties.
        v = nb_idx[step_to]
    return v, best


@njit(cache=True, nogil=True)
def transform_and_correspond(
    points: np.ndarray,
    R: np.ndarray,
    t: np.ndarray,
    grid_origin: np.ndarray,
    inv_voxel: float,
    grid: np.ndarray,
    pairs: np.ndarray,
    grid_shape: np.ndarray,
    vertices: np.ndarray,
    nb_ptr: np.ndarray,
    nb_idx: np.ndarray,
    nb_xyz: np.ndarray,
    p_out: np.ndarray,
    idx_out: np.ndarray,
    exact: bool,
) -> int:
    """Move the points by ``(R, t)`` and find each one's nearest vertex.

    The voxel grid gives the vertex nearest the voxel centre (all that is done unless
    ``exact``); steepest descent over the vertex graph then moves to a neighbour closer to the
    point until none is. In thin parts (``grid`` entries ``<= -2``, see
    :meth:`SurfaceModel.sheet_seed_grid`) the walk starts from both guesses in ``pairs`` and
    the nearer result is kept. Points outside the grid's band get ``-1`` (the caller searches
    those in its KD-tree).

    Returns the number of points without a grid vertex.
    """
    n = points.shape[0]
    nx, ny, nz = grid_shape[0], grid_shape[1], grid_shape[2]
    misses = 0
    for i in range(n):
        x = R[0, 0] * points[i, 0] + R[0, 1] * points[i, 1] + R[0, 2] * points[i, 2] + t[0]
        y = R[1, 0] * points[i, 0] + R[1, 1] * points[i, 1] + R[1, 2] * points[i, 2] + t[1]
        z = R[2, 0] * points[i, 0] + R[2, 1] * points[i, 1] + R[2, 2] * points[i, 2] + t[2]
        p_out[i, 0] = x
        p_out[i, 1] = y
        p_out[i, 2] = z
        gi = int(np.floor((x - grid_origin[0]) * inv_voxel))
        gj = int(np.floor((y - grid_origin[1]) * inv_voxel))
        gk = int(np.floor((z - grid_origin[2]) * inv_voxel))
        v = -1
        if 0 <= gi < nx and 0 <= gj < ny and 0 <= gk < nz:
            v = grid[gi, gj, gk]
        if v == -1:
            idx_out[i] = -1
            misses += 1
            continue
        v2 = -1
        if v <= -2:  # a thin part: a guess on each sheet
            v2 = pairs[-2 - v, 1]
            v = pairs[-2 - v, 0]
        if not exact:
            idx_out[i] = v
            continue
        v, best = _descend(x, y, z, v, vertices, nb_ptr, nb_idx, nb_xyz)
        if v2 >= 0:  # walk on the facing sheet too, keep the nearer
            u, d = _descend(x, y, z, v2, vertices, nb_ptr, nb_idx, nb_xyz)
            if d < best:
                v = u
        idx_out[i] = v
    return misses


@njit(cache=True, nogil=True)
def point_to_plane_system(
    p: np.ndarray,
    idx: np.ndarray,
    vertices: np.ndarray,
    normals: np.ndarray,
    kernel: float,
    cutoff: float,
    r_out: np.ndarray,
    w_out: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted point-to-plane normal equations about the weighted centroid.

    Residual ``r_i = n_i . (p_i - q_i)``; weight Geman-McClure ``1 / (1 + (r/kernel)^2)^2``
    (``kernel = inf``: plain least squares), zero where ``|r| > cutoff``. Unknowns: rotation
    vector about the centroid ``c`` of the weighted points, then translation.

    Returns ``(H, g, c)``: ``H x = -g`` gives the Gauss-Newton step.
    """
    n = p.shape[0]
    inv_k2 = 0.0 if not np.isfinite(kernel) else 1.0 / (kernel * kernel)
    sw = 0.0
    cx = 0.0
    cy = 0.0
    cz = 0.0
    for i in range(n):
        v = idx[i]
        r = (
            (p[i, 0] - vertices[v, 0]) * normals[v, 0]
            + (p[i, 1] - vertices[v, 1]) * normals[v, 1]
            + (p[i, 2] - vertices[v, 2]) * normals[v, 2]
        )
        r_out[i] = r
        if abs(r) > cutoff:
            w = 0.0
        else:
            s = 1.0 + r * r * inv_k2
            w = 1.0 / (s * s)
        w_out[i] = w
        sw += w
        cx += w * p[i, 0]
        cy += w * p[i, 1]
        cz += w * p[i, 2]
    c = np.zeros(3)
    if sw > 0.0:
        c[0] = cx / sw
        c[1] = cy / sw
        c[2] = cz / sw
    H = np.zeros((6, 6))
    g = np.zeros(6)
    J = np.empty(6)
    for i in range(n):
        w = w_out[i]
        if w == 0.0:
            continue
        v = idx[i]
        nx_, ny_, nz_ = normals[v, 0], normals[v, 1], normals[v, 2]
        ax = p[i, 0] - c[0]
        ay = p[i, 1] - c[1]
        az = p[i, 2] - c[2]
        J[0] = ay * nz_ - az * ny_
        J[1] = az * nx_ - ax * nz_
        J[2] = ax * ny_ - ay * nx_
        J[3] = nx_
        J[4] = ny_
        J[5] = nz_
        wr = w * r_out[i]
        for a in range(6):
            wa = w * J[a]
            g[a] += J[a] * wr
            for b in range(a, 6):
                H[a, b] += wa * J[b]
    for a in range(6):
        for b in range(a):
            H[a, b] = H[b, a]
    return H, g, c


@njit(cache=True, nogil=True)
def _solve_spd6(H: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``H x = b`` for a symmetric positive (semi-)definite 6x6 ``H`` by Cholesky.

    A tiny ridge (1e-9 times the largest diagonal entry, at least 1e-12) keeps a rank-deficient
    system (points on a plane) solvable; the free directions then get no motion.
    """
    L = np.zeros((6, 6))
    ridge = 1e-12
    for a in range(6):
        ridge = max(ridge, 1e-9 * H[a, a])
    for i in range(6):
        for j in range(i + 1):
            s = H[i, j] + (ridge if i == j else 0.0)
            for k in range(j):
                s -= L[i, k] * L[j, k]
            if i == j:
                L[i, i] = np.sqrt(max(s, 1e-300))
            else:
                L[i, j] = s / L[j, j]
    y = np.zeros(6)
    for i in range(6):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * y[k]
        y[i] = s / L[i, i]
    x = np.zeros(6)
    for i in range(5, -1, -1):
        s = y[i]
        for k in range(i + 1, 6):
            s -= L[k, i] * x[k]
        x[i] = s / L[i, i]
    return x


@njit(cache=True, nogil=True)
def gauss_newton_update(
    p: np.ndarray,
    idx: np.ndarray,
    vertices: np.ndarray,
    normals: np.ndarray,
    kernel: float,
    cutoff: float,
    r_out: np.ndarray,
    w_out: np.ndarray,
    R: np.ndarray,
    t: np.ndarray,
) -> tuple[float, float]:
    """One Gauss-Newton step of the pose ``(R, t)``, updated in place.

    Builds the system of :func:`point_to_plane_system` at the moved points ``p``, solves it
    and composes the step (rotation ``exp([omega]x)`` about the weighted centroid ``c``, then
    translation ``v``): ``R <- dR R``, ``t <- dR (t - c) + c + v``.

    Returns the step's rotation angle (rad) and translation length (mm).

    ``dR`` is written out (Rodrigues' formula) rather than taken from
    ``scipy.spatial.transform.Rotation.from_rotvec``, which Numba's nopython mode cannot call;
    :func:`registration.icp.robust_icp` uses scipy's.
    """
    H, g, c = point_to_plane_system(p, idx, vertices, normals, kernel, cutoff, r_out, w_out)
    x = _solve_spd6(H, -g)
    theta = np.sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2])
    dR = np.eye(3)
    if theta > 1e-15:
        kx, ky, kz = x[0] / theta, x[1] / theta, x[2] / theta
        s, one_c = np.sin(theta), 1.0 - np.cos(theta)
        dR[0, 0] = 1.0 - one_c * (ky * ky + kz * kz)
        dR[0, 1] = -s * kz + one_c * kx * ky
        dR[0, 2] = s * ky + one_c * kx * kz
        dR[1, 0] = s * kz + one_c * kx * ky
        dR[1, 1] = 1.0 - one_c * (kx * kx + kz * kz)
        dR[1, 2] = -s * kx + one_c * ky * kz
        dR[2, 0] = -s * ky + one_c * kx * kz
        dR[2, 1] = s * kx + one_c * ky * kz
        dR[2, 2] = 1.0 - one_c * (kx * kx + ky * ky)
    newR = dR @ R
    tc = t - c
    newt = dR @ tc + c + x[3:]
    R[:, :] = newR
    t[:] = newt
    return theta, np.sqrt(x[3] * x[3] + x[4] * x[4] + x[5] * x[5])
