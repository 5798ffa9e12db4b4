"""Compiled (Numba) inner loops of the correspondence search and of the foot evaluation.

Scalar loops, no temporaries: projection of points on the triangles around their nearest
vertex, and the deformed positions and modes at barycentric feet.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def project_on_fans(
    q: np.ndarray,
    vertex: np.ndarray,
    fan_ptr: np.ndarray,
    fan_faces: np.ndarray,
    faces: np.ndarray,
    vertices: np.ndarray,
    face_out: np.ndarray,
    beta_out: np.ndarray,
) -> None:
    """Nearest point to ``q[i]`` on the triangles around ``vertex[i]`` (clamped barycentrics).

    Barycentric coordinates of the projection on each triangle's plane (Ericson 2005,
    "Real-Time Collision Detection" 3.4), clamped to the triangle and renormalised; the
    triangle whose clamped point is nearest wins. Writes its index and coordinates.
    """
    for i in range(q.shape[0]):
        best = np.inf
        v0 = vertex[i]
        qx, qy, qz = q[i, 0], q[i, 1], q[i, 2]
        for s in range(fan_ptr[v0], fan_ptr[v0 + 1]):
            f = fan_faces[s]
            a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
            ax, ay, az = vertices[a, 0], vertices[a, 1], vertices[a, 2]
            e0x, e0y, e0z = vertices[b, 0] - ax, vertices[b, 1] - ay, vertices[b, 2] - az
            e1x, e1y, e1z = vertices[c, 0] - ax, vertices[c, 1] - ay, vertices[c, 2] - az
            wx, wy, wz = qx - ax, qy - ay, qz - az
            d00 = e0x * e0x + e0y * e0y + e0z * e0z
            d01 = e0x * e1x + e0y * e1y + e0z * e1z
            d11 = e1x * e1x + e1y * e1y + e1z * e1z
            d20 = wx * e0x + wy * e0y + wz * e0z
            d21 = wx * e1x + wy * e1y + wz * e1z
            den = max(d00 * d11 - d01 * d01, 1e-300)
            bb = (d11 * d20 - d01 * d21) / den
            bc = (d00 * d21 - d01 * d20) / den
            ba = max(1.0 - bb - bc, 0.0)
            bb, bc = max(bb, 0.0), max(bc, 0.0)
            tot = max(ba + bb + bc, 1e-300)
            bb, bc = bb / tot, bc / tot
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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
