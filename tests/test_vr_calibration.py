"""The headset-to-tracker calibration: a known transform recovered, bad pairs refused, stored."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from registration.paired import expected_fre
from surgplan.vr_calibration import (
    CALIBRATION_RELPATH,
    XrCalibrationError,
    compute_calibration,
    load_calibration,
    store_calibration,
)
from tests.test_live_helpers import make_case

T_XR_TRACKER = np.eye(4)
T_XR_TRACKER[:3, :3] = Rotation.from_euler("xyz", [12.0, -35.0, 80.0], degrees=True).as_matrix()
T_XR_TRACKER[:3, 3] = [250.0, -1400.0, 620.0]


def _pairs(n: int = 6, noise_mm: float = 0.0, seed: int = 3):
    rng = np.random.default_rng(seed)
    tracker = rng.uniform(-150, 150, (n, 3)) + [0, 0, -900]
    headset = tracker @ T_XR_TRACKER[:3, :3].T + T_XR_TRACKER[:3, 3]
    return headset + rng.normal(0, noise_mm, headset.shape), tracker


def test_a_known_transform_is_recovered_and_noise_shows_in_the_fre() -> None:
    exact = compute_calibration(*_pairs())
    np.testing.assert_allclose(exact.T_xr_tracker, T_XR_TRACKER, atol=1e-9)
    assert exact.fre_mm < 1e-9 and exact.n_points == 6
    noisy = compute_calibration(*_pairs(n=12, noise_mm=1.0))
    # 1 mm per axis is a 3-D FLE of sqrt(3) mm; E[FRE^2] = (1 - 2/N) FLE^2 (Fitzpatrick)
    assert noisy.fre_mm == pytest.approx(expected_fre(np.sqrt(3.0), 12), rel=0.3)
    assert np.abs(noisy.T_xr_tracker[:3, 3] - T_XR_TRACKER[:3, 3]).max() < 3.0


def test_pairs_that_do_not_correspond_are_refused_with_the_figures() -> None:
    headset, tracker = _pairs()
    headset[[0, 1]] = headset[[1, 0]]  # a swapped pair
    with pytest.raises(XrCalibrationError, match=r"calibration refused: RMS residual \d+\.\d+ mm"):
        compute_calibration(headset, tracker)
    with pytest.raises(XrCalibrationError, match="do not correspond"):
        compute_calibration(_pairs()[0] / 1000.0, tracker)  # headset points in metres
    with pytest.raises(XrCalibrationError, match="at least 4 point pairs, got 3"):
        compute_calibration(headset[:3], tracker[:3])
    line = np.outer(np.arange(5.0), [1.0, 2.0, 3.0])
    with pytest.raises(XrCalibrationError, match="degenerate: .*collinear"):
        compute_calibration(line, line)
    nan = tracker.copy()
    nan[2, 1] = np.nan
    with pytest.raises(XrCalibrationError, match="NaN"):
        compute_calibration(headset, nan)
    with pytest.raises(XrCalibrationError, match=r"same order, got \(6, 3\) and \(5, 3\)"):
        compute_calibration(headset, tracker[:5])


def test_stored_in_the_case_and_read_back(tmp_path) -> None:
    case = make_case(tmp_path / "case")
    assert load_calibration(case) is None
    calibration = compute_calibration(*_pairs(noise_mm=0.5))
    store_calibration(case, calibration)
    back = load_calibration(case)
    np.testing.assert_array_equal(back.T_xr_tracker, calibration.T_xr_tracker)
    assert back.fre_mm == calibration.fre_mm
    manifest = json.loads((case / "case.json").read_text())
    assert manifest["artifacts"]["calibration/xr_tracker"]["path"] == CALIBRATION_RELPATH
    stored = json.loads((case / CALIBRATION_RELPATH).read_text())
    stored["T_xr_tracker"][0][0] = 2.0  # no longer a rotation
    (case / CALIBRATION_RELPATH).write_text(json.dumps(stored))
    with pytest.raises(XrCalibrationError, match="not a 4x4 rigid transform"):
        load_calibration(case)


def test_cli_stores_it_or_refuses_with_exit_2_leaving_the_case_as_it_was(tmp_path) -> None:
    case = make_case(tmp_path / "case")
    headset, tracker = _pairs(noise_mm=0.3)
    np.savetxt(tmp_path / "headset.csv", headset, delimiter=",")
    np.savetxt(tmp_path / "tracker.csv", tracker, delimiter=",")

    def run(*args: str) -> subprocess.CompletedProcess:
        code = "from surgplan.cli import main; main()"
        return subprocess.run(
            [sys.executable, "-c", code, "vr-calibrate", str(case), *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    done = run("--headset-points", str(tmp_path / "headset.csv"),
               "--tracker-points", str(tmp_path / "tracker.csv"), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    np.testing.assert_allclose(report["T_xr_tracker"], T_XR_TRACKER, atol=1.0)
    before = (case / "case.json").read_bytes(), (case / CALIBRATION_RELPATH).read_bytes()
    swapped = headset.copy()
    swapped[[0, 3]] = swapped[[3, 0]]
    np.savetxt(tmp_path / "swapped.csv", swapped, delimiter=",")
    refused = run("--headset-points", str(tmp_path / "swapped.csv"),
                  "--tracker-points", str(tmp_path / "tracker.csv"))  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: calibration refused: RMS residual")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert ((case / "case.json").read_bytes(), (case / CALIBRATION_RELPATH).read_bytes()) == before
