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
