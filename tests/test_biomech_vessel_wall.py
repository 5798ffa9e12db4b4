"""Vessel wall under lumen pressure (3D FE) against Lamé's thick-walled tube."""

import numpy as np
import pytest

import biomech
from biomech.materials import ARTERY_WALL, MaterialError
from biomech.vessel_wall import VesselWallError, lame_tube_closed_form, solve_vessel_wall

A_MM, WALL_MM, P_KPA = 3.0, 0.6, 16.0  # carotid-like artery at 120 mmHg


@pytest.fixture(scope="module")
def artery():
    return solve_vessel_wall(A_MM, WALL_MM, 1.0, ARTERY_WALL, P_KPA)


def _rel(value, reference):
    return abs(value - reference) / abs(reference)


def test_closed_form_values_by_hand():
    ref = lame_tube_closed_form(A_MM, WALL_MM, ARTERY_WALL, P_KPA)
    # E = 500 kPa, nu = 0.45, a = 3, b = 3.6: c = 1.45 * 16 * 9 / (500 * 3.96)
    c = 1.45 * 16.0 * 9.0 / (500.0 * 3.96)
    assert ref["inner_radial_displacement_mm"] == pytest.approx(c * (0.1 * 3.0 + 12.96 / 3.0))
    assert ref["hoop_stress_inner_kpa"] == pytest.approx(16.0 * 21.96 / 3.96)
    assert ref["hoop_stress_outer_kpa"] == pytest.approx(2 * 16.0 * 9.0 / 3.96)


def test_linear_artery_matches_lame(artery):
    ref = artery.closed_form
    ua_ref = ref["inner_radial_displacement_mm"]
    print(
        f"artery 3 mm / 0.6 mm at 16 kPa, {artery.num_dofs} dofs: u_r(a) "
        f"{artery.inner_radial_displacement_mm:.5f} mm (Lame {ua_ref:.5f})"
        f", hoop inner {artery.hoop_stress_inner_kpa:.3f} kPa "
        f"(Lame {ref['hoop_stress_inner_kpa']:.3f}), outer {artery.hoop_stress_outer_kpa:.3f} kPa "
        f"(Lame {ref['hoop_stress_outer_kpa']:.3f})"
    )
    assert _rel(artery.inner_radial_displacement_mm, ref["inner_radial_displacement_mm"]) < 1e-3
    assert _rel(artery.outer_radial_displacement_mm, ref["outer_radial_displacement_mm"]) < 1e-3
    assert _rel(artery.diameter_change_percent, ref["diameter_change_percent"]) < 1e-3
    assert _rel(artery.hoop_stress_inner_kpa, ref["hoop_stress_inner_kpa"]) < 1e-2
    assert _rel(artery.hoop_stress_outer_kpa, ref["hoop_stress_outer_kpa"]) < 1e-2
    assert artery.diameter_change_percent == pytest.approx(
        100 * artery.inner_radial_displacement_mm / A_MM
    )


def test_mesh_is_the_whole_tube_in_mm(artery):
    mesh = artery.mesh
    x0, x1, y0, y1, z0, z1 = mesh.bounds
    assert (x0, x1, y0, y1) == pytest.approx((-3.6, 3.6, -3.6, 3.6), abs=1e-9)
    assert (z0, z1) == pytest.approx((0.0, 1.0), abs=1e-9)
    assert mesh.volume == pytest.approx(np.pi * (3.6**2 - 3.0**2) * 1.0, rel=1e-3)
    assert np.all(mesh.compute_cell_sizes(length=False, area=False)["Volume"] > 0)
    u = np.asarray(mesh.point_data["displacement_mm"])
    r = np.linalg.norm(mesh.points[:, :2], axis=1)
    inner = np.abs(r - A_MM) < 1e-6
    u_r = np.einsum("ij,ij->i", u[inner, :2], mesh.points[inner, :2]) / r[inner]
    assert u_r == pytest.approx(artery.inner_radial_displacement_mm, rel=1e-3)  # axisymmetric
    # tethered ends, plane strain: u_z = 0 exactly on the ends, discretisation noise inside
    ends = (np.abs(mesh.points[:, 2]) < 1e-9) | (np.abs(mesh.points[:, 2] - 1.0) < 1e-9)
    assert ends.sum() > 10
    assert np.abs(u[ends, 2]).max() < 1e-12
    assert np.abs(u[:, 2]).max() < 1e-3 * artery.inner_radial_displacement_mm
    assert "von_mises_kpa" in mesh.cell_data


def test_neohookean_matches_linear_at_small_pressure_and_departs_at_120_mmhg(artery):
    small = solve_vessel_wall(A_MM, WALL_MM, 1.0, ARTERY_WALL, P_KPA / 100, model="neohookean")
    lin_small = artery.inner_radial_displacement_mm / 100  # the linear model scales exactly
    diff = _rel(small.inner_radial_displacement_mm, lin_small)
    print(f"neo-Hookean vs linear u_r(a) at 0.16 kPa: relative difference {diff:.2e}")
    assert small.model == "neohookean"
    assert 2e-4 < diff < 1e-2  # ~2x the 0.16 % hoop strain: the first nonlinear term, not 0
    assert _rel(small.hoop_stress_inner_kpa, artery.hoop_stress_inner_kpa / 100) < 2e-2
    full = solve_vessel_wall(A_MM, WALL_MM, 1.0, ARTERY_WALL, P_KPA, model="neohookean")
    print(
        f"neo-Hookean at 16 kPa: diameter change {full.diameter_change_percent:.2f} % "
        f"(linear {artery.diameter_change_percent:.2f} %)"
    )
    assert full.diameter_change_percent > artery.diameter_change_percent  # inflation softens


def test_exported_from_package(artery):
    assert biomech.solve_vessel_wall is solve_vessel_wall
    assert biomech.lame_tube_closed_form is lame_tube_closed_form
    assert isinstance(artery, biomech.VesselWallResult)
    # the exported result carries the numbers: diameter change 100 u_r(a) / a within 1 % of Lame
    ref = 100.0 * artery.closed_form["inner_radial_displacement_mm"] / A_MM
    assert artery.diameter_change_percent == pytest.approx(ref, rel=1e-2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"inner_radius_mm": 0.0}, "inner_radius_mm"),
        ({"wall_thickness_mm": -1.0}, "wall_thickness_mm"),
        ({"length_mm": float("nan")}, "length_mm"),
        ({"lumen_pressure_kpa": float("inf")}, "lumen_pressure_kpa"),
        ({"target_edge_mm": 0.0}, "target_edge_mm"),
        ({"model": "fung"}, "model"),
    ],
)
def test_bad_input_names_the_field(kwargs, match):
    args = {
        "inner_radius_mm": A_MM,
        "wall_thickness_mm": WALL_MM,
        "length_mm": 1.0,
        "material": ARTERY_WALL,
        "lumen_pressure_kpa": P_KPA,
    }
    model = kwargs.pop("model", "linear")
    edge = kwargs.pop("target_edge_mm", None)
    args.update(kwargs)
    with pytest.raises(VesselWallError, match=match):
        solve_vessel_wall(**args, model=model, target_edge_mm=edge)


def test_material_must_be_a_material():
    with pytest.raises(MaterialError, match="Material"):
        solve_vessel_wall(A_MM, WALL_MM, 1.0, "artery_wall", P_KPA)
