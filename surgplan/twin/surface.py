"""The twin's surface: undeformed geometry, modes per vertex and the correspondence search.

A point's correspondence is its foot on the *deformed* piecewise-linear surface, a triangle
``f`` and barycentric coordinates ``beta``, so that the foot moves continuously with the state
(nearest-vertex correspondences make the Gauss-Newton iterate jitter by about one posterior
standard deviation once deformation modes can chase the vertices). It is found without
deforming the mesh: the point ``q`` is pulled back by the displacement at its current foot,
``q' = q - Phi_foot a``; its nearest *undeformed* vertex comes from the registration model's
compiled real-time kernel (voxel-grid guess refined by steepest descent over the vertex
graph, :mod:`registration._icp_kernels`; KD-tree outside the grid's band); ``q'`` is then
projected on the triangles around that vertex (barycentric coordinates clamped to the
triangle, nearest kept). The deformed foot is ``x(a) = sum_b beta_b (v_b + Phi_b a)`` and its
normal the deformed triangle's, so ``n . (q - x)`` is the distance to the deformed triangle's
plane. For a smooth displacement field this is the nearest point of the deformed surface up
to the change of the displacement across one triangle; the iterations repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from registration import SurfaceModel, prepare_surface
from registration._icp_kernels import transform_and_correspond
from surgplan.twin._foot_kernel import (
    corner_displacements,
    face_table,
    foot_displacement,
    foot_modes,
    foot_points,
    foot_residuals,
    project_on_fans,
    pull_back_passes,
)
from surgplan.twin._rows import run_on_rows
from surgplan.twin.basis import DeformationBasis
from surgplan.twin.errors import BasisMismatchError

__all__ = ["Foot", "TwinSurface", "build_twin_surface"]

#: Pull-back passes of a correspondence search without previous feet.
COLD_PASSES = 3

_EYE = np.eye(3)
_ZERO = np.zeros(3)


@dataclass(frozen=True)
class Foot:
    """Correspondences of N points: triangle, barycentric coordinates, nearest vertex."""

    face: NDArray[np.intp]
    beta: NDArray[np.float64]
    vertex: NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class TwinSurface:
    """Everything the assimilation queries about the surface, built once.

    Attributes
    ----------
    model : registration.SurfaceModel
        The undeformed surface (normals, KD-tree, real-time grids).
    modes_v : numpy.ndarray, shape (V, 3, k)
        Surface modes laid out per vertex (one gather per correspondence), mm.
    fan_ptr, fan_faces : numpy.ndarray of int64
        Triangles around each vertex in CSR form: those of vertex ``i`` are
        ``fan_faces[fan_ptr[i]:fan_ptr[i + 1]]``.
    modes_v32 : numpy.ndarray of float32, shape (V, 3, k)
        ``modes_v`` rounded to float32 (relative error 6e-8: 1e-6 mm on a 10 mm displacement),
        read by the real-time kernels (:meth:`residuals`, :meth:`displacement`,
        :meth:`correspond`): gathering three vertices' modes per point is memory-bound, and
        half the bytes make those passes about 1.5-2x faster. Sums are in float64.
    face_table : numpy.ndarray, shape (F, 13)
        Each undeformed triangle's corner, edges and Gram constants, read by the projection
        on the triangles (:func:`surgplan.twin._foot_kernel.face_table`).
    """

    model: SurfaceModel
    modes_v: NDArray[np.float64]
    fan_ptr: NDArray[np.int64]
    fan_faces: NDArray[np.int64]
    modes_v32: NDArray[np.float32]
    face_table: NDArray[np.float64]

    @property
    def row_cost(self) -> float:
        """A point's work in the search and residual passes, relative to six modes' work.

        A point sums the modes of its triangle's three vertices, so the work grows with ``k``.
        """
        return max(1.0, (6.0 + self.n_modes) / 12.0)

    @property
    def n_modes(self) -> int:
        """Number of modes ``k``."""
        return int(self.modes_v.shape[2])

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

    def _project_on_fan(self, q: NDArray[np.float64], vertex: NDArray[np.intp]) -> Foot:
        """Nearest point of the triangles around ``vertex`` to ``q`` (clamped barycentrics)."""
        n = len(q)
        face = np.empty(n, dtype=np.int64)
        beta = np.empty((n, 3))
        project_on_fans(
            np.ascontiguousarray(q, dtype=np.float64), np.ascontiguousarray(vertex, np.int64),
            self.fan_ptr, self.fan_faces, self.face_table, face, beta,
        )  # fmt: skip
        return Foot(face=face, beta=beta, vertex=vertex)

    def _corner_displacements(self, face: NDArray[np.intp], a: NDArray) -> NDArray:
        """(N, 3 corners, 3) displacements of the feet's triangle corners, mm."""
        out = np.empty((len(face), 3, 3))
        corner_displacements(self.model.faces, np.ascontiguousarray(face), self.modes_v, a, out)
        return out

    def displacement(self, foot: Foot, a: NDArray[np.float64]) -> NDArray[np.float64]:
        """(N, 3) displacement of the feet at amplitudes ``a``, mm."""
        if self.n_modes == 0:
            return np.zeros((len(foot.face), 3))
        out = np.empty((len(foot.face), 3))
        # contiguous arguments only: a strided view (a subsample) would make Numba compile,
        # or load from its cache, a second specialisation in the middle of an update
        foot_displacement(self.model.faces, np.ascontiguousarray(foot.face),
                          np.ascontiguousarray(foot.beta), self.modes_v32,
                          np.ascontiguousarray(a, np.float64), out)  # fmt: skip
        return out

    def correspond(
        self, q: NDArray[np.float64], a: NDArray[np.float64], previous: Foot | None
    ) -> Foot:
        """Feet on the deformed surface of model-space points ``q`` (module docstring).

        Large batches are searched on several cores (:mod:`surgplan.twin._rows`; the feet
        are the same bit for bit).

        Parameters
        ----------
        q : numpy.ndarray, shape (N, 3)
            Points in model space, mm.
        a : numpy.ndarray, shape (k,)
            Current amplitudes.
        previous : Foot, optional
            Current feet (``None``: start from the undeformed nearest vertex's displacement).
        """
        q = np.ascontiguousarray(q, dtype=np.float64)
        a = np.ascontiguousarray(a, np.float64)
        n = len(q)
        if previous is None:
            foot = Foot(np.empty(n, np.int64), np.empty((n, 3)), np.empty(n, np.int64))
        else:
            foot = Foot(
                np.array(previous.face, np.int64), np.array(previous.beta, np.float64),
                np.array(previous.vertex, np.int64),
            )  # fmt: skip

        def search(start: int, stop: int) -> None:
            rows = Foot(foot.face[start:stop], foot.beta[start:stop], foot.vertex[start:stop])
            self._correspond_rows(q[start:stop], a, rows, cold=previous is None)

        run_on_rows(search, n, self.row_cost)
        return foot

    def _correspond_rows(self, q: NDArray, a: NDArray, foot: Foot, *, cold: bool) -> None:
        """The search of :meth:`correspond` on some rows, written into ``foot`` in place."""
        if cold or self.n_modes == 0:
            vertex = self.nearest_undeformed(q)
            foot.vertex[:] = vertex
            project_on_fans(q, foot.vertex, self.fan_ptr, self.fan_faces, self.face_table,
                            foot.face, foot.beta)  # fmt: skip
            if self.n_modes == 0:
                return
        # A cold start: a few fixed-point passes (centimetre deformations need two or three);
        # a point whose triangle did not change in a pass has converged and is not passed again
        # (the next pass would find the same foot).
        self._pull_back(q, a, foot, COLD_PASSES if cold else 1)

    def _pull_back(self, q: NDArray, a: NDArray, foot: Foot, passes: int) -> Foot:
        """Pull-back passes from ``foot`` (compiled, in place); KD-tree for the grid's misses."""
        m = self.model
        lo, h, _ = m.closest_vertex_grid()
        grid, pairs = m.sheet_seed_grid()
        nb_ptr, nb_idx, nb_xyz = m.vertex_neighbourhoods()
        missed = np.empty(len(q), dtype=np.bool_)
        n_missed = pull_back_passes(
            q, a, passes, m.faces, m.vertices, self.modes_v32, self.fan_ptr, self.fan_faces,
            self.face_table, lo, 1.0 / h, grid, pairs, np.asarray(grid.shape, dtype=np.int64),
            nb_ptr, nb_idx, nb_xyz, foot.face, foot.beta, foot.vertex, missed,
        )  # fmt: skip
        if n_missed:  # far from the surface: the same passes with the exact (KD-tree) search
            far = np.nonzero(missed)[0]
            sub = Foot(foot.face[far], foot.beta[far], foot.vertex[far])
            for _ in range(passes):
                pulled = q[far] - self.displacement(sub, a)
                new = self._project_on_fan(pulled, self.nearest_undeformed(pulled))
                if np.array_equal(new.face, sub.face):
                    sub = new
                    break
                sub = new
            foot.face[far], foot.beta[far], foot.vertex[far] = sub.face, sub.beta, sub.vertex
        return foot

    def undeformed(self, foot: Foot) -> NDArray[np.float64]:
        """(N, 3) feet on the undeformed surface, ``sum_b beta_b v_b``, mm."""
        out = np.empty((len(foot.face), 3))
        foot_points(self.model.faces, np.ascontiguousarray(foot.face),
                    np.ascontiguousarray(foot.beta), self.model.vertices, out)  # fmt: skip
        return out

    def residuals(
        self,
        q: NDArray[np.float64],
        foot: Foot,
        a: NDArray[np.float64],
        noise_cov_model: NDArray[np.float64],
        centre_mm: NDArray[np.float64],
        *,
        jacobian: bool = True,
    ) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray | None]:
        """Point-to-plane residuals of ``q`` at ``foot`` and their Jacobian rows, one pass.

        Parameters
        ----------
        q : numpy.ndarray, shape (N, 3)
            Model-space points, mm.
        foot : Foot
            Their correspondences.
        a : numpy.ndarray, shape (k,)
            Amplitudes.
        noise_cov_model : numpy.ndarray, shape (3, 3)
            Sensor noise covariance in model axes, mm^2.
        centre_mm : numpy.ndarray, shape (3,)
            Rotation centre of the pose perturbation, mm.
        jacobian : bool, keyword-only
            Also return the (N, 6 + k) Jacobian (:mod:`surgplan.twin.assimilation`).

        Returns
        -------
        x : (N, 3) deformed feet, mm; n : (N, 3) deformed normals; r : (N,) signed residuals,
        mm; sigma : (N,) their noise std, mm; J : (N, 6 + k) or ``None``.
        """
        n_pts = len(q)
        x, nrm = np.empty((n_pts, 3)), np.empty((n_pts, 3))
        r, sigma = np.empty(n_pts), np.empty(n_pts)
        J = np.empty((n_pts, 6 + self.n_modes)) if jacobian else np.empty((0, 0))
        q = np.ascontiguousarray(q, dtype=np.float64)
        face, beta = np.ascontiguousarray(foot.face), np.ascontiguousarray(foot.beta)
        vertex = np.ascontiguousarray(foot.vertex)
        a = np.ascontiguousarray(a, np.float64)
        S = np.ascontiguousarray(noise_cov_model, np.float64)
        c = np.ascontiguousarray(centre_mm, np.float64)

        def evaluate(i: int, j: int) -> None:
            foot_residuals(
                q[i:j], self.model.faces, self.model.vertices, self.model.normals,
                self.modes_v32, face[i:j], beta[i:j], vertex[i:j], a, S, c, x[i:j], nrm[i:j],
                r[i:j], sigma[i:j], J[i:j] if jacobian else J, jacobian,
            )  # fmt: skip

        run_on_rows(evaluate, n_pts, self.row_cost)
        return x, nrm, r, sigma, (J if jacobian else None)

    def at(
        self, foot: Foot, a: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
        """Deformed foot positions, deformed triangle normals and modes at the feet.

        Returns
        -------
        x : numpy.ndarray, shape (N, 3)
            ``sum_b beta_b (v_b + Phi_b a)``, mm.
        n : numpy.ndarray, shape (N, 3)
            Outward unit normals of the deformed triangles.
        phi : numpy.ndarray, shape (N, 3, k), or None when ``k = 0``
            ``sum_b beta_b Phi_b``, mm per unit amplitude.
        """
        tri = self.model.faces[foot.face]
        corners = self.model.vertices[tri]  # (N, 3, 3)
        phi = None
        if self.n_modes:
            a = np.ascontiguousarray(a, np.float64)
            corners = corners + self._corner_displacements(foot.face, a)
            phi = np.empty((len(foot.face), 3, self.n_modes))
            foot_modes(self.model.faces, foot.face, foot.beta, self.modes_v, phi)
        x = np.einsum("nc,nci->ni", foot.beta, corners)
        n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
        flip = np.einsum("ij,ij->i", n, self.model.normals[foot.vertex]) < 0
        n[flip] *= -1.0
        return x, n, phi


def _vertex_fans(
    faces: NDArray[np.int64], n_vertices: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Triangles around each vertex in CSR form ``(ptr (V + 1,), faces)``."""
    owner = faces.ravel()
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=n_vertices)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return ptr, (order // 3).astype(np.int64)


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
    if np.any(np.bincount(model.faces.ravel(), minlength=len(model.vertices)) == 0):
        raise BasisMismatchError("the surface has vertices in no triangle")
    model.prepare_realtime()
    fan_ptr, fan_faces = _vertex_fans(model.faces, len(model.vertices))
    modes_v = np.ascontiguousarray(basis.surface_modes.transpose(1, 2, 0))
    return TwinSurface(
        model=model,
        modes_v=modes_v,
        fan_ptr=fan_ptr,
        fan_faces=fan_faces,
        modes_v32=modes_v.astype(np.float32),
        face_table=face_table(model.faces, model.vertices),
    )
