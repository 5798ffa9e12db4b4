"""Exceptions raised by ``vr``.

Every error a user can cause with bad input is a :class:`VrError` (or a subclass)
whose message names the offending file, value or field and what was expected.
``surgplan.errors.PROJECT_ERRORS`` gathers the base classes of all five packages.
"""


class VrError(Exception):
    """Base class of every ``vr`` error caused by bad input or an impossible request."""
