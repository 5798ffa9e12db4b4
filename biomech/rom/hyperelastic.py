"""Building the hyperelastic reduced model from sampled neo-Hookean solves."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from biomech.loads import FixedSupport, LoadCase, Selector
from biomech.materials import Material
from biomech.mesh import FEMesh
from biomech.rom.loads import load_case_for
from biomech.rom.model import ReducedModel, ReducedModelError, RomParameters
from biomech.rom.rbf import fit_cubic_rbf
from biomech.rom.snapshots import evaluation_points, pod
from biomech.tissue import solve_tissue

__all__ = ["build_hyperelastic_rom"]


def _neohookean_snapshots(
    fe: FEMesh,
    materials: Material | Mapping[int | str, Material],
    loads: Sequence[LoadCase],
    pts: np.ndarray,
    discretisation: tuple[int, int],
    progress: Callable[[int, int], None] | None,
) -> np.ndarray:
    """(n, 3P) neo-Hookean displacements (mm) at ``pts`` (mm), one row per load case.

    ``discretisation`` is (displacement degree, load steps) of each solve.
    """
    degree, load_steps = discretisation
    snaps = []
    for i, load in enumerate(loads):
        res = solve_tissue(
            fe, materials, load, model="neohookean", degree=degree, load_steps=load_steps
        )
        snaps.append(res.evaluate_displacement_mm(pts).ravel())
        if progress is not None:
            progress(i + 1, len(loads))
    return np.asarray(snaps)


def _normalised_parameters(
    samples: Sequence[RomParameters],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shift (10,), scale (10,) and the normalised (n, 10) parameter vectors of the samples."""
    x = np.array([s.vector() for s in samples])
    shift = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    return shift, scale, (x - shift) / scale


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
    pts, n_surface = evaluation_points(surface_points_mm, target_points_mm)
    loads = [load_case_for(prm, supports, patch_radius_mm, pressure_region) for prm in samples]
    snap = _neohookean_snapshots(fe, materials, loads, pts, (degree, load_steps), progress)
    modes, coef = pod(snap, pod_tolerance, None)
    k = modes.shape[0]
    shift, scale, xn = _normalised_parameters(samples)
    weights, poly = fit_cubic_rbf(xn, coef)
    return ReducedModel(
        kind="neohookean",
        points_mm=pts,
        n_surface=n_surface,
        modes=modes.reshape(k, -1, 3).astype(np.float32),
        mode_bounds=np.stack([coef.min(axis=0), coef.max(axis=0)], axis=1),
        rbf_centres=xn,
        rbf_weights=weights,
        rbf_poly=poly,
        param_shift=shift,
        param_scale=scale,
        meta={"patch_radius_mm": patch_radius_mm, "n_snapshots": len(samples), "degree": degree},
    )
