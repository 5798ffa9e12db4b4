"""Errors of the live session (all subclass :class:`surgplan.errors.SurgplanError`)."""

from __future__ import annotations

from surgplan.errors import SurgplanError

__all__ = ["LiveError", "MessageError", "SessionLogError", "PivotError"]


class LiveError(SurgplanError):
    """The live session cannot start, or cannot go on, with the given input."""


class MessageError(LiveError):
    """An OpenIGTLink message is malformed or unacceptable.

    Parameters
    ----------
    problem : str
        A short machine-readable name of the problem: ``"header_size"``, ``"version"``,
        ``"type"``, ``"device_name"``, ``"body_size"``, ``"crc"``, ``"truncated"``,
        ``"layout"``, ``"nan"``, ``"encoding"``, ``"frame"``, ``"device"``.
    message : str
        What was wrong, with the offending value and what was expected.
    fatal : bool
        Whether the byte stream can no longer be trusted (bad header, size over the cap, bad
        CRC, truncation): the server closes that client. A non-fatal error rejects one message
        whose framing was intact (unknown type, NaN coordinates, bad body layout).
    """

    def __init__(self, problem: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.problem = problem
        self.fatal = fatal


class SessionLogError(LiveError):
    """A session log is missing, of another schema, or inconsistent."""


class PivotError(LiveError):
    """A pivot recording is unreadable or too poorly conditioned to calibrate a pointer."""
