"""Closed polygons along the pixel edges of a 2-D binary mask (for RTSTRUCT contours).

Each polygon follows the outline of the union of the mask's pixel squares, so its enclosed area
is exactly the number of pixels (times the pixel area), and filling the polygons by the
even-odd rule at pixel centres gives the mask back exactly: pixel centres never lie on a
polygon. Outer boundaries and hole boundaries are separate polygons (the XOR representation of
DICOM PS3.3 C.8.8.6.3). Where two pixels touch only at a corner, they are traced as separate
polygons (4-connected foreground), which touch at that corner.

Corner coordinates: pixel ``(row j, column i)`` spans corners ``x`` in ``[i, i + 1]`` and ``y``
in ``[j, j + 1]``; the continuous pixel index of a corner is ``(x - 0.5, y - 0.5)``.
"""

from __future__ import annotations

import numpy as np

#: Unit steps (dx, dy) of the four edge directions, y pointing down the rows.
_STEPS = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}  # east, south, west, north
_RIGHT, _LEFT = 1, 3  # direction offsets (mod 4) of a right and a left turn (y down)


def _boundary_edges(mask: np.ndarray) -> set[tuple[int, int, int]]:
    """Directed boundary edges ``(x, y, direction)`` with the foreground on their right."""
    padded = np.pad(mask.astype(bool), 1)
    core = padded[1:-1, 1:-1]
    rows, cols = np.nonzero(core & ~padded[:-2, 1:-1])  # background above: top edge, east
    edges = {(int(i), int(j), 0) for j, i in zip(rows, cols, strict=True)}
    rows, cols = np.nonzero(core & ~padded[1:-1, 2:])  # background right: right edge, south
    edges |= {(int(i) + 1, int(j), 1) for j, i in zip(rows, cols, strict=True)}
    rows, cols = np.nonzero(core & ~padded[2:, 1:-1])  # background below: bottom edge, west
    edges |= {(int(i) + 1, int(j) + 1, 2) for j, i in zip(rows, cols, strict=True)}
    rows, cols = np.nonzero(core & ~padded[1:-1, :-2])  # background left: left edge, north
    edges |= {(int(i), int(j) + 1, 3) for j, i in zip(rows, cols, strict=True)}
    return edges


def _trace(start: tuple[int, int, int], edges: set[tuple[int, int, int]]) -> np.ndarray:
    """Follow edges from ``start`` (already removed from ``edges``) back to it; the corners."""
    path = [start]
    x, y, d = start
    while True:
        x, y = x + _STEPS[d][0], y + _STEPS[d][1]
        # Prefer a right turn: at a corner shared by two diagonal pixels this keeps tracing the
        # same pixel, so diagonal neighbours end up in separate polygons.
        for turn in (_RIGHT, 0, _LEFT):
            candidate = (x, y, (d + turn) % 4)
            if candidate == start:
                directions = [edge[2] for edge in path]
                incoming = directions[-1:] + directions[:-1]
                corners = [p[:2] for p, a in zip(path, incoming, strict=True) if p[2] != a]
                return np.array(corners, dtype=np.int64)
            if candidate in edges:
                edges.remove(candidate)
                path.append(candidate)
                d = candidate[2]
                break
        else:  # pragma: no cover - every corner of a pixel outline has an outgoing edge
            raise AssertionError(f"open boundary at corner {(x, y)}")


def mask_outline_polygons(mask: np.ndarray) -> list[np.ndarray]:
    """Closed polygons along the pixel edges of a 2-D binary mask.

    Parameters
    ----------
    mask
        ``(rows, columns)`` array, non-zero inside.

    Returns
    -------
    list of numpy.ndarray
        One ``(N, 2)`` int64 array of corner coordinates ``(x, y)`` per polygon (first corner
        not repeated, collinear corners dropped), in a deterministic order. Outer boundaries run
        clockwise on screen (rows down), hole boundaries anticlockwise.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    edges = _boundary_edges(mask)
    polygons = []
    for edge in sorted(edges, key=lambda e: (e[1], e[0], e[2])):
        if edge in edges:
            edges.remove(edge)
            polygons.append(_trace(edge, edges))
    return polygons


def polygon_area(corners: np.ndarray) -> float:
    """Signed area (shoelace formula) of a polygon in corner units; > 0 clockwise on screen."""
    x, y = corners[:, 0].astype(float), corners[:, 1].astype(float)
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
