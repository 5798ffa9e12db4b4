"""Farthest-point sampling of point sets (the one implementation in the project)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration._points import as_points

__all__ = ["farthest_point_sample"]


def farthest_point_sample(
    points: ArrayLike,
    n: int | None = None,
    *,
    start: ArrayLike | None = None,
    spacing_mm: float | None = None,
) -> NDArray[np.intp]:
    """Indices of well-spread points chosen greedily by farthest-point sampling.

    Each new sample is the point farthest (Euclidean) from all samples chosen so far
    (Gonzalez 1985, a 2-approximation of the k-centre problem).

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Candidate points in mm.
    n : int, optional
        Number of samples (at most ``N``). Give ``n``, ``spacing_mm`` or both.
    start : array_like, shape (3,), optional
        Position in mm; the first sample is the point nearest to it (default: ``points[0]``).
    spacing_mm : float, optional
        Stop once every point lies within this distance (mm) of a sample.

    Returns
    -------
    numpy.ndarray of int, shape (M,)
        Indices into ``points``, in the order chosen.
    """
    pts = as_points(points)
    if n is None and spacing_mm is None:
        raise ValueError("farthest_point_sample needs n, spacing_mm or both")
    if n is not None and n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if spacing_mm is not None and not spacing_mm > 0:
        raise ValueError(f"spacing_mm must be positive, got {spacing_mm}")
    limit = len(pts) if n is None else min(int(n), len(pts))
    first = 0 if start is None else int(np.argmin(np.linalg.norm(pts - np.asarray(start), axis=1)))
    chosen = [first]
    dist = np.linalg.norm(pts - pts[first], axis=1)
    while len(chosen) < limit and (spacing_mm is None or dist.max() > spacing_mm):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(pts - pts[chosen[-1]], axis=1))
    return np.asarray(chosen, dtype=np.intp)
