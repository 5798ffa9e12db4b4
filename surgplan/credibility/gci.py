"""Discretisation error of the coarsest of three meshes: Richardson extrapolation.

The procedure of ASME V&V 20 (Celik et al. 2008, J Fluids Eng 130:078001): with mesh sizes
``h1 < h2 < h3`` (fine, medium, coarse; ``h = (V / N)^(1/3)``), solutions ``f1, f2, f3``,
``r21 = h2 / h1``, ``r32 = h3 / h2``, ``e21 = f2 - f1``, ``e32 = f3 - f2`` and
``s = sign(e32 / e21)``, the observed order solves

    p = |ln|e32 / e21| + ln((r21^p - s) / (r32^p - s))| / ln r21

(fixed-point iteration), and the extrapolated value is ``f_ext = (r21^p f1 - f2) / (r21^p - 1)``.
Here the coarse mesh is the case's own (the twin's), refined twice, so its discretisation
error is ``|f3 - f_ext|``. When the three do not converge monotonically, or the order leaves
``[MIN_ORDER, MAX_ORDER]``, the formal order :data:`ASSUMED_ORDER` of P1 displacements (2) is
used with the finest and the coarse mesh, and said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ASSUMED_ORDER", "Richardson", "coarse_error", "observed_order"]

#: Formal order of P1 nodal displacements (L2 / pointwise away from singularities).
ASSUMED_ORDER = 2.0
MIN_ORDER, MAX_ORDER = 0.5, 4.0
_ITER = 200


@dataclass(frozen=True)
class Richardson:
    """The coarse mesh's discretisation-error estimate.

    Attributes
    ----------
    order : float
        Order used (observed, or :data:`ASSUMED_ORDER`).
    observed : bool
        The order was observed on the three meshes (else assumed: ``note`` says why).
    extrapolated : numpy.ndarray
        Richardson-extrapolated value (same shape as the inputs).
    error : numpy.ndarray
        ``coarse - extrapolated`` (same shape as the inputs).
    note : str
        Why the order was assumed ('' when observed).
    """

    order: float
    observed: bool
    extrapolated: NDArray[np.float64]
    error: NDArray[np.float64]
    note: str = ""


def observed_order(
    f1: float, f2: float, f3: float, h1: float, h2: float, h3: float
) -> tuple[float | None, str]:
    """Observed order of three scalar solutions (module docstring), or ``None`` and why."""
    e21, e32 = f2 - f1, f3 - f2
    if e21 == 0.0 or e32 == 0.0:
        return None, "two meshes gave the same value"
    if e32 / e21 < 0:
        return None, "oscillatory convergence over the three meshes"
    r21, r32 = h2 / h1, h3 / h2
    if r21 <= 1.0 or r32 <= 1.0:
        return None, "mesh sizes are not decreasing"
    p = abs(math.log(abs(e32 / e21))) / math.log(r21)
    for _ in range(_ITER):
        q = math.log((r21**p - 1.0) / (r32**p - 1.0))
        p_new = abs(math.log(abs(e32 / e21)) + q) / math.log(r21)
        converged = abs(p_new - p) < 1e-10
        p = p_new
        if converged or not MIN_ORDER / 2 <= p <= 2 * MAX_ORDER:
            break
    if not MIN_ORDER <= p <= MAX_ORDER:
        return None, f"observed order {p:.2f} outside [{MIN_ORDER:g}, {MAX_ORDER:g}]"
    return p, ""


def coarse_error(
    values: tuple[ArrayLike, ArrayLike, ArrayLike],
    sizes: tuple[float, float, float],
    scalar: tuple[float, float, float],
) -> Richardson:
    """Discretisation error of the coarse mesh's values (module docstring).

    Parameters
    ----------
    values : tuple of array_like
        Fine, medium and coarse values (scalars or vectors of one shape).
    sizes : tuple of float
        Their representative sizes ``h1 < h2 < h3``, mm.
    scalar : tuple of float
        The scalar series whose observed order is used for ``values`` (e.g. magnitudes).
    """
    f1, f2, f3 = (np.asarray(v, np.float64) for v in values)
    h1, h2, h3 = sizes
    order, note = observed_order(*scalar, h1, h2, h3)
    if order is not None:
        rp = (h2 / h1) ** order
        ext = (rp * f1 - f2) / (rp - 1.0)
        return Richardson(order, True, ext, f3 - ext)
    rp = (h3 / h1) ** ASSUMED_ORDER
    ext = (rp * f1 - f3) / (rp - 1.0)
    note = f"{note}: formal order {ASSUMED_ORDER:g} assumed (finest and case meshes)"
    return Richardson(ASSUMED_ORDER, False, ext, f3 - ext, note)
