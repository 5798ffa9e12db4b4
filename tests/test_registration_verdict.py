import numpy as np
import pytest

from registration import VerdictCheck
from registration.model import load_surface
from registration.realtime import RealTimeRegistrar
from registration.reliability import systematic_residual
from registration.sensors import add_noise, simulate_swabs
from registration.surface import register_surface


@pytest.fixture(scope="module")
def liver(liver_models_dir):
    return load_surface(liver_models_dir / "liver.vtk")


def test_few_points_are_insufficient_evidence(liver):
    rng = np.random.default_rng(11)
    pts = add_noise(
        simulate_swabs(liver, n_points=100, coverage=0.3, seed=rng), noise_mm=1.0, seed=rng
    )
    res = register_surface(pts, liver, T_init=np.eye(4), noise_mm=1.0)
    assert not res.trustworthy and res.verdict.checks == (VerdictCheck.TOO_FEW_POINTS,)
    assert res.reason.endswith("insufficient evidence")
    assert res.inlier_fraction > 0.95  # the fit itself is fine: only the evidence is short


def test_realtime_verdict_reuses_icp_residuals(liver):
    rng = np.random.default_rng(12)
    pts = add_noise(
        simulate_swabs(liver, n_points=600, coverage=0.3, seed=rng), noise_mm=1.0, seed=rng
    )
    full = register_surface(pts, liver, T_init=np.eye(4), noise_mm=1.0)
    rt = RealTimeRegistrar(liver, np.eye(4), noise_mm=1.0).update(pts)
    assert full.trustworthy and rt.trustworthy, (full.reason, rt.reason)
    assert abs(rt.inlier_rms_mm - full.inlier_rms_mm) < 0.05
    assert abs(rt.systematic_residual_mm - full.systematic_residual_mm) < 0.08


def test_subsampled_systematic_residual_estimates_the_full_one():
    rng = np.random.default_rng(13)
    xy = rng.uniform(0, 100, size=(2000, 2))
    pts = np.column_stack([xy, np.zeros(len(xy))])
    noise = rng.normal(size=len(pts))
    full = systematic_residual(pts, noise)
    sub = systematic_residual(pts, noise, max_queries=250)
    assert full == pytest.approx(1 / 3, rel=0.15) and sub == pytest.approx(full, rel=0.15)
    smooth = np.sin(pts[:, 0] / 20.0)  # a systematic misfit survives the averaging
    assert systematic_residual(pts, smooth, max_queries=250) > 0.6
