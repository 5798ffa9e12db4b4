"""The OpenXR session state machine (``XrSessionState``) with its legal transitions checked.

The runtime drives the states through ``XrEventDataSessionStateChanged`` events; the application
answers some of them (OpenXR 1.0 spec, section "Session Lifecycle"):

========================  ===========================================================
state reached             what the application does
========================  ===========================================================
``IDLE``                  nothing (wait for ``READY``, or exit when asked)
``READY``                 ``xrBeginSession``: the session is *running*, frames start
``SYNCHRONIZED``          run the frame loop, submit no layers
``VISIBLE``               run the frame loop and render (no input focus)
``FOCUSED``               render and read controller input
``STOPPING``              ``xrEndSession``: the session is no longer running
``LOSS_PENDING``          stop, destroy the session (and the instance)
``EXITING``               destroy the session (the user or the runtime asked to quit)
========================  ===========================================================

The legal transitions are those of the spec's lifecycle diagram; ``LOSS_PENDING`` may follow
any state. :class:`SessionStateMachine` refuses any other transition with a
:class:`SessionStateError` naming both states.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from vr.errors import VrError

__all__ = ["SessionState", "SessionStateError", "SessionStateMachine", "LEGAL_TRANSITIONS"]


class SessionState(enum.IntEnum):
    """``XrSessionState`` values (the numbers are the spec's)."""

    UNKNOWN = 0
    IDLE = 1
    READY = 2
    SYNCHRONIZED = 3
    VISIBLE = 4
    FOCUSED = 5
    STOPPING = 6
    LOSS_PENDING = 7
    EXITING = 8


S = SessionState

#: Legal ``from -> {to}`` transitions (``LOSS_PENDING`` is reachable from every live state).
LEGAL_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.UNKNOWN: frozenset({S.IDLE}),
    S.IDLE: frozenset({S.READY, S.EXITING}),
    S.READY: frozenset({S.SYNCHRONIZED}),
    S.SYNCHRONIZED: frozenset({S.VISIBLE, S.STOPPING}),
    S.VISIBLE: frozenset({S.FOCUSED, S.SYNCHRONIZED}),
    S.FOCUSED: frozenset({S.VISIBLE}),
    S.STOPPING: frozenset({S.IDLE}),
    S.LOSS_PENDING: frozenset(),
    S.EXITING: frozenset(),
}
for _state in (S.UNKNOWN, S.IDLE, S.READY, S.SYNCHRONIZED, S.VISIBLE, S.FOCUSED, S.STOPPING):
    LEGAL_TRANSITIONS[_state] = LEGAL_TRANSITIONS[_state] | {S.LOSS_PENDING}


class SessionStateError(VrError):
    """The runtime reported a session state that cannot follow the current one."""


@dataclass
class SessionStateMachine:
    """Tracks the session state and whether the session is running (begun, not yet ended).

    Attributes
    ----------
    state : SessionState
        The current state (``UNKNOWN`` before the first event).
    running : bool
        ``xrBeginSession`` succeeded and ``xrEndSession`` has not been called yet.
    history : list of SessionState
        Every state reached, in order.
    """

    state: SessionState = SessionState.UNKNOWN
    running: bool = False
    history: list[SessionState] = field(default_factory=list)

    def advance(self, new_state: SessionState | int) -> SessionState:
        """Apply a state-change event.

        Raises
        ------
        SessionStateError
            ``new_state`` is not a legal successor of the current state, or not a state.
        """
        try:
            target = SessionState(int(new_state))
        except ValueError:
            raise SessionStateError(f"unknown XrSessionState value {new_state!r}") from None
        if target not in LEGAL_TRANSITIONS[self.state]:
            legal = ", ".join(s.name for s in sorted(LEGAL_TRANSITIONS[self.state])) or "none"
            raise SessionStateError(
                f"illegal session state transition {self.state.name} -> {target.name} "
                f"(legal: {legal})"
            )
        self.state = target
        self.history.append(target)
        return target

    def mark_begun(self) -> None:
        """Record a successful ``xrBeginSession`` (only legal in ``READY``)."""
        if self.state is not SessionState.READY or self.running:
            raise SessionStateError(f"xrBeginSession is only legal in READY, not {self.state.name}")
        self.running = True

    def mark_ended(self) -> None:
        """Record ``xrEndSession`` (legal only while running)."""
        if not self.running:
            raise SessionStateError(
                f"xrEndSession without a running session (in {self.state.name})"
            )
        self.running = False

    @property
    def needs_begin(self) -> bool:
        """The application must call ``xrBeginSession`` now."""
        return self.state is SessionState.READY and not self.running

    @property
    def needs_end(self) -> bool:
        """The application must call ``xrEndSession`` now."""
        return self.state is SessionState.STOPPING and self.running

    @property
    def should_render(self) -> bool:
        """Layers are shown (``VISIBLE`` or ``FOCUSED``)."""
        return self.running and self.state in (SessionState.VISIBLE, SessionState.FOCUSED)

    @property
    def focused(self) -> bool:
        """Input is delivered (``FOCUSED``)."""
        return self.state is SessionState.FOCUSED

    @property
    def finished(self) -> bool:
        """The session is over: destroy it (``EXITING`` or ``LOSS_PENDING``)."""
        return self.state in (SessionState.EXITING, SessionState.LOSS_PENDING)
