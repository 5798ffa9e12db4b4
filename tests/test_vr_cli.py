"""``surgplan vr`` in real subprocesses, and the case -> VR scene adapter (surgplan.vr_scene)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

#: The case's structures: (name, file of ``../shared/data/liver_models``).
MODELS = (
    ("liver", "liver.vtk"),
    ("tumour", "liver_tumours.vtk"),
    ("portal_vein", "portal_vein.vtk"),
)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path) -> Path:
    """A case of the real liver models' surfaces (``surgplan import-model``; no scan)."""
    from surgplan.model_import import import_model

    folder = tmp_path_factory.mktemp("vr_case") / "case"
    for name, file in MODELS:
        import_model(liver_models_dir / file, folder, structure=name)
    return folder


def surgplan(*args: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XR_")}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-c", "from surgplan.cli import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def test_openxr_without_a_runtime_is_one_line_exit_2(case: Path, tmp_path: Path) -> None:
    done = surgplan("vr", str(case), "--backend", "openxr")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no OpenXR runtime found")
    assert "XR_RUNTIME_JSON" in lines[0] and "--backend simulated" in lines[0]
    assert done.stdout == ""
    bogus = surgplan("vr", str(case), XR_RUNTIME_JSON=str(tmp_path / "none.json"))
    assert bogus.returncode == 2
    assert bogus.stderr.strip() == (
        f"error: no OpenXR runtime: XR_RUNTIME_JSON={tmp_path / 'none.json'} is not a file "
        "(it must name the runtime's manifest JSON); use --backend simulated to run without a "
        "headset"
    )
    manifest = tmp_path / "runtime.json"  # a manifest whose library does not exist
    manifest.write_text(json.dumps({"file_format_version": "1.0.0", "runtime": {
        "name": "missing", "library_path": str(tmp_path / "libnothing.so")}}))  # fmt: skip
    broken = surgplan("vr", str(case), XR_RUNTIME_JSON=str(manifest))
    assert broken.returncode == 2 and len(broken.stderr.strip().splitlines()) == 1
    assert f"XR_RUNTIME_JSON={manifest} did not load" in broken.stderr


def test_simulated_run_writes_both_eyes_and_frame_stats(case: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    done = surgplan(
        "vr", str(case), "--backend", "simulated", "--frames", "2", "--size", "96", "80",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backend"] == "simulated" and report["ended_by"] == "exit"
    assert report["states"][:5] == ["IDLE", "READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED"]
    assert report["stats"]["rendered_frames"] == 2
    assert report["stats"]["eye_render_ms"]["median"] > 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_000{i}_{side}.png" for i in (2, 3) for side in ("left", "right")]
    assert sorted(Path(p).name for p in report["written"]) == names
    for name in names:
        eye = np.asarray(Image.open(out / name).convert("RGB"))
        assert eye.shape == (80, 96, 3)
        lit = eye.max(axis=2) > 30
        rows, cols = np.nonzero(lit)
        assert lit.sum() > 60  # the twin (about 20 degrees wide) ahead of each eye
        assert 30 < cols.mean() < 66 and 20 < rows.mean() < 60


def test_bad_requests_are_one_line_exit_2(case: Path, tmp_path: Path) -> None:
    not_case = surgplan("vr", str(tmp_path), "--backend", "simulated", "--frames", "1")
    assert not_case.returncode == 2 and not_case.stderr.startswith("error: ")
    assert len(not_case.stderr.strip().splitlines()) == 1
    live = surgplan("vr", str(case), "--live", "127.0.0.1:18944")  # no calibration yet
    assert live.returncode == 2 and len(live.stderr.strip().splitlines()) == 1
    assert "has no headset-to-tracker calibration: run 'surgplan vr-calibrate" in live.stderr
    bad = surgplan("vr", str(case), "--live", "localhost", "--backend", "simulated")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: --live must be HOST:PORT with a port in 1..65535, got 'localhost'"
    )


def test_case_scene_layers_colours_and_rehearsal_placement(case: Path) -> None:
    from surgplan.vr_scene import R_XR_LPS, case_vr_scene, layer_of

    scene = case_vr_scene(case)
    layers = {m.name: m.layer for m in scene.meshes}
    assert layers == {
        "liver": "organ",
        "tumour": "tumour",
        "portal_vein": "vessels",
    }
    assert layer_of("Hepatic veins") == "vessels" and layer_of("lesion_2") == "tumour"
    points = np.vstack([m.mesh.points for m in scene.meshes])
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    placed = scene.T_world_twin @ np.append(centre, 1.0)
    assert placed[:3] == pytest.approx([0.0, 0.0, -600.0], abs=1e-6)
    assert scene.T_world_twin[:3, :3] @ np.array([0, 0, 1.0]) == pytest.approx([0, 1.0, 0])  # S up
    assert np.linalg.det(R_XR_LPS) == pytest.approx(1.0)
    assert all(0 <= c <= 1 for m in scene.meshes for c in m.colour)
