"""The deformable twin's start pose when the pose is unknown (surgplan.twin.start)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import registration as reg
from registration.surface import global_candidates, global_initialise
from surgplan.twin import Twin
from surgplan.twin.start import MAX_STARTS, check_start, distinct_poses, map_cost
from surgplan.twin.synthetic import posed_swabs, random_pose, synthetic_basis, synthetic_organ

NOISE = 1.0


@pytest.fixture(scope="module")
def scene():  # noqa: ANN201
    organ = synthetic_organ()
    basis = synthetic_basis(organ)
    rng = np.random.default_rng(3)
    a = rng.normal(size=basis.n_modes) * basis.prior_std
    T = random_pose(rng)  # T_tracker_model
    pts = posed_swabs(
        organ, basis.surface_displacement_mm(a), T, n_points=600, noise_mm=NOISE, seed=1
    )
    return organ, basis, a, T, pts


def _wrong(T_model_tracker: np.ndarray, centre: np.ndarray, deg: float) -> np.ndarray:
    """``T_model_tracker`` turned by ``deg`` about an axis through the model-space centre."""
    E = np.eye(4)
    E[:3, :3] = Rotation.from_rotvec(np.deg2rad(deg) * np.array([0.3, 0.9, 0.3])).as_matrix()
    E[:3, 3] = centre - E[:3, :3] @ centre
    return E @ T_model_tracker


def test_global_initialise_is_the_best_candidate(scene) -> None:  # noqa: ANN001
    organ, _, _, _, pts = scene
    model = organ
    found = global_candidates(pts, model, seed=0, noise_mm=NOISE)
    costs = [c.cost for c in found]
    assert costs == sorted(costs) and len(found) >= 1
    T, _ = global_initialise(pts, model, seed=0, noise_mm=NOISE)
    np.testing.assert_array_equal(T, found[0].T_model_points)


def test_distinct_poses_drops_near_duplicates(scene) -> None:  # noqa: ANN001
    _, _, _, T, pts = scene
    Tm = np.linalg.inv(T)
    near = Tm.copy()
    near[:3, 3] += 0.5  # 0.5 mm: the same pose at a 3 mm separation
    far = Tm.copy()
    far[:3, 3] += 10.0
    kept = distinct_poses([Tm, near, far] + [far + 0.0] * 10, pts, 3.0)
    assert len(kept) == 2
    np.testing.assert_array_equal(kept[1], far)
    shifted = []
    for i in range(2 * MAX_STARTS):
        S = Tm.copy()
        S[:3, 3] += 20.0 * (i + 1)
        shifted.append(S)
    assert len(distinct_poses([Tm, *shifted], pts, 3.0)) == MAX_STARTS


def test_a_wrong_rigid_start_is_flagged_by_a_better_candidate(scene) -> None:  # noqa: ANN001
    # The rigid pose handed in is 120 degrees off; the global search's candidates hold the
    # true one, whose deformed fit scores better: the start is ambiguous (refused).
    organ, basis, _, T, pts = scene
    tw = Twin(basis, noise_mm=NOISE, surface=organ)
    wrong = _wrong(np.linalg.inv(T), tw.centre_mm, 120.0)
    P = np.diag(np.concatenate([np.full(3, np.radians(5.0) ** 2), np.full(3, 100.0),
                                basis.prior_std**2]))  # fmt: skip
    found = tuple(c.T_model_points for c in global_candidates(pts, organ, noise_mm=NOISE))
    check = check_start(
        pts, tw.surface, tw.centre_mm, wrong, found, P, basis.prior_std,
        sensor_cov=np.eye(3) * NOISE**2, noise_mm=NOISE,
    )  # fmt: skip
    assert len(check.costs) >= 2 and min(check.costs[1:]) < check.costs[0]
    assert 10.0 < check.runner_up_separation_mm < np.inf
    # the true pose as the start: no candidate does as well elsewhere
    right = check_start(
        pts, tw.surface, tw.centre_mm, np.linalg.inv(T), found, P, basis.prior_std,
        sensor_cov=np.eye(3) * NOISE**2, noise_mm=NOISE,
    )  # fmt: skip
    assert right.runner_up_separation_mm == np.inf


def test_map_cost_counts_misfit_and_deformation(scene) -> None:  # noqa: ANN001
    from surgplan.twin.assimilation import assimilate

    organ, basis, _, T, pts = scene
    tw = Twin(basis, noise_mm=NOISE, surface=organ)
    P = np.diag(np.concatenate([np.full(3, np.radians(5.0) ** 2), np.full(3, 100.0),
                                basis.prior_std**2]))  # fmt: skip
    S = np.eye(3) * NOISE**2
    good = assimilate(pts, tw.surface, tw.centre_mm, np.linalg.inv(T), np.zeros(basis.n_modes),
                      P, sensor_cov=S)  # fmt: skip
    c_good = map_cost(pts, tw.surface, tw.centre_mm, good, S, basis.prior_std)
    # noise alone: about one unit per point (chi-square with ~N degrees of freedom)
    assert 0.5 * len(pts) < c_good < 1.6 * len(pts)
    bad = assimilate(pts, tw.surface, tw.centre_mm, _wrong(np.linalg.inv(T), tw.centre_mm, 90.0),
                     np.zeros(basis.n_modes), P, sensor_cov=S)  # fmt: skip
    assert map_cost(pts, tw.surface, tw.centre_mm, bad, S, basis.prior_std) > 3.0 * c_good


def test_twin_start_check_recorded_only_when_searched(scene) -> None:  # noqa: ANN001
    organ, basis, a, T, pts = scene
    tw = Twin(basis, noise_mm=NOISE, surface=organ)
    s = tw.update(pts)
    assert tw.start_check is not None and len(tw.start_check.costs) >= 2
    assert s.trustworthy, s.verdict.reason
    err = reg.apply_transform(s.T_tracker_model, basis.target_positions_mm(s.amplitudes))
    truth = reg.apply_transform(T, basis.target_positions_mm(a))
    assert np.max(np.linalg.norm(err - truth, axis=1)) < 3.0
    known = Twin(basis, noise_mm=NOISE, surface=organ, T_tracker_model=T)
    known.update(pts)
    assert known.start_check is None
    rigid = Twin(basis, mode="rigid", noise_mm=NOISE, surface=organ)
    rigid.update(pts)
    assert rigid.start_check is None


def test_a_patch_that_fits_two_places_is_ambiguous(scene) -> None:  # noqa: ANN001
    # A smooth cap on top of the ellipsoid, far from both bumps, fits the bottom as well:
    # the start is the top (truth) or the top turned over onto the bottom.
    organ, basis, _, _, _ = scene
    v = organ.vertices
    pts = v[np.linalg.norm(v - np.array([0.0, 0.0, 20.0]), axis=1) < 14.0]
    pts = pts + np.random.default_rng(5).normal(scale=0.3, size=pts.shape)
    tw = Twin(basis, noise_mm=0.3, surface=organ)
    flip = np.diag([1.0, -1.0, -1.0, 1.0])  # 180 degrees about x: top cap onto bottom cap
    P = np.diag(np.concatenate([np.full(3, np.radians(5.0) ** 2), np.full(3, 100.0),
                                basis.prior_std**2]))  # fmt: skip
    check = check_start(
        pts, tw.surface, tw.centre_mm, np.eye(4), (flip,), P, basis.prior_std,
        sensor_cov=np.eye(3) * 0.09, noise_mm=0.3,
    )  # fmt: skip
    assert len(check.costs) == 2
    assert max(check.costs) <= 1.1 * min(check.costs)
    assert 30.0 < check.runner_up_separation_mm < np.inf
