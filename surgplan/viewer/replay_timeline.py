"""A Qt-free timeline over a recorded live session: :class:`ReplayTimeline`.

The frames are the session's twin states at the times they were logged, seconds since the
session's start (its first message, :func:`surgplan.session_gltf.session_states`), so that the
frame shown at ``t`` is what the surgeon saw ``t`` seconds into the operation: the last state
published at or before ``t`` (:meth:`ReplayTimeline.frame_at`; nothing before the first).

Playback is a position on that time axis moving at ``speed`` times the clock's rate while
playing; the clock is injected (``time.monotonic`` by default) so that tests drive it. The
position stops at the end (and playback pauses there); :meth:`ReplayTimeline.step` jumps to the
next or previous frame's time and pauses.

:func:`load_session_timeline` builds the frames from a session log: each state's organ is the
session twin's surface deformed by the state's amplitudes and posed by its registration
(:func:`surgplan.session_gltf.posed_deformed_points`: what
:meth:`surgplan.twin.Twin.deformed_surface` gave live).
"""

from __future__ import annotations

import bisect
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from surgplan.live.errors import LiveError
from surgplan.viewer.live_frame import LiveFrame, frame_from_state

if TYPE_CHECKING:
    from surgplan.session_gltf import LoggedState
    from surgplan.twin.basis import DeformationBasis

__all__ = ["ReplayError", "ReplayTimeline", "SPEEDS", "load_session_timeline", "logged_frame"]

#: Playback speeds offered by the viewer.
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


class ReplayError(LiveError):
    """A replay request names a bad time, speed or a session without states."""


class ReplayTimeline:
    """Frames at their times, with play / pause / step / speed (module docstring).

    Parameters
    ----------
    frames : sequence of LiveFrame
        The frames; ``frame.time_s`` (s since the session's start) must not decrease.
    clock : callable, optional
        Monotonic seconds (default ``time.monotonic``).
    """

    def __init__(
        self, frames: Sequence[LiveFrame], clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not frames:
            raise ReplayError("a replay needs at least one recorded twin state")
        times = [float(f.time_s) for f in frames]
        t = np.asarray(times)
        if not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
            raise ReplayError("replay frame times must be finite and non-decreasing")
        self.frames = tuple(frames)
        self.times = tuple(times)
        self._clock = clock
        self._speed = 1.0
        self._playing = False
        self._anchor_pos = 0.0
        self._anchor_clock = clock()

    # --- the time axis ------------------------------------------------------------------------

    @property
    def duration_s(self) -> float:
        """Time of the last frame, s since the session's start."""
        return self.times[-1]

    def index_at(self, t_s: float) -> int | None:
        """Index of the frame shown at ``t_s`` (``None`` before the first)."""
        i = bisect.bisect_right(self.times, float(t_s)) - 1
        return None if i < 0 else i

    def frame_at(self, t_s: float) -> LiveFrame | None:
        """The last frame at or before ``t_s`` (``None`` before the first)."""
        i = self.index_at(t_s)
        return None if i is None else self.frames[i]

    # --- playback -----------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        """Whether the position is moving (it stops, and pauses, at the end)."""
        self.position_s  # noqa: B018 - pauses at the end
        return self._playing

    @property
    def speed(self) -> float:
        """Playback rate (1: real time)."""
        return self._speed

    @property
    def position_s(self) -> float:
        """The current position, s since the session's start, in ``[0, duration_s]``."""
        if not self._playing:
            return self._anchor_pos
        pos = self._anchor_pos + (self._clock() - self._anchor_clock) * self._speed
        if pos >= self.duration_s:
            self._playing = False
            self._anchor_pos = self.duration_s
            return self.duration_s
        return pos

    def _anchor(self, pos: float) -> None:
        self._anchor_pos = min(max(float(pos), 0.0), self.duration_s)
        self._anchor_clock = self._clock()

    def current(self) -> LiveFrame | None:
        """The frame at the current position."""
        return self.frame_at(self.position_s)

    def current_index(self) -> int | None:
        """Index of the frame at the current position."""
        return self.index_at(self.position_s)

    def seek(self, t_s: float) -> None:
        """Move to ``t_s`` (clamped to ``[0, duration_s]``); playback goes on if playing."""
        t = float(t_s)
        if not math.isfinite(t):
            raise ReplayError(f"replay time must be a finite number of seconds, got {t_s!r}")
        self._anchor(t)

    def play(self) -> None:
        """Start moving (from the start again when at the end)."""
        pos = self.position_s
        if pos >= self.duration_s:
            pos = 0.0
        self._anchor(pos)
        self._playing = True

    def pause(self) -> None:
        """Stop moving."""
        self._anchor(self.position_s)
        self._playing = False

    def set_speed(self, speed: float) -> None:
        """Change the playback rate (the position is kept)."""
        s = float(speed)
        if not (math.isfinite(s) and s > 0):
            raise ReplayError(f"replay speed must be a positive number, got {speed!r}")
        self._anchor(self.position_s)
        self._speed = s

    def step(self, n: int = 1) -> LiveFrame:
        """Pause and jump ``n`` frames forward (negative: back), clamped to the first and last."""
        self.pause()
        i = self.index_at(self.position_s)
        if i is None:
            i = -1 if n > 0 else 0
        j = min(max(i + int(n), 0), len(self.frames) - 1)
        self._anchor(self.times[j])
        return self.frames[j]


def logged_frame(case_dir: str | os.PathLike[str], session_id: str, at_s: float) -> LiveFrame:
    """The frame of the last state logged at or before ``at_s`` s into session ``session_id``.

    Raises
    ------
    SessionGltfError
        A bad time, a session without states, a time before its first state.
    SessionLogError
        No such session.
    """
    from surgplan.session_gltf import session_basis, session_states, state_at

    states = session_states(case_dir, session_id)
    logged = state_at(states, at_s)
    basis = session_basis(case_dir, states.twin)
    return _frames(basis, [logged], session_id)[0]


def _frames(
    basis: DeformationBasis,
    logged: Sequence[LoggedState],
    session_id: str,
    progress: Callable[[int, int], None] | None = None,
) -> list[LiveFrame]:
    from surgplan.session_gltf import posed_deformed_points
    from surgplan.twin import TwinState

    faces = np.asarray(basis.faces, np.int64)
    rest = np.asarray(basis.vertices_mm, np.float64)
    out = []
    for ls in logged:
        state = TwinState.from_dict(ls.state)
        a = np.asarray(state.amplitudes, np.float64)
        if len(a) not in (0, basis.n_modes):
            raise ReplayError(
                f"session {session_id}'s states have {len(a)} amplitudes but its twin rebuilt "
                f"from the recorded spec has {basis.n_modes} modes: the case's model changed "
                "since the session"
            )
        pts = posed_deformed_points(
            basis.vertices_mm, a, basis.surface_modes, state.T_tracker_model
        )
        out.append(
            frame_from_state(state, pts, faces, update=ls.update, time_s=ls.time_s, rest_mm=rest)
        )
        if progress is not None:
            progress(len(out), len(logged))
    return out


def load_session_timeline(
    case_dir: str | os.PathLike[str],
    session_id: str,
    *,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayTimeline:
    """A timeline over every twin state of session ``session_id`` of the case.

    ``progress(done, total)`` is called after each state's frame is built (the twin's basis
    is rebuilt first, from the session's recorded spec).

    Raises
    ------
    ReplayError
        A session without states, or whose states no longer fit the case's twin.
    SessionLogError
        No such session, or not a session log.
    """
    from surgplan.session_gltf import session_basis, session_states

    states = session_states(case_dir, session_id)
    if not states.states:
        raise ReplayError(f"session {session_id} logged no twin state: nothing to replay")
    basis = session_basis(case_dir, states.twin)
    frames = _frames(basis, states.states, session_id, progress)
    return ReplayTimeline(frames, clock=clock)
