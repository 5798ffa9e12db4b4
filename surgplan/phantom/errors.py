"""Errors raised by the phantom generator.

The phantom is self-contained (it imports none of ``imaging``, ``biomech``, ``registration``),
so its error derives from :class:`ValueError` rather than from ``surgplan.errors``, whose module
imports every package's base error.
"""


class PhantomError(ValueError):
    """A phantom parameter or output folder is invalid; the message names the value."""
