"""Building the linear reduced model: unit snapshots -> POD modes -> RBF over the patch centre."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from biomech.elasticity import material_map
from biomech.materials import Material
from biomech.mesh import FEMesh
from biomech.rom.model import ReducedModel, ReducedModelError
from biomech.rom.rbf import fit_cubic_rbf
from biomech.rom.snapshots import evaluation_points, linear_snapshots, pod
from biomech.rom.training import BasisConfig, TrainingSet

__all__ = ["build_linear_rom"]


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


def _centre_coordinates(
    centres: np.ndarray, centre_space: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin (3,), axes (2 or 3, 3) and coordinates of the patch centres the RBF works in.

    ``"plane"``: the centres' mean tangent plane (principal axes); ``"3d"``: their 3D
    coordinates less their mean.
    """
    origin = centres.mean(axis=0)
    if centre_space == "3d":
        axes = np.eye(3)
    else:
        axes = np.linalg.svd(centres - origin)[2][:2]
    return origin, axes, (centres - origin) @ axes.T


def _amplitude_bounds(coef: np.ndarray) -> np.ndarray:
    """(k, 2) amplitude bounds over the unit responses (S, 7, k) scaled to typical loads.

    Typical loads: 10 mm per displacement axis, 1 g per gravity axis, 2 kPa.
    """
    typical = np.array([10, 10, 10, 1, 1, 1, 2.0])
    bound = np.abs(coef * typical[None, :, None]).sum(axis=1).max(axis=0)
    return np.stack([-bound, bound], axis=1)


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
    basis: BasisConfig | None = None,
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
    basis : BasisConfig, optional
        Snapshot degree, POD tolerance and mode cap, load scales and centre space
        (default: ``BasisConfig()``).
    progress : callable, optional
        ``progress(done, total)`` after each patch centre.

    Returns
    -------
    ReducedModel
    """
    basis = BasisConfig() if basis is None else basis
    scales = _check_linear_inputs(training, basis)
    centres = np.asarray(training.patch_centres_mm, float)
    pts, n_surface = evaluation_points(training.surface_points_mm, training.target_points_mm)
    snap = linear_snapshots(fe, material_map(fe, materials), training, basis.degree, pts, progress)
    # POD of the unit responses weighted by typical load magnitudes; coefficients per unit load.
    weight = np.tile(scales, len(centres))[:, None]
    modes, coef = pod(snap * weight, basis.pod_tolerance, basis.max_modes)
    coef = coef / weight
    k = modes.shape[0]
    origin, axes, x = _centre_coordinates(centres, basis.centre_space)
    weights, poly = fit_cubic_rbf(x, coef.reshape(len(centres), 7 * k))
    return ReducedModel(
        kind="linear",
        points_mm=pts,
        n_surface=n_surface,
        modes=modes.reshape(k, -1, 3).astype(np.float32),
        mode_bounds=_amplitude_bounds(coef.reshape(len(centres), 7, k)),
        rbf_centres=x,
        rbf_weights=weights,
        rbf_poly=poly,
        param_shift=np.zeros(1),
        param_scale=np.ones(1),
        plane_origin=origin,
        plane_axes=axes,
        meta=_linear_meta(training, basis, int(snap.shape[0]), scales),
    )
