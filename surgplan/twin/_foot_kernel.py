"""Compiled (Numba) projection of points on the triangles around their nearest vertex."""

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
        for s in range(fan_ptr[v0], fan_ptr[v0 + 1]):
            f = fan_faces[s]
            a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
            e0 = vertices[b] - vertices[a]
            e1 = vertices[c] - vertices[a]
            w = q[i] - vertices[a]
            d00 = e0 @ e0
            d01 = e0 @ e1
            d11 = e1 @ e1
            d20 = w @ e0
            d21 = w @ e1
            den = max(d00 * d11 - d01 * d01, 1e-300)
            bb = (d11 * d20 - d01 * d21) / den
            bc = (d00 * d21 - d01 * d20) / den
            ba = 1.0 - bb - bc
            ba, bb, bc = max(ba, 0.0), max(bb, 0.0), max(bc, 0.0)
            tot = max(ba + bb + bc, 1e-300)
            ba, bb, bc = ba / tot, bb / tot, bc / tot
            d = q[i] - (ba * vertices[a] + bb * vertices[b] + bc * vertices[c])
            dist = d @ d
            if dist < best:
                best = dist
                face_out[i] = f
                beta_out[i, 0] = ba
                beta_out[i, 1] = bb
                beta_out[i, 2] = bc
