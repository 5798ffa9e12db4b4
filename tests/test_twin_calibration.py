"""Calibration: the true target error lies inside the predicted 95 % radius in 90-98 % of trials.

Each trial draws the truth from the twin's own prior (amplitudes from N(0, prior_std^2), the
initial pose error from the pose prior), swabs a random 30 % anterior patch with 1 mm noise
and assimilates one batch; both targets of each trial count.
"""

from __future__ import annotations

import numpy as np
import pytest

import registration as reg
from surgplan.twin.assimilation import assimilate, pose_increment
from surgplan.twin.noise import sensor_covariance
from surgplan.twin.surface import build_twin_surface
from surgplan.twin.synthetic import posed_swabs, random_pose, synthetic_basis, synthetic_organ
from surgplan.twin.targets import estimate_targets

TRIALS = 200
ROT_SD, TRANS_SD = np.radians(2.0), 3.0


def _coverage(mode: str) -> tuple[float, float]:
    organ = synthetic_organ()
    full = synthetic_basis(organ)
    basis = full.rigid() if mode == "rigid" else full
    surface = build_twin_surface(basis, organ)
    c = basis.centroid_mm
    P0 = np.diag(np.r_[np.full(3, ROT_SD**2), np.full(3, TRANS_SD**2), basis.prior_std**2])
    rng = np.random.default_rng(2026 if mode == "rigid" else 7)
    cov = sensor_covariance(1.0)
    inside, ratio = [], []
    for trial in range(TRIALS):
        a = rng.normal(size=basis.n_modes) * basis.prior_std
        T_tm = random_pose(rng)
        u = basis.surface_displacement_mm(a)
        pts = posed_swabs(organ, u, T_tm, n_points=300, noise_mm=1.0, seed=trial)
        delta = rng.normal(size=6) * np.r_[np.full(3, ROT_SD), np.full(3, TRANS_SD)]
        T0 = pose_increment(delta, c) @ np.linalg.inv(T_tm)
        res = assimilate(pts, surface, c, T0, np.zeros(basis.n_modes), P0, sensor_cov=cov)
        est = estimate_targets(basis, res.T_model_tracker, res.amplitudes, res.covariance, c)
        truth = reg.apply_transform(T_tm, basis.target_positions_mm(a))
        for t, y in zip(est, truth, strict=True):
            e = float(np.linalg.norm(t.position_tracker_mm - y))
            inside.append(e <= t.radius95_mm)
            ratio.append(e / t.radius95_mm)
    return float(np.mean(inside)), float(np.median(ratio))


@pytest.mark.parametrize("mode", ["deformable", "rigid"])
def test_radius95_is_calibrated(mode: str) -> None:
    coverage, median_ratio = _coverage(mode)
    print(f"{mode}: coverage {coverage:.3f}, median error / radius95 {median_ratio:.3f}")
    assert 0.90 <= coverage <= 0.98
