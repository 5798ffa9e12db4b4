"""Compiled (Numba) fit statistics of a registered point set, in one pass over the points.

For the reliability verdict of a real-time update: the inliers, their RMS distance and the 6x6
point-to-plane information matrix of :func:`registration.reliability.pose_conditioning`,
without the temporaries of the array version.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def closest_point_on_triangle(
    p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[float, float, float]:
    """Closest point to ``p`` on triangle ``abc``.

    Tests the Voronoi regions of the vertices, then the edges, then the face (the method of
    Ericson, *Real-Time Collision Detection*, section 5.1.5).
    """
    ab0, ab1, ab2 = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    ac0, ac1, ac2 = c[0] - a[0], c[1] - a[1], c[2] - a[2]
    ap0, ap1, ap2 = p[0] - a[0], p[1] - a[1], p[2] - a[2]
    d1 = ab0 * ap0 + ab1 * ap1 + ab2 * ap2
    d2 = ac0 * ap0 + ac1 * ap1 + ac2 * ap2
    if d1 <= 0.0 and d2 <= 0.0:
        return a[0], a[1], a[2]
    bp0, bp1, bp2 = p[0] - b[0], p[1] - b[1], p[2] - b[2]
    d3 = ab0 * bp0 + ab1 * bp1 + ab2 * bp2
    d4 = ac0 * bp0 + ac1 * bp1 + ac2 * bp2
    if d3 >= 0.0 and d4 <= d3:
        return b[0], b[1], b[2]
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        s = d1 / (d1 - d3)
        return a[0] + s * ab0, a[1] + s * ab1, a[2] + s * ab2
    cp0, cp1, cp2 = p[0] - c[0], p[1] - c[1], p[2] - c[2]
    d5 = ab0 * cp0 + ab1 * cp1 + ab2 * cp2
    d6 = ac0 * cp0 + ac1 * cp1 + ac2 * cp2
    if d6 >= 0.0 and d5 <= d6:
        return c[0], c[1], c[2]
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        s = d2 / (d2 - d6)
        return a[0] + s * ac0, a[1] + s * ac1, a[2] + s * ac2
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        s = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        return b[0] + s * (c[0] - b[0]), b[1] + s * (c[1] - b[1]), b[2] + s * (c[2] - b[2])
    denom = 1.0 / (va + vb + vc)
    v = vb * denom
    w = vc * denom
    return a[0] + ab0 * v + ac0 * w, a[1] + ab1 * v + ac1 * w, a[2] + ab2 * v + ac2 * w


@njit(cache=True, nogil=True)
def fan_distance(
    p: np.ndarray,
    v: int,
    vertices: np.ndarray,
    faces: np.ndarray,
    fan_ptr: np.ndarray,
    fan_faces: np.ndarray,
) -> float:
    """Distance (mm) from ``p`` to the nearest of the triangles around vertex ``v``."""
    best = np.inf
    for k in range(fan_ptr[v], fan_ptr[v + 1]):
        f = fan_faces[k]
        q0, q1, q2 = closest_point_on_triangle(
            p, vertices[faces[f, 0]], vertices[faces[f, 1]], vertices[faces[f, 2]]
        )
        d = (p[0] - q0) ** 2 + (p[1] - q1) ** 2 + (p[2] - q2) ** 2
        best = min(best, d)
    return np.sqrt(best)


@njit(cache=True, nogil=True)
def inlier_statistics(
    points: np.ndarray,
    R: np.ndarray,
    t: np.ndarray,
    residuals: np.ndarray,
    idx: np.ndarray,
    vertices: np.ndarray,
    normals: np.ndarray,
    faces: np.ndarray,
    fan_ptr: np.ndarray,
    fan_faces: np.ndarray,
    threshold: float,
    p_in: np.ndarray,
    r_in: np.ndarray,
) -> tuple[int, float, np.ndarray]:
    """Inliers of the points moved by ``(R, t)`` and their information matrix.

    A point's distance to the surface is its distance to the nearest triangle around its
    nearest vertex ``idx`` (exact wherever that fan holds the nearest surface point, which
    :func:`registration.model.prepare_surface`'s bound on edge lengths makes the rule); it is
    an inlier below ``threshold``.

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
    cx = 0.0
    cy = 0.0
    cz = 0.0
    keep = np.empty(points.shape[0], dtype=np.int64)
    q = np.empty(3)
    for i in range(points.shape[0]):
        x = R[0, 0] * points[i, 0] + R[0, 1] * points[i, 1] + R[0, 2] * points[i, 2] + t[0]
        y = R[1, 0] * points[i, 0] + R[1, 1] * points[i, 1] + R[1, 2] * points[i, 2] + t[1]
        z = R[2, 0] * points[i, 0] + R[2, 1] * points[i, 1] + R[2, 2] * points[i, 2] + t[2]
        v = idx[i]
        q[0] = x
        q[1] = y
        q[2] = z
        dist = fan_distance(q, v, vertices, faces, fan_ptr, fan_faces)
        if dist < threshold:
            p_in[n_in, 0] = x
            p_in[n_in, 1] = y
            p_in[n_in, 2] = z
            r_in[n_in] = residuals[i]
            keep[n_in] = v
            n_in += 1
            sum_d2 += dist * dist
            cx += x
            cy += y
            cz += z
    A = np.zeros((6, 6))
    if n_in == 0:
        return 0, 0.0, A
    cx /= n_in
    cy /= n_in
    cz /= n_in
    spread = 0.0
    for j in range(n_in):
        ax = p_in[j, 0] - cx
        ay = p_in[j, 1] - cy
        az = p_in[j, 2] - cz
        spread += ax * ax + ay * ay + az * az
    L = np.sqrt(spread / n_in)
    if L == 0.0:
        L = 1.0
    J = np.empty(6)
    for j in range(n_in):
        v = keep[j]
        nx_, ny_, nz_ = normals[v, 0], normals[v, 1], normals[v, 2]
        ax = p_in[j, 0] - cx
        ay = p_in[j, 1] - cy
        az = p_in[j, 2] - cz
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
    return n_in, sum_d2, A
