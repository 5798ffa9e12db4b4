"""Material fields and stress laws shared by the full solves, the reduced model and results.

One Hooke's law (:func:`sigma`) and one Cauchy stress (:func:`cauchy_stress`), written once in
UFL as in DOLFINx's ``demo_elasticity.py``; material parameters per cell region become DG0
functions (:func:`material_fields`). Fields are in SI (Pa, kg/m^3): the mm/kPa boundary is
:mod:`biomech.tissue`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dolfinx
import dolfinx_solver  # noqa: F401
import numpy as np
import ufl

from biomech.materials import Material, MaterialError
from biomech.mesh import FEMesh

__all__ = [
    "KPA_TO_PA",
    "MaterialFields",
    "cauchy_stress",
    "dg0_function",
    "epsilon",
    "material_fields",
    "material_map",
    "sigma",
]

KPA_TO_PA = 1.0e3
"""Pascal per kilopascal."""


def material_map(
    fe: FEMesh, materials: Material | Mapping[int | str, Material]
) -> dict[int, Material]:
    """Region id -> material, for every cell region of ``fe``.

    Parameters
    ----------
    fe : FEMesh
        The mesh (its ``regions`` map names to ids).
    materials : Material or Mapping[int | str, Material]
        One material for all regions, or one per region id or name (moduli in kPa).

    Raises
    ------
    MaterialError
        A region without material, a material for an unknown region, or a non-Material.
    """
    ids = [int(i) for i in fe.region_ids()]
    if isinstance(materials, Material):
        return dict.fromkeys(ids, materials)
    out: dict[int, Material] = {}
    for key, mat in materials.items():
        if not isinstance(mat, Material):
            raise MaterialError(f"material for region {key!r} must be a Material, got {mat!r}")
        if isinstance(key, str):
            if key not in fe.regions:
                raise MaterialError(
                    f"material given for unknown region {key!r}; regions: {sorted(fe.regions)}"
                )
            out[fe.regions[key]] = mat
        else:
            out[int(key)] = mat
    missing = [i for i in ids if i not in out]
    if missing:
        names = {v: k for k, v in fe.regions.items()}
        raise MaterialError(
            f"no material for region(s) {[names.get(i, i) for i in missing]}; "
            f"given for {sorted(materials)}"
        )
    return out


def dg0_function(fe: FEMesh, values: Mapping[int, float], name: str) -> dolfinx.fem.Function:
    """A cell-wise constant (DG0) function: ``values[region id]`` on each cell of that region.

    Parameters
    ----------
    fe : FEMesh
        The mesh with its cell tags.
    values : Mapping[int, float]
        Region id -> value (any unit; the caller's).
    name : str
        Name of the function (shown in output files).
    """
    q = dolfinx.fem.functionspace(fe.mesh, ("DG", 0))
    f = dolfinx.fem.Function(q, name=name)
    ct = fe.cell_tags
    arr = np.zeros(f.x.array.shape[0])
    for rid, val in values.items():
        arr[ct.indices[ct.values == rid]] = val
    # Ghost cells: cell tags cover owned and ghost cells alike.
    f.x.array[:] = arr
    f.x.scatter_forward()
    return f


@dataclass(frozen=True)
class MaterialFields:
    """DG0 shear modulus ``mu`` (Pa), bulk modulus ``kappa`` (Pa) and density ``rho`` (kg/m^3)."""

    mu: dolfinx.fem.Function
    kappa: dolfinx.fem.Function
    rho: dolfinx.fem.Function


def material_fields(fe: FEMesh, materials: Mapping[int, Material]) -> MaterialFields:
    """The DG0 material fields (SI) of region id -> material (kPa, kg/m^3).

    Parameters
    ----------
    fe : FEMesh
        The mesh.
    materials : Mapping[int, Material]
        Region id -> material, e.g. from :func:`material_map`.
    """
    items = materials.items()
    return MaterialFields(
        mu=dg0_function(fe, {k: m.shear_modulus_kpa * KPA_TO_PA for k, m in items}, "mu"),
        kappa=dg0_function(fe, {k: m.bulk_modulus_kpa * KPA_TO_PA for k, m in items}, "kappa"),
        rho=dg0_function(fe, {k: m.density_kg_m3 for k, m in items}, "rho"),
    )


def epsilon(u: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
    """Small strain eps(u) = sym(grad u)."""
    return ufl.sym(ufl.grad(u))


def sigma(
    u: ufl.core.expr.Expr, mu: ufl.core.expr.Expr, kappa: ufl.core.expr.Expr
) -> ufl.core.expr.Expr:
    """Hooke's law sigma(u) = 2 mu eps(u) + lambda tr(eps(u)) I, lambda = kappa - 2 mu / 3.

    In the mesh's dimension (gdim x gdim: plane strain in 2D). ``mu`` and ``kappa`` are the
    shear and bulk moduli (Pa with displacements in m).

    Parameters
    ----------
    u : ufl expression
        Displacement (a Function, TrialFunction or expression of one), m.
    mu, kappa : ufl expression
        Shear and bulk modulus, Pa.
    """
    eps = epsilon(u)
    lmbda = kappa - 2.0 * mu / 3.0
    return 2.0 * mu * eps + lmbda * ufl.tr(eps) * ufl.Identity(eps.ufl_shape[0])


def _embed3(t: ufl.core.expr.Expr, gdim: int, fill33: float) -> ufl.core.expr.Expr:
    """Embed a 2x2 plane-strain tensor in 3x3 with ``fill33`` at (2, 2)."""
    if gdim == 3:
        return t
    return ufl.as_matrix([[t[0, 0], t[0, 1], 0.0], [t[1, 0], t[1, 1], 0.0], [0.0, 0.0, fill33]])


def cauchy_stress(
    u: ufl.core.expr.Expr, mu: ufl.core.expr.Expr, kappa: ufl.core.expr.Expr, model: str, gdim: int
) -> ufl.core.expr.Expr:
    """3x3 Cauchy stress (Pa) as a UFL expression (plane strain embedded when gdim == 2).

    Linear: :func:`sigma` (Hooke), with sigma_33 = lambda tr(eps) in plane strain.
    Neo-Hookean: sigma = J^-1 P F^T with P = dPsi/dF, Psi = mu/2 (J^-2/3 I1 - 3)
    + kappa/2 (J - 1)^2 (the displacement-based pressure kappa (J - 1)).

    Parameters
    ----------
    u : ufl expression
        Displacement, m.
    mu, kappa : ufl expression
        Shear and bulk modulus, Pa.
    model : {"linear", "neohookean"}
        Constitutive model.
    gdim : int
        Geometric dimension of the mesh (2 or 3).
    """
    i3 = ufl.Identity(3)
    if model == "linear":
        s = sigma(u, mu, kappa)
        if gdim == 3:
            return s
        lmbda = kappa - 2.0 * mu / 3.0
        return _embed3(s, gdim, lmbda * ufl.tr(epsilon(u)))
    f3 = _embed3(ufl.Identity(gdim) + ufl.grad(u), gdim, 1.0)
    j = ufl.det(f3)
    b = f3 * f3.T
    # sigma = mu J^(-5/3) dev(b) + kappa (J - 1) I   (Holzapfel 2000, eq. 6.140 form)
    return mu * j ** (-5.0 / 3.0) * (b - ufl.tr(b) / 3.0 * i3) + kappa * (j - 1.0) * i3
