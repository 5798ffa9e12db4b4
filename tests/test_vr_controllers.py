"""Controller manipulation of the rehearsal twin: grab, two-hand scale, trigger, live lock."""

from __future__ import annotations

import numpy as np
import pytest
import pyvista as pv
from scipy.spatial.transform import Rotation

from vr.controllers import ControllerSample, HandSample, TwinManipulator
from vr.scene import SceneMesh, VrScene
from vr.views import Pose


def _scene() -> VrScene:
    organ = SceneMesh("liver", pv.Sphere(radius=50.0), (0.8, 0.5, 0.4), 1.0, "organ")
    tumour = SceneMesh("tumour", pv.Sphere(radius=10.0), (1.0, 1.0, 0.0), 1.0, "tumour")
    T = np.eye(4)
    T[:3, 3] = [0.0, 0.0, -600.0]
    return VrScene((organ, tumour), T_world_twin=T)


def _hand(position, grab=0.0, trigger=False, rotvec=(0.0, 0.0, 0.0)) -> HandSample:
    quat = Rotation.from_rotvec(rotvec).as_quat()
    return HandSample(Pose(tuple(position), tuple(quat)), grab, trigger)


def _apply_point(T: np.ndarray, p) -> np.ndarray:
    return (T @ np.r_[p, 1.0])[:3]


def test_one_hand_grab_carries_the_twin_with_the_hands_motion() -> None:
    m, scene = TwinManipulator(), _scene()
    m.apply(scene, ControllerSample(right=_hand((200, -300, -400))))  # open hand: nothing
    np.testing.assert_allclose(m.T_world_twin, scene.T_world_twin)
    m.apply(scene, ControllerSample(right=_hand((200, -300, -400), grab=0.9)))  # grip closes
    moved = m.apply(scene, ControllerSample(right=_hand((300, -250, -400), grab=0.9)))
    np.testing.assert_allclose(_apply_point(moved.T_world_twin, (0, 0, 0)), [100, 50, -600])
    turn = (0.0, np.pi / 2, 0.0)  # the hand turns 90 degrees about +y at (300, -250, -400)
    turned = m.apply(scene, ControllerSample(right=_hand((300, -250, -400), 0.9, rotvec=turn)))
    # the centre sat at (-200, +300, -200) from the hand; R_y(90) takes it to (-200, 300, +200)
    centre = _apply_point(turned.T_world_twin, (0, 0, 0))
    np.testing.assert_allclose(centre, [300 - 200, -250 + 300, -400 + 200], atol=1e-9)
    released = m.apply(scene, ControllerSample(right=_hand((0, 0, 0), grab=0.1)))
    np.testing.assert_allclose(released.T_world_twin, turned.T_world_twin)  # stays put


def test_two_hands_scale_about_their_midpoint() -> None:
    m, scene = TwinManipulator(), _scene()
    m.apply(scene, ControllerSample(_hand((-100, 0, -600), 1.0), _hand((100, 0, -600), 1.0)))
    grown = m.apply(
        scene, ControllerSample(_hand((-200, 0, -600), 1.0), _hand((200, 0, -600), 1.0))
    )
    assert np.linalg.det(grown.T_world_twin[:3, :3]) == pytest.approx(8.0)  # twice the size
    np.testing.assert_allclose(_apply_point(grown.T_world_twin, (0, 0, 0)), [0, 0, -600])
    np.testing.assert_allclose(_apply_point(grown.T_world_twin, (10, 0, 0)), [20, 0, -600])
    far = m.apply(scene, ControllerSample(_hand((-1e5, 0, -600), 1.0), _hand((1e5, 0, -600), 1.0)))
    assert np.linalg.det(far.T_world_twin[:3, :3]) == pytest.approx(1000.0)  # clamped at 10x


def test_the_trigger_cycles_layers_on_each_press_only() -> None:
    m, scene = TwinManipulator(), _scene()
    pressed = ControllerSample(left=_hand((0, 0, 0), trigger=True))
    first = m.apply(scene, pressed)
    assert {x.name for x in first.visible_meshes()} == {"liver"}
    held = m.apply(scene, pressed)  # still held: no second step
    assert {x.name for x in held.visible_meshes()} == {"liver"}
    m.apply(scene, ControllerSample())
    second = m.apply(scene, pressed)
    assert {x.name for x in second.visible_meshes()} == {"tumour"}
    m.apply(scene, ControllerSample())
    assert {x.name for x in m.apply(scene, pressed).visible_meshes()} == {"liver", "tumour"}


def test_live_twin_is_placed_by_the_registration_not_the_hands() -> None:
    m, scene = TwinManipulator(allow_move=False), _scene()
    m.apply(scene, ControllerSample(right=_hand((0, 0, 0), grab=1.0)))
    moved = m.apply(scene, ControllerSample(right=_hand((500, 0, 0), grab=1.0)))
    np.testing.assert_allclose(moved.T_world_twin, scene.T_world_twin)
    T_new = np.eye(4)
    T_new[:3, 3] = [5.0, 0.0, -590.0]  # a new live state moves it
    follows = m.apply(scene.with_pose(T_new), ControllerSample())
    np.testing.assert_allclose(follows.T_world_twin, T_new)


def test_rehearsal_is_placed_relative_to_the_anchor_once() -> None:
    m, scene = TwinManipulator(), _scene()
    anchor = np.eye(4)
    anchor[:3, 3] = [100.0, 1600.0, 0.0]  # the head, standing in a stage space
    first = m.apply(scene, None, anchor)
    np.testing.assert_allclose(_apply_point(first.T_world_twin, (0, 0, 0)), [100, 1600, -600])
    later = m.apply(scene, None, np.eye(4))  # the anchor only places the first scene
    np.testing.assert_allclose(later.T_world_twin, first.T_world_twin)
