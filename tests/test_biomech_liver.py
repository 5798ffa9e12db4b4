"""Real liver (with its tumour) meshed and retracted end to end under the liver defaults."""

import numpy as np
import pytest
import pyvista as pv
from scipy.spatial import cKDTree

from surgplan.retraction_demo import liver_retraction_demo


@pytest.mark.slow
def test_real_liver_retraction_end_to_end(liver_models_dir, tmp_path):
    out = liver_retraction_demo(tmp_path, liver_models_dir)
    assert set(out.to_dict()) == {
        "cells", "dofs", "regions", "max_displacement_mm", "max_tumour_displacement_mm",
        "max_von_mises_kpa", "picture", "vtu",
    }  # fmt: skip
    assert set(out.regions) == {"liver", "tumour"}
    assert out.cells > 10_000
    assert out.max_displacement_mm == pytest.approx(15.0, abs=1e-6)  # the retractor lift
    assert 0.05 < out.max_tumour_displacement_mm < 15.0
    assert 0.0 < out.max_von_mises_kpa < 100.0
    grid = pv.read(out.vtu)
    u = grid.point_data["displacement_mm"]
    veins = pv.read(liver_models_dir / "hepatic_veins.vtk")
    liver = pv.read(liver_models_dir / "liver.vtk").connectivity("largest")
    liver = liver.extract_surface(algorithm="dataset_surface")
    inside = veins.select_interior_points(liver, check_surface=False)["selected_points"]
    trunks = np.asarray(veins.points)[np.asarray(inside) == 0]  # where the veins leave the liver
    surf_ids = grid.extract_surface(algorithm="dataset_surface").point_data["vtkOriginalPointIds"]
    dist, _ = cKDTree(trunks).query(grid.points[surf_ids])
    near = surf_ids[dist < 3.0]
    assert near.size > 10
    assert np.median(np.linalg.norm(u[near], axis=1)) < 1e-9  # the vena-cava anchor holds
    # the lobe follows the blade: the surface 60 mm from it moves by a third of the lift or more
    x = grid.points[surf_ids]
    r = np.linalg.norm(x - x[np.argmin(x[:, 2])], axis=1)
    assert np.median(np.linalg.norm(u[surf_ids[np.abs(r - 60.0) < 4.0]], axis=1)) > 5.0
    image = pv.read(out.picture)
    assert image.dimensions[0] == 900
    assert np.asarray(image.point_data.active_scalars).std() > 1.0  # not a blank picture
