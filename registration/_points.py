"""Validation of point arrays at the package boundary (private)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration.errors import RegistrationError

__all__ = ["InsufficientPointsError", "as_points", "clean_points", "as_transform"]


class InsufficientPointsError(RegistrationError):
    """Too few usable points remain for the requested registration."""


def as_points(points: ArrayLike, *, name: str = "points") -> NDArray[np.float64]:
    """Return ``points`` as a ``(N, 3)`` float64 array or raise a clear error.

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Point coordinates in mm.
    name : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray, shape (N, 3)
        A float64 copy-free view where possible.
    """
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RegistrationError(f"{name} must be numeric (N, 3) coordinates in mm: {exc}") from exc
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise RegistrationError(f"{name} must have shape (N, 3), got {arr.shape}")
    return arr


def clean_points(
    points: ArrayLike, *, name: str = "points", min_points: int = 1
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Drop rows holding NaN or infinite coordinates.

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Point coordinates in mm.
    name : str
        Name used in error messages.
    min_points : int
        Fewest finite points accepted.

    Returns
    -------
    clean : numpy.ndarray, shape (M, 3)
        The finite rows.
    keep : numpy.ndarray of bool, shape (N,)
        Which input rows were kept; ``N - keep.sum()`` were dropped.

    Raises
    ------
    InsufficientPointsError
        If fewer than ``min_points`` finite rows remain.
    """
    arr = as_points(points, name=name)
    keep = np.all(np.isfinite(arr), axis=1)
    clean = arr[keep]
    if len(clean) < min_points:
        raise InsufficientPointsError(
            f"{name}: {len(clean)} finite points remain after dropping "
            f"{int((~keep).sum())} NaN/infinite rows of {len(arr)}; at least {min_points} needed"
        )
    return clean, keep


def as_transform(T: ArrayLike, *, name: str = "T") -> NDArray[np.float64]:
    """Return ``T`` as a finite 4x4 float64 homogeneous matrix or raise.

    Parameters
    ----------
    T : array_like, shape (4, 4)
        Homogeneous transform (translation in mm).
    name : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray, shape (4, 4)
    """
    arr = np.asarray(T, dtype=np.float64)
    if arr.shape != (4, 4) or not np.all(np.isfinite(arr)):
        raise RegistrationError(f"{name} must be a finite 4x4 matrix, got shape {arr.shape}")
    if not np.allclose(arr[3], [0.0, 0.0, 0.0, 1.0]):
        raise RegistrationError(f"{name} last row must be [0, 0, 0, 1], got {arr[3].tolist()}")
    return arr


def apply_transform(T: NDArray[np.float64], points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map ``(N, 3)`` points by the 4x4 transform ``T`` (``T @ [p, 1]``).

    Parameters
    ----------
    T : numpy.ndarray, shape (4, 4)
        Transform ``T_to_from``; translation in mm.
    points : numpy.ndarray, shape (N, 3)
        Points in the ``from`` space, mm.

    Returns
    -------
    numpy.ndarray, shape (N, 3)
        The points in the ``to`` space, mm.
    """
    return points @ T[:3, :3].T + T[:3, 3]


def rms_distance_mm(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """RMS distance between corresponding rows of two (N, 3) point sets, mm."""
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1))))
