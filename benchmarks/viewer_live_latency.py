"""Live-follow latency of the desktop viewer: state published by the server -> frame rendered.

A ``surgplan live`` server (:class:`~surgplan.live.LiveServerThread`, synthetic rigid twin of
``--subdivisions``) runs in its own process with a feeder that sends ``--updates`` POINT
batches at ``--rate-hz`` over loopback. This process opens the viewer's live view
(:func:`surgplan.viewer.live_view.attach_live` on a ``QMainWindow`` with a ``pyvistaqt``
``QtInteractor``) on a private Xvfb display (started here unless ``DISPLAY`` is set) and
records, for every frame drawn, the wall-clock time after ``render()`` returned. A state is
"published" at the timestamp the server puts in the update's messages (``time.time()`` when it
encodes them, just before writing them to every client); all processes share the machine's
clock. Side by side, in the same run:

- ``viewer_rendered_ms``: publish -> the viewer's frame rendered (socket, decode, Qt signal to
  the GUI thread, actors updated, VTK render, under Xvfb/llvmpipe);
- ``viewer_received_ms``: publish -> the viewer's client thread has assembled the frame;
- ``draw_ms``: the GUI thread's time to apply one frame to the actors and render it;
- ``render_ms``: the VTK render alone (the rest of ``draw_ms`` is updating the actors);
- ``pyigtl_received_ms``: publish -> pyigtl's ``OpenIGTLinkClient`` (a peer in a third process)
  returns the update's ``TwinStatus`` (it polls every 10 ms).

The first update (the twin's initial global search on a 200-point scan) warms the viewer up
(VTK compiles its shaders and makes the actors while drawing it) and is left out of the
statistics; the stream starts once it is drawn.

The viewer's scene has structures that follow the twin (``--structures``, default on: a vessel
tree of ``--vessel-points`` points and a tumour sphere, deformed at each frame by
:mod:`surgplan.viewer.structure_follow`), drawn in model space as the window does. The plotter
is the benchmark's own, so it is made as the live view wants it: no periodic auto-update
(``--auto-update 0``) and no MSAA (``--multi-samples 0``); pass pyvistaqt's defaults
(``--auto-update 5 --multi-samples 4``, say) to compare side by side. The machine's load
(``os.getloadavg()``) is printed with the figures. Prints one JSON object. Run::

    .venv/bin/python benchmarks/viewer_live_latency.py [--updates 60] [--rate-hz 10]
        [--subdivisions 4] [--multi-samples 0] [--auto-update 0] [--no-structures]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms, float)
    if not len(a):
        return {"n": 0}
    return {
        "n": len(a),
        "p50": round(float(np.percentile(a, 50)), 3),
        "p95": round(float(np.percentile(a, 95)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
    }


def _start_xvfb() -> subprocess.Popen | None:
    if os.environ.get("DISPLAY"):
        return None
    exe = shutil.which("Xvfb")
    if exe is None:
        raise SystemExit("error: Xvfb is not installed (Debian 'xvfb', scripts/setup.sh)")
    r, w = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    text = b""
    while not text.endswith(b"\n"):
        if not select.select([r], [], [], 20)[0]:
            proc.kill()
            raise SystemExit("error: Xvfb did not report a display in 20 s")
        chunk = os.read(r, 64)
        if not chunk:
            raise SystemExit("error: Xvfb exited before reporting a display")
        text += chunk
    os.close(r)
    os.environ["DISPLAY"] = ":" + text.decode().strip()
    return proc


# --- the server process -------------------------------------------------------------------------


def _swabs(n: int, seed: int, subdivisions: int) -> np.ndarray:
    from surgplan.twin.synthetic import posed_swabs, synthetic_organ

    c, s = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))
    T = np.array([[c, -s, 0, 30.0], [s, c, 0, -40.0], [0, 0, 1, 120.0], [0, 0, 0, 1]])
    m = synthetic_organ(subdivisions)
    return posed_swabs(m, np.zeros((len(m.vertices), 3)), T, n_points=n, noise_mm=0.3, seed=seed)


def _drain(sock: socket.socket) -> None:
    """Read and drop what the server sends the feeder (its acks)."""
    try:
        while sock.recv(65536):
            pass
    except OSError:
        return


def _server(ctrl, args: dict) -> None:
    from surgplan.case import Case
    from surgplan.live import (
        LiveServerThread,
        PointMessage,
        PolyDataMessage,
        SessionConfig,
        TwinSpec,
        encode_message,
        open_session,
    )

    folder = Path(tempfile.mkdtemp()) / "case"
    case = Case.open_or_new(folder)
    with case.transaction():
        pass
    spec = TwinSpec(source="synthetic", mode="rigid", noise_mm=0.5, subdivisions=args["subdiv"])
    session, _ = open_session(folder, SessionConfig(twin=spec), record_in_manifest=False)
    with LiveServerThread(session, port=0) as srv:
        ctrl.send(("address", srv.address, str(folder)))
        assert ctrl.recv() == "go"
        feeder = socket.create_connection(srv.address)
        threading.Thread(target=_drain, args=(feeder,), daemon=True).start()
        scan = _swabs(200, 1, args["subdiv"])
        feeder.sendall(encode_message(PolyDataMessage("ScanInTracker", scan)))
        srv.wait_idle(60)
        assert ctrl.recv() == "stream"  # the viewer has drawn the first state (warm)
        period = 1.0 / args["rate_hz"]
        t0 = time.perf_counter()
        for i in range(args["updates"]):
            pts = _swabs(args["points"], 100 + i, args["subdiv"])
            feeder.sendall(encode_message(PointMessage("PointsInTracker", pts)))
            time.sleep(max(0.0, t0 + (i + 1) * period - time.perf_counter()))
        srv.wait_idle(60)
        time.sleep(0.5)
        n_vertices = len(session.core.twin.deformed_surface().points)
        ctrl.send(("done", session.n_updates, n_vertices))
        assert ctrl.recv() == "stop"
        feeder.close()
    session.log.close()


# --- the pyigtl peer process ----------------------------------------------------------------------


def _peer(ctrl, address) -> None:
    import pyigtl

    class _PolyData(pyigtl.PolyDataMessage):  # pyigtl 0.3.4 does not parse POLYDATA
        def _unpack_content(self, content):
            pass

    pyigtl.messages.message_type_to_class_constructor["POLYDATA"] = _PolyData
    client = pyigtl.OpenIGTLinkClient(*address)
    got: dict[int, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            msg = client.wait_for_message("TwinStatus", timeout=0.2)
            if msg is not None:
                now = time.time()
                got.setdefault(json.loads(msg.string)["update"], (now - msg.timestamp) * 1e3)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    ctrl.send("ready")
    assert ctrl.recv() == "stop"
    stop.set()
    t.join(2)
    client.stop()
    ctrl.send(got)


# --- the viewer (this process) --------------------------------------------------------------------


def main() -> None:
    """Run the benchmark and print its JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--updates", type=int, default=60)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    ap.add_argument("--points", type=int, default=5, help="points per POINT batch")
    ap.add_argument("--subdivisions", type=int, default=4, help="synthetic organ icosphere")
    ap.add_argument(
        "--auto-update",
        type=float,
        default=0.0,
        help="pyvistaqt's periodic re-render, Hz (0: off, the live view's choice; its default 5)",
    )
    ap.add_argument(
        "--multi-samples", type=int, default=0, help="MSAA samples (0: none; pyvista's theme 4)"
    )
    ap.add_argument(
        "--structures",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="structures following the twin (vessel tree and tumour)",
    )
    ap.add_argument("--vessel-points", type=int, default=20000, help="vessel mesh points")
    ap.add_argument(
        "--oit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="VTK's order-independent translucency (on, as in the window; off: plain blending)",
    )
    opts = ap.parse_args()
    load_before = os.getloadavg()
    xvfb = _start_xvfb()
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    ctx = mp.get_context("spawn")
    srv_end, srv_child = ctx.Pipe()
    args = {"updates": opts.updates, "rate_hz": opts.rate_hz, "points": opts.points}
    args["subdiv"] = opts.subdivisions
    server = ctx.Process(target=_server, args=(srv_child, args), daemon=True)
    server.start()
    try:
        _, address, case_dir = srv_end.recv()
        peer_end, peer_child = ctx.Pipe()
        peer = ctx.Process(target=_peer, args=(peer_child, address), daemon=True)
        peer.start()
        assert peer_end.recv() == "ready"
        result = _follow(srv_end, peer_end, address, Path(case_dir), opts)
        peer.join(10)
        server.join(30)
    finally:
        if server.is_alive():
            server.kill()
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)
    result["loadavg_1_5_15_before"] = [round(x, 2) for x in load_before]
    result["loadavg_1_5_15_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


def _structures(plotter, opts) -> tuple[dict, np.ndarray]:
    """A vessel tree (tubes near the surface) and a tumour sphere, in model space."""
    import pyvista as pv

    from surgplan.twin.synthetic import synthetic_organ

    rest = np.asarray(synthetic_organ(opts.subdivisions).vertices)
    c = rest.mean(axis=0)
    rng = np.random.default_rng(0)
    n_tubes = 40
    per_tube = max(opts.vessel_points // (n_tubes * 12), 2)
    tubes = []
    for end in rest[rng.choice(len(rest), n_tubes, replace=False)]:
        line = pv.lines_from_points(c + np.linspace(0.1, 0.9, per_tube)[:, None] * (end - c))
        tubes.append(line.tube(radius=1.0, n_sides=12, capping=False))
    vessels = pv.merge(tubes)
    tumour = pv.Sphere(radius=5.0, center=(10.0, -5.0, 3.0))
    actors = {
        "vessels": plotter.add_mesh(vessels, color=(0.2, 0.3, 0.9), reset_camera=False),
        "tumour": plotter.add_mesh(tumour, color=(0.9, 0.8, 0.2), reset_camera=False),
    }
    plotter.reset_camera()  # as the window frames its structures
    return actors, rest


def _follow(srv_end, peer_end, address, case_dir: Path, opts) -> dict:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow
    from pyvistaqt import QtInteractor

    from surgplan.viewer.live_view import attach_live

    app = QApplication.instance() or QApplication(["viewer-live-latency"])
    window = QMainWindow()
    plotter = QtInteractor(
        window, multi_samples=opts.multi_samples, auto_update=opts.auto_update or False
    )
    window.setCentralWidget(plotter.interactor)
    window.resize(900, 700)
    window.show()
    plotter_samples = plotter.ren_win.GetMultiSamples()
    plotter.renderer.SetUseOIT(bool(opts.oit))
    structures, rest = _structures(plotter, opts) if opts.structures else ({}, None)
    ctl = attach_live(
        window, plotter, case_dir, *address, rest_organ_mm=rest, structures=lambda: structures
    )
    rows: list[tuple[int, float, float]] = []

    def rendered(frame) -> None:
        now, pc = time.time(), time.perf_counter()
        received = now - (pc - frame.received_s)
        rows.append((frame.update, (now - frame.time_s) * 1e3, (received - frame.time_s) * 1e3))
        if frame.update == 1:  # warm: shaders compiled, actors made; start the stream
            plotter.render()
            srv_end.send("stream")

    ctl.on_rendered = rendered
    state = {"done": None}

    def poll() -> None:
        if state["done"] is None and ctl.client.state.state == "connected":
            if not state.get("go"):
                time.sleep(0.2)  # let the peer connect too
                srv_end.send("go")
                state["go"] = True
        if state.get("go") and srv_end.poll():
            state["done"] = srv_end.recv()
            QTimer.singleShot(300, app.quit)

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(20)
    app.exec()
    timer.stop()
    stats = ctl.client.stats
    ctl.close()
    plotter.close()
    window.close()
    srv_end.send("stop")
    peer_end.send("stop")
    peer = peer_end.recv()
    _, n_updates, n_vertices = state["done"]
    steady = [r for r in rows if r[0] > 1]
    return {
        "benchmark": "viewer_live_latency",
        "what": "state published by the server -> frame rendered by the viewer (loopback, Xvfb)",
        "updates_published": n_updates,
        "frames_rendered": len(rows),
        "frames_coalesced": stats.superseded,
        "malformed": stats.malformed,
        "organ_vertices": n_vertices,
        "rate_hz": opts.rate_hz,
        "points_per_batch": opts.points,
        "multi_samples": plotter_samples,
        "auto_update_hz": opts.auto_update,
        "order_independent_translucency": bool(opts.oit),
        "structure_points": sum(a.mapper.dataset.n_points for a in structures.values()),
        "draw_ms": _stats([r[2] for r in ctl.rendered if r[0] > 1]),
        "render_ms": _stats([r[3] for r in ctl.rendered if r[0] > 1]),
        "window_px": [900, 700],
        "viewer_rendered_ms": _stats([r[1] for r in steady]),
        "viewer_received_ms": _stats([r[2] for r in steady]),
        "pyigtl_received_ms": _stats([v for k, v in peer.items() if k > 1]),
        "display": os.environ.get("DISPLAY"),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    main()
