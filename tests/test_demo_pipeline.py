"""The demo end to end on the phantom: Dice targets, closed surfaces, picture, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from surgplan.cli import cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(
        cli, ["demo", "--out", str(out), "--no-liver-models", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("structure", "target"), [("liver", 0.95), ("tumour", 0.85), ("vessels", 0.75)]
)
def test_phantom_dice(demo: dict, structure: str, target: float) -> None:
    assert demo["dice"][structure] >= target


def test_surfaces_closed_manifold_and_volume_faithful(demo: dict) -> None:
    case = json.loads((Path(demo["case"]) / "case.json").read_text())
    assert set(case["surfaces"]) == {"liver", "tumour", "vessels", "bone"}
    for name, surface in case["surfaces"].items():
        assert surface["is_closed"] and surface["is_manifold"], name
        error = abs(surface["volume_ml"] - surface["label_volume_ml"]) / surface["label_volume_ml"]
        assert error <= 0.03, (name, error)


def test_volume_mesh_has_liver_and_tumour_regions(demo: dict) -> None:
    volume = demo["volume_mesh"]
    assert set(volume["regions"]) == {"liver", "tumour"}
    assert Path(volume["path"]).is_file() and Path(volume["msh_path"]).is_file()


def test_picture_shows_the_twin(demo: dict) -> None:
    pixels = np.asarray(Image.open(demo["picture"]).convert("RGB"), dtype=float)
    assert pixels.shape[0] >= 500 and pixels.shape[1] >= 500
    not_white = np.any(pixels < 240, axis=2).mean()
    assert 0.05 < not_white < 0.9  # something drawn, not an empty or solid frame
    yellow = (pixels[..., 0] > 200) & (pixels[..., 1] > 170) & (pixels[..., 2] < 90)
    assert yellow.sum() > 200  # the tumour is visible through the translucent liver


def test_report_lists_volumes_and_dice(demo: dict) -> None:
    html = Path(demo["report"]).read_text()
    assert '<img src="data:image/png;base64,' in html
    for name, score in demo["dice"].items():
        assert name in html and f"{score:.3f}" in html
    assert "PHANTOM" not in html and "SP-000123" not in html


def test_retraction_moves_the_liver_by_the_retractor_lift(demo: dict) -> None:
    retraction = demo["retraction"]
    # the retractor patch prescribes a 15 mm lift at its centre; elsewhere the liver follows less
    assert 14.9 <= retraction["max_displacement_mm"] <= 16.0
    assert retraction["max_von_mises_kpa"] > 0.1
    case = Path(demo["case"])
    assert (case / retraction["path"]).is_file()
    assert "fe_result/retraction" in json.loads((case / "case.json").read_text())["artifacts"]
    assert Path(retraction["picture"]).stat().st_size > 20_000


def test_simulated_registration_finds_the_tumour_and_flags_outliers(demo: dict) -> None:
    from registration import VerdictCheck, parse_reason
    from registration.io import read_itk_transform, read_slicer_markups

    reg = demo["registration"]
    assert reg["global"]["trustworthy"], reg["global"]["reason"]
    assert reg["global"]["tre_tumour_mm"] < 2.0
    assert reg["tracking"]["trusted"] == reg["tracking"]["updates"] == 30
    assert reg["tracking"]["max_tre_tumour_mm"] < 2.0
    assert not reg["outliers"]["trustworthy"]
    assert VerdictCheck.LOW_INLIER_FRACTION in parse_reason(reg["outliers"]["reason"])
    points, _ = read_slicer_markups(reg["markups"])
    assert points.shape == (reg["points"], 3)
    T = read_itk_transform(reg["transform"])
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9)
    html = Path(demo["report"]).read_text()
    assert "Intraoperative registration (simulated)" in html and "T_model_tracker.tfm" in html


def test_intraop_stream_was_acknowledged_logged_and_scored_per_batch(demo: dict) -> None:
    from surgplan.intraop_demo import read_recording
    from surgplan.live import decode_message
    from surgplan.live.log import SessionLog, session_path

    io = demo["intraop"]
    messages = read_recording(io["recording"])
    assert len(messages) == io["batches"] == 8
    sizes = [len(decode_message(m)[1].positions) for m in messages]
    assert sizes == [io["batch_points"]] * 8
    assert io["points_per_batch"] == list(np.cumsum(sizes))
    for mode in ("rigid", "deformable"):
        s = io["sessions"][mode]
        assert s["messages_sent"] == s["acks"] == s["logged"] == s["updates"] == 8, mode
        log = SessionLog.open(session_path(io["case"], s["session"]))
        try:
            assert len(log.message_seqs()) == 8
            assert sorted(log.raw_messages().values()) == sorted(messages)  # bytes as recorded
        finally:
            log.close()
        assert len(s["tre_mm"]) == len(s["radius95_mm"]) == 8
        assert np.all(np.isfinite(s["tre_mm"])) and np.all(np.asarray(s["radius95_mm"]) > 0)
        assert s["published_transform_max_error"] < 1e-3  # float32 on the wire
        assert s["published_radius_max_error"] < 1e-3
        assert s["replay_max_difference"] < 1e-9
    sessions = io["sessions"]
    rigid, deform = sessions["rigid"]["tre_mm"][-1], sessions["deformable"]["tre_mm"][-1]
    assert io["deformable_beats_rigid"] == (deform < rigid)
    assert io["passed"]


def test_replay_of_the_demo_session_reproduces_the_published_states(demo: dict) -> None:
    io = demo["intraop"]
    for mode in ("rigid", "deformable"):
        s = io["sessions"][mode]
        result = CliRunner().invoke(
            cli, ["replay", io["case"], s["session"], "--json"], catch_exceptions=False
        )
        assert result.exit_code == 0, result.stderr
        states = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert len(states) == 8
        assert all(st["status"] == st["logged_status"] == "state" for st in states)
        assert max(st["difference"] for st in states) < 1e-9
        from surgplan.twin import TwinState

        last = TwinState.from_dict(states[-1]["state"])
        np.testing.assert_allclose(
            last.T_tracker_model, np.asarray(s["published_T_tracker_model"]), atol=1e-3
        )
        assert last.target("tumour_centroid").radius95_mm == pytest.approx(
            s["radius95_mm"][-1], rel=1e-9
        )


def test_intraop_pictures_and_report_section(demo: dict) -> None:
    io = demo["intraop"]
    for key in ("convergence_picture", "overlay_picture"):
        pixels = np.asarray(Image.open(io[key]).convert("RGB"), dtype=float)
        assert pixels.shape[0] >= 400 and pixels.shape[1] >= 600, key
        not_white = np.any(pixels < 240, axis=2).mean()
        assert 0.03 < not_white < 0.95, (key, not_white)
    pixels = np.asarray(Image.open(io["convergence_picture"]).convert("RGB"), dtype=int)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
    blue = (pixels[..., 2] > 120) & (pixels[..., 0] < 90)
    assert red.sum() > 100 and blue.sum() > 100  # both modes' curves drawn
    html = Path(demo["report"]).read_text()
    assert "Live session: the twin following a deformed patient (simulated)" in html
    for mode in ("rigid", "deformable"):
        assert f"{io['sessions'][mode]['tre_mm'][-1]:.2f}" in html
    assert ("does NOT beat" in html) == (not io["deformable_beats_rigid"])
