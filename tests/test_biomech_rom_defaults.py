"""``surgplan rom CASE`` without a scenario: liver defaults, volume modes, discrepancy, P1 modes.

A coarse (12 mm) real liver with its tumour and hepatic veins (shared data) becomes a case; the
model is built from a handful of FE solves (8 centres, 1 held-out case + 2 stiffness solves).
"""

import json

import numpy as np
import pytest
import pyvista as pv
from click.testing import CliRunner

from biomech.rom import ReducedModelError, load_reduced_model, locate_p1, modes_at
from imaging.volume_mesh import tetrahedralize
from surgplan.case import Case
from surgplan.cli.biomech_commands import rom_command
from surgplan.manifest import SurfaceEntry, VolumeMeshEntry


def test_p1_interpolation_is_exact_for_a_linear_field():
    grid = pv.ImageData(dimensions=(4, 4, 4), spacing=(10.0, 10.0, 10.0)).triangulate()
    pts = np.asarray(grid.points, float)
    cells = np.asarray(grid.cells_dict[pv.CellType.TETRA])
    rng = np.random.default_rng(0)
    q = rng.uniform(0.0, 30.0, size=(200, 3))
    loc = locate_p1(pts, cells, q)
    assert loc.inside.all() and np.allclose(loc.weights.sum(axis=1), 1.0)
    field = pts @ np.array([0.3, -0.2, 0.5]) + 1.0  # P1 reproduces a linear field exactly
    assert np.allclose((loc.weights * field[cells[loc.cells]]).sum(axis=1),
                       q @ np.array([0.3, -0.2, 0.5]) + 1.0)  # fmt: skip
    out = locate_p1(pts, cells, np.array([[-2.0, 15.0, 15.0]]))  # just outside: nearest cell
    assert not out.inside[0] and np.all(out.weights >= 0)


@pytest.fixture(scope="module")
def liver_case(liver_models_dir, tmp_path_factory):
    surfaces = {
        "liver": pv.read(liver_models_dir / "liver.vtk"),
        "tumour": pv.read(liver_models_dir / "liver_tumours.vtk"),
    }
    vm = tetrahedralize(surfaces, outer="liver", inner=["tumour"], target_edge_mm=12.0)
    folder = tmp_path_factory.mktemp("rom") / "case"
    case = Case.open_or_new(folder)
    veins = pv.read(liver_models_dir / "hepatic_veins.vtk")
    with case.transaction() as tx:
        vm.grid.save(tx.path("meshes/volume.vtu"))
        veins.save(tx.path("meshes/hepatic_veins.vtp"))
        tx.manifest.volume_mesh = VolumeMeshEntry(
            path="meshes/volume.vtu", regions=vm.regions, quality={}
        )
        tx.manifest.surfaces["hepatic_veins"] = SurfaceEntry(
            name="hepatic_veins", path="meshes/hepatic_veins.vtp", volume_ml=0.0, area_mm2=0.0,
            n_points=veins.n_points, n_triangles=veins.n_cells, is_closed=True,
            is_manifold=True, label_volume_ml=0.0,
        )  # fmt: skip
    return folder, vm


def test_rom_without_scenario_uses_liver_defaults(liver_case, liver_models_dir):
    folder, vm = liver_case
    result = CliRunner().invoke(rom_command, [str(folder), "--centres", "8", "--json"])
    assert result.exit_code == 0, result.stderr
    assert "no scenario: liver defaults: hepatic veins fixed" in result.stderr
    report = json.loads(result.stdout)
    assert report["defaults"]["anchor"] == "hepatic_veins"
    assert report["defaults"]["bed_normal_kpa_per_mm"] == 0.05
    rom = load_reduced_model(folder / report["path"])
    # every vertex of the volume mesh is an evaluation point; the tetrahedra are stored
    assert rom.points_mm.shape == (vm.grid.n_points, 3) and rom.cells.shape[1] == 4
    assert report["n_surface_points"] + report["n_targets"] == vm.grid.n_points
    assert rom.amplitude_mean.shape == rom.amplitude_std.shape == (rom.n_modes,)
    assert np.all(rom.amplitude_std > 0)
    disc, spread = rom.meta["model_discrepancy"], rom.meta["stiffness_spread"]
    assert len(disc) == 2 and len(spread) == 2
    assert 0 < disc[0]["interior_rms_mm"] <= disc[0]["interior_max_mm"] <= disc[0]["fe_peak_mm"]
    assert spread[0]["interior_rms_mm"] > 0.05  # +-30 % stiffness moves the interior
    assert disc[0]["surface_fit_surface_rms_mm"] <= disc[0]["surface_rms_mm"] + 1e-6  # lstsq
    assert rom.meta["discrepancy_mm"] > 0 and rom.meta["stiffness_spread_mm"] > 0
    # patch centres spread over the whole organ, not one site
    art = Case.open(folder).artifacts["rom/linear"]
    assert art.meta["defaults"]["anchor"] == "hepatic_veins"
    # modes at vertices equal the stored modes; at a tumour vertex they interpolate
    idx = np.array([0, rom.n_surface + 5, len(rom.points_mm) - 1])
    assert np.allclose(modes_at(rom, rom.points_mm[idx]), rom.modes[:, idx], atol=1e-5)
    tumour = np.asarray(pv.read(liver_models_dir / "liver_tumours.vtk").points)[:50]
    m = modes_at(rom, tumour)
    assert m.shape == (rom.n_modes, 50, 3) and np.all(np.isfinite(m))
    with pytest.raises(ReducedModelError, match="finite"):
        modes_at(rom, np.array([[np.nan, 0.0, 0.0]]))
