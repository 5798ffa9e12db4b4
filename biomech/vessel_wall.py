"""A vessel wall under lumen pressure: 3-D finite elements against Lame's thick tube.

:func:`solve_vessel_wall` solves a quarter of a straight tube (symmetry planes, tethered ends)
with :func:`biomech.tissue.solve_tissue` and reports radial displacements and hoop stresses as
surface means; :func:`lame_tube_closed_form` is the plane-strain reference. Units: mm, kPa.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from biomech.errors import BiomechError
from biomech.materials import Material, MaterialError

if TYPE_CHECKING:
    import pyvista as pv

    from biomech.mesh import FEMesh
    from biomech.tissue import TissueResult

__all__ = ["VesselWallError", "VesselWallResult", "lame_tube_closed_form", "solve_vessel_wall"]


class VesselWallError(BiomechError):
    """A vessel-wall problem is malformed (non-positive radius, thickness or length...)."""


@dataclass
class VesselWallResult:
    """Deformation of a vessel wall under lumen pressure (mm, kPa).

    Attributes
    ----------
    inner_radial_displacement_mm : float
        Radial displacement of the inner (lumen) wall, averaged over the inner surface, mm.
    outer_radial_displacement_mm : float
        Radial displacement of the outer wall, averaged over the outer surface, mm.
    hoop_stress_inner_kpa, hoop_stress_outer_kpa : float
        Circumferential Cauchy stress sigma_tt at the inner and outer wall (surface means), kPa.
    diameter_change_percent : float
        Change of the lumen diameter, 100 u_r(a) / a.
    model : str
        ``"linear"`` or ``"neohookean"``.
    num_dofs : int
        Number of unknowns of the finite-element problem.
    mesh : pyvista.UnstructuredGrid
        The whole tube in mm (the quarter that was solved, mirrored), point data
        ``displacement_mm``, cell data ``von_mises_kpa``; the axis is z, the tube spans
        0 <= z <= ``length_mm``.
    closed_form : dict[str, float]
        The linear-elastic plane-strain Lamé values of the same quantities
        (:func:`lame_tube_closed_form`), for comparison.
    """

    inner_radial_displacement_mm: float
    outer_radial_displacement_mm: float
    hoop_stress_inner_kpa: float
    hoop_stress_outer_kpa: float
    diameter_change_percent: float
    model: str
    num_dofs: int
    mesh: pv.UnstructuredGrid
    closed_form: dict[str, float] = field(default_factory=dict)


def _positive_mm(name: str, value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v = float("nan")
    if not np.isfinite(v) or v <= 0:
        raise VesselWallError(f"{name} must be a finite value > 0 mm, got {value!r}")
    return v


def lame_tube_closed_form(
    inner_radius_mm: float,
    wall_thickness_mm: float,
    material: Material,
    lumen_pressure_kpa: float,
) -> dict[str, float]:
    """Lamé (1852) solution of a thick-walled tube under internal pressure, plane strain.

    With a = inner radius, b = a + wall thickness, p = lumen pressure, E, nu::

        u_r(r)      = (1 + nu) p a^2 / (E (b^2 - a^2)) [(1 - 2 nu) r + b^2 / r]
        sigma_tt(r) = p a^2 / (b^2 - a^2) (1 + b^2 / r^2)

    Parameters
    ----------
    inner_radius_mm, wall_thickness_mm : float
        Lumen radius a and wall thickness b - a, mm.
    material : Material
        Wall material (E in kPa, nu).
    lumen_pressure_kpa : float
        Transmural pressure p, kPa.

    Returns
    -------
    dict[str, float]
        ``inner_radial_displacement_mm``, ``outer_radial_displacement_mm``,
        ``hoop_stress_inner_kpa``, ``hoop_stress_outer_kpa``, ``diameter_change_percent``.
    """
    a = float(inner_radius_mm)
    b = a + float(wall_thickness_mm)
    e, nu = material.youngs_modulus_kpa, material.poisson_ratio
    p = float(lumen_pressure_kpa)
    c = (1 + nu) * p * a**2 / (e * (b**2 - a**2))
    ua = c * ((1 - 2 * nu) * a + b**2 / a)
    ub = c * ((1 - 2 * nu) * b + b)
    k = p * a**2 / (b**2 - a**2)
    return {
        "inner_radial_displacement_mm": ua,
        "outer_radial_displacement_mm": ub,
        "hoop_stress_inner_kpa": k * (1 + b**2 / a**2),
        "hoop_stress_outer_kpa": 2 * k,
        "diameter_change_percent": 100.0 * ua / a,
    }


def solve_vessel_wall(
    inner_radius_mm: float,
    wall_thickness_mm: float,
    length_mm: float,
    material: Material,
    lumen_pressure_kpa: float,
    *,
    target_edge_mm: float | None = None,
    model: str = "linear",
    load_steps: int | None = None,
) -> VesselWallResult:
    """Deformation and hoop stress of a straight vessel segment under lumen pressure (3D FE).

    Assumptions
    -----------
    - A straight, circular, homogeneous and isotropic tube (``material``: E, nu), stress-free
      at zero pressure (no residual stress, no axial pre-stretch, no perivascular tissue).
    - The segment is tethered: both ends are held axially (u_z = 0 on z = 0 and z = L) and free
      to move radially. This is the generalised plane-strain state of an artery tethered in
      vivo, so the radial response is that of Lamé's plane-strain tube and does not depend on L.
    - Pressure acts normal to the lumen surface (a follower load in the neo-Hookean model); the
      outer surface is traction free (zero perivascular pressure): ``lumen_pressure_kpa`` is the
      transmural pressure.
    - One quarter of the tube is solved (x, y >= 0) with symmetry conditions u_x = 0 on x = 0,
      u_y = 0 on y = 0; P2 displacements on second-order (curved) tetrahedra. The returned mesh
      is the quarter mirrored into the whole tube.

    Parameters
    ----------
    inner_radius_mm : float
        Lumen radius a at zero pressure, mm.
    wall_thickness_mm : float
        Wall thickness, mm (outer radius b = a + thickness).
    length_mm : float
        Length of the segment, mm (the mesh spans 0 <= z <= length).
    material : Material
        Wall material, e.g. :data:`biomech.materials.ARTERY_WALL` (E in kPa).
    lumen_pressure_kpa : float
        Transmural pressure, kPa (16 kPa is about 120 mmHg).
    target_edge_mm : float, optional
        Tetrahedron edge length; default min(thickness / 2, length), which gives below 0.1 %
        error in u_r(a) for the Lamé tube with P2 elements.
    model : {"linear", "neohookean"}
        Small-strain linear elasticity or compressible neo-Hookean (mixed u-p, large strain).
    load_steps : int, optional
        Load increments of the neo-Hookean model (default: 1 per 5 % of expected hoop strain,
        at least 1).

    Returns
    -------
    VesselWallResult
        Radial displacements, hoop stresses, diameter change, the mesh and the Lamé values.

    Raises
    ------
    VesselWallError
        A non-positive or non-finite dimension, a non-finite pressure, an unknown model.
    MaterialError
        ``material`` is not a :class:`~biomech.materials.Material`.
    ConvergenceError
        The neo-Hookean solve did not converge (e.g. a pressure beyond the wall's limit point).
    """
    a, t, length, h, p = _checked_inputs(
        inner_radius_mm, wall_thickness_mm, length_mm, target_edge_mm, lumen_pressure_kpa
    )
    if not isinstance(material, Material):
        raise MaterialError(f"material must be a biomech Material, got {material!r}")
    if model not in ("linear", "neohookean"):
        raise VesselWallError(f"model must be 'linear' or 'neohookean', got {model!r}")
    ref = lame_tube_closed_form(a, t, material, p)
    fe, res = _solve_quarter(a, t, length, h, material, p, model, load_steps, ref)
    ua, ub, sa, sb = _wall_means(fe, res)
    return VesselWallResult(
        inner_radial_displacement_mm=ua,
        outer_radial_displacement_mm=ub,
        hoop_stress_inner_kpa=sa,
        hoop_stress_outer_kpa=sb,
        diameter_change_percent=float(100.0 * ua / a),
        model=res.model,
        num_dofs=res.info.num_dofs,
        mesh=_mirrored_tube(res.to_pyvista(), p),
        closed_form=ref,
    )


def _checked_inputs(
    inner_radius_mm: float,
    wall_thickness_mm: float,
    length_mm: float,
    target_edge_mm: float | None,
    lumen_pressure_kpa: float,
) -> tuple[float, float, float, float, float]:
    """(a, t, L, edge, p) as floats, each checked (mm, kPa)."""
    a = _positive_mm("inner_radius_mm", inner_radius_mm)
    t = _positive_mm("wall_thickness_mm", wall_thickness_mm)
    length = _positive_mm("length_mm", length_mm)
    h = (
        min(t / 2, length)
        if target_edge_mm is None
        else _positive_mm("target_edge_mm", target_edge_mm)
    )
    try:
        p = float(lumen_pressure_kpa)
    except (TypeError, ValueError):
        p = float("nan")
    if not np.isfinite(p):
        raise VesselWallError(f"lumen_pressure_kpa must be finite, got {lumen_pressure_kpa!r}")
    return a, t, length, h, p


def _solve_quarter(
    a: float,
    t: float,
    length: float,
    h: float,
    material: Material,
    p: float,
    model: str,
    load_steps: int | None,
    ref: dict[str, float],
) -> tuple[FEMesh, TissueResult]:
    """Quarter tube (x, y >= 0): symmetry planes, tethered ends, lumen pressure."""
    from biomech import geometry
    from biomech.loads import FixedSupport, LoadCase, Pressure, TaggedFacets
    from biomech.tissue import solve_tissue

    fe = geometry.thick_cylinder_slab(a, a + t, mesh_size_mm=h, thickness_mm=length)
    loads = LoadCase(
        supports=[
            FixedSupport(TaggedFacets("x0"), (0,), name="symmetry x = 0"),
            FixedSupport(TaggedFacets("y0"), (1,), name="symmetry y = 0"),
            FixedSupport(TaggedFacets("z0"), (2,), name="tethered end z = 0"),
            FixedSupport(TaggedFacets("z1"), (2,), name="tethered end z = L"),
        ],
        pressures=[Pressure(TaggedFacets("inner"), p, name="lumen")],
    )
    if model == "linear":
        return fe, solve_tissue(fe, material, loads, model="linear", degree=2)
    strain = abs(ref["diameter_change_percent"]) / 100.0
    steps = load_steps if load_steps is not None else max(1, int(np.ceil(strain / 0.05)))
    return fe, solve_tissue(fe, material, loads, model="neohookean", degree=2, load_steps=steps)


def _wall_means(fe: FEMesh, res: TissueResult) -> tuple[float, float, float, float]:
    """Surface means of u_r and sigma_tt on the inner and outer walls (mm, kPa)."""
    import dolfinx
    import ufl
    from mpi4py import MPI

    from biomech.elasticity import cauchy_stress
    from biomech.mesh import MM_TO_M

    msh = fe.mesh
    ds = ufl.Measure(
        "ds", domain=msh, subdomain_data=fe.facet_tags, metadata={"quadrature_degree": 6}
    )
    x = ufl.SpatialCoordinate(msh)
    xr = ufl.as_vector([x[0], x[1], 0.0])
    e_r = xr / ufl.sqrt(ufl.dot(xr, xr))
    e_t = ufl.as_vector([-e_r[1], e_r[0], 0.0])
    s_tt = ufl.dot(e_t, cauchy_stress(res.u, res.mu, res.kappa, res.model, 3) * e_t)
    u_r = ufl.dot(ufl.as_vector([res.u[i] for i in range(3)]), e_r)

    def integral(form: ufl.Form) -> float:
        local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(form))
        return float(msh.comm.allreduce(local, op=MPI.SUM))

    def mean(expr: ufl.core.expr.Expr, tag: str) -> float:
        dsk = ds(fe.boundaries[tag])
        return integral(expr * dsk) / integral(1.0 * dsk)

    return (
        mean(u_r, "inner") / MM_TO_M,
        mean(u_r, "outer") / MM_TO_M,
        mean(s_tt, "inner") * 1e-3,
        mean(s_tt, "outer") * 1e-3,
    )


def _mirrored_tube(quarter: pv.UnstructuredGrid, p: float) -> pv.UnstructuredGrid:
    """The solved quarter mirrored into the whole tube (displacements mirrored with it)."""
    import pyvista as pv

    parts = [quarter]
    for sx, sy in ((-1, 1), (-1, -1), (1, -1)):
        m = quarter.copy()
        flip = np.array([sx, sy, 1.0])
        m.points = np.asarray(quarter.points) * flip
        m.point_data["displacement_mm"] = np.asarray(quarter.point_data["displacement_mm"]) * flip
        if sx * sy < 0:  # a single reflection turns the tetrahedra inside out
            cells = m.cells_dict[pv.CellType.TETRA][:, [0, 2, 1, 3]]
            fixed = pv.UnstructuredGrid({pv.CellType.TETRA: cells}, m.points)
            for name in m.point_data:
                fixed.point_data[name] = m.point_data[name]
            for name in m.cell_data:
                fixed.cell_data[name] = m.cell_data[name]
            m = fixed
        parts.append(m)
    tube = pv.merge(parts, merge_points=True)
    if "num_owned_cells" in tube.field_data:
        del tube.field_data["num_owned_cells"]
    tube.field_data["lumen_pressure_kpa"] = np.array([p])
    return tube
