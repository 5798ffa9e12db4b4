"""Compiled (Numba) construction of the real-time voxel structures of a surface model."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def facing_sheet_guesses(
    grid: np.ndarray, vertices: np.ndarray, normals: np.ndarray, origin: np.ndarray, h: float
) -> np.ndarray:
    """Per voxel, the nearest of its 26 neighbours' guesses that faces away from its own.

    Parameters
    ----------
    grid : numpy.ndarray of int32, shape (nx, ny, nz)
        Nearest vertex of each voxel centre, ``-1`` outside the band.
    vertices, normals : numpy.ndarray, shape (V, 3)
        Vertex positions (mm) and unit normals.
    origin : numpy.ndarray, shape (3,)
        Corner of voxel ``(0, 0, 0)``, mm.
    h : float
        Voxel edge, mm.

    Returns
    -------
    numpy.ndarray of int32, shape (nx, ny, nz)
        The vertex nearest the voxel centre among the neighbours' guesses whose normal has a
        negative dot product with the voxel's own guess's; ``-1`` where there is none.
    """
    nx, ny, nz = grid.shape
    out = np.full(grid.shape, -1, dtype=np.int32)
    for i in range(nx):
        for j in range(ny):
            for k in range(nz):
                own = grid[i, j, k]
                if own < 0:
                    continue
                cx = origin[0] + (i + 0.5) * h
                cy = origin[1] + (j + 0.5) * h
                cz = origin[2] + (k + 0.5) * h
                best = -1
                best_d = np.inf
                for di in range(-1, 2):
                    a = i + di
                    if a < 0 or a >= nx:
                        continue
                    for dj in range(-1, 2):
                        b = j + dj
                        if b < 0 or b >= ny:
                            continue
                        for dk in range(-1, 2):
                            c = k + dk
                            if c < 0 or c >= nz:
                                continue
                            u = grid[a, b, c]
                            if u < 0 or u == own:
                                continue
                            dot = (
                                normals[u, 0] * normals[own, 0]
                                + normals[u, 1] * normals[own, 1]
                                + normals[u, 2] * normals[own, 2]
                            )
                            if dot >= 0.0:
                                continue
                            dx = cx - vertices[u, 0]
                            dy = cy - vertices[u, 1]
                            dz = cz - vertices[u, 2]
                            d = dx * dx + dy * dy + dz * dz
                            if d < best_d:
                                best_d = d
                                best = u
                out[i, j, k] = best
    return out


@njit(cache=True, nogil=True)
def nearest_vertex_grid(
    vertices: np.ndarray, origin: np.ndarray, shape: np.ndarray, h: float, radius: float
) -> np.ndarray:
    """Nearest vertex of every voxel centre within ``radius`` of some vertex.

    Each vertex writes itself into the voxels of its ball where it is nearer than what is
    there. Exact: a voxel centre with any vertex within ``radius`` gets its nearest vertex.

    Parameters
    ----------
    vertices : numpy.ndarray, shape (V, 3)
        Vertex positions, mm.
    origin : numpy.ndarray, shape (3,)
        Corner of voxel ``(0, 0, 0)``, mm.
    shape : numpy.ndarray of int64, shape (3,)
        Grid dimensions.
    h : float
        Voxel edge, mm.
    radius : float
        Ball radius, mm.

    Returns
    -------
    numpy.ndarray of int32, shape ``shape``
        Vertex index, ``-1`` where no vertex is within ``radius``.
    """
    nx, ny, nz = shape[0], shape[1], shape[2]
    grid = np.full((nx, ny, nz), -1, dtype=np.int32)
    best = np.full((nx, ny, nz), np.inf, dtype=np.float32)
    r2 = radius * radius
    reach = int(np.ceil(radius / h))
    for v in range(vertices.shape[0]):
        x, y, z = vertices[v, 0], vertices[v, 1], vertices[v, 2]
        ci = int(np.floor((x - origin[0]) / h))
        cj = int(np.floor((y - origin[1]) / h))
        ck = int(np.floor((z - origin[2]) / h))
        for i in range(max(ci - reach, 0), min(ci + reach + 1, nx)):
            dx = origin[0] + (i + 0.5) * h - x
            dx2 = dx * dx
            if dx2 > r2:
                continue
            for j in range(max(cj - reach, 0), min(cj + reach + 1, ny)):
                dy = origin[1] + (j + 0.5) * h - y
                dxy2 = dx2 + dy * dy
                if dxy2 > r2:
                    continue
                for k in range(max(ck - reach, 0), min(ck + reach + 1, nz)):
                    dz = origin[2] + (k + 0.5) * h - z
                    d = dxy2 + dz * dz
                    if d <= r2 and d < best[i, j, k]:
                        best[i, j, k] = d
                        grid[i, j, k] = v
    return grid
