"""Real liver (with its tumour) meshed and retracted end to end, hepatic veins fixed."""

import numpy as np
import pytest
import pyvista as pv

from surgplan.simulation import liver_retraction_demo


@pytest.mark.slow
def test_real_liver_retraction_end_to_end(liver_models_dir, tmp_path):
    out = liver_retraction_demo(tmp_path, liver_models_dir)
    assert set(out["regions"]) == {"liver", "tumour"}
    assert out["cells"] > 10_000
    assert out["max_displacement_mm"] == pytest.approx(15.0, abs=1e-6)  # the retractor lift
    assert 0.05 < out["max_tumour_displacement_mm"] < 15.0
    assert 0.0 < out["max_von_mises_kpa"] < 100.0
    grid = pv.read(out["vtu"])
    u = grid.point_data["displacement_mm"]
    veins = np.asarray(pv.read(liver_models_dir / "hepatic_veins.vtk").points)
    near = np.linalg.norm(grid.points[:, None, :] - veins[None, ::50, :], axis=2).min(axis=1) < 1.0
    surf_ids = grid.extract_surface(algorithm="dataset_surface").point_data["vtkOriginalPointIds"]
    fixed = np.intersect1d(np.flatnonzero(near), surf_ids)
    assert fixed.size > 0 and np.abs(u[fixed]).max() < 1e-9  # hepatic-vein support holds
    image = pv.read(out["picture"])
    assert image.dimensions[0] == 900
    assert np.asarray(image.point_data.active_scalars).std() > 1.0  # not a blank picture
