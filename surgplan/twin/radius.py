"""The 95 % error radius of a 3-D Gaussian: an exact generalised chi-square quantile.

For an error ``e ~ N(0, S)`` with eigenvalues ``l1, l2, l3`` of ``S``, ``|e|^2 = sum l_i z_i^2``
(``z_i`` standard normal) follows a generalised chi-square distribution. Writing ``z = rho u``
with ``rho^2 ~ chi2_3`` independent of the unit direction ``u`` (uniform on the sphere),

    P(|e|^2 <= s) = E_u[ F3(s / q(u)) ],    q(u) = u^T diag(l) u,

where ``F3(x) = erf(sqrt(x / 2)) - sqrt(2 x / pi) exp(-x / 2)`` is the chi-square CDF with 3
degrees of freedom. The integrand is smooth on the sphere, so a fixed Fibonacci-lattice
quadrature (:data:`N_DIRECTIONS` directions on one hemisphere; ``q`` is even) is accurate to
better than 1e-4 in probability; the radius is then found by Newton's method on ``log s``,
over any number of covariances (a compiled loop, :mod:`surgplan.twin._radius_kernel`,
stopping each one at a step below 1e-12). The isotropic case gives
``sqrt(chi2_3^-1(0.95)) sigma = 2.7955 sigma`` exactly; a rank-one covariance gives
``1.95996 sigma``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from surgplan.twin._radius_kernel import coverage_log_s

__all__ = ["radius95_mm", "coverage_radius_mm", "ISOTROPIC_RADIUS95"]

#: ``sqrt(chi2_3^-1(0.95))``: the 95 % radius of an isotropic 3-D Gaussian in units of sigma.
ISOTROPIC_RADIUS95 = 2.7954834829151074
#: Quadrature directions on the hemisphere.
N_DIRECTIONS = 512
#: Most Newton steps on ``log s`` (quadratic convergence: 1e-12 after about 6 from the guess).
_NEWTON = 8


def _hemisphere(n: int) -> NDArray[np.float64]:
    """Fibonacci lattice of ``n`` unit vectors on the upper hemisphere (equal areas)."""
    i = np.arange(n) + 0.5
    z = i / n  # uniform in z: equal-area bands (Archimedes)
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


_U2 = _hemisphere(N_DIRECTIONS) ** 2


def coverage_radius_mm(covariances_mm2: ArrayLike, probability: float = 0.95) -> NDArray:
    """Radius (mm) of the origin-centred sphere holding ``probability`` of ``N(0, S)``.

    Parameters
    ----------
    covariances_mm2 : array_like, shape (..., 3, 3)
        Symmetric positive semi-definite covariances, mm^2.
    probability : float
        Coverage in (0, 1).

    Returns
    -------
    numpy.ndarray, shape (...)
        Radii, mm (0 for a zero covariance).
    """
    S = np.asarray(covariances_mm2, dtype=np.float64)
    if S.shape[-2:] != (3, 3):
        raise ValueError(f"covariances must have shape (..., 3, 3), got {S.shape}")
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    lam = np.clip(np.linalg.eigvalsh(S.reshape(-1, 3, 3)), 0.0, None)  # (M, 3)
    out = np.zeros(len(lam))
    ok = lam.max(axis=1) > 0
    y = np.empty(int(ok.sum()))
    coverage_log_s(np.ascontiguousarray(lam[ok]), _U2, float(probability), _NEWTON, y)
    out[ok] = np.sqrt(np.exp(y))
    return out.reshape(S.shape[:-2])


def radius95_mm(covariance_mm2: ArrayLike) -> float:
    """95 % radius (mm) of one 3x3 error covariance (mm^2); see :func:`coverage_radius_mm`."""
    return float(coverage_radius_mm(covariance_mm2))
