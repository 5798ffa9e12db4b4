"""Replaying a recorded live session: the timeline, the dock, and the offscreen snapshot overlay.

The session is recorded by a real :class:`~surgplan.live.LiveServerThread` (synthetic rigid
twin) fed three batches by a raw client, with a "spy" client recording what was published; the
replayed organ at each moment must equal what the server published then (float32 on the wire).
Playback is driven by an injected clock.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from surgplan.live import LiveServerThread, SessionLogError, open_session
from surgplan.live.frames import F_LPS_RAS
from surgplan.session_gltf import SessionGltfError
from surgplan.twin.synthetic import synthetic_organ
from surgplan.viewer.replay_timeline import ReplayError, ReplayTimeline, load_session_timeline
from surgplan.viewer.twin_overlay import TARGET_RGB
from tests.test_live_helpers import RawClient, config, make_case, point_msg, scan_msg, scan_points
from tests.test_viewer_live import FLIP, Spy, _make_window, _pixel, _red

#: One Xvfb per process: the display fixtures as a plugin (one definition, shared).
pytest_plugins = ["tests.viewer_display"]


class FakeClock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(case, session id, {update: published messages}) of a three-update session."""
    case = make_case(tmp_path_factory.mktemp("viewer_replay") / "case")
    session, _ = open_session(case, config("rigid"))
    with LiveServerThread(session, port=0) as srv:
        spy = Spy(srv.address)
        feeder = RawClient(srv.address)
        deadline = time.monotonic() + 10
        while len(srv.server._clients) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        batches = [scan_msg(scan_points(200, seed=1))]
        batches += [point_msg(scan_points(25, seed=s)) for s in (2, 3)]
        for i, msg in enumerate(batches, start=1):
            feeder.send(msg)
            feeder.ack()
            spy.wait(i)
            time.sleep(0.25)  # the states' times apart
        feeder.close()
        spy.close()
    session.log.end()
    return case, session.session_id, spy.updates


def _published_organ(parts: dict) -> np.ndarray:
    return parts["OrganInTracker"].points * FLIP


def _model(parts: dict, points_tracker) -> np.ndarray:
    """Published tracker points in model space (the published registration undone)."""
    T = np.linalg.inv(F_LPS_RAS @ parts["ModelToTracker"].matrix @ F_LPS_RAS)
    return np.asarray(points_tracker, np.float64) @ T[:3, :3].T + T[:3, 3]


def _published_model(parts: dict) -> np.ndarray:
    return _model(parts, _published_organ(parts))


def test_timeline_frames_are_the_published_states(recorded) -> None:
    case, sid, published = recorded
    tl = load_session_timeline(case, sid)
    assert [f.update for f in tl.frames] == [1, 2, 3]
    assert 0.0 <= tl.times[0] < tl.times[1] - 0.2 < tl.times[2] - 0.4
    for f in tl.frames:
        parts = published[f.update]
        st = json.loads(parts["TwinStatus"].text)
        # float64 from the log against float32 on the wire
        np.testing.assert_allclose(f.organ_points_mm, _published_organ(parts), rtol=0, atol=1e-4)
        np.testing.assert_array_equal(f.organ_faces, parts["OrganInTracker"].triangles)
        assert [t.radius95_mm for t in f.targets] == [t["radius95_mm"] for t in st["targets"]]
        assert f.trustworthy == st["trustworthy"] and f.reason == st["reason"]
        assert len(f.region_vertex_ids()) == st["recommendation"]["n_vertices"]
        np.testing.assert_array_equal(f.region_vertex_ids(), st["recommendation"]["vertex_ids"])
        # the twin's rest surface comes with the frame (the structures follow from it)
        np.testing.assert_allclose(f.organ_rest_mm, synthetic_organ(3).vertices, atol=1e-9)
    with pytest.raises(SessionLogError, match="no session log"):
        load_session_timeline(case, "no-such-session")


def test_playback_with_an_injected_clock(recorded) -> None:
    case, sid, _ = recorded
    clock = FakeClock()
    tl = ReplayTimeline(load_session_timeline(case, sid).frames, clock=clock)
    t1, t2, t3 = tl.times
    assert tl.frame_at(t1 - 1e-3) is None
    assert tl.frame_at(t1).update == 1 and tl.frame_at(t2 - 1e-6).update == 1
    assert tl.frame_at(t3 + 100).update == 3
    tl.seek(t1)
    tl.play()
    clock.t += (t2 - t1) / 2  # half way, real time
    assert tl.position_s == pytest.approx((t1 + t2) / 2) and tl.current().update == 1
    tl.set_speed(4.0)
    clock.t += (t2 - t1) / 8 + 1e-3  # 4x: reaches t2
    assert tl.current().update == 2
    tl.pause()
    pos = tl.position_s
    clock.t += 100.0
    assert tl.position_s == pos and not tl.playing
    assert tl.step(1).update == 3 and tl.position_s == t3
    assert tl.step(1).update == 3  # clamped at the last
    assert tl.step(-2).update == 1
    tl.play()
    clock.t += 1000.0
    assert tl.position_s == tl.duration_s and not tl.playing  # stops at the end
    tl.play()  # from the end: starts again
    assert tl.position_s == 0.0 and tl.playing
    with pytest.raises(ReplayError):
        tl.set_speed(0.0)
    with pytest.raises(ReplayError):
        ReplayTimeline([])


def test_replay_dock_scrub_step_play_speed(recorded, qtbot) -> None:
    from PySide6.QtCore import Qt

    from surgplan.viewer.live_view import ReplayController, attach_replay

    case, sid, published = recorded
    window, plotter = _make_window(qtbot)
    clock = FakeClock()
    ctl = ReplayController(window, plotter, case, sid, clock=clock, tick_ms=10)
    try:
        assert not ctl.play_button.isEnabled()  # loading off the GUI thread
        qtbot.waitUntil(lambda: ctl.ready, timeout=30_000)
        assert ctl.play_button.isEnabled() and not ctl.progress.isVisible()
        assert ctl.progress.value() == ctl.progress.maximum() == 3
        t1, t2, t3 = ctl.timeline.times
        # scrub between the 2nd and 3rd states: the organ is the 2nd publication
        ctl.slider.setValue(int(round((t2 + t3) / 2 * 1000)))
        assert ctl.shown.update == 2
        organ = ctl.overlay.actors["replay_organ"].mapper.dataset
        np.testing.assert_allclose(organ.points, _published_model(published[2]), atol=1e-4)
        assert "update 2" in ctl.time_label.text()
        qtbot.mouseClick(ctl.step_button, Qt.MouseButton.LeftButton)
        assert ctl.shown.update == 3
        assert ctl.slider.value() == int(round(t3 * 1000))
        qtbot.mouseClick(ctl.back_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(ctl.back_button, Qt.MouseButton.LeftButton)
        assert ctl.shown.update == 1
        organ = ctl.overlay.actors["replay_organ"].mapper.dataset
        np.testing.assert_allclose(organ.points, _published_model(published[1]), atol=1e-4)
        # play at 2x: the timer follows the injected clock to the end
        ctl.speed_box.setCurrentIndex(ctl.speed_box.findData(2.0))
        assert ctl.timeline.speed == 2.0
        qtbot.mouseClick(ctl.play_button, Qt.MouseButton.LeftButton)
        assert ctl.timer.isActive()
        clock.t += (t2 - t1) / 2 + 1e-3
        qtbot.waitUntil(lambda: ctl.shown.update == 2, timeout=5_000)
        qtbot.mouseClick(ctl.pause_button, Qt.MouseButton.LeftButton)
        assert not ctl.timer.isActive()
        clock.t += 100.0
        qtbot.wait(30)
        assert ctl.shown.update == 2
        qtbot.mouseClick(ctl.play_button, Qt.MouseButton.LeftButton)
        clock.t += 100.0
        qtbot.waitUntil(lambda: not ctl.timer.isActive(), timeout=5_000)
        assert ctl.shown.update == 3 and ctl.slider.value() == ctl.slider.maximum()
        assert ctl.overlay.text.startswith("TRUSTED (update 3)")
    finally:
        ctl.close()
    # the window's entry point: same dock, on the real clock
    ctl2 = attach_replay(window, plotter, case, sid)
    try:
        qtbot.waitUntil(lambda: ctl2.ready, timeout=30_000)
        assert ctl2.shown.update == 1
        qtbot.waitUntil(ctl2.dock.isVisible, timeout=5_000)
    finally:
        ctl2.close()
        plotter.close()


def test_replay_of_a_session_without_states_says_why(recorded, qtbot) -> None:
    from surgplan.viewer.live_view import attach_replay

    case, _, _ = recorded
    empty, _ = open_session(case, config("rigid"), record_in_manifest=False)
    empty.log.end()
    window, plotter = _make_window(qtbot)
    try:
        with pytest.raises(SessionLogError, match="no session log"):
            attach_replay(window, plotter, case, "missing-session")
        ctl = attach_replay(window, plotter, case, empty.session_id)
        qtbot.waitUntil(lambda: ctl.error is not None, timeout=30_000)
        assert "logged no message" in ctl.error
        assert "cannot replay session" in ctl.time_label.text()
        assert not ctl.ready and not ctl.play_button.isEnabled()
        with pytest.raises(ReplayError, match="not loaded: "):
            ctl.play()
        ctl.close()
    finally:
        plotter.close()


def test_session_state_in_an_offscreen_snapshot(recorded) -> None:
    import pyvista as pv

    from surgplan.viewer.session_overlay import add_session_state

    case, sid, published = recorded
    tl = load_session_timeline(case, sid)
    t2 = tl.times[1]
    plotter = pv.Plotter(off_screen=True, window_size=[400, 320])
    try:
        plotter.set_background("white")
        add_session_state(plotter, case, sid, t2 + 0.01)
        organ = plotter.actors["session_organ"].mapper.dataset
        np.testing.assert_allclose(organ.points, _published_model(published[2]), atol=1e-4)
        img = plotter.screenshot(return_img=True)
        st = json.loads(published[2]["TwinStatus"].text)
        tumour = _model(published[2], np.array(st["targets"][0]["position_mm"]) * FLIP)
        rgb = _pixel(plotter, img, tumour)
        assert rgb[0] - max(rgb[1], rgb[2]) > 80, rgb
        assert _red(img).sum() > 50
        sphere = plotter.actors["session_target_0"]
        assert tuple(sphere.prop.color.float_rgb) == pytest.approx(TARGET_RGB)
    finally:
        plotter.close()
    with pytest.raises(SessionGltfError, match="before session"):
        add_session_state(pv.Plotter(off_screen=True), case, sid, tl.times[0] / 2)
