"""Exceptions raised by ``biomech``.

Every error a user can cause with bad input is a :class:`BiomechError` (or a subclass)
whose message names the offending file, value or field and what was expected.
``surgplan.errors.PROJECT_ERRORS`` gathers the base classes of all five packages.
"""


class BiomechError(Exception):
    """Base class of every ``biomech`` error caused by bad input or an impossible request."""
