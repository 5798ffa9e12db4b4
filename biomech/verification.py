"""Verification of the solvers against analytical solutions, with observed convergence orders.

Every problem is posed through the public API in mm and kPa (so the unit conversion is part
of what is verified) and solved on a sequence of meshes. Each record is a dict::

    {"problem", "quantity", "dofs", "value", "reference", "rel_error", "order", "h_mm"}

``order`` is the observed convergence order between a level and the previous one,
p = log(e_{k-1} / e_k) / log(h_{k-1} / h_k) with h = dofs^(-1/d) (None on the first level).
For Cook's membrane and the cantilever, whose references are not exact solutions of the
discretised model (a literature value; Timoshenko beam theory), the order is instead
estimated from three successive levels by Richardson, p = log2(|q1 - q2| / |q2 - q3|)
(meshes halve h).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import dolfinx
import dolfinx.fem.petsc
import dolfinx_solver  # noqa: F401
import numpy as np
import ufl
from mpi4py import MPI

from biomech import geometry
from biomech.elasticity import cauchy_stress
from biomech.loads import FixedSupport, LoadCase, Pressure, TaggedFacets, Traction
from biomech.materials import Material
from biomech.mesh import MM_TO_M
from biomech.tissue import TissueResult, solve_tissue
from biomech.vessel_tree import (
    bifurcation_tree,
    poiseuille_flow_rate_ml_s,
    poiseuille_wall_shear_stress_pa,
    solve_flow,
)

Record = dict[str, object]

COOK_REFERENCE_MM = 6.9
"""Converged top-right-corner vertical displacement of the nearly incompressible neo-Hookean
Cook's membrane (G = 80.194, K = 400889.8, plane strain, shear load 6.25 per unit length on
the right edge): about 6.9 in the mixed-element literature (e.g. Auricchio, Beirao da Veiga,
Lovadina, Reali, Comput Methods Appl Mech Eng 199:314, 2010; Schroeder, Wriggers, Balzani,
Comput Methods Appl Mech Eng 200:3583, 2011)."""


def _record(
    problem: str, quantity: str, dofs: int, value: float, reference: float, h_mm: float
) -> Record:
    rel = abs(value - reference) / abs(reference) if reference != 0 else abs(value)
    return {
        "problem": problem,
        "quantity": quantity,
        "dofs": int(dofs),
        "value": float(value),
        "reference": float(reference),
        "rel_error": float(rel),
        "order": None,
        "h_mm": float(h_mm),
    }


def add_orders(records: list[Record], dim: int, *, richardson: bool = False) -> list[Record]:
    """Fill ``order`` for successive levels of each (problem, quantity) in ``records``.

    Parameters
    ----------
    records : list of dict
        Records (module docstring), mesh levels in order (coarse first); changed in place.
    dim : int
        Spatial dimension d of the mesh size h = dofs^(-1/d) of the two-level order.
    richardson : bool
        Estimate the order from three successive values instead (for references that are not
        exact solutions of the discretised model; meshes halve h).

    Returns
    -------
    list of dict
        ``records``.
    """
    groups: dict[tuple[object, object], list[Record]] = {}
    for r in records:
        groups.setdefault((r["problem"], r["quantity"]), []).append(r)
    for rows in groups.values():
        for k in range(1, len(rows)):
            if richardson:
                if k < 2:
                    continue
                q1, q2, q3 = (float(rows[i]["value"]) for i in (k - 2, k - 1, k))  # type: ignore[arg-type]
                d1, d2 = abs(q1 - q2), abs(q2 - q3)
                rows[k]["order"] = math.log2(d1 / d2) if d1 > 0 and d2 > 0 else None
                continue
            e0, e1 = float(rows[k - 1]["rel_error"]), float(rows[k]["rel_error"])  # type: ignore[arg-type]
            n0, n1 = int(rows[k - 1]["dofs"]), int(rows[k]["dofs"])  # type: ignore[call-overload]
            if e0 > 0 and e1 > 0 and n1 > n0:
                rows[k]["order"] = math.log(e0 / e1) / math.log((n1 / n0) ** (1.0 / dim))
    return records


def _assemble(form: ufl.Form, comm: MPI.Comm) -> float:
    return float(comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(form)), op=MPI.SUM))


def _surface_means(result: TissueResult, tag: str, radial_dims: int) -> tuple[float, float]:
    """Mean radial displacement (mm) on a tagged surface and mean hoop stress (kPa) in the body.

    The hoop stress is sigma_tt = e_t . sigma e_t (cylinder) or (tr sigma - sigma_rr) / 2
    (sphere), averaged over the volume of the wall.
    """
    fe = result.fe_mesh
    msh = fe.mesh
    md = {"quadrature_degree": 6}
    ds = ufl.Measure("ds", domain=msh, subdomain_data=fe.facet_tags, metadata=md)(
        fe.boundaries[tag]
    )
    dx = ufl.Measure("dx", domain=msh, metadata=md)
    x = ufl.SpatialCoordinate(msh)
    xr = ufl.as_vector([x[i] for i in range(radial_dims)] + [0.0] * (3 - radial_dims))
    e_r = xr / ufl.sqrt(ufl.dot(xr, xr))
    u3 = ufl.as_vector([result.u[i] for i in range(3)])
    sigma = cauchy_stress(result.u, result.mu, result.kappa, result.model, 3)
    if radial_dims == 2:
        e_t = ufl.as_vector([-e_r[1], e_r[0], 0.0])
        s_tt = ufl.dot(e_t, sigma * e_t)
    else:
        s_tt = 0.5 * (ufl.tr(sigma) - ufl.dot(e_r, sigma * e_r))
    area = _assemble(1.0 * ds, msh.comm)
    ur = _assemble(ufl.dot(u3, e_r) * ds, msh.comm) / area / MM_TO_M
    vol = _assemble(1.0 * dx, msh.comm)
    stt = _assemble(s_tt * dx, msh.comm) / vol * 1e-3
    return ur, stt


def _l2_rel_error(
    result: TissueResult, exact: Callable[[ufl.SpatialCoordinate], ufl.core.expr.Expr]
) -> float:
    msh = result.fe_mesh.mesh
    x = ufl.SpatialCoordinate(msh)
    dx = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": 6})
    ue = exact(x)
    err = _assemble(ufl.inner(result.u - ue, result.u - ue) * dx, msh.comm)
    ref = _assemble(ufl.inner(ue, ue) * dx, msh.comm)
    return math.sqrt(err / ref)


def lame_cylinder(
    mesh_sizes_mm: Sequence[float] = (5.0, 2.5, 1.25),
    *,
    comm: MPI.Comm = MPI.COMM_WORLD,
    inner_radius_mm: float = 10.0,
    outer_radius_mm: float = 20.0,
    youngs_modulus_kpa: float = 500.0,
    poisson_ratio: float = 0.45,
    pressure_kpa: float = 13.3,
) -> list[Record]:
    """Thick-walled cylinder (plane strain) under internal pressure (Lamé 1852).

    u_r(r) = (1 + nu) p a^2 / (E (b^2 - a^2)) [(1 - 2 nu) r + b^2 / r]
    sigma_tt(r) = p a^2 / (b^2 - a^2) (1 + b^2 / r^2)

    Quantities: mean u_r over the inner surface, hoop stress averaged over the wall, and the
    relative L2 error of the displacement field.

    Parameters
    ----------
    mesh_sizes_mm : sequence of float
        Element sizes of the mesh levels, mm (coarse first).
    comm : mpi4py.MPI.Comm
        Communicator the meshes are distributed over.
    inner_radius_mm, outer_radius_mm : float
        Radii a < b of the wall, mm.
    youngs_modulus_kpa : float
        Young's modulus E, kPa.
    poisson_ratio : float
        Poisson's ratio nu.
    pressure_kpa : float
        Internal pressure p, kPa (the outer surface is traction free).

    Returns
    -------
    list of dict
        One record per mesh level and quantity (module docstring), with observed orders.
    """
    a, b, e, nu, p = (
        inner_radius_mm,
        outer_radius_mm,
        youngs_modulus_kpa,
        poisson_ratio,
        pressure_kpa,
    )
    c = (1 + nu) * p * a**2 / (e * (b**2 - a**2))
    ur_ref = c * ((1 - 2 * nu) * a + b**2 / a)
    # wall-averaged hoop stress: int_a^b sigma_tt r dr / int_a^b r dr
    st_ref = p * a**2 / (b**2 - a**2) * (1 + b**2 * math.log(b / a) / ((b**2 - a**2) / 2))
    mat = Material("vessel wall", e, nu)
    out: list[Record] = []
    for h in mesh_sizes_mm:
        fe = geometry.thick_cylinder_slab(a, b, mesh_size_mm=h, thickness_mm=(b - a) / 4, comm=comm)
        loads = LoadCase(
            supports=[
                FixedSupport(TaggedFacets("x0"), (0,)),
                FixedSupport(TaggedFacets("y0"), (1,)),
                FixedSupport(TaggedFacets("z0"), (2,)),
                FixedSupport(TaggedFacets("z1"), (2,)),
            ],
            pressures=[Pressure(TaggedFacets("inner"), p)],
        )
        res = solve_tissue(fe, mat, loads, degree=2)
        ur, st = _surface_means(res, "inner", 2)

        def exact(x: ufl.SpatialCoordinate) -> ufl.core.expr.Expr:
            r_m = ufl.sqrt(x[0] ** 2 + x[1] ** 2)
            r = r_m / MM_TO_M
            urr = c * ((1 - 2 * nu) * r + b**2 / r) * MM_TO_M
            return ufl.as_vector([urr * x[0] / r_m, urr * x[1] / r_m, 0.0])

        l2 = _l2_rel_error(res, exact)
        n = res.info.num_dofs
        out.append(_record("lame_cylinder", "u_r(a) [mm]", n, ur, ur_ref, h))
        out.append(_record("lame_cylinder", "mean hoop stress [kPa]", n, st, st_ref, h))
        out.append(_record("lame_cylinder", "u L2 relative error", n, l2, 0.0, h))
    return add_orders(out, 3)


def lame_sphere(
    mesh_sizes_mm: Sequence[float] = (5.0, 2.5, 1.6),
    *,
    comm: MPI.Comm = MPI.COMM_WORLD,
    inner_radius_mm: float = 10.0,
    outer_radius_mm: float = 20.0,
    youngs_modulus_kpa: float = 20.0,
    poisson_ratio: float = 0.45,
    pressure_kpa: float = 0.2,
) -> list[Record]:
    """Thick-walled sphere under internal pressure (Lamé).

    u_r(r) = p a^3 / (E (b^3 - a^3)) [(1 - 2 nu) r + (1 + nu) b^3 / (2 r^2)]
    sigma_tt(r) = p a^3 / (b^3 - a^3) (1 + b^3 / (2 r^3))

    Quantities as :func:`lame_cylinder` (on an octant of the sphere).

    Parameters
    ----------
    mesh_sizes_mm : sequence of float
        Element sizes of the mesh levels, mm (coarse first).
    comm : mpi4py.MPI.Comm
        Communicator the meshes are distributed over.
    inner_radius_mm, outer_radius_mm : float
        Radii a < b of the wall, mm.
    youngs_modulus_kpa : float
        Young's modulus E, kPa.
    poisson_ratio : float
        Poisson's ratio nu.
    pressure_kpa : float
        Internal pressure p, kPa (the outer surface is traction free).

    Returns
    -------
    list of dict
        One record per mesh level and quantity (module docstring), with observed orders.
    """
    a, b, e, nu, p = (
        inner_radius_mm,
        outer_radius_mm,
        youngs_modulus_kpa,
        poisson_ratio,
        pressure_kpa,
    )
    c = p * a**3 / (e * (b**3 - a**3))
    ur_ref = c * ((1 - 2 * nu) * a + (1 + nu) * b**3 / (2 * a**2))
    # wall-averaged hoop stress: int_a^b sigma_tt r^2 dr / int_a^b r^2 dr
    st_ref = p * a**3 / (b**3 - a**3) * (1 + (b**3 / 2) * math.log(b / a) / ((b**3 - a**3) / 3))
    mat = Material("tumour capsule", e, nu)
    out: list[Record] = []
    for h in mesh_sizes_mm:
        fe = geometry.thick_sphere_octant(a, b, mesh_size_mm=h, comm=comm)
        loads = LoadCase(
            supports=[
                FixedSupport(TaggedFacets("x0"), (0,)),
                FixedSupport(TaggedFacets("y0"), (1,)),
                FixedSupport(TaggedFacets("z0"), (2,)),
            ],
            pressures=[Pressure(TaggedFacets("inner"), p)],
        )
        res = solve_tissue(fe, mat, loads, degree=2)
        ur, st = _surface_means(res, "inner", 3)

        def exact(x: ufl.SpatialCoordinate) -> ufl.core.expr.Expr:
            r_m = ufl.sqrt(ufl.dot(x, x))
            r = r_m / MM_TO_M
            urr = c * ((1 - 2 * nu) * r + (1 + nu) * b**3 / (2 * r**2)) * MM_TO_M
            return urr * x / r_m

        l2 = _l2_rel_error(res, exact)
        n = res.info.num_dofs
        out.append(_record("lame_sphere", "u_r(a) [mm]", n, ur, ur_ref, h))
        out.append(_record("lame_sphere", "mean hoop stress [kPa]", n, st, st_ref, h))
        out.append(_record("lame_sphere", "u L2 relative error", n, l2, 0.0, h))
    return add_orders(out, 3)


def cantilever(
    mesh_sizes_mm: Sequence[float] = (5.0, 2.5, 1.25),
    *,
    comm: MPI.Comm = MPI.COMM_WORLD,
    length_mm: float = 100.0,
    side_mm: float = 10.0,
    youngs_modulus_kpa: float = 1000.0,
    tip_force_n: float = 1e-4,
) -> list[Record]:
    """Cantilever of square section with a tip shear load (nu = 0).

    Timoshenko: delta = P L^3 / (3 E I) + P L / (k G A), I = h^4 / 12, k = 5/6.

    Parameters
    ----------
    mesh_sizes_mm : sequence of float
        Element sizes of the mesh levels, mm (coarse first; each half the previous).
    comm : mpi4py.MPI.Comm
        Communicator the meshes are distributed over.
    length_mm : float
        Beam length L along x, mm (clamped at x = 0).
    side_mm : float
        Side h of the square section, mm.
    youngs_modulus_kpa : float
        Young's modulus E, kPa.
    tip_force_n : float
        Shear force P on the free end (-z), N.

    Returns
    -------
    list of dict
        One record per mesh level and quantity (module docstring), with observed orders.
    """
    length, h, e = length_mm, side_mm, youngs_modulus_kpa
    area = h * h
    force_kpa_mm2 = tip_force_n * 1e3  # 1 N = 1e3 kPa mm^2
    inertia = h**4 / 12.0
    g = e / 2.0
    ref = force_kpa_mm2 * length**3 / (3 * e * inertia) + force_kpa_mm2 * length / (
        5 / 6 * g * area
    )
    mat = Material("beam", e, 0.0)
    out: list[Record] = []
    for hm in mesh_sizes_mm:
        fe = geometry.box(length, h, h, mesh_size_mm=hm, comm=comm)
        loads = LoadCase(
            supports=[FixedSupport(TaggedFacets("x0"))],
            tractions=[Traction(TaggedFacets("x1"), (0.0, 0.0, -force_kpa_mm2 / area))],
        )
        res = solve_tissue(fe, mat, loads, degree=2)
        msh = fe.mesh
        ds = ufl.Measure("ds", domain=msh, subdomain_data=fe.facet_tags)(fe.boundaries["x1"])
        a_tip = _assemble(1.0 * ds, msh.comm)
        tip = -_assemble(res.u[2] * ds, msh.comm) / a_tip / MM_TO_M
        out.append(_record("cantilever", "tip deflection [mm]", res.info.num_dofs, tip, ref, hm))
    return add_orders(out, 3, richardson=True)


def cooks_membrane(
    divisions: Sequence[int] = (4, 8, 16, 32),
    *,
    comm: MPI.Comm = MPI.COMM_WORLD,
    formulation: str = "mixed",
    degree: int = 2,
    traction_kpa: float = 6.25,
) -> list[Record]:
    """Cook's membrane, nearly incompressible neo-Hookean (G = 80.194, K = 400889.8), plane strain.

    Quantity: vertical displacement of the top-right corner (48, 60); reference
    :data:`COOK_REFERENCE_MM`. With ``formulation="displacement", degree=1`` the same problem
    shows volumetric locking.

    Parameters
    ----------
    divisions : sequence of int
        Divisions per side of the mesh levels (coarse first; each double the previous).
    comm : mpi4py.MPI.Comm
        Communicator the meshes are distributed over.
    formulation : {"mixed", "displacement"}
        Mixed u-p or pure displacement formulation.
    degree : int
        Displacement polynomial degree.
    traction_kpa : float
        Vertical shear traction on the right edge, kPa.

    Returns
    -------
    list of dict
        One record per mesh level and quantity (module docstring), with observed orders.
    """
    mat = Material.from_shear_bulk("cook", 80.194, 400889.8)
    out: list[Record] = []
    name = "cooks_membrane" if formulation == "mixed" else f"cooks_membrane_{formulation}_p{degree}"
    for n in divisions:
        fe = geometry.cooks_membrane(n, comm=comm)
        loads = LoadCase(
            supports=[FixedSupport(TaggedFacets("left"))],
            tractions=[Traction(TaggedFacets("right"), (0.0, traction_kpa))],
        )
        res = solve_tissue(
            fe, mat, loads, model="neohookean", formulation=formulation, degree=degree, load_steps=2
        )
        uy = _point_value(res, np.array([48.0, 60.0]))[1]
        out.append(
            _record(name, "u_y(48, 60) [mm]", res.info.num_dofs, uy, COOK_REFERENCE_MM, 60.0 / n)
        )
    return add_orders(out, 2, richardson=True)


def _point_value(res: TissueResult, point_mm: np.ndarray) -> np.ndarray:
    """Displacement (mm) at a point, gathered from whichever rank owns it."""
    msh = res.fe_mesh.mesh
    pts = np.zeros((1, 3))
    pts[0, : point_mm.size] = point_mm * MM_TO_M
    tree = dolfinx.geometry.bb_tree(msh, msh.topology.dim)
    cand = dolfinx.geometry.compute_collisions_points(tree, pts)
    coll = dolfinx.geometry.compute_colliding_cells(msh, cand, pts)
    val = None
    if len(coll.links(0)) > 0:
        cell = np.array([coll.links(0)[0]], dtype=np.int32)
        val = res.u.eval(pts, cell).reshape(-1) / MM_TO_M
    vals = [v for v in msh.comm.allgather(val) if v is not None]
    return np.asarray(vals[0])


def poiseuille(
    mesh_sizes_mm: Sequence[float] = (1.0, 0.5, 0.25, 0.125),
    *,
    comm: MPI.Comm = MPI.COMM_WORLD,
    radius_mm: float = 2.0,
    pressure_gradient_kpa_per_mm: float = 1e-4,
    viscosity_pa_s: float = 3.5e-3,
) -> list[Record]:
    """Fully developed pipe flow: -mu lap(w) = G on the cross-section, w = 0 on the wall.

    Q = pi R^4 G / (8 mu) (Hagen-Poiseuille), tau_w = G R / 2. P2 Lagrange, SI internally.

    Parameters
    ----------
    mesh_sizes_mm : sequence of float
        Element sizes of the cross-section mesh levels, mm (coarse first).
    comm : mpi4py.MPI.Comm
        Communicator the meshes are distributed over.
    radius_mm : float
        Pipe radius R, mm.
    pressure_gradient_kpa_per_mm : float
        Axial pressure drop per length G, kPa/mm.
    viscosity_pa_s : float
        Dynamic viscosity mu, Pa s.

    Returns
    -------
    list of dict
        One record per mesh level and quantity (module docstring), with observed orders.
    """
    q_ref = poiseuille_flow_rate_ml_s(radius_mm, pressure_gradient_kpa_per_mm, viscosity_pa_s)
    t_ref = poiseuille_wall_shear_stress_pa(radius_mm, pressure_gradient_kpa_per_mm)
    g_pa_m = pressure_gradient_kpa_per_mm * 1e6
    out: list[Record] = []
    for h in mesh_sizes_mm:
        fe = geometry.disc(radius_mm, mesh_size_mm=h, comm=comm)
        msh = fe.mesh
        v = dolfinx.fem.functionspace(msh, ("Lagrange", 2))
        w, z = ufl.TrialFunction(v), ufl.TestFunction(v)
        mu = viscosity_pa_s
        a = mu * ufl.inner(ufl.grad(w), ufl.grad(z)) * ufl.dx  # -mu lap(w) = G (weak form)
        rhs = g_pa_m * z * ufl.dx
        facets = fe.facet_tags.find(fe.boundaries["wall"])
        dofs = dolfinx.fem.locate_dofs_topological(v, 1, facets)
        bc = dolfinx.fem.dirichletbc(0.0, dofs, v)
        problem = dolfinx.fem.petsc.LinearProblem(
            a,
            rhs,
            bcs=[bc],
            petsc_options_prefix="biomech_poiseuille_",
            petsc_options={
                "ksp_type": "preonly",
                "pc_type": "lu",
                "pc_factor_mat_solver_type": "mumps",
            },
        )
        wh = problem.solve()
        q = _assemble(wh * ufl.dx, msh.comm) * 1e6  # m^3/s -> mL/s
        n = ufl.FacetNormal(msh)
        ds = ufl.Measure("ds", domain=msh, metadata={"quadrature_degree": 4})
        perim = _assemble(1.0 * ds, msh.comm)
        tau = -_assemble(mu * ufl.dot(ufl.grad(wh), n) * ds, msh.comm) / perim
        ndofs = v.dofmap.index_map.size_global
        out.append(_record("poiseuille", "flow rate [mL/s]", ndofs, q, q_ref, h))
        out.append(_record("poiseuille", "wall shear stress [Pa]", ndofs, tau, t_ref, h))
    return add_orders(out, 2)


def vessel_tree() -> list[Record]:
    """Bifurcation with terminal resistances, open and with one daughter clamped.

    Series/parallel reduction: Q = P / (R0 + ((R1 + Ro1)^-1 + (R2 + Ro2)^-1)^-1),
    p_bif = P - Q R0; clamped daughter 2: Q = P / (R0 + R1 + Ro1).
    """
    tree = bifurcation_tree()
    p_in = 13.3
    r0, r1, r2 = tree.resistances_kpa_s_ml()
    ro1, ro2 = tree.outlets[2], tree.outlets[3]
    q_open = p_in / (r0 + 1.0 / (1.0 / (r1 + ro1) + 1.0 / (r2 + ro2)))
    pb_open = p_in - q_open * r0
    q_cl = p_in / (r0 + r1 + ro1)
    pb_cl = p_in - q_cl * r0
    ndof = tree.nodes_mm.shape[0]
    res_o = solve_flow(tree, inlet_pressure_kpa=p_in)
    res_c = solve_flow(tree, inlet_pressure_kpa=p_in, clamped=[2])
    return [
        _record("vessel_tree", "inlet flow [mL/s]", ndof, res_o.inlet_flow_ml_s, q_open, 0.0),
        _record(
            "vessel_tree", "bifurcation pressure [kPa]", ndof, res_o.pressure_kpa[1], pb_open, 0.0
        ),
        _record(
            "vessel_tree",
            "daughter-1 flow [mL/s]",
            ndof,
            res_o.flow_ml_s[1],
            q_open * (r2 + ro2) / (r1 + ro1 + r2 + ro2),
            0.0,
        ),
        _record(
            "vessel_tree",
            "inlet flow, daughter 2 clamped [mL/s]",
            ndof,
            res_c.inlet_flow_ml_s,
            q_cl,
            0.0,
        ),
        _record(
            "vessel_tree",
            "bifurcation pressure, daughter 2 clamped [kPa]",
            ndof,
            res_c.pressure_kpa[1],
            pb_cl,
            0.0,
        ),
    ]


PROBLEMS: dict[str, Callable[..., list[Record]]] = {
    "lame_cylinder": lame_cylinder,
    "lame_sphere": lame_sphere,
    "cantilever": cantilever,
    "cooks_membrane": cooks_membrane,
    "poiseuille": poiseuille,
    "vessel_tree": vessel_tree,
}

QUICK_LEVELS: dict[str, dict[str, object]] = {
    "lame_cylinder": {"mesh_sizes_mm": (5.0, 2.5)},
    "lame_sphere": {"mesh_sizes_mm": (5.0, 3.0)},
    "cantilever": {"mesh_sizes_mm": (10.0, 5.0, 2.5)},
    "cooks_membrane": {"divisions": (4, 8, 16)},
    "poiseuille": {"mesh_sizes_mm": (1.0, 0.5, 0.25)},
    "vessel_tree": {},
}


def run_verification(
    problems: Sequence[str] | None = None,
    *,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Record]:
    """Run the verification problems and return all records (see module docstring).

    Parameters
    ----------
    problems : sequence of str, optional
        Names from :data:`PROBLEMS` (default: all of them, in that order).
    quick : bool
        Use the coarser levels of :data:`QUICK_LEVELS` (a smoke test, not a convergence study).
    progress : callable, optional
        ``progress(name)`` before each problem.

    Raises
    ------
    BiomechError
        If a name is not in :data:`PROBLEMS`.
    """
    names = list(problems) if problems else list(PROBLEMS)
    unknown = [n for n in names if n not in PROBLEMS]
    if unknown:
        from biomech.errors import BiomechError

        raise BiomechError(f"unknown verification problem(s) {unknown}; known: {list(PROBLEMS)}")
    out: list[Record] = []
    for n in names:
        if progress is not None:
            progress(n)
        kwargs = QUICK_LEVELS[n] if quick else {}
        out.extend(PROBLEMS[n](**kwargs))
    return out


JSON_KEYS = ("problem", "quantity", "dofs", "value", "reference", "rel_error", "order")
"""Keys of one record in ``surgplan verify --json`` (the public contract), in this order."""


def json_records(records: Sequence[Record]) -> list[Record]:
    """Records reduced to :data:`JSON_KEYS` (``h_mm`` and any other key dropped), in order."""
    return [{k: r.get(k) for k in JSON_KEYS} for r in records]


def format_table(records: Sequence[Record]) -> str:
    """Plain-text table of verification records, one row per problem, quantity and mesh level.

    Rows are grouped by problem and quantity (mesh levels in order, so a convergence study
    reads down a column); columns fit their widest entry; a blank line separates problems.
    ``order`` is the observed convergence order (blank on a first level or where undefined).
    """
    first: dict[object, int] = {}
    for i, r in enumerate(records):
        first.setdefault(r["problem"], i)
        first.setdefault((r["problem"], r["quantity"]), i)
    records = sorted(
        records, key=lambda r: (first[r["problem"]], first[(r["problem"], r["quantity"])])
    )
    head = ["problem", "quantity", "dofs", "value", "reference", "rel_error", "order"]
    rows = []
    for r in records:
        order = r.get("order")
        rows.append(
            [
                str(r["problem"]),
                str(r["quantity"]),
                str(r["dofs"]),
                f"{float(r['value']):.6g}",  # type: ignore[arg-type]
                f"{float(r['reference']):.6g}",  # type: ignore[arg-type]
                f"{float(r['rel_error']):.2e}",  # type: ignore[arg-type]
                "" if order is None else f"{float(order):.2f}",  # type: ignore[arg-type]
            ]
        )
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(head)]

    def line(cells: Sequence[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    out = [line(head), "-" * len(line(head))]
    previous = None
    for r, row in zip(records, rows, strict=True):
        if previous is not None and r["problem"] != previous:
            out.append("")
        previous = r["problem"]
        out.append(line(row))
    return "\n".join(out)
