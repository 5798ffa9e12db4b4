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


def test_every_failed_check_is_recorded_with_its_value_and_the_reason_format_is_kept():
    from registration import ReliabilityCriteria, parse_reason
    from registration.reliability import assess

    verdict = assess(
        ReliabilityCriteria(),
        n_points=150,
        inlier_fraction=0.5,
        inlier_rms_mm=3.0,
        noise_mm=1.0,
        weakest_constraint=0.001,
        runner_up_separation_mm=42.0,
        systematic_mm=1.0,
    )
    assert not verdict.trustworthy
    assert verdict.checks == tuple(VerdictCheck)[:6]  # all six, in order
    assert [(f.value, f.threshold) for f in verdict.failed_checks] == [
        (150, 200),
        (0.5, 0.85),
        (3.0, pytest.approx(1.55)),
        (1.0, pytest.approx(0.47)),
        (0.001, 0.01),
        (42.0, 10.0),
    ]
    # The CLI's "reason" string, exactly as before the checks became data.
    assert verdict.reason == (
        "too few points to tell (150 < 200): insufficient evidence; "
        "too few inliers (50% < 85%): outliers, wrong organ or wrong local minimum; "
        "inlier RMS 3.00 mm above 1.55 mm expected from 1 mm noise: shape mismatch or wrong "
        "local minimum; "
        "systematic residual 1.00 mm above 0.47 mm: the points do not have the model's shape "
        "(wrong or mirrored organ, deformation, wrong minimum); "
        "pose poorly constrained (weakest motion constrained by 0.001 of points < 0.01): points "
        "nearly planar or sphere-like; "
        "ambiguous: a pose 42 mm away fits nearly as well"
    )
    assert parse_reason(verdict.reason) == verdict.checks
    ok = assess(
        ReliabilityCriteria(),
        n_points=500,
        inlier_fraction=0.99,
        inlier_rms_mm=1.0,
        noise_mm=1.0,
        weakest_constraint=0.05,
    )
    assert ok.trustworthy and ok.reason == "ok" and parse_reason("ok") == ()
    with pytest.raises(ValueError, match="not a verdict message"):
        parse_reason("looks fine to me")
