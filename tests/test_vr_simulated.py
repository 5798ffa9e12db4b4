"""The simulated headset: trusted/untrusted overlay on pixels, quad layer placement, eye PNGs."""

from __future__ import annotations

import numpy as np
import pytest
import pyvista as pv
from PIL import Image

from vr.errors import VrError
from vr.frame_loop import run_frame_loop
from vr.render_vtk import VtkEyeRenderer
from vr.scene import LAYERS, SceneMesh, VrScene
from vr.simulated import HeadsetModel, SimulatedBackend, run_simulated
from vr.text_quad import WARNING_RGB, text_quad
from vr.views import Pose, look_at_pose, project_points

HEADSET = HeadsetModel(width=128, height=128)
STILL = look_at_pose((0.0, 0.0, 0.0), (0.0, 0.0, -500.0), (0.0, 1.0, 0.0))
GREEN = (0.1, 0.9, 0.1)


def twin() -> tuple[SceneMesh, ...]:
    organ = SceneMesh("liver", pv.Sphere(radius=70, center=(0, 40, -500)), GREEN, layer="organ")
    tumour = SceneMesh(
        "tumour", pv.Sphere(radius=20, center=(60, 40, -450)), (0.9, 0.9, 0.1), layer="tumour"
    )
    return organ, tumour


def green_mask(eye: np.ndarray) -> np.ndarray:
    return (eye[..., 1] > 60) & (eye[..., 0] < eye[..., 1] / 2) & (eye[..., 2] < eye[..., 1] / 2)


def red_mask(eye: np.ndarray) -> np.ndarray:
    return (np.abs(eye[..., 0].astype(int) - WARNING_RGB[0]) < 8) & (eye[..., 1] < 10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    trusted = VrScene(twin(), text="TRE 2.1 mm")
    out = tmp_path_factory.mktemp("vr_frames")
    return {
        "trusted": run_simulated(
            lambda t: trusted, frames=2, headset=HEADSET, trajectory=lambda t: STILL, out_dir=out
        ),
        "out": out,
    }


def eyes(run) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in run.written[-2:]]


def test_trusted_scene_shows_the_twin_and_no_warning(runs) -> None:
    run = runs["trusted"]
    assert run.result.ended_by == "exit"
    assert len(run.written) == 4 and {p.name for p in run.written} == {
        "frame_0002_left.png", "frame_0002_right.png", "frame_0003_left.png", "frame_0003_right.png"
    }  # fmt: skip
    for eye in eyes(run):
        assert green_mask(eye).sum() > 100
        assert red_mask(eye).sum() == 0


def test_untrusted_scene_hides_the_twin_and_shows_the_warning_quad() -> None:
    sim = SimulatedBackend(HEADSET, lambda t: STILL)
    renderer = VtkEyeRenderer(HEADSET.width, HEADSET.height)
    scene = VrScene(twin(), trusted=False, warning="UNRELIABLE FIT")
    run_frame_loop(sim, renderer, lambda t: scene, max_frames=1)
    renderer.close()
    quad = text_quad("x", warning=True)
    for eye, view in zip(sim.submitted[-1], HEADSET.views(STILL), strict=True):
        assert green_mask(eye).sum() == 0  # the twin is hidden
        red = red_mask(eye)
        assert red.sum() > 200  # the warning shows
        corners = project_points(view, quad.corners_world(STILL))
        rows, cols = np.nonzero(red)  # the quad sits where its pose puts it in this eye
        assert cols.min() == pytest.approx(corners[:, 0].min(), abs=1.5)
        assert cols.max() + 1 == pytest.approx(corners[:, 0].max(), abs=1.5)
        assert rows.min() == pytest.approx(corners[:, 1].min(), abs=1.5)
        assert rows.max() + 1 == pytest.approx(corners[:, 1].max(), abs=1.5)


def test_frame_time_statistics_are_reported(runs) -> None:
    stats = runs["trusted"].result.stats()
    assert stats["rendered_frames"] == 2
    frame, eye = stats["frame_ms"], stats["eye_render_ms"]
    assert 0 < eye["median"] <= eye["max"] and frame["max"] >= frame["median"] > 0
    assert frame["mean"] >= eye["mean"]  # a frame renders two eyes


def test_scene_rules_layers_and_trust() -> None:
    organ, tumour = twin()
    with pytest.raises(VrError, match="untrusted scene must carry the warning"):
        VrScene((organ,), trusted=False)
    with pytest.raises(VrError, match="layer must be one of"):
        SceneMesh("x", organ.mesh, GREEN, layer="bones")
    scene = VrScene((organ, tumour))
    assert scene.visible_meshes() == (organ, tumour)
    cycled = scene.next_layers()
    assert cycled.visible_meshes() == (organ,)
    assert cycled.next_layers().visible_meshes() == (tumour,)
    assert cycled.next_layers().next_layers().visible_layers == frozenset(LAYERS)
    assert VrScene((organ,), trusted=False, warning="w").visible_meshes() == ()
    moved = scene.with_pose(Pose((0, 0, 10)).matrix())
    assert moved.T_world_twin[2, 3] == 10.0
