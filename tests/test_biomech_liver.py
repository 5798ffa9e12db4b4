"""Real liver (with its tumour) meshed and retracted end to end, hepatic veins fixed."""

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
    veins = np.asarray(pv.read(liver_models_dir / "hepatic_veins.vtk").points)
    surf_ids = grid.extract_surface(algorithm="dataset_surface").point_data["vtkOriginalPointIds"]
    dist, _ = cKDTree(veins).query(grid.points[surf_ids])
    near = surf_ids[dist < 1.5]
    assert near.size > 10
    assert np.median(np.linalg.norm(u[near], axis=1)) < 1e-9  # hepatic-vein support holds
    image = pv.read(out.picture)
    assert image.dimensions[0] == 900
    assert np.asarray(image.point_data.active_scalars).std() > 1.0  # not a blank picture
