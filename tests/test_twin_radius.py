"""The exact 95 % radius of a 3-D Gaussian (generalised chi-square quantile)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from surgplan.twin.radius import ISOTROPIC_RADIUS95, coverage_radius_mm, radius95_mm


def test_isotropic_closed_form() -> None:
    assert ISOTROPIC_RADIUS95 == pytest.approx(np.sqrt(chi2.ppf(0.95, 3)), rel=1e-12)
    for sigma in (0.1, 1.0, 7.5):
        assert radius95_mm(sigma**2 * np.eye(3)) == pytest.approx(2.7955 * sigma, rel=1e-4)


def test_rank_one_and_rank_two_closed_forms() -> None:
    # |e| = sigma |z|: the two-sided normal quantile; two axes: the Rayleigh quantile.
    assert radius95_mm(np.diag([4.0, 0.0, 0.0])) == pytest.approx(2 * 1.959964, rel=1e-5)
    assert radius95_mm(np.diag([1.0, 1.0, 0.0])) == pytest.approx(
        np.sqrt(-2 * np.log(0.05)), rel=1e-5
    )


@pytest.mark.parametrize("lam", [(4.0, 1.0, 0.25), (9.0, 0.1, 0.1), (1.0, 1.0, 0.01)])
def test_against_monte_carlo(lam: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]  # a rotated covariance
    S = Q @ np.diag(lam) @ Q.T
    e = rng.multivariate_normal(np.zeros(3), S, size=400_000)
    mc = np.quantile(np.linalg.norm(e, axis=1), 0.95)
    assert radius95_mm(S) == pytest.approx(mc, rel=3e-3)
    # ... and not the isotropic approximation with the mean variance
    assert abs(ISOTROPIC_RADIUS95 * np.sqrt(np.mean(lam)) - mc) > 0.01 * mc


def test_vectorised_and_zero() -> None:
    S = np.stack([np.eye(3), 4 * np.eye(3), np.zeros((3, 3))])
    r = coverage_radius_mm(S)
    assert r.shape == (3,)
    np.testing.assert_allclose(r, [ISOTROPIC_RADIUS95, 2 * ISOTROPIC_RADIUS95, 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        coverage_radius_mm(np.eye(2))


# --- the Dawson-integral quadrature against independent references ---------------------------

# Eigenvalue ratios from isotropic down to rank one (largest first; any order is accepted).
_CASES = [
    (1.0, 1.0, 1.0),
    (1.0, 0.0, 0.0),
    (1.0, 1e-6, 0.0),
    (1.0, 0.01, 1e-4),
    (1.0, 1.0, 0.0),
    (1.0, 1.0, 1e-8),  # the hardest for the midpoint rule: a(phi) reaches ~0
    (1.0, 0.85, 0.0),
    (1.0, 0.3, 0.05),
    (1.0, 1e-3, 1e-3),
    (0.62, 0.17, 0.94),
    (0.05, 0.73, 0.31),
]


def _sphere_cdf(lam: np.ndarray, s: float, n: int = 300) -> float:
    """``P(sum lam_i z_i^2 <= s)`` as ``E_u[F3(s / u^T diag(lam) u)]`` over the unit sphere.

    An independent formulation (the chi-square-3 radial CDF averaged over directions, not the
    Dawson reduction under test): one octant (the integrand depends on ``u^2`` only), Gauss-
    Legendre in ``cos theta`` (``n`` nodes on [0, 1]) times the midpoint rule in ``phi``
    (``2n`` nodes). Converged to ~1e-13 in probability for these cases.
    """
    from scipy.special import erf

    t, wt = np.polynomial.legendre.leggauss(2 * n)
    t, wt = t[n:], wt[n:]  # [0, 1], weights summing to 1
    phi = (np.arange(2 * n) + 0.5) * (0.5 * np.pi / (2 * n))
    r2 = (1.0 - t * t)[:, None]
    q = lam[0] * r2 * np.cos(phi) ** 2 + lam[1] * r2 * np.sin(phi) ** 2 + lam[2] * (t * t)[:, None]
    x = s / np.maximum(q, 1e-300)
    f3 = erf(np.sqrt(x / 2)) - np.sqrt(2 * x / np.pi) * np.exp(-x / 2)
    return float(wt @ f3.mean(axis=1))


@pytest.mark.parametrize("lam", _CASES)
def test_radius_brackets_the_exact_quantile(lam: tuple[float, float, float]) -> None:
    # P is increasing in s, so P(r (1 - d)) < 0.95 < P(r (1 + d)) proves |r / r* - 1| < d; the
    # reference is ~1e-13 accurate, far below the ~2e-7 probability step that d = 1e-6 makes.
    lam_a = np.array(lam)
    rng = np.random.default_rng(7)
    Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    for S in (np.diag(lam_a), Q @ np.diag(lam_a) @ Q.T):
        r = radius95_mm(S)
        d = 1e-6
        assert (
            _sphere_cdf(lam_a, (r * (1 - d)) ** 2) < 0.95 < _sphere_cdf(lam_a, (r * (1 + d)) ** 2)
        )


@pytest.mark.parametrize("probability", [0.01, 0.3, 0.5, 0.8, 0.99, 0.999])
@pytest.mark.parametrize("lam", [(1.0, 1.0, 0.0), (1.0, 0.01, 1e-4), (1.0, 0.3, 0.05)])
def test_radius_at_other_probabilities(lam: tuple[float, float, float], probability: float) -> None:
    lam_a = np.array(lam)
    r = float(coverage_radius_mm(np.diag(lam_a), probability))
    d = 1e-6
    lo, hi = _sphere_cdf(lam_a, (r * (1 - d)) ** 2), _sphere_cdf(lam_a, (r * (1 + d)) ** 2)
    assert lo < probability < hi


def test_closed_forms_to_rounding() -> None:
    rng = np.random.default_rng(3)
    Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    for sigma in (1e-3, 1.0, 37.0):
        v = sigma**2
        rank1 = radius95_mm(Q @ np.diag([v, 0.0, 0.0]) @ Q.T) / sigma
        iso = radius95_mm(v * np.eye(3)) / sigma
        rank2 = radius95_mm(Q @ np.diag([0.0, v, v]) @ Q.T) / sigma
        assert rank1 == pytest.approx(1.959963984540054, rel=1e-9)
        assert iso == pytest.approx(2.7954834829151074, rel=1e-9)
        assert rank2 == pytest.approx(np.sqrt(-2 * np.log(0.05)), rel=1e-9)
    # ... and at other probabilities: chi2_3, the two-sided normal and the Rayleigh quantiles
    from scipy.stats import norm

    for p in (0.001, 0.2, 0.5, 0.9, 0.999999):
        r = coverage_radius_mm(np.stack([np.eye(3), np.diag([1.0, 0, 0]), np.diag([1.0, 1, 0])]), p)
        expect = [np.sqrt(chi2.ppf(p, 3)), norm.isf((1 - p) / 2), np.sqrt(-2 * np.log1p(-p))]
        np.testing.assert_allclose(r, expect, rtol=1e-9)


def test_newton_has_converged() -> None:
    # The wrapper stops Newton at a 1e-7 step; iterating to a 1e-14 step changes nothing.
    from surgplan.twin import radius as R
    from surgplan.twin._radius_kernel import CHEB_TABLE, coverage_radius

    rng = np.random.default_rng(11)
    A = rng.normal(size=(200, 3, 3)) * rng.uniform(0.0, 1.0, size=(200, 1, 3)) ** 3
    S = A @ A.transpose(0, 2, 1)
    for p in (0.05, 0.5, 0.95, 0.999):
        cos2, z = R._phi_nodes(p)
        tight = np.empty(len(S))
        assert coverage_radius(S, cos2, CHEB_TABLE, p, z, 60, 1e-14, tight) == 0
        np.testing.assert_allclose(coverage_radius_mm(S, p), tight, rtol=1e-13)


def test_dawson_ratio_against_scipy() -> None:
    from scipy.special import dawsn

    from surgplan.twin._radius_kernel import CHEB_TABLE, dawson_ratio, dawson_ratio_reference

    y = np.concatenate([np.linspace(0.0, 12.0, 4801)[1:], np.geomspace(1e-8, 1e6, 400)])
    ref = dawsn(y)
    for fn in (lambda m: dawson_ratio(m, CHEB_TABLE), dawson_ratio_reference):
        d, e = np.array([fn(v * v) for v in y]).T
        np.testing.assert_allclose(d * y, ref, rtol=2e-14)  # F(y) / y
        np.testing.assert_allclose(e / y, ref, rtol=2e-14)  # y F(y)
    assert dawson_ratio(0.0, CHEB_TABLE) == (1.0, 0.0)
    assert dawson_ratio(np.inf, CHEB_TABLE) == (0.0, 0.5)


def test_jacobi_eigenvalues_match_lapack() -> None:
    from surgplan.twin._radius_kernel import sym3_eigenvalues

    rng = np.random.default_rng(5)
    for k in range(3000):
        Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        lam = np.sort(rng.uniform(0, 1, 3) * 10.0 ** rng.uniform(-12, 0, 3))
        lam[: k % 3] = lam[k % 3]  # single, double and triple eigenvalues
        S = Q @ np.diag(lam) @ Q.T * 10.0 ** rng.uniform(-6, 6)
        ref = np.linalg.eigvalsh(S)
        np.testing.assert_allclose(sym3_eigenvalues(S), ref, rtol=0, atol=1e-14 * ref[-1])


def test_degenerate_inputs_and_shapes() -> None:
    S = np.stack([np.zeros((3, 3)), -np.eye(3), np.diag([1.0, -1e-18, 0.0])])
    np.testing.assert_allclose(coverage_radius_mm(S), [0.0, 0.0, 1.959963984540054], rtol=1e-12)
    batch = np.broadcast_to(np.eye(3), (2, 4, 3, 3))  # non-contiguous views are fine
    assert coverage_radius_mm(batch).shape == (2, 4)
    assert coverage_radius_mm(np.empty((0, 3, 3))).shape == (0,)
    for bad in (np.full((3, 3), np.nan), np.diag([np.inf, 1.0, 1.0])):
        with pytest.raises(ValueError, match="finite"):
            coverage_radius_mm(bad)
    for p in (0.0, 1.0, float("nan")):
        with pytest.raises(ValueError, match="probability"):
            coverage_radius_mm(np.eye(3), p)
