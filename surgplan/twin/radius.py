"""The 95 % error radius of a 3-D Gaussian: an exact generalised chi-square quantile.

For an error ``e ~ N(0, S)`` with eigenvalues ``l1 >= l2 >= l3 >= 0`` of ``S``,
``|e|^2 = l1 z1^2 + l2 z2^2 + l3 z3^2`` (``z_i`` standard normal) follows a generalised
chi-square distribution. Writing ``(z2, z3) = R (cos phi, sin phi)`` (``R^2`` exponential with
mean 2, ``phi`` uniform on ``[0, 2 pi)``) and integrating ``R`` and then ``z1`` in closed form
leaves one integral over ``phi``: with ``x = s / l1`` and
``a(phi) = (l2 cos^2 phi + l3 sin^2 phi) / l1`` in ``[0, 1]``,

    P(|e|^2 <= s) = erf(sqrt(x / 2)) - sqrt(2 x / pi) exp(-x / 2) E_phi[ D(m(phi)) ],
    m(phi) = x (1 - a) / (2 a),    D(m) = F(sqrt m) / sqrt m,

where ``F`` is Dawson's integral. ``D(0) = 1`` (isotropic: the formula is the chi-square CDF
with 3 degrees of freedom) and ``D(inf) = 0`` (rank one: ``erf``), so those two cases are
exact to rounding. The derivative in ``log s`` follows from ``F' = 1 - 2 y F`` with no further
special function. The integrand is a smooth ``pi``-periodic function of ``phi``, even about
0 and ``pi / 2``, so the midpoint rule on ``[0, pi / 2]`` converges geometrically:
:data:`N_PHI` = 16 nodes give a radius within 3e-11 (relative) of the exact quantile at 95 %
over all eigenvalue ratios (worst near ``l1 = l2``, ``l3 = 0``, where ``a`` reaches 0). Lower
probabilities (smaller ``x``) sharpen the integrand there, so they get more nodes (32 below
80 %, 256 below 5 %, up to 16384 below 5e-5), keeping the error below 2e-9 for probabilities
from 5e-5 to 1 - 1e-12 (3e-8 at 1e-6, growing below).
``D`` is a piecewise Chebyshev fit (relative error < 5e-15) evaluated in a compiled loop,
:mod:`surgplan.twin._radius_kernel`, which also finds the eigenvalues (cyclic Jacobi) and the
radius: Newton's method on ``log x`` (on ``log(1 - P)`` at probabilities >= 0.5, on ``log P``
below) from a moment-matched scaled chi-square (Welch-Satterthwaite with the Wilson-Hilferty
quantile, within ~3 % at 95 %), three evaluations of ``P`` at 95 %. The isotropic case gives
``sqrt(chi2_3^-1(0.95)) sigma = 2.7955 sigma``; a rank-one covariance gives ``1.95996 sigma``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from surgplan.twin._radius_kernel import CHEB_TABLE, coverage_radius

__all__ = ["radius95_mm", "coverage_radius_mm", "ISOTROPIC_RADIUS95"]

#: ``sqrt(chi2_3^-1(0.95))``: the 95 % radius of an isotropic 3-D Gaussian in units of sigma.
ISOTROPIC_RADIUS95 = 2.7954834829151074
#: Midpoint nodes in ``phi`` on ``[0, pi / 2]`` at ``probability >= 0.8`` (more below: the
#: integrand sharpens near ``a = 0`` as ``x`` shrinks; see ``_N_PHI_BY_PROBABILITY``).
N_PHI = 16
#: Most Newton steps (three at the default probability; about ten at 1e-6).
_NEWTON = 20
#: Newton stops after a step below this in ``log x``; the error left is of order its square.
_NEWTON_TOL = 1e-7

#: ``(lowest probability, nodes)``: the first row whose probability is met is used (each
#: keeps the radius error below 2e-9 over all eigenvalue ratios down to 5e-5; 3e-8 at 1e-6).
_N_PHI_BY_PROBABILITY = (
    (0.8, N_PHI),
    (0.5, 32),
    (0.2, 64),
    (0.05, 128),
    (0.005, 256),
    (5e-4, 1024),
    (5e-5, 4096),
    (0.0, 16384),
)


@lru_cache(maxsize=8)
def _cos2_nodes(n: int) -> NDArray[np.float64]:
    """``cos^2`` of the ``n`` midpoint nodes ``(j + 1/2) pi / 2n`` on ``[0, pi / 2]``."""
    c2 = np.cos((np.arange(n) + 0.5) * (0.5 * math.pi / n)) ** 2
    c2.flags.writeable = False
    return c2


@lru_cache(maxsize=32)
def _phi_nodes(probability: float) -> tuple[NDArray[np.float64], float]:
    """Quadrature nodes (``cos^2 phi_j``) and the normal quantile for ``probability``."""
    n = next(n for p_min, n in _N_PHI_BY_PROBABILITY if probability >= p_min)
    return _cos2_nodes(n), NormalDist().inv_cdf(probability)


def coverage_radius_mm(covariances_mm2: ArrayLike, probability: float = 0.95) -> NDArray:
    """Radius (mm) of the origin-centred sphere holding ``probability`` of ``N(0, S)``.

    Parameters
    ----------
    covariances_mm2 : array_like, shape (..., 3, 3)
        Symmetric positive semi-definite covariances, mm^2 (the lower triangle is read, as
        :func:`numpy.linalg.eigvalsh` does; negative eigenvalues from rounding count as 0).
    probability : float
        Coverage in (0, 1).

    Returns
    -------
    numpy.ndarray, shape (...)
        Radii, mm (0 for a zero covariance).

    Raises
    ------
    ValueError
        If the shape is not ``(..., 3, 3)``, ``probability`` is outside (0, 1), or a
        covariance holds NaN or infinity.
    """
    S = np.asarray(covariances_mm2, dtype=np.float64)
    if S.shape[-2:] != (3, 3):
        raise ValueError(f"covariances must have shape (..., 3, 3), got {S.shape}")
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    p = float(probability)
    cov = S.reshape(-1, 3, 3)
    out = np.empty(cov.shape[0])
    cos2, z = _phi_nodes(p)
    if coverage_radius(cov, cos2, CHEB_TABLE, p, z, _NEWTON, _NEWTON_TOL, out):
        raise ValueError("covariances must be finite")
    return out.reshape(S.shape[:-2])


def radius95_mm(covariance_mm2: ArrayLike) -> float:
    """95 % radius (mm) of one 3x3 error covariance (mm^2); see :func:`coverage_radius_mm`."""
    return float(coverage_radius_mm(covariance_mm2))
