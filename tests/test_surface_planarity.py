"""largest_planar_patch on surfaces with known flat faces: a cube's face, a hemisphere's disc,
none on a sphere or a tube."""

from __future__ import annotations

import numpy as np
import pytest
import pyvista as pv

from imaging.errors import MeshingError
from imaging.surface_planarity import largest_planar_patch


def test_cube_face_is_the_largest_patch() -> None:
    cube = pv.Cube(x_length=20.0, y_length=20.0, z_length=20.0).triangulate().subdivide(3)
    patch = largest_planar_patch(cube)
    assert patch.area_mm2 == pytest.approx(400.0, rel=1e-6)
    assert max(abs(v) for v in patch.normal) == pytest.approx(1.0, abs=1e-9)


def test_hemisphere_disc_area() -> None:
    sphere = pv.Sphere(radius=15.0, theta_resolution=120, phi_resolution=120)
    half = sphere.clip(normal=(0.0, 0.0, 1.0), origin=(0.0, 0.0, 0.0)).fill_holes(100.0)
    patch = largest_planar_patch(half.triangulate().clean())
    assert patch.area_mm2 == pytest.approx(np.pi * 15.0**2, rel=0.02)
    assert abs(patch.normal[2]) == pytest.approx(1.0, abs=1e-6)
    assert patch.centre_mm[2] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "surface",
    [
        pv.Sphere(radius=15.0, theta_resolution=120, phi_resolution=120),
        pv.Cylinder(radius=4.0, height=80.0, resolution=60, capping=False).triangulate(),
    ],
    ids=["sphere", "open tube"],
)
def test_curved_surfaces_have_only_small_patches(surface: pv.PolyData) -> None:
    # a 10 degree cone of normals covers at most a 0.2 rad strip of a 4 mm tube: ~ 0.7 mm wide
    assert largest_planar_patch(surface).area_mm2 < 0.02 * surface.area


def test_empty_surface_refused() -> None:
    with pytest.raises(MeshingError, match="non-empty triangle surface"):
        largest_planar_patch(pv.PolyData())
