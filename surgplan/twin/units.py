"""Refuse sensor points whose size says they are not in millimetres."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from surgplan.twin.errors import WrongUnitsError

__all__ = ["check_point_units", "UNIT_RATIO", "MIN_SPAN_RATIO"]

#: Points spanning more than UNIT_RATIO times the organ are refused.
UNIT_RATIO = 20.0
#: A first batch spanning less than 1/MIN_SPAN_RATIO of the organ is refused. Points in cm
#: span about 1/15 of the organ (a 30 % swab patch spans about half of it), and a first batch
#: that small could not anchor a global fit anyway.
MIN_SPAN_RATIO = 8.0
#: Millimetres per unit of the common mistakes.
_UNITS = {"metres": 1000.0, "centimetres": 10.0, "inches": 25.4}


def check_point_units(
    points_mm: NDArray[np.float64], organ_extent_mm: float, *, lower: bool = True
) -> None:
    """Raise :class:`WrongUnitsError` when the points' extent is implausible for the organ.

    Parameters
    ----------
    points_mm : numpy.ndarray, shape (N, 3)
        Finite points, supposedly mm.
    organ_extent_mm : float
        Largest bounding-box side of the organ, mm.
    lower : bool, keyword-only
        Also refuse points spanning less than ``1 / MIN_SPAN_RATIO`` of the organ (the first batch;
        a later batch may be one short stroke).
    """
    # per column: a reduction over axis 0 of an (N, 3) array is ~10x slower in NumPy
    extent = max(float(np.ptp(points_mm[:, i])) for i in range(3)) if len(points_mm) > 1 else 0.0
    ratio = extent / organ_extent_mm
    if lower and ratio < 1.0 / MIN_SPAN_RATIO:
        likely = [u for u, f in _UNITS.items() if 1.0 / MIN_SPAN_RATIO <= ratio * f <= UNIT_RATIO]
        guess = " or ".join(likely) if likely else "another unit"
        raise WrongUnitsError(
            f"points span {extent:.3g} but the organ spans {organ_extent_mm:.3g} mm (ratio "
            f"{ratio:.2g} < 1/{MIN_SPAN_RATIO:g}): the points are probably in {guess}, not mm"
        )
    if ratio > UNIT_RATIO:
        raise WrongUnitsError(
            f"points span {extent:.3g} but the organ spans {organ_extent_mm:.3g} mm (ratio "
            f"{ratio:.3g} > {UNIT_RATIO:g}): the points are probably in micrometres or tenths "
            "of mm, or the organ model is in metres"
        )
