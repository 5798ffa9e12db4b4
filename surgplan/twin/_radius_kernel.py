"""Compiled (Numba) quantile solver of :func:`surgplan.twin.radius.coverage_radius_mm`.

One scalar loop per covariance, no temporaries beyond one small work array per call: the
eigenvalues by cyclic Jacobi (:func:`sym3_eigenvalues`), then the coverage ``P(x)`` and its
derivative as averages of Dawson-integral ratios (:func:`dawson_ratio`) over the midpoint
nodes in ``phi`` (see :mod:`surgplan.twin.radius` for the formula), and Newton's method on
``log x`` from a moment-matched scaled chi-square. Dawson's integral is a piecewise
Chebyshev table (:data:`CHEB_TABLE`) built at import from Rybicki's series
(:func:`dawson_ratio_reference`). Compiled on first use and cached on disk; ``nogil`` so
callers may run it from threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)

# Rybicki's sampling-theorem series for Dawson's integral (Numerical Recipes ``dawson``):
# spacing ``h`` gives a relative error ~exp(-(pi / 2h)^2) < 1e-16, and 14 pairs of terms
# truncate it below 1e-16 (``|n' h| >= 6.75``). Accurate but slow (~100 ns): used only to
# build the Chebyshev table below (and checked against SciPy in the tests).
_RYB_H = 0.25
_RYB_N = 14
_RYB_C = np.exp(-(((2.0 * np.arange(1, _RYB_N + 1) - 1.0) * _RYB_H) ** 2))
#: Piecewise Chebyshev interpolants of ``F(y) / y`` on ``[0, 10)``: 20 intervals of width
#: 0.5, degree 12 (relative error below 5e-15); the asymptotic series above.
_CHEB_WIDTH = 0.5
_CHEB_PIECES = 20
_CHEB_DEGREE = 12
_Y_ASYMPTOTIC = _CHEB_WIDTH * _CHEB_PIECES


@njit(cache=True, nogil=True)
def _taylor(m: float) -> tuple[float, float]:
    """``F(y) / y = sum_n (-2m)^n / (2n + 1)!!`` for ``m < 0.04`` (9th term < 6e-17)."""
    u = -2.0 * m
    d = 1.0 + u / 3.0 * (1.0 + u / 5.0 * (1.0 + u / 7.0 * (1.0 + u / 9.0 * (
        1.0 + u / 11.0 * (1.0 + u / 13.0 * (1.0 + u / 15.0 * (1.0 + u / 17.0)))))))  # fmt: skip
    return d, m * d


@njit(cache=True, nogil=True)
def _asymptotic(m: float) -> tuple[float, float]:
    """``(F(y) / y, y F(y))`` from ``F(y) = (1 / 2y) sum_n (2n - 1)!! / (2y^2)^n``, ``m >= 100``.

    Twelve terms: the truncation error is below 1e-16 for ``y >= 10``; ``m = inf`` gives
    ``(0, 1/2)``.
    """
    t = 0.5 / m
    s = 1.0
    for n in range(12, 0, -1):  # Horner on (2n - 1)!! t^n
        s = 1.0 + (2.0 * n - 1.0) * t * s
    return t * s, 0.5 * s


@njit(cache=True, nogil=True)
def dawson_ratio_reference(m: float) -> tuple[float, float]:
    """``(F(y) / y, y F(y))`` for ``y = sqrt(m)``, ``m >= 0`` (``inf`` allowed), ``F`` Dawson's.

    ``F(y) = exp(-y^2) int_0^y exp(t^2) dt``. Taylor series below ``m = 0.04``, the
    asymptotic series above ``m = 100``, Rybicki's series between: relative error below
    ~2e-15 throughout. See :func:`dawson_ratio` for the fast version.
    """
    if m < 0.04:
        return _taylor(m)
    if m >= _Y_ASYMPTOTIC * _Y_ASYMPTOTIC:
        return _asymptotic(m)
    y = math.sqrt(m)
    n0 = 2 * int(0.5 * y / _RYB_H + 0.5)
    xp = y - n0 * _RYB_H
    e1 = math.exp(2.0 * xp * _RYB_H)
    e2 = e1 * e1
    d1 = n0 + 1.0
    d2 = d1 - 2.0  # odd, never 0
    s = 0.0
    for i in range(_RYB_N):
        s += _RYB_C[i] * (e1 / d1 + 1.0 / (d2 * e1))
        d1 += 2.0
        d2 -= 2.0
        e1 *= e2
    f = _INV_SQRT_PI * math.exp(-xp * xp) * s
    return f / y, f * y


def _chebyshev_table() -> np.ndarray:
    """Chebyshev coefficients (pieces, degree + 1) of ``F(y) / y`` on each piece of ``[0, 10)``."""
    k = np.arange(_CHEB_DEGREE + 1)
    t = np.cos(np.pi * (k + 0.5) / (_CHEB_DEGREE + 1))  # Chebyshev points of the first kind
    table = np.empty((_CHEB_PIECES, _CHEB_DEGREE + 1))
    for i in range(_CHEB_PIECES):
        y = _CHEB_WIDTH * (i + 0.5 * (t + 1.0))
        g = np.array([dawson_ratio_reference(v * v)[0] for v in y])
        table[i] = np.polynomial.chebyshev.chebfit(t, g, _CHEB_DEGREE)
    return table


#: ``_chebyshev_table()``, built once at import (260 reference evaluations).
CHEB_TABLE = _chebyshev_table()


@njit(cache=True, nogil=True)
def dawson_ratio(m: float, table: np.ndarray) -> tuple[float, float]:
    """``(F(y) / y, y F(y))`` for ``y = sqrt(m)``, ``m >= 0`` (``inf`` allowed), ``F`` Dawson's.

    ``table`` is :data:`CHEB_TABLE`. Taylor series below ``m = 0.04`` (exactly 1 at 0),
    piecewise Chebyshev (Clenshaw) up to ``y = 10``, asymptotic series above: relative
    error below ~5e-15, about 30 ns.
    """
    if m < 0.04:
        return _taylor(m)
    y = math.sqrt(m)
    if not y < _Y_ASYMPTOTIC:  # NaN too: never an out-of-range table row
        return _asymptotic(m)
    i = int(y * (1.0 / _CHEB_WIDTH))
    t = (2.0 / _CHEB_WIDTH) * y - (2.0 * i + 1.0)
    t2 = 2.0 * t
    b1 = 0.0
    b2 = 0.0
    for j in range(_CHEB_DEGREE, 0, -1):
        b0 = t2 * b1 - b2 + table[i, j]
        b2 = b1
        b1 = b0
    g = t * b1 - b2 + table[i, 0]
    return g, m * g


@njit(cache=True, nogil=True)
def _rotate(app: float, aqq: float, apq: float) -> tuple[float, float, float, float]:
    """Jacobi rotation zeroing ``apq``: new ``(app, aqq)`` and ``(c, s)`` (``t = s / c``)."""
    tau = (aqq - app) / (2.0 * apq)
    t = 1.0 / (abs(tau) + math.hypot(1.0, tau))
    if tau < 0.0:
        t = -t
    c = 1.0 / math.sqrt(1.0 + t * t)
    return app - t * apq, aqq + t * apq, c, t * c


@njit(cache=True, nogil=True)
def sym3_eigenvalues(a: np.ndarray) -> tuple[float, float, float]:
    """Eigenvalues ``(smallest, middle, largest)`` of the symmetric 3x3 ``a`` (lower triangle).

    Cyclic Jacobi: rotations until the off-diagonal is below 1e-18 of the diagonal (about
    four sweeps; at most 12), backward stable (absolute error ~1e-16 of the largest). Reads
    the lower triangle only, as :func:`numpy.linalg.eigvalsh`. NaN in, NaN out.
    """
    a00, a11, a22 = a[0, 0], a[1, 1], a[2, 2]
    a10, a20, a21 = a[1, 0], a[2, 0], a[2, 1]
    for _ in range(12):
        if abs(a10) + abs(a20) + abs(a21) <= 1e-18 * (abs(a00) + abs(a11) + abs(a22)):
            break
        if a10 != 0.0:  # (0, 1)
            a00, a11, c, s = _rotate(a00, a11, a10)
            a10 = 0.0
            a20, a21 = c * a20 - s * a21, s * a20 + c * a21
        if a20 != 0.0:  # (0, 2)
            a00, a22, c, s = _rotate(a00, a22, a20)
            a20 = 0.0
            a10, a21 = c * a10 - s * a21, s * a10 + c * a21
        if a21 != 0.0:  # (1, 2)
            a11, a22, c, s = _rotate(a11, a22, a21)
            a21 = 0.0
            a10, a20 = c * a10 - s * a20, s * a10 + c * a20
    if a00 > a11:
        a00, a11 = a11, a00
    if a11 > a22:
        a11, a22 = a22, a11
    if a00 > a11:
        a00, a11 = a11, a00
    return a00, a11, a22


@njit(cache=True, nogil=True)
def coverage_radius(
    cov: np.ndarray,
    cos2: np.ndarray,
    table: np.ndarray,
    probability: float,
    z: float,
    max_steps: int,
    tol: float,
    out: np.ndarray,
) -> int:
    """``out[i]`` = radius with ``P(|e|^2 <= out[i]^2) = probability`` for ``e ~ N(0, cov[i])``.

    Parameters
    ----------
    cov : numpy.ndarray, shape (M, 3, 3)
        Symmetric covariances (lower triangles read; negative eigenvalues taken as 0).
    cos2 : numpy.ndarray, shape (N,)
        ``cos^2 phi_j`` at the midpoint nodes ``phi_j = (j + 1/2) pi / 2N`` (equal weights).
    table : numpy.ndarray
        :data:`CHEB_TABLE` (Dawson's integral).
    probability : float
        Coverage in (0, 1).
    z : float
        Standard normal quantile of ``probability`` (for the Wilson-Hilferty starting guess).
    max_steps : int
        Most Newton steps per covariance.
    tol : float
        Stop once a Newton step on ``log x`` is below this (the error left is ~tol^2).
    out : numpy.ndarray, shape (M,)
        Radii, in the square root of ``cov``'s unit; 0 for a zero covariance, NaN for a
        non-finite one.

    Returns
    -------
    int
        How many covariances were not finite (their radii are NaN).
    """
    n = cos2.shape[0]
    k = np.empty(n)
    upper = probability >= 0.5
    log_target = math.log(1.0 - probability) if upper else math.log(probability)
    n_bad = 0
    for i in range(cov.shape[0]):
        l3, l2, l1 = sym3_eigenvalues(cov[i])
        if not (l1 > 0.0 and l1 < math.inf and l3 > -math.inf):
            if l1 <= 0.0 and l3 > -math.inf:  # zero (or negative semi-definite): radius 0
                out[i] = 0.0
            else:
                out[i] = math.nan
                n_bad += 1
            continue
        al = max(l2, 0.0) / l1  # middle / largest, in [0, 1]
        be = max(l3, 0.0) / l1  # smallest / largest, in [0, al]
        # Node constants: m_j = k_j x with k_j = (1 - a_j) / (2 a_j), a_j = a(phi_j).
        for j in range(n):
            a = be + (al - be) * cos2[j]
            k[j] = (1.0 - a) / (2.0 * a) if a > 0.0 else math.inf
        # Starting guess: |e|^2 / l1 ~ c chi2_nu (Welch-Satterthwaite: matched mean and
        # variance), chi2_nu quantile by Wilson-Hilferty; within ~3 % of x at 95 %.
        c1 = 1.0 + al + be
        c2 = 1.0 + al * al + be * be
        nu = c1 * c1 / c2
        w = 2.0 / (9.0 * nu)
        base = max(1.0 - w + z * math.sqrt(w), 0.1)
        y = math.log(c2 / c1 * nu * base * base * base)
        for _ in range(max_steps):
            x = math.exp(y)
            m0 = 0.0
            m1 = 0.0
            for j in range(n):
                d, e = dawson_ratio(k[j] * x, table)
                m0 += d
                m1 += e
            m0 /= n
            m1 /= n
            rx = math.sqrt(x)
            amp = _SQRT_2_OVER_PI * rx * math.exp(-0.5 * x)
            dp = amp * (m1 + 0.5 * x * m0)  # dP / dlog x
            if upper:  # Newton on log(1 - P): near-linear in x in the upper tail
                q = math.erfc(rx / _SQRT2) + amp * m0
                step = (log_target - math.log(max(q, 1e-300))) * q / max(dp, 1e-300)
            else:  # on log P: near-linear in log x in the lower tail
                p = math.erf(rx / _SQRT2) - amp * m0
                step = (math.log(max(p, 1e-300)) - log_target) * p / max(dp, 1e-300)
            step = min(max(step, -2.0), 2.0)
            y -= step
            if abs(step) < tol:
                break
        out[i] = math.sqrt(l1 * math.exp(y))
    return n_bad
