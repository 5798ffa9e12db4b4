"""The twin warm-up (surgplan.twin.warmup): one-off costs paid early, results unchanged."""

from __future__ import annotations

import numpy as np

from surgplan.twin import Twin
from surgplan.twin.synthetic import posed_swabs, random_pose, synthetic_basis, synthetic_organ
from surgplan.twin.warmup import precompile, warm_up_twin


def test_a_warmed_twin_gives_the_same_states_as_a_cold_one() -> None:
    organ_cold, organ_warm = synthetic_organ(3), synthetic_organ(3)  # separate grid caches
    basis = synthetic_basis(organ_cold)
    rng = np.random.default_rng(2)
    a = rng.normal(size=basis.n_modes) * basis.prior_std
    T = random_pose(rng)
    cold = Twin(basis, noise_mm=1.0, surface=organ_cold, T_tracker_model=T)
    warm = Twin(basis, noise_mm=1.0, surface=organ_warm, T_tracker_model=T)
    warm_up_twin(warm)
    assert warm.state is None and warm._P is None  # no update was made
    assert any(k[0] == "cvgrid" for k in organ_warm._cache if isinstance(k, tuple))
    u = basis.surface_displacement_mm(a)
    for seed in range(3):
        pts = posed_swabs(organ_cold, u, T, n_points=300, noise_mm=1.0, seed=seed)
        s_cold, s_warm = cold.update(pts), warm.update(pts)
        assert np.array_equal(s_cold.T_tracker_model, s_warm.T_tracker_model)
        assert np.array_equal(s_cold.amplitudes, s_warm.amplitudes)
        assert np.array_equal(s_cold.covariance, s_warm.covariance)
        assert s_cold.verdict.reason == s_warm.verdict.reason


def test_precompile_runs_once_per_process() -> None:
    from surgplan.twin import warmup

    precompile()
    assert warmup._WARMED == [True]
    precompile()  # a second call does nothing
    assert warmup._WARMED == [True]
