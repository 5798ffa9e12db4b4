"""Accuracy metrics against a known truth (the one TRE implementation in the project)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration._points import apply_transform, as_points, as_transform

__all__ = ["target_registration_error"]


def target_registration_error(
    T_model_tracker_estimated: ArrayLike,
    T_tracker_model_true: ArrayLike,
    targets_mm: ArrayLike,
) -> NDArray[np.float64]:
    """Distance between where a registration places each target and where it truly is.

    A target at ``x`` in model space lies at ``T_tracker_model_true @ x`` in tracker space; the
    estimated registration maps that back to ``T_model_tracker_estimated @ T_tracker_model_true
    @ x``. The TRE is the distance of that point from ``x`` (Fitzpatrick, West and Maurer 1998).

    Parameters
    ----------
    T_model_tracker_estimated : array_like, shape (4, 4)
        Estimated registration, tracker (or sensor) space to model space, mm.
    T_tracker_model_true : array_like, shape (4, 4)
        True pose of the model in tracker space, mm.
    targets_mm : array_like, shape (N, 3) or (3,)
        Targets in model space, mm.

    Returns
    -------
    numpy.ndarray, shape (N,)
        TRE of each target in mm (shape ``(1,)`` for a single target).
    """
    T_err = as_transform(
        T_model_tracker_estimated, name="T_model_tracker_estimated"
    ) @ as_transform(T_tracker_model_true, name="T_tracker_model_true")
    targets = as_points(np.atleast_2d(np.asarray(targets_mm, dtype=np.float64)), name="targets_mm")
    return np.linalg.norm(apply_transform(T_err, targets) - targets, axis=1)
