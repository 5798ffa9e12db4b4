"""Length units of measured points: conversion to mm and a check of their extent against the model.

Tracked points are LPS millimetres by contract, but exports from trackers and scripts arrive in
metres, centimetres or inches. Registration cannot tell: a liver's swabs in metres span about
0.1, are "fitted" at a tiny RMS and flagged only as poorly constrained. The extent of the points
is compared with the model's: measured points lie on the organ, so they span at most about the
organ and at least a few percent of it. A ratio far outside :data:`EXTENT_RATIO_RANGE` is refused
with the units that would explain it, unless the caller states the units.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration.errors import RegistrationError

__all__ = [
    "EXTENT_RATIO_RANGE",
    "MM_PER_UNIT",
    "PointUnitsError",
    "check_point_extent",
    "extent_mm",
    "to_mm",
]

#: Millimetres per unit of the ``--units`` choices.
MM_PER_UNIT = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4}
#: The units' names in messages.
UNIT_NAMES = {"mm": "millimetres", "cm": "centimetres", "m": "metres", "in": "inches"}
#: Accepted range of (extent of the points) / (extent of the model). Swabs over 10 % of a
#: liver span about a third of it; a patch cannot span more than the organ it lies on (the
#: upper bound leaves room for outliers and a poor start pose).
EXTENT_RATIO_RANGE = (1.0 / 8.0, 4.0)


class PointUnitsError(RegistrationError):
    """The points' extent does not fit the model's in millimetres (points in other units)."""


def to_mm(points: ArrayLike, units: str) -> NDArray[np.float64]:
    """Points given in ``units`` converted to millimetres.

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Coordinates in ``units``.
    units : {"mm", "cm", "m", "in"}
        Their length unit.

    Returns
    -------
    numpy.ndarray, shape (N, 3)
        Coordinates in mm.
    """
    if units not in MM_PER_UNIT:
        raise PointUnitsError(f"units must be one of {sorted(MM_PER_UNIT)}, got {units!r}")
    return np.asarray(points, dtype=np.float64) * MM_PER_UNIT[units]


def extent_mm(points: ArrayLike) -> float:
    """Diagonal of the axis-aligned box of the finite points (robust: 1st-99th percentile)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < 2:
        return 0.0
    if len(pts) >= 100:
        lo, hi = np.percentile(pts, [1.0, 99.0], axis=0)
    else:
        lo, hi = pts.min(axis=0), pts.max(axis=0)
    return float(np.linalg.norm(hi - lo))


def check_point_extent(points: ArrayLike, model_vertices_mm: ArrayLike, *, name: str) -> None:
    """Refuse points whose extent does not fit the model's in millimetres.

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Measured points, supposedly mm.
    model_vertices_mm : array_like, shape (M, 3)
        The model surface's vertices, mm.
    name : str
        The points file, for the message.

    Raises
    ------
    PointUnitsError
        Naming both extents and the units (cm, m, in) that would make them fit.
    """
    pts_extent = extent_mm(points)
    model_extent = extent_mm(model_vertices_mm)
    if model_extent <= 0.0 or pts_extent <= 0.0:
        return
    ratio = pts_extent / model_extent
    lo, hi = EXTENT_RATIO_RANGE
    if lo <= ratio <= hi:
        return
    fits = [UNIT_NAMES[u] for u, mm in MM_PER_UNIT.items() if u != "mm" and lo <= ratio * mm <= hi]
    hint = f"they are probably in {' or '.join(fits)}" if fits else "no length unit explains it"
    raise PointUnitsError(
        f"{name}: the points span {pts_extent:.4g} units but the model spans {model_extent:.4g} "
        f"mm (ratio {ratio:.3g}; points on the organ span {lo:g} to {hi:g} of it): {hint}. "
        "Give --units cm|m|in to convert them, or --units mm if they really are millimetres"
    )
