"""Twin.update on a synthetic organ with a known basis: recovery, batches, robustness, verdict."""

from __future__ import annotations

import numpy as np
import pytest

import registration as reg
from surgplan.twin import Twin, TwinCheck
from surgplan.twin.synthetic import posed_swabs, random_pose, synthetic_basis, synthetic_organ

NOISE = 1.0


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


def _targets_tracker(basis, a, T):  # noqa: ANN001, ANN202
    return reg.apply_transform(T, basis.target_positions_mm(a))


def pose_error(state, T_tracker_model_true: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """[w, t] with ``T_model_tracker_true = E(w, t) T_model_tracker_estimated`` (state frame)."""
    from scipy.spatial.transform import Rotation

    E = np.linalg.inv(T_tracker_model_true) @ state.T_tracker_model
    c = state.rotation_centre_mm
    w = Rotation.from_matrix(E[:3, :3]).as_rotvec()
    return np.concatenate([w, E[:3, 3] - c + E[:3, :3] @ c])


def test_update_recovers_pose_and_amplitudes(organ, basis, truth) -> None:  # noqa: ANN001
    a, T = truth
    tw = Twin(basis, noise_mm=NOISE)
    pts = posed_swabs(
        organ, basis.surface_displacement_mm(a), T, n_points=600, noise_mm=NOISE, seed=1
    )
    s = tw.update(pts)
    assert s.trustworthy, s.verdict.reason
    sd = np.sqrt(np.diag(s.covariance))
    # Each amplitude within 4 posterior standard deviations of the truth; the pose within
    # the chi2_6 99.9 % ellipsoid of its covariance.
    assert np.all(np.abs(s.amplitudes - a) < 4 * sd[6:])
    d = pose_error(s, T)
    assert d @ np.linalg.solve(s.covariance[:6, :6], d) < 22.46
    err = np.linalg.norm(
        [t.position_tracker_mm for t in s.targets] - _targets_tracker(basis, a, T), axis=1
    )
    assert np.all(err < [t.radius95_mm for t in s.targets])
    assert np.all(err < 4.0)  # mm, with 1 mm noise and 6 modes of up to ~16 mm
    assert s.n_points == 600 and s.mode == "deformable"


def test_batches_accumulate(organ, basis, truth) -> None:  # noqa: ANN001
    a, T = truth
    u = basis.surface_displacement_mm(a)
    tw = Twin(basis, noise_mm=NOISE, T_tracker_model=T)
    errs, traces, radii = [], [], []
    for i in range(6):
        s = tw.update(posed_swabs(organ, u, T, n_points=100, noise_mm=NOISE, seed=10 + i))
        est = s.target("tumour").position_tracker_mm
        errs.append(np.linalg.norm(est - _targets_tracker(basis, a, T)[0]))
        traces.append(np.trace(s.covariance[6:, 6:]))
        radii.append(s.target("tumour").radius95_mm)
    assert np.all(np.diff(traces) < 0) and np.all(np.diff(radii) < 0)
    assert traces[-1] < 0.5 * traces[0]
    assert np.mean(errs[-2:]) < np.mean(errs[:2])
    assert s.n_points == 600


def test_rigid_mode_on_an_undeformed_organ(organ, basis, truth) -> None:  # noqa: ANN001
    _, T = truth
    tw = Twin(basis, mode="rigid", noise_mm=NOISE)
    s = tw.update(posed_swabs(organ, 0.0, T, n_points=500, noise_mm=NOISE, seed=2))
    assert s.mode == "rigid" and s.amplitudes.shape == (0,) and s.covariance.shape == (6, 6)
    assert s.trustworthy, s.verdict.reason
    d = pose_error(s, T)
    assert d @ np.linalg.solve(s.covariance, d) < 22.46  # chi2_6 99.9 %


def test_outliers_do_not_bend_the_organ(organ, basis, truth) -> None:  # noqa: ANN001
    a, T = truth
    u = basis.surface_displacement_mm(a)
    pts = posed_swabs(organ, u, T, n_points=600, noise_mm=NOISE, seed=4)
    bad, _ = reg.add_outliers(pts, fraction=0.3, seed=5)
    s = Twin(basis, noise_mm=NOISE, T_tracker_model=T).update(bad)
    naive = Twin(basis, noise_mm=100.0, T_tracker_model=T).update(bad)  # no rejection at all
    true_t = _targets_tracker(basis, a, T)
    err = np.linalg.norm([t.position_tracker_mm for t in s.targets] - true_t, axis=1)
    err_naive = np.linalg.norm([t.position_tracker_mm for t in naive.targets] - true_t, axis=1)
    # Measured: tumour 2.8 mm robust vs 5.2 mm without rejection (1.3 mm from the inliers
    # alone); near-surface outliers (a quarter of them land within 5 mm of the surface) still
    # pull, which is why the verdict must and does block this fit.
    assert err[0] < 0.6 * err_naive[0]
    assert np.all(err < 5.0)
    assert not s.trustworthy and TwinCheck.LOW_INLIER_FRACTION in s.verdict.checks


def test_mirrored_organ_is_flagged(organ, basis, truth) -> None:  # noqa: ANN001
    a, T = truth
    mirrored = organ.vertices * np.array([-1.0, 1.0, 1.0])
    pts = reg.simulate_swabs((mirrored, organ.faces[:, ::-1]), n_points=600, coverage=0.3, seed=6)
    pts = reg.add_noise(reg.apply_transform(T, pts), noise_mm=NOISE, seed=7)
    s = Twin(basis, noise_mm=NOISE).update(pts)
    assert not s.trustworthy, "a mirrored organ must stay flagged in deformable mode"


def test_wrong_organ_is_flagged(basis, truth) -> None:  # noqa: ANN001
    import pyvista as pv

    _, T = truth
    other = reg.prepare_surface(pv.Cylinder(radius=25.0, height=70.0).triangulate().subdivide(3))
    pts = reg.simulate_swabs(other, n_points=600, coverage=0.3, seed=8)
    pts = reg.add_noise(reg.apply_transform(T, pts), noise_mm=NOISE, seed=9)
    s = Twin(basis, noise_mm=NOISE).update(pts)
    assert not s.trustworthy


def test_too_few_points_flagged(organ, basis, truth) -> None:  # noqa: ANN001
    a, T = truth
    pts = posed_swabs(
        organ, basis.surface_displacement_mm(a), T, n_points=80, noise_mm=NOISE, seed=11
    )
    s = Twin(basis, noise_mm=NOISE, T_tracker_model=T).update(pts)
    assert s.verdict.checks == (TwinCheck.TOO_FEW_POINTS,)


def test_deformed_surface_and_points_follow_the_state(organ, basis, truth) -> None:  # noqa: ANN001
    a, T = truth
    tw = Twin(basis, noise_mm=NOISE, T_tracker_model=T)
    u = basis.surface_displacement_mm(a)
    s = tw.update(posed_swabs(organ, u, T, n_points=500, noise_mm=NOISE, seed=12))
    mesh = tw.deformed_surface()
    true_v = reg.apply_transform(T, organ.vertices + u)
    assert np.sqrt(np.mean(np.sum((mesh.points - true_v) ** 2, axis=1))) < 2.0
    p = tw.deform_points(basis.target_points_mm, basis.target_modes)
    np.testing.assert_allclose(p, [t.position_tracker_mm for t in s.targets], atol=1e-9)


def test_a_lone_pointer_outlier_carries_no_weight(organ, basis, truth) -> None:  # noqa: ANN001
    """A one-point batch is judged against the noise (Tukey), not by its own MAD scale."""
    a, T = truth
    u = basis.surface_displacement_mm(a)
    tw = Twin(basis, noise_mm=NOISE)
    tw.update(posed_swabs(organ, u, T, n_points=600, noise_mm=NOISE, seed=6))
    before = tw.state
    good = posed_swabs(organ, u, T, n_points=1, noise_mm=NOISE, seed=7)
    outward = good - (T[:3, :3] @ organ.vertices.mean(axis=0) + T[:3, 3])
    far = good + 25.0 * outward / np.linalg.norm(outward)  # 25 mm off the surface
    s = tw.update(far)
    # Rejected: the state is the prior's (Geman-McClure with the point's own scale gave it a
    # weight of 0.64 at any distance) and a single Gauss-Newton search ends the update.
    assert np.allclose(s.amplitudes, before.amplitudes, atol=1e-9)
    assert np.allclose(s.T_tracker_model, before.T_tracker_model, atol=1e-9)
    assert s.iterations <= 3
