"""The simulated headset: the shared frame loop with scripted head poses, rendered offscreen.

:class:`SimulatedBackend` behaves like an OpenXR runtime as the loop sees it: it reports the
session states in the spec's order (``IDLE``, ``READY``; after ``begin_session``:
``SYNCHRONIZED``, ``VISIBLE``, ``FOCUSED``; after ``request_exit``: ``VISIBLE``,
``SYNCHRONIZED``, ``STOPPING``; after ``end_session``: ``IDLE``, ``EXITING``), predicts display
times on a fixed period, locates OpenXR-style per-eye views (:func:`vr.views.stereo_views`)
along a scripted head trajectory, and composites each submitted frame like a compositor
(projection image, then quad layers warped into each eye through its projection). It can
write both eyes' composited frames as PNGs, lose the session (``LOSS_PENDING``) or vanish
(:class:`~vr.layers.RuntimeLostError`) at a chosen frame, for tests of teardown.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vr._atomic import write_bytes_atomic
from vr.errors import VrError
from vr.frame_loop import LoopResult, run_frame_loop
from vr.layers import FrameTiming, LocatedViews, ProjectionLayer, QuadLayer, RuntimeLostError
from vr.scene import VrScene
from vr.session_state import SessionState
from vr.views import EyeView, Fov, Pose, look_at_pose, project_points, stereo_views

__all__ = [
    "HeadsetModel",
    "SimulatedBackend",
    "SimulatedRun",
    "composite_eye",
    "run_simulated",
    "sway_trajectory",
]

S = SessionState


@dataclass(frozen=True)
class HeadsetModel:
    """Optics of the simulated headset.

    Attributes
    ----------
    width, height : int
        Per-eye image, pixels.
    ipd_mm : float
        Interpupillary distance, mm.
    fov_left, fov_right : Fov
        Per-eye asymmetric fields of view (default: mirrored, nasal side narrower).
    display_period_s : float
        Display refresh period, s.
    """

    width: int = 256
    height: int = 256
    ipd_mm: float = 64.0
    fov_left: Fov = Fov(-0.90, 0.75, 0.80, -0.85)
    fov_right: Fov = Fov(-0.75, 0.90, 0.80, -0.85)
    display_period_s: float = 1.0 / 90.0

    def views(self, head: Pose) -> tuple[EyeView, EyeView]:
        """The two eye views of a head pose."""
        return stereo_views(
            head,
            ipd_mm=self.ipd_mm,
            fov_left=self.fov_left,
            fov_right=self.fov_right,
            width=self.width,
            height=self.height,
        )


def sway_trajectory(
    eye_mm: Sequence[float],
    target_mm: Sequence[float],
    amplitude_mm: float = 20.0,
    period_s: float = 2.0,
) -> Callable[[float], Pose]:
    """A head swaying sideways and up/down around ``eye_mm`` while looking at ``target_mm``.

    Returns
    -------
    callable
        ``trajectory(t_s) -> Pose`` (mm; +y is up).
    """
    base = np.asarray(eye_mm, float)

    def trajectory(t_s: float) -> Pose:
        phase = 2 * math.pi * t_s / period_s
        offset = amplitude_mm * np.array([math.sin(phase), 0.5 * math.sin(2 * phase), 0.0])
        return look_at_pose(base + offset, target_mm, (0.0, 1.0, 0.0))

    return trajectory


def _perspective_coefficients(dst: np.ndarray, src: np.ndarray) -> tuple[float, ...]:
    """PIL PERSPECTIVE coefficients mapping output pixels ``dst`` to input pixels ``src``."""
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    return tuple(np.linalg.solve(np.asarray(rows, float), np.asarray(rhs, float)))


def composite_eye(
    image: np.ndarray, view: EyeView, head: Pose, quads: Sequence[QuadLayer]
) -> np.ndarray:
    """Composite quad layers over one eye's projection image, as a compositor would.

    Each quad's corners are projected into the eye (:func:`vr.views.project_points`) and its
    image is warped there (perspective) and alpha-blended. A quad partly behind the eye is
    skipped.
    """
    out = Image.fromarray(image).convert("RGBA")
    for quad in quads:
        try:
            corners_px = project_points(view, quad.corners_world(head))
        except VrError:
            continue
        h, w = quad.rgba.shape[:2]
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
        coefficients = _perspective_coefficients(corners_px, src)
        warped = Image.fromarray(quad.rgba).transform(
            out.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
        )
        out = Image.alpha_composite(out, warped)
    return np.asarray(out.convert("RGB"))


@dataclass
class SimulatedBackend:
    """A scripted OpenXR-like runtime (see the module docstring).

    Attributes
    ----------
    headset : HeadsetModel
        Optics and timing.
    trajectory : callable
        ``trajectory(display_time_s) -> Pose`` of the head (world, mm).
    out_dir : pathlib.Path or None
        Folder for ``frame_NNNN_left.png`` / ``_right.png`` (written atomically); ``None``: none.
    lose_session_at_frame, runtime_gone_at_frame : int or None
        After that many submitted frames, report ``LOSS_PENDING`` / fail every call.
    calls : list of str
        Every backend call, in order (for tests).
    submitted : list of tuple of numpy.ndarray
        The composited eye images of the last ``keep_frames`` submitted frames.
    """

    headset: HeadsetModel
    trajectory: Callable[[float], Pose]
    out_dir: Path | None = None
    lose_session_at_frame: int | None = None
    runtime_gone_at_frame: int | None = None
    keep_frames: int = 2
    calls: list[str] = field(default_factory=list)
    submitted: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    _events: list[SessionState] = field(default_factory=lambda: [S.IDLE, S.READY])
    _announced: SessionState = S.UNKNOWN
    _frame_index: int = 0
    _head: Pose | None = None
    _gone: bool = False

    def __post_init__(self) -> None:
        """Create the output folder."""
        if self.out_dir is not None:
            self.out_dir = Path(self.out_dir)
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise VrError(f"cannot create frame folder {self.out_dir}: {error}") from None

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self._gone and name != "destroy_instance":  # the loader frees the instance itself
            raise RuntimeLostError(f"simulated runtime went away (during {name})")

    def _queue(self, *states: SessionState) -> None:
        self._events += list(states)

    def _runtime_state(self) -> SessionState:
        """The state the runtime has announced last (queued or delivered)."""
        return self._events[-1] if self._events else self._announced

    def poll_events(self) -> Sequence[SessionState]:
        """At most one queued state change per poll (as ``xrPollEvent`` returns one event)."""
        self._call("poll_events")
        if not self._events:
            return ()
        self._announced = self._events.pop(0)
        return (self._announced,)

    def wait_idle(self) -> None:
        """Nothing to wait for: events are queued synchronously."""
        self._call("wait_idle")

    def begin_session(self) -> None:
        """Start the session: it becomes synchronised, visible, focused."""
        self._call("begin_session")
        self._queue(S.SYNCHRONIZED, S.VISIBLE, S.FOCUSED)

    def end_session(self) -> None:
        """End the session: idle, then exiting."""
        self._call("end_session")
        self._queue(S.IDLE, S.EXITING)

    def request_exit(self) -> None:
        """The user asked to quit: the states step down from where they are to ``STOPPING``."""
        self._call("request_exit")
        down = {
            S.FOCUSED: (S.VISIBLE, S.SYNCHRONIZED, S.STOPPING),
            S.VISIBLE: (S.SYNCHRONIZED, S.STOPPING),
            S.SYNCHRONIZED: (S.STOPPING,),
        }
        self._queue(*down.get(self._runtime_state(), ()))

    def lose_session(self) -> None:
        """Script a session loss: ``LOSS_PENDING`` is the next event."""
        self._events = [S.LOSS_PENDING]

    def vanish(self) -> None:
        """Script the runtime going away: every later call but ``destroy_instance`` fails."""
        self._gone = True

    def wait_frame(self) -> FrameTiming:
        """The next display time on the fixed period."""
        self._call("wait_frame")
        period = self.headset.display_period_s
        return FrameTiming((self._frame_index + 1) * period, period, True)

    def begin_frame(self) -> None:
        """Nothing to prepare."""
        self._call("begin_frame")

    def locate_views(self, display_time_s: float) -> LocatedViews:
        """The scripted head pose at that time and its two eye views."""
        self._call("locate_views")
        self._head = self.trajectory(display_time_s)
        return LocatedViews(self._head, self.headset.views(self._head))

    def end_frame(
        self, display_time_s: float, layers: Sequence[ProjectionLayer | QuadLayer]
    ) -> None:
        """Composite and keep (and write) the frame; inject a loss or a crash when scripted."""
        self._call("end_frame")
        projections = [layer for layer in layers if isinstance(layer, ProjectionLayer)]
        if len(projections) > 1:
            raise VrError(f"end_frame got {len(projections)} projection layers, expected at most 1")
        if projections and self._head is not None:
            quads = [layer for layer in layers if isinstance(layer, QuadLayer)]
            self._submit(projections[0], quads)
        self._frame_index += 1
        if (
            self.lose_session_at_frame is not None
            and self._frame_index == self.lose_session_at_frame
        ):
            self.lose_session()
        if (
            self.runtime_gone_at_frame is not None
            and self._frame_index == self.runtime_gone_at_frame
        ):
            self.vanish()

    def _submit(self, projection: ProjectionLayer, quads: list[QuadLayer]) -> None:
        assert self._head is not None
        eyes = tuple(
            composite_eye(image, view, self._head, quads)
            for view, image in zip(projection.views, projection.images, strict=True)
        )
        self.submitted = (
            [*self.submitted[-(self.keep_frames - 1) :], eyes] if self.keep_frames else []
        )
        if self.out_dir is not None:
            for side, image in zip(("left", "right"), eyes, strict=True):
                buffer = io.BytesIO()
                Image.fromarray(image).save(buffer, format="PNG")
                path = self.out_dir / f"frame_{self._frame_index:04d}_{side}.png"
                self.written.append(write_bytes_atomic(path, buffer.getvalue()))

    def destroy_session(self) -> None:
        """Forget the session."""
        self._call("destroy_session")

    def destroy_instance(self) -> None:
        """Forget the instance."""
        self._call("destroy_instance")


@dataclass(frozen=True)
class SimulatedRun:
    """A simulated session: the loop's result and the frames written.

    Attributes
    ----------
    result : LoopResult
        States, frame-time statistics, teardown.
    written : tuple of pathlib.Path
        Eye PNGs written (left and right per rendered frame).
    """

    result: LoopResult
    written: tuple[Path, ...]

    def to_dict(self) -> dict[str, object]:
        """The loop's dict plus the written files."""
        return {**self.result.to_dict(), "written": [str(p) for p in self.written]}


def run_simulated(
    scene_source: Callable[[float], VrScene],
    *,
    frames: int,
    headset: HeadsetModel | None = None,
    trajectory: Callable[[float], Pose] | None = None,
    out_dir: Path | None = None,
) -> SimulatedRun:
    """Run the shared frame loop on the simulated headset with the VTK renderer.

    Parameters
    ----------
    scene_source : callable
        ``scene_source(display_time_s) -> VrScene``.
    frames : int
        Frames to render (>= 1).
    headset : HeadsetModel, optional
        Optics (default :class:`HeadsetModel`).
    trajectory : callable, optional
        Head poses (default: swaying 20 mm around the origin, looking 500 mm down -z).
    out_dir : pathlib.Path, optional
        Folder for the eye PNGs.
    """
    from vr.render_vtk import VtkEyeRenderer

    headset = headset or HeadsetModel()
    trajectory = trajectory or sway_trajectory((0.0, 0.0, 0.0), (0.0, 0.0, -500.0))
    backend = SimulatedBackend(headset, trajectory, out_dir=out_dir, keep_frames=1)
    renderer = VtkEyeRenderer(headset.width, headset.height)
    try:
        result = run_frame_loop(backend, renderer, scene_source, max_frames=frames)
    finally:
        renderer.close()
    return SimulatedRun(result, tuple(backend.written))
