"""Compiled (Numba) exact k-nearest-neighbour averages over a small point set.

For the systematic-residual check of the reliability verdict: a few hundred queries among a
few thousand points, where building a KD-tree costs more than the search. Points are binned
into a uniform grid of cells (counting sort); each query scans cells in growing shells until
no unscanned cell can hold a nearer point than its k-th nearest so far, so the result is exact
whatever the cell size.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _bin(
    points: np.ndarray, lo: np.ndarray, ext: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counting sort of the points into cells of edge ``h``.

    Returns the grid dimensions, each point's cell coordinates, the CSR start of each cell
    and the point order.
    """
    n = points.shape[0]
    dims = np.empty(3, dtype=np.int64)
    for a in range(3):
        dims[a] = int(ext[a] / h) + 1
    n_cells = dims[0] * dims[1] * dims[2]
    cell = np.empty(n, dtype=np.int64)
    cij = np.empty((n, 3), dtype=np.int64)
    start = np.zeros(n_cells + 1, dtype=np.int64)
    for i in range(n):
        for a in range(3):
            cij[i, a] = min(int((points[i, a] - lo[a]) / h), dims[a] - 1)
        cell[i] = (cij[i, 0] * dims[1] + cij[i, 1]) * dims[2] + cij[i, 2]
        start[cell[i] + 1] += 1
    for c in range(n_cells):
        start[c + 1] += start[c]
    order = np.empty(n, dtype=np.int64)
    fill = start[:-1].copy()
    for i in range(n):
        order[fill[cell[i]]] = i
        fill[cell[i]] += 1
    return dims, cij, start, order


@njit(cache=True, nogil=True)
def knn_mean_residuals(
    points: np.ndarray, residuals: np.ndarray, queries: np.ndarray, k: int
) -> np.ndarray:
    """Mean residual over each query point's ``k`` nearest points (itself included if present).

    Parameters
    ----------
    points : numpy.ndarray, shape (N, 3)
        Point positions, mm.
    residuals : numpy.ndarray, shape (N,)
        A value per point (signed residual, mm).
    queries : numpy.ndarray of int64, shape (Q,)
        Indices of the query points into ``points``.
    k : int
        Neighbours averaged (``k <= N``).

    Returns
    -------
    numpy.ndarray, shape (Q,)
        The mean of ``residuals`` over each query's ``k`` nearest points.
    """
    n = points.shape[0]
    lo = np.empty(3)
    hi = np.empty(3)
    for a in range(3):
        lo[a] = points[0, a]
        hi[a] = points[0, a]
    for i in range(n):
        for a in range(3):
            lo[a] = min(lo[a], points[i, a])
            hi[a] = max(hi[a], points[i, a])
    # Cell edge: first as if the points filled their bounding box with about k per cell, then
    # rescaled once from the occupancy found (points on a surface fill few cells). Shells grow
    # until the search is exact whatever the edge.
    ext = np.empty(3)
    for a in range(3):
        ext[a] = max(hi[a] - lo[a], 1e-9)
    longest = max(ext[0], max(ext[1], ext[2]))
    h = (ext[0] * ext[1] * ext[2] * k / n) ** (1.0 / 3.0)
    for attempt in range(2):
        floor = max(longest / 256.0, (ext[0] * ext[1] * ext[2] / (64.0 * n)) ** (1.0 / 3.0))
        h = min(max(h, floor), longest)
        dims, cij, start, order = _bin(points, lo, ext, h)
        if attempt == 0:
            occupied = 0
            for c in range(len(start) - 1):
                if start[c + 1] > start[c]:
                    occupied += 1
            h *= np.sqrt(k / (n / occupied))

    out = np.empty(len(queries))
    best_d = np.empty(k)
    best_i = np.empty(k, dtype=np.int64)
    max_ring = max(dims[0], max(dims[1], dims[2]))
    for qi in range(len(queries)):
        q = queries[qi]
        qx, qy, qz = points[q, 0], points[q, 1], points[q, 2]
        for j in range(k):
            best_d[j] = np.inf
            best_i[j] = -1
        found = 0
        for ring in range(max_ring + 1):
            for ci in range(cij[q, 0] - ring, cij[q, 0] + ring + 1):
                if ci < 0 or ci >= dims[0]:
                    continue
                for cj in range(cij[q, 1] - ring, cij[q, 1] + ring + 1):
                    if cj < 0 or cj >= dims[1]:
                        continue
                    for ck in range(cij[q, 2] - ring, cij[q, 2] + ring + 1):
                        if ck < 0 or ck >= dims[2]:
                            continue
                        on_shell = (
                            abs(ci - cij[q, 0]) == ring
                            or abs(cj - cij[q, 1]) == ring
                            or abs(ck - cij[q, 2]) == ring
                        )
                        if not on_shell:
                            continue
                        c = (ci * dims[1] + cj) * dims[2] + ck
                        for s in range(start[c], start[c + 1]):
                            i = order[s]
                            dx = points[i, 0] - qx
                            dy = points[i, 1] - qy
                            dz = points[i, 2] - qz
                            d = dx * dx + dy * dy + dz * dz
                            if d < best_d[k - 1]:
                                j = k - 1
                                while j > 0 and best_d[j - 1] > d:
                                    best_d[j] = best_d[j - 1]
                                    best_i[j] = best_i[j - 1]
                                    j -= 1
                                best_d[j] = d
                                best_i[j] = i
                                found += 1
            # Every unscanned cell is at least ring * h away from the query.
            reach = ring * h
            if found >= k and best_d[k - 1] <= reach * reach:
                break
        total = 0.0
        for j in range(k):
            total += residuals[best_i[j]]
        out[qi] = total / k
    return out
