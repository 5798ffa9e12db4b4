"""Compiled (Numba) fit statistics of a registered point set, in one pass over the points.

For the reliability verdict of a real-time update: the inliers, their RMS distance and the 6x6
point-to-plane information matrix of :func:`registration.reliability.pose_conditioning`,
without the temporaries of the array version.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def inlier_statistics(
    points: np.ndarray,
    R: np.ndarray,
    t: np.ndarray,
    residuals: np.ndarray,
    idx: np.ndarray,
    vertices: np.ndarray,
    normals: np.ndarray,
    reach: np.ndarray,
    threshold: float,
    p_in: np.ndarray,
    r_in: np.ndarray,
) -> tuple[int, float, np.ndarray]:
    """Inliers of the points moved by ``(R, t)`` and their information matrix.

    A point's distance to the surface is taken as ``max(|r|, |p - q| - reach[v])``: ``r`` its
    point-to-plane residual at its nearest vertex ``v`` (position ``q``), ``reach[v]`` the
    longest edge at ``v``. A point on the triangles around ``v`` is within ``reach[v]`` of it,
    so there the distance is the point-to-plane one, whatever the triangles' sizes; a point off
    to the side of the surface gets the excess of its vertex distance. It is an inlier below
    ``threshold``.

    Returns
    -------
    n_inliers : int
        The first ``n_inliers`` rows of ``p_in`` and ``r_in`` hold the inliers' moved
        positions and residuals.
    sum_sq_distance : float
        Sum of the inliers' squared distances, mm^2.
    information : numpy.ndarray, shape (6, 6)
        ``sum J_i^T J_i`` over the inliers, ``J_i = [((p_i - c) x n_i) / L, n_i]`` with ``c``
        their centroid and ``L`` their RMS radius (``1`` if zero).
    """
    n_in = 0
    sum_d2 = 0.0
    keep = np.empty(points.shape[0], dtype=np.int64)
    for i in range(points.shape[0]):
        x = R[0, 0] * points[i, 0] + R[0, 1] * points[i, 1] + R[0, 2] * points[i, 2] + t[0]
        y = R[1, 0] * points[i, 0] + R[1, 1] * points[i, 1] + R[1, 2] * points[i, 2] + t[1]
        z = R[2, 0] * points[i, 0] + R[2, 1] * points[i, 1] + R[2, 2] * points[i, 2] + t[2]
        v = idx[i]
        dx = x - vertices[v, 0]
        dy = y - vertices[v, 1]
        dz = z - vertices[v, 2]
        dist = max(abs(residuals[i]), np.sqrt(dx * dx + dy * dy + dz * dz) - reach[v])
        if dist < threshold:
            p_in[n_in, 0] = x
            p_in[n_in, 1] = y
            p_in[n_in, 2] = z
            r_in[n_in] = residuals[i]
            keep[n_in] = v
            n_in += 1
            sum_d2 += dist * dist
    if n_in == 0:
        return 0, 0.0, np.zeros((6, 6))
    n_rows = np.empty((n_in, 3))
    for j in range(n_in):
        for d in range(3):
            n_rows[j, d] = normals[keep[j], d]
    A = information_matrix(p_in[:n_in], n_rows)
    return n_in, sum_d2, A


@njit(cache=True, nogil=True)
def information_matrix(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """``sum J_i^T J_i`` of :func:`registration.reliability.pose_conditioning`, compiled.

    ``J_i = [((p_i - c) x n_i) / L, n_i]``, ``c`` the points' centroid and ``L`` their RMS
    radius (``1`` if zero); ``points`` and ``normals`` (N, 3), N >= 1.
    """
    n = points.shape[0]
    cx = 0.0
    cy = 0.0
    cz = 0.0
    for i in range(n):
        cx += points[i, 0]
        cy += points[i, 1]
        cz += points[i, 2]
    cx /= n
    cy /= n
    cz /= n
    spread = 0.0
    for i in range(n):
        ax = points[i, 0] - cx
        ay = points[i, 1] - cy
        az = points[i, 2] - cz
        spread += ax * ax + ay * ay + az * az
    L = np.sqrt(spread / n)
    if L == 0.0:
        L = 1.0
    A = np.zeros((6, 6))
    J = np.empty(6)
    for i in range(n):
        nx_, ny_, nz_ = normals[i, 0], normals[i, 1], normals[i, 2]
        ax = points[i, 0] - cx
        ay = points[i, 1] - cy
        az = points[i, 2] - cz
        J[0] = (ay * nz_ - az * ny_) / L
        J[1] = (az * nx_ - ax * nz_) / L
        J[2] = (ax * ny_ - ay * nx_) / L
        J[3] = nx_
        J[4] = ny_
        J[5] = nz_
        for a in range(6):
            for b in range(a, 6):
                A[a, b] += J[a] * J[b]
    for a in range(6):
        for b in range(a):
            A[a, b] = A[b, a]
    return A
