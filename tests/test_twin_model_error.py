"""The twin's model error: rigid mode's unmodelled deformation, the observation model's
surface discrepancy, and bad cases that a wider effective noise must not let through."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import registration as reg
from registration import FailedCheck, ReliabilityCriteria, Verdict, VerdictCheck
from surgplan.twin import Twin, TwinCheck
from surgplan.twin.noise import (
    effective_noise_mm,
    observation_covariance,
    sensor_covariance,
    systematic_noise_mm,
)
from surgplan.twin.rom_basis import surface_discrepancy_from_meta
from surgplan.twin.synthetic import posed_swabs, random_pose, synthetic_basis, synthetic_organ
from surgplan.twin.targets import rigid_deformation_covariance
from surgplan.twin.verdict import with_systematic_noise

NOISE = 1.0
#: Wider than the liver model's measured surface discrepancy (0.37 mm per axis).
MODEL_NOISE = 0.5


@pytest.fixture(scope="module")
def organ():  # noqa: ANN201
    return synthetic_organ()


@pytest.fixture(scope="module")
def basis(organ):  # noqa: ANN001, ANN201
    return synthetic_basis(organ)


@pytest.fixture(scope="module")
def truth(basis):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(3)
    a = rng.normal(size=basis.n_modes) * basis.prior_std
    return a, random_pose(rng)


def _translation_basis(basis):  # noqa: ANN001, ANN202
    """Three modes that translate the whole organ by 1 mm along x, y, z."""
    eye = np.eye(3)
    surf = np.repeat(eye[:, None, :], basis.n_vertices, axis=1)
    tgt = np.repeat(eye[:, None, :], len(basis.target_names), axis=1)
    return dataclasses.replace(basis, surface_modes=surf, target_modes=tgt,
                               prior_std=np.full(3, 3.0))  # fmt: skip


def test_rigid_fit_absorbs_a_translation(organ, basis) -> None:  # noqa: ANN001
    tb = _translation_basis(basis)
    p = reg.simulate_swabs((organ.vertices, organ.faces), n_points=400, coverage=0.3, seed=1)
    _, face, beta = _feet(organ, p)
    normals = _face_normals(organ)[face]
    centre = organ.vertices.mean(axis=0)
    fitted = rigid_deformation_covariance(tb, centre, p, normals, face, beta, absorbed=True)
    prior = rigid_deformation_covariance(tb, centre, p, normals, face, beta, absorbed=False)
    assert np.abs(fitted).max() < 1e-6  # the rigid pose recovers a pure translation
    np.testing.assert_allclose(prior, np.broadcast_to(9.0 * np.eye(3), prior.shape), atol=1e-9)


def _face_normals(organ):  # noqa: ANN001, ANN202
    v, f = organ.vertices, organ.faces
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _feet(organ, p):  # noqa: ANN001, ANN202
    """Nearest triangle (by centroid) and barycentric coordinates of points on the surface."""
    from scipy.spatial import cKDTree

    v, f = organ.vertices, organ.faces
    d, face = cKDTree(v[f].mean(axis=1)).query(p)
    a, b, c = v[f[face, 0]], v[f[face, 1]], v[f[face, 2]]
    T = np.stack([b - a, c - a], axis=2)
    sol = np.array([np.linalg.lstsq(T[i], p[i] - a[i], rcond=None)[0] for i in range(len(p))])
    beta = np.column_stack([1.0 - sol.sum(axis=1), sol])
    return d, face, beta


def test_rigid_radius_holds_the_unmodelled_deformation(organ, basis, truth) -> None:  # noqa: ANN001
    a, T = truth
    pts = posed_swabs(organ, basis.surface_displacement_mm(a), T, n_points=600,
                      noise_mm=NOISE, seed=21)  # fmt: skip
    radius = {}
    for how in ("none", "fitted", "prior"):
        s = Twin(basis, mode="rigid", noise_mm=NOISE, rigid_deformation=how,
                 T_tracker_model=T).update(pts)  # fmt: skip
        radius[how] = np.array([t.radius95_mm for t in s.targets])
        if how == "fitted":
            true_t = reg.apply_transform(T, basis.target_positions_mm(a))
            err = np.linalg.norm([t.position_tracker_mm for t in s.targets] - true_t, axis=1)
    assert np.all(radius["none"] < radius["fitted"]) and np.all(radius["none"] < radius["prior"])
    # the error the rigid fit makes at the targets is inside the fitted radius; the pose's
    # absorption of a non-rigid surface deformation can move interior targets the wrong way,
    # so the whole prior ("minus nothing") is no bound on it
    assert np.all(err <= radius["fitted"]), (err, radius)


def test_deformable_mode_ignores_rigid_deformation(organ, basis, truth) -> None:  # noqa: ANN001
    a, T = truth
    pts = posed_swabs(organ, basis.surface_displacement_mm(a), T, n_points=500,
                      noise_mm=NOISE, seed=22)  # fmt: skip
    r = [
        [
            t.radius95_mm
            for t in Twin(basis, noise_mm=NOISE, T_tracker_model=T, rigid_deformation=how)
            .update(pts)
            .targets
        ]  # fmt: skip
        for how in ("fitted", "none")
    ]
    np.testing.assert_allclose(r[0], r[1])


def test_observation_noise_and_systematic_noise() -> None:
    cov = observation_covariance(sensor_covariance(1.0), 0.4)
    np.testing.assert_allclose(cov, (1.0 + 0.16) * np.eye(3))
    assert effective_noise_mm(1.0, 0.4) == pytest.approx(np.sqrt(1.16))
    # k = 8 neighbours: the smooth discrepancy keeps its variance in the 9-point average
    assert systematic_noise_mm(1.0, 0.4, 8) == pytest.approx(np.sqrt(1.0 + 9 * 0.16))
    assert systematic_noise_mm(1.0, 0.0) == pytest.approx(1.0)


def test_systematic_check_rejudged_against_its_noise() -> None:
    c = ReliabilityCriteria()
    fail = FailedCheck(VerdictCheck.SYSTEMATIC_RESIDUAL, 0.55, 0.47, 1.0)
    other = FailedCheck(VerdictCheck.LOW_INLIER_FRACTION, 0.6, 0.85, float("nan"))
    v = with_systematic_noise(Verdict((fail, other)), 1.5, c)
    assert [f.check for f in v.failed_checks] == [VerdictCheck.LOW_INLIER_FRACTION]
    v = with_systematic_noise(Verdict((FailedCheck(VerdictCheck.SYSTEMATIC_RESIDUAL, 2.0,
                                                   0.47, 1.0),)), 1.5, c)  # fmt: skip
    (f,) = v.failed_checks
    assert f.threshold == pytest.approx(c.systematic_sigma * 1.5 + c.systematic_floor_mm)


def test_surface_discrepancy_from_meta() -> None:
    assert surface_discrepancy_from_meta({"surface_discrepancy_mm": 0.3})[0] == 0.3
    rows = [{"surface_fit_surface_rms_mm": 0.6}, {"surface_fit_surface_rms_mm": 0.3}]
    d, source = surface_discrepancy_from_meta({"model_discrepancy": rows})
    assert d == pytest.approx(0.6 / np.sqrt(3.0)) and "same-kind" in source
    assert surface_discrepancy_from_meta({})[0] == 0.0


def test_unmodelled_surface_bump_passes_with_the_model_noise(organ, basis, truth) -> None:  # noqa: ANN001
    """A correct fit whose surface the basis misses by a smooth 0.4 mm is not a false alarm."""
    a, T = truth
    v = organ.vertices
    c = v.mean(axis=0)
    ext = np.ptp(v, axis=0)
    # a smooth field outside the polynomial basis (3rd-order in the surface coordinates)
    bump = (
        0.4
        * np.sqrt(2.0)
        * np.sin(2 * np.pi * (v - c)[:, [0]] / ext[0] * 1.5)
        * np.array([0.0, 0.0, 1.0])
    )
    u = basis.surface_displacement_mm(a) + bump
    pts = posed_swabs(organ, u, T, n_points=600, noise_mm=NOISE, seed=23)
    s = Twin(basis, noise_mm=NOISE, model_noise_mm=MODEL_NOISE, T_tracker_model=T).update(pts)
    assert s.trustworthy, s.verdict.reason


def test_mirrored_wrong_organ_outliers_too_few_stay_flagged_with_model_noise(
    organ,
    basis,
    truth,  # noqa: ANN001
) -> None:
    import pyvista as pv

    a, T = truth
    kw = {"noise_mm": NOISE, "model_noise_mm": MODEL_NOISE}
    mirrored = organ.vertices * np.array([-1.0, 1.0, 1.0])
    pts = reg.simulate_swabs((mirrored, organ.faces[:, ::-1]), n_points=600, coverage=0.3, seed=6)
    pts = reg.add_noise(reg.apply_transform(T, pts), noise_mm=NOISE, seed=7)
    assert not Twin(basis, **kw).update(pts).trustworthy
    other = reg.prepare_surface(pv.Cylinder(radius=25.0, height=70.0).triangulate().subdivide(3))
    pts = reg.simulate_swabs(other, n_points=600, coverage=0.3, seed=8)
    pts = reg.add_noise(reg.apply_transform(T, pts), noise_mm=NOISE, seed=9)
    assert not Twin(basis, **kw).update(pts).trustworthy
    u = basis.surface_displacement_mm(a)
    good = posed_swabs(organ, u, T, n_points=600, noise_mm=NOISE, seed=4)
    bad, _ = reg.add_outliers(good, fraction=0.3, seed=5)
    s = Twin(basis, T_tracker_model=T, **kw).update(bad)
    assert not s.trustworthy and TwinCheck.LOW_INLIER_FRACTION in s.verdict.checks
    few = posed_swabs(organ, u, T, n_points=80, noise_mm=NOISE, seed=11)
    s = Twin(basis, T_tracker_model=T, **kw).update(few)
    assert s.verdict.checks == (TwinCheck.TOO_FEW_POINTS,)


def test_explained_inlier_floor() -> None:
    from surgplan.twin.verdict import explained_inlier_floor

    f = explained_inlier_floor(500, 3.0)
    # 500 points, P(|z| < 3) = 0.9973: at most a handful off the surface by noise alone
    assert 0.98 < f < 0.9973
    assert explained_inlier_floor(0) == 0.0
    assert explained_inlier_floor(2000, 3.0) > f  # more points, tighter


@pytest.mark.parametrize("sigma", [2.0, 3.0, 3.5])
def test_binomial_quantile_equals_scipy(sigma: float) -> None:
    import math

    from scipy.stats import binom

    from surgplan.twin.verdict import _binomial_quantile

    p = math.erf(sigma / math.sqrt(2.0))
    for n in [1, 2, 7, 50, 499, 500, 1401, 5000, 20000]:
        for q in (0.001, 0.01, 0.5):
            assert _binomial_quantile(q, n, p) == binom.ppf(q, n, p), (n, q)
