"""What a frame submits and what a backend reports: frame timing, located views, layers.

These are the plain-data counterparts of ``XrFrameState``, ``xrLocateViews``' output,
``XrCompositionLayerProjection`` and ``XrCompositionLayerQuad`` (lengths in mm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from vr.errors import VrError
from vr.views import EyeView, Pose

__all__ = [
    "FrameTiming",
    "LocatedViews",
    "ProjectionLayer",
    "QuadLayer",
    "RuntimeLostError",
    "SwapchainImage",
]


class RuntimeLostError(VrError):
    """The runtime went away (``XR_ERROR_INSTANCE_LOST`` / ``XR_ERROR_SESSION_LOST`` or a crash)."""


@dataclass(frozen=True)
class FrameTiming:
    """``XrFrameState``: when the frame will be shown and whether to render it.

    Attributes
    ----------
    predicted_display_time_s : float
        Predicted display time of the frame, s (backend clock).
    predicted_period_s : float
        Predicted display period, s.
    should_render : bool
        The runtime wants layers for this frame.
    """

    predicted_display_time_s: float
    predicted_period_s: float
    should_render: bool


@dataclass(frozen=True)
class LocatedViews:
    """Views located for a display time: the head (VIEW space) pose and one view per eye."""

    head: Pose
    views: tuple[EyeView, ...]


@dataclass(frozen=True)
class SwapchainImage:
    """An eye image rendered straight into the backend's swapchain image (no pixels in memory).

    What :class:`vr.openxr_session.SwapchainEyeRenderer` returns: the pixels are already in the
    image that ``end_frame`` submits.
    """

    width: int
    height: int


@dataclass(frozen=True)
class ProjectionLayer:
    """``XrCompositionLayerProjection``: one rendered image per view.

    Attributes
    ----------
    views : tuple of EyeView
        The views the images were rendered with.
    images : tuple of numpy.ndarray or SwapchainImage
        ``(height, width, 3)`` uint8 RGB, row 0 at the top; or an image already rendered into
        the backend's swapchain.
    """

    views: tuple[EyeView, ...]
    images: tuple[np.ndarray | SwapchainImage, ...]

    def __post_init__(self) -> None:
        """Check one image of the view's size per view."""
        if len(self.views) != len(self.images):
            raise VrError(
                f"projection layer has {len(self.views)} views, {len(self.images)} images"
            )
        for view, image in zip(self.views, self.images, strict=True):
            if isinstance(image, SwapchainImage):
                if (image.width, image.height) != (view.width, view.height):
                    raise VrError(
                        f"swapchain image is {image.width} x {image.height} px, its view "
                        f"{view.width} x {view.height}"
                    )
                continue
            if image.shape != (view.height, view.width, 3) or image.dtype != np.uint8:
                raise VrError(
                    f"projection layer image must be ({view.height}, {view.width}, 3) uint8, "
                    f"got {image.shape} {image.dtype}"
                )


@dataclass(frozen=True)
class QuadLayer:
    """``XrCompositionLayerQuad``: a flat RGBA image placed in a space.

    Attributes
    ----------
    space : {"view", "world"}
        ``"view"``: head-locked (pose relative to the head); ``"world"``: the reference space.
    pose : Pose
        Centre and orientation of the quad (its normal is +z), mm.
    size_mm : tuple of float
        Width and height, mm.
    rgba : numpy.ndarray
        ``(h, w, 4)`` uint8 image, row 0 at the top.
    """

    space: Literal["view", "world"]
    pose: Pose
    size_mm: tuple[float, float]
    rgba: np.ndarray

    def __post_init__(self) -> None:
        """Refuse an unknown space, a bad size or a non-RGBA image."""
        if self.space not in ("view", "world"):
            raise VrError(f"quad layer space must be 'view' or 'world', got {self.space!r}")
        if not all(s > 0 for s in self.size_mm):
            raise VrError(f"quad layer size_mm must be positive, got {self.size_mm}")
        if self.rgba.ndim != 3 or self.rgba.shape[2] != 4 or self.rgba.dtype != np.uint8:
            raise VrError(f"quad layer image must be (h, w, 4) uint8, got {self.rgba.shape}")

    def corners_world(self, head: Pose) -> np.ndarray:
        """The quad's corners (top-left, top-right, bottom-right, bottom-left) in the world, mm."""
        w, h = self.size_mm[0] / 2, self.size_mm[1] / 2
        local = np.array([[-w, h, 0, 1], [w, h, 0, 1], [w, -h, 0, 1], [-w, -h, 0, 1]], float)
        T = self.pose.matrix()
        if self.space == "view":
            T = head.matrix() @ T
        return (local @ T.T)[:, :3]
