"""Exact JSON encoding of floats and arrays (non-finite floats as strings)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["enc_float", "dec_float", "enc_array", "dec_array", "same"]


def enc_float(x: float) -> float | str:
    """A finite float as itself (``repr`` round-trips exactly), else ``"nan"``/``"inf"``."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def dec_float(x: float | str) -> float:
    """Inverse of :func:`enc_float`."""
    return float(x)


def enc_array(a: np.ndarray) -> Any:
    """Nested lists of :func:`enc_float` values."""
    arr = np.asarray(a, np.float64)
    if arr.ndim == 0:
        return enc_float(arr)
    if np.isfinite(arr).all():
        return arr.tolist()  # the same Python floats, in one C pass
    return [enc_array(x) for x in arr]


def dec_array(x: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Inverse of :func:`enc_array` (``shape`` restores empty arrays' dimensions)."""

    def walk(v: Any) -> Any:
        return [walk(e) for e in v] if isinstance(v, list) else dec_float(v)

    arr = np.array(walk(x), dtype=np.float64)
    return arr.reshape(shape) if shape is not None else arr


def same(a: Any, b: Any) -> bool:
    """Exact equality (arrays elementwise, dataclasses field by field), NaN equal to NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
