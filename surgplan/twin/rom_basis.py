"""A :class:`~surgplan.twin.basis.DeformationBasis` from a :class:`biomech.rom.ReducedModel`.

The reduced model carries its modes on its own evaluation points (surface points first, then
targets). They are carried over to the twin's surface vertices and targets:

- exactly, where a vertex or target coincides with a model point (the usual case: the model
  was built on the same surface);
- otherwise by a thin-plate-spline radial basis interpolant with a linear polynomial tail
  (Duchon 1977; :class:`scipy.interpolate.RBFInterpolator`) fitted on at most
  :data:`MAX_RBF_CENTRES` farthest-point-sampled model points (all targets kept). A smooth
  displacement field is reproduced to well under a percent of its range at the model's own
  point spacing (``tests/test_twin_basis.py``).

The amplitude prior is zero-mean (the undeformed, preoperative shape) with standard deviation
``max(|min|, |max|) / 2`` of the amplitudes seen over the model's snapshots
(:attr:`ReducedModel.mode_bounds`): every snapshot lies within two prior standard deviations.

The model's surface discrepancy (per-axis standard deviation, mm, the part of the model error
that enters the observation model, :mod:`surgplan.twin.noise`) is
``meta["surface_discrepancy_mm"]`` (:func:`surgplan.case_rom.build_default_case_rom`: the
larger of the same-kind held-out and the other-physics surface-fit RMS over sqrt 3); a model
built before that figure was stored falls back to its same-kind held-out surface-fit RMS over
sqrt 3 (``meta["model_discrepancy"]``), which understates other physics
(:func:`surface_discrepancy_from_meta`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

from registration import farthest_point_sample
from surgplan.twin.basis import DeformationBasis
from surgplan.twin.errors import BasisError, BasisMismatchError

__all__ = [
    "basis_from_reduced_model",
    "surface_discrepancy_from_meta",
    "transfer_modes",
    "MAX_RBF_CENTRES",
]

#: Most model points used as centres of the interpolant.
MAX_RBF_CENTRES = 1500
#: A vertex this many model point spacings from every model surface point is off the model.
MISMATCH_SPACINGS = 4.0


def transfer_modes(
    source_mm: NDArray[np.float64],
    modes: NDArray[np.float64],
    query_mm: NDArray[np.float64],
    *,
    keep: NDArray[np.intp] | None = None,
) -> NDArray[np.float64]:
    """Modes at ``query_mm`` from modes at ``source_mm`` (exact copy or thin-plate RBF).

    Parameters
    ----------
    source_mm : numpy.ndarray, shape (P, 3)
        Points where the modes are known, mm.
    modes : numpy.ndarray, shape (k, P, 3)
        Displacement per unit amplitude there, mm.
    query_mm : numpy.ndarray, shape (Q, 3)
        Points where the modes are wanted, mm.
    keep : numpy.ndarray of int, optional
        Source indices always used as RBF centres (e.g. interior targets).

    Returns
    -------
    numpy.ndarray, shape (k, Q, 3)
    """
    k = modes.shape[0]
    out = np.empty((k, len(query_mm), 3))
    tree = cKDTree(source_mm)
    d, j = tree.query(query_mm)
    scale = float(np.ptp(source_mm, axis=0).max()) or 1.0
    same = d <= 1e-6 * scale
    out[:, same] = modes[:, j[same]]
    if same.all() or k == 0:
        return out
    centres = farthest_point_sample(source_mm, min(MAX_RBF_CENTRES, len(source_mm)))
    if keep is not None:
        centres = np.unique(np.concatenate([centres, keep]))
    values = modes[:, centres].transpose(1, 0, 2).reshape(len(centres), 3 * k)
    rbf = RBFInterpolator(source_mm[centres], values, kernel="thin_plate_spline", degree=1)
    interp = rbf(query_mm[~same]).reshape(-1, k, 3).transpose(1, 0, 2)
    out[:, ~same] = interp
    return out


def surface_discrepancy_from_meta(meta: Mapping[str, Any] | None) -> tuple[float, str]:
    """The model's surface discrepancy (per-axis std, mm) and where it came from.

    ``meta["surface_discrepancy_mm"]`` when stored; else the largest ``surface_fit_surface_rms_mm``
    of ``meta["model_discrepancy"]`` over sqrt 3 (same-kind held-out loads only); else 0.
    """
    meta = meta or {}
    if "surface_discrepancy_mm" in meta:
        return float(meta["surface_discrepancy_mm"]), str(
            meta.get("discrepancy_source", "meta surface_discrepancy_mm")
        )
    rows = [r for r in meta.get("model_discrepancy", ()) if "surface_fit_surface_rms_mm" in r]
    if rows:
        d = max(float(r["surface_fit_surface_rms_mm"]) for r in rows) / np.sqrt(3.0)
        return float(d), (
            "same-kind held-out loads only (model built before other-physics loads were "
            "measured: understates real patients; re-run surgplan rom)"
        )
    return 0.0, "none stored"


def _prior_std(bounds: NDArray[np.float64]) -> NDArray[np.float64]:
    """``max(|min|, |max|) / 2`` per mode, floored at 1e-6 of the largest."""
    std = np.abs(np.asarray(bounds, np.float64)).max(axis=1) / 2.0
    return np.maximum(std, 1e-6 * (std.max() if len(std) else 1.0))


def _check_same_organ(rom_surface: NDArray, vertices: NDArray) -> None:
    """Refuse a surface farther from the model's surface points than a few point spacings."""
    tree = cKDTree(rom_surface)
    spacing = float(np.median(tree.query(rom_surface, k=2)[0][:, 1]))
    d = tree.query(vertices)[0]
    limit = max(MISMATCH_SPACINGS * spacing, 2.0)
    if d.max() > limit:
        raise BasisMismatchError(
            f"the reduced model was built for another mesh: surface vertex "
            f"{int(np.argmax(d))} lies {d.max():.1f} mm from the model's nearest surface point "
            f"(limit {limit:.1f} mm = {MISMATCH_SPACINGS:g} point spacings)"
        )


def basis_from_reduced_model(
    rom: Any,
    surface_vertices_mm: ArrayLike,
    faces: ArrayLike,
    targets: Mapping[str, ArrayLike],
    *,
    prior_std: ArrayLike | None = None,
    discrepancy_mm: ArrayLike | float | None = None,
    stiffness_spread_mm: ArrayLike | float | None = None,
) -> DeformationBasis:
    """Map a reduced model's modes onto the twin's surface vertices and targets.

    Parameters
    ----------
    rom : biomech.rom.ReducedModel
        Its ``points_mm`` (P, 3) (``n_surface`` surface points, then targets), ``modes``
        (k, P, 3) mm per unit amplitude and ``mode_bounds`` (k, 2).
    surface_vertices_mm : array_like, shape (V, 3)
        The registration model's surface vertices, mm.
    faces : array_like, shape (F, 3)
        Its triangles.
    targets : mapping of str to array_like (3,)
        Target name -> undeformed position, mm (tumour centroid first by convention).
    prior_std : array_like, shape (k,), optional
        Amplitude prior standard deviations (default from ``mode_bounds``, module docstring).
    discrepancy_mm, stiffness_spread_mm : float or array_like (T,), optional
        Per-axis standard deviations of the model error at the targets, mm (see
        :class:`DeformationBasis`); default ``rom.meta`` entries of those names, else 0.

    Returns
    -------
    DeformationBasis

    Raises
    ------
    BasisMismatchError
        The surface is not the one the model was built on.
    BasisError
        Inconsistent shapes or units.
    """
    pts = np.asarray(rom.points_mm, np.float64)
    modes = np.asarray(rom.modes, np.float64)
    n_s = int(rom.n_surface)
    if pts.ndim != 2 or modes.shape[1:] != (len(pts), 3) or not 0 < n_s <= len(pts):
        raise BasisError(
            f"reduced model has points {pts.shape}, modes {modes.shape}, n_surface {n_s}"
        )
    v = np.asarray(surface_vertices_mm, np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise BasisError(f"surface_vertices_mm must have shape (V, 3), got {v.shape}")
    _check_same_organ(pts[:n_s], v)
    names = tuple(targets)
    t_pts = np.array([np.asarray(targets[n], np.float64) for n in names]).reshape(-1, 3)
    keep = np.arange(n_s, len(pts))
    meta = dict(getattr(rom, "meta", {}) or {})
    return DeformationBasis(
        vertices_mm=v,
        faces=np.asarray(faces, np.int64),
        surface_modes=transfer_modes(pts, modes, v, keep=keep),
        prior_std=_prior_std(rom.mode_bounds) if prior_std is None else prior_std,
        target_names=names,
        target_points_mm=t_pts,
        target_modes=transfer_modes(pts, modes, t_pts, keep=keep),
        discrepancy_mm=meta.get("discrepancy_mm", 0.0)
        if discrepancy_mm is None
        else discrepancy_mm,
        stiffness_spread_mm=(
            meta.get("stiffness_spread_mm", 0.0)
            if stiffness_spread_mm is None
            else stiffness_spread_mm
        ),
        meta={
            "source": "biomech.rom",
            "kind": str(getattr(rom, "kind", "")),
            "rom_meta": meta,
            "surface_discrepancy_mm": surface_discrepancy_from_meta(meta)[0],
            "surface_discrepancy_source": surface_discrepancy_from_meta(meta)[1],
        },
    )
