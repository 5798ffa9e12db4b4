"""The shared frame loop (``vr.frame_loop``) and the session state machine (``vr.session_state``).

The loop runs over :class:`vr.simulated.SimulatedBackend` (the scripted runtime) with a real
VTK renderer; teardown is driven from every session state, and from a runtime that vanished.
"""

from __future__ import annotations

import numpy as np
import pytest
import pyvista as pv

from vr.frame_loop import run_frame_loop, teardown
from vr.render_vtk import VtkEyeRenderer
from vr.scene import SceneMesh, VrScene
from vr.session_state import LEGAL_TRANSITIONS, SessionState, SessionStateError, SessionStateMachine
from vr.simulated import HeadsetModel, SimulatedBackend, sway_trajectory

S = SessionState
HEADSET = HeadsetModel(width=64, height=64)
WALK = [
    *("IDLE", "READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED"),
    *("VISIBLE", "SYNCHRONIZED", "STOPPING", "IDLE", "EXITING"),
]


@pytest.fixture(scope="module")
def renderer() -> VtkEyeRenderer:
    eye_renderer = VtkEyeRenderer(HEADSET.width, HEADSET.height)
    yield eye_renderer
    eye_renderer.close()


def backend(**options) -> SimulatedBackend:
    return SimulatedBackend(HEADSET, sway_trajectory((0, 0, 0), (0, 0, -500), 10.0), **options)


SCENE = VrScene((SceneMesh("ball", pv.Sphere(radius=60, center=(0, 0, -500)), (0.9, 0.2, 0.2)),))


def test_state_machine_walks_the_lifecycle_and_rejects_illegal_transitions() -> None:
    machine = SessionStateMachine()
    for name in WALK[:2]:
        machine.advance(S[name])
    machine.mark_begun()
    for name in WALK[2:8]:
        machine.advance(S[name])
    assert machine.needs_end
    machine.mark_ended()
    for name in WALK[8:]:
        machine.advance(S[name])
    assert [s.name for s in machine.history] == WALK and machine.finished
    with pytest.raises(SessionStateError, match="EXITING -> IDLE"):
        machine.advance(S.IDLE)


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (["IDLE"], "FOCUSED"),
        (["IDLE"], "SYNCHRONIZED"),
        (["IDLE", "READY"], "VISIBLE"),
        (["IDLE", "READY", "SYNCHRONIZED"], "FOCUSED"),
        (["IDLE", "READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED"], "STOPPING"),
        ([], "READY"),
    ],
)
def test_illegal_transitions_are_refused(path: list[str], bad: str) -> None:
    machine = SessionStateMachine()
    for name in path:
        machine.advance(S[name])
    with pytest.raises(SessionStateError, match=f"-> {bad}"):
        machine.advance(S[bad])
    assert machine.state.name == (path[-1] if path else "UNKNOWN")


def test_loss_pending_is_legal_from_every_live_state() -> None:
    for state, targets in LEGAL_TRANSITIONS.items():
        assert (S.LOSS_PENDING in targets) == (state not in (S.LOSS_PENDING, S.EXITING))
    with pytest.raises(SessionStateError, match="unknown XrSessionState"):
        SessionStateMachine().advance(42)


def test_loop_walks_states_in_order_and_submits_both_eyes(renderer) -> None:
    sim = backend(keep_frames=1)
    result = run_frame_loop(sim, renderer, lambda t: SCENE, max_frames=3)
    assert list(result.states) == WALK
    assert result.ended_by == "exit"
    assert result.teardown == ("destroy_session", "destroy_instance")
    assert result.stats()["rendered_frames"] == 3
    left, right = sim.submitted[-1]
    for eye in (left, right):  # the red ball ahead, in the middle third of each eye
        red = (eye[..., 0] > 100) & (eye[..., 1] < 80)
        rows, cols = np.nonzero(red)
        assert red.sum() > 20 and 20 < cols.mean() < 44 and 20 < rows.mean() < 44
    calls = [c for c in sim.calls if c not in ("poll_events", "wait_idle")]
    first = calls.index("locate_views")
    assert calls[first - 2 : first + 2] == [
        "wait_frame",
        "begin_frame",
        "locate_views",
        "end_frame",
    ]
    assert (
        calls.index("begin_session")
        < first
        < calls.index("request_exit")
        < calls.index("end_session")
    )


def drive_to(target: list[str], sim: SimulatedBackend) -> SessionStateMachine:
    """Follow the simulated runtime's events (answering READY and STOPPING) along ``target``."""
    machine = SessionStateMachine()
    for name in target:
        if name == "LOSS_PENDING":
            sim.lose_session()
        if name == "VISIBLE" and machine.state is S.FOCUSED:
            sim.request_exit()
        (state,) = sim.poll_events()
        assert state.name == name
        machine.advance(state)
        if machine.needs_begin and len(target) > 2:
            sim.begin_session()
            machine.mark_begun()
        if machine.needs_end and name != target[-1]:
            sim.end_session()
            machine.mark_ended()
    return machine


RUNNING_TEARDOWN = ("request_exit", "end_session", "destroy_session", "destroy_instance")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (WALK[:1], ("destroy_session", "destroy_instance")),
        (WALK[:2], ("destroy_session", "destroy_instance")),
        (WALK[:3], RUNNING_TEARDOWN),
        (WALK[:4], RUNNING_TEARDOWN),
        (WALK[:5], RUNNING_TEARDOWN),
        (WALK[:8], ("end_session", "destroy_session", "destroy_instance")),
        (WALK[:9], ("destroy_session", "destroy_instance")),
        (WALK, ("destroy_session", "destroy_instance")),
        (WALK[:5] + ["LOSS_PENDING"], ("destroy_session", "destroy_instance")),
    ],
)
def test_teardown_from_every_state(path: list[str], expected: tuple[str, ...]) -> None:
    sim = backend()
    machine = drive_to(path, sim)
    assert machine.state.name == path[-1]
    assert teardown(sim, machine) == expected
    assert not machine.running or machine.finished
    assert sim.calls[-2:] == ["destroy_session", "destroy_instance"]


def test_session_loss_and_vanished_runtime_tear_down_cleanly(renderer) -> None:
    lost = run_frame_loop(
        backend(lose_session_at_frame=3), renderer, lambda t: SCENE, max_frames=10
    )
    assert lost.ended_by == "loss_pending" and lost.states[-1] == "LOSS_PENDING"
    assert lost.teardown == ("destroy_session", "destroy_instance")
    sim = backend(runtime_gone_at_frame=4)
    gone = run_frame_loop(sim, renderer, lambda t: SCENE, max_frames=10)
    assert gone.ended_by.startswith("runtime_lost: simulated runtime went away")
    assert gone.teardown[0].startswith("exit handshake stopped")
    assert gone.teardown[1].startswith("destroy_session failed")
    assert gone.teardown[2] == "destroy_instance" and sim.calls[-1] == "destroy_instance"


def test_a_runtime_that_breaks_the_state_machine_is_refused_after_teardown(renderer) -> None:
    sim = backend()
    sim._events = [S.IDLE, S.FOCUSED]  # a broken runtime skips READY..VISIBLE
    with pytest.raises(SessionStateError, match="IDLE -> FOCUSED"):
        run_frame_loop(sim, renderer, lambda t: SCENE, max_frames=2)
    assert sim.calls[-2:] == ["destroy_session", "destroy_instance"]
