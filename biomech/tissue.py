"""Tissue mechanics: linear elasticity and compressible neo-Hookean hyperelasticity.

Public inputs are in mm and kPa (geometry of the mesh, loads, moduli); internally the solver
works in SI (m, Pa, N/m^3) and converts at this boundary: displacements come back in mm and
stresses in kPa. ``tests/test_biomech_units.py`` proves the conversion against a closed form.

Formulations
------------
Linear elasticity (small strain), Lagrange P``degree`` displacement::

    eps(u) = sym(grad u),  sigma = 2 mu eps + lambda tr(eps) I               (Hooke)
    int sigma(u) : eps(v) dx = int f.v dx + int t.v ds - int p n.v ds        (virtual work)

Compressible neo-Hookean (Simo & Taylor 1991 split), mixed u-p (Taylor-Hood P2-P1)::

    Psi_iso = mu/2 (J^(-2/3) I1 - 3)
    Pi(u, p) = int [Psi_iso(F) + p (J - 1) - p^2 / (2 kappa)] dx - W_ext     (perturbed Lagrangian)

which eliminates to Psi_vol = kappa/2 (J - 1)^2 and stays locking-free as nu -> 0.5 (Cook's
membrane in :mod:`biomech.verification`). The pure-displacement variant
``Psi_iso + kappa/2 (J-1)^2`` is kept for comparison (it locks with P1).
The pressure load is a follower load: ``int p J F^-T N . v dA`` (Nanson's formula).
Plane strain is used when the mesh is 2D (F33 = 1).

Load stepping with Newton (PETSc SNES, MUMPS LU); a step that fails is bisected, and when it
still fails :class:`ConvergenceError` is raised with the last residual: an unconverged field
is never returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import basix.ufl
import dolfinx
import dolfinx.fem.petsc
import dolfinx_solver  # noqa: F401
import numpy as np
import pyvista as pv
import ufl
from petsc4py import PETSc

from biomech.boundary import (
    FacetMarkers,
    dirichlet_dofs,
    displacement_bc_values,
    select_facets,
)
from biomech.elasticity import (
    KPA_TO_PA,
    MaterialFields,
    cauchy_stress,
    epsilon,
    material_fields,
    material_map,
    sigma,
)
from biomech.errors import BiomechError
from biomech.loads import (
    AllBoundary,
    FixedSupport,
    LoadCase,
    LoadRegionError,
    PrescribedDisplacement,
    Pressure,
    SphereRegion,
    SpringSupport,
    Traction,
    bump_weight_ufl,
)
from biomech.materials import Material
from biomech.mesh import MM_TO_M, FEMesh, from_unstructured_grid

__all__ = [
    "KPA_TO_PA",
    "ConvergenceError",
    "Model",
    "SolveInfo",
    "TissueResult",
    "cauchy_stress",
    "solve_tissue",
    "spring_support_form",
    "support_bcs",
]

Model = Literal["linear", "neohookean"]


class ConvergenceError(BiomechError):
    """The nonlinear (or linear) solve did not converge; no result is returned."""


_LU_OPTIONS = {
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
    "mat_mumps_icntl_14": 200,
}


@dataclass
class SolveInfo:
    """How the solve went: Newton iterations per accepted load step and residuals."""

    model: str
    load_steps: list[float] = field(default_factory=list)
    newton_iterations: list[int] = field(default_factory=list)
    final_residual: float = 0.0
    num_dofs: int = 0


@dataclass
class TissueResult:
    """Converged displacement (and stress) field.

    Attributes
    ----------
    fe_mesh : FEMesh
        The mesh (metres internally).
    u : dolfinx.fem.Function
        Displacement in metres (P``degree``).
    mu, kappa : dolfinx.fem.Function
        DG0 shear and bulk moduli (Pa).
    model : str
        ``"linear"`` or ``"neohookean"``.
    info : SolveInfo
        Newton iterations, load steps and residual.
    """

    fe_mesh: FEMesh
    u: dolfinx.fem.Function
    mu: dolfinx.fem.Function
    kappa: dolfinx.fem.Function
    model: str
    info: SolveInfo
    pressure: dolfinx.fem.Function | None = None

    def von_mises_kpa(self) -> dolfinx.fem.Function:
        """Von Mises stress (kPa) per cell (DG0), from the Cauchy stress."""
        from biomech.results import von_mises_function

        return von_mises_function(self)

    def displacement_norm_mm(self) -> float:
        """Euclidean norm of the global displacement dof vector in mm (partition independent)."""
        return float(self.u.x.petsc_vec.norm()) / MM_TO_M

    def evaluate_displacement_mm(self, points_mm: np.ndarray) -> np.ndarray:
        """Displacement (mm) at points (N, 3) in mm (serial; points outside snap to nearest)."""
        from biomech.results import evaluate_function

        return evaluate_function(self.u, np.asarray(points_mm, float) * MM_TO_M) / MM_TO_M

    def to_pyvista(self) -> pv.UnstructuredGrid:
        """Local part of the result as a grid in mm: ``displacement_mm``, ``von_mises_kpa``."""
        from biomech.results import to_pyvista

        return to_pyvista(self)

    def write_vtu(self, path: str) -> None:
        """Write the result as a ``.vtu`` (serial) that ParaView opens; mm and kPa."""
        from biomech.results import write_vtu

        write_vtu(self, path)

    def write_xdmf(self, path: str) -> None:
        """Write displacement (mm) and von Mises stress (kPa) as XDMF (works under MPI)."""
        from biomech.results import write_xdmf

        write_xdmf(self, path)


@dataclass(frozen=True)
class _Problem:
    """The discretised problem shared by both models: spaces, unknown, conditions, loads."""

    fe: FEMesh
    fields: MaterialFields
    space: dolfinx.fem.FunctionSpace
    uspace: dolfinx.fem.FunctionSpace
    mixed: bool
    w: dolfinx.fem.Function
    bcs: list[dolfinx.fem.DirichletBC]
    ramped: list[tuple[dolfinx.fem.Function, np.ndarray]]
    neumann: list[Pressure | Traction | PrescribedDisplacement | SpringSupport]
    markers: FacetMarkers | None
    dx: ufl.Measure
    f_body: ufl.core.expr.Expr


def _check_request(model: str, degree: int, formulation: str, loads: LoadCase) -> None:
    if model not in ("linear", "neohookean"):
        raise BiomechError(f"model must be 'linear' or 'neohookean', got {model!r}")
    if degree < 1 or (model == "neohookean" and formulation == "mixed" and degree < 2):
        raise BiomechError(f"degree must be >= 1 (>= 2 for the mixed u-p form), got {degree}")
    if not loads.supports and not loads.displacements:  # springs among supports restrain too
        raise LoadRegionError(
            "no fixed support or prescribed displacement: the body is free to move rigidly"
        )


def support_bcs(
    fe: FEMesh,
    uspace: dolfinx.fem.FunctionSpace,
    supports: Sequence[FixedSupport | SpringSupport],
) -> list[dolfinx.fem.DirichletBC]:
    """Zero-displacement Dirichlet conditions of fixed supports (per constrained component).

    Spring supports (:class:`~biomech.loads.SpringSupport`) are natural conditions and are
    skipped here (see :func:`spring_support_form`).

    Parameters
    ----------
    fe : FEMesh
        The mesh.
    uspace : dolfinx.fem.FunctionSpace
        The (sub)space of the displacement.
    supports : Sequence[FixedSupport]
        The supports; their regions must select boundary facets.
    """
    fdim = fe.mesh.topology.dim - 1
    bcs = []
    for s in supports:
        if isinstance(s, SpringSupport):
            continue
        facets = select_facets(fe, s.region, s.name)
        comps = s.components if s.components is not None else tuple(range(fe.gdim))
        for c in comps:
            if not 0 <= c < fe.gdim:
                raise LoadRegionError(f"{s.name}: component {c} outside 0..{fe.gdim - 1}")
            sub = uspace.sub(c)
            col, _ = sub.collapse()
            dofs = dolfinx.fem.locate_dofs_topological((sub, col), fdim, facets)
            bcs.append(dolfinx.fem.dirichletbc(dolfinx.fem.Function(col), dofs, sub))
    return bcs


def spring_support_form(
    sp: SpringSupport, u: ufl.core.expr.Expr, v: ufl.core.expr.Expr, msh: dolfinx.mesh.Mesh
) -> ufl.core.expr.Expr:
    """Integrand (Pa/m x m x test) of a spring support: k (u.n)(v.n), or k u.v for ``"all"``.

    ``n`` is the outward normal of the reference configuration (a dead spring).
    """
    k = sp.stiffness_kpa_per_mm * KPA_TO_PA / MM_TO_M
    if sp.direction == "all":
        return k * ufl.inner(u, v)
    n = ufl.FacetNormal(msh)
    return k * ufl.inner(u, n) * ufl.inner(v, n)


_Ramped = list[tuple[dolfinx.fem.Function, np.ndarray]]


def _retractor_bcs(
    fe: FEMesh,
    space: dolfinx.fem.FunctionSpace,
    uspace: dolfinx.fem.FunctionSpace,
    v_col: dolfinx.fem.FunctionSpace | None,
    loads: LoadCase,
) -> tuple[list[dolfinx.fem.DirichletBC], _Ramped]:
    """Dirichlet retractors ("uniform", "bump"): conditions and their (function, target)."""
    fdim = fe.mesh.topology.dim - 1
    vc = v_col if v_col is not None else space
    bcs, ramped = [], []
    for d in loads.displacements:
        if d.profile == "spring":
            continue
        facets = select_facets(fe, d.region, d.name)
        g = displacement_bc_values(
            vc, np.asarray(d.displacement_mm, float) * MM_TO_M, d.region, d.profile
        )
        dofs = dirichlet_dofs(uspace, v_col, facets, fdim)
        mixed = v_col is not None
        bcs.append(
            dolfinx.fem.dirichletbc(g, dofs, uspace) if mixed else dolfinx.fem.dirichletbc(g, dofs)
        )
        ramped.append((g, g.x.array.copy()))
    return bcs, ramped


def _natural_loads(
    fe: FEMesh, loads: LoadCase, degree: int
) -> tuple[list[Pressure | Traction | PrescribedDisplacement | SpringSupport], FacetMarkers | None]:
    """Pressures, tractions and spring retractors with the facet measures they act on."""
    springs = [d for d in loads.displacements if d.profile == "spring"]
    beds = [s for s in loads.supports if isinstance(s, SpringSupport)]
    neumann = [*loads.pressures, *loads.tractions, *springs, *beds]
    sets = [select_facets(fe, n.region, n.name) for n in neumann]
    for k, nl in enumerate(neumann):
        if isinstance(nl, PrescribedDisplacement):
            # The bump weight vanishes outside the sphere: integrate over the whole boundary so
            # that facets straddling the rim are not cut off.
            sets[k] = select_facets(fe, AllBoundary(), nl.name)
    sdeg = 2 * degree + 2  # surface loads: the spring bump is quartic in x
    return neumann, (FacetMarkers(fe, sets, sdeg) if sets else None)


def _body_force(fe: FEMesh, loads: LoadCase, rho: dolfinx.fem.Function) -> ufl.core.expr.Expr:
    """Body force rho g (N/m^3), or a zero Constant (which keeps a non-empty right-hand side)."""
    if loads.gravity is None:
        return dolfinx.fem.Constant(fe.mesh, np.zeros(fe.gdim))
    gdir = np.asarray(loads.gravity.direction, float)
    gdir = gdir / np.linalg.norm(gdir) * loads.gravity.acceleration_m_s2
    return rho * ufl.as_vector([float(c) for c in gdir[: fe.gdim]])


def _discretise(
    fe: FEMesh, mats: Mapping[int, Material], loads: LoadCase, degree: int, mixed: bool
) -> _Problem:
    msh, gdim = fe.mesh, fe.gdim
    ue = basix.ufl.element("Lagrange", msh.basix_cell(), degree, shape=(gdim,))
    if mixed:
        pe = basix.ufl.element("Lagrange", msh.basix_cell(), degree - 1)
        space = dolfinx.fem.functionspace(msh, basix.ufl.mixed_element([ue, pe]))
        uspace = space.sub(0)
        v_col, _ = uspace.collapse()
    else:
        space = dolfinx.fem.functionspace(msh, ue)
        uspace, v_col = space, None
    fields = material_fields(fe, mats)
    bcs = support_bcs(fe, uspace, loads.supports)
    dir_bcs, ramped = _retractor_bcs(fe, space, uspace, v_col, loads)
    neumann, markers = _natural_loads(fe, loads, degree)
    return _Problem(
        fe=fe,
        fields=fields,
        space=space,
        uspace=uspace,
        mixed=mixed,
        w=dolfinx.fem.Function(space),
        bcs=bcs + dir_bcs,
        ramped=ramped,
        neumann=neumann,
        markers=markers,
        dx=ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": 2 * degree}),
        f_body=_body_force(fe, loads, fields.rho),
    )


def solve_tissue(
    mesh: FEMesh | pv.UnstructuredGrid,
    materials: Material | Mapping[int | str, Material],
    loads: LoadCase,
    *,
    model: Model = "linear",
    degree: int = 2,
    formulation: Literal["mixed", "displacement"] = "mixed",
    load_steps: int = 1,
    max_bisections: int = 5,
    newton_rtol: float = 1e-9,
    newton_max_it: int = 30,
) -> TissueResult:
    """Solve for the static deformation of tissue under surgical loads.

    Parameters
    ----------
    mesh : FEMesh or pyvista.UnstructuredGrid
        Volume mesh; a pyvista grid must be tetrahedra in mm with cell data ``"region"``.
    materials : Material or Mapping[int | str, Material]
        One material for all regions, or one per region id / name. Moduli in kPa.
    loads : LoadCase
        Supports, prescribed displacements (mm), pressures (kPa), tractions (kPa), gravity.
    model : {"linear", "neohookean"}
        Small-strain linear elasticity or compressible neo-Hookean hyperelasticity.
    degree : int
        Polynomial degree of the displacement (the pressure of the mixed form is degree - 1).
    formulation : {"mixed", "displacement"}
        Neo-Hookean only: Taylor-Hood u-p (locking-free) or pure displacement.
    load_steps : int
        Number of equal load increments for the neo-Hookean model.
    max_bisections : int
        How many times a failing load increment may be halved.
    newton_rtol : float
        Relative residual tolerance of Newton's method.
    newton_max_it : int
        Maximum Newton iterations per increment.

    Returns
    -------
    TissueResult
        The converged displacement field and solve information.

    Raises
    ------
    MaterialError
        Missing or impossible material parameters.
    LoadRegionError
        A load region selects no facet, or nothing restrains rigid-body motion.
    ConvergenceError
        Newton did not converge even after bisecting the load step (last residual given).
    """
    fe = mesh if isinstance(mesh, FEMesh) else from_unstructured_grid(mesh)
    _check_request(model, degree, formulation, loads)
    mats = material_map(fe, materials)
    mixed = model == "neohookean" and formulation == "mixed"
    prob = _discretise(fe, mats, loads, degree, mixed)
    if model == "linear":
        return _solve_linear(prob)
    return _solve_neohookean(
        prob, load_steps, max_bisections, newton_rtol=newton_rtol, newton_max_it=newton_max_it
    )


def _solve_linear(prob: _Problem) -> TissueResult:
    """Linear elasticity: int sigma(u):eps(v) dx = int f.v dx + int t.v ds - int p n.v ds."""
    fe, space, dx, f = prob.fe, prob.space, prob.dx, prob.fields
    uu, vv = ufl.TrialFunction(space), ufl.TestFunction(space)
    a = ufl.inner(sigma(uu, f.mu, f.kappa), epsilon(vv)) * dx
    rhs = ufl.inner(prob.f_body, vv) * dx
    n0 = ufl.FacetNormal(fe.mesh)
    for k, nl in enumerate(prob.neumann):
        ds_k = prob.markers.measure(k)  # type: ignore[union-attr]
        if isinstance(nl, SpringSupport):
            a += spring_support_form(nl, uu, vv, fe.mesh) * ds_k  # Robin: t = -k (u.n) n
        elif isinstance(nl, PrescribedDisplacement):
            kw, dvec = _spring(nl, fe.mesh, fe.gdim)
            a += kw * ufl.inner(uu, vv) * ds_k  # Robin: t = k w (d - u)
            rhs += kw * ufl.inner(dvec, vv) * ds_k
        elif isinstance(nl, Pressure):
            rhs -= nl.pressure_kpa * KPA_TO_PA * ufl.inner(n0, vv) * ds_k  # -p n.v
        else:
            t = ufl.as_vector([float(c) * KPA_TO_PA for c in nl.traction_kpa[: fe.gdim]])
            rhs += ufl.inner(t, vv) * ds_k
    for g, target in prob.ramped:
        g.x.array[:] = target
    problem = dolfinx.fem.petsc.LinearProblem(
        a,
        rhs,
        bcs=prob.bcs,
        u=prob.w,
        petsc_options_prefix="biomech_linear_",
        petsc_options={**_LU_OPTIONS, "ksp_error_if_not_converged": True},
    )
    try:
        problem.solve()
    except PETSc.Error as exc:
        raise ConvergenceError(f"linear elastic solve failed in PETSc: {exc}") from None
    if not np.all(np.isfinite(prob.w.x.array)):
        raise ConvergenceError("linear elastic solve produced non-finite displacements")
    info = SolveInfo("linear", [1.0], [1], 0.0, _ndofs(space))
    return TissueResult(fe, prob.w, f.mu, f.kappa, "linear", info)


def _neohookean_residual(prob: _Problem, lam: dolfinx.fem.Constant) -> ufl.Form:
    """First variation of the Simo-Taylor energy minus the (load-factor scaled) external work."""
    fe, w, f, dx = prob.fe, prob.w, prob.fields, prob.dx
    if prob.mixed:
        u, p = ufl.split(w)
        v, _ = ufl.TestFunctions(prob.space)
    else:
        u, v = w, ufl.TestFunction(prob.space)
    f_def = ufl.Identity(fe.gdim) + ufl.grad(u)
    j = ufl.det(f_def)
    i1 = ufl.tr(f_def.T * f_def) + (3 - fe.gdim)  # plane strain: C33 = 1
    psi_iso = f.mu / 2.0 * (j ** (-2.0 / 3.0) * i1 - 3.0)  # Simo-Taylor isochoric part
    if prob.mixed:
        pi_int = (psi_iso + p * (j - 1.0) - p**2 / (2.0 * f.kappa)) * dx  # perturbed Lagrangian
    else:
        pi_int = (psi_iso + f.kappa / 2.0 * (j - 1.0) ** 2) * dx
    residual = ufl.derivative(pi_int, w, ufl.TestFunction(prob.space))
    residual -= lam * ufl.inner(prob.f_body, v) * dx  # dead body force
    n0 = ufl.FacetNormal(fe.mesh)
    for k, nl in enumerate(prob.neumann):
        ds_k = prob.markers.measure(k)  # type: ignore[union-attr]
        if isinstance(nl, SpringSupport):
            residual += spring_support_form(nl, u, v, fe.mesh) * ds_k
        elif isinstance(nl, PrescribedDisplacement):
            kw, dvec = _spring(nl, fe.mesh, fe.gdim)
            residual += kw * ufl.inner(u - lam * dvec, v) * ds_k  # Robin: t = k w (lam d - u)
        elif isinstance(nl, Pressure):
            # follower pressure, Nanson: n da = J F^-T N dA
            pk = nl.pressure_kpa * KPA_TO_PA
            residual += lam * pk * j * ufl.inner(ufl.inv(f_def).T * n0, v) * ds_k
        else:
            t = ufl.as_vector([float(c) * KPA_TO_PA for c in nl.traction_kpa[: fe.gdim]])
            residual -= lam * ufl.inner(t, v) * ds_k
    return residual


def _solve_neohookean(
    prob: _Problem,
    load_steps: int,
    max_bisections: int,
    *,
    newton_rtol: float,
    newton_max_it: int,
) -> TissueResult:
    """Compressible neo-Hookean by load stepping with Newton (see the module docstring)."""
    lam = dolfinx.fem.Constant(prob.fe.mesh, PETSc.ScalarType(1.0))  # load factor
    residual = _neohookean_residual(prob, lam)
    jac = ufl.derivative(residual, prob.w, ufl.TrialFunction(prob.space))
    opts = {
        "snes_type": "newtonls",
        "snes_linesearch_type": "basic",
        "snes_rtol": newton_rtol,
        "snes_atol": 1e-14,
        "snes_stol": 1e-10,  # relative Newton-step norm: robust when K >> G (round-off floor)
        "snes_max_it": newton_max_it,
        **_LU_OPTIONS,
    }
    problem = dolfinx.fem.petsc.NonlinearProblem(
        residual,
        prob.w,
        bcs=prob.bcs,
        J=jac,
        petsc_options_prefix="biomech_nh_",
        petsc_options=opts,
    )
    info = SolveInfo("neohookean", num_dofs=_ndofs(prob.space))
    _load_stepping(problem, prob.w, lam, prob.ramped, load_steps, max_bisections, info)
    if prob.mixed:
        u_out, p_out = prob.w.sub(0).collapse(), prob.w.sub(1).collapse()
    else:
        u_out, p_out = prob.w, None
    f = prob.fields
    return TissueResult(prob.fe, u_out, f.mu, f.kappa, "neohookean", info, p_out)


def _spring(
    d: PrescribedDisplacement, msh: dolfinx.mesh.Mesh, gdim: int
) -> tuple[ufl.core.expr.Expr, ufl.core.expr.Expr]:
    """Spring retractor: stiffness x bump weight (Pa/m) and the target displacement (m)."""
    reg = d.region
    assert isinstance(reg, SphereRegion)
    x = ufl.SpatialCoordinate(msh)
    c = ufl.as_vector([float(v) * MM_TO_M for v in reg.centre_mm[:gdim]])
    w = bump_weight_ufl(c, reg.radius_mm * MM_TO_M, x)
    k = d.stiffness_kpa_per_mm * KPA_TO_PA / MM_TO_M
    dvec = ufl.as_vector([float(v) * MM_TO_M for v in d.displacement_mm[:gdim]])
    return k * w, dvec


def _ndofs(space: dolfinx.fem.FunctionSpace) -> int:
    imap = space.dofmap.index_map
    return int(imap.size_global * space.dofmap.index_map_bs)


def _load_stepping(
    problem: dolfinx.fem.petsc.NonlinearProblem,
    w: dolfinx.fem.Function,
    lam: dolfinx.fem.Constant,
    ramped: Sequence[tuple[dolfinx.fem.Function, np.ndarray]],
    load_steps: int,
    max_bisections: int,
    info: SolveInfo,
) -> None:
    """Increase the load factor from 0 to 1 with Newton at each step, bisecting on failure."""
    snes = problem.solver
    t, dt = 0.0, 1.0 / max(1, int(load_steps))
    min_dt = dt / 2**max_bisections
    last_res, last_reason = float("nan"), 0
    while t < 1.0 - 1e-12:
        t_new = min(1.0, t + dt)
        saved = w.x.array.copy()
        lam.value = t_new
        for g, target in ramped:
            g.x.array[:] = t_new * target
        ok = False
        try:
            problem.solve()
            last_reason = snes.getConvergedReason()
            last_res = float(snes.getFunctionNorm())
            ok = last_reason > 0 and np.all(np.isfinite(w.x.array))
        except PETSc.Error as exc:
            last_reason, last_res = -999, float("nan")
            last_msg = str(exc)  # noqa: F841
        if ok:
            t = t_new
            info.load_steps.append(t)
            info.newton_iterations.append(int(snes.getIterationNumber()))
            info.final_residual = last_res
            continue
        w.x.array[:] = saved
        w.x.scatter_forward()
        dt /= 2.0
        if dt < min_dt * (1 - 1e-12):
            raise ConvergenceError(
                f"Newton did not converge at load factor {t_new:.4g} after {max_bisections} "
                f"bisections (SNES reason {last_reason}, last residual norm {last_res:.3e}); "
                "no result returned: reduce the load or refine the mesh"
            )
