"""Errors of the credibility report (subclasses of :class:`surgplan.errors.SurgplanError`)."""

from __future__ import annotations

from surgplan.errors import SurgplanError

__all__ = ["ContextError", "CredibilityError"]


class CredibilityError(SurgplanError):
    """The credibility report cannot be built for this case or these options."""


class ContextError(CredibilityError):
    """The context-of-use file is missing, unparsable, or a field has an invalid value."""
