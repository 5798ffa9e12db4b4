"""The one frame loop every backend runs, over the small :class:`Backend` protocol.

Per iteration (the OpenXR order): poll events and drive the session state machine
(:class:`~vr.session_state.SessionStateMachine`; ``xrBeginSession`` on ``READY``,
``xrEndSession`` on ``STOPPING``); while the session runs:
``wait_frame`` (predicted display time), ``begin_frame``, ``locate_views`` for that time, render
each eye, ``end_frame`` with a projection layer and a quad layer for the text (no layers when
the runtime says not to render). After ``max_frames`` submitted frames it asks the runtime to
exit and follows the states down to ``EXITING``. :func:`teardown` leaves any state cleanly, also
when the runtime has gone away (:class:`~vr.layers.RuntimeLostError`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vr.errors import VrError
from vr.layers import (
    FrameTiming,
    LocatedViews,
    ProjectionLayer,
    QuadLayer,
    RuntimeLostError,
    SwapchainImage,
)
from vr.scene import VrScene
from vr.session_state import SessionState, SessionStateMachine
from vr.text_quad import text_quad
from vr.views import EyeView

__all__ = ["Backend", "EyeRenderer", "FrameRecord", "LoopResult", "run_frame_loop", "teardown"]


class Backend(Protocol):
    """What a headset backend provides to the loop (one method per OpenXR call it wraps)."""

    def poll_events(self) -> Sequence[SessionState]:
        """Session states reported since the last poll (``xrPollEvent``), in order."""
        ...

    def wait_idle(self) -> None:
        """Block briefly while the session is not running (waiting for events)."""
        ...

    def begin_session(self) -> None:
        """``xrBeginSession``."""
        ...

    def end_session(self) -> None:
        """``xrEndSession``."""
        ...

    def request_exit(self) -> None:
        """``xrRequestExitSession``."""
        ...

    def wait_frame(self) -> FrameTiming:
        """``xrWaitFrame``."""
        ...

    def begin_frame(self) -> None:
        """``xrBeginFrame``."""
        ...

    def locate_views(self, display_time_s: float) -> LocatedViews:
        """``xrLocateViews`` (and the VIEW space) for a display time."""
        ...

    def end_frame(
        self, display_time_s: float, layers: Sequence[ProjectionLayer | QuadLayer]
    ) -> None:
        """``xrEndFrame`` with the layers (copied into the backend's swapchains)."""
        ...

    def destroy_session(self) -> None:
        """``xrDestroySession`` (and the session's swapchains and spaces)."""
        ...

    def destroy_instance(self) -> None:
        """``xrDestroyInstance``."""
        ...


class EyeRenderer(Protocol):
    """Renders a scene for one eye view into an RGB array."""

    def render(self, scene: VrScene, view: EyeView) -> np.ndarray | SwapchainImage:
        """The eye's image: ``(height, width, 3)`` uint8, or a swapchain image.

        A :class:`~vr.layers.SwapchainImage` says the pixels are already in the backend's
        swapchain.
        """
        ...


@dataclass(frozen=True)
class FrameRecord:
    """Timing of one submitted frame (s, ``time.perf_counter``).

    Attributes
    ----------
    display_time_s : float
        Predicted display time.
    frame_s : float
        ``wait_frame`` return to ``end_frame`` return.
    eye_render_s : tuple of float
        Per-eye render time.
    update_to_submit_s : float or None
        Scene state received to ``end_frame`` return (``None`` for a static scene).
    rendered : bool
        Layers were submitted.
    """

    display_time_s: float
    frame_s: float
    eye_render_s: tuple[float, ...]
    update_to_submit_s: float | None
    rendered: bool


@dataclass(frozen=True)
class LoopResult:
    """What a run of the loop did.

    Attributes
    ----------
    frames : tuple of FrameRecord
        Every frame that went through ``end_frame``.
    states : tuple of str
        Session states reached, in order.
    ended_by : str
        ``"exit"`` (normal), ``"loss_pending"``, ``"runtime_lost: <reason>"`` or
        ``"interrupted"`` (Ctrl-C).
    teardown : tuple of str
        Teardown steps done, with failures noted.
    """

    frames: tuple[FrameRecord, ...]
    states: tuple[str, ...]
    ended_by: str
    teardown: tuple[str, ...]

    def stats(self) -> dict[str, object]:
        """Frame-time statistics (ms): count, mean, median, p95, max of frame and eye times."""
        rendered = [f for f in self.frames if f.rendered]
        out: dict[str, object] = {"frames": len(self.frames), "rendered_frames": len(rendered)}
        series = {
            "frame_ms": [f.frame_s for f in rendered],
            "eye_render_ms": [t for f in rendered for t in f.eye_render_s],
            "update_to_submit_ms": [
                f.update_to_submit_s for f in rendered if f.update_to_submit_s is not None
            ],
        }
        for name, values in series.items():
            if values:
                ms = np.asarray(values) * 1000.0
                out[name] = {
                    "mean": float(ms.mean()),
                    "median": float(np.median(ms)),
                    "p95": float(np.percentile(ms, 95)),
                    "max": float(ms.max()),
                }
        return out

    def to_dict(self) -> dict[str, object]:
        """Stats, states, how it ended and the teardown steps."""
        return {
            "stats": self.stats(),
            "states": list(self.states),
            "ended_by": self.ended_by,
            "teardown": list(self.teardown),
        }


def _pump(backend: Backend, machine: SessionStateMachine) -> None:
    for state in backend.poll_events():
        machine.advance(state)
        if machine.needs_begin:
            backend.begin_session()
            machine.mark_begun()
        elif machine.needs_end:
            backend.end_session()
            machine.mark_ended()


def _frame(
    backend: Backend,
    renderer: EyeRenderer,
    scene_source: Callable[[float], VrScene],
    machine: SessionStateMachine,
    wanted: bool,
) -> FrameRecord:
    timing = backend.wait_frame()
    start = time.perf_counter()
    backend.begin_frame()
    layers: list[ProjectionLayer | QuadLayer] = []
    eye_s: list[float] = []
    received = None
    if wanted and timing.should_render and machine.should_render:
        located = backend.locate_views(timing.predicted_display_time_s)
        scene = scene_source(timing.predicted_display_time_s)
        received = scene.state_received_s
        images = []
        for view in located.views:
            t0 = time.perf_counter()
            images.append(renderer.render(scene, view))
            eye_s.append(time.perf_counter() - t0)
        layers.append(ProjectionLayer(located.views, tuple(images)))
        if scene.overlay_text():
            layers.append(text_quad(scene.overlay_text(), warning=not scene.trusted))
    backend.end_frame(timing.predicted_display_time_s, layers)
    end = time.perf_counter()
    return FrameRecord(
        timing.predicted_display_time_s,
        end - start,
        tuple(eye_s),
        None if received is None else end - received,
        bool(layers),
    )


def run_frame_loop(
    backend: Backend,
    renderer: EyeRenderer,
    scene_source: Callable[[float], VrScene],
    *,
    max_frames: int | None,
    idle_timeout_s: float = 10.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> LoopResult:
    """Run the session until it ends, then tear down.

    Parameters
    ----------
    backend : Backend
        The headset (simulated or OpenXR).
    renderer : EyeRenderer
        Draws each eye.
    scene_source : callable
        ``scene_source(display_time_s) -> VrScene``: the latest scene for a display time.
    max_frames : int or None
        Rendered frames after which the loop requests exit (>= 1); frames after the request
        carry no layers. ``None``: run until the runtime ends the session (the user quits
        from the headset's menu) or Ctrl-C (``ended_by`` ``"interrupted"``).
    idle_timeout_s : float
        Longest wait, s, for the runtime to make the session READY.
    should_stop : callable
        Asked before each frame; ``True`` ends the session as ``max_frames`` does (request
        exit, follow the states down): how a signal handler stops the loop cleanly.

    Returns
    -------
    LoopResult

    Raises
    ------
    VrError
        ``max_frames < 1``, the session never became ready, or the runtime broke the state
        machine (:class:`~vr.session_state.SessionStateError`); the session is torn down first.
    """
    if max_frames is not None and max_frames < 1:
        raise VrError(f"max_frames must be >= 1, got {max_frames}")
    machine = SessionStateMachine()
    frames: list[FrameRecord] = []
    ended_by, exit_requested = "exit", False
    idle_since = time.perf_counter()
    try:
        while True:
            _pump(backend, machine)
            if machine.finished:
                ended_by = "exit" if machine.state is SessionState.EXITING else "loss_pending"
                break
            if not machine.running:
                if time.perf_counter() - idle_since > idle_timeout_s:
                    raise VrError(
                        f"the runtime left the session in {machine.state.name} for more than "
                        f"{idle_timeout_s} s (never READY)"
                    )
                backend.wait_idle()
                continue
            idle_since = time.perf_counter()
            done = should_stop() or (
                max_frames is not None and sum(f.rendered for f in frames) >= max_frames
            )
            if done and not exit_requested:
                backend.request_exit()
                exit_requested = True
            frames.append(_frame(backend, renderer, scene_source, machine, not exit_requested))
    except RuntimeLostError as error:
        ended_by = f"runtime_lost: {error}"
    except KeyboardInterrupt:
        ended_by = "interrupted"
    finally:
        steps = teardown(backend, machine)
    return LoopResult(tuple(frames), tuple(s.name for s in machine.history), ended_by, steps)


def _follow_to_stopping(backend: Backend, machine: SessionStateMachine, max_polls: int) -> None:
    """Poll (with empty frames between polls) until STOPPING, a loss, or ``max_polls``."""
    for _ in range(max_polls):
        if machine.state is SessionState.STOPPING or machine.finished:
            return
        for state in backend.poll_events():
            machine.advance(state)
        if machine.state is not SessionState.STOPPING and not machine.finished:
            timing = backend.wait_frame()
            backend.begin_frame()
            backend.end_frame(timing.predicted_display_time_s, [])


def teardown(
    backend: Backend, machine: SessionStateMachine, max_polls: int = 32
) -> tuple[str, ...]:
    """Leave any session state cleanly: request exit and follow the states, then destroy.

    A running session is asked to exit and its events are followed (frames with no layers keep
    the runtime going) until ``STOPPING`` lets it end; a lost runtime skips straight to the
    destroy calls, whose own failures are recorded, not raised.

    Returns
    -------
    tuple of str
        The steps done, e.g. ``("request_exit", "end_session", "destroy_session",
        "destroy_instance")``; a failed step reads ``"destroy_session failed: ..."``.
    """
    steps: list[str] = []
    try:
        if machine.running and not machine.finished:
            if machine.state is not SessionState.STOPPING:
                backend.request_exit()
                steps.append("request_exit")
            _follow_to_stopping(backend, machine, max_polls)
            if machine.needs_end:
                backend.end_session()
                machine.mark_ended()
                steps.append("end_session")
            elif machine.running and not machine.finished:
                steps.append(f"runtime never reached STOPPING (left in {machine.state.name})")
    except VrError as error:
        steps.append(f"exit handshake stopped: {error}")
    for name in ("destroy_session", "destroy_instance"):
        try:
            getattr(backend, name)()
            steps.append(name)
        except VrError as error:
            steps.append(f"{name} failed: {error}")
    return tuple(steps)
