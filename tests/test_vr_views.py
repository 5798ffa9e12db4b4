"""``vr.views``: the OpenXR projection convention, checked analytically and on rendered pixels.

A small bright sphere at a known point is rendered per eye by :class:`vr.render_vtk.VtkEyeRenderer`
(offscreen, EGL); its pixel centroid must sit within 1 px of :func:`vr.views.project_points`,
and the two eyes must differ by the disparity ``IPD * fx / depth``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv

from vr.errors import VrError
from vr.render_vtk import VtkEyeRenderer
from vr.scene import SceneMesh, VrScene
from vr.views import (
    EyeView,
    Fov,
    Pose,
    look_at_pose,
    pose_from_xr,
    pose_to_xr,
    projection_matrix,
    stereo_views,
)

SIZE = 256
FOV_LEFT = Fov(-0.90, 0.70, 0.80, -0.60)  # asymmetric, as a real headset's
FOV_RIGHT = Fov(-0.70, 0.90, 0.80, -0.60)


@pytest.fixture(scope="module")
def renderer() -> VtkEyeRenderer:
    eye_renderer = VtkEyeRenderer(SIZE, SIZE)
    yield eye_renderer
    eye_renderer.close()


def sphere_scene(centre_mm: np.ndarray, radius_mm: float = 14.0) -> VrScene:
    sphere = pv.Sphere(radius=radius_mm, center=centre_mm, theta_resolution=48, phi_resolution=48)
    return VrScene((SceneMesh("marker", sphere, (1.0, 1.0, 1.0)),))


def centroid_px(image: np.ndarray) -> np.ndarray:
    """Centroid ``(u, v)`` of the non-black pixels (pixel centres at +0.5)."""
    rows, cols = np.nonzero(image.max(axis=2) > 5)
    assert len(rows) > 20, "the marker sphere is not visible"
    return np.array([cols.mean() + 0.5, rows.mean() + 0.5])


def test_projection_matrix_maps_frustum_edges_to_ndc_bounds() -> None:
    fov = Fov(-0.9, 0.6, 0.7, -0.5)
    P = projection_matrix(fov, 100.0, 5000.0)
    for z in (-100.0, -900.0, -5000.0):
        corners = {
            (-1, -1): (math.tan(-0.9), math.tan(-0.5)),
            (1, 1): (math.tan(0.6), math.tan(0.7)),
        }
        for expected, (tx, ty) in corners.items():
            clip = P @ np.array([tx * -z, ty * -z, z, 1.0])
            assert np.allclose(clip[:2] / clip[3], expected, atol=1e-12)
    near = P @ np.array([0, 0, -100.0, 1])
    far = P @ np.array([0, 0, -5000.0, 1])
    assert near[2] / near[3] == pytest.approx(-1.0) and far[2] / far[3] == pytest.approx(1.0)
    infinite = projection_matrix(fov, 100.0, 0.0)
    assert infinite[2, 2] == -1.0 and infinite[2, 3] == -200.0


def test_pose_conversions_and_bad_input() -> None:
    pose = pose_from_xr((0.1, -0.2, 1.5), (0.0, 0.0, math.sin(0.25), math.cos(0.25)))
    assert pose.position_mm == pytest.approx((100.0, -200.0, 1500.0))
    position_m, quat = pose_to_xr(pose)
    assert position_m == pytest.approx((0.1, -0.2, 1.5))
    T = pose.matrix()
    assert T[:2, :2] == pytest.approx(
        np.array([[math.cos(0.5), -math.sin(0.5)], [math.sin(0.5), math.cos(0.5)]])
    )
    assert Pose.from_matrix(T).orientation_xyzw == pytest.approx(quat)
    with pytest.raises(VrError, match="orientation_xyzw"):
        Pose((0, 0, 0), (0, 0, 0, 0))
    with pytest.raises(VrError, match="angle_left < angle_right"):
        Fov(0.5, -0.5, 0.5, -0.5)
    with pytest.raises(VrError, match="ipd_mm"):
        stereo_views(
            Pose((0, 0, 0)), ipd_mm=0, fov_left=FOV_LEFT, fov_right=FOV_RIGHT, width=8, height=8
        )
    view = EyeView(Pose((0, 0, 0)), FOV_LEFT, SIZE, SIZE)
    with pytest.raises(VrError, match="behind the eye"):
        view.project(np.array([0.0, 0.0, 10.0]))


@pytest.mark.parametrize(
    "point_mm", [(30.0, -20.0, -420.0), (-60.0, 45.0, -380.0), (0.0, 0.0, -600.0)]
)
def test_known_point_lands_within_one_pixel_in_each_rendered_eye(renderer, point_mm) -> None:
    head = look_at_pose((5.0, 10.0, 0.0), (0.0, 0.0, -500.0), (0.1, 1.0, 0.0))  # tilted head
    views = stereo_views(
        head, ipd_mm=64.0, fov_left=FOV_LEFT, fov_right=FOV_RIGHT, width=SIZE, height=SIZE
    )
    point = np.asarray(point_mm)
    scene = sphere_scene(point)
    for view in views:
        measured = centroid_px(renderer.render(scene, view))
        predicted = view.project(point)
        assert np.linalg.norm(measured - predicted) < 1.0, (measured, predicted)


def test_stereo_disparity_is_ipd_times_focal_over_depth(renderer) -> None:
    ipd, depth = 64.0, 450.0
    fov = Fov(-0.8, 0.8, 0.8, -0.8)
    head = Pose((0.0, 0.0, 0.0))
    left, right = stereo_views(
        head, ipd_mm=ipd, fov_left=fov, fov_right=fov, width=SIZE, height=SIZE
    )
    scene = sphere_scene(np.array([0.0, 0.0, -depth]))
    u_left = centroid_px(renderer.render(scene, left))
    u_right = centroid_px(renderer.render(scene, right))
    fx = left.focal_px()[0]
    expected = ipd * fx / depth  # a point straight ahead: left eye sees it right of centre
    assert u_left[0] - u_right[0] == pytest.approx(expected, abs=1.0)
    assert u_left[1] == pytest.approx(u_right[1], abs=0.5)
    assert u_left[0] == pytest.approx(SIZE / 2 + expected / 2, abs=1.0)


GL_CHECK = """
import json, numpy as np
import xr  # pyopenxr forces PyOpenGL onto GLX: the EGL context must still work
from tests.test_vr_views import FOV_LEFT, FOV_RIGHT, centroid_px, sphere_scene
from vr.render_gl import GlEyeRenderer
from vr.views import look_at_pose, stereo_views
head = look_at_pose((5.0, 10.0, 0.0), (0.0, 0.0, -500.0), (0.1, 1.0, 0.0))
views = stereo_views(
    head, ipd_mm=64.0, fov_left=FOV_LEFT, fov_right=FOV_RIGHT, width=256, height=256
)
renderer = GlEyeRenderer(256, 256)
out = []
for point in ((30.0, -20.0, -420.0), (-60.0, 45.0, -380.0)):
    scene = sphere_scene(np.asarray(point))
    for view in views:
        error = centroid_px(renderer.render(scene, view)) - view.project(np.asarray(point))
        out.append(error.tolist())
renderer.close()
print(json.dumps(out))
"""


def test_plain_opengl_renderer_agrees_with_the_projection_too() -> None:
    """The plain-OpenGL peer of the VTK renderer (own process, PyOpenGL on GLX as pyopenxr sets)."""
    env = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}
    done = subprocess.run(
        [sys.executable, "-c", GL_CHECK], capture_output=True, text=True, env=env, timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    errors = np.linalg.norm(np.asarray(json.loads(done.stdout.strip().splitlines()[-1])), axis=1)
    assert len(errors) == 4 and errors.max() < 1.0, errors
