"""Errors of the twin (all subclass :class:`surgplan.errors.SurgplanError`)."""

from __future__ import annotations

from surgplan.errors import SurgplanError

__all__ = ["TwinError", "BasisError", "BasisMismatchError", "PointsError", "WrongUnitsError"]


class TwinError(SurgplanError):
    """The twin cannot be built or updated with the given input."""


class BasisError(TwinError):
    """A deformation basis has inconsistent shapes, non-finite values or implausible units."""


class BasisMismatchError(TwinError):
    """A basis or reduced model was built for another mesh than the one given."""


class PointsError(TwinError):
    """Sensor points are unusable (wrong shape, all NaN, too few)."""


class WrongUnitsError(PointsError):
    """Sensor points span a size incompatible with the organ in mm (metres, cm, inches?)."""
