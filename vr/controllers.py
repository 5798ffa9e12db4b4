"""Controller input as the loop sees it, and what it does to the twin during rehearsal.

Backends report one :class:`ControllerSample` per frame (the OpenXR backend from its action
set, :mod:`vr.openxr_actions`; a test or a script can build them directly). The
:class:`TwinManipulator` turns a stream of samples into the twin's pose and visible layers:

- **Grip one hand** (``grab`` above :data:`GRAB_THRESHOLD`): the twin is held by that hand.
  It keeps the offset it had from the hand when the grip closed and follows the hand's
  translation and rotation: ``T_world_twin = T_world_hand @ inv(T_world_hand0) @ T_world_twin0``.
- **Grip both hands**: the twin scales uniformly by the ratio of the hands' distance to their
  distance when the second grip closed (clamped to [:data:`MIN_SCALE`, :data:`MAX_SCALE`] of
  the scale the twin had), about the hands' midpoint, and follows the midpoint's translation.
- **Trigger** (either hand, on the press, not while held): the next layer
  (:meth:`vr.scene.VrScene.next_layers`).

While the twin follows a live session it is placed by the registration, never by the hands:
``allow_move=False`` keeps only the trigger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vr.scene import VrScene
from vr.views import Pose

__all__ = [
    "GRAB_THRESHOLD",
    "MIN_SCALE",
    "MAX_SCALE",
    "HandSample",
    "ControllerSample",
    "TwinManipulator",
]

#: A grip counts as closed above this value (0..1).
GRAB_THRESHOLD = 0.5
#: Bounds of a two-hand scale gesture, relative to the scale when it began.
MIN_SCALE, MAX_SCALE = 0.1, 10.0


@dataclass(frozen=True)
class HandSample:
    """One hand's controller in one frame.

    Attributes
    ----------
    pose : Pose or None
        Grip pose in the XR world (the reference space), mm; ``None`` when not tracked.
    grab : float
        Grip (squeeze) value, 0..1.
    trigger : bool
        Trigger pressed.
    """

    pose: Pose | None = None
    grab: float = 0.0
    trigger: bool = False

    @property
    def gripping(self) -> bool:
        """The grip is closed and the hand is tracked."""
        return self.pose is not None and self.grab > GRAB_THRESHOLD


@dataclass(frozen=True)
class ControllerSample:
    """Both hands in one frame (no input: two default hands)."""

    left: HandSample = HandSample()
    right: HandSample = HandSample()

    @property
    def hands(self) -> tuple[HandSample, HandSample]:
        """``(left, right)``."""
        return self.left, self.right


def _scale_about(T_world_twin0: np.ndarray, centre0: np.ndarray, centre: np.ndarray, s: float):
    """The twin scaled by ``s`` about ``centre0``, then moved by ``centre - centre0``."""
    S = np.eye(4)
    S[:3, :3] *= s
    S[:3, 3] = centre - s * centre0
    return S @ T_world_twin0


@dataclass
class TwinManipulator:
    """Applies controller samples to a scene's pose and layers (rehearsal interaction).

    Parameters
    ----------
    allow_move : bool
        Grips move and scale the twin (rehearsal); ``False`` in a live session.
    """

    allow_move: bool = True
    T_world_twin: np.ndarray | None = None
    visible_layers: frozenset[str] | None = None
    _grip: tuple | None = field(default=None, repr=False)
    _trigger_was_down: bool = field(default=False, repr=False)

    def apply(
        self,
        scene: VrScene,
        sample: ControllerSample | None,
        anchor: np.ndarray | None = None,
    ) -> VrScene:
        """The scene with the manipulation so far and this sample applied.

        The first call adopts the scene's own pose and layers; later scenes (a new live state)
        keep the manipulated layers, and in rehearsal the manipulated pose. In rehearsal, an
        ``anchor`` (4x4, mm) given with the first scene places it: the scene's pose is then
        relative to the anchor (the user's head when the session starts, so the twin floats in
        front of them wherever the reference space's origin is).
        """
        if self.T_world_twin is None and self.allow_move and anchor is not None:
            self.T_world_twin = np.asarray(anchor, float) @ np.asarray(scene.T_world_twin, float)
        elif self.T_world_twin is None or not self.allow_move:
            self.T_world_twin = np.asarray(scene.T_world_twin, float)
        if self.visible_layers is None:
            self.visible_layers = scene.visible_layers
        if sample is not None:
            self._trigger(scene, sample)
            if self.allow_move:
                self._grab(sample)
        return VrScene(
            scene.meshes,
            self.T_world_twin,
            self.visible_layers,
            scene.trusted,
            scene.warning,
            scene.text,
            scene.state_received_s,
        )

    def _trigger(self, scene: VrScene, sample: ControllerSample) -> None:
        down = any(h.trigger for h in sample.hands)
        if down and not self._trigger_was_down:
            cycled = VrScene(scene.meshes, visible_layers=self.visible_layers).next_layers()
            self.visible_layers = cycled.visible_layers
        self._trigger_was_down = down

    def _grab(self, sample: ControllerSample) -> None:
        holding = tuple(i for i, h in enumerate(sample.hands) if h.gripping)
        poses = [sample.hands[i].pose.matrix() for i in holding]  # type: ignore[union-attr]
        if not holding:
            self._grip = None
            return
        if self._grip is None or self._grip[0] != holding:
            self._grip = (holding, [p.copy() for p in poses], self.T_world_twin.copy())
            return
        _, start, T0 = self._grip
        if len(holding) == 1:
            self.T_world_twin = poses[0] @ np.linalg.inv(start[0]) @ T0
            return
        a0, b0 = start[0][:3, 3], start[1][:3, 3]
        a, b = poses[0][:3, 3], poses[1][:3, 3]
        d0 = float(np.linalg.norm(b0 - a0))
        ratio = float(np.linalg.norm(b - a)) / d0 if d0 > 1e-6 else 1.0
        ratio = min(max(ratio, MIN_SCALE), MAX_SCALE)
        self.T_world_twin = _scale_about(T0, (a0 + b0) / 2, (a + b) / 2, ratio)
