"""Compiled (Numba) inner loops of the correspondence search and of the foot evaluation.

Scalar loops, no temporaries: projection of points on the triangles around their nearest
vertex, the deformed positions and modes at barycentric feet, and the fused evaluation of the
point-to-plane residuals with their Jacobian rows (:func:`foot_residuals`, one pass over the
points per Gauss-Newton iteration). Single-threaded; compiled on first use and cached on disk.

The sums over the modes (``Phi a``) are reductions: they are compiled with floating-point
reassociation allowed (``fastmath={"reassoc", "contract"}``, no change to NaN/inf handling) so
that they vectorise; the result differs from a sequential sum by rounding only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from registration._icp_kernels import transform_and_correspond

#: Floating-point flags of the mode sums: reassociation (vectorised reductions) and FMA.
_FAST = {"reassoc", "contract"}


#: Columns of a face table row (:func:`face_table`): corner ``a``, edges ``e0 = b - a`` and
#: ``e1 = c - a``, their Gram entries ``e0.e0``, ``e0.e1``, ``e1.e1`` and ``1 / det``.
FACE_TABLE_COLUMNS = 13


@njit(cache=True, nogil=True)
def face_table(faces: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Per-triangle constants of :func:`project_on_fans`, (F, 13) (:data:`FACE_TABLE_COLUMNS`).

    The projection on a triangle's plane needs its corner, edges and the inverse determinant
    of their Gram matrix; they depend on the undeformed triangle only, so they are computed
    once instead of for every point and triangle (a division per pair saved).
    """
    out = np.empty((faces.shape[0], FACE_TABLE_COLUMNS))
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        for d in range(3):
            out[f, d] = vertices[a, d]
            out[f, 3 + d] = vertices[b, d] - vertices[a, d]
            out[f, 6 + d] = vertices[c, d] - vertices[a, d]
        e0x, e0y, e0z = out[f, 3], out[f, 4], out[f, 5]
        e1x, e1y, e1z = out[f, 6], out[f, 7], out[f, 8]
        d00 = e0x * e0x + e0y * e0y + e0z * e0z
        d01 = e0x * e1x + e0y * e1y + e0z * e1z
        d11 = e1x * e1x + e1y * e1y + e1z * e1z
        out[f, 9], out[f, 10], out[f, 11] = d00, d01, d11
        out[f, 12] = 1.0 / max(d00 * d11 - d01 * d01, 1e-300)
    return out


@njit(cache=True, nogil=True)
def project_on_fans(
    q: np.ndarray,
    vertex: np.ndarray,
    fan_ptr: np.ndarray,
    fan_faces: np.ndarray,
    table: np.ndarray,
    face_out: np.ndarray,
    beta_out: np.ndarray,
) -> None:
    """Nearest point to ``q[i]`` on the triangles around ``vertex[i]`` (clamped barycentrics).

    Barycentric coordinates of the projection on each triangle's plane (Ericson 2005,
    "Real-Time Collision Detection" 3.4), from the triangle's constants in ``table``
    (:func:`face_table`), clamped to the triangle and renormalised; the triangle whose
    clamped point is nearest wins. Writes its index and coordinates.
    """
    for i in range(q.shape[0]):
        best = np.inf
        v0 = vertex[i]
        qx, qy, qz = q[i, 0], q[i, 1], q[i, 2]
        for s in range(fan_ptr[v0], fan_ptr[v0 + 1]):
            f = fan_faces[s]
            t = table[f]
            wx, wy, wz = qx - t[0], qy - t[1], qz - t[2]
            e0x, e0y, e0z, e1x, e1y, e1z = t[3], t[4], t[5], t[6], t[7], t[8]
            d20 = wx * e0x + wy * e0y + wz * e0z
            d21 = wx * e1x + wy * e1y + wz * e1z
            bb = (t[11] * d20 - t[10] * d21) * t[12]
            bc = (t[9] * d21 - t[10] * d20) * t[12]
            ba = 1.0 - bb - bc
            if ba < 0.0 or bb < 0.0 or bc < 0.0:  # outside: clamp and renormalise
                ba, bb, bc = max(ba, 0.0), max(bb, 0.0), max(bc, 0.0)
                inv = 1.0 / max(ba + bb + bc, 1e-300)
                bb, bc = bb * inv, bc * inv
                ba = 1.0 - bb - bc
            dx = wx - bb * e0x - bc * e1x
            dy = wy - bb * e0y - bc * e1y
            dz = wz - bb * e0z - bc * e1z
            dist = dx * dx + dy * dy + dz * dz
            if dist < best:
                best = dist
                face_out[i] = f
                beta_out[i, 0] = ba
                beta_out[i, 1] = bb
                beta_out[i, 2] = bc


@njit(cache=True, nogil=True, fastmath=_FAST)
def corner_displacements(
    faces: np.ndarray, face: np.ndarray, modes_v: np.ndarray, a: np.ndarray, out: np.ndarray
) -> None:
    """``out[i, c] = Phi_{faces[face[i], c]} a``: (N, 3 corners, 3) displacements, mm."""
    k = a.shape[0]
    for i in range(face.shape[0]):
        for c in range(3):
            v = faces[face[i], c]
            for d in range(3):
                s = 0.0
                for m in range(k):
                    s += modes_v[v, d, m] * a[m]
                out[i, c, d] = s


@njit(cache=True, nogil=True, fastmath=_FAST)
def foot_modes(
    faces: np.ndarray, face: np.ndarray, beta: np.ndarray, modes_v: np.ndarray, out: np.ndarray
) -> None:
    """``out[i] = sum_c beta[i, c] Phi_{faces[face[i], c]}``: (N, 3, k) modes at the feet."""
    k = modes_v.shape[2]
    for i in range(face.shape[0]):
        v0, v1, v2 = faces[face[i], 0], faces[face[i], 1], faces[face[i], 2]
        b0, b1, b2 = beta[i, 0], beta[i, 1], beta[i, 2]
        for d in range(3):
            for m in range(k):
                out[i, d, m] = (
                    b0 * modes_v[v0, d, m] + b1 * modes_v[v1, d, m] + (b2 * modes_v[v2, d, m])
                )


@njit(cache=True, nogil=True)
def foot_points(
    faces: np.ndarray, face: np.ndarray, beta: np.ndarray, vertices: np.ndarray, out: np.ndarray
) -> None:
    """``out[i] = sum_c beta[i, c] v_{faces[face[i], c]}``: (N, 3) feet on the rest surface."""
    for i in range(face.shape[0]):
        v0, v1, v2 = faces[face[i], 0], faces[face[i], 1], faces[face[i], 2]
        b0, b1, b2 = beta[i, 0], beta[i, 1], beta[i, 2]
        for d in range(3):
            out[i, d] = b0 * vertices[v0, d] + b1 * vertices[v1, d] + b2 * vertices[v2, d]


@njit(cache=True, nogil=True, fastmath=_FAST)
def foot_normal_modes(
    faces: np.ndarray,
    face: np.ndarray,
    beta: np.ndarray,
    normals: np.ndarray,
    modes_v: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[i] = n_i^T sum_c beta[i, c] Phi_{faces[face[i], c]}``: (N, k) normal modes."""
    k = modes_v.shape[2]
    for i in range(face.shape[0]):
        v0, v1, v2 = faces[face[i], 0], faces[face[i], 1], faces[face[i], 2]
        b0, b1, b2 = beta[i, 0], beta[i, 1], beta[i, 2]
        for m in range(k):
            acc = 0.0
            for d in range(3):
                acc += normals[i, d] * (
                    b0 * modes_v[v0, d, m] + b1 * modes_v[v1, d, m] + b2 * modes_v[v2, d, m]
                )
            out[i, m] = acc


@njit(cache=True, nogil=True, fastmath=_FAST)
def foot_displacement(
    faces: np.ndarray,
    face: np.ndarray,
    beta: np.ndarray,
    modes_v: np.ndarray,
    a: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[i] = sum_c beta[i, c] Phi_{faces[face[i], c]} a``: (N, 3) displacements, mm."""
    k = a.shape[0]
    for i in range(face.shape[0]):
        v0, v1, v2 = faces[face[i], 0], faces[face[i], 1], faces[face[i], 2]
        b0, b1, b2 = beta[i, 0], beta[i, 1], beta[i, 2]
        for d in range(3):
            s = 0.0
            for m in range(k):
                s += (b0 * modes_v[v0, d, m] + b1 * modes_v[v1, d, m] + b2 * modes_v[v2, d, m]) * a[
                    m
                ]
            out[i, d] = s


@njit(cache=True, nogil=True, fastmath=_FAST)
def foot_residuals(
    q: np.ndarray,
    faces: np.ndarray,
    vertices: np.ndarray,
    vertex_normals: np.ndarray,
    modes_v: np.ndarray,
    face: np.ndarray,
    beta: np.ndarray,
    vertex: np.ndarray,
    a: np.ndarray,
    S: np.ndarray,
    centre: np.ndarray,
    x_out: np.ndarray,
    n_out: np.ndarray,
    r_out: np.ndarray,
    sigma_out: np.ndarray,
    J_out: np.ndarray,
    jacobian: bool,
) -> None:
    """Residuals of model-space points ``q`` at their feet on the deformed surface, one pass.

    Per point: the deformed corners ``v_b + Phi_b a`` of the foot's triangle, the foot
    ``x = sum_b beta_b (v_b + Phi_b a)``, the deformed triangle's unit normal ``n`` (turned to
    agree with the undeformed normal of the nearest vertex), the residual ``r = n . (q - x)``
    and its noise std ``sqrt(n^T S n)``; with ``jacobian``, the residual's Jacobian row
    ``[(q - c) x n, n, -n^T sum_b beta_b Phi_b]`` into ``J_out`` (N, 6 + k). (As
    :meth:`surgplan.twin.surface.TwinSurface.at` followed by the assimilation's rows.)
    """
    k = a.shape[0]
    c = np.empty((3, 3))  # the deformed corners of the current triangle
    for i in range(q.shape[0]):
        f = face[i]
        vv = (faces[f, 0], faces[f, 1], faces[f, 2])
        for b in range(3):
            v = vv[b]
            for d in range(3):
                s = 0.0
                for m in range(k):
                    s += modes_v[v, d, m] * a[m]
                c[b, d] = vertices[v, d] + s
        b0, b1, b2 = beta[i, 0], beta[i, 1], beta[i, 2]
        x0 = b0 * c[0, 0] + b1 * c[1, 0] + b2 * c[2, 0]
        x1 = b0 * c[0, 1] + b1 * c[1, 1] + b2 * c[2, 1]
        x2 = b0 * c[0, 2] + b1 * c[1, 2] + b2 * c[2, 2]
        e0x, e0y, e0z = c[1, 0] - c[0, 0], c[1, 1] - c[0, 1], c[1, 2] - c[0, 2]
        e1x, e1y, e1z = c[2, 0] - c[0, 0], c[2, 1] - c[0, 1], c[2, 2] - c[0, 2]
        nx = e0y * e1z - e0z * e1y
        ny = e0z * e1x - e0x * e1z
        nz = e0x * e1y - e0y * e1x
        nn = max(math.sqrt(nx * nx + ny * ny + nz * nz), 1e-300)
        nx, ny, nz = nx / nn, ny / nn, nz / nn
        u = vertex[i]
        if nx * vertex_normals[u, 0] + ny * vertex_normals[u, 1] + nz * vertex_normals[u, 2] < 0:
            nx, ny, nz = -nx, -ny, -nz
        x_out[i, 0], x_out[i, 1], x_out[i, 2] = x0, x1, x2
        n_out[i, 0], n_out[i, 1], n_out[i, 2] = nx, ny, nz
        qx, qy, qz = q[i, 0], q[i, 1], q[i, 2]
        r_out[i] = nx * (qx - x0) + ny * (qy - x1) + nz * (qz - x2)
        sn0 = S[0, 0] * nx + S[0, 1] * ny + S[0, 2] * nz
        sn1 = S[1, 0] * nx + S[1, 1] * ny + S[1, 2] * nz
        sn2 = S[2, 0] * nx + S[2, 1] * ny + S[2, 2] * nz
        sigma_out[i] = math.sqrt(max(nx * sn0 + ny * sn1 + nz * sn2, 0.0))
        if not jacobian:
            continue
        dx, dy, dz = qx - centre[0], qy - centre[1], qz - centre[2]
        J_out[i, 0] = dy * nz - dz * ny
        J_out[i, 1] = dz * nx - dx * nz
        J_out[i, 2] = dx * ny - dy * nx
        J_out[i, 3], J_out[i, 4], J_out[i, 5] = nx, ny, nz
        w00, w01, w02 = b0 * nx, b0 * ny, b0 * nz
        w10, w11, w12 = b1 * nx, b1 * ny, b1 * nz
        w20, w21, w22 = b2 * nx, b2 * ny, b2 * nz
        p0, p1, p2 = vv[0], vv[1], vv[2]
        for m in range(k):
            J_out[i, 6 + m] = -(
                w00 * modes_v[p0, 0, m]
                + w01 * modes_v[p0, 1, m]
                + w02 * modes_v[p0, 2, m]
                + w10 * modes_v[p1, 0, m]
                + w11 * modes_v[p1, 1, m]
                + w12 * modes_v[p1, 2, m]
                + w20 * modes_v[p2, 0, m]
                + w21 * modes_v[p2, 1, m]
                + w22 * modes_v[p2, 2, m]
            )


@njit(cache=True, nogil=True, fastmath=_FAST)
def pull_back_passes(
    q: np.ndarray,
    a: np.ndarray,
    passes: int,
    faces: np.ndarray,
    vertices: np.ndarray,
    modes_v: np.ndarray,
    fan_ptr: np.ndarray,
    fan_faces: np.ndarray,
    table: np.ndarray,
    grid_origin: np.ndarray,
    inv_voxel: float,
    grid: np.ndarray,
    pairs: np.ndarray,
    grid_shape: np.ndarray,
    nb_ptr: np.ndarray,
    nb_idx: np.ndarray,
    nb_xyz: np.ndarray,
    face: np.ndarray,
    beta: np.ndarray,
    vertex: np.ndarray,
    missed: np.ndarray,
) -> int:
    """Up to ``passes`` pull-back passes per point, from its current foot, in place.

    A pass pulls ``q[i]`` back by the displacement at its foot (``q' = q - Phi_foot a``),
    finds the nearest undeformed vertex of ``q'`` (the registration model's voxel grid and
    graph descent, :func:`registration._icp_kernels.transform_and_correspond`) and projects
    ``q'`` on the triangles around it (:func:`project_on_fans`). A point stops once a pass
    keeps its triangle (the next would find the same foot). A point whose ``q'`` falls
    outside the grid's band is left at its last foot with ``missed[i] = True`` (the caller
    searches it in the KD-tree). Returns the number missed.
    """
    eye = np.eye(3)
    zero = np.zeros(3)
    n = q.shape[0]
    active = np.arange(n)
    n_act = n
    missed[:] = False
    n_missed = 0
    for _ in range(passes):
        if n_act == 0:
            break
        # The active points packed into arrays of their own (C-contiguous: slices would not
        # vectorise).
        fa = np.empty(n_act, dtype=np.int64)
        ba = np.empty((n_act, 3))
        for j in range(n_act):
            i = active[j]
            fa[j] = face[i]
            ba[j, 0], ba[j, 1], ba[j, 2] = beta[i, 0], beta[i, 1], beta[i, 2]
        u = np.empty((n_act, 3))
        foot_displacement(faces, fa, ba, modes_v, a, u)
        pulled = np.empty((n_act, 3))
        for j in range(n_act):
            i = active[j]
            for d in range(3):
                pulled[j, d] = q[i, d] - u[j, d]
        p_out = np.empty((n_act, 3))
        v_out = np.empty(n_act, dtype=np.int64)
        transform_and_correspond(
            pulled, eye, zero, grid_origin, inv_voxel, grid, pairs, grid_shape, vertices,
            nb_ptr, nb_idx, nb_xyz, p_out, v_out, True,
        )  # fmt: skip
        for j in range(n_act):  # a miss: left at its foot (a harmless vertex to project on)
            if v_out[j] < 0:
                v_out[j] = vertex[active[j]]
                missed[active[j]] = True
                n_missed += 1
        f_out = np.empty(n_act, dtype=np.int64)
        b_out = np.empty((n_act, 3))
        project_on_fans(pulled, v_out, fan_ptr, fan_faces, table, f_out, b_out)
        keep = 0
        for j in range(n_act):
            i = active[j]
            if missed[i]:
                continue
            same = f_out[j] == face[i]
            face[i] = f_out[j]
            beta[i, 0], beta[i, 1], beta[i, 2] = b_out[j, 0], b_out[j, 1], b_out[j, 2]
            vertex[i] = v_out[j]
            if not same:
                active[keep] = i
                keep += 1
        n_act = keep
    return n_missed
