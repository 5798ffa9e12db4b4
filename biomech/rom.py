"""Real-time reduced deformation model built from finite-element snapshots.

Load parameters: retractor patch centre c (on the organ surface, mm) and displacement d (mm),
gravity vector g (in units of 1 g; zero for none) and insufflation pressure p (kPa).

Gravity is the change from the CT pose. The organ in the (supine) CT is already in equilibrium
under its own weight, so the geometry of the model is the loaded shape and the only gravity load
that deforms it is the *change* of the gravity vector relative to the body when the patient is
repositioned: g = g_new - g_supine, with g_supine = (0, 1, 0) in LPS (supine: gravity points
posterior, +y). :func:`gravity_change_lps` gives it for a head-up (reverse Trendelenburg) tilt
and a lateral tilt; for tilts up to 30 degrees |g| <= 2 sin(15 deg) ~ 0.52 g per tilt axis.
A free organ hung from its vessels under a full 1 g (the old convention) is not a physical
load case: the linear model then predicts peaks of hundreds of millimetres.

Support. Besides fixed supports (hepatic veins), an :class:`~biomech.loads.ElasticBed`
(Robin springs on the posterior / diaphragmatic surface, a few hundred Pa/mm) keeps the
displacements physiological; it enters the stiffness of the snapshots and of the full solve
(:func:`load_case_for`) identically.

Linear model. For a fixed patch centre the linear-elastic response is exactly linear in
s = (d_x, d_y, d_z, g_x, g_y, g_z, p), so 7 unit solves (one factorisation) per sampled centre
give it exactly. The snapshots are compressed by POD (SVD) into k modes Phi evaluated on the
surface vertices and targets; the modal coefficients of each unit response, A_j(c), are
interpolated over the patch position with a cubic polyharmonic radial basis function with a
linear polynomial tail (centres projected to the tangent plane of the sampled patch sites)::

    u(theta) = sum_m a_m Phi_m,   a = sum_j s_j A_j(c)

Hyperelastic model. Snapshots are full neo-Hookean solves at sampled parameter vectors; the
coefficients are interpolated over the normalised 10-dimensional parameter vector
(:meth:`RomParameters.vector`: centre, displacement, gravity, pressure) with the same RBF.
Its held-out error is reported, not guaranteed.

The basis is exposed as plain arrays for registration: :attr:`ReducedModel.modes`
(modes x points x 3, mm per unit amplitude) and :attr:`ReducedModel.mode_bounds` (min, max of
each amplitude over the snapshots).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import basix.ufl
import dolfinx
import dolfinx.fem.petsc
import dolfinx_solver  # noqa: F401
import numpy as np
import ufl
from petsc4py import PETSc

from biomech._atomic import atomic_write
from biomech.boundary import FacetMarkers, select_facets
from biomech.elasticity import KPA_TO_PA, epsilon, material_fields, material_map, sigma
from biomech.errors import BiomechError
from biomech.loads import (
    ElasticBed,
    FixedSupport,
    Gravity,
    LoadCase,
    PrescribedDisplacement,
    Pressure,
    Selector,
    SphereRegion,
    bump_weight_ufl,
)
from biomech.materials import Material
from biomech.mesh import MM_TO_M, FEMesh
from biomech.results import evaluate_function, locate_points
from biomech.tissue import solve_tissue, support_bcs

GRAVITY_M_S2 = 9.81


class ReducedModelError(BiomechError):
    """A reduced model cannot be built, loaded or evaluated with the given input."""


@dataclass(frozen=True)
class RomParameters:
    """One load case of the reduced model (mm, kPa)."""

    patch_centre_mm: tuple[float, float, float]
    displacement_mm: tuple[float, float, float]
    gravity_direction: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pressure_kpa: float = 0.0

    def vector(self) -> np.ndarray:
        """(10,) float: centre (3), displacement (3), gravity direction (3), pressure."""
        return np.array(
            [
                *self.patch_centre_mm,
                *self.displacement_mm,
                *self.gravity_direction,
                self.pressure_kpa,
            ],
            dtype=float,
        )


SUPINE_GRAVITY_LPS = (0.0, 1.0, 0.0)
"""Gravity direction relative to the body in the supine CT pose (LPS: posterior, +y)."""


def gravity_change_lps(head_up_deg: float = 0.0, left_down_deg: float = 0.0) -> np.ndarray:
    """Change of the gravity vector (in g, LPS body frame) when a supine patient is tilted.

    The patient is tilted head up by ``head_up_deg`` (reverse Trendelenburg; negative is
    Trendelenburg, head down) and rolled left side down by ``left_down_deg`` (negative: right
    side down). Gravity in the body frame is then
    g_new = (cos a sin b, cos a cos b, -sin a) (a = head up, b = left down; L = +x, P = +y,
    S = +z), and the load of the reduced model is g_new - g_supine with g_supine = (0, 1, 0):
    the organ in the CT is already in equilibrium under g_supine.

    Parameters
    ----------
    head_up_deg : float
        Head-up (reverse Trendelenburg) tilt, degrees.
    left_down_deg : float
        Left-side-down roll, degrees.

    Returns
    -------
    numpy.ndarray
        (3,) gravity change in units of g (zero for the CT pose).
    """
    a, b = np.radians(float(head_up_deg)), np.radians(float(left_down_deg))
    g_new = np.array([np.cos(a) * np.sin(b), np.cos(a) * np.cos(b), -np.sin(a)])
    return g_new - np.asarray(SUPINE_GRAVITY_LPS)


def load_case_for(
    params: RomParameters,
    supports: Sequence[FixedSupport],
    patch_radius_mm: float,
    pressure_region: Selector | None,
    retractor_stiffness_kpa_per_mm: float = 10.0,
    bed: ElasticBed | None = None,
) -> LoadCase:
    """The full-order :class:`~biomech.loads.LoadCase` that a parameter vector stands for.

    ``params.gravity_direction`` is the gravity vector in g (its norm is the magnitude);
    ``bed`` adds the elastic bed as zero-displacement spring patches.

    Parameters
    ----------
    params : RomParameters
        Patch centre and displacement (mm), gravity (g), pressure (kPa).
    supports : Sequence[FixedSupport]
        Fixed regions.
    patch_radius_mm : float
        Retractor patch radius, mm.
    pressure_region : Selector or None
        Where insufflation pressure acts.
    retractor_stiffness_kpa_per_mm : float
        Spring retractor stiffness, kPa/mm.
    bed : ElasticBed, optional
        Elastic bed under part of the surface.
    """
    g = np.asarray(params.gravity_direction, float)
    gnorm = float(np.linalg.norm(g))
    return LoadCase(
        supports=list(supports),
        displacements=[
            PrescribedDisplacement(
                SphereRegion(tuple(params.patch_centre_mm), patch_radius_mm),
                tuple(params.displacement_mm),
                profile="spring",
                stiffness_kpa_per_mm=retractor_stiffness_kpa_per_mm,
            ),
            *(bed.springs() if bed is not None else []),
        ],
        pressures=(
            [Pressure(pressure_region, params.pressure_kpa, name="insufflation")]
            if pressure_region is not None and params.pressure_kpa != 0.0
            else []
        ),
        gravity=Gravity(tuple(g / gnorm), GRAVITY_M_S2 * gnorm) if gnorm > 0 else None,
    )


def fit_cubic_rbf(
    centres: np.ndarray, values: np.ndarray, smoothing: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Cubic polyharmonic RBF with a linear tail, f(x) = sum_i w_i |x - x_i|^3 + c_0 + c . x.

    Solves the usual saddle-point system [[K + s I, P], [P^T, 0]] [w; c] = [f; 0]
    (K_ij = |x_i - x_j|^3, P = [1, x]). The interpolant is the one of
    ``scipy.interpolate.RBFInterpolator(centres, values, kernel="cubic", degree=1)``
    (``tests/test_biomech_rom.py`` checks they agree to 1e-9 relative); it is kept here because
    the reduced model stores ``w`` and ``c`` as plain arrays in its ``.npz`` and evaluates them
    in :meth:`ReducedModel.amplitudes` without scipy, and RBFInterpolator exposes no
    coefficients (its polynomial is in shifted and scaled coordinates).

    Parameters
    ----------
    centres : numpy.ndarray
        (n, d) interpolation sites (mm or normalised parameters).
    values : numpy.ndarray
        (n, ...) values at the sites (flattened to (n, m)).
    smoothing : float
        Added to the kernel diagonal (0: interpolate exactly).

    Returns
    -------
    tuple of numpy.ndarray
        Weights (n, m) and polynomial coefficients (d + 1, m): constant first.
    """
    centres = np.asarray(centres, float)
    n, d = centres.shape
    vals = np.asarray(values, float).reshape(n, -1)
    r = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    k = r**3 + smoothing * np.eye(n)
    p = np.hstack([np.ones((n, 1)), centres])
    m = np.block([[k, p], [p.T, np.zeros((d + 1, d + 1))]])
    rhs = np.vstack([vals, np.zeros((d + 1, vals.shape[1]))])
    sol = np.linalg.lstsq(m, rhs, rcond=None)[0]
    return sol[:n], sol[n:]


def evaluate_cubic_rbf(
    centres: np.ndarray, weights: np.ndarray, poly: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Value at one point ``x`` (d,) of the RBF fitted by :func:`fit_cubic_rbf`.

    Parameters
    ----------
    centres : numpy.ndarray
        (n, d) sites.
    weights, poly : numpy.ndarray
        (n, m) weights and (d + 1, m) polynomial coefficients.
    x : numpy.ndarray
        (d,) evaluation point.
    """
    r = np.sqrt(((centres - x) ** 2).sum(axis=1))
    return (r**3) @ weights + poly[0] + x @ poly[1:]


@dataclass
class ReducedModel:
    """A reduced deformation model: POD modes on surface points and targets + coefficient maps.

    Attributes
    ----------
    kind : str
        ``"linear"`` or ``"neohookean"``.
    points_mm : numpy.ndarray
        (P, 3) evaluation points in mm: the surface vertices first, then the targets.
    n_surface : int
        Number of surface vertices among ``points_mm``.
    modes : numpy.ndarray
        (k, P, 3) float32 basis, mm per unit amplitude.
    mode_bounds : numpy.ndarray
        (k, 2) min and max amplitude seen over the snapshots.
    """

    kind: str
    points_mm: np.ndarray
    n_surface: int
    modes: np.ndarray
    mode_bounds: np.ndarray
    rbf_centres: np.ndarray
    rbf_weights: np.ndarray
    rbf_poly: np.ndarray
    param_shift: np.ndarray
    param_scale: np.ndarray
    plane_origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    plane_axes: np.ndarray = field(default_factory=lambda: np.eye(3)[:2])
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k, p = self.modes.shape[0], self.modes.shape[1]
        self._flat = np.ascontiguousarray(self.modes.reshape(k, p * 3), dtype=np.float32)

    @property
    def n_modes(self) -> int:
        """Number of modes k."""
        return int(self.modes.shape[0])

    def truncated(self, n_modes: int) -> ReducedModel:
        """A copy keeping the first ``n_modes`` POD modes (faster updates, larger error)."""
        k = max(1, min(int(n_modes), self.n_modes))
        if self.kind == "linear":
            s = self.rbf_weights.shape[0]
            w = self.rbf_weights.reshape(s, 7, self.n_modes)[:, :, :k].reshape(s, 7 * k)
            p = self.rbf_poly.reshape(-1, 7, self.n_modes)[:, :, :k].reshape(-1, 7 * k)
        else:
            w, p = self.rbf_weights[:, :k], self.rbf_poly[:, :k]
        return ReducedModel(
            kind=self.kind,
            points_mm=self.points_mm,
            n_surface=self.n_surface,
            modes=self.modes[:k],
            mode_bounds=self.mode_bounds[:k],
            rbf_centres=self.rbf_centres,
            rbf_weights=w,
            rbf_poly=p,
            param_shift=self.param_shift,
            param_scale=self.param_scale,
            plane_origin=self.plane_origin,
            plane_axes=self.plane_axes,
            meta={**self.meta, "truncated_to": k},
        )

    def surface_modes(self) -> np.ndarray:
        """(k, n_surface, 3) basis on the surface vertices (mm per unit amplitude)."""
        return self.modes[:, : self.n_surface]

    def _rbf_input(self, params: RomParameters) -> np.ndarray:
        if self.kind == "linear":
            c = np.asarray(params.patch_centre_mm, float) - self.plane_origin
            return self.plane_axes @ c
        return (params.vector() - self.param_shift) / self.param_scale

    def amplitudes(self, params: RomParameters) -> np.ndarray:
        """(k,) modal amplitudes for a load case."""
        x = self._rbf_input(params)
        coef = evaluate_cubic_rbf(self.rbf_centres, self.rbf_weights, self.rbf_poly, x)
        if self.kind == "linear":
            s = np.array(
                [*params.displacement_mm, *params.gravity_direction, params.pressure_kpa], float
            )
            return s @ coef.reshape(7, self.n_modes)
        return coef

    def displacement_from_amplitudes(self, amplitudes: np.ndarray) -> np.ndarray:
        """(P, 3) displacement in mm at all points for given amplitudes."""
        return (np.asarray(amplitudes, np.float32) @ self._flat).reshape(-1, 3)

    def evaluate(self, params: RomParameters) -> np.ndarray:
        """(n_surface, 3) surface displacement in mm."""
        return self.displacement_from_amplitudes(self.amplitudes(params))[: self.n_surface]

    def evaluate_targets(self, params: RomParameters) -> np.ndarray:
        """(n_targets, 3) target displacement in mm."""
        return self.displacement_from_amplitudes(self.amplitudes(params))[self.n_surface :]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save as ``.npz`` (atomic: temporary file, fsync, rename); plain arrays only."""
        import json

        arrays = dict(
            kind=np.array(self.kind),
            points_mm=self.points_mm,
            n_surface=np.array(self.n_surface),
            modes=self.modes,
            mode_bounds=self.mode_bounds,
            rbf_centres=self.rbf_centres,
            rbf_weights=self.rbf_weights,
            rbf_poly=self.rbf_poly,
            param_shift=self.param_shift,
            param_scale=self.param_scale,
            plane_origin=self.plane_origin,
            plane_axes=self.plane_axes,
            meta=np.array(json.dumps(self.meta)),
        )

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" to the name
                np.savez(f, **arrays)

        return atomic_write(path, write)


def load_reduced_model(path: str | os.PathLike[str]) -> ReducedModel:
    """Load a model saved by :meth:`ReducedModel.save`.

    Raises
    ------
    ReducedModelError
        If the file is missing or not a reduced model.
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise ReducedModelError(f"reduced model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return ReducedModel(
                kind=str(z["kind"]),
                points_mm=z["points_mm"],
                n_surface=int(z["n_surface"]),
                modes=z["modes"],
                mode_bounds=z["mode_bounds"],
                rbf_centres=z["rbf_centres"],
                rbf_weights=z["rbf_weights"],
                rbf_poly=z["rbf_poly"],
                param_shift=z["param_shift"],
                param_scale=z["param_scale"],
                plane_origin=z["plane_origin"],
                plane_axes=z["plane_axes"],
                meta=json.loads(str(z["meta"])),
            )
    except (KeyError, ValueError, OSError) as exc:
        raise ReducedModelError(f"{path} is not a reduced model file: {exc}") from None


def _pod(snapshots: np.ndarray, tol: float, max_modes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """POD of (n_snap, 3P) snapshots: modes (k, 3P) and coefficients (n_snap, k)."""
    u, s, vt = np.linalg.svd(snapshots, full_matrices=False)
    energy = np.cumsum(s**2) / max(np.sum(s**2), 1e-300)
    k = int(np.searchsorted(energy, 1.0 - tol) + 1)
    if max_modes is not None:
        k = min(k, max_modes)
    k = max(1, min(k, len(s)))
    modes = vt[:k]
    return modes, snapshots @ modes.T


def _tangent_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    origin = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - origin)
    return origin, vt[:2]


@dataclass(frozen=True)
class TrainingSet:
    """The load cases the linear reduced model is trained on, and where it is evaluated (mm).

    Attributes
    ----------
    supports : Sequence[FixedSupport]
        Fixed regions (ligaments, hepatic veins).
    patch_centres_mm : numpy.ndarray
        (S, 3) sampled retractor patch centres on the surface (S >= 4), mm.
    patch_radius_mm : float
        Retractor patch radius (bump weight), mm.
    surface_points_mm : numpy.ndarray
        (V, 3) surface vertices, mm.
    target_points_mm : numpy.ndarray, optional
        (T, 3) targets (tumour, vessel points), mm.
    pressure_region : Selector, optional
        Surface where insufflation pressure acts.
    retractor_stiffness_kpa_per_mm : float
        Stiffness of the spring retractor, kPa/mm.
    bed : ElasticBed, optional
        Elastic bed (Robin springs) under part of the surface; pass the same bed to
        :func:`load_case_for` for the full solve.
    """

    supports: Sequence[FixedSupport]
    patch_centres_mm: np.ndarray
    patch_radius_mm: float
    surface_points_mm: np.ndarray
    target_points_mm: np.ndarray | None = None
    pressure_region: Selector | None = None
    retractor_stiffness_kpa_per_mm: float = 10.0
    bed: ElasticBed | None = None


@dataclass(frozen=True)
class BasisConfig:
    """How the snapshots become a basis and coefficient maps.

    Attributes
    ----------
    degree : int
        Displacement polynomial degree of the snapshots.
    pod_tolerance : float
        Discarded fraction of snapshot energy (sum of squared singular values).
    max_modes : int, optional
        Cap on the number of modes.
    load_scales : sequence of 7 floats, optional
        Typical magnitudes of (d_x, d_y, d_z [mm], g_x, g_y, g_z [g], p [kPa]). The unit
        responses are weighted by them before the POD, so that the modes are spent in
        proportion to the displacement each load really causes (e.g. 10 mm pushes and a
        0.5 g gravity change) rather than per unit of each load. Default: unweighted.
    centre_space : {"plane", "3d"}
        Where the coefficients are interpolated over the patch position: ``"plane"``
        projects the centres to their mean tangent plane (a gently curved site); ``"3d"`` uses
        the centres' 3D coordinates, which does not fold where the site wraps around a curved
        edge (the inferior tip of the liver).
    """

    degree: int = 1
    pod_tolerance: float = 1e-7
    max_modes: int | None = None
    load_scales: Sequence[float] | None = None
    centre_space: str = "plane"


def _spring_form(
    msh: dolfinx.mesh.Mesh, centre: object, radius_mm: float, stiffness_kpa_per_mm: float
) -> ufl.core.expr.Expr:
    """K w(x; c) in Pa/m: spring stiffness times the bump weight of a patch (centre in m)."""
    x = ufl.SpatialCoordinate(msh)
    k = stiffness_kpa_per_mm * KPA_TO_PA / MM_TO_M
    return k * bump_weight_ufl(centre, radius_mm * MM_TO_M, x)


class _LinearSnapshots:
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
        self.a = dolfinx.fem.form(a_form)
        self.gvec = dolfinx.fem.Constant(msh, np.zeros(gdim))
        self.p = dolfinx.fem.Constant(msh, PETSc.ScalarType(0.0))
        rhs = f.rho * GRAVITY_M_S2 * ufl.inner(self.gvec, w) * dx  # rho g . v
        rhs += kw * ufl.inner(self.dunit, w) * ds  # k w_c d . v
        if training.pressure_region is not None:
            facets = select_facets(fe, training.pressure_region, "insufflation pressure")
            mk = FacetMarkers(fe, [facets], qdeg)
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


def _check_linear_inputs(training: TrainingSet, basis: BasisConfig) -> np.ndarray:
    """The load scales (7,), after checking the centres, the centre space and the scales."""
    if basis.centre_space not in ("plane", "3d"):
        raise ReducedModelError(f"centre_space must be 'plane' or '3d', got {basis.centre_space!r}")
    centres = np.asarray(training.patch_centres_mm, float)
    if centres.ndim != 2 or centres.shape[1] != 3 or centres.shape[0] < 4:
        raise ReducedModelError(f"need (S >= 4, 3) patch centres in mm, got {centres.shape}")
    scales = np.ones(7) if basis.load_scales is None else np.asarray(basis.load_scales, float)
    if scales.shape != (7,) or not np.all(scales > 0):
        raise ReducedModelError(
            f"load_scales must be 7 positive numbers, got {basis.load_scales!r}"
        )
    return scales


def _linear_snapshots(
    fe: FEMesh,
    mats: Mapping[int, Material],
    training: TrainingSet,
    degree: int,
    pts: np.ndarray,
    progress: Callable[[int, int], None] | None,
) -> np.ndarray:
    """(S * 7, 3P) unit responses at the points ``pts`` (mm per unit load)."""
    builder = _LinearSnapshots(fe, mats, training, degree)
    located = locate_points(fe.mesh, pts * MM_TO_M)
    centres = np.asarray(training.patch_centres_mm, float)
    snaps = []
    for i, c in enumerate(centres):
        for uh in builder.solve(c):
            snaps.append(evaluate_function(uh, pts * MM_TO_M, located).ravel() / MM_TO_M)
        if progress is not None:
            progress(i + 1, len(centres))
    return np.asarray(snaps)


def _linear_meta(
    training: TrainingSet, basis: BasisConfig, n_snap: int, scales: np.ndarray
) -> dict[str, object]:
    bed = training.bed
    return {
        "patch_radius_mm": training.patch_radius_mm,
        "retractor_stiffness_kpa_per_mm": training.retractor_stiffness_kpa_per_mm,
        "n_snapshots": n_snap,
        "degree": basis.degree,
        "load_scales": scales.tolist(),
        "gravity": "change from the supine CT pose, g_new - (0, 1, 0) in g (LPS)",
        "elastic_bed": (
            None
            if bed is None
            else {
                "n_sites": int(np.asarray(bed.sites_mm).shape[0]),
                "radius_mm": float(bed.radius_mm),
                "stiffness_kpa_per_mm": float(bed.stiffness_kpa_per_mm),
            }
        ),
        "mode_bounds_for": "|d| <= 10 mm per axis, 1 g, p <= 2 kPa",
    }


def build_linear_rom(
    fe: FEMesh,
    materials: Material | Mapping[int | str, Material],
    training: TrainingSet,
    basis: BasisConfig = BasisConfig(),
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ReducedModel:
    """Build the linear reduced model from unit FE responses at sampled patch centres.

    Parameters
    ----------
    fe : FEMesh
        Organ mesh.
    materials : Material or Mapping
        Material(s) per region (kPa).
    training : TrainingSet
        Supports, sampled patch centres (mm), patch radius (mm), evaluation points (mm),
        insufflation surface, retractor stiffness (kPa/mm) and elastic bed.
    basis : BasisConfig
        Snapshot degree, POD tolerance and mode cap, load scales and centre space.
    progress : callable, optional
        ``progress(done, total)`` after each patch centre.

    Returns
    -------
    ReducedModel
    """
    scales = _check_linear_inputs(training, basis)
    centres = np.asarray(training.patch_centres_mm, float)
    surf = np.asarray(training.surface_points_mm, float)
    targ = (
        np.zeros((0, 3))
        if training.target_points_mm is None
        else np.asarray(training.target_points_mm, float)
    )
    pts = np.vstack([surf, targ])
    mats = material_map(fe, materials)
    snap = _linear_snapshots(fe, mats, training, basis.degree, pts, progress)
    weight = np.tile(scales, len(centres))[:, None]
    modes, coef = _pod(snap * weight, basis.pod_tolerance, basis.max_modes)
    coef = coef / weight  # coefficients per unit load again
    k = modes.shape[0]
    origin, axes = _tangent_plane(centres)
    if basis.centre_space == "3d":
        axes = np.eye(3)
    x2 = (centres - origin) @ axes.T
    weights, poly = fit_cubic_rbf(x2, coef.reshape(len(centres), 7 * k))
    # Amplitude bounds over the unit responses scaled to typical loads (10 mm, 1 g, 2 kPa).
    typical = np.array([10, 10, 10, 1, 1, 1, 2.0])
    scaled = coef.reshape(len(centres), 7, k) * typical[None, :, None]
    bound = np.abs(scaled).sum(axis=1).max(axis=0)
    return ReducedModel(
        kind="linear",
        points_mm=pts,
        n_surface=surf.shape[0],
        modes=modes.reshape(k, -1, 3).astype(np.float32),
        mode_bounds=np.stack([-bound, bound], axis=1),
        rbf_centres=x2,
        rbf_weights=weights,
        rbf_poly=poly,
        param_shift=np.zeros(1),
        param_scale=np.ones(1),
        plane_origin=origin,
        plane_axes=axes,
        meta=_linear_meta(training, basis, int(snap.shape[0]), scales),
    )


def build_hyperelastic_rom(
    fe: FEMesh,
    materials: Material | Mapping[int | str, Material],
    *,
    supports: Sequence[FixedSupport],
    samples: Sequence[RomParameters],
    patch_radius_mm: float,
    surface_points_mm: np.ndarray,
    target_points_mm: np.ndarray | None = None,
    pressure_region: Selector | None = None,
    degree: int = 2,
    load_steps: int = 2,
    pod_tolerance: float = 1e-8,
    progress: Callable[[int, int], None] | None = None,
) -> ReducedModel:
    """Build a hyperelastic (neo-Hookean, mixed u-p) reduced model from sampled full solves.

    Coefficients are interpolated over the normalised parameter vector
    (centre, displacement, gravity direction, pressure) with a cubic RBF.

    Parameters
    ----------
    fe : FEMesh
        Organ mesh.
    materials : Material or Mapping
        Material(s) per region (kPa).
    supports : Sequence[FixedSupport]
        Fixed regions.
    samples : Sequence[RomParameters]
        At least 12 sampled load cases (mm, g, kPa).
    patch_radius_mm : float
        Retractor patch radius, mm.
    surface_points_mm, target_points_mm : numpy.ndarray
        (V, 3) surface vertices and (T, 3) targets, mm.
    pressure_region : Selector, optional
        Where insufflation pressure acts.
    degree : int
        Displacement degree of the mixed u-p snapshots (>= 2).
    load_steps : int
        Load increments per snapshot.
    pod_tolerance : float
        Discarded fraction of snapshot energy.
    progress : callable, optional
        ``progress(done, total)`` after each snapshot.
    """
    if len(samples) < 12:
        raise ReducedModelError(
            f"need at least 12 samples for the hyperelastic model, got {len(samples)}"
        )
    surf = np.asarray(surface_points_mm, float)
    targ = np.zeros((0, 3)) if target_points_mm is None else np.asarray(target_points_mm, float)
    pts = np.vstack([surf, targ])
    snaps = []
    for i, prm in enumerate(samples):
        res = solve_tissue(
            fe,
            materials,
            load_case_for(prm, supports, patch_radius_mm, pressure_region),
            model="neohookean",
            degree=degree,
            load_steps=load_steps,
        )
        snaps.append(res.evaluate_displacement_mm(pts).ravel())
        if progress is not None:
            progress(i + 1, len(samples))
    snap = np.asarray(snaps)
    modes, coef = _pod(snap, pod_tolerance, None)
    k = modes.shape[0]
    x = np.array([s.vector() for s in samples])
    shift = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    xn = (x - shift) / scale
    weights, poly = fit_cubic_rbf(xn, coef)
    return ReducedModel(
        kind="neohookean",
        points_mm=pts,
        n_surface=surf.shape[0],
        modes=modes.reshape(k, -1, 3).astype(np.float32),
        mode_bounds=np.stack([coef.min(axis=0), coef.max(axis=0)], axis=1),
        rbf_centres=xn,
        rbf_weights=weights,
        rbf_poly=poly,
        param_shift=shift,
        param_scale=scale,
        meta={"patch_radius_mm": patch_radius_mm, "n_snapshots": len(samples), "degree": degree},
    )
