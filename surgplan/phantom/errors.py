"""Errors raised by the phantom generator."""

from surgplan.errors import SurgplanError


class PhantomError(SurgplanError, ValueError):
    """A phantom parameter or output folder is invalid; the message names the value."""
