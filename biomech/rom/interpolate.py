"""Modes of a reduced model at any point of the organ: exact P1 (barycentric) interpolation.

A model built on every vertex of the FE volume mesh stores its tetrahedra
(:attr:`~biomech.rom.ReducedModel.cells`); the linear (P1) FE displacement inside a
tetrahedron with vertices x_0..x_3 is u(x) = sum_j lambda_j(x) u_j, with barycentric coordinates
lambda = (1 - sum(l), l) and l = A^-1 (x - x_0), A = [x_1 - x_0, x_2 - x_0, x_3 - x_0]. The
modes are P1 fields (snapshots of P1 solves evaluated at the vertices), so this reproduces the
FE field exactly inside the organ. A point outside every cell (just outside the surface) takes
the cell whose barycentric coordinates are least negative, clamped to >= 0 and renormalised
(the nearest face or vertex of that cell).

Cells are found among the ``candidates`` nearest cell centroids (scipy cKDTree), all points at
once; points not inside any candidate retry with 8x more candidates before being called outside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from biomech.rom.model import ReducedModel, ReducedModelError

__all__ = ["P1Location", "locate_p1", "modes_at"]

#: Barycentric tolerance for "inside".
_INSIDE_TOL = 1e-9


@dataclass(frozen=True)
class P1Location:
    """Where points lie in a tetrahedral mesh and their P1 weights.

    Attributes
    ----------
    cells : numpy.ndarray
        (N,) index of the cell used for each point.
    weights : numpy.ndarray
        (N, 4) barycentric weights (sum 1, all >= 0).
    inside : numpy.ndarray
        (N,) bool: the point lies in the cell (False: outside the mesh, nearest cell).
    """

    cells: np.ndarray
    weights: np.ndarray
    inside: np.ndarray


def _barycentric(x: np.ndarray, tets: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """(N, K, 4) barycentric coordinates of points (N, 3) in candidate cells (N, K)."""
    v = x_of = tets[cand]  # (N, K, 4, 3)
    a = np.stack([v[..., 1, :] - v[..., 0, :], v[..., 2, :] - v[..., 0, :],
                  v[..., 3, :] - v[..., 0, :]], axis=-1)  # fmt: skip
    rhs = (x[:, None, :] - x_of[..., 0, :])[..., None]
    with np.errstate(all="ignore"):
        lam = np.linalg.solve(a, rhs)[..., 0]  # (N, K, 3)
    lam = np.nan_to_num(lam, nan=-np.inf)
    return np.concatenate([1.0 - lam.sum(axis=-1, keepdims=True), lam], axis=-1)


def locate_p1(
    points_mm: np.ndarray, cells: np.ndarray, query_mm: np.ndarray, *, candidates: int = 12
) -> P1Location:
    """Locate query points (Q, 3) in a tetrahedral mesh (points (P, 3), cells (T, 4)), in mm.

    Parameters
    ----------
    points_mm : numpy.ndarray
        (P, 3) mesh vertices, mm.
    cells : numpy.ndarray
        (T, 4) tetrahedra.
    query_mm : numpy.ndarray
        (Q, 3) points, mm.
    candidates : int
        Nearest cell centroids tried per point at first.
    """
    x = np.asarray(query_mm, float).reshape(-1, 3)
    pts = np.asarray(points_mm, float)
    tet = np.asarray(cells, np.int64)
    tets = pts[tet]  # (T, 4, 3)
    tree = cKDTree(tets.mean(axis=1))
    n = x.shape[0]
    best_cell = np.zeros(n, np.int64)
    best_w = np.zeros((n, 4))
    best_min = np.full(n, -np.inf)
    todo = np.arange(n)
    for k in (candidates, 8 * candidates):
        if todo.size == 0:
            break
        k = min(k, len(tet))
        _, cand = tree.query(x[todo], k=k)
        cand = cand.reshape(todo.size, k)
        lam = _barycentric(x[todo], tets, cand)
        mins = lam.min(axis=-1)
        j = np.argmax(mins, axis=1)
        rows = np.arange(todo.size)
        better = mins[rows, j] > best_min[todo]
        sel = todo[better]
        best_min[sel] = mins[rows, j][better]
        best_cell[sel] = cand[rows, j][better]
        best_w[sel] = lam[rows, j][better]
        todo = todo[best_min[todo] < -_INSIDE_TOL]
    inside = best_min >= -_INSIDE_TOL
    w = np.clip(best_w, 0.0, None)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    return P1Location(cells=best_cell, weights=w, inside=inside)


def modes_at(rom: ReducedModel, points_mm: np.ndarray) -> np.ndarray:
    """(k, N, 3) modes of ``rom`` (mm per unit amplitude) at any points (N, 3) in mm.

    Exact P1 interpolation inside the organ; points just outside take the nearest cell (module
    docstring). The displacement at the points for amplitudes ``a`` is
    ``np.tensordot(a, modes_at(rom, pts), 1)``.

    Raises
    ------
    ReducedModelError
        If the model has no volume cells (built on surface points only) or the points are
        not (N, 3) finite millimetres.
    """
    if rom.cells is None:
        raise ReducedModelError(
            "this reduced model has no volume cells (built on surface points only); rebuild "
            "it with `surgplan rom CASE` (no --scenario) to evaluate modes inside the organ"
        )
    x = np.asarray(points_mm, float)
    if x.ndim != 2 or x.shape[1] != 3 or not np.all(np.isfinite(x)):
        raise ReducedModelError(f"points_mm must be finite (N, 3) mm, got shape {x.shape}")
    loc = locate_p1(rom.points_mm, rom.cells, x)
    vert = np.asarray(rom.cells, np.int64)[loc.cells]  # (N, 4)
    modes = np.asarray(rom.modes)
    return np.einsum("nj,knjc->knc", loc.weights, modes[:, vert, :])
