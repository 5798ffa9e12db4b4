"""The reduced model itself: load parameters, evaluation and its ``.npz`` file format.

Evaluating a model is plain numpy (no finite-element library): the modal amplitudes come from
the cubic RBF (:mod:`biomech.rom.rbf`) and the displacement is one matrix product.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biomech._atomic import atomic_write
from biomech.errors import BiomechError
from biomech.rom.rbf import evaluate_cubic_rbf

__all__ = ["ReducedModel", "ReducedModelError", "RomParameters", "load_reduced_model"]


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
    cells : numpy.ndarray, optional
        (T, 4) int32 tetrahedra indexing ``points_mm`` when the points are every vertex of the
        FE volume mesh (models built by ``surgplan rom CASE`` without a scenario): any point of
        the organ gets its modes by P1 interpolation (:func:`biomech.rom.modes_at`).
    amplitude_mean, amplitude_std : numpy.ndarray, optional
        (k,) mean and standard deviation of each amplitude over the training load cases (the
        prior of the twin; ``meta["amplitude_statistics"]`` says over which loads).
    meta : dict
        JSON-ready description; models with ``cells`` also carry ``"model_discrepancy"`` and
        ``"stiffness_spread"`` (held-out errors and Young's modulus +-30 %, mm) and the
        per-axis standard deviations ``"discrepancy_mm"`` and ``"stiffness_spread_mm"``.
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
    cells: np.ndarray | None = None
    amplitude_mean: np.ndarray | None = None
    amplitude_std: np.ndarray | None = None

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
            cells=self.cells,
            amplitude_mean=None if self.amplitude_mean is None else self.amplitude_mean[:k],
            amplitude_std=None if self.amplitude_std is None else self.amplitude_std[:k],
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
        for name in ("cells", "amplitude_mean", "amplitude_std"):  # optional (format 2)
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)

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
                cells=z["cells"] if "cells" in z else None,
                amplitude_mean=z["amplitude_mean"] if "amplitude_mean" in z else None,
                amplitude_std=z["amplitude_std"] if "amplitude_std" in z else None,
            )
    except (KeyError, ValueError, OSError) as exc:
        raise ReducedModelError(f"{path} is not a reduced model file: {exc}") from None
