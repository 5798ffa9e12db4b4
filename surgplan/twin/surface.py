"""The twin's surface: undeformed geometry, modes per vertex and the correspondence search.

Correspondences are nearest vertices on the *deformed* surface ``x_j(a) = v_j + Phi_j a``,
found without deforming the whole mesh: a point ``q`` is pulled back by the displacement at
its current correspondence, ``q - Phi_j a``, and its nearest *undeformed* vertex is searched
with the registration model's compiled real-time kernel (voxel-grid guess refined by
steepest descent over the vertex graph, :mod:`registration._icp_kernels`; KD-tree for points
outside the grid's band). For a smooth displacement field this fixed point is the nearest
vertex of the deformed surface up to the change of the displacement across one vertex
spacing; the Gauss-Newton iterations repeat it with the current amplitudes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from registration import SurfaceModel, prepare_surface
from registration._icp_kernels import transform_and_correspond
from surgplan.twin.basis import DeformationBasis
from surgplan.twin.errors import BasisMismatchError
from surgplan.twin.normals import normal_modes

__all__ = ["TwinSurface", "build_twin_surface"]

_EYE = np.eye(3)
_ZERO = np.zeros(3)


@dataclass(frozen=True, eq=False)
class TwinSurface:
    """Everything the assimilation queries about the surface, built once.

    Attributes
    ----------
    model : registration.SurfaceModel
        The undeformed surface (normals, KD-tree, real-time grids).
    modes_v : numpy.ndarray, shape (V, 3, k)
        Surface modes laid out per vertex (one gather per correspondence), mm.
    normal_modes_v : numpy.ndarray, shape (V, 3, k)
        Normal derivatives per unit amplitude, laid out per vertex.
    """

    model: SurfaceModel
    modes_v: NDArray[np.float64]
    normal_modes_v: NDArray[np.float64]
    _scratch: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_modes(self) -> int:
        """Number of modes ``k``."""
        return int(self.modes_v.shape[2])

    def displacement(self, idx: NDArray[np.intp], a: NDArray[np.float64]) -> NDArray:
        """(N, 3) displacement of vertices ``idx`` at amplitudes ``a``, mm."""
        if self.n_modes == 0:
            return np.zeros((len(idx), 3))
        return self.modes_v[idx] @ a

    def nearest_undeformed(self, q: NDArray[np.float64]) -> NDArray[np.intp]:
        """Exact nearest undeformed vertex of each point (compiled kernel + KD-tree)."""
        m = self.model
        lo, h, _ = m.closest_vertex_grid()
        grid, pairs = m.sheet_seed_grid()
        nb_ptr, nb_idx, nb_xyz = m.vertex_neighbourhoods()
        n = len(q)
        p = np.empty((n, 3))
        idx = np.empty(n, dtype=np.int64)
        misses = transform_and_correspond(
            np.ascontiguousarray(q, dtype=np.float64), _EYE, _ZERO, lo, 1.0 / h, grid, pairs,
            np.asarray(grid.shape, dtype=np.int64), m.vertices, nb_ptr, nb_idx, nb_xyz, p, idx,
            True,
        )  # fmt: skip
        if misses:
            far = idx < 0
            idx[far] = m.tree.query(q[far], k=1)[1]
        return idx

    def correspond(
        self, q: NDArray[np.float64], a: NDArray[np.float64], idx: NDArray[np.intp] | None
    ) -> NDArray[np.intp]:
        """Nearest deformed-surface vertex of model-space points ``q`` (module docstring).

        Parameters
        ----------
        q : numpy.ndarray, shape (N, 3)
            Points in model space, mm.
        a : numpy.ndarray, shape (k,)
            Current amplitudes.
        idx : numpy.ndarray, optional
            Current correspondences (``None``: start from the undeformed nearest vertex).
        """
        if self.n_modes == 0:
            return self.nearest_undeformed(q)
        if idx is None:
            idx = self.nearest_undeformed(q)
        return self.nearest_undeformed(q - self.displacement(idx, a))

    def at(
        self, idx: NDArray[np.intp], a: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
        """Deformed positions, deformed unit normals and modes at vertices ``idx``.

        Returns
        -------
        x : numpy.ndarray, shape (N, 3)
            ``v_j + Phi_j a``, mm.
        n : numpy.ndarray, shape (N, 3)
            ``normalize(n_j + N_j a)`` (:mod:`surgplan.twin.normals`).
        phi : numpy.ndarray, shape (N, 3, k), or None when ``k = 0``
        """
        v, nrm = self.model.vertices[idx], self.model.normals[idx]
        if self.n_modes == 0:
            return v, nrm, None
        phi = self.modes_v[idx]
        n = nrm + self.normal_modes_v[idx] @ a
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        return v + phi @ a, n, phi


def build_twin_surface(basis: DeformationBasis, model: SurfaceModel | None = None) -> TwinSurface:
    """Prepare the twin's surface from a basis (and optionally its prepared model).

    Parameters
    ----------
    basis : DeformationBasis
        Modes on ``basis.vertices_mm``.
    model : registration.SurfaceModel, optional
        The prepared surface; default ``registration.prepare_surface((vertices, faces))``.

    Raises
    ------
    BasisMismatchError
        The prepared surface's vertices are not the basis's (another mesh, or a surface that
        ``prepare_surface`` changes: build the basis on ``model.vertices``).
    """
    if model is None:
        model = prepare_surface((basis.vertices_mm, basis.faces), name="twin")
    if len(model.vertices) != basis.n_vertices or not np.allclose(
        model.vertices, basis.vertices_mm, rtol=0.0, atol=1e-6
    ):
        raise BasisMismatchError(
            f"basis built for another mesh: it has {basis.n_vertices} vertices, the surface "
            f"{len(model.vertices)} (build the basis on registration.prepare_surface(mesh)"
            ".vertices)"
        )
    model.prepare_realtime()
    modes = basis.surface_modes
    nmodes = normal_modes(model.vertices, model.faces, modes, model.normals)
    return TwinSurface(
        model=model,
        modes_v=np.ascontiguousarray(modes.transpose(1, 2, 0)),
        normal_modes_v=np.ascontiguousarray(nmodes.transpose(1, 2, 0)),
    )
