"""``vr.openxr_backend``: instance and system through the loader, layers and test runtime.

``tests/openxr_test_runtime/runtime.c`` is compiled with the machine's C compiler and found by
the Khronos loader shipped in pyopenxr's wheel through ``XR_RUNTIME_JSON``; the instance is
created through the core and best-practices validation API layers, whose log must show no
error. Each check runs in its own process (the loader reads the environment once).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.openxr_test_runtime.build import build_runtime, runtime_env

REPO = Path(__file__).resolve().parents[1]

CHECK = """
import json
from vr.errors import VrError
from vr.openxr_backend import (
    BEST_PRACTICES_LAYER, CORE_VALIDATION_LAYER, open_instance, open_system,
)
instance = open_instance(validation=[CORE_VALIDATION_LAYER, BEST_PRACTICES_LAYER])
report = {"runtime": instance.runtime_name, "layers": list(instance.layers),
          "extensions": list(instance.extensions)}
try:
    report["system"] = open_system(instance).value
except VrError as error:
    report["system_error"] = str(error)
instance.destroy()
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def runtime_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_runtime(tmp_path_factory.mktemp("xr_runtime"))


def run_check(runtime_json: Path, tmp_path: Path, **extra: str) -> tuple[dict, str]:
    log = tmp_path / "core_validation.txt"
    env = runtime_env(runtime_json, XR_CORE_VALIDATION_FILE_NAME=str(log), **extra)
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), log.read_text()


def test_instance_and_system_through_the_loader_and_validation_layers(runtime_json, tmp_path):
    report, log = run_check(runtime_json, tmp_path)
    assert report["runtime"] == "surgplan headless test runtime"
    assert report["extensions"] == ["XR_KHR_opengl_enable", "XR_MNDX_egl_enable"]  # offered
    assert report["layers"] == [
        "XR_APILAYER_LUNARG_core_validation",
        "XR_APILAYER_KHRONOS_best_practices_validation",
    ]
    assert report["system"] == 1
    assert "Core Validation Layer is initialized" in log  # the layer really ran
    assert "VALID_ERROR" not in log and "VALID_WARNING" not in log, log


def test_no_headset_is_one_clear_error(runtime_json, tmp_path):
    report, log = run_check(runtime_json, tmp_path, SURGPLAN_XR_TEST_NO_HMD="1")
    assert report["system_error"] == (
        "OpenXR runtime 'surgplan headless test runtime' reports no head-mounted display "
        "(is the headset connected and on?); use --backend simulated to run without a headset"
    )
    assert "VALID_ERROR" not in log


MISUSE = """
import xr
from vr.openxr_backend import CORE_VALIDATION_LAYER, open_instance
instance = open_instance(validation=[CORE_VALIDATION_LAYER])
info = xr.SystemGetInfo()
info.type = xr.StructureType.SYSTEM_PROPERTIES  # the wrong structure type
try:
    xr.get_system(instance.handle, info)
except xr.ValidationFailureError:
    print("refused")
instance.destroy()
"""


def test_the_core_validation_layer_catches_misuse(runtime_json, tmp_path):
    """Negative control: the log check above would see a misuse of the API."""
    log = tmp_path / "core_validation.txt"
    env = runtime_env(runtime_json, XR_CORE_VALIDATION_FILE_NAME=str(log))
    done = subprocess.run(
        [sys.executable, "-c", MISUSE], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip().endswith("refused"), done.stderr
    assert "VALID_ERROR | VUID-XrSystemGetInfo-type-type | xrGetSystem" in log.read_text()
