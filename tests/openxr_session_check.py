"""The OpenXR backend's frame loop against the headless test runtime, one scenario per process.

Run by ``tests/test_vr_openxr_session.py`` as
``python -m tests.openxr_session_check SCENARIO [auto|egl|xlib]``
with the runtime's environment (``tests/openxr_test_runtime/build.py``); prints one JSON line:
the loop's result, the backend's set-up and the scenario's own figures. Every scenario runs
through the Khronos core validation API layer. No tests here.

Scenarios
---------
``markers``
    Two small spheres at known points of the STAGE space (world fixed), 2 frames.
``controllers``
    The rehearsal manipulator with the runtime's scripted controllers: an organ sphere and a
    tumour sphere (layer ``tumour``), grabbed and moved by the right hand, then the trigger.
``frames:N``
    N frames of the marker scene (for the loss and runtime-exit checks).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pyvista as pv

from vr.controllers import TwinManipulator
from vr.frame_loop import run_frame_loop
from vr.openxr_backend import CORE_VALIDATION_LAYER
from vr.openxr_session import OpenXrBackend, SwapchainEyeRenderer
from vr.scene import SceneMesh, VrScene

#: Marker centres in the STAGE space, mm (the runtime's head stands at y = 1600 mm).
MARKERS_MM = ((30.0, 1580.0, -420.0), (-60.0, 1645.0, -380.0))
MARKER_RADIUS_MM = 14.0
MARKER_RGB = ((1.0, 1.0, 1.0), (0.0, 1.0, 0.0))
#: The controllers scenario: organ and tumour spheres, relative to the twin's origin, mm.
ORGAN_RGB, TUMOUR_RGB = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
TUMOUR_OFFSET_MM = (60.0, 0.0, 0.0)


def _sphere(centre, radius: float) -> pv.PolyData:
    return pv.Sphere(radius=radius, center=centre, theta_resolution=48, phi_resolution=48)


def marker_scene() -> VrScene:
    """The markers, world fixed (identity pose), with a status text."""
    meshes = tuple(
        SceneMesh(f"marker_{i}", _sphere(c, MARKER_RADIUS_MM), rgb)
        for i, (c, rgb) in enumerate(zip(MARKERS_MM, MARKER_RGB, strict=True))
    )
    return VrScene(meshes, text="markers")


def controller_scene() -> VrScene:
    """Organ and tumour spheres, the twin 500 mm ahead of the anchor (the head)."""
    organ = SceneMesh("organ", _sphere((0.0, 0.0, 0.0), 30.0), ORGAN_RGB, 1.0, "organ")
    tumour = SceneMesh("tumour", _sphere(TUMOUR_OFFSET_MM, 12.0), TUMOUR_RGB, 1.0, "tumour")
    T = np.eye(4)
    T[:3, 3] = [0.0, 0.0, -500.0]
    return VrScene((organ, tumour), T_world_twin=T)


def main(scenario: str, binding: str = "auto") -> None:
    """Run the scenario and print its JSON line."""
    backend = OpenXrBackend(validation=[CORE_VALIDATION_LAYER], binding=binding)
    setup = {
        "runtime": backend.runtime_name,
        "eye_size": list(backend.eye_size),
        "reference_space": backend.reference_space,
        "swapchain_format": backend.swapchain_format,
        "blend_mode": backend.blend_mode,
        "binding": backend.binding,
        "gl_renderer": backend.renderer.renderer_name,
    }
    poses: list[list[list[float]]] = []
    if scenario == "controllers":
        manipulator, scene = TwinManipulator(), controller_scene()

        def source(t: float) -> VrScene:
            placed = manipulator.apply(scene, backend.sample_controllers(t), backend.head_anchor())
            poses.append(placed.T_world_twin.tolist())
            return placed

        frames = 24
    else:
        scene = marker_scene()
        frames = 2 if scenario == "markers" else int(scenario.split(":")[1])

        def source(t: float) -> VrScene:
            return scene

    result = run_frame_loop(backend, SwapchainEyeRenderer(backend), source, max_frames=frames)
    print(json.dumps({**result.to_dict(), "setup": setup, "twin_poses": poses}))


if __name__ == "__main__":
    main(*sys.argv[1:])
