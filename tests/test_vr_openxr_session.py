"""The OpenXR backend through the Khronos loader, the core validation layer and the test runtime.

Each run is a real process (the loader reads its environment once) running
:mod:`tests.openxr_session_check` or ``surgplan vr``; the runtime
(``tests/openxr_test_runtime/runtime.c``) records every submitted frame (``frames.jsonl``) and
reads the swapchain images back (PPM), so the checks are on what reached the compositor:

- a known 3-D point lands in each eye's submitted image within 1 pixel of where that eye's
  submitted pose and field of view put it, and the two eyes differ by the expected disparity;
- the session walks its states in order and ends cleanly; a session loss and a runtime that
  goes away are torn down with every destroy call made;
- the scripted controllers move the twin (grip) and cycle its layers (trigger);
- a live session's update over OpenIGTLink moves the overlay in the headset.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.openxr_session_check import (
    MARKER_RADIUS_MM,
    MARKERS_MM,
    TUMOUR_OFFSET_MM,
)
from tests.openxr_test_runtime.build import build_runtime, runtime_env
from vr.views import EyeView, Fov, pose_from_xr

REPO = Path(__file__).resolve().parents[1]
EYE_SIZE = "256x272"
STATES = [
    "IDLE", "READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED", "VISIBLE", "SYNCHRONIZED",
    "STOPPING", "IDLE", "EXITING",
]  # fmt: skip


@pytest.fixture(scope="module")
def x_display():
    """A private Xvfb's DISPLAY for the Xlib/GLX binding."""
    from tests.viewer_display import start_xvfb

    with start_xvfb() as display:
        yield display


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_runtime(tmp_path_factory.mktemp("xr_session_runtime"))


def _run(runtime: Path, tmp_path: Path, args: list[str], **controls: str):
    capture = tmp_path / "capture"
    capture.mkdir(exist_ok=True)
    log = tmp_path / "core_validation.txt"
    env = runtime_env(
        runtime, SURGPLAN_XR_TEST_VIEW_SIZE=EYE_SIZE, SURGPLAN_XR_TEST_CAPTURE_DIR=str(capture),
        XR_CORE_VALIDATION_FILE_NAME=str(log), **controls,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), capture, log.read_text()


def _check(runtime, tmp_path, scenario: str, binding: str = "auto", **controls: str):
    args = ["-m", "tests.openxr_session_check", scenario, binding]
    return _run(runtime, tmp_path, args, **controls)


def _frames(capture: Path) -> list[dict]:
    return [json.loads(line) for line in (capture / "frames.jsonl").read_text().splitlines()]


def _submitted_view(view: dict) -> EyeView:
    """The eye view the application submitted (metres in the record, mm here)."""
    w, h = view["rect"][2], view["rect"][3]
    pose = pose_from_xr(view["pose"]["position"], view["pose"]["orientation"])
    left, right, up, down = view["fov"]
    return EyeView(pose, Fov(left, right, up, down), w, h)


def _centroid(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    assert len(rows) > 20, "the object is not in the image"
    return np.array([cols.mean() + 0.5, rows.mean() + 0.5])


def _image(capture: Path, view: dict) -> np.ndarray:
    return np.asarray(Image.open(capture / view["file"]).convert("RGB")).astype(int)


def _no_validation_errors(log: str) -> None:
    assert "Core Validation Layer is initialized" in log
    assert "VALID_ERROR" not in log, log[-3000:]


@pytest.mark.parametrize("binding", ["egl", "xlib"])
def test_known_points_land_within_a_pixel_in_both_eyes_with_the_right_disparity(
    runtime, tmp_path, binding, request
) -> None:
    """Both graphics bindings: headless EGL, and Xlib/GLX on a private Xvfb."""
    controls = {}
    if binding == "xlib":
        controls["DISPLAY"] = request.getfixturevalue("x_display")
    report, capture, log = _check(runtime, tmp_path, "markers", binding, **controls)
    _no_validation_errors(log)
    assert report["setup"]["binding"] == binding
    assert report["states"] == STATES and report["ended_by"] == "exit"
    assert report["setup"]["eye_size"] == [256, 272]
    assert report["setup"]["reference_space"] == "STAGE"
    assert report["setup"]["swapchain_format"] == 0x8C43  # GL_SRGB8_ALPHA8, the runtime's first
    submitted = [f for f in _frames(capture) if f["layers"]]
    assert len(submitted) == 2
    projection = submitted[-1]["layers"][0]
    assert projection["type"] == "projection" and projection["space"] == "STAGE"
    white = lambda im: im.min(axis=2) > 60  # noqa: E731 (marker 0: white)
    green = lambda im: (im[..., 1] > 60) & (im[..., 0] < 40)  # noqa: E731 (marker 1: green)
    eyes = [_submitted_view(v) for v in projection["views"]]
    # the runtime's eyes: head at y = 1.6 m in STAGE, 64 mm apart, its asymmetric fovs
    assert eyes[1].pose.position_mm[0] - eyes[0].pose.position_mm[0] == pytest.approx(64.0)
    assert eyes[0].pose.position_mm[1] == pytest.approx(1600.0, abs=1e-3)
    assert eyes[0].fov.angle_left == pytest.approx(-0.90) and eyes[
        1
    ].fov.angle_right == pytest.approx(0.90)
    u = {}
    for eye, (view, record) in enumerate(zip(eyes, projection["views"], strict=True)):
        image = _image(capture, record)
        for k, (marker, mask) in enumerate(zip(MARKERS_MM, (white, green), strict=True)):
            expected = view.project(np.asarray(marker))
            measured = _centroid(image, mask(image))
            assert np.linalg.norm(measured - expected) < 1.0, (eye, k, measured, expected)
            u[eye, k] = measured
    # disparity of marker 0: the difference of the two eyes' projections of its centre
    expected_disparity = (
        eyes[0].project(np.asarray(MARKERS_MM[0]))[0]
        - eyes[1].project(np.asarray(MARKERS_MM[0]))[0]
    )
    focal = eyes[0].focal_px()[0]
    depth = -MARKERS_MM[0][2]
    assert u[0, 0][0] - u[1, 0][0] == pytest.approx(expected_disparity, abs=1.0)
    # and that is the stereo formula's IPD * f / depth, to within the fovs' asymmetry
    asymmetry = (eyes[0].project(np.array([0.0, 1600.0, -1e9]))[0]
                 - eyes[1].project(np.array([0.0, 1600.0, -1e9]))[0])  # fmt: skip
    assert expected_disparity - asymmetry == pytest.approx(64.0 * focal / depth, rel=1e-3)
    assert MARKER_RADIUS_MM > 0
    quad = submitted[-1]["layers"][1]
    assert quad["type"] == "quad" and quad["space"] == "VIEW"
    assert quad["size"] == pytest.approx([0.36, 0.09])
    text = np.asarray(Image.open(capture / quad["file"]).convert("RGB")).astype(int)
    assert (text.min(axis=2) > 200).sum() > 50  # white text drawn on the grey quad


@pytest.mark.parametrize("lose_at", ["1", "4"])  # lost while SYNCHRONIZED, while FOCUSED
def test_a_session_loss_tears_down_cleanly(runtime, tmp_path, lose_at) -> None:
    report, capture, log = _check(
        runtime, tmp_path, "frames:50", SURGPLAN_XR_TEST_LOSE_AT_FRAME=lose_at
    )
    assert report["ended_by"] == "loss_pending"
    assert report["states"][-1] == "LOSS_PENDING"
    assert report["teardown"] == ["destroy_session", "destroy_instance"]
    assert report["stats"]["rendered_frames"] < 50
    _no_validation_errors(log)


def test_a_runtime_that_goes_away_tears_down_cleanly(runtime, tmp_path) -> None:
    report, capture, log = _check(
        runtime, tmp_path, "frames:50", SURGPLAN_XR_TEST_INSTANCE_LOST_AT_FRAME="4"
    )
    assert report["ended_by"].startswith("runtime_lost: ")
    assert (
        "destroy_session" in report["teardown"][-2] and report["teardown"][-1] == "destroy_instance"
    )
    assert report["stats"]["rendered_frames"] < 50
    assert len(_frames(capture)) <= 5


def test_scripted_controllers_move_the_twin_and_cycle_its_layers(runtime, tmp_path) -> None:
    script = tmp_path / "controllers.txt"
    script.write_text(
        "# frame hand key values (LOCAL space, metres)\n"
        "0 right pose 0.2 -0.3 -0.4 0 0 0 1\n"
        "6 right squeeze 1.0\n"
        "10 right pose 0.3 -0.25 -0.4 0 0 0 1\n"
        "14 right squeeze 0.0\n"
        "16 left trigger 1\n"
        "18 left trigger 0\n"
    )
    report, capture, log = _check(runtime, tmp_path, "controllers",
                                  SURGPLAN_XR_TEST_SCRIPT=str(script))  # fmt: skip
    _no_validation_errors(log)
    poses = np.asarray(report["twin_poses"])
    start, end = poses[0][:3, 3], poses[-1][:3, 3]
    np.testing.assert_allclose(start, [0.0, 1600.0, -500.0], atol=1e-3)  # 500 mm ahead of the head
    np.testing.assert_allclose(end - start, [100.0, 50.0, 0.0], atol=1e-3)  # as the hand moved
    frames = [f for f in _frames(capture) if f["layers"]]
    late = frames[-1]["layers"][0]["views"]
    moved_organ = end
    for record in late:
        image = _image(capture, record)
        red = (image[..., 0] > 60) & (image[..., 2] < 40)
        blue = (image[..., 2] > 60) & (image[..., 0] < 40)
        view = _submitted_view(record)
        assert np.linalg.norm(_centroid(image, red) - view.project(moved_organ)) < 1.5
        assert blue.sum() == 0  # the trigger left the organ layer alone on show
    early = frames[2]["layers"][0]["views"][0]
    image = _image(capture, early)
    blue = (image[..., 2] > 60) & (image[..., 0] < 40)
    view = _submitted_view(early)
    tumour = start + np.asarray(TUMOUR_OFFSET_MM)
    assert np.linalg.norm(_centroid(image, blue) - view.project(tumour)) < 1.5


def test_live_updates_place_deform_then_hide_the_overlay_in_the_headset(runtime, tmp_path) -> None:
    """A deformable live session fed over OpenIGTLink by a test client, seen in the headset.

    Waiting: nothing drawn. Update 1 (the undeformed organ): the organ where the tracker saw
    it. Update 2 (the organ widened by a deformation mode): the overlay takes the new published
    surface's outline. Update 3 (outliers, untrusted): hidden, with the red warning.
    """
    from surgplan.live import LiveServerThread, open_session
    from surgplan.twin.synthetic import posed_swabs, synthetic_basis, synthetic_organ
    from surgplan.vr_calibration import XrCalibration, store_calibration
    from tests.test_live_helpers import (
        T_TRACKER_MODEL,
        RawClient,
        config,
        make_case,
        point_msg,
        scan_msg,
        scan_points,
    )
    from tests.test_viewer_live import Spy

    case = make_case(tmp_path / "case")
    T_xr_tracker = np.eye(4)
    T_xr_tracker[:3, 3] = [-30.0, 1640.0, -470.0]  # the organ's tracker pose -> 350 mm ahead
    store_calibration(case, XrCalibration(T_xr_tracker, 0.4, 0.7, 6))
    session, _ = open_session(case, config("deformable"))
    server = LiveServerThread(session, port=0)
    server.start()
    host, port = server.address
    capture = tmp_path / "capture"
    capture.mkdir()
    env = runtime_env(
        runtime, SURGPLAN_XR_TEST_VIEW_SIZE="512x544", SURGPLAN_XR_TEST_CAPTURE_DIR=str(capture),
        SURGPLAN_XR_TEST_CAPTURE_EVERY="3", SURGPLAN_XR_TEST_THROTTLE="1",
        XR_CORE_VALIDATION_FILE_NAME=str(tmp_path / "core.txt"),
    )  # fmt: skip
    vr = subprocess.Popen(
        [sys.executable, "-c", "from surgplan.cli import main; main()", "vr", str(case),
         "--live", f"{host}:{port}", "--validation", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    organ = synthetic_organ(3)
    basis = synthetic_basis(organ)
    amplitudes = np.zeros(len(basis.prior_std))
    amplitudes[5] = 1.5 * basis.prior_std[5]  # widens the organ by ~10 mm, within the prior
    deformed = posed_swabs(organ, basis.surface_displacement_mm(amplitudes), T_TRACKER_MODEL,
                           n_points=3000, noise_mm=0.3, seed=2)  # fmt: skip
    flip = np.array([-1.0, -1.0, 1.0])
    feeder = spy = None
    published, shown_until = [], []
    try:
        _until(lambda: len(server.server._clients) >= 1, "the headset did not connect")
        _until(lambda: _captured(capture) >= 3, "the headset submitted no frames")
        spy, feeder = Spy(server.address), RawClient(server.address)
        for update, message in ((1, scan_msg(scan_points(300, seed=1))), (2, scan_msg(deformed))):
            feeder.send(message)
            parts = spy.wait(update)
            assert json.loads(parts["TwinStatus"].text)["trustworthy"]
            published.append(parts["OrganInTracker"].points * flip)
            if update == 1:
                _until(lambda: _shown(capture) >= 2, "the update never reached the headset")
                first_width = _latest_width(capture)
            else:  # until the headset shows a wider organ (it follows as a client of its own)
                wider = first_width + 3
                _until(lambda w=wider: _latest_width(capture) > w, "no deformation shown")
            time.sleep(0.3)
            shown_until.append(_captured(capture))
        rng = np.random.default_rng(0)
        feeder.send(point_msg(rng.normal(0.0, 100.0, (80, 3))))  # outliers: untrusted
        spy.wait(3)
        hidden_from = len(_frames(capture))
        _until(lambda: _hidden_after(capture, hidden_from) >= 2, "the overlay was not hidden")
    finally:
        vr.send_signal(signal.SIGINT)
        out, err = vr.communicate(timeout=120)
        for client in (feeder, spy):
            if client is not None:
                client.close()
        server.stop()
        session.log.close()
    assert vr.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["mode"] == "live" and report["ended_by"] == "exit"
    assert report["stopped_by_signal"] and report["states"][-1] == "EXITING"
    assert report["live_updates_shown"] >= 3
    assert report["stats"]["update_to_submit_ms"]["median"] > 0
    assert "VALID_ERROR" not in (tmp_path / "core.txt").read_text()
    frames = _frames(capture)
    captured = [
        i for i, f in enumerate(frames) if f["layers"] and f["layers"][0]["views"][0]["file"]
    ]
    pixels = [_organ_pixels(capture, frames[i]) for i in captured]
    first_shown = next(k for k, n in enumerate(pixels) if n > 50)
    assert first_shown > 0 and max(pixels[:first_shown]) == 0  # waiting: nothing drawn
    assert np.abs(published[1] - published[0]).max() > 5.0  # the twin did deform
    boxes, widths = [], []
    for points, until in zip(published, shown_until, strict=True):
        frame = frames[max(i for i in captured if i < until)]
        world = points @ T_xr_tracker[:3, :3].T + T_xr_tracker[:3, 3]
        record = frame["layers"][0]["views"][0]
        image = _image(capture, record)
        rows, cols = np.nonzero((image[..., 0] > 90) & (image[..., 0] > image[..., 2] + 30))
        uv = _submitted_view(record).project(world)
        # the organ's outline spans exactly the published surface's projection (within a pixel)
        np.testing.assert_allclose([cols.min(), cols.max() + 1, rows.min(), rows.max() + 1],
                                   [uv[:, 0].min(), uv[:, 0].max(), uv[:, 1].min(),
                                    uv[:, 1].max()], atol=1.5)  # fmt: skip
        boxes.append([uv[:, 0].min(), uv[:, 0].max(), uv[:, 1].min(), uv[:, 1].max()])
        widths.append(cols.max() + 1 - cols.min())
    # the deformation widened the published organ by several pixels, and the overlay with it
    expected = (boxes[1][1] - boxes[1][0]) - (boxes[0][1] - boxes[0][0])
    assert expected > 4.0 and widths[1] - widths[0] == pytest.approx(expected, abs=1.5)
    assert pixels[-1] == 0  # hidden after the untrusted update
    quad = frames[captured[-1]]["layers"][-1]
    warning = np.asarray(Image.open(capture / quad["file"]).convert("RGB")).astype(int)
    assert quad["type"] == "quad" and (warning[..., 0] > 150).mean() > 0.5  # red warning


def _latest_width(capture: Path) -> int:
    """Width in pixels of the organ in the left eye of the newest captured frame (0: none)."""
    frames = [f for f in _frames(capture) if f["layers"] and f["layers"][0]["views"][0]["file"]]
    if not frames or not (capture / frames[-1]["layers"][0]["views"][0]["file"]).is_file():
        return 0
    image = _image(capture, frames[-1]["layers"][0]["views"][0])
    cols = np.nonzero(((image[..., 0] > 90) & (image[..., 0] > image[..., 2] + 30)).any(axis=0))[0]
    return int(cols.max() + 1 - cols.min()) if len(cols) else 0


def _captured(capture: Path) -> int:
    path = capture / "frames.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _hidden_after(capture: Path, start: int) -> int:
    frames = [f for f in _frames(capture)[start:] if f["layers"]]
    return sum(
        1 for f in frames if f["layers"][0]["views"][0]["file"] and not _organ_pixels(capture, f)
    )


def _until(predicate, message: str, timeout_s: float = 60.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, message
        time.sleep(0.05)


def _shown(capture: Path) -> int:
    path = capture / "frames.jsonl"
    if not path.is_file():
        return 0
    return sum(1 for f in _frames(capture) if f["layers"] and _organ_pixels(capture, f) > 50)


def _organ_pixels(capture: Path, frame: dict) -> int:
    record = frame["layers"][0]["views"][0]
    if not record.get("file") or not (capture / record["file"]).is_file():
        return 0
    image = _image(capture, record)
    return int(((image[..., 0] > 90) & (image[..., 0] > image[..., 2] + 30)).sum())


def test_cli_rehearsal_shows_the_case_ahead_of_the_user(
    runtime, tmp_path, liver_models_dir
) -> None:
    """``surgplan vr CASE --backend openxr`` on real liver models: 600 mm ahead of the head."""
    from surgplan.model_import import import_model

    case = tmp_path / "case"
    import_model(liver_models_dir / "liver.vtk", case, structure="liver")
    import_model(liver_models_dir / "liver_tumours.vtk", case, structure="tumour")
    cli = ["-c", "from surgplan.cli import main; main()", "vr", str(case), "--backend", "openxr",
           "--frames", "3", "--validation", "--json"]  # fmt: skip
    report, capture, log = _run(runtime, tmp_path, cli)
    _no_validation_errors(log)
    assert report["runtime"] == "surgplan headless test runtime"
    assert report["mode"] == "rehearsal" and report["backend"] == "openxr"
    assert report["eye_size_px"] == [256, 272] and report["reference_space"] == "STAGE"
    assert report["blend_mode"] == "OPAQUE" and report["states"] == STATES
    assert report["stats"]["rendered_frames"] == 3 and not report["stopped_by_signal"]
    last = [f for f in _frames(capture) if f["layers"]][-1]["layers"][0]["views"]
    for record in last:
        image = _image(capture, record)
        lit = image.max(axis=2) > 20
        view = _submitted_view(record)
        ahead = view.project(np.array([0.0, 1600.0, -600.0]))  # the twin's centre
        assert 0.005 < lit.mean() < 0.5  # the liver (about 200 mm across) in part of the eye
        assert np.linalg.norm(_centroid(image, lit) - ahead) < 40.0
