"""Compiled (Numba) Newton iteration of :func:`surgplan.twin.radius.coverage_radius_mm`.

Scalar loops over the quadrature directions, no temporaries; each covariance stops iterating
once its Newton step is below 1e-12 in ``log s`` (three to five steps from the isotropic
guess instead of a fixed eight). Compiled on first use and cached on disk.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_SQRT_2PI = math.sqrt(2.0 * math.pi)


@njit(cache=True, nogil=True)
def coverage_log_s(
    lam: np.ndarray, u2: np.ndarray, probability: float, max_steps: int, out: np.ndarray
) -> None:
    """``out[i] = log s`` with ``E_u[F3(s / q_i(u))] = probability``, ``q_i(u) = u^2 . lam[i]``.

    ``lam`` (M, 3) eigenvalues (largest > 0), ``u2`` (D, 3) squared quadrature directions.
    Newton's method on ``y = log s`` from the isotropic guess with the mean eigenvalue (the
    derivative ``dP/dy = E_u[x f3(x)]``, ``x = s / q``, ``f3`` the chi2_3 density), steps
    clipped to +-2, as the NumPy reference in :mod:`surgplan.twin.radius`.
    """
    n_dir = u2.shape[0]
    for i in range(lam.shape[0]):
        l0, l1, l2 = lam[i, 0], lam[i, 1], lam[i, 2]
        y = math.log(7.814727903251178 * (l0 + l1 + l2) / 3.0)
        for _ in range(max_steps):
            s = math.exp(y)
            p = 0.0
            dp = 0.0
            for j in range(n_dir):
                qq = max(u2[j, 0] * l0 + u2[j, 1] * l1 + u2[j, 2] * l2, 1e-300)
                x = s / qq
                rx = math.sqrt(x)
                e = math.exp(-0.5 * x)
                p += math.erf(rx / math.sqrt(2.0)) - rx * e * math.sqrt(2.0 / math.pi)
                dp += rx * e * x / _SQRT_2PI
            p /= n_dir
            dp /= n_dir
            d = (p - probability) / max(dp, 1e-300)
            d = min(max(d, -2.0), 2.0)
            y -= d
            if abs(d) < 1e-12:
                break
        out[i] = y
