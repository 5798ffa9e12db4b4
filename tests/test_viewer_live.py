"""The viewer follows a real live server: frames, overlay, verdict, reconnection, bad input.

The overlay draws in model (CT) space: the published tracker geometry mapped back with the
published registration; the case's structures follow the organ's deformation (a known linear
field offscreen, the real twin's deformation end to end).

A real :class:`~surgplan.live.LiveServerThread` (synthetic rigid twin on an empty case, as in
``tests/test_live_server.py``) is fed tracked points by a raw test client; a second raw client
("spy") records what the server published, which the viewer's actors must equal. The window
is a plain ``QMainWindow`` with a ``pyvistaqt.QtInteractor`` under a private Xvfb display
(``tests/viewer_display.py``). Malformed streams and coalescing are checked against a scripted
socket server with :class:`~surgplan.viewer.live_client.LiveClient` alone (no Qt).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

from surgplan.live import LiveServerThread, open_session
from surgplan.live.codec import (
    PointMessage,
    PolyDataMessage,
    StringMessage,
    TransformMessage,
    encode_message,
)
from surgplan.live.frames import F_LPS_RAS
from surgplan.twin.synthetic import synthetic_organ
from surgplan.viewer.live_client import LiveClient
from surgplan.viewer.live_frame import LiveFrameError, frame_from_messages
from surgplan.viewer.twin_overlay import TARGET_RGB, UNTRUSTED_RGB
from tests.test_live_helpers import RawClient, config, make_case, point_msg, scan_msg, scan_points

#: One Xvfb per process: the display fixtures as a plugin (one definition, shared).
pytest_plugins = ["tests.viewer_display"]

FLIP = np.array([-1.0, -1.0, 1.0])


# --- helpers ------------------------------------------------------------------------------------


class Spy:
    """A raw client recording each published update: {update: {device: message}}."""

    def __init__(self, address):
        self.client = RawClient(address)
        self.updates: dict[int, dict] = {}
        self._parts: dict = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while True:
                got = self.client.recv()
                if got is None:
                    return
                h, m = got
                self._parts[h.device_name] = m
                if h.device_name == "TwinStatus":
                    self.updates[json.loads(m.text)["update"]] = self._parts
                    self._parts = {}
        except OSError:
            return

    def wait(self, update: int, timeout_s: float = 30.0) -> dict:
        end = time.monotonic() + timeout_s
        while update not in self.updates:
            if time.monotonic() > end:
                raise TimeoutError(f"update {update} not published")
            time.sleep(0.01)
        return self.updates[update]

    def close(self):
        self.client.close()


def _status(parts: dict) -> dict:
    return json.loads(parts["TwinStatus"].text)


def _make_window(qtbot):
    from PySide6.QtWidgets import QMainWindow
    from pyvistaqt import QtInteractor

    window = QMainWindow()
    plotter = QtInteractor(window)
    window.setCentralWidget(plotter.interactor)
    window.resize(640, 520)
    window.show()
    qtbot.addWidget(window)
    return window, plotter


def _pixel(plotter, img: np.ndarray, world) -> np.ndarray:
    """RGB of the screenshot at the projection of the world point (mm)."""
    import vtk

    c = vtk.vtkCoordinate()
    c.SetCoordinateSystemToWorld()
    c.SetValue(*map(float, world))
    x, y = c.GetComputedDisplayValue(plotter.renderer)
    h = img.shape[0]
    return img[h - 1 - int(round(y)), int(round(x)), :3].astype(int)


def _to_model(T_tracker_model: np.ndarray, points_tracker) -> np.ndarray:
    """Tracker points (N, 3) or (3,) mapped into model space."""
    T = np.linalg.inv(T_tracker_model)
    p = np.asarray(points_tracker, np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


def _red(img: np.ndarray) -> np.ndarray:
    """Pixels of the target's red hue, the verdict text's rows (top 15 %) left out."""
    rgb = img[int(0.15 * img.shape[0]) :, :, :3].astype(int)
    return rgb[..., 0] - np.maximum(rgb[..., 1], rgb[..., 2]) > 80


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    case = make_case(tmp_path_factory.mktemp("viewer_live") / "case")
    session, _ = open_session(case, config("rigid"))
    srv = LiveServerThread(session, port=0)
    srv.start()
    yield case, srv, session
    srv.stop()
    session.log.close()


@pytest.fixture
def window(qtbot):
    window, plotter = _make_window(qtbot)
    yield window, plotter
    plotter.close()


# --- following the real server -------------------------------------------------------------------


def test_follow_overlay_targets_region_screenshot_then_untrusted(server, window, qtbot) -> None:
    from surgplan.viewer.live_view import attach_live

    case, srv, _ = server
    win, plotter = window
    ctl = attach_live(win, plotter, case, *srv.address)
    spy = Spy(srv.address)
    feeder = RawClient(srv.address)
    try:
        qtbot.waitUntil(lambda: "connected" in ctl.status_text, timeout=10_000)
        qtbot.waitUntil(lambda: len(srv.server._clients) == 3, timeout=10_000)
        feeder.send(scan_msg(scan_points(200, seed=1)))
        n1 = feeder.ack()["seq"]
        assert n1 >= 1
        parts = spy.wait(1)
        qtbot.waitUntil(lambda: ctl.overlay.frame is not None, timeout=30_000)
        st = _status(parts)
        assert st["trustworthy"] and st["frame"] == "tracker_RAS"
        # the organ actor shows the published polydata (RAS on the wire, LPS in the viewer)
        # brought back to model space by the published registration
        organ = ctl.overlay.actors["live_organ"].mapper.dataset
        T = F_LPS_RAS @ parts["ModelToTracker"].matrix @ F_LPS_RAS
        np.testing.assert_allclose(ctl.overlay.frame.T_tracker_model, T, atol=0)
        published = _to_model(T, parts["OrganInTracker"].points * FLIP)
        np.testing.assert_allclose(np.asarray(organ.points), published, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(
            np.asarray(organ.faces).reshape(-1, 4)[:, 1:], parts["OrganInTracker"].triangles
        )
        # rigid twin: model space is where the synthetic organ rests (float32 on the wire)
        rest = synthetic_organ(3).vertices
        np.testing.assert_allclose(np.asarray(organ.points), rest, rtol=0, atol=1e-3)
        # one predicted-error sphere per target, of the published radius about its position
        for i, t in enumerate(st["targets"]):
            sphere = ctl.overlay.actors[f"live_target_{i}"].mapper.dataset
            centre = _to_model(T, np.array(t["position_mm"]) * FLIP)
            r = np.linalg.norm(np.asarray(sphere.points) - centre, axis=1)
            np.testing.assert_allclose(r, t["radius95_mm"], rtol=1e-6)
            assert tuple(
                ctl.overlay.actors[f"live_target_{i}"].prop.color.float_rgb
            ) == pytest.approx(TARGET_RGB)
        # the recommended region: exactly the published patch's vertex ids
        rec = st["recommendation"]
        ids = ctl.overlay.frame.region_vertex_ids()
        assert ctl.overlay.frame.region.exact
        assert len(ids) == rec["n_vertices"] > 0
        np.testing.assert_array_equal(ids, rec["vertex_ids"])
        region = ctl.overlay.actors["live_region"].mapper.dataset
        assert region.n_cells > 0
        faces = parts["OrganInTracker"].triangles
        expected = faces[np.isin(faces, ids).all(axis=1)]
        np.testing.assert_array_equal(np.asarray(region.faces).reshape(-1, 4)[:, 1:], expected)
        assert ctl.overlay.text.startswith("TRUSTED (update 1)")
        assert "TRUSTED" in ctl.verdict_label.text()
        # screenshot: the target's colour where the target projects, on a grey-free background
        qtbot.wait(50)
        img = plotter.screenshot(return_img=True)
        tumour = _to_model(T, np.array(st["targets"][0]["position_mm"]) * FLIP)
        rgb = _pixel(plotter, img, tumour)
        assert rgb[0] - max(rgb[1], rgb[2]) > 80, rgb
        assert _red(img).sum() > 100
        corner = img[5, -5, :3].astype(int)
        assert abs(corner[0] - corner[1]) < 10, corner  # the background is not red

        # a second batch moves the organ: the actor shows the new publication
        feeder.send(point_msg(scan_points(30, seed=2)))
        parts2 = spy.wait(2)
        qtbot.waitUntil(lambda: ctl.overlay.frame.update == 2, timeout=30_000)
        T2 = F_LPS_RAS @ parts2["ModelToTracker"].matrix @ F_LPS_RAS
        assert np.abs(T2 - T).max() > 1e-6  # the registration did move
        published2 = _to_model(T2, parts2["OrganInTracker"].points * FLIP)
        organ = ctl.overlay.actors["live_organ"].mapper.dataset
        np.testing.assert_allclose(np.asarray(organ.points), published2, rtol=0, atol=1e-6)

        # outliers: an untrusted fit greys the overlay out and the text says why
        rng = np.random.default_rng(0)
        feeder.send(point_msg(rng.normal(0.0, 100.0, (80, 3))))
        parts3 = spy.wait(3)
        st3 = _status(parts3)
        assert not st3["trustworthy"]
        qtbot.waitUntil(lambda: ctl.overlay.frame.update == 3, timeout=30_000)
        for name, actor in ctl.overlay.actors.items():
            if name != "live_verdict":
                assert tuple(actor.prop.color.float_rgb) == pytest.approx(UNTRUSTED_RGB), name
        assert ctl.overlay.text.startswith("UNTRUSTED (update 3): ")
        assert st3["reason"] in ctl.overlay.text
        assert st3["reason"] in ctl.verdict_label.text()
        qtbot.wait(50)
        img = plotter.screenshot(return_img=True)
        assert _red(img).sum() == 0  # no target colour left anywhere in the 3D view
    finally:
        feeder.close()
        spy.close()
        ctl.close()
    assert "stopped" in ctl.client.state.state
    assert ctl.client.stats.malformed == 0


def test_server_drop_reconnect_resume(tmp_path, window, qtbot) -> None:
    from surgplan.viewer.live_view import attach_live

    case = make_case(tmp_path / "case")
    session, _ = open_session(case, config("rigid"))
    srv = LiveServerThread(session, port=0)
    srv.start()
    host, port = srv.address
    win, plotter = window
    ctl = attach_live(win, plotter, case, host, port)
    srv2 = None
    try:
        qtbot.waitUntil(lambda: "connected" in ctl.status_text, timeout=10_000)
        feeder = RawClient(srv.address)
        feeder.send(scan_msg(scan_points(200, seed=1)))
        feeder.ack()
        qtbot.waitUntil(lambda: ctl.overlay.frame is not None, timeout=30_000)
        feeder.close()
        srv.stop()  # the session drops
        session.log.close()
        qtbot.waitUntil(lambda: "reconnecting" in ctl.status_text, timeout=10_000)
        first = next(s for s in ctl.states if s.state == "reconnecting")
        assert first.reason == "the server closed the connection" and first.attempt == 1
        qtbot.waitUntil(lambda: "connection refused" in ctl.status_text.lower(), timeout=10_000)
        assert "dropped (the server closed the connection)" in ctl.status_text
        assert ctl.client.stats.connections == 1
        # the server comes back on the same port (the session resumed): frames resume
        resumed, _ = open_session(case, resume=session.session_id)
        srv2 = LiveServerThread(resumed, host=host, port=port)
        srv2.start()
        qtbot.waitUntil(lambda: "live: connected" in ctl.status_text, timeout=15_000)
        assert ctl.client.stats.connections == 2
        qtbot.waitUntil(lambda: len(srv2.server._clients) == 1, timeout=10_000)
        feeder = RawClient(srv2.address)
        feeder.send(point_msg(scan_points(20, seed=7)))
        feeder.ack()
        qtbot.waitUntil(lambda: ctl.overlay.frame.update == 2, timeout=30_000)
        feeder.close()
        assert ctl.overlay.frame.trustworthy
    finally:
        ctl.close()
        if srv2 is not None:
            srv2.stop()
            srv2.server.session.log.close()


# --- the client alone against a scripted server ---------------------------------------------------


def _status_msg(update: int, **extra) -> bytes:
    d = {"update": update, "status": "pending", "frame": "tracker_LPS", "trustworthy": False}
    d.update(reason="waiting", **extra)
    return encode_message(StringMessage("TwinStatus", json.dumps(d)))


class ScriptedServer:
    """Accepts connections; sends each connection the next script (bytes), then holds it."""

    def __init__(self, scripts: list[bytes]):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.scripts = list(scripts)
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while self.scripts:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            conn.sendall(self.scripts.pop(0))

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


def _wait(pred, timeout_s=10.0):
    end = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_malformed_messages_are_counted_never_fatal() -> None:
    bad_crc = bytearray(_status_msg(1))
    bad_crc[-1] ^= 0xFF
    not_json = encode_message(StringMessage("TwinStatus", "{not json"))
    wrong_frame = encode_message(StringMessage("TwinStatus", json.dumps({"update": 5})))
    unknown = bytearray(encode_message(StringMessage("Other", "x")))
    unknown[2:14] = b"FOOBAR\0\0\0\0\0\0"  # unknown type, CRC still right
    scripts = [
        _status_msg(1) + bytes(bad_crc),  # frame 1, then a corrupt stream: reconnect
        not_json + wrong_frame + bytes(unknown) + _status_msg(2),  # three refused, then 2
    ]
    srv = ScriptedServer(scripts)
    client = LiveClient("127.0.0.1", srv.port, backoff_s=0.05, max_backoff_s=0.1).start()
    try:
        _wait(lambda: client.stats.frames == 2)
        frame = client.take()
        assert frame.update == 2 and frame.status == "pending"
        s = client.stats
        assert s.connections == 2
        assert s.malformed == 4  # bad CRC, not JSON, no frame field, unknown type
        assert "[type]" in s.last_problem and "FOOBAR" in s.last_problem
        assert client.state.state == "connected"
    finally:
        client.close()
        srv.close()


def test_coalescing_keeps_only_the_newest_frame() -> None:
    srv = ScriptedServer([b"".join(_status_msg(i) for i in range(1, 6))])
    client = LiveClient("127.0.0.1", srv.port).start()
    try:
        _wait(lambda: client.stats.frames == 5)
        assert client.take().update == 5
        assert client.take() is None
        assert client.stats.superseded == 4
    finally:
        client.close()
        srv.close()


# --- frames decoded from messages ---------------------------------------------------------------


def _update_parts(ras: bool, shift_targets_mm: float = 0.0):
    rng = np.random.default_rng(3)
    pts = rng.normal(0.0, 50.0, (10, 3))
    tri = np.array([[0, 1, 2], [2, 3, 4], [5, 6, 7]])
    T = np.eye(4)
    T[:3, 3] = [10.0, -20.0, 30.0]
    flip = FLIP if ras else np.ones(3)
    tgt = np.array([[1.0, 2.0, 3.0]])
    status = {
        "update": 4,
        "status": "state",
        "frame": "tracker_RAS" if ras else "tracker_LPS",
        "trustworthy": True,
        "reason": "ok",
        "targets": [{"name": "tumour", "position_mm": list(tgt[0] * flip), "radius95_mm": 4.5}],
        "recommendation": {"target": "tumour", "patch_centre_mm": list(pts[0] * flip),
                           "n_vertices": 3},
    }  # fmt: skip
    Tw = F_LPS_RAS @ T @ F_LPS_RAS if ras else T
    parts = {
        "ModelToTracker": TransformMessage("ModelToTracker", Tw),
        "OrganInTracker": PolyDataMessage.from_triangles("OrganInTracker", pts * flip, tri),
        "TargetsInTracker": PointMessage("TargetsInTracker", (tgt + shift_targets_mm) * flip),
    }
    return StringMessage("TwinStatus", json.dumps(status)), parts, pts, T, tgt


@pytest.mark.parametrize("ras", [True, False])
def test_frame_converts_ras_to_lps(ras) -> None:
    status, parts, pts, T, tgt = _update_parts(ras)
    f = frame_from_messages(status, parts)
    np.testing.assert_array_equal(f.organ_points_mm, pts)
    np.testing.assert_array_equal(f.T_tracker_model, T)
    np.testing.assert_array_equal(f.targets[0].position_mm, tgt[0])
    assert f.targets[0].radius95_mm == 4.5
    d = np.linalg.norm(pts - pts[0], axis=1)
    assert set(f.region_vertex_ids()) == set(np.argsort(d)[:3])


def test_frame_refuses_targets_in_another_frame() -> None:
    status, parts, *_ = _update_parts(True, shift_targets_mm=1.0)
    with pytest.raises(LiveFrameError, match="not in the status' frame"):
        frame_from_messages(status, parts)
    status, parts, *_ = _update_parts(True)
    del parts["OrganInTracker"]
    with pytest.raises(LiveFrameError, match="did not arrive"):
        frame_from_messages(status, parts)


# --- the case's structures follow the twin ------------------------------------------------------

#: A known linear deformation of the organ, u(x) = A (x - c) (mm per mm): ~1-2 % strain.
_A = np.array([[0.030, 0.010, 0.000], [0.000, -0.020, 0.015], [0.010, 0.000, 0.025]])
_TUMOUR_MM = np.array([10.0, -5.0, 3.0])  # the synthetic basis' "tumour" target


def _structures(rest: np.ndarray):
    """A vessel polyline 2 mm under the organ surface and a tumour sphere at its target."""
    import pyvista as pv

    c = rest.mean(axis=0)
    picks = rest[np.argsort(rest[:, 0])[::32]]
    inward = (c - picks) / np.linalg.norm(c - picks, axis=1, keepdims=True)
    vessel = pv.lines_from_points(picks + 2.0 * inward)
    tumour = pv.Sphere(radius=4.0, center=_TUMOUR_MM, theta_resolution=16, phi_resolution=16)
    return vessel, tumour


def _linear_frame(rest, faces, T, *, trustworthy=True):
    from surgplan.viewer.live_frame import LiveFrame, TargetView

    c = rest.mean(axis=0)
    moved = rest + (rest - c) @ _A.T
    tumour_model = _TUMOUR_MM + _A @ (_TUMOUR_MM - c)
    return LiveFrame(
        update=1,
        time_s=0.0,
        status="state",
        trustworthy=trustworthy,
        reason="ok" if trustworthy else "outliers",
        T_tracker_model=T,
        organ_points_mm=moved @ T[:3, :3].T + T[:3, 3],
        organ_faces=faces,
        targets=(TargetView("tumour", T[:3, :3] @ tumour_model + T[:3, 3], 3.0),),
    ), tumour_model


@pytest.mark.usefixtures("xvfb_display")
def test_structures_follow_a_known_deformation() -> None:
    import pyvista as pv

    from surgplan.viewer.structure_follow import DisplacementTransfer, volume_centroid
    from surgplan.viewer.twin_overlay import TwinOverlay
    from tests.test_live_helpers import T_TRACKER_MODEL

    organ = synthetic_organ(3)
    rest, faces = np.asarray(organ.vertices), np.asarray(organ.faces)
    vessel, tumour = _structures(rest)
    plotter = pv.Plotter(off_screen=True, window_size=[200, 200])
    try:
        actors = {"vessel": plotter.add_mesh(vessel), "tumour": plotter.add_mesh(tumour)}
        overlay = TwinOverlay(plotter, structures=lambda: actors, rest_organ_mm=rest)
        frame, tumour_model = _linear_frame(rest, faces, T_TRACKER_MODEL)
        overlay.apply(frame)
        assert overlay.note == ""
        c = rest.mean(axis=0)
        # the twin is drawn in model space: rest + u
        np.testing.assert_allclose(
            overlay.organ.points, rest + (rest - c) @ _A.T, rtol=0, atol=1e-9
        )
        # a vessel point moves by the displacement interpolated from the organ's vertices ...
        p0 = np.asarray(vessel.points)
        shown = np.asarray(actors["vessel"].mapper.dataset.points)
        transfer = DisplacementTransfer(rest, p0)
        np.testing.assert_allclose(shown - p0, transfer((rest - c) @ _A.T), rtol=0, atol=1e-9)
        # ... which is a convex combination of A (x_i - c): off the true A (p - c) by at most
        # |A (x_i - p)| <= ||A||_2 * max_i |x_i - p| (the row's reach)
        true = (p0 - c) @ _A.T
        err = np.linalg.norm(shown - p0 - true, axis=1)
        assert np.all(err <= np.linalg.norm(_A, 2) * transfer.reach_mm + 1e-9)
        assert np.linalg.norm(true, axis=1).min() > 0.3  # every vessel point did move
        assert np.asarray(vessel.points) is not shown and np.array_equal(vessel.points, p0)
        # the tumour's volume centroid is the twin's tumour prediction
        t = actors["tumour"].mapper.dataset
        got = volume_centroid(t.points, np.asarray(t.faces).reshape(-1, 4)[:, 1:])
        np.testing.assert_allclose(got, tumour_model, rtol=0, atol=1e-6)
        assert np.linalg.norm(tumour_model - _TUMOUR_MM) > 0.25  # it did move
        # the target sphere is drawn in model space, about the same point
        sphere = overlay.actors["live_target_0"].mapper.dataset
        np.testing.assert_allclose(np.asarray(sphere.points).mean(axis=0), tumour_model, atol=1e-6)
        # an untrusted fit: the anatomy goes back to rest, and the text says so
        bad, _ = _linear_frame(rest, faces, T_TRACKER_MODEL, trustworthy=False)
        overlay.apply(bad)
        np.testing.assert_array_equal(actors["vessel"].mapper.dataset.points, p0)
        assert "structures at rest" in overlay.text
        # a rest surface that is not the twin's is refused, said, and nothing moves
        overlay.apply(frame)
        overlay.set_rest_organ(rest[:-1])
        overlay.apply(frame)
        assert "not the same surface" in overlay.text
        # clear() gives the actors their own meshes back
        overlay.clear()
        assert actors["vessel"].mapper.dataset is vessel
        assert actors["tumour"].mapper.dataset is tumour
    finally:
        plotter.close()


def test_live_structures_follow_the_twin_deformation(tmp_path, window, qtbot) -> None:
    from surgplan.twin.synthetic import polynomial_modes, posed_swabs, synthetic_basis
    from surgplan.viewer.live_view import attach_live
    from surgplan.viewer.structure_follow import DisplacementTransfer, volume_centroid
    from tests.test_live_helpers import T_TRACKER_MODEL

    organ = synthetic_organ(3)
    rest = np.asarray(organ.vertices)
    basis = synthetic_basis(organ)
    # the scan comes from the organ deformed by 4 mm of mode 0: the twin must deform
    scan = posed_swabs(
        organ, 4.0 * basis.surface_modes[0], T_TRACKER_MODEL, n_points=300, noise_mm=0.2, seed=1
    )
    case = make_case(tmp_path / "case")
    session, _ = open_session(case, config("deformable"))
    srv = LiveServerThread(session, port=0)
    srv.start()
    win, plotter = window
    vessel, tumour = _structures(rest)
    import pyvista as pv

    liver = pv.PolyData(rest.copy(), np.hstack([np.full((len(organ.faces), 1), 3), organ.faces]))
    actors = {"liver": plotter.add_mesh(liver, opacity=0.5)}  # the case's organ mesh
    actors |= {"vessel": plotter.add_mesh(vessel), "tumour": plotter.add_mesh(tumour)}
    ctl = attach_live(
        win, plotter, case, *srv.address, rest_organ_mm=rest, structures=lambda: actors
    )
    spy = Spy(srv.address)
    feeder = RawClient(srv.address)
    try:
        assert plotter.render_timer.isActive() is False  # no periodic re-render while live
        qtbot.waitUntil(lambda: len(srv.server._clients) == 3, timeout=10_000)
        feeder.send(scan_msg(scan))
        feeder.ack()
        parts = spy.wait(1)
        qtbot.waitUntil(lambda: ctl.overlay.frame is not None, timeout=30_000)
        st = _status(parts)
        assert st["trustworthy"] and st["mode"] == "deformable", st["reason"]
        T = F_LPS_RAS @ parts["ModelToTracker"].matrix @ F_LPS_RAS
        u = _to_model(T, parts["OrganInTracker"].points * FLIP) - rest
        assert np.linalg.norm(u, axis=1).max() > 1.0  # the twin did deform
        # the vessel moved by the interpolated published displacement (float32 wire: 1e-3 mm)
        p0 = np.asarray(vessel.points)
        shown = np.asarray(actors["vessel"].mapper.dataset.points)
        transfer = DisplacementTransfer(rest, p0)
        np.testing.assert_allclose(shown - p0, transfer(u), rtol=0, atol=1e-3)
        # the twin's own field at the vessel points: sum_m a_m mode_m(p). The interpolation is a
        # convex combination of that field at the k organ vertices, so its error is at most the
        # field's largest change from p to those vertices
        a = np.asarray(session.core.twin.state.amplitudes)
        peak = np.abs(polynomial_modes(rest)).max(axis=(1, 2))
        field = lambda x: np.tensordot(a / peak, polynomial_modes(x), axes=(0, 0))  # noqa: E731
        _, idx = __import__("scipy.spatial", fromlist=["cKDTree"]).cKDTree(rest).query(p0, k=8)
        bound = np.linalg.norm(field(rest)[idx] - field(p0)[:, None, :], axis=2).max(axis=1)
        err = np.linalg.norm(shown - p0 - field(p0), axis=1)
        assert np.all(err <= bound + 2e-3), (err, bound)
        # the tumour actor's volume centroid is the published tumour target (model space)
        t = actors["tumour"].mapper.dataset
        got = volume_centroid(t.points, np.asarray(t.faces).reshape(-1, 4)[:, 1:])
        want = _to_model(T, np.array(st["targets"][0]["position_mm"]) * FLIP)
        assert st["targets"][0]["name"] == "tumour"
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)
        assert ctl.overlay.note == ""
        # the case's own organ mesh (same vertices) deforms onto the twin
        np.testing.assert_allclose(
            actors["liver"].mapper.dataset.points, ctl.overlay.organ.points, rtol=0, atol=1e-6
        )
        # the camera set from the structures frames the twin: its box corners are on screen
        import vtk

        w, h = plotter.window_size
        coord = vtk.vtkCoordinate()
        coord.SetCoordinateSystemToWorld()
        b = np.asarray(ctl.overlay.organ.bounds).reshape(3, 2)
        for corner in np.array(np.meshgrid(*b)).reshape(3, -1).T:
            coord.SetValue(*map(float, corner))
            x, y = coord.GetComputedDisplayValue(plotter.renderer)
            assert 0 <= x <= w and 0 <= y <= h, (corner, x, y, w, h)
    finally:
        feeder.close()
        spy.close()
        ctl.close()
        srv.stop()
        session.log.close()
    assert plotter.render_timer.isActive()  # auto-update given back
    assert actors["vessel"].mapper.dataset is vessel
