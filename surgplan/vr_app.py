"""``surgplan vr`` as a function: the case's twin in a headset, rehearsal or live.

- **Rehearsal** (no ``live``): the case's structures float 600 mm ahead of the user
  (:func:`surgplan.vr_scene.case_vr_scene`); the controllers' grips move and scale the twin and
  the trigger cycles its layers (:class:`vr.controllers.TwinManipulator`).
- **Live** (``live="HOST:PORT"``): the twin follows a ``surgplan live`` session
  (:class:`surgplan.vr_live.LiveVrScenes`), placed by the live registration and the case's
  headset-to-tracker calibration (:mod:`surgplan.vr_calibration`, required); the trigger still
  cycles layers, the grips do nothing (the registration places the twin).

Backends: ``"openxr"`` (:class:`vr.openxr_session.OpenXrBackend`, rendering each eye straight
into its swapchain with plain OpenGL, the faster of the two renderers in
``benchmarks/vr_render.py``) and ``"simulated"`` (:func:`vr.simulated.run_simulated`, VTK,
offscreen, scripted head).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from surgplan.errors import SurgplanError
from vr.controllers import ControllerSample, TwinManipulator
from vr.scene import VrScene

__all__ = ["run_vr", "FIRST_UPDATE_TIMEOUT_S"]

#: The rehearsal's status text (the quad layer).
REHEARSAL_TEXT = "REHEARSAL\ngrip: carry, both grips: scale\ntrigger: next layer"
#: Signals that end an OpenXR run cleanly (request exit, then the session's states down).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Simulated live run: longest wait for the first update (the head is aimed at it), s.
FIRST_UPDATE_TIMEOUT_S = 30.0


def _live_scenes(case_dir: Path, live: str):
    from surgplan.vr_calibration import load_calibration
    from surgplan.vr_live import LiveVrScenes, parse_address

    host, port = parse_address(live)
    calibration = load_calibration(case_dir)
    if calibration is None:
        raise SurgplanError(
            f"{case_dir} has no headset-to-tracker calibration: run 'surgplan vr-calibrate "
            "CASE --headset-points F --tracker-points F' first (the overlay cannot be placed)"
        )
    return LiveVrScenes(case_dir, host, port, calibration.T_xr_tracker)


def _source(
    base: Callable[[float], VrScene],
    manipulator: TwinManipulator,
    controllers: Callable[[float], ControllerSample | None],
    anchor: Callable[[], np.ndarray | None] = lambda: None,
) -> Callable[[float], VrScene]:
    def source(display_time_s: float) -> VrScene:
        sample = controllers(display_time_s)
        return manipulator.apply(base(display_time_s), sample, anchor())

    return source


def _run_openxr(source_of, *, frames: int | None, size, validation: Sequence[str]) -> dict:
    from vr.frame_loop import run_frame_loop
    from vr.openxr_session import OpenXrBackend, SwapchainEyeRenderer

    backend = OpenXrBackend(validation=validation, eye_size=size)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    summary = {
        "runtime": backend.runtime_name,
        "eye_size_px": list(backend.eye_size),
        "blend_mode": backend.blend_mode,
        "reference_space": backend.reference_space,
        "swapchain_format": hex(backend.swapchain_format),
    }
    source = source_of(backend.sample_controllers, backend.head_anchor)
    try:
        result = run_frame_loop(backend, SwapchainEyeRenderer(backend), source,
                                max_frames=frames, should_stop=stop.is_set)  # fmt: skip
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return {**result.to_dict(), **summary, "stopped_by_signal": stop.is_set()}


def _aimed_trajectory(source: Callable[[float], VrScene]):
    """A sway trajectory looking at the twin of the first live update (simulated live)."""
    from vr.simulated import sway_trajectory

    deadline = time.monotonic() + FIRST_UPDATE_TIMEOUT_S
    scene = source(0.0)
    while not scene.meshes and time.monotonic() < deadline:
        time.sleep(0.05)
        scene = source(0.0)
    if not scene.meshes:
        return None
    lows = np.min([m.mesh.bounds[0::2] for m in scene.meshes], axis=0)
    highs = np.max([m.mesh.bounds[1::2] for m in scene.meshes], axis=0)
    centre = scene.T_world_twin @ np.r_[(lows + highs) / 2, 1.0]
    return sway_trajectory(centre[:3] + np.array([0.0, 0.0, 600.0]), centre[:3])


def run_vr(
    case_dir: str | os.PathLike[str],
    *,
    backend: str = "openxr",
    live: str | None = None,
    frames: int | None = None,
    out_dir: Path | None = None,
    size: tuple[int, int] | None = None,
    validation: Sequence[str] = (),
) -> dict:
    """Show a case's twin in VR and return the run's figures (``LoopResult.to_dict`` and more).

    Parameters
    ----------
    case_dir : str or os.PathLike
        The case.
    backend : {"openxr", "simulated"}
        The headset.
    live : str or None
        ``HOST:PORT`` of a ``surgplan live`` session to follow.
    frames : int or None
        Frames to render; ``None``: OpenXR runs until the session ends, simulated renders 90.
    out_dir : pathlib.Path or None
        Simulated: folder for both eyes' PNG frames.
    size : (int, int) or None
        Per-eye image size, px (OpenXR default: the runtime's recommended size; simulated
        default 512 x 512).
    validation : sequence of str
        OpenXR API layers to enable.

    Raises
    ------
    SurgplanError
        A bad case, a bad ``live`` address, no calibration for a live run.
    vr.errors.VrError
        No OpenXR runtime (one line naming it and ``XR_RUNTIME_JSON``), or the runtime failed.
    """
    if backend not in ("openxr", "simulated"):
        raise SurgplanError(f"backend must be 'openxr' or 'simulated', got {backend!r}")
    case_dir = Path(case_dir)
    if live is None:
        from surgplan.vr_scene import case_vr_scene

        scene = case_vr_scene(case_dir, text=REHEARSAL_TEXT)  # a bad case fails before a headset
        base, closer = (lambda t: scene), None
    else:
        base = closer = _live_scenes(case_dir, live)
    manipulator = TwinManipulator(allow_move=live is None)
    try:
        if backend == "openxr":
            report = _run_openxr(
                lambda controllers, anchor: _source(base, manipulator, controllers, anchor),
                frames=frames, size=size, validation=validation,
            )  # fmt: skip
        else:
            report = _run_simulated(base, manipulator, frames, size, out_dir, live is not None)
    finally:
        if closer is not None:
            closer.close()
    report["backend"] = backend
    report["mode"] = "live" if live else "rehearsal"
    if closer is not None:
        report["live_updates_shown"] = closer.frames_seen
    return report


def _run_simulated(base, manipulator, frames, size, out_dir, live: bool) -> dict:
    from vr.simulated import HeadsetModel, run_simulated

    width, height = size or (512, 512)
    headset = HeadsetModel(width=width, height=height)
    source = _source(base, manipulator, lambda t: None)
    trajectory = _aimed_trajectory(source) if live else None
    run = run_simulated(
        source, frames=frames or 90, headset=headset, trajectory=trajectory, out_dir=out_dir
    )
    return {**run.to_dict(), "eye_size_px": [width, height]}
