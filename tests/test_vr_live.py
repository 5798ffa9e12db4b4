"""The live twin in VR: scenes from a real ``surgplan live`` server over a real socket.

A synthetic rigid twin session on an empty case; a raw OpenIGTLink client feeds points, a spy
client records what the server published, and :class:`surgplan.vr_live.LiveVrScenes` (the
headset's client) must show exactly that: the organ brought back to model space, placed by
``T_xr_tracker @ T_tracker_model``, the targets' 95 % spheres, the recommended region, and
nothing but a warning when the verdict is untrustworthy.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from surgplan.live import LiveServerThread, open_session
from surgplan.live.frames import F_LPS_RAS
from surgplan.vr_calibration import XrCalibration, store_calibration
from tests.test_live_helpers import RawClient, config, make_case, point_msg, scan_msg, scan_points
from tests.test_viewer_live import Spy, _status

FLIP = np.array([-1.0, -1.0, 1.0])
T_XR_TRACKER = np.array(
    [[0.0, -1.0, 0.0, 100.0], [0.0, 0.0, 1.0, -300.0], [-1.0, 0.0, 0.0, -700.0], [0, 0, 0, 1]]
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    case = make_case(tmp_path_factory.mktemp("vr_live") / "case")
    store_calibration(case, XrCalibration(T_XR_TRACKER, 0.5, 0.8, 6))
    session, _ = open_session(case, config("rigid"))
    srv = LiveServerThread(session, port=0)
    srv.start()
    yield case, srv
    srv.stop()
    session.log.close()


def _apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ T[:3, :3].T + T[:3, 3]


def _next_scene(scenes, seen: int, timeout_s: float = 30.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        scene = scenes(0.0)
        if scenes.frames_seen > seen:
            return scene
        time.sleep(0.01)
    raise TimeoutError("no new live update reached the VR client")


def _wait_clients(srv, n: int) -> None:
    end = time.monotonic() + 10
    while len(srv.server._clients) < n:
        assert time.monotonic() < end, "clients did not connect"
        time.sleep(0.01)


def test_scenes_show_the_published_twin_placed_by_the_calibration_then_hide_it(server) -> None:
    from surgplan.vr_live import LiveVrScenes

    case, srv = server
    host, port = srv.address
    scenes = LiveVrScenes(case, host, port, T_XR_TRACKER)
    spy, feeder = Spy(srv.address), RawClient(srv.address)
    try:
        waiting = scenes(0.0)
        assert not waiting.trusted and waiting.visible_meshes() == ()
        assert waiting.warning.startswith("TWIN HIDDEN: waiting for the live session at")
        _wait_clients(srv, 3)
        feeder.send(scan_msg(scan_points(200, seed=1)))
        parts = spy.wait(1)
        scene = _next_scene(scenes, 0)
        status = _status(parts)
        assert scene.trusted and status["trustworthy"]
        T = F_LPS_RAS @ parts["ModelToTracker"].matrix @ F_LPS_RAS
        np.testing.assert_allclose(scene.T_world_twin, T_XR_TRACKER @ T, atol=1e-9)
        organ = next(m for m in scene.meshes if m.layer == "organ")
        published = parts["OrganInTracker"].points * FLIP
        # in the headset's world the organ lies where the tracker saw it, through the calibration
        np.testing.assert_allclose(
            _apply(scene.T_world_twin, np.asarray(organ.mesh.points)),
            _apply(T_XR_TRACKER, published), atol=1e-6,
        )  # fmt: skip
        spheres = [m for m in scene.meshes if m.layer == "error_spheres"]
        assert len(spheres) == len(status["targets"]) > 0
        for sphere, target in zip(spheres, status["targets"], strict=True):
            centre = _apply(np.linalg.inv(T), np.array(target["position_mm"]) * FLIP)
            radii = np.linalg.norm(np.asarray(sphere.mesh.points) - centre, axis=1)
            np.testing.assert_allclose(radii, target["radius95_mm"], rtol=1e-6)
        region = next(m for m in scene.meshes if m.layer == "recommended_region")
        faces = parts["OrganInTracker"].triangles
        ids = status["recommendation"]["vertex_ids"]
        expected = faces[np.isin(faces, ids).all(axis=1)]
        np.testing.assert_array_equal(region.mesh.faces.reshape(-1, 4)[:, 1:], expected)
        assert scene.text.startswith("TRUSTED (update 1)")
        assert scene.state_received_s is not None and scene.state_received_s <= time.perf_counter()

        rng = np.random.default_rng(0)  # outliers: the verdict hides the twin
        feeder.send(point_msg(rng.normal(0.0, 100.0, (80, 3))))
        status3 = _status(spy.wait(2))
        hidden = _next_scene(scenes, 1)
        assert not status3["trustworthy"] and not hidden.trusted
        assert hidden.visible_meshes() == ()
        assert hidden.warning.startswith("TWIN HIDDEN: UNTRUSTED (update 2): ")
        assert status3["reason"] in hidden.warning
    finally:
        feeder.close()
        spy.close()
        scenes.close()


def test_simulated_headset_follows_the_live_session(server, tmp_path) -> None:
    """``run_vr(..., backend="simulated", live=...)``: the organ is seen in both eyes."""
    import threading

    from PIL import Image

    from surgplan.vr_app import run_vr

    case, srv = server
    host, port = srv.address
    feeder = RawClient(srv.address)

    def feed() -> None:
        _wait_clients(srv, 2)
        feeder.send(scan_msg(scan_points(200, seed=5)))

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        report = run_vr(case, backend="simulated", live=f"{host}:{port}", frames=3,
                        size=(128, 128), out_dir=tmp_path)  # fmt: skip
    finally:
        thread.join(10)
        feeder.close()
    assert report["mode"] == "live" and report["live_updates_shown"] >= 1
    assert report["ended_by"] == "exit" and report["stats"]["rendered_frames"] == 3
    assert report["stats"]["update_to_submit_ms"]["max"] > 0
    for path in report["written"][-2:]:
        image = np.asarray(Image.open(path).convert("RGB")).astype(int)
        organ_like = (image[..., 0] > 90) & (image[..., 0] > image[..., 2] + 30)
        assert organ_like.sum() > 200, path  # the organ's colour fills part of each eye
