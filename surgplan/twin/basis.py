"""The deformation basis the twin assimilates into: surface and target modes with their prior.

A :class:`DeformationBasis` is plain data: the organ surface (the registration model's
vertices and faces), the displacement per unit modal amplitude on it and at the targets, the
amplitude prior, and the model's own error at the targets. How the modes were obtained (a
reduced FE model, :func:`surgplan.twin.rom_basis.basis_from_reduced_model`, or a synthetic
field in the tests) does not matter to the assimilation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from surgplan.twin.errors import BasisError

__all__ = ["DeformationBasis", "MIN_EXTENT_MM", "MAX_EXTENT_MM"]

#: An organ smaller than this (largest bounding-box side) is refused as wrong units, mm.
MIN_EXTENT_MM = 10.0
#: An organ larger than this is refused as wrong units, mm.
MAX_EXTENT_MM = 1000.0


def _array(value: ArrayLike, name: str, shape: tuple[int | None, ...], dtype: Any) -> NDArray:
    """``value`` as a read-only array of ``shape`` (``None``: any size), finite, or raise."""
    try:
        arr = np.array(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise BasisError(f"{name} must be numeric with shape {shape}: {exc}") from None
    if arr.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)
    ):
        raise BasisError(f"{name} must have shape {shape}, got {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise BasisError(f"{name} holds {int((~np.isfinite(arr)).sum())} non-finite values")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class DeformationBasis:
    """A reduced deformation basis on an organ surface and its targets (model space, LPS mm).

    The deformed surface is ``x(a) = vertices_mm + sum_m a_m surface_modes[m]``; a target
    moves to ``y(a) = target_points_mm + sum_m a_m target_modes[m]``.

    Attributes
    ----------
    vertices_mm : numpy.ndarray, shape (V, 3)
        Undeformed surface vertices (the registration model's surface), mm.
    faces : numpy.ndarray of int64, shape (F, 3)
        Triangles.
    surface_modes : numpy.ndarray, shape (k, V, 3)
        Surface displacement per unit amplitude, mm (``k = 0``: rigid only).
    prior_std : numpy.ndarray, shape (k,)
        Standard deviation of each amplitude's zero-mean Gaussian prior (dimensionless).
    target_names : tuple of str
        Names of the targets (tumour centroid first by convention).
    target_points_mm : numpy.ndarray, shape (T, 3)
        Undeformed target positions, mm.
    target_modes : numpy.ndarray, shape (k, T, 3)
        Target displacement per unit amplitude, mm.
    discrepancy_mm : numpy.ndarray, shape (T,)
        The model's own error at each target, as a per-axis standard deviation (isotropic),
        mm: the reduced model against full FE on load cases it was not built from (an RMS 3-D
        error ``e`` corresponds to ``e / sqrt(3)``). A scalar is broadcast.
    stiffness_spread_mm : numpy.ndarray, shape (T,)
        Per-axis standard deviation of each target's displacement over the uncertain tissue
        stiffness, mm. A scalar is broadcast.
    meta : dict
        Provenance (free-form, JSON-serialisable).
    """

    vertices_mm: NDArray[np.float64]
    faces: NDArray[np.int64]
    surface_modes: NDArray[np.float64]
    prior_std: NDArray[np.float64]
    target_names: tuple[str, ...] = ()
    target_points_mm: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))
    target_modes: NDArray[np.float64] | None = None
    discrepancy_mm: NDArray[np.float64] | float = 0.0
    stiffness_spread_mm: NDArray[np.float64] | float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        put = object.__setattr__
        v = _array(self.vertices_mm, "vertices_mm", (None, 3), np.float64)
        put(self, "vertices_mm", v)
        f = _array(self.faces, "faces", (None, 3), np.int64)
        if len(f) == 0 or f.min() < 0 or f.max() >= len(v):
            raise BasisError(
                f"faces must index the {len(v)} vertices, got range "
                f"[{f.min() if len(f) else 0}, {f.max() if len(f) else 0}]"
            )
        put(self, "faces", f)
        extent = float(np.ptp(v, axis=0).max()) if len(v) else 0.0
        if not MIN_EXTENT_MM <= extent <= MAX_EXTENT_MM:
            raise BasisError(
                f"organ extent {extent:g} mm is outside [{MIN_EXTENT_MM:g}, {MAX_EXTENT_MM:g}] "
                "mm: the surface is probably not in millimetres (metres? micrometres?)"
            )
        put(
            self,
            "surface_modes",
            _array(self.surface_modes, "surface_modes", (None, len(v), 3), np.float64),
        )
        k = self.n_modes
        std = _array(self.prior_std, "prior_std", (k,), np.float64)
        if np.any(std <= 0):
            raise BasisError(f"prior_std must be positive, got min {std.min():g}")
        put(self, "prior_std", std)
        names = tuple(str(n) for n in self.target_names)
        if len(set(names)) != len(names):
            raise BasisError(f"target_names must be unique, got {names}")
        put(self, "target_names", names)
        n_t = len(names)
        put(
            self,
            "target_points_mm",
            _array(self.target_points_mm, "target_points_mm", (n_t, 3), np.float64),
        )
        modes_t = np.zeros((k, n_t, 3)) if self.target_modes is None else self.target_modes
        put(self, "target_modes", _array(modes_t, "target_modes", (k, n_t, 3), np.float64))
        for name in ("discrepancy_mm", "stiffness_spread_mm"):
            val = np.broadcast_to(np.asarray(getattr(self, name), np.float64), (n_t,)).copy()
            arr = _array(val, name, (n_t,), np.float64)
            if np.any(arr < 0):
                raise BasisError(f"{name} must be >= 0, got {arr.tolist()}")
            put(self, name, arr)
        self._check_mode_sizes(extent)

    def _check_mode_sizes(self, extent: float) -> None:
        """Refuse modes whose displacement at two prior sigmas exceeds the organ's extent."""
        if self.n_modes == 0:
            return
        peak = np.abs(self.surface_modes).max(axis=(1, 2)) * 2.0 * self.prior_std
        worst = int(np.argmax(peak))
        if peak[worst] > extent:
            raise BasisError(
                f"mode {worst} moves the surface by {peak[worst]:.3g} mm at 2 prior sigmas, "
                f"more than the organ's {extent:.3g} mm extent: modes or prior_std in wrong units"
            )

    @property
    def n_modes(self) -> int:
        """Number of modes ``k``."""
        return int(self.surface_modes.shape[0])

    @property
    def n_vertices(self) -> int:
        """Number of surface vertices ``V``."""
        return int(len(self.vertices_mm))

    @property
    def extent_mm(self) -> float:
        """Largest side of the surface's bounding box, mm."""
        return float(np.ptp(self.vertices_mm, axis=0).max())

    @property
    def centroid_mm(self) -> NDArray[np.float64]:
        """Mean of the vertices: the centre of the pose perturbation's rotation, mm."""
        return self.vertices_mm.mean(axis=0)

    @property
    def targets(self) -> Mapping[str, NDArray[np.float64]]:
        """Undeformed target positions by name, mm."""
        return dict(zip(self.target_names, self.target_points_mm, strict=True))

    def surface_displacement_mm(self, amplitudes: ArrayLike) -> NDArray[np.float64]:
        """(V, 3) surface displacement for ``amplitudes`` (k,), mm."""
        a = np.asarray(amplitudes, np.float64)
        return (
            np.tensordot(a, self.surface_modes, axes=(0, 0))
            if self.n_modes
            else (np.zeros_like(self.vertices_mm))
        )

    def surface_displacement_at(self, vertex: int, amplitudes: ArrayLike) -> NDArray:
        """(3,) displacement of one vertex, mm."""
        if self.n_modes == 0:
            return np.zeros(3)
        return np.asarray(amplitudes, np.float64) @ self.surface_modes[:, vertex]

    def target_positions_mm(self, amplitudes: ArrayLike) -> NDArray[np.float64]:
        """(T, 3) deformed target positions in model space, mm."""
        a = np.asarray(amplitudes, np.float64)
        if self.n_modes == 0:
            return self.target_points_mm.copy()
        return self.target_points_mm + np.tensordot(a, self.target_modes, axes=(0, 0))

    def rigid(self) -> DeformationBasis:
        """The same surface and targets with no modes (rigid-only twin)."""
        n_t = len(self.target_names)
        return DeformationBasis(
            vertices_mm=self.vertices_mm,
            faces=self.faces,
            surface_modes=np.zeros((0, self.n_vertices, 3)),
            prior_std=np.zeros(0),
            target_names=self.target_names,
            target_points_mm=self.target_points_mm,
            target_modes=np.zeros((0, n_t, 3)),
            discrepancy_mm=self.discrepancy_mm,
            stiffness_spread_mm=self.stiffness_spread_mm,
            meta={**self.meta, "rigid": True},
        )

    @classmethod
    def from_reduced_model(
        cls,
        rom: Any,
        surface_vertices_mm: ArrayLike,
        faces: ArrayLike,
        targets: Mapping[str, ArrayLike],
        **kwargs: Any,
    ) -> DeformationBasis:
        """Map a :class:`biomech.rom.ReducedModel` onto a surface and targets.

        See :func:`surgplan.twin.rom_basis.basis_from_reduced_model` (same arguments).
        """
        from surgplan.twin.rom_basis import basis_from_reduced_model

        return basis_from_reduced_model(rom, surface_vertices_mm, faces, targets, **kwargs)
