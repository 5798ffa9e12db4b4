"""Where to measure next: the recommended patch shrinks the tumour's radius more than others."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import registration as reg
from surgplan.twin import Twin
from surgplan.twin.synthetic import posed_swabs, random_pose, synthetic_basis, synthetic_organ

TRIALS = 8


@pytest.fixture(scope="module")
def organ():  # noqa: ANN201
    return synthetic_organ()


def _acquire(organ, u, T, members, n, rng):  # noqa: ANN001, ANN202
    """``n`` noisy points on the patch's vertices of the true deformed organ (tracker space)."""
    pick = rng.choice(members, size=n)
    return reg.add_noise(reg.apply_transform(T, organ.vertices[pick] + u[pick]), noise_mm=1.0,
                         seed=int(rng.integers(1 << 30)))  # fmt: skip


def test_recommended_patch_beats_a_random_patch(organ) -> None:  # noqa: ANN001
    basis = synthetic_basis(organ)
    rng = np.random.default_rng(11)
    rec_r, rand_r, predicted, wins = [], [], [], 0
    for trial in range(TRIALS):
        a = rng.normal(size=basis.n_modes) * basis.prior_std
        T = random_pose(rng)
        u = basis.surface_displacement_mm(a)
        tw = Twin(basis, noise_mm=1.0, T_tracker_model=T, recommend_points=100)
        s = tw.update(posed_swabs(organ, u, T, n_points=250, noise_mm=1.0, seed=trial))
        rec = s.recommendation
        radii = tw.expected_patch_radii()
        best = int(np.argmin(radii))
        assert rec.expected_radius95_mm == pytest.approx(radii[best])
        assert rec.expected_radius95_mm <= rec.current_radius95_mm
        other = int(rng.choice(np.delete(np.arange(len(radii)), best)))
        after = []
        for p in (best, other):
            t2 = copy.deepcopy(tw)
            pts = _acquire(organ, u, T, tw.patches.members[p], 100, rng)
            after.append(t2.update(pts).target("tumour").radius95_mm)
        rec_r.append(after[0])
        rand_r.append(after[1])
        predicted.append(rec.expected_radius95_mm)
        wins += after[0] <= after[1]
    print(
        f"tumour radius95 after: recommended {np.mean(rec_r):.2f} mm, random {np.mean(rand_r):.2f}"
    )
    assert np.mean(rec_r) < np.mean(rand_r)
    assert wins >= 0.75 * TRIALS
    # The prediction ranks, it does not promise: the update adds process noise, Tukey weights
    # under 1 and points spread unlike the 24 rows standing for the patch (measured: delivered
    # radius 0-50 % above the prediction, median about 15 %).
    ratio = np.array(rec_r) / np.array(predicted)
    print(f"delivered / predicted radius: median {np.median(ratio):.2f}, max {ratio.max():.2f}")
    assert 0.8 < np.median(ratio) < 1.35


def test_recommendation_at_a_lower_rate_and_on_request(organ) -> None:  # noqa: ANN001
    basis = synthetic_basis(organ)
    rng = np.random.default_rng(5)
    a = rng.normal(size=basis.n_modes) * basis.prior_std
    T = random_pose(rng)
    u = basis.surface_displacement_mm(a)
    tw = Twin(basis, noise_mm=1.0, T_tracker_model=T, recommend_every=3)
    recs = [
        tw.update(posed_swabs(organ, u, T, n_points=150, noise_mm=1.0, seed=20 + i)).recommendation
        for i in range(4)
    ]
    assert [r is not None for r in recs] == [True, False, False, True]
    on_request = tw.recommendation()
    assert on_request == recs[-1]  # the same state gives the same recommendation
    off = Twin(basis, noise_mm=1.0, T_tracker_model=T, recommend=False)
    s = off.update(posed_swabs(organ, u, T, n_points=150, noise_mm=1.0, seed=20))
    assert s.recommendation is None and off.recommendation() is not None
