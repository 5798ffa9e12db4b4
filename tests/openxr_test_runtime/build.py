"""Build the headless OpenXR test runtime and give test processes an environment for it.

``runtime.c`` is compiled with the machine's C compiler into a shared library, and a loader
manifest naming it is written next to it; ``XR_RUNTIME_JSON`` pointing at that manifest makes the
Khronos loader in pyopenxr's wheel load it. The loader reads the environment once per process,
so each check runs in its own process with :func:`runtime_env`.

Controls (environment variables read by the runtime):

``SURGPLAN_XR_TEST_NO_HMD=1``
    ``xrGetSystem`` reports ``XR_ERROR_FORM_FACTOR_UNAVAILABLE``.
``SURGPLAN_XR_TEST_VIEW_SIZE=WxH``
    Recommended eye image size (default ``2064x2208``; maximum is twice it).
``SURGPLAN_XR_TEST_BLEND=additive``
    Blend modes ADDITIVE then OPAQUE (default OPAQUE only).
``SURGPLAN_XR_TEST_THROTTLE=1``
    ``xrWaitFrame`` sleeps to the start of the predicted frame's 90 Hz period (default: no sleep).
``SURGPLAN_XR_TEST_CAPTURE_DIR=DIR``
    Each ``xrEndFrame`` appends one JSON line to ``DIR/frames.jsonl`` (format below) and writes
    the submitted images as binary PPMs before it returns.
``SURGPLAN_XR_TEST_CAPTURE_EVERY=N``
    Images of every Nth frame only (frames 0, N, 2N, ...); other frames get ``"file": null``.
``SURGPLAN_XR_TEST_SCRIPT=FILE``
    Scripted tracking, read by ``xrCreateSession``: lines ``FRAME head|left|right pose X Y Z QX QY
    QZ QW`` or ``FRAME left|right squeeze|trigger V`` (``#`` comments); FRAME is the 0-based
    ``xrWaitFrame`` call from which the value holds. A malformed line fails the session.
``SURGPLAN_XR_TEST_LOSE_AT_FRAME=N``
    After the Nth ``xrEndFrame`` (counting from 1) the session is being lost (LOSS_PENDING).
``SURGPLAN_XR_TEST_INSTANCE_LOST_AT_FRAME=N``
    After the Nth ``xrEndFrame`` the instance is lost.
``SURGPLAN_XR_TEST_LOG=FILE``
    One line ``xrFunction XR_RESULT`` appended per API call (not ``xrGetInstanceProcAddr``).

A bad value (``VIEW_SIZE``, ``BLEND``, a count) fails ``xrCreateInstance`` with
``XR_ERROR_INITIALIZATION_FAILED`` and one line on stderr.

World model: LOCAL is the identity; the STAGE origin is on the floor 1.6 m below LOCAL's
(LOCAL y = 0 is STAGE y = +1.6); VIEW is the head pose. Defaults: head at the LOCAL origin, left
hand at (-0.2, -0.3, -0.4), right at (0.2, -0.3, -0.4), identity orientations, buttons 0. Eyes
are head x translation(-+0.032, 0, 0) (left first); fovs (left, right, up, down) are
(-0.90, 0.75, 0.80, -0.85) left and (-0.75, 0.90, 0.80, -0.85) right, radians. Controllers are
``/interaction_profiles/oculus/touch_controller`` when bindings for it were suggested, else
``khr/simple_controller``; squeeze and trigger (simple: select) read the script, grip and aim
poses the hand pose, every other input 0; input is active only while FOCUSED.

Capture format, one line per ``xrEndFrame`` (``frame`` counts the session's ``xrEndFrame``
calls from 0; poses as submitted, in the layer's space, metres, quaternions x y z w)::

    {"frame": 3, "display_time_ns": 123, "blend": "OPAQUE" | "ADDITIVE", "layers": [
      {"type": "projection", "space": "LOCAL" | "STAGE" | "VIEW" | "ACTION", "views": [
        {"pose": {"position": [x, y, z], "orientation": [x, y, z, w]},
         "fov": [left, right, up, down], "rect": [x, y, w, h], "image_index": k,
         "file": "frame_000003_view0.ppm" | null}, ...]},
      {"type": "quad", "space": ..., "eye_visibility": 0 | 1 | 2, "pose": {...},
       "size": [w, h], "rect": [x, y, w, h], "image_index": k,
       "file": "frame_000003_quad0.ppm" | null}]}

``rect`` is the sub-image rectangle as submitted (OpenGL texel coordinates, y from the bottom
row); ``image_index`` the swapchain image last released, which is what is read back. Views are
numbered across the frame's projection layers (view0, view1, then view2, ...), quads likewise.
Each PPM is that image cropped to ``rect``, RGB (alpha dropped), row 0 at the top.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("runtime.c")
RUNTIME_NAME = "surgplan headless test runtime"
FLAGS = ("-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-fvisibility=hidden")
LIBRARY_NAME = "libsurgplan_xr_test_runtime.so"


class RuntimeBuildError(RuntimeError):
    """The C compiler is missing or refused ``runtime.c`` (the message holds its stderr)."""


def build_runtime(folder: Path) -> Path:
    """Compile ``runtime.c`` into ``folder`` and write its loader manifest.

    Parameters
    ----------
    folder : Path
        Existing folder for the library and ``runtime.json``.

    Returns
    -------
    Path
        The manifest, for ``XR_RUNTIME_JSON``.

    Raises
    ------
    RuntimeBuildError
        No C compiler, or the compilation failed (with the compiler's stderr).
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeBuildError(
            "a C compiler (cc or gcc) is needed to build the OpenXR test runtime"
        )
    library = Path(folder) / LIBRARY_NAME
    done = subprocess.run(
        [compiler, *FLAGS, "-o", str(library), str(SOURCE)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeBuildError(f"compiling {SOURCE} failed:\n{done.stderr}")
    manifest = Path(folder) / "runtime.json"
    manifest.write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "runtime": {"name": RUNTIME_NAME, "library_path": str(library)},
            }
        )
    )
    return manifest


def runtime_env(manifest: Path, **controls: str) -> dict[str, str]:
    """``os.environ`` without ``XR_*`` or ``SURGPLAN_XR_TEST_*``, plus the runtime and ``controls``.

    Parameters
    ----------
    manifest : Path
        From :func:`build_runtime`.
    **controls : str
        Further variables, e.g. ``SURGPLAN_XR_TEST_SCRIPT="..."`` or
        ``XR_CORE_VALIDATION_FILE_NAME="..."``.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("XR_", "SURGPLAN_XR_TEST_"))
    }
    env["XR_RUNTIME_JSON"] = str(manifest)
    env.update({key: str(value) for key, value in controls.items()})
    return env
