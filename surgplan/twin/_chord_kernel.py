"""Compiled (Numba) chord step of the assimilation: residuals, Tukey weights and gradient.

Once the correspondences are kept, each Gauss-Newton iteration of
:func:`surgplan.twin.assimilation.assimilate` moves the residuals exactly with the pose and
linearly with the amplitudes, ``r = r0 + n . (q - q0) + J_a (a - a0)`` with ``q = R p + t``,
re-weights them (Tukey's biweight on ``r / sigma``) and needs the data part of the gradient,
``J^T (w / sigma^2 r)``. This does all of it in one pass over the points, without the (N, 3)
and (N,) temporaries of the NumPy expression; the gradient is summed point by point (a
different rounding order from BLAS, nothing more).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from surgplan.twin.robust import TUKEY_Z


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def chord_residuals(
    points: np.ndarray,
    R: np.ndarray,
    t: np.ndarray,
    q0: np.ndarray,
    normals: np.ndarray,
    r0: np.ndarray,
    J: np.ndarray,
    da: np.ndarray,
    sigma: np.ndarray,
    r_out: np.ndarray,
    w_out: np.ndarray,
    grad_out: np.ndarray,
) -> None:
    """Chord-step residuals ``r_out``, Tukey weights ``w_out`` and ``grad_out = J^T (w r / s^2)``.

    Parameters
    ----------
    points : (N, 3) tracker points, mm; ``R``, ``t`` : the current ``T_model_tracker``
    (3, 3), (3,); ``q0`` : (N, 3) model-space points at the kept linearisation, mm;
    ``normals`` : (N, 3) its normals; ``r0`` : (N,) its residuals, mm; ``J`` : (N, 6 + k) its
    Jacobian; ``da`` : (k,) amplitudes less those of the linearisation; ``sigma`` : (N,) noise
    std, mm. ``grad_out`` (6 + k,) is overwritten.
    """
    d = J.shape[1]
    k = da.shape[0]
    for j in range(d):
        grad_out[j] = 0.0
    inv_c2 = 1.0 / (TUKEY_Z * TUKEY_Z)
    for i in range(points.shape[0]):
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        qx = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
        qy = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
        qz = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]
        r = (
            r0[i]
            + normals[i, 0] * (qx - q0[i, 0])
            + normals[i, 1] * (qy - q0[i, 1])
            + normals[i, 2] * (qz - q0[i, 2])
        )
        for m in range(k):
            r += J[i, 6 + m] * da[m]
        z = r / sigma[i]
        u = min(z * z * inv_c2, 1.0)
        w = (1.0 - u) * (1.0 - u)
        r_out[i] = r
        w_out[i] = w
        c = w * r / (sigma[i] * sigma[i])
        for j in range(d):
            grad_out[j] += J[i, j] * c
