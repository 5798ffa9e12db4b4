"""The headset-to-tracker calibration ``T_xr_tracker``: from paired points, kept in the case.

The overlay puts the live twin in the headset's world by ``T_xr_tracker @ T_tracker_model``.
``T_xr_tracker`` comes from points measured in both spaces: the same physical points (e.g.
fiducials on the table, or a tracked tool's tip touched by the controller) in the headset's
reference space and in the tracker's, mm. The rigid least-squares fit
(:func:`registration.register_paired_points`, Arun / Umeyama) is checked before it is kept:

- at least :data:`MIN_POINTS` pairs, not collinear (a rotation about their line would be free);
- the fiducial registration error (RMS residual) at most :data:`MAX_FRE_MM`, and no single
  residual above :data:`MAX_RESIDUAL_MM`: larger means the pairs do not correspond (a swapped
  pair, points in other units or another space), and the overlay would be drawn in the wrong
  place; it is refused with the figures.

The calibration is written to ``calibration/xr_tracker.json`` in one case transaction (with a
``calibration/xr_tracker`` artifact), and read back by :func:`load_calibration`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from surgplan.errors import SurgplanError

__all__ = [
    "CALIBRATION_RELPATH",
    "MAX_FRE_MM",
    "MAX_RESIDUAL_MM",
    "MIN_POINTS",
    "XrCalibration",
    "XrCalibrationError",
    "compute_calibration",
    "load_calibration",
    "store_calibration",
]

CALIBRATION_RELPATH = "calibration/xr_tracker.json"
#: Fewest point pairs accepted.
MIN_POINTS = 4
#: Largest RMS residual accepted, mm.
MAX_FRE_MM = 5.0
#: Largest single residual accepted, mm.
MAX_RESIDUAL_MM = 10.0


class XrCalibrationError(SurgplanError):
    """The pairs cannot give a trustworthy calibration, or the stored one cannot be read."""


@dataclass(frozen=True)
class XrCalibration:
    """A headset-to-tracker calibration.

    Attributes
    ----------
    T_xr_tracker : numpy.ndarray
        4x4 rigid transform mapping tracker points into the headset's reference space, mm.
    fre_mm : float
        RMS residual of the pairs, mm.
    max_residual_mm : float
        Largest residual, mm.
    n_points : int
        Pairs used.
    """

    T_xr_tracker: np.ndarray
    fre_mm: float
    max_residual_mm: float
    n_points: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "T_xr_tracker": np.asarray(self.T_xr_tracker, float).tolist(),
            "fre_mm": self.fre_mm,
            "max_residual_mm": self.max_residual_mm,
            "n_points": self.n_points,
        }


def compute_calibration(
    headset_points_mm: ArrayLike, tracker_points_mm: ArrayLike
) -> XrCalibration:
    """Fit ``T_xr_tracker`` to paired points and check it (module docstring).

    Parameters
    ----------
    headset_points_mm : array_like, shape (N, 3)
        The points in the headset's reference space, mm.
    tracker_points_mm : array_like, shape (N, 3)
        The same points in tracker space, same order, mm.

    Raises
    ------
    XrCalibrationError
        Too few, mismatched, non-finite or collinear pairs, or residuals above the limits.
    """
    from registration import register_paired_points
    from registration.errors import RegistrationError

    xr_points = np.asarray(headset_points_mm, float)
    tracker = np.asarray(tracker_points_mm, float)
    if xr_points.shape != tracker.shape or xr_points.ndim != 2 or xr_points.shape[1:] != (3,):
        raise XrCalibrationError(
            f"headset and tracker points must both be (N, 3) in the same order, got "
            f"{xr_points.shape} and {tracker.shape}"
        )
    if len(xr_points) < MIN_POINTS:
        raise XrCalibrationError(
            f"calibration needs at least {MIN_POINTS} point pairs, got {len(xr_points)}"
        )
    if not (np.isfinite(xr_points).all() and np.isfinite(tracker).all()):
        raise XrCalibrationError("calibration points hold NaN or infinite coordinates")
    try:
        fit = register_paired_points(xr_points, tracker)
    except RegistrationError as error:
        raise XrCalibrationError(f"calibration points are degenerate: {error}") from None
    worst = float(np.max(fit.residuals_mm))
    if fit.fre_mm > MAX_FRE_MM or worst > MAX_RESIDUAL_MM:
        raise XrCalibrationError(
            f"calibration refused: RMS residual {fit.fre_mm:.2f} mm (limit {MAX_FRE_MM:g}), "
            f"worst {worst:.2f} mm (limit {MAX_RESIDUAL_MM:g}): the pairs do not correspond "
            "(order, units or space)"
        )
    return XrCalibration(
        np.asarray(fit.T_fixed_moving, float), float(fit.fre_mm), worst, len(xr_points)
    )


def store_calibration(case_dir: str | os.PathLike[str], calibration: XrCalibration) -> None:
    """Write the calibration into the case (file and artifact in one transaction)."""
    from surgplan.case import Case

    case = Case.open(case_dir)
    with case.transaction() as tx:
        tx.path(CALIBRATION_RELPATH).write_text(json.dumps(calibration.to_dict(), indent=2) + "\n")
        tx.record_artifact(
            "calibration",
            "xr_tracker",
            CALIBRATION_RELPATH,
            {"fre_mm": calibration.fre_mm, "n_points": calibration.n_points},
        )


def load_calibration(case_dir: str | os.PathLike[str]) -> XrCalibration | None:
    """The case's headset-to-tracker calibration, or ``None`` when it has none.

    Raises
    ------
    XrCalibrationError
        The stored file is unreadable or not a rigid transform.
    """
    path = Path(case_dir) / CALIBRATION_RELPATH
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        T = np.asarray(d["T_xr_tracker"], float)
        calibration = XrCalibration(
            T, float(d["fre_mm"]), float(d["max_residual_mm"]), int(d["n_points"])
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise XrCalibrationError(f"cannot read the headset calibration {path}: {error}") from None
    R = T[:3, :3] if T.shape == (4, 4) else np.zeros((3, 3))
    if (
        T.shape != (4, 4)
        or not np.isfinite(T).all()
        or not np.allclose(R @ R.T, np.eye(3), atol=1e-6)
        or not np.allclose(T[3], [0, 0, 0, 1])
    ):
        raise XrCalibrationError(f"{path}: T_xr_tracker is not a 4x4 rigid transform")
    return calibration
