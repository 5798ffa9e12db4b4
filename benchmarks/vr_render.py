"""VR render cost: per-eye render time of a >= 300,000-triangle twin at 2,064 x 2,208 per eye.

The twin is the real liver models of ``../shared/data/liver_models`` (liver, portal vein,
hepatic veins, arteries, tumours), linearly subdivided (liver twice, the others once) to
about 490,000 triangles, placed 600 mm ahead of the head as in rehearsal. Figures:

- ``vtk``: per-eye render time of :class:`vr.render_vtk.VtkEyeRenderer` (offscreen, EGL or
  whatever OpenGL the machine has: the ``gl_renderer`` string says which), alternating left
  and right eyes of a swaying head; wall-clock and this process's CPU time per eye (the machine
  may be shared: ``load_average_1min`` is recorded).
- ``overlay_update``: the motion-to-photon budget of an overlay update in the simulated backend:
  a new deformation state arrives (time stamp), is applied to the liver's points, both eyes
  are rendered and composited, and the frame is submitted (``end_frame`` returns). This is
  ``FrameRecord.update_to_submit_s`` of :func:`vr.frame_loop.run_frame_loop`.
- ``openxr_overlay_update``: the same budget through the OpenXR backend, the Khronos loader
  and the project's headless test runtime (``tests/openxr_test_runtime``): a new deformed liver
  uploaded, both eyes drawn straight into the swapchain images (plain OpenGL: the faster
  renderer), ``xrEndFrame`` returned.
- ``projection_check``: the rendered centroid of a small sphere against
  :func:`vr.views.project_points` in each eye, and the stereo disparity against
  ``IPD * fx / depth`` (256 x 256 px).

- ``opengl``: the same per-eye figures for :class:`vr.render_gl.GlEyeRenderer` (plain OpenGL 3.3
  through PyOpenGL 3.1.10 on an EGL device context, vertex buffers, one Lambert shader), side
  by side in the same run; ``faster`` names the faster of the two (wall-clock median).

Usage::

    .venv/bin/python benchmarks/vr_render.py [--frames 4] [--width 2064 --height 2208] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyvista as pv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = REPO.parent / "shared" / "data" / "liver_models"
PARTS = {  # file: (layer, colour, linear subdivision levels)
    "liver": ("organ", (0.85, 0.55, 0.45), 2),
    "portal_vein": ("vessels", (0.3, 0.4, 0.9), 1),
    "hepatic_veins": ("vessels", (0.5, 0.5, 1.0), 1),
    "arteries": ("vessels", (0.9, 0.2, 0.2), 1),
    "liver_tumours": ("tumour", (1.0, 1.0, 0.0), 1),
}


def twin_scene():
    """The subdivided real twin as a rehearsal :class:`vr.scene.VrScene`."""
    from surgplan.vr_scene import rehearsal_pose
    from vr.scene import SceneMesh, VrScene

    meshes = []
    for name, (layer, colour, levels) in PARTS.items():
        surface = pv.read(MODELS / f"{name}.vtk").triangulate()
        meshes.append(SceneMesh(name, surface.subdivide(levels, "linear"), colour, 1.0, layer))
    points = np.vstack([m.mesh.points for m in meshes])
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    return VrScene(tuple(meshes), T_world_twin=rehearsal_pose(centre))


def summary_ms(values_s: list[float]) -> dict[str, float]:
    """Mean, median, min and max in ms."""
    ms = np.asarray(values_s) * 1000
    return {
        "mean": float(ms.mean()),
        "median": float(np.median(ms)),
        "min": float(ms.min()),
        "max": float(ms.max()),
    }


def per_eye(scene, width: int, height: int, frames: int, kind: str) -> dict:
    """Per-eye render times of the ``"vtk"`` or ``"opengl"`` renderer at ``width`` x ``height``."""
    from vr.simulated import HeadsetModel, sway_trajectory

    headset = HeadsetModel(width=width, height=height)
    trajectory = sway_trajectory((0, 0, 0), (0, 0, -600))
    if kind == "vtk":
        from vr.render_vtk import VtkEyeRenderer

        renderer = VtkEyeRenderer(width, height)
    else:
        from vr.render_gl import GlEyeRenderer

        renderer = GlEyeRenderer(width, height)
        name = renderer.renderer_name
    t0 = time.perf_counter()
    renderer.render(scene, headset.views(trajectory(0.0))[0])  # warm-up: the mesh upload
    first_s = time.perf_counter() - t0
    wall, cpu = [], []
    for frame in range(frames):
        for view in headset.views(trajectory(frame / 90.0)):
            t0, c0 = time.perf_counter(), time.process_time()
            image = renderer.render(scene, view)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    covered = float((image.max(axis=2) > 0).mean())
    to_texture = (
        _to_texture_ms(renderer, scene, headset, trajectory, frames) if kind != "vtk" else None
    )
    if kind == "vtk":
        gl = renderer._window.ReportCapabilities().splitlines()
        name = next((ln.split(":", 1)[1].strip() for ln in gl if "renderer" in ln), "?")
    renderer.close()
    return {
        "eye_size_px": [width, height],
        "eyes_rendered": len(wall),
        "wall_ms": summary_ms(wall),
        "cpu_ms": summary_ms(cpu),
        "first_render_with_upload_ms": first_s * 1000,
        "image_fraction_covered": covered,
        "gl_renderer": name,
        **({"into_texture_wall_ms": to_texture} if to_texture else {}),
    }


def _to_texture_ms(renderer, scene, headset, trajectory, frames: int) -> dict:
    """Per-eye time of rendering straight into a texture (the OpenXR swapchain path), glFinish'd."""
    from OpenGL import GL

    texture = GL.glGenTextures(1)
    GL.glBindTexture(GL.GL_TEXTURE_2D, texture)
    GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_SRGB8_ALPHA8, renderer.width, renderer.height, 0,
                    GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)  # fmt: skip
    GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
    wall = []
    for frame in range(frames):
        for view in headset.views(trajectory(frame / 90.0)):
            t0 = time.perf_counter()
            renderer.render_to_texture(scene, view, texture)
            GL.glFinish()
            wall.append(time.perf_counter() - t0)
    GL.glDeleteTextures(1, [texture])
    return summary_ms(wall)


def overlay_update(scene, width: int, height: int, frames: int) -> dict:
    """State received -> frame submitted, in the simulated backend with the VTK renderer."""
    from vr.simulated import HeadsetModel, run_simulated

    liver = scene.meshes[0].mesh
    base = liver.points.copy()
    direction = base - base.mean(axis=0)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)

    def source(display_time_s: float):
        received = time.perf_counter()  # a new twin state arrives
        liver.points = base + (2.0 * np.sin(display_time_s * 6.0)) * direction
        return replace(scene, state_received_s=received)

    run = run_simulated(source, frames=frames, headset=HeadsetModel(width=width, height=height))
    liver.points = base
    stats = run.result.stats()
    return {
        "eye_size_px": [width, height],
        "frames": stats["rendered_frames"],
        "update_to_submit_ms": stats["update_to_submit_ms"],
        "frame_ms": stats["frame_ms"],
    }


def openxr_child(frames: int) -> None:
    """In the loader's process: the overlay update through OpenXR (the test runtime), JSON out."""
    from vr.frame_loop import run_frame_loop
    from vr.openxr_session import OpenXrBackend, SwapchainEyeRenderer

    scene = twin_scene()
    liver = scene.meshes[0].mesh
    base = liver.points.copy()
    direction = base - base.mean(axis=0)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    backend = OpenXrBackend()
    anchor = {"T": None}

    def source(display_time_s: float):
        received = time.perf_counter()  # a new twin state arrives: a new deformed surface
        moved = liver.copy(deep=False)
        moved.points = base + (2.0 * np.sin(display_time_s * 6.0)) * direction
        if anchor["T"] is None:
            anchor["T"] = backend.head_anchor() @ scene.T_world_twin
        meshes = (replace(scene.meshes[0], mesh=moved), *scene.meshes[1:])
        return replace(scene, meshes=meshes, T_world_twin=anchor["T"], state_received_s=received)

    renderer = SwapchainEyeRenderer(backend)
    result = run_frame_loop(backend, renderer, source, max_frames=frames)
    stats = result.stats()
    print(json.dumps({
        "runtime": backend.runtime_name if backend.instance else "surgplan headless test runtime",
        "eye_size_px": list(backend.eye_size),
        "frames": stats["rendered_frames"],
        "update_to_submit_ms": stats["update_to_submit_ms"],
        "eye_render_ms": stats["eye_render_ms"],
        "frame_ms": stats["frame_ms"],
        "ended_by": result.ended_by,
    }))  # fmt: skip


def openxr_overlay_update(width: int, height: int, frames: int) -> dict:
    """State received -> frame submitted through the loader and the headless test runtime.

    The deformed liver is re-uploaded every frame (a new live state), both eyes are drawn
    straight into the swapchain images and ``xrEndFrame`` returns: the OpenXR backend's share
    of motion-to-photon (the compositor's and the display's are the runtime's).
    """
    import subprocess
    import tempfile

    from tests.openxr_test_runtime.build import build_runtime, runtime_env

    with tempfile.TemporaryDirectory() as folder:
        manifest = build_runtime(Path(folder))
        env = runtime_env(manifest, SURGPLAN_XR_TEST_VIEW_SIZE=f"{width}x{height}")
        done = subprocess.run(
            [sys.executable, __file__, "--openxr-child", "--frames", str(frames)],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=1800,
        )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def projection_check() -> dict:
    """Rendered sphere centroid against the projection; disparity against IPD * fx / depth."""
    from vr.render_vtk import VtkEyeRenderer
    from vr.scene import SceneMesh, VrScene
    from vr.views import Fov, Pose, look_at_pose, stereo_views

    size = 256
    renderer = VtkEyeRenderer(size, size)

    def centroid(image):
        rows, cols = np.nonzero(image.max(axis=2) > 5)
        return np.array([cols.mean() + 0.5, rows.mean() + 0.5])

    def scene_at(point):
        sphere = pv.Sphere(radius=14.0, center=point, theta_resolution=48, phi_resolution=48)
        return VrScene((SceneMesh("marker", sphere, (1.0, 1.0, 1.0)),))

    head = look_at_pose((5.0, 10.0, 0.0), (0.0, 0.0, -500.0), (0.1, 1.0, 0.0))
    fovs = Fov(-0.90, 0.70, 0.80, -0.60), Fov(-0.70, 0.90, 0.80, -0.60)
    views = stereo_views(
        head, ipd_mm=64.0, fov_left=fovs[0], fov_right=fovs[1], width=size, height=size
    )
    errors = []
    for point in ((30.0, -20.0, -420.0), (-60.0, 45.0, -380.0), (0.0, 0.0, -600.0)):
        scene = scene_at(point)
        for view in views:
            error = centroid(renderer.render(scene, view)) - view.project(np.asarray(point))
            errors.append(float(np.linalg.norm(error)))
    fov = Fov(-0.8, 0.8, 0.8, -0.8)
    left, right = stereo_views(
        Pose((0, 0, 0)), ipd_mm=64.0, fov_left=fov, fov_right=fov, width=size, height=size
    )
    scene = scene_at((0.0, 0.0, -450.0))
    measured = (
        centroid(renderer.render(scene, left))[0] - centroid(renderer.render(scene, right))[0]
    )
    renderer.close()
    return {
        "eye_size_px": [size, size],
        "projection_error_px": {"max": max(errors), "mean": float(np.mean(errors))},
        "disparity_px": {"measured": float(measured), "expected": 64.0 * left.focal_px()[0] / 450},
    }


def main() -> None:
    """Run and print one JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--width", type=int, default=2064)
    parser.add_argument("--height", type=int, default=2208)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--openxr-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.openxr_child:
        openxr_child(args.frames)
        return
    scene = twin_scene()
    result = {
        "triangles": int(sum(m.mesh.n_cells for m in scene.meshes)),
        "load_average_1min": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "vtk": per_eye(scene, args.width, args.height, args.frames, "vtk"),
        "opengl": per_eye(scene, args.width, args.height, args.frames, "opengl"),
        "overlay_update": overlay_update(scene, args.width, args.height, args.frames),
        "openxr_overlay_update": openxr_overlay_update(args.width, args.height, args.frames),
        "projection_check": projection_check(),
    }
    medians = {k: result[k]["wall_ms"]["median"] for k in ("vtk", "opengl")}
    result["faster"] = min(medians, key=medians.get)
    text = json.dumps(result, indent=2)
    if args.out:
        from vr._atomic import write_bytes_atomic

        write_bytes_atomic(args.out, text.encode())
    print(text)


if __name__ == "__main__":
    main()
