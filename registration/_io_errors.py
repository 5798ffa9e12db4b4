"""The error of ``registration``'s file readers and writers (private; public in ``io``)."""

from registration.errors import RegistrationError

__all__ = ["PointFileError"]


class PointFileError(RegistrationError):
    """A point, markups, mesh or transform file is missing, malformed or has unexpected content."""
