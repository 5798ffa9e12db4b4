import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from registration.errors import RegistrationError
from registration.paired import (
    DegenerateConfigurationError,
    expected_fre,
    fiducial_registration_error,
    predicted_tre,
    register_paired_points,
)


def _pose(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T[:3, 3] = rng.normal(scale=100.0, size=3)
    return T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rigid_recovers_known_pose_exactly(seed):
    rng = np.random.default_rng(seed)
    moving = rng.normal(scale=50.0, size=(6, 3))
    T = _pose(seed)
    fixed = moving @ T[:3, :3].T + T[:3, 3]
    res = register_paired_points(fixed, moving)
    np.testing.assert_allclose(res.T_fixed_moving, T, atol=1e-9)
    assert res.fre_mm < 1e-9
    assert res.scale == 1.0


def test_similarity_recovers_scale():
    rng = np.random.default_rng(3)
    moving = rng.normal(scale=30.0, size=(5, 3))
    T = _pose(3)
    fixed = 1.7 * moving @ T[:3, :3].T + T[:3, 3]
    res = register_paired_points(fixed, moving, allow_scale=True)
    assert res.scale == pytest.approx(1.7, rel=1e-12)
    np.testing.assert_allclose(res.T_fixed_moving[:3, :3], 1.7 * T[:3, :3], atol=1e-9)


def test_reflection_is_never_returned():
    # A mirrored point set: the best orthogonal matrix is a reflection; Umeyama's correction
    # must return a proper rotation (det +1) with a non-zero FRE instead.
    moving = np.array([[0, 0, 0], [10, 0, 0], [0, 20, 0], [0, 0, 30.0]])
    fixed = moving * np.array([-1.0, 1.0, 1.0])
    res = register_paired_points(fixed, moving)
    assert np.linalg.det(res.T_fixed_moving[:3, :3]) == pytest.approx(1.0)
    assert res.fre_mm > 1.0


def test_fre_closed_form_for_known_residuals():
    # Fixed points displaced symmetrically along z by +/-1 mm: the best rigid fit is the identity
    # (residuals cancel in the centroid and the cross-covariance), so FRE = 1 mm exactly.
    moving = np.array([[10, 0, 0], [-10, 0, 0], [0, 10, 0], [0, -10, 0.0]])
    fixed = moving + np.array([[0, 0, 1], [0, 0, 1], [0, 0, -1], [0, 0, -1.0]])
    res = register_paired_points(fixed, moving)
    assert res.fre_mm == pytest.approx(
        fiducial_registration_error(res.T_fixed_moving, fixed, moving)
    )
    np.testing.assert_allclose(res.T_fixed_moving, np.eye(4), atol=1e-12)
    assert res.fre_mm == pytest.approx(1.0, rel=1e-12)


def test_predicted_tre_eq46_symmetric_configuration():
    # Six fiducials at +/-a on each axis: f_k^2 = 2a^2/3 for every axis, so eq. 46 gives
    # TRE^2 = FLE^2/6 * (1 + r^2/a^2) for a target at distance r along an axis.
    a, fle = 50.0, 1.0
    fid = np.vstack([np.eye(3) * a, -np.eye(3) * a])
    targets = np.array([[0.0, 0.0, 0.0], [a, 0.0, 0.0], [0.0, 0.0, 2 * a]])
    tre = predicted_tre(fid, targets, fle)
    np.testing.assert_allclose(tre, fle * np.sqrt([1 / 6, 2 / 6, 5 / 6]), rtol=1e-12)


def test_predicted_tre_matches_monte_carlo():
    rng = np.random.default_rng(5)
    fid = rng.normal(scale=40.0, size=(5, 3))
    target = np.array([[80.0, -20.0, 10.0]])
    fle_rms = 1.0
    sigma = fle_rms / np.sqrt(3)  # isotropic: per-axis sigma
    errs = []
    for _ in range(4000):
        res = register_paired_points(fid + rng.normal(scale=sigma, size=fid.shape), fid)
        errs.append(
            np.linalg.norm(
                res.T_fixed_moving[:3, :3] @ target[0] + res.T_fixed_moving[:3, 3] - target[0]
            )
        )
    mc = np.sqrt(np.mean(np.square(errs)))
    assert mc == pytest.approx(predicted_tre(fid, target, fle_rms)[0], rel=0.06)


def test_expected_fre():
    assert expected_fre(2.0, 4) == pytest.approx(2.0 * np.sqrt(0.5))


@pytest.mark.parametrize(
    ("fixed", "moving", "match"),
    [
        (np.zeros((2, 3)), np.zeros((2, 3)), "at least 3"),
        (np.eye(3), np.eye(4, 3), "same number"),
        (
            np.outer([0, 1, 2, 3], [1.0, 2.0, 3.0]),
            np.outer([0, 1, 2, 3], [1.0, 2.0, 3.0]),
            "collinear",
        ),
    ],
)
def test_degenerate_configurations_raise(fixed, moving, match):
    with pytest.raises(DegenerateConfigurationError, match=match):
        register_paired_points(fixed, moving)


def test_bad_shape_is_registration_error():
    with pytest.raises(RegistrationError, match=r"shape \(N, 3\)"):
        register_paired_points(np.zeros((4, 2)), np.zeros((4, 2)))
