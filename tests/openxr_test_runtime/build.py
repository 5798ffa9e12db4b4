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
    Each ``xrEndFrame`` appends one JSON line to ``DIR/frames.jsonl`` and writes the submitted
    images as binary PPMs (``frame_NNNNNN_viewK.ppm``, ``frame_NNNNNN_quadK.ppm``; row 0 at the
    top); see ``runtime.c`` for the line's fields.
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
    One line ``xrFunction XR_RESULT`` appended per API call.
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
