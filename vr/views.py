"""OpenXR-style per-eye views: pose, asymmetric field of view, projection and pixel mapping.

Conventions (those of OpenXR, with lengths in millimetres)
-----------------------------------------------------------
- Every length in ``vr`` is in **millimetres** (the project convention). OpenXR reports poses
  in metres: :func:`pose_from_xr` / :func:`pose_to_xr` convert at that boundary, nowhere else.
- A view (eye) space is OpenXR's: +x right, +y up, the eye looks down **-z**.
- ``T_world_eye`` maps eye-space points into the world (the reference space the scene is given
  in: the XR stage/local space in the OpenXR backend, the scene's own space in the simulated
  backend). The view matrix is its inverse, ``T_eye_world``.
- Orientation quaternions are ``(x, y, z, w)`` (``XrQuaternionf`` order, scalar last).
- Field of view: ``XrFovf`` angles in radians, ``angle_left`` and ``angle_down`` normally
  negative, ``angle_right`` and ``angle_up`` positive.
- Pixel coordinates are continuous ``(u, v)`` with the origin at the top-left corner of the
  top-left pixel, ``u`` to the right and ``v`` down; pixel ``[row, col]`` has its centre at
  ``(col + 0.5, row + 0.5)``.

Projection (the ``XrMatrix4x4f_CreateProjectionFov`` convention for OpenGL clip space)
--------------------------------------------------------------------------------------
With ``l, r, d, u`` the tangents of the four angles, a point ``(x, y, z)`` in eye space
(``z < 0`` in front) lands on the image plane at ``x / -z`` (between ``l`` and ``r``) and
``y / -z`` (between ``d`` and ``u``). Normalised device coordinates must map ``l -> -1`` and
``r -> +1``, so ``x_ndc = (2 (x / -z) - (r + l)) / (r - l)``; with ``w_clip = -z`` this is
``x_clip = 2 x / (r - l) + z (r + l) / (r - l)``: first row ``[2/(r-l), 0, (r+l)/(r-l), 0]``,
likewise for ``y``. Depth maps ``z = -near -> -1`` and ``z = -far -> +1`` (OpenGL):
``z_clip = -(f + n)/(f - n) z - 2 f n/(f - n)``. A ``far_mm <= near_mm`` gives the infinite
far plane of ``xr_linear.h`` (``z_clip = -z - 2 n``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from vr.errors import VrError

__all__ = [
    "Fov",
    "Pose",
    "EyeView",
    "projection_matrix",
    "stereo_views",
    "project_points",
    "pose_from_xr",
    "pose_to_xr",
    "look_at_pose",
]

#: Metres to millimetres (the OpenXR boundary).
MM_PER_M = 1000.0


@dataclass(frozen=True)
class Fov:
    """An asymmetric field of view (``XrFovf``), radians.

    Attributes
    ----------
    angle_left, angle_right, angle_up, angle_down : float
        Angles of the four frustum sides from the view direction, radians
        (left and down normally negative). Each must lie in (-pi/2, pi/2), with
        ``angle_left < angle_right`` and ``angle_down < angle_up``.
    """

    angle_left: float
    angle_right: float
    angle_up: float
    angle_down: float

    def __post_init__(self) -> None:
        """Refuse a degenerate or impossible field of view."""
        angles = (self.angle_left, self.angle_right, self.angle_up, self.angle_down)
        if not all(math.isfinite(a) and abs(a) < math.pi / 2 for a in angles):
            raise VrError(
                f"field of view angles must be finite and within +-pi/2 rad, got {angles}"
            )
        if not (self.angle_left < self.angle_right and self.angle_down < self.angle_up):
            raise VrError(
                "field of view needs angle_left < angle_right and angle_down < angle_up, "
                f"got {angles}"
            )

    @classmethod
    def symmetric(cls, horizontal_rad: float, vertical_rad: float) -> Fov:
        """A symmetric field of view of the given full horizontal and vertical angles, radians."""
        return cls(-horizontal_rad / 2, horizontal_rad / 2, vertical_rad / 2, -vertical_rad / 2)

    def tangents(self) -> tuple[float, float, float, float]:
        """``(tan_left, tan_right, tan_up, tan_down)``."""
        return (
            math.tan(self.angle_left),
            math.tan(self.angle_right),
            math.tan(self.angle_up),
            math.tan(self.angle_down),
        )

    def to_dict(self) -> dict[str, float]:
        """The four angles, radians."""
        return {
            "angle_left": self.angle_left,
            "angle_right": self.angle_right,
            "angle_up": self.angle_up,
            "angle_down": self.angle_down,
        }


@dataclass(frozen=True)
class Pose:
    """A rigid pose (``XrPosef`` in millimetres).

    Attributes
    ----------
    position_mm : tuple of float
        Origin of the posed space in its parent space, mm.
    orientation_xyzw : tuple of float
        Unit quaternion ``(x, y, z, w)``; normalised on construction (a zero quaternion is
        refused).
    """

    position_mm: tuple[float, float, float]
    orientation_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        """Validate and normalise."""
        p = np.asarray(self.position_mm, float)
        q = np.asarray(self.orientation_xyzw, float)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise VrError(f"pose position_mm must be 3 finite numbers, got {self.position_mm!r}")
        norm = float(np.linalg.norm(q)) if q.shape == (4,) else 0.0
        if not math.isfinite(norm) or norm < 1e-9:
            raise VrError(
                f"pose orientation_xyzw must be a non-zero quaternion (x, y, z, w), "
                f"got {self.orientation_xyzw!r}"
            )
        object.__setattr__(self, "position_mm", tuple(float(v) for v in p))
        object.__setattr__(self, "orientation_xyzw", tuple(float(v) for v in q / norm))

    @classmethod
    def from_matrix(cls, T: np.ndarray) -> Pose:
        """The pose of a 4x4 rigid transform (translation in mm)."""
        T = np.asarray(T, float)
        if T.shape != (4, 4):
            raise VrError(f"a pose matrix must be 4x4, got shape {T.shape}")
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise VrError("a pose matrix must hold a rotation (orthonormal, det +1)")
        quat = Rotation.from_matrix(R).as_quat()
        return cls(tuple(T[:3, 3]), tuple(quat))

    def matrix(self) -> np.ndarray:
        """The 4x4 transform ``T_parent_posed`` (mm)."""
        T = np.eye(4)
        T[:3, :3] = Rotation.from_quat(self.orientation_xyzw).as_matrix()
        T[:3, 3] = self.position_mm
        return T

    def to_dict(self) -> dict[str, list[float]]:
        """Position (mm) and quaternion (x, y, z, w)."""
        return {
            "position_mm": list(self.position_mm),
            "orientation_xyzw": list(self.orientation_xyzw),
        }


def pose_from_xr(position_m: Sequence[float], orientation_xyzw: Sequence[float]) -> Pose:
    """A :class:`Pose` in mm from an OpenXR pose (position in metres)."""
    return Pose(tuple(float(v) * MM_PER_M for v in position_m), tuple(orientation_xyzw))


def pose_to_xr(pose: Pose) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(position_m, orientation_xyzw)`` of a :class:`Pose` for OpenXR (metres)."""
    return tuple(v / MM_PER_M for v in pose.position_mm), pose.orientation_xyzw


def look_at_pose(eye_mm: Sequence[float], target_mm: Sequence[float], up: Sequence[float]) -> Pose:
    """The pose of a view at ``eye_mm`` looking at ``target_mm`` (-z forward, +y towards ``up``).

    Raises
    ------
    VrError
        The target coincides with the eye, or ``up`` is parallel to the view direction.
    """
    eye, target, up_v = (np.asarray(v, float) for v in (eye_mm, target_mm, up))
    forward = target - eye
    if np.linalg.norm(forward) < 1e-9:
        raise VrError(f"look_at target {tuple(target)} coincides with the eye position")
    z_axis = -forward / np.linalg.norm(forward)
    x_axis = np.cross(up_v, z_axis)
    if np.linalg.norm(x_axis) < 1e-9:
        raise VrError(f"look_at up {tuple(up_v)} is parallel to the view direction")
    x_axis /= np.linalg.norm(x_axis)
    T = np.eye(4)
    T[:3, :3] = np.column_stack([x_axis, np.cross(z_axis, x_axis), z_axis])
    T[:3, 3] = eye
    return Pose.from_matrix(T)


@dataclass(frozen=True)
class EyeView:
    """One eye's view (``XrView``) and the size of its image.

    Attributes
    ----------
    pose : Pose
        ``T_world_eye`` as a pose, mm.
    fov : Fov
        Asymmetric field of view.
    width, height : int
        Image size in pixels.
    near_mm, far_mm : float
        Clip planes, mm (``far_mm <= near_mm``: infinite far plane).
    """

    pose: Pose
    fov: Fov
    width: int
    height: int
    near_mm: float = 50.0
    far_mm: float = 10_000.0

    def __post_init__(self) -> None:
        """Refuse impossible image sizes or clip planes."""
        if self.width < 1 or self.height < 1:
            raise VrError(f"eye image size must be positive, got {self.width} x {self.height}")
        if not (math.isfinite(self.near_mm) and self.near_mm > 0):
            raise VrError(f"near_mm must be a positive number, got {self.near_mm}")

    def view_matrix(self) -> np.ndarray:
        """``T_eye_world`` (4x4, mm): world points into eye space."""
        return np.linalg.inv(self.pose.matrix())

    def projection_matrix(self) -> np.ndarray:
        """The OpenGL clip-space projection of this view (see :func:`projection_matrix`)."""
        return projection_matrix(self.fov, self.near_mm, self.far_mm)

    def project(self, points_mm: np.ndarray) -> np.ndarray:
        """Pixel coordinates of world points (see :func:`project_points`)."""
        return project_points(self, points_mm)

    def focal_px(self) -> tuple[float, float]:
        """Focal lengths ``(fx, fy)`` in pixels: image size over the tangent spans."""
        tl, tr, tu, td = self.fov.tangents()
        return self.width / (tr - tl), self.height / (tu - td)


def projection_matrix(fov: Fov, near_mm: float, far_mm: float) -> np.ndarray:
    """The 4x4 asymmetric-frustum projection of ``XrMatrix4x4f_CreateProjectionFov`` (OpenGL).

    Parameters
    ----------
    fov : Fov
        Field of view, radians.
    near_mm, far_mm : float
        Clip distances, mm; ``far_mm <= near_mm`` makes the far plane infinite.

    Returns
    -------
    numpy.ndarray
        Row-major 4x4 matrix mapping eye-space points (homogeneous, mm) to clip space with
        depth -1 at the near and +1 at the far plane.
    """
    tl, tr, tu, td = fov.tangents()
    width, height = tr - tl, tu - td
    P = np.zeros((4, 4))
    P[0, 0], P[0, 2] = 2.0 / width, (tr + tl) / width
    P[1, 1], P[1, 2] = 2.0 / height, (tu + td) / height
    if far_mm <= near_mm:
        P[2, 2], P[2, 3] = -1.0, -2.0 * near_mm
    else:
        P[2, 2] = -(far_mm + near_mm) / (far_mm - near_mm)
        P[2, 3] = -2.0 * far_mm * near_mm / (far_mm - near_mm)
    P[3, 2] = -1.0
    return P


def project_points(view: EyeView, points_mm: np.ndarray) -> np.ndarray:
    """Project world points to continuous pixel coordinates ``(u, v)`` of an eye's image.

    Parameters
    ----------
    view : EyeView
        The eye.
    points_mm : numpy.ndarray
        ``(3,)`` or ``(N, 3)`` world points, mm.

    Returns
    -------
    numpy.ndarray
        ``(2,)`` or ``(N, 2)``: ``u`` right, ``v`` down, origin at the image's top-left corner.

    Raises
    ------
    VrError
        A point is not in front of the eye (``z_eye >= 0``).
    """
    pts = np.asarray(points_mm, float)
    single = pts.ndim == 1
    pts = np.atleast_2d(pts)
    if pts.shape[1] != 3:
        raise VrError(f"points_mm must be (N, 3), got shape {pts.shape}")
    homogeneous = np.column_stack([pts, np.ones(len(pts))])
    clip = homogeneous @ (view.projection_matrix() @ view.view_matrix()).T
    if np.any(clip[:, 3] <= 0):
        raise VrError("a projected point lies behind the eye (z_eye >= 0)")
    ndc = clip[:, :2] / clip[:, 3:4]
    uv = np.column_stack([(ndc[:, 0] + 1) / 2 * view.width, (1 - ndc[:, 1]) / 2 * view.height])
    return uv[0] if single else uv


def stereo_views(
    head: Pose,
    *,
    ipd_mm: float,
    fov_left: Fov,
    fov_right: Fov,
    width: int,
    height: int,
    near_mm: float = 50.0,
    far_mm: float = 10_000.0,
) -> tuple[EyeView, EyeView]:
    """Left and right eye views of a head pose: eyes at -/+ ``ipd_mm`` / 2 along head +x.

    Parameters
    ----------
    head : Pose
        ``T_world_head`` (the OpenXR VIEW space), mm.
    ipd_mm : float
        Interpupillary distance, mm (positive, at most 100).
    fov_left, fov_right : Fov
        Each eye's field of view (headsets mirror them: the nasal side is narrower).
    width, height : int
        Per-eye image size, pixels.
    near_mm, far_mm : float
        Clip planes, mm.

    Returns
    -------
    tuple of EyeView
        ``(left, right)``.
    """
    if not (math.isfinite(ipd_mm) and 0 < ipd_mm <= 100):
        raise VrError(f"ipd_mm must be in (0, 100] mm, got {ipd_mm}")
    T_world_head = head.matrix()
    views = []
    for sign, fov in ((-1.0, fov_left), (1.0, fov_right)):
        T_head_eye = np.eye(4)
        T_head_eye[0, 3] = sign * ipd_mm / 2
        eye = Pose.from_matrix(T_world_head @ T_head_eye)
        views.append(EyeView(eye, fov, width, height, near_mm, far_mm))
    return views[0], views[1]
