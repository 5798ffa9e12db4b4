"""Pivot calibration of a tracked pointer, stored in the case.

A pointer pivoting about a fixed point keeps its tip still: for every recorded pose
``T_tracker_pointer = [R_i | t_i]``, ``R_i p_tip + t_i = p_pivot``. Stacking the poses gives the
linear least-squares problem ``[R_i  -I] [p_tip; p_pivot] = -t_i`` (the standard algebraic
two-step-free formulation, e.g. Yaniv, "Which pivot calibration?", SPIE 2015, eq. 3); its RMS
is ``sqrt(mean_i |R_i p_tip + t_i - p_pivot|^2)``. The poses must rotate about at least two
axes, else the tip along the unrotated axis is undetermined (:class:`PivotError`).

The result is the case artifact ``pointer/pivot`` (``calibration/pointer_pivot.json``), which
``surgplan live`` reads for the pointer's tip offset.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from surgplan.live.errors import PivotError

__all__ = [
    "PivotResult",
    "PIVOT_RELPATH",
    "MAX_CONDITION",
    "pivot_calibration",
    "read_transforms",
    "store_pivot",
    "load_pivot",
]

PIVOT_RELPATH = "calibration/pointer_pivot.json"
#: Largest condition number of the stacked system accepted (poses rotating about one axis
#: only make it singular).
MAX_CONDITION = 1e6
MIN_POSES = 4


@dataclass(frozen=True)
class PivotResult:
    """A pivot calibration.

    Attributes
    ----------
    tip_offset_mm : tuple of 3 floats
        The tip in the pointer's frame, mm.
    pivot_tracker_mm : tuple of 3 floats
        The pivot point in tracker space, mm.
    rms_mm : float
        RMS distance of the per-pose tip positions from the pivot, mm.
    n_poses : int
        Poses used.
    condition : float
        Condition number of the least-squares system.
    """

    tip_offset_mm: tuple[float, float, float]
    pivot_tracker_mm: tuple[float, float, float]
    rms_mm: float
    n_poses: int
    condition: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def pivot_calibration(transforms: ArrayLike) -> PivotResult:
    """Least-squares pivot calibration of ``(N, 4, 4)`` ``T_tracker_pointer`` poses (mm)."""
    T = np.asarray(transforms, np.float64)
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise PivotError(f"pivot poses must have shape (N, 4, 4), got {T.shape}")
    if len(T) < MIN_POSES:
        raise PivotError(f"pivot calibration needs at least {MIN_POSES} poses, got {len(T)}")
    if not np.all(np.isfinite(T)):
        raise PivotError("pivot poses contain NaN or infinite values")
    n = len(T)
    A = np.zeros((3 * n, 6))
    A[:, :3] = T[:, :3, :3].reshape(3 * n, 3)
    A[:, 3:] = -np.tile(np.eye(3), (n, 1))
    b = -T[:, :3, 3].reshape(3 * n)
    cond = float(np.linalg.cond(A))
    if not np.isfinite(cond) or cond > MAX_CONDITION:
        raise PivotError(
            f"pivot poses do not rotate about two axes (condition number "
            f"{cond:.3g} > {MAX_CONDITION:g}): pivot the pointer in all directions"
        )
    x = np.linalg.lstsq(A, b, rcond=None)[0]
    tip, pivot = x[:3], x[3:]
    res = np.einsum("nij,j->ni", T[:, :3, :3], tip) + T[:, :3, 3] - pivot
    rms = float(np.sqrt(np.mean(np.sum(res**2, axis=1))))
    return PivotResult(tuple(map(float, tip)), tuple(map(float, pivot)), rms, n, cond)


def read_transforms(path: str | os.PathLike[str]) -> np.ndarray:
    """Pointer poses ``T_tracker_pointer`` (N, 4, 4) read from a file.

    ``.npy`` (N, 4, 4); ``.json`` (a list of 4x4 nested lists, or ``{"transforms": [...]}``);
    anything else is text: 16 numbers per matrix, row by row, in any line layout.
    """
    p = Path(path)
    try:
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif p.suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            arr = np.asarray(data["transforms"] if isinstance(data, dict) else data, np.float64)
        else:
            arr = np.loadtxt(p, dtype=np.float64, ndmin=1).ravel()
            if arr.size % 16:
                raise PivotError(f"{p}: {arr.size} numbers is not a whole number of 4x4 matrices")
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise PivotError(f"cannot read pointer transforms from {p}: {exc}") from None
    if arr.size % 16:
        raise PivotError(f"{p}: shape {arr.shape} is not (N, 4, 4)")
    return arr.reshape(-1, 4, 4)


def store_pivot(case_dir: str | os.PathLike[str], result: PivotResult, *, source: str) -> None:
    """Write the calibration into the case (one transaction: file and manifest artifact)."""
    from surgplan.case import Case

    case = Case.open(case_dir)
    with case.transaction() as tx:
        tx.path(PIVOT_RELPATH).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        tx.record_artifact(
            "pointer",
            "pivot",
            PIVOT_RELPATH,
            {"rms_mm": result.rms_mm, "n_poses": result.n_poses, "source": Path(source).name},
        )


def load_pivot(case_dir: str | os.PathLike[str]) -> PivotResult | None:
    """The case's pivot calibration, or ``None`` if it has none."""
    path = Path(case_dir) / PIVOT_RELPATH
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return PivotResult(
            tuple(d["tip_offset_mm"]),
            tuple(d["pivot_tracker_mm"]),
            float(d["rms_mm"]),
            int(d["n_poses"]),
            float(d["condition"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PivotError(f"cannot read the pivot calibration {path}: {exc}") from None
