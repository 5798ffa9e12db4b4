"""The headless OpenXR test runtime (``tests/openxr_test_runtime/runtime.c``) driven directly.

Each check runs one scenario of this module's driver (bottom of the file) in its own process,
with a clean ``XR_*`` environment, a surfaceless EGL OpenGL 3.3 core context made with PyOpenGL
and pyopenxr on top. Scenarios that use the API correctly run through the core and best-practices
validation layers, and the core layer's log must show no ``VALID_ERROR``; scenarios that misuse
the API on purpose (to see the runtime's error codes) run without layers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.openxr_test_runtime.build import build_runtime, runtime_env

REPO = Path(__file__).resolve().parents[1]
CORE = "XR_APILAYER_LUNARG_core_validation"
BEST = "XR_APILAYER_KHRONOS_best_practices_validation"
VIEW_W, VIEW_H = 64, 48
#: Per eye: (top colour, bottom colour) cleared into the swapchain image by the application.
EYE_COLOURS = (((200, 30, 40), (10, 220, 90)), ((250, 250, 0), (0, 0, 255)))
QUAD_SIZE, QUAD_RECT = (40, 30), (10, 5, 20, 12)  # rect: x, y (from the bottom row), w, h
QUAD_COLOURS = {"outside": (9, 9, 9), "top": (255, 128, 0), "bottom": (30, 60, 90)}
FOVS = ([-0.90, 0.75, 0.80, -0.85], [-0.75, 0.90, 0.80, -0.85])
SCRIPT = """# frame hand key values
2 head pose 0.1 0.2 0.3 0 0 0 1
3 right pose 0.3 -0.2 -0.5 0 0.3826834 0 0.9238795
3 right squeeze 0.75
4 right trigger 0.9
5 right squeeze 0.25
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_runtime(tmp_path_factory.mktemp("xr_test_runtime"))


def run_scenario(
    manifest: Path, tmp_path: Path, scenario: str, *, ok: bool = True, **controls: str
) -> tuple[dict, str, subprocess.CompletedProcess]:
    """Run one driver scenario; returns its JSON report, the core layer's log and the process."""
    log = tmp_path / "core_validation.txt"
    env = runtime_env(
        manifest, XR_CORE_VALIDATION_FILE_NAME=str(log), PYOPENGL_PLATFORM="egl", **controls
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_openxr_test_runtime", scenario],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip
    if ok:
        assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return report, log.read_text() if log.exists() else "", done


def read_ppm(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    parts = data.split(b"\n", 3)
    assert parts[0] == b"P6" and parts[2] == b"255", parts[:3]
    width, height = map(int, parts[1].split())
    assert len(parts[3]) == width * height * 3
    return width, height, parts[3]


def rows(pixels: bytes, width: int, first: int, last: int) -> set[tuple[int, ...]]:
    """The distinct RGB colours in rows ``first..last-1``."""
    chunk = pixels[first * width * 3 : last * width * 3]
    return {tuple(chunk[i : i + 3]) for i in range(0, len(chunk), 3)}


def quat_rotate(q, v):
    x, y, z, w = q
    u = (x, y, z)
    uv = (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])
    uuv = (u[1] * uv[2] - u[2] * uv[1], u[2] * uv[0] - u[0] * uv[2], u[0] * uv[1] - u[1] * uv[0])
    return tuple(v[i] + 2 * (w * uv[i] + uuv[i]) for i in range(3))


def approx(values, expected, tol=1e-5):
    return all(math.isclose(a, b, abs_tol=tol) for a, b in zip(values, expected, strict=True))


# ------------------------------------------------------------------------------------ tests ---


def test_struct_layouts_match_pyopenxr(manifest, tmp_path):
    report, _, _ = run_scenario(manifest, tmp_path, "sizes")
    assert len(report["sizes"]) > 25
    mismatched = {name: sizes for name, sizes in report["sizes"].items() if sizes[0] != sizes[1]}
    assert not mismatched, mismatched


def test_a_whole_session_through_the_validation_layers(manifest, tmp_path):
    capture = tmp_path / "capture"
    capture.mkdir()
    script = tmp_path / "script.txt"
    script.write_text(SCRIPT)
    calls = tmp_path / "calls.txt"
    report, log, done = run_scenario(
        manifest, tmp_path, "lifecycle",
        SURGPLAN_XR_TEST_VIEW_SIZE=f"{VIEW_W}x{VIEW_H}", SURGPLAN_XR_TEST_CAPTURE_DIR=str(capture),
        SURGPLAN_XR_TEST_CAPTURE_EVERY="2", SURGPLAN_XR_TEST_SCRIPT=str(script),
        SURGPLAN_XR_TEST_LOG=str(calls),
    )  # fmt: skip
    print("validation layer output:\n" + done.stdout[-4000:] + done.stderr[-4000:])
    assert "Core Validation Layer is initialized" in log
    assert "VALID_ERROR" not in log, log
    assert report["layer_messages"] == []  # nothing from best practices (or core) either

    # Instance and system level.
    assert report["system_name"] == "surgplan headless test HMD"
    assert report["graphics"] == [8192, 8192, 16] and report["tracking"] == [True, True]
    assert report["view_configurations"] == [2]
    assert report["views"] == [[VIEW_W, 2 * VIEW_W, VIEW_H, 2 * VIEW_H, 1, 1]] * 2
    assert report["blend_modes"] == [1]
    assert report["reference_spaces"] == [1, 2, 3]
    assert report["formats"] == [0x8C43, 0x8058]
    assert report["stage_bounds"] == [3.0, 3.0]
    assert report["requirements"] == ["3.3.0", "4.6.0"]
    assert report["profile"] == "/interaction_profiles/oculus/touch_controller"
    assert report["path_roundtrip"] == "/user/hand/right/input/squeeze/value"

    # The spec's state sequence over begin / frames / request-exit / end.
    assert report["states"] == [
        "IDLE", "READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED",
        "VISIBLE", "SYNCHRONIZED", "STOPPING", "IDLE", "EXITING",
    ]  # fmt: skip
    assert report["profile_events"] == 1

    frames = report["frames"]
    periods = {f["period"] for f in frames}
    assert periods == {11_111_111}
    times = [f["predicted"] for f in frames]
    assert all(b - a >= 11_111_111 for a, b in zip(times, times[1:], strict=False))
    assert all(t % 11_111_111 == 0 for t in times)
    assert [f["should_render"] for f in frames[:2]] == [False, True]

    # Located views: the scripted head pose x translation(-+ipd/2), the fixed fovs.
    for f in frames:
        head = (0.1, 0.2, 0.3) if f["index"] >= 2 else (0.0, 0.0, 0.0)
        for eye, view in enumerate(f["views"]):
            expected = (head[0] + (-0.032 if eye == 0 else 0.032), head[1], head[2])
            assert approx(view["position"], expected), (f["index"], view)
            assert approx(view["orientation"], (0, 0, 0, 1))
            assert approx(view["fov"], FOVS[eye])
        assert f["view_flags"] == 15

    # Scripted right hand: pose from frame 3 (LOCAL and STAGE), squeeze/trigger values.
    rotation = (0, 0.3826834, 0, 0.9238795)
    for f in frames:
        if not f["focused_sync"]:
            assert not f["squeeze"]["active"] and f["hand"]["flags"] == 0
            continue
        scripted = f["index"] >= 3
        position = (0.3, -0.2, -0.5) if scripted else (0.2, -0.3, -0.4)
        assert f["hand"]["flags"] == 15
        assert approx(f["hand"]["position"], position)
        assert approx(f["hand"]["orientation"], rotation if scripted else (0, 0, 0, 1))
        assert approx(f["hand_stage"]["position"], (position[0], position[1] + 1.6, position[2]))
        squeeze = 0.25 if f["index"] >= 5 else 0.75 if scripted else 0.0
        assert f["squeeze"]["active"] and math.isclose(f["squeeze"]["value"], squeeze)
        assert f["squeeze"]["changed"] == (f["index"] in (3, 5)), f
        assert f["trigger"]["value"] == (f["index"] >= 4) and f["trigger"]["active"]
        assert f["pose_active"]
    # Grip offset (poseInActionSpace 5 cm along -z) is applied in the hand's frame.
    last = frames[-1]
    offset = quat_rotate(rotation, (0, 0, -0.05))
    assert approx(
        last["grip_offset"], [a + b for a, b in zip((0.3, -0.2, -0.5), offset, strict=True)]
    )
    assert approx(last["view_in_stage"], (0.1, 1.8, 0.3))

    # Capture: one JSON line per xrEndFrame, images of every 2nd frame, rows top first.
    lines = [json.loads(x) for x in (capture / "frames.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(len(frames)))
    assert [x["display_time_ns"] for x in lines] == times
    assert lines[0]["layers"] == [] and all(x["blend"] == "OPAQUE" for x in lines)
    for line, f in zip(lines[1:], frames[1:], strict=True):
        projection, quad = line["layers"]
        assert projection["type"] == "projection" and projection["space"] == "LOCAL"
        for eye, view in enumerate(projection["views"]):
            assert approx(view["pose"]["position"], f["views"][eye]["position"])
            assert approx(view["pose"]["orientation"], f["views"][eye]["orientation"])
            assert approx(view["fov"], FOVS[eye])
            assert view["rect"] == [0, 0, VIEW_W, VIEW_H]
            assert view["image_index"] == f["image_index"][eye]
            captured = line["frame"] % 2 == 0
            assert view["file"] == (
                f"frame_{line['frame']:06d}_view{eye}.ppm" if captured else None
            )
        assert quad["type"] == "quad" and quad["space"] == "VIEW" and quad["eye_visibility"] == 0
        assert quad["size"] == [0.4, 0.3] or approx(quad["size"], [0.4, 0.3])
        assert approx(quad["pose"]["position"], (0, 0, -1))
        assert quad["rect"] == list(QUAD_RECT)
    frame = next(x for x in lines if x["frame"] >= 2 and x["frame"] % 2 == 0)
    for eye, view in enumerate(frame["layers"][0]["views"]):
        width, height, pixels = read_ppm(capture / view["file"])
        assert (width, height) == (VIEW_W, VIEW_H)
        top, bottom = EYE_COLOURS[eye]
        assert rows(pixels, width, 0, height // 2) == {top}, f"eye {eye} top half"
        assert rows(pixels, width, height // 2, height) == {bottom}, f"eye {eye} bottom half"
    width, height, pixels = read_ppm(capture / frame["layers"][1]["file"])
    assert (width, height) == QUAD_RECT[2:]
    assert rows(pixels, width, 0, height // 2) == {QUAD_COLOURS["top"]}
    assert rows(pixels, width, height // 2, height) == {QUAD_COLOURS["bottom"]}
    assert len(list(capture.glob("*.ppm"))) == 3 * len(
        [x for x in lines[1:] if x["frame"] % 2 == 0]
    )

    # The call log: every call with its result, in order.
    logged = calls.read_text().splitlines()
    assert logged[0] == "xrEnumerateInstanceExtensionProperties XR_SUCCESS"
    assert "xrCreateSession XR_SUCCESS" in logged and logged[-1] == "xrDestroyInstance XR_SUCCESS"
    assert logged.index("xrEndSession XR_SUCCESS") > logged.index("xrRequestExitSession XR_SUCCESS")
    assert "xrPollEvent XR_EVENT_UNAVAILABLE" in logged


def test_additive_blend_is_offered_first(manifest, tmp_path):
    report, log, _ = run_scenario(manifest, tmp_path, "blend", SURGPLAN_XR_TEST_BLEND="additive")
    assert report["blend_modes"] == [2, 1] and report["layer_messages"] == []
    assert "VALID_ERROR" not in log


def test_wrong_calls_get_the_specs_error_codes(manifest, tmp_path):
    report, _, _ = run_scenario(manifest, tmp_path, "errors", SURGPLAN_XR_TEST_VIEW_SIZE="32x32")
    assert report == {
        "session_before_requirements": "ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING",
        "session_without_binding": "ERROR_GRAPHICS_DEVICE_INVALID",
        "bad_path": "ERROR_PATH_FORMAT_INVALID",
        "unknown_path": "ERROR_PATH_INVALID",
        "request_exit_not_running": "ERROR_SESSION_NOT_RUNNING",
        "end_not_running": "ERROR_SESSION_NOT_RUNNING",
        "wait_frame_not_running": "ERROR_SESSION_NOT_RUNNING",
        "begin_wrong_view_configuration": "ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED",
        "begin": "SUCCESS",
        "begin_twice": "ERROR_SESSION_RUNNING",
        "end_not_stopping": "ERROR_SESSION_NOT_STOPPING",
        "begin_frame_without_wait": "ERROR_CALL_ORDER_INVALID",
        "end_frame_without_begin": "ERROR_CALL_ORDER_INVALID",
        "begin_frame_again": "FRAME_DISCARDED",
        "format_unsupported": "ERROR_SWAPCHAIN_FORMAT_UNSUPPORTED",
        "too_large": "ERROR_VALIDATION_FAILURE",
        "array_swapchain": "ERROR_FEATURE_UNSUPPORTED",
        "wait_image_unacquired": "ERROR_CALL_ORDER_INVALID",
        "release_unwaited": "ERROR_CALL_ORDER_INVALID",
        "acquire_fourth": "ERROR_CALL_ORDER_INVALID",
        "wait_image_twice": "ERROR_CALL_ORDER_INVALID",
        "end_frame_unreleased": "ERROR_LAYER_INVALID",
        "end_frame_rect_outside": "ERROR_SWAPCHAIN_RECT_INVALID",
        "end_frame_one_view": "ERROR_VALIDATION_FAILURE",
        "end_frame_blend_unoffered": "ERROR_ENVIRONMENT_BLEND_MODE_UNSUPPORTED",
        "end_frame_zero_time": "ERROR_TIME_INVALID",
        "end_frame_bad_layer_type": "ERROR_LAYER_INVALID",
        "end_frame": "SUCCESS",
        "sync_before_attach": "ERROR_ACTIONSET_NOT_ATTACHED",
        "profile_before_attach": "ERROR_ACTIONSET_NOT_ATTACHED",
        "bad_binding": "ERROR_PATH_UNSUPPORTED",
        "attach": "SUCCESS",
        "attach_twice": "ERROR_ACTIONSETS_ALREADY_ATTACHED",
        "suggest_after_attach": "ERROR_ACTIONSETS_ALREADY_ATTACHED",
        "float_as_boolean": "ERROR_ACTION_TYPE_MISMATCH",
        "second_session": "ERROR_LIMIT_REACHED",
        "poll_empty": "EVENT_UNAVAILABLE",
    }


def test_session_loss_and_teardown(manifest, tmp_path):
    report, log, _ = run_scenario(
        manifest, tmp_path, "loss", SURGPLAN_XR_TEST_LOSE_AT_FRAME="2",
        SURGPLAN_XR_TEST_VIEW_SIZE="32x32",
    )  # fmt: skip
    assert report["end_frames"] == ["SUCCESS", "SUCCESS"]
    assert report["states"][-1] == "LOSS_PENDING"
    assert report["after"] == {
        "wait_frame": "SESSION_LOSS_PENDING",
        "begin_frame": "SESSION_LOSS_PENDING",
        "end_frame": "SESSION_LOSS_PENDING",
        "locate_views": "SESSION_LOSS_PENDING",
        "sync_actions": "SESSION_LOSS_PENDING",
        "request_exit": "ERROR_SESSION_LOST",
        "end_session": "ERROR_SESSION_LOST",
        "begin_session": "ERROR_SESSION_LOST",
    }
    assert report["teardown"] == ["SUCCESS"] * 4
    assert "VALID_ERROR" not in log, log
    assert report["layer_messages"] == []


def test_instance_loss_and_teardown(manifest, tmp_path):
    report, log, _ = run_scenario(
        manifest, tmp_path, "instance_lost", SURGPLAN_XR_TEST_INSTANCE_LOST_AT_FRAME="1",
        SURGPLAN_XR_TEST_VIEW_SIZE="32x32",
    )  # fmt: skip
    assert report["end_frame"] == "SUCCESS"
    assert report["first_poll"] == ["SUCCESS", "EVENT_DATA_INSTANCE_LOSS_PENDING"]
    assert report["after"] == {
        "poll_event": "ERROR_INSTANCE_LOST",
        "wait_frame": "ERROR_INSTANCE_LOST",
        "locate_space": "ERROR_INSTANCE_LOST",
        "string_to_path": "ERROR_INSTANCE_LOST",
        "sync_actions": "ERROR_INSTANCE_LOST",
    }
    assert report["teardown"] == ["SUCCESS"] * 5
    assert "VALID_ERROR" not in log, log
    assert report["layer_messages"] == []


def test_a_malformed_script_line_fails_the_session(manifest, tmp_path):
    script = tmp_path / "script.txt"
    script.write_text("0 head pose 0 0 0 0 0 0 1\n# fine\n3 left squeeze 0.5 0.7\n")
    report, _, done = run_scenario(
        manifest, tmp_path, "bad_script", SURGPLAN_XR_TEST_SCRIPT=str(script)
    )
    assert report["create_session"] == "ERROR_RUNTIME_FAILURE"
    message = [line for line in done.stderr.splitlines() if "malformed script line" in line]
    assert message == [
        f'surgplan test runtime: {script}:3: malformed script line "3 left squeeze 0.5 0.7" '
        "(expected FRAME head|left|right pose X Y Z QX QY QZ QW | squeeze V | trigger V)"
    ]


# ----------------------------------------------------------------------------------- driver ---
# Runs in the child process (python -m tests.test_openxr_test_runtime SCENARIO); PYOPENGL_PLATFORM
# is "egl" there, so the context is made before pyopenxr (which switches PyOpenGL to GLX).


def _egl_context(EGL):
    """A surfaceless OpenGL 3.3 core context on the first EGL device (Mesa llvmpipe here)."""
    import ctypes

    from OpenGL.EGL.EXT.device_base import eglQueryDevicesEXT
    from OpenGL.EGL.EXT.platform_base import eglGetPlatformDisplayEXT

    devices, count = (EGL.EGLDeviceEXT * 8)(), EGL.EGLint()
    assert eglQueryDevicesEXT(8, devices, ctypes.pointer(count)) and count.value > 0
    display = eglGetPlatformDisplayEXT(0x313F, devices[0], None)  # EGL_PLATFORM_DEVICE_EXT
    major, minor = EGL.EGLint(), EGL.EGLint()
    assert EGL.eglInitialize(display, ctypes.pointer(major), ctypes.pointer(minor))
    EGL.eglBindAPI(EGL.EGL_OPENGL_API)
    attributes = (EGL.EGLint * 7)(0x3098, 3, 0x30FB, 3, 0x30FD, 1, EGL.EGL_NONE)  # 3.3 core
    context = EGL.eglCreateContext(display, EGL.EGLConfig(), EGL.EGL_NO_CONTEXT, attributes)
    assert context, "eglCreateContext (3.3 core, no config) failed"
    assert EGL.eglMakeCurrent(display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, context)
    return display, context


class Driver:
    """An EGL context, then an OpenXR instance and system on the test runtime."""

    def __init__(self, layers: tuple[str, ...] = (CORE, BEST)):
        import ctypes

        from OpenGL import EGL, GL  # noqa: F401  (GL bound on EGL before xr switches PyOpenGL)

        self.display, self.context = _egl_context(EGL)
        egl = ctypes.CDLL("libEGL.so.1")
        import xr

        self.xr = xr
        self.egl_get_proc_address = ctypes.cast(egl.eglGetProcAddress, ctypes.c_void_p).value
        xr.expose_packaged_api_layers()
        extensions = ["XR_KHR_opengl_enable", "XR_MNDX_egl_enable"]
        #: What the layers report through XR_EXT_debug_utils (the loader implements it):
        #: "SEVERITY: message" for warnings and errors.
        self.messages: list[str] = []
        info = xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(application_name="runtime test"),
            enabled_extension_names=extensions + (["XR_EXT_debug_utils"] if layers else []),
            enabled_api_layer_names=list(layers) or None,
        )
        self.instance = xr.create_instance(info)
        if layers:  # the create info holds the C callback: keep it as long as the instance
            self._messenger_info = xr.DebugUtilsMessengerCreateInfoEXT(
                message_severities=xr.DebugUtilsMessageSeverityFlagsEXT.WARNING_BIT
                | xr.DebugUtilsMessageSeverityFlagsEXT.ERROR_BIT,
                user_callback=self._on_message,
            )
            xr.create_debug_utils_messenger_ext(self.instance, self._messenger_info)
        self.system = xr.get_system(
            self.instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY)
        )

    def _on_message(self, severity, _types, data, _user) -> bool:
        data = getattr(data, "contents", data)  # pyopenxr hands over the structure itself
        text = (
            data.message.decode(errors="replace")
            if isinstance(data.message, bytes)
            else data.message
        )
        self.messages.append(f"{self.xr.DebugUtilsMessageSeverityFlagsEXT(severity).name}: {text}")
        return False

    def result(self, call, *args) -> str:
        """Name of the result of a raw pyopenxr function (success codes included)."""
        return self.xr.Result(int(call(*args))).name

    def call(self, function, *args) -> str:
        """Name of the result of a pyopenxr wrapper (SUCCESS, or the error it raised)."""
        try:
            function(*args)
        except self.xr.ResultException as error:
            return error.get_result_enum().name
        return "SUCCESS"

    def requirements(self):
        return self.xr.get_opengl_graphics_requirements_khr(self.instance, self.system)

    def binding(self):
        xr = self.xr
        return xr.GraphicsBindingEGLMNDX(
            get_proc_address=xr.PFN_xrEglGetProcAddressMNDX(self.egl_get_proc_address),
            display=self.display,
            config=None,
            context=self.context,
        )

    def session(self):
        xr = self.xr
        info = xr.SessionCreateInfo(system_id=self.system, next=self.binding())
        return xr.create_session(self.instance, info)

    def poll(self) -> list[tuple[str, object]]:
        """Every queued event: ("STATE", name), ("PROFILE", None) or ("LOSS", None)."""
        import ctypes

        xr = self.xr
        events = []
        while True:
            buffer = xr.EventDataBuffer()
            code = int(xr.raw_functions.xrPollEvent(self.instance, ctypes.byref(buffer)))
            if code != 0:
                return events
            kind = xr.StructureType(buffer.type)
            if kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                event = ctypes.cast(
                    ctypes.byref(buffer), ctypes.POINTER(xr.EventDataSessionStateChanged)
                ).contents
                events.append(("STATE", xr.SessionState(event.state).name))
            elif kind == xr.StructureType.EVENT_DATA_INTERACTION_PROFILE_CHANGED:
                events.append(("PROFILE", None))
            else:
                events.append((kind.name, None))

    def space(self, session, kind, position=(0.0, 0.0, 0.0)):
        xr = self.xr
        pose = xr.Posef(xr.Quaternionf(0, 0, 0, 1), xr.Vector3f(*position))
        info = xr.ReferenceSpaceCreateInfo(reference_space_type=kind, pose_in_reference_space=pose)
        return xr.create_reference_space(session, info)

    def swapchain(self, session, width, height, fmt=0x8058):
        xr = self.xr
        info = xr.SwapchainCreateInfo(
            usage_flags=xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT
            | xr.SwapchainUsageFlags.SAMPLED_BIT,
            format=fmt, sample_count=1, width=width, height=height,
            face_count=1, array_size=1, mip_count=1,
        )  # fmt: skip
        handle = xr.create_swapchain(session, info)
        images = xr.enumerate_swapchain_images(handle, xr.SwapchainImageOpenGLKHR)
        return handle, [image.image for image in images]

    def draw(self, handle, images, width, height, bands):
        """Acquire, wait, clear ``bands`` [(x, y, w, h, rgb)] with scissor on an FBO, release."""
        from OpenGL import GL

        xr = self.xr
        index = xr.acquire_swapchain_image(handle, xr.SwapchainImageAcquireInfo())
        xr.wait_swapchain_image(handle, xr.SwapchainImageWaitInfo(timeout=100_000_000))
        fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
        GL.glFramebufferTexture2D(
            GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, images[index], 0
        )
        assert GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER) == GL.GL_FRAMEBUFFER_COMPLETE
        GL.glEnable(GL.GL_SCISSOR_TEST)
        for x, y, w, h, rgb in bands:
            GL.glScissor(x, y, w, h)
            GL.glClearColor(*(c / 255.0 for c in rgb), 1.0)
            GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        GL.glDisable(GL.GL_SCISSOR_TEST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        GL.glDeleteFramebuffers(1, [fbo])
        xr.release_swapchain_image(handle, xr.SwapchainImageReleaseInfo())
        return index

    def sub_image(self, handle, rect):
        xr = self.xr
        x, y, w, h = rect
        return xr.SwapchainSubImage(
            swapchain=handle, image_rect=xr.Rect2Di(xr.Offset2Di(x, y), xr.Extent2Di(w, h))
        )

    def path(self, text):
        return self.xr.string_to_path(self.instance, text)


def _pose(pose) -> dict:
    return {
        "position": [pose.position.x, pose.position.y, pose.position.z],
        "orientation": [pose.orientation.x, pose.orientation.y, pose.orientation.z,
                        pose.orientation.w],
    }  # fmt: skip


def _actions(d: Driver, *, touch: bool = True):
    """An action set (squeeze float, trigger boolean, hand pose, haptic) with suggestions."""
    xr = d.xr
    hands = [d.path("/user/hand/left"), d.path("/user/hand/right")]
    action_set = xr.create_action_set(
        d.instance,
        xr.ActionSetCreateInfo(
            action_set_name="main", localized_action_set_name="Main", priority=0
        ),
    )
    actions = {}
    for name, kind in (
        ("squeeze", xr.ActionType.FLOAT_INPUT), ("trigger", xr.ActionType.BOOLEAN_INPUT),
        ("hand_pose", xr.ActionType.POSE_INPUT), ("buzz", xr.ActionType.VIBRATION_OUTPUT),
    ):  # fmt: skip
        actions[name] = xr.create_action(
            action_set,
            xr.ActionCreateInfo(
                action_type=kind, action_name=name, localized_action_name=name.title(),
                subaction_paths=hands,
            ),
        )  # fmt: skip
    suggestions = {
        "/interaction_profiles/khr/simple_controller": (
            ("trigger", "input/select/click"), ("hand_pose", "input/grip/pose"),
            ("buzz", "output/haptic"),
        ),
        "/interaction_profiles/oculus/touch_controller": (
            ("squeeze", "input/squeeze/value"), ("trigger", "input/trigger/value"),
            ("hand_pose", "input/grip/pose"), ("buzz", "output/haptic"),
        ),
    }  # fmt: skip
    for profile, pairs in suggestions.items():
        if not touch and "touch" in profile:
            continue
        bindings = [
            xr.ActionSuggestedBinding(actions[name], d.path(f"/user/hand/{side}/{component}"))
            for name, component in pairs
            for side in ("left", "right")
        ]
        xr.suggest_interaction_profile_bindings(
            d.instance,
            xr.InteractionProfileSuggestedBinding(
                interaction_profile=d.path(profile), suggested_bindings=bindings
            ),
        )
    return action_set, actions, hands


def _action_space(d: Driver, session, action, hand, z=0.0):
    xr = d.xr
    pose = xr.Posef(xr.Quaternionf(0, 0, 0, 1), xr.Vector3f(0, 0, z))
    info = xr.ActionSpaceCreateInfo(action=action, subaction_path=hand, pose_in_action_space=pose)
    return xr.create_action_space(session, info)


def _sync(d: Driver, session, action_set) -> str:
    import ctypes

    xr = d.xr
    info = xr.ActionsSyncInfo(active_action_sets=[xr.ActiveActionSet(action_set, xr.NULL_PATH)])
    return d.result(xr.raw_functions.xrSyncActions, session, ctypes.byref(info))


def scenario_sizes() -> dict:
    import ctypes
    import os

    manifest = json.loads(Path(os.environ["XR_RUNTIME_JSON"]).read_text())
    library = ctypes.CDLL(manifest["runtime"]["library_path"])
    library.surgplan_xr_test_struct_size.restype = ctypes.c_size_t
    library.surgplan_xr_test_struct_size.argtypes = [ctypes.c_char_p]
    import xr

    sizes = {}
    for name in (
        "Posef InstanceCreateInfo SystemProperties ViewConfigurationView GraphicsBindingEGLMNDX "
        "GraphicsBindingOpenGLXlibKHR EventDataBuffer EventDataSessionStateChanged "
        "ReferenceSpaceCreateInfo ActionSpaceCreateInfo SpaceLocation ViewLocateInfo View "
        "SwapchainCreateInfo SwapchainImageOpenGLKHR FrameState FrameEndInfo "
        "CompositionLayerProjectionView CompositionLayerProjection CompositionLayerQuad "
        "ActionSetCreateInfo ActionCreateInfo InteractionProfileSuggestedBinding ActionsSyncInfo "
        "ActionStateBoolean ActionStateFloat ActionStateVector2f ActionStatePose "
        "SystemGraphicsProperties GraphicsRequirementsOpenGLKHR SwapchainImageWaitInfo "
        "HapticActionInfo BoundSourcesForActionEnumerateInfo InteractionProfileState"
    ).split():
        ours = library.surgplan_xr_test_struct_size(f"Xr{name}".encode())
        sizes[name] = [ours, ctypes.sizeof(getattr(xr, name))]
    return {"sizes": sizes}


def scenario_lifecycle() -> dict:
    import ctypes

    d = Driver()
    xr = d.xr
    report: dict = {}
    props = xr.get_system_properties(d.instance, d.system)
    g, t = props.graphics_properties, props.tracking_properties
    report["system_name"] = props.system_name.decode()
    report["graphics"] = [
        g.max_swapchain_image_width,
        g.max_swapchain_image_height,
        g.max_layer_count,
    ]
    report["tracking"] = [bool(t.orientation_tracking), bool(t.position_tracking)]
    report["view_configurations"] = [
        int(v) for v in xr.enumerate_view_configurations(d.instance, d.system)
    ]
    stereo = xr.ViewConfigurationType.PRIMARY_STEREO
    xr.get_view_configuration_properties(d.instance, d.system, stereo)
    views = xr.enumerate_view_configuration_views(d.instance, d.system, stereo)
    report["views"] = [
        [v.recommended_image_rect_width, v.max_image_rect_width, v.recommended_image_rect_height,
         v.max_image_rect_height, v.recommended_swapchain_sample_count,
         v.max_swapchain_sample_count]
        for v in views
    ]  # fmt: skip
    report["blend_modes"] = [
        int(m) for m in xr.enumerate_environment_blend_modes(d.instance, d.system, stereo)
    ]
    req = d.requirements()
    report["requirements"] = [
        str(xr.Version(req.min_api_version_supported)),
        str(xr.Version(req.max_api_version_supported)),
    ]
    squeeze_path = d.path("/user/hand/right/input/squeeze/value")
    report["path_roundtrip"] = xr.path_to_string(d.instance, squeeze_path)
    action_set, actions, hands = _actions(d)

    session = d.session()
    events = d.poll()
    xr.begin_session(session, xr.SessionBeginInfo(stereo))
    events += d.poll()
    report["reference_spaces"] = [int(k) for k in xr.enumerate_reference_spaces(session)]
    report["formats"] = list(xr.enumerate_swapchain_formats(session))
    bounds = xr.get_reference_space_bounds_rect(session, xr.ReferenceSpaceType.STAGE)
    report["stage_bounds"] = [bounds.width, bounds.height]
    local = d.space(session, xr.ReferenceSpaceType.LOCAL)
    stage = d.space(session, xr.ReferenceSpaceType.STAGE)
    view = d.space(session, xr.ReferenceSpaceType.VIEW)
    quad_space = d.space(session, xr.ReferenceSpaceType.VIEW)
    xr.attach_session_action_sets(session, xr.SessionActionSetsAttachInfo(action_sets=[action_set]))
    report["profile"] = xr.path_to_string(
        d.instance, xr.get_current_interaction_profile(session, hands[1]).interaction_profile
    )
    hand_space = _action_space(d, session, actions["hand_pose"], hands[1])
    grip_space = _action_space(d, session, actions["hand_pose"], hands[1], z=-0.05)
    eyes = [d.swapchain(session, VIEW_W, VIEW_H, fmt) for fmt in (0x8C43, 0x8058)]
    quad = d.swapchain(session, *QUAD_SIZE)

    frames = []
    exit_at, stopping = 6, False
    for index in range(30):
        state = xr.wait_frame(session, xr.FrameWaitInfo())
        xr.begin_frame(session, xr.FrameBeginInfo())
        when = state.predicted_display_time
        view_state, located = xr.locate_views(session, xr.ViewLocateInfo(stereo, when, local))
        record = {
            "index": index, "predicted": when, "period": state.predicted_display_period,
            "should_render": bool(state.should_render),
            "view_flags": int(view_state.view_state_flags),
            "views": [
                {**_pose(v.pose), "fov": [v.fov.angle_left, v.fov.angle_right, v.fov.angle_up,
                                          v.fov.angle_down]}
                for v in located
            ],
        }  # fmt: skip
        layers = []
        if state.should_render:
            record["image_index"] = []
            projection_views = []
            for eye, (handle, images) in enumerate(eyes):
                top, bottom = EYE_COLOURS[eye]
                half = VIEW_H // 2
                record["image_index"].append(
                    d.draw(handle, images, VIEW_W, VIEW_H,
                           [(0, half, VIEW_W, VIEW_H - half, top), (0, 0, VIEW_W, half, bottom)])
                )  # fmt: skip
                projection_views.append(
                    xr.CompositionLayerProjectionView(
                        pose=located[eye].pose, fov=located[eye].fov,
                        sub_image=d.sub_image(handle, (0, 0, VIEW_W, VIEW_H)),
                    )
                )  # fmt: skip
            x, y, w, h = QUAD_RECT
            d.draw(quad[0], quad[1], *QUAD_SIZE, [
                (0, 0, *QUAD_SIZE, QUAD_COLOURS["outside"]),
                (x, y, w, h - h // 2, QUAD_COLOURS["bottom"]),
                (x, y + h - h // 2, w, h // 2, QUAD_COLOURS["top"]),
            ])  # fmt: skip
            layers = [
                xr.CompositionLayerProjection(space=local, views=projection_views),
                xr.CompositionLayerQuad(
                    space=quad_space, eye_visibility=xr.EyeVisibility.BOTH,
                    sub_image=d.sub_image(quad[0], QUAD_RECT),
                    pose=xr.Posef(xr.Quaternionf(0, 0, 0, 1), xr.Vector3f(0, 0, -1)),
                    size=xr.Extent2Df(0.4, 0.3),
                ),
            ]  # fmt: skip
        xr.end_frame(
            session,
            xr.FrameEndInfo(
                display_time=when, environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE,
                layers=[ctypes.byref(layer) for layer in layers],
            ),
        )  # fmt: skip
        new = d.poll()
        events += new
        record["focused_sync"] = _sync(d, session, action_set) == "SUCCESS"
        get = xr.ActionStateGetInfo
        s = xr.get_action_state_float(session, get(actions["squeeze"], hands[1]))
        record["squeeze"] = {"value": s.current_state, "changed": bool(s.changed_since_last_sync),
                             "active": bool(s.is_active)}  # fmt: skip
        b = xr.get_action_state_boolean(session, get(actions["trigger"], xr.NULL_PATH))
        record["trigger"] = {"value": bool(b.current_state), "active": bool(b.is_active)}
        record["pose_active"] = bool(
            xr.get_action_state_pose(session, get(actions["hand_pose"], hands[1])).is_active
        )
        hand = xr.locate_space(hand_space, local, when)
        record["hand"] = {"flags": int(hand.location_flags), **_pose(hand.pose)}
        record["hand_stage"] = _pose(xr.locate_space(hand_space, stage, when).pose)
        record["grip_offset"] = _pose(xr.locate_space(grip_space, local, when).pose)["position"]
        record["view_in_stage"] = _pose(xr.locate_space(view, stage, when).pose)["position"]
        if record["focused_sync"]:
            xr.apply_haptic_feedback(
                session, xr.HapticActionInfo(actions["buzz"], hands[0]),
                _vibration(xr),
            )  # fmt: skip
        frames.append(record)
        if index == exit_at:
            xr.request_exit_session(session)
            events += d.poll()
        if ("STATE", "STOPPING") in events:
            stopping = True
            break
    assert stopping, events
    xr.end_session(session)
    events += d.poll()
    report["states"] = [name for kind, name in events if kind == "STATE"]
    report["profile_events"] = sum(kind == "PROFILE" for kind, _ in events)
    report["frames"] = frames
    for handle, _ in (*eyes, quad):
        xr.destroy_swapchain(handle)
    for space in (local, stage, view, quad_space, hand_space, grip_space):
        xr.destroy_space(space)
    xr.destroy_action_set(action_set)
    xr.destroy_session(session)
    report["layer_messages"] = d.messages
    xr.destroy_instance(d.instance)
    return report


def _vibration(xr):
    return xr.HapticVibration(amplitude=0.5, duration=1_000_000, frequency=xr.FREQUENCY_UNSPECIFIED)


def scenario_blend() -> dict:
    d = Driver()
    xr = d.xr
    stereo = xr.ViewConfigurationType.PRIMARY_STEREO
    modes = xr.enumerate_environment_blend_modes(d.instance, d.system, stereo)
    messages = list(d.messages)
    xr.destroy_instance(d.instance)
    return {"blend_modes": [int(m) for m in modes], "layer_messages": messages}


def _frame_end(xr, when, layers=(), blend=None):
    """An XrFrameEndInfo and a pointer to it (the layers are kept alive with them)."""
    import ctypes

    layers = list(layers)
    info = xr.FrameEndInfo(
        display_time=when,
        environment_blend_mode=blend or xr.EnvironmentBlendMode.OPAQUE,
        layers=[ctypes.byref(layer) for layer in layers],
    )
    return (info, layers), ctypes.byref(info)


def _projection(d: Driver, space, handle, rects, count=2):
    xr = d.xr
    views = [
        xr.CompositionLayerProjectionView(
            pose=xr.Posef(), fov=xr.Fovf(-0.5, 0.5, 0.5, -0.5), sub_image=d.sub_image(handle, rect)
        )
        for rect in rects[:count]
    ]
    return xr.CompositionLayerProjection(space=space, views=views)


def scenario_errors() -> dict:  # noqa: PLR0915  (one call per checked error code)
    import ctypes

    d = Driver(layers=())
    xr, raw, r = d.xr, d.xr.raw_functions, {}
    byref = ctypes.byref
    stereo = xr.ViewConfigurationType.PRIMARY_STEREO
    handle = xr.Session()
    info = xr.SessionCreateInfo(system_id=d.system, next=d.binding())
    r["session_before_requirements"] = d.result(
        raw.xrCreateSession, d.instance, byref(info), byref(handle)
    )
    d.requirements()
    bare = xr.SessionCreateInfo(system_id=d.system)
    r["session_without_binding"] = d.result(
        raw.xrCreateSession, d.instance, byref(bare), byref(handle)
    )
    path = xr.Path()
    r["bad_path"] = d.result(raw.xrStringToPath, d.instance, b"/user//hand", byref(path))
    count = ctypes.c_uint32()
    r["unknown_path"] = d.result(raw.xrPathToString, d.instance, 9999, 0, byref(count), None)
    session = d.session()
    r["request_exit_not_running"] = d.call(xr.request_exit_session, session)
    r["end_not_running"] = d.call(xr.end_session, session)
    r["wait_frame_not_running"] = d.call(xr.wait_frame, session, None)
    wrong = xr.SessionBeginInfo(xr.ViewConfigurationType.PRIMARY_MONO)
    r["begin_wrong_view_configuration"] = d.call(xr.begin_session, session, wrong)
    r["begin"] = d.call(xr.begin_session, session, xr.SessionBeginInfo(stereo))
    r["begin_twice"] = d.call(xr.begin_session, session, xr.SessionBeginInfo(stereo))
    r["end_not_stopping"] = d.call(xr.end_session, session)
    r["begin_frame_without_wait"] = d.result(raw.xrBeginFrame, session, None)
    state = xr.wait_frame(session, None)
    when = state.predicted_display_time
    _, end_info = _frame_end(xr, when)
    r["end_frame_without_begin"] = d.result(raw.xrEndFrame, session, end_info)
    d.result(raw.xrBeginFrame, session, None)
    xr.wait_frame(session, None)
    r["begin_frame_again"] = d.result(raw.xrBeginFrame, session, None)

    def swapchain_result(fmt, width, array_size=1):
        info = xr.SwapchainCreateInfo(
            usage_flags=xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT, format=fmt, sample_count=1,
            width=width, height=16, face_count=1, array_size=array_size, mip_count=1,
        )  # fmt: skip
        return d.result(raw.xrCreateSwapchain, session, byref(info), byref(xr.Swapchain()))

    r["format_unsupported"] = swapchain_result(0x1908, 16)
    r["too_large"] = swapchain_result(0x8058, 9000)
    r["array_swapchain"] = swapchain_result(0x8058, 16, array_size=2)
    sc, images = d.swapchain(session, 32, 32)
    wait = xr.SwapchainImageWaitInfo(timeout=1000)
    r["wait_image_unacquired"] = d.result(raw.xrWaitSwapchainImage, sc, byref(wait))
    r["release_unwaited"] = d.result(raw.xrReleaseSwapchainImage, sc, None)
    for _ in range(3):
        xr.acquire_swapchain_image(sc, None)
    index = ctypes.c_uint32()
    r["acquire_fourth"] = d.result(raw.xrAcquireSwapchainImage, sc, None, byref(index))
    xr.wait_swapchain_image(sc, wait)
    r["wait_image_twice"] = d.result(raw.xrWaitSwapchainImage, sc, byref(wait))
    local = d.space(session, xr.ReferenceSpaceType.LOCAL)
    full = [(0, 0, 32, 32)] * 2
    _, end_info = _frame_end(xr, when, [_projection(d, local, sc, full)])
    r["end_frame_unreleased"] = d.result(raw.xrEndFrame, session, end_info)
    xr.release_swapchain_image(sc, None)
    keep = _frame_end(xr, when, [_projection(d, local, sc, [(0, 0, 32, 32), (8, 8, 32, 32)])])
    r["end_frame_rect_outside"] = d.result(raw.xrEndFrame, session, keep[1])
    keep = _frame_end(xr, when, [_projection(d, local, sc, full, count=1)])
    r["end_frame_one_view"] = d.result(raw.xrEndFrame, session, keep[1])
    keep = _frame_end(xr, when, blend=xr.EnvironmentBlendMode.ADDITIVE)
    r["end_frame_blend_unoffered"] = d.result(raw.xrEndFrame, session, keep[1])
    keep = _frame_end(xr, 0)
    r["end_frame_zero_time"] = d.result(raw.xrEndFrame, session, keep[1])
    bad_layer = _projection(d, local, sc, full)
    bad_layer.type = xr.StructureType.COMPOSITION_LAYER_CUBE_KHR
    keep = _frame_end(xr, when, [bad_layer])
    r["end_frame_bad_layer_type"] = d.result(raw.xrEndFrame, session, keep[1])
    keep = _frame_end(xr, when, [_projection(d, local, sc, full)])
    r["end_frame"] = d.result(raw.xrEndFrame, session, keep[1])

    action_set, actions, hands = _actions(d, touch=False)
    r["sync_before_attach"] = _sync(d, session, action_set)
    state = xr.InteractionProfileState()
    r["profile_before_attach"] = d.result(
        raw.xrGetCurrentInteractionProfile, session, hands[0], byref(state)
    )
    touch = d.path("/interaction_profiles/oculus/touch_controller")
    bad = xr.InteractionProfileSuggestedBinding(
        interaction_profile=touch,
        suggested_bindings=[
            xr.ActionSuggestedBinding(actions["trigger"], d.path("/user/hand/left/input/a/click"))
        ],
    )
    r["bad_binding"] = d.result(raw.xrSuggestInteractionProfileBindings, d.instance, byref(bad))
    attach = xr.SessionActionSetsAttachInfo(action_sets=[action_set])
    r["attach"] = d.result(raw.xrAttachSessionActionSets, session, byref(attach))
    r["attach_twice"] = d.result(raw.xrAttachSessionActionSets, session, byref(attach))
    good = xr.InteractionProfileSuggestedBinding(
        interaction_profile=touch,
        suggested_bindings=[
            xr.ActionSuggestedBinding(actions["trigger"], d.path("/user/hand/right/input/a/click"))
        ],
    )
    r["suggest_after_attach"] = d.result(
        raw.xrSuggestInteractionProfileBindings, d.instance, byref(good)
    )
    get = xr.ActionStateGetInfo(actions["squeeze"], xr.NULL_PATH)
    boolean = xr.ActionStateBoolean()
    r["float_as_boolean"] = d.result(
        raw.xrGetActionStateBoolean, session, byref(get), byref(boolean)
    )
    r["second_session"] = d.result(raw.xrCreateSession, d.instance, byref(info), byref(handle))
    d.poll()
    buffer = xr.EventDataBuffer()
    r["poll_empty"] = d.result(raw.xrPollEvent, d.instance, byref(buffer))
    xr.destroy_instance(d.instance)  # destroys the session, spaces, swapchains and actions too
    return r


def _running_session(d: Driver):
    """A session begun, a LOCAL space, an attached action set, one swapchain."""
    xr = d.xr
    d.requirements()
    action_set, actions, hands = _actions(d)
    session = d.session()
    xr.begin_session(session, xr.SessionBeginInfo(xr.ViewConfigurationType.PRIMARY_STEREO))
    xr.attach_session_action_sets(session, xr.SessionActionSetsAttachInfo(action_sets=[action_set]))
    local = d.space(session, xr.ReferenceSpaceType.LOCAL)
    sc = d.swapchain(session, 32, 32)
    return session, local, action_set, sc


def _one_frame(d: Driver, session, local, sc) -> tuple[str, int]:
    import ctypes

    xr = d.xr
    state = xr.wait_frame(session, None)
    xr.begin_frame(session, None)
    layers = []
    if state.should_render:
        d.draw(*sc, 32, 32, [(0, 0, 32, 32, (1, 2, 3))])
        layers = [_projection(d, local, sc[0], [(0, 0, 32, 32)] * 2)]
    info = xr.FrameEndInfo(
        display_time=state.predicted_display_time,
        environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE,
        layers=[ctypes.byref(layer) for layer in layers],
    )
    return d.result(xr.raw_functions.xrEndFrame, session, ctypes.byref(info)), (
        state.predicted_display_time
    )


def scenario_loss() -> dict:
    import ctypes

    d = Driver()
    xr, raw = d.xr, d.xr.raw_functions
    byref = ctypes.byref
    session, local, action_set, sc = _running_session(d)
    ends, events = [], []
    for _ in range(2):
        result, when = _one_frame(d, session, local, sc)
        ends.append(result)
        events += d.poll()
    after = {}
    state = xr.FrameState()
    after["wait_frame"] = d.result(raw.xrWaitFrame, session, None, byref(state))
    after["begin_frame"] = d.result(raw.xrBeginFrame, session, None)
    end = xr.FrameEndInfo(
        display_time=state.predicted_display_time,
        environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE,
    )
    after["end_frame"] = d.result(raw.xrEndFrame, session, byref(end))
    locate = xr.ViewLocateInfo(xr.ViewConfigurationType.PRIMARY_STEREO, when, local)
    view_state, count = xr.ViewState(), ctypes.c_uint32()
    after["locate_views"] = d.result(
        raw.xrLocateViews, session, byref(locate), byref(view_state), 0, byref(count), None
    )
    after["sync_actions"] = _sync(d, session, action_set)
    after["request_exit"] = d.result(raw.xrRequestExitSession, session)
    after["end_session"] = d.result(raw.xrEndSession, session)
    begin = xr.SessionBeginInfo(xr.ViewConfigurationType.PRIMARY_STEREO)
    after["begin_session"] = d.result(raw.xrBeginSession, session, byref(begin))
    messages = list(d.messages)
    teardown = [
        d.result(raw.xrDestroySwapchain, sc[0]),
        d.result(raw.xrDestroySpace, local),
        d.result(raw.xrDestroySession, session),
        d.result(raw.xrDestroyInstance, d.instance),
    ]
    states = [name for kind, name in events if kind == "STATE"]
    return {"end_frames": ends, "states": states, "after": after, "teardown": teardown,
            "layer_messages": messages}  # fmt: skip


def scenario_instance_lost() -> dict:
    import ctypes

    d = Driver()
    xr, raw = d.xr, d.xr.raw_functions
    byref = ctypes.byref
    session, local, action_set, sc = _running_session(d)
    d.poll()
    result, when = _one_frame(d, session, local, sc)
    buffer = xr.EventDataBuffer()
    first = d.result(raw.xrPollEvent, d.instance, byref(buffer))
    report = {"end_frame": result, "first_poll": [first, xr.StructureType(buffer.type).name]}
    after = {"poll_event": d.result(raw.xrPollEvent, d.instance, byref(xr.EventDataBuffer()))}
    after["wait_frame"] = d.result(raw.xrWaitFrame, session, None, byref(xr.FrameState()))
    after["locate_space"] = d.result(
        raw.xrLocateSpace, local, local, when, byref(xr.SpaceLocation())
    )
    after["string_to_path"] = d.result(
        raw.xrStringToPath, d.instance, b"/user/head", byref(xr.Path())
    )
    after["sync_actions"] = _sync(d, session, action_set)
    report["after"] = after
    report["layer_messages"] = list(d.messages)
    report["teardown"] = [
        d.result(raw.xrDestroySwapchain, sc[0]),
        d.result(raw.xrDestroySpace, local),
        d.result(raw.xrDestroyActionSet, action_set),
        d.result(raw.xrDestroySession, session),
        d.result(raw.xrDestroyInstance, d.instance),
    ]
    return report


def scenario_bad_script() -> dict:
    import ctypes

    d = Driver(layers=())
    xr = d.xr
    d.requirements()
    info = xr.SessionCreateInfo(system_id=d.system, next=d.binding())
    handle = xr.Session()
    result = d.result(
        xr.raw_functions.xrCreateSession, d.instance, ctypes.byref(info), ctypes.byref(handle)
    )
    xr.destroy_instance(d.instance)
    return {"create_session": result}


if __name__ == "__main__":
    print(json.dumps(globals()[f"scenario_{sys.argv[1]}"]()))
