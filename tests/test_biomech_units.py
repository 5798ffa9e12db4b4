"""Units: problems posed in mm and kPa through the public API give closed-form answers in mm."""

import numpy as np
import pytest
import pyvista as pv

from biomech.loads import FixedSupport, Gravity, LoadCase, PlaneRegion, Pressure
from biomech.materials import Material
from biomech.tissue import solve_tissue

W, L = 10.0, 20.0  # mm


def column() -> pv.UnstructuredGrid:
    grid = pv.ImageData(dimensions=(3, 3, 5), spacing=(W / 2, W / 2, L / 4)).triangulate()
    grid = pv.UnstructuredGrid(grid)
    grid.cell_data["region"] = np.ones(grid.n_cells, dtype=np.int32)
    return grid


def rollers() -> list[FixedSupport]:
    return [
        FixedSupport(PlaneRegion((0, 0, 0), (1, 0, 0)), (0,)),
        FixedSupport(PlaneRegion((0, 0, 0), (0, 1, 0)), (1,)),
        FixedSupport(PlaneRegion((0, 0, 0), (0, 0, 1)), (2,)),
    ]


def test_uniaxial_pressure_in_mm_kpa_is_exact():
    e, nu, p = 4.0, 0.3, 0.1  # kPa
    loads = LoadCase(supports=rollers(), pressures=[Pressure(PlaneRegion((0, 0, L), (0, 0, 1)), p)])
    res = solve_tissue(column(), Material("liver", e, nu), loads, degree=1)
    u = res.evaluate_displacement_mm(np.array([[W, W, L], [W, 0.0, 0.0]]))
    assert u[0, 2] == pytest.approx(-p * L / e, rel=1e-9)  # -0.5 mm
    assert u[0, 0] == pytest.approx(nu * p * W / e, rel=1e-9)
    grid = res.to_pyvista()
    assert np.allclose(grid.cell_data["von_mises_kpa"], p, rtol=1e-8)  # uniaxial: sigma_vm = p


def test_gravity_in_mm_kpa_matches_self_weight_column():
    e, nu, rho = 4.0, 0.0, 1060.0  # nu = 0: u_z = -rho g (L z - z^2 / 2) / E is exact in P2
    loads = LoadCase(supports=rollers(), gravity=Gravity((0.0, 0.0, -1.0)))
    res = solve_tissue(column(), Material("liver", e, nu, density_kg_m3=rho), loads, degree=2)
    rho_g = rho * 9.81 * 1e-6  # kPa / mm
    u = res.evaluate_displacement_mm(np.array([[W, W, L]]))
    assert u[0, 2] == pytest.approx(-rho_g * L**2 / (2 * e), rel=1e-8)  # -0.52 mm
