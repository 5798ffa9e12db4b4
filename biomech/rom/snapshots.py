"""Finite-element snapshots of the linear model (unit responses per patch centre) and their POD."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import basix.ufl
import dolfinx
import dolfinx.fem.petsc
import numpy as np
import ufl
from petsc4py import PETSc

from biomech.boundary import FacetMarkers, select_facets
from biomech.elasticity import KPA_TO_PA, epsilon, material_fields, sigma
from biomech.loads import SphereRegion, SpringSupport, bump_weight_ufl
from biomech.materials import Material
from biomech.mesh import MM_TO_M, FEMesh
from biomech.results import evaluate_function, locate_points
from biomech.rom.loads import GRAVITY_M_S2
from biomech.rom.training import TrainingSet
from biomech.tissue import spring_support_form, support_bcs

__all__ = ["LinearSnapshots", "evaluation_points", "linear_snapshots", "pod"]


def evaluation_points(
    surface_points_mm: np.ndarray, target_points_mm: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """(P, 3) evaluation points of a reduced model (surface vertices, then targets; mm).

    Parameters
    ----------
    surface_points_mm : numpy.ndarray
        (V, 3) surface vertices, mm.
    target_points_mm : numpy.ndarray or None
        (T, 3) targets, mm (none when ``None``).

    Returns
    -------
    tuple
        The stacked points (V + T, 3) in mm and V.
    """
    surf = np.asarray(surface_points_mm, float).reshape(-1, 3)
    targ = np.zeros((0, 3)) if target_points_mm is None else np.asarray(target_points_mm, float)
    return np.vstack([surf, targ.reshape(-1, 3)]), int(surf.shape[0])


def pod(snapshots: np.ndarray, tol: float, max_modes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """POD of (n_snap, 3P) snapshots: modes (k, 3P) and coefficients (n_snap, k).

    Parameters
    ----------
    snapshots : numpy.ndarray
        (n_snap, 3P) displacements, mm (or mm per unit load).
    tol : float
        Discarded fraction of snapshot energy (sum of squared singular values).
    max_modes : int or None
        Cap on the number of modes k.
    """
    u, s, vt = np.linalg.svd(snapshots, full_matrices=False)
    energy = np.cumsum(s**2) / max(np.sum(s**2), 1e-300)
    k = int(np.searchsorted(energy, 1.0 - tol) + 1)
    if max_modes is not None:
        k = min(k, max_modes)
    k = max(1, min(k, len(s)))
    modes = vt[:k]
    return modes, snapshots @ modes.T


def _spring_form(
    msh: dolfinx.mesh.Mesh, centre: object, radius_mm: float, stiffness_kpa_per_mm: float
) -> ufl.core.expr.Expr:
    """K w(x; c) in Pa/m: spring stiffness times the bump weight of a patch (centre in m)."""
    x = ufl.SpatialCoordinate(msh)
    k = stiffness_kpa_per_mm * KPA_TO_PA / MM_TO_M
    return k * bump_weight_ufl(centre, radius_mm * MM_TO_M, x)


class LinearSnapshots:
    """Unit responses of the linear model for one patch centre (one factorisation, 7 solves).

    The retractor is the spring patch of :class:`~biomech.loads.PrescribedDisplacement`
    (``profile="spring"``): the bilinear form K + int k w(x; c) u.v ds depends on the centre c
    only through a UFL constant, so moving the patch needs no new forms.
    """

    def __init__(
        self, fe: FEMesh, mats: Mapping[int, Material], training: TrainingSet, degree: int
    ) -> None:
        self.fe = fe
        msh, gdim = fe.mesh, fe.gdim
        self.v = dolfinx.fem.functionspace(
            msh, basix.ufl.element("Lagrange", msh.basix_cell(), degree, shape=(gdim,))
        )
        f = material_fields(fe, mats)
        u, w = ufl.TrialFunction(self.v), ufl.TestFunction(self.v)
        qdeg = 2 * degree + 2
        dx = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": 2 * degree})
        ds = ufl.Measure("ds", domain=msh, metadata={"quadrature_degree": qdeg})
        self.centre = dolfinx.fem.Constant(msh, np.zeros(gdim))
        kw = _spring_form(
            msh, self.centre, training.patch_radius_mm, training.retractor_stiffness_kpa_per_mm
        )
        self.dunit = dolfinx.fem.Constant(msh, np.zeros(gdim))
        # K + Robin spring of the retractor:  int sigma(u):eps(w) dx + int k w_c u.w ds
        a_form = ufl.inner(sigma(u, f.mu, f.kappa), epsilon(w)) * dx + kw * ufl.inner(u, w) * ds
        for spring in training.bed.springs() if training.bed is not None else []:
            # Elastic bed: the same zero-displacement springs as ElasticBed.springs() in the
            # full solve, int k sum_i w_i u.w ds.
            reg = spring.region
            assert isinstance(reg, SphereRegion)
            ci = ufl.as_vector([float(v) * MM_TO_M for v in reg.centre_mm[:gdim]])
            ki_wi = _spring_form(msh, ci, reg.radius_mm, spring.stiffness_kpa_per_mm)
            a_form += ki_wi * ufl.inner(u, w) * ds
        # Spring supports (sliding contact, ligaments) and the insufflation surface share one
        # facet tagging (one subdomain_data per form): set 0 is the pressure surface.
        beds = [sp for sp in training.supports if isinstance(sp, SpringSupport)]
        sets = [
            select_facets(fe, training.pressure_region, "insufflation pressure")
            if training.pressure_region is not None
            else np.zeros(0, np.int32),
            *(select_facets(fe, sp.region, sp.name) for sp in beds),
        ]
        mk = FacetMarkers(fe, sets, qdeg) if beds or training.pressure_region else None
        for j, sp in enumerate(beds):
            a_form += spring_support_form(sp, u, w, msh) * mk.measure(j + 1)  # k (u.n)(w.n)
        self.a = dolfinx.fem.form(a_form)
        self.gvec = dolfinx.fem.Constant(msh, np.zeros(gdim))
        self.p = dolfinx.fem.Constant(msh, PETSc.ScalarType(0.0))
        rhs = f.rho * GRAVITY_M_S2 * ufl.inner(self.gvec, w) * dx  # rho g . v
        rhs += kw * ufl.inner(self.dunit, w) * ds  # k w_c d . v
        if training.pressure_region is not None:
            assert mk is not None
            rhs -= self.p * KPA_TO_PA * ufl.inner(ufl.FacetNormal(msh), w) * mk.measure(0)
        self.L = dolfinx.fem.form(rhs)
        self.bcs = support_bcs(fe, self.v, training.supports)
        self.radius_mm = training.patch_radius_mm

    def solve(self, centre_mm: np.ndarray) -> list[dolfinx.fem.Function]:
        """7 unit responses (d = e_x, e_y, e_z mm; g = e_x, e_y, e_z; p = 1 kPa), in metres."""
        gdim = self.fe.gdim
        region = SphereRegion(tuple(float(c) for c in centre_mm), self.radius_mm)
        select_facets(self.fe, region, "retractor patch")  # raises if it misses the surface
        self.centre.value = np.asarray(centre_mm, float)[:gdim] * MM_TO_M
        a_mat = dolfinx.fem.petsc.assemble_matrix(self.a, bcs=self.bcs)
        a_mat.assemble()
        ksp = PETSc.KSP().create(self.fe.comm)
        ksp.setOperators(a_mat)
        ksp.setType("preonly")
        ksp.getPC().setType("lu")
        ksp.getPC().setFactorSolverType("mumps")
        out = []
        for case in range(7):
            dv, gv = np.zeros(gdim), np.zeros(gdim)
            if case < gdim:
                dv[case] = MM_TO_M
            if 3 <= case < 3 + gdim:
                gv[case - 3] = 1.0
            self.dunit.value = dv
            self.gvec.value = gv
            self.p.value = 1.0 if case == 6 else 0.0
            b = dolfinx.fem.petsc.assemble_vector(self.L)
            dolfinx.fem.petsc.apply_lifting(b, [self.a], bcs=[self.bcs])
            b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            dolfinx.fem.petsc.set_bc(b, self.bcs)
            uh = dolfinx.fem.Function(self.v)
            ksp.solve(b, uh.x.petsc_vec)
            uh.x.scatter_forward()
            b.destroy()
            out.append(uh)
        ksp.destroy()
        a_mat.destroy()
        return out


def linear_snapshots(
    fe: FEMesh,
    mats: Mapping[int, Material],
    training: TrainingSet,
    degree: int,
    pts: np.ndarray,
    progress: Callable[[int, int], None] | None,
) -> np.ndarray:
    """(S * 7, 3P) unit responses at the points ``pts`` (mm per unit load).

    Parameters
    ----------
    fe : FEMesh
        Organ mesh.
    mats : Mapping[int, Material]
        Region id -> material (kPa).
    training : TrainingSet
        Supports, the S patch centres (mm) and the rest of the training set.
    degree : int
        Displacement polynomial degree.
    pts : numpy.ndarray
        (P, 3) evaluation points, mm.
    progress : callable or None
        ``progress(done, total)`` after each patch centre.
    """
    builder = LinearSnapshots(fe, mats, training, degree)
    located = locate_points(fe.mesh, pts * MM_TO_M)
    centres = np.asarray(training.patch_centres_mm, float)
    snaps = []
    for i, c in enumerate(centres):
        for uh in builder.solve(c):
            snaps.append(evaluate_function(uh, pts * MM_TO_M, located).ravel() / MM_TO_M)
        if progress is not None:
            progress(i + 1, len(centres))
    return np.asarray(snaps)
