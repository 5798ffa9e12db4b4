"""Vessels: wall mechanics under lumen pressure and blood flow through a vessel tree.

Flow through a tree of straight segments is Hagen-Poiseuille in each segment,

    Q = (p_in - p_out) / R,   R = 8 mu L / (pi r^4)               (Hagen-Poiseuille)

with mass conservation at every junction (Kirchhoff's current law) and a terminal resistance
to the outlet (venous) pressure at every outlet. Clamping a segment removes it (R -> inf).
Units: mm, kPa, mL/s; viscosity in Pa s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from biomech.errors import BiomechError
from biomech.materials import Material, MaterialError

if TYPE_CHECKING:
    import pyvista as pv

BLOOD_VISCOSITY_PA_S = 3.5e-3
"""Dynamic viscosity of whole blood at high shear rate, 3.5 mPa s (Pedley 1980)."""

_MM3_PER_ML = 1.0e3


class VesselTreeError(BiomechError):
    """A vessel tree is malformed (bad radii, unknown nodes, no outlet)."""


@dataclass
class VesselTree:
    """A tree (or any network) of straight centreline segments.

    Parameters
    ----------
    nodes_mm : numpy.ndarray
        (N, 3) centreline node positions in mm.
    segments : numpy.ndarray
        (M, 2) node indices of each segment (flow is positive from column 0 to column 1).
    radii_mm : numpy.ndarray
        (M,) lumen radius of each segment in mm.
    inlet : int
        Node index of the inlet.
    outlets : dict[int, float]
        Outlet node -> terminal resistance in kPa s / mL.
    """

    nodes_mm: np.ndarray
    segments: np.ndarray
    radii_mm: np.ndarray
    inlet: int
    outlets: dict[int, float]
    lengths_mm: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.nodes_mm = np.asarray(self.nodes_mm, dtype=float)
        self.segments = np.asarray(self.segments, dtype=np.int64)
        self.radii_mm = np.asarray(self.radii_mm, dtype=float)
        n = self.nodes_mm.shape[0]
        if self.segments.ndim != 2 or self.segments.shape[1] != 2:
            raise VesselTreeError(f"segments must be (M, 2), got {self.segments.shape}")
        if self.segments.size and (self.segments.min() < 0 or self.segments.max() >= n):
            raise VesselTreeError(f"segment node index outside 0..{n - 1}")
        if self.radii_mm.shape != (self.segments.shape[0],) or np.any(~(self.radii_mm > 0)):
            raise VesselTreeError(f"radii_mm must be {self.segments.shape[0]} values > 0 mm")
        if not 0 <= self.inlet < n:
            raise VesselTreeError(f"inlet node {self.inlet} outside 0..{n - 1}")
        if not self.outlets:
            raise VesselTreeError("vessel tree has no outlet")
        for node, r in self.outlets.items():
            if not 0 <= node < n or not r > 0:
                raise VesselTreeError(f"outlet {node}: node must exist and resistance be > 0")
        if self.lengths_mm is None:
            d = self.nodes_mm[self.segments[:, 1]] - self.nodes_mm[self.segments[:, 0]]
            self.lengths_mm = np.linalg.norm(d, axis=1)
        self.lengths_mm = np.asarray(self.lengths_mm, dtype=float)
        if np.any(~(self.lengths_mm > 0)):
            raise VesselTreeError("every segment must have a length > 0 mm")

    def resistances_kpa_s_ml(self, viscosity_pa_s: float = BLOOD_VISCOSITY_PA_S) -> np.ndarray:
        """Hagen-Poiseuille resistance R = 8 mu L / (pi r^4) of every segment, kPa s / mL."""
        mu_kpa_s = viscosity_pa_s * 1e-3
        r_mm3 = 8.0 * mu_kpa_s * self.lengths_mm / (np.pi * self.radii_mm**4)  # kPa s / mm^3
        return r_mm3 * _MM3_PER_ML


@dataclass
class FlowResult:
    """Pressures and flows in a vessel tree.

    Attributes
    ----------
    pressure_kpa : numpy.ndarray
        (N,) node pressures in kPa (NaN for nodes cut off from inlet and outlets).
    flow_ml_s : numpy.ndarray
        (M,) segment flow in mL/s, positive from ``segments[:, 0]`` to ``segments[:, 1]``.
    wall_shear_stress_pa : numpy.ndarray
        (M,) Poiseuille wall shear stress tau = 4 mu Q / (pi r^3) in Pa.
    inlet_flow_ml_s : float
        Total flow entering at the inlet, mL/s.
    outlet_flow_ml_s : dict[int, float]
        Flow leaving through each outlet, mL/s.
    """

    pressure_kpa: np.ndarray
    flow_ml_s: np.ndarray
    wall_shear_stress_pa: np.ndarray
    inlet_flow_ml_s: float
    outlet_flow_ml_s: dict[int, float] = field(default_factory=dict)


def solve_flow(
    tree: VesselTree,
    *,
    inlet_pressure_kpa: float,
    outlet_pressure_kpa: float = 0.0,
    viscosity_pa_s: float = BLOOD_VISCOSITY_PA_S,
    clamped: Iterable[int] = (),
) -> FlowResult:
    """Steady flows and pressures in a vessel tree (Kirchhoff + Hagen-Poiseuille).

    Parameters
    ----------
    tree : VesselTree
        The network.
    inlet_pressure_kpa : float
        Pressure at the inlet node (kPa); 13.3 kPa is about 100 mmHg.
    outlet_pressure_kpa : float
        Pressure downstream of every terminal resistance (kPa).
    viscosity_pa_s : float
        Blood viscosity in Pa s.
    clamped : Iterable[int]
        Indices of clamped segments (no flow).

    Returns
    -------
    FlowResult
        Node pressures, segment flows and wall shear stresses.
    """
    if not viscosity_pa_s > 0:
        raise VesselTreeError(f"viscosity must be > 0 Pa s, got {viscosity_pa_s}")
    n = tree.nodes_mm.shape[0]
    m = tree.segments.shape[0]
    clamped_set = {int(c) for c in clamped}
    bad = [c for c in clamped_set if not 0 <= c < m]
    if bad:
        raise VesselTreeError(f"clamped segment(s) {bad} outside 0..{m - 1}")
    res = tree.resistances_kpa_s_ml(viscosity_pa_s)
    open_ = np.array([k not in clamped_set for k in range(m)])
    g = np.where(open_, 1.0 / res, 0.0)  # conductance, mL / (s kPa)
    ground = n  # extra node for the outlet pressure
    i = [*tree.segments[:, 0].tolist(), *tree.outlets.keys()]
    j = [*tree.segments[:, 1].tolist(), *([ground] * len(tree.outlets))]
    gv = np.concatenate([g, [1.0 / r for r in tree.outlets.values()]])
    keep = gv > 0
    i, j, gv = np.asarray(i)[keep], np.asarray(j)[keep], gv[keep]
    lap = sp.coo_matrix((gv, (i, j)), shape=(n + 1, n + 1)).tocsr()
    lap = lap + lap.T
    lap = sp.diags(np.asarray(lap.sum(axis=1)).ravel()) - lap  # graph Laplacian (KCL)
    fixed = {tree.inlet: inlet_pressure_kpa, ground: outlet_pressure_kpa}
    # Nodes in a connected component without a pressure-fixed node are cut off: NaN.
    ncomp, labels = csgraph.connected_components(abs(lap) > 0, directed=False)
    live_labels = {labels[k] for k in fixed}
    live = np.array([labels[k] in live_labels for k in range(n + 1)])
    p = np.full(n + 1, np.nan)
    for k, val in fixed.items():
        p[k] = val
    free = np.array([live[k] and k not in fixed for k in range(n + 1)])
    if np.any(free):
        fix_idx = np.array(list(fixed))
        a = lap[free][:, free].tocsc()
        b = -lap[free][:, fix_idx] @ np.array([fixed[k] for k in fix_idx])
        p[free] = spla.spsolve(a, b)
    s0, s1 = tree.segments[:, 0], tree.segments[:, 1]
    flow = np.where(open_, (p[s0] - p[s1]) * g, 0.0)
    flow = np.nan_to_num(flow)
    mu = viscosity_pa_s
    r_m = tree.radii_mm * 1e-3
    wss = 4.0 * mu * (flow * 1e-6) / (np.pi * r_m**3)  # tau_w = 4 mu Q / (pi r^3)
    outlet_flow = {
        k: float(np.nan_to_num((p[k] - outlet_pressure_kpa) / r)) for k, r in tree.outlets.items()
    }
    return FlowResult(
        pressure_kpa=p[:n],
        flow_ml_s=flow,
        wall_shear_stress_pa=wss,
        inlet_flow_ml_s=float(sum(outlet_flow.values())),
        outlet_flow_ml_s=outlet_flow,
    )


def bifurcation_tree(
    *,
    parent_radius_mm: float = 3.0,
    daughter_radii_mm: Sequence[float] = (2.4, 2.0),
    lengths_mm: Sequence[float] = (40.0, 30.0, 25.0),
    outlet_resistances_kpa_s_ml: Sequence[float] = (2.0, 3.0),
) -> VesselTree:
    """A parent segment splitting into two daughters, each ending in a terminal resistance.

    Node 0 is the inlet, node 1 the bifurcation, nodes 2 and 3 the outlets; segment 0 is the
    parent, segments 1 and 2 the daughters.
    """
    lp, l1, l2 = lengths_mm
    nodes = np.array(
        [[0.0, 0, 0], [lp, 0, 0], [lp + l1 * 0.8, l1 * 0.6, 0], [lp + l2 * 0.8, -l2 * 0.6, 0]]
    )
    return VesselTree(
        nodes_mm=nodes,
        segments=np.array([[0, 1], [1, 2], [1, 3]]),
        radii_mm=np.array([parent_radius_mm, *daughter_radii_mm]),
        inlet=0,
        outlets={2: outlet_resistances_kpa_s_ml[0], 3: outlet_resistances_kpa_s_ml[1]},
    )


def poiseuille_flow_rate_ml_s(
    radius_mm: float, pressure_gradient_kpa_per_mm: float, viscosity_pa_s: float
) -> float:
    """Hagen-Poiseuille flow rate Q = pi R^4 G / (8 mu) in mL/s (G = -dp/dz)."""
    g_pa_m = pressure_gradient_kpa_per_mm * 1e6
    r_m = radius_mm * 1e-3
    return np.pi * r_m**4 * g_pa_m / (8.0 * viscosity_pa_s) * 1e6


def poiseuille_wall_shear_stress_pa(radius_mm: float, pressure_gradient_kpa_per_mm: float) -> float:
    """Wall shear stress of Poiseuille flow, tau_w = G R / 2, in Pa."""
    return pressure_gradient_kpa_per_mm * 1e6 * radius_mm * 1e-3 / 2.0


# --------------------------------------------------------------------------------------------
# Vessel wall under lumen pressure (3D finite elements)
# --------------------------------------------------------------------------------------------


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
    # FE imports are local: the vessel-tree flow above needs only numpy/scipy.
    import dolfinx
    import pyvista as pv
    import ufl
    from mpi4py import MPI

    from biomech import geometry
    from biomech.loads import FixedSupport, LoadCase, Pressure, TaggedFacets
    from biomech.mesh import MM_TO_M
    from biomech.tissue import cauchy_stress, solve_tissue

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
    if not isinstance(material, Material):
        raise MaterialError(f"material must be a biomech Material, got {material!r}")
    if model not in ("linear", "neohookean"):
        raise VesselWallError(f"model must be 'linear' or 'neohookean', got {model!r}")
    b = a + t
    ref = lame_tube_closed_form(a, t, material, p)
    fe = geometry.thick_cylinder_slab(a, b, mesh_size_mm=h, thickness_mm=length)
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
        res = solve_tissue(fe, material, loads, model="linear", degree=2)
    else:
        strain = abs(ref["diameter_change_percent"]) / 100.0
        steps = load_steps if load_steps is not None else max(1, int(np.ceil(strain / 0.05)))
        res = solve_tissue(fe, material, loads, model="neohookean", degree=2, load_steps=steps)

    # Surface means on the inner and outer walls: radial displacement and hoop stress.
    msh = fe.mesh
    md = {"quadrature_degree": 6}
    ds = ufl.Measure("ds", domain=msh, subdomain_data=fe.facet_tags, metadata=md)
    x = ufl.SpatialCoordinate(msh)
    xr = ufl.as_vector([x[0], x[1], 0.0])
    e_r = xr / ufl.sqrt(ufl.dot(xr, xr))
    e_t = ufl.as_vector([-e_r[1], e_r[0], 0.0])
    sigma = cauchy_stress(res.u, res.mu, res.kappa, res.model, 3)
    s_tt = ufl.dot(e_t, sigma * e_t)
    u3 = ufl.as_vector([res.u[i] for i in range(3)])

    def integral(form: ufl.Form) -> float:
        local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(form))
        return float(msh.comm.allreduce(local, op=MPI.SUM))

    def mean(expr: ufl.core.expr.Expr, tag: str) -> float:
        dsk = ds(fe.boundaries[tag])
        return integral(expr * dsk) / integral(1.0 * dsk)

    ua = mean(ufl.dot(u3, e_r), "inner") / MM_TO_M
    ub = mean(ufl.dot(u3, e_r), "outer") / MM_TO_M
    sa = mean(s_tt, "inner") * 1e-3
    sb = mean(s_tt, "outer") * 1e-3

    quarter = res.to_pyvista()
    parts = [quarter]
    for sx, sy in ((-1, 1), (-1, -1), (1, -1)):
        m = quarter.copy()
        m.points = np.asarray(quarter.points) * np.array([sx, sy, 1.0])
        m.point_data["displacement_mm"] = np.asarray(quarter.point_data["displacement_mm"]) * (
            np.array([sx, sy, 1.0])
        )
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
    for name in ("num_owned_cells",):
        if name in tube.field_data:
            del tube.field_data[name]
    tube.field_data["lumen_pressure_kpa"] = np.array([p])
    return VesselWallResult(
        inner_radial_displacement_mm=float(ua),
        outer_radial_displacement_mm=float(ub),
        hoop_stress_inner_kpa=float(sa),
        hoop_stress_outer_kpa=float(sb),
        diameter_change_percent=float(100.0 * ua / a),
        model=res.model,
        num_dofs=res.info.num_dofs,
        mesh=tube,
        closed_form=ref,
    )
