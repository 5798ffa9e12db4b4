"""The twin on the real liver surface (subdivided to about 40k vertices), synthetic smooth basis."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import registration as reg
from surgplan.twin import DeformationBasis, Twin
from surgplan.twin.synthetic import posed_swabs, random_pose, smooth_random_modes


def _fine_liver(liver_models_dir: Path) -> reg.SurfaceModel:

    coarse = reg.load_surface(liver_models_dir / "liver.vtk")
    fine = coarse.to_polydata().subdivide(1, "linear")
    return reg.prepare_surface(fine, name="liver")


def test_update_on_the_real_liver(liver_models_dir: Path) -> None:
    import pyvista as pv

    model = _fine_liver(liver_models_dir)
    assert len(model.vertices) > 20_000
    tumour = pv.read(liver_models_dir / "liver_tumours.vtk").points.mean(axis=0)
    pts = np.vstack([model.vertices, tumour[None]])
    modes = smooth_random_modes(pts, 20, seed=1)
    basis = DeformationBasis(
        vertices_mm=model.vertices,
        faces=model.faces,
        surface_modes=modes[:, :-1],
        prior_std=np.full(20, 3.0),
        target_names=("tumour",),
        target_points_mm=tumour[None],
        target_modes=modes[:, -1:],
    )
    rng = np.random.default_rng(5)
    a = rng.normal(size=20) * basis.prior_std
    T = random_pose(rng)
    u = basis.surface_displacement_mm(a)
    assert np.linalg.norm(u, axis=1).max() > 10.0  # centimetre-scale deformation
    twin = Twin(basis, surface=model, noise_mm=1.0)
    s = twin.update(posed_swabs(model, u, T, n_points=1000, noise_mm=1.0, seed=3))
    s = twin.update(posed_swabs(model, u, T, n_points=1000, noise_mm=1.0, seed=4))
    assert s.trustworthy, s.verdict.reason
    true_tumour = reg.apply_transform(T, basis.target_positions_mm(a))[0]
    err = float(np.linalg.norm(s.target("tumour").position_tracker_mm - true_tumour))
    # Measured 0.5 mm after two batches (radius95 0.46 mm: on this surface the radius is not
    # yet shown calibrated; the synthetic-organ calibration test is where that is asserted).
    assert err < 3.0
