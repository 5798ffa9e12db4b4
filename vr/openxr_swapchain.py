"""One OpenXR swapchain of OpenGL textures: create, acquire / wait / release, upload, destroy.

The textures are the runtime's (``xrEnumerateSwapchainImages`` with
``XrSwapchainImageOpenGLKHR``), made in the application's context. An RGB or RGBA array
(row 0 at the top) is uploaded with ``glTexSubImage2D`` flipped, since an OpenGL texture's
row 0 is the image's bottom row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vr.errors import VrError

__all__ = ["GL_SRGB8_ALPHA8", "GL_RGBA8", "PREFERRED_FORMATS", "Swapchain", "choose_format"]

GL_SRGB8_ALPHA8 = 0x8C43
GL_RGBA8 = 0x8058
#: The formats the renderer can fill, best first (the values written are display-ready sRGB).
PREFERRED_FORMATS = (GL_SRGB8_ALPHA8, GL_RGBA8)
#: How long to wait for a swapchain image, ns.
WAIT_TIMEOUT_NS = 1_000_000_000


def choose_format(offered: Sequence[int]) -> int:
    """The first of the runtime's formats (its preference order) that the renderer can fill.

    Raises
    ------
    VrError
        None of :data:`PREFERRED_FORMATS` is offered.
    """
    for value in offered:
        if int(value) in PREFERRED_FORMATS:
            return int(value)
    listed = ", ".join(hex(int(v)) for v in offered) or "none"
    raise VrError(f"the OpenXR runtime offers no RGBA8 swapchain format (it offers {listed})")


@dataclass
class Swapchain:
    """A created swapchain and its textures.

    Attributes
    ----------
    handle : xr.Swapchain
    width, height : int
        Image size, px.
    textures : list of int
        The OpenGL texture names of its images.
    """

    handle: object
    width: int
    height: int
    textures: list[int]
    call: Callable

    @classmethod
    def create(cls, session, gl_format: int, width: int, height: int, call: Callable) -> Swapchain:
        """``xrCreateSwapchain`` (colour attachment, sampled, transfer-dst; one layer, mip 1)."""
        import xr

        usage = (
            xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT
            | xr.SwapchainUsageFlags.SAMPLED_BIT
            | xr.SwapchainUsageFlags.TRANSFER_DST_BIT
        )
        info = xr.SwapchainCreateInfo(
            usage_flags=usage,
            format=gl_format,
            sample_count=1,
            width=width,
            height=height,
            face_count=1,
            array_size=1,
            mip_count=1,
        )
        handle = call("xrCreateSwapchain", xr.create_swapchain, session, info)
        images = call(
            "xrEnumerateSwapchainImages",
            xr.enumerate_swapchain_images,
            handle,
            xr.SwapchainImageOpenGLKHR,
        )
        return cls(handle, int(width), int(height), [int(i.image) for i in images], call)

    def acquire(self) -> int:
        """Acquire and wait for the next image; its texture name."""
        import xr

        index = self.call(
            "xrAcquireSwapchainImage",
            xr.acquire_swapchain_image,
            self.handle,
            xr.SwapchainImageAcquireInfo(),
        )
        self.call(
            "xrWaitSwapchainImage",
            xr.wait_swapchain_image,
            self.handle,
            xr.SwapchainImageWaitInfo(timeout=WAIT_TIMEOUT_NS),
        )
        return self.textures[int(index)]

    def release(self) -> None:
        """Release the acquired image."""
        import xr

        self.call(
            "xrReleaseSwapchainImage",
            xr.release_swapchain_image,
            self.handle,
            xr.SwapchainImageReleaseInfo(),
        )

    def upload(self, image: np.ndarray) -> None:
        """Copy an ``(h, w, 3|4)`` uint8 array (row 0 at the top) into the next image."""
        from OpenGL import GL

        if image.shape[:2] != (self.height, self.width) or image.shape[2] not in (3, 4):
            raise VrError(
                f"image {image.shape} does not fit the {self.width} x {self.height} swapchain"
            )
        pixels = np.ascontiguousarray(image[::-1], dtype=np.uint8)
        texture = self.acquire()
        try:
            GL.glBindTexture(GL.GL_TEXTURE_2D, texture)
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
            layout = GL.GL_RGB if image.shape[2] == 3 else GL.GL_RGBA
            GL.glTexSubImage2D(
                GL.GL_TEXTURE_2D,
                0,
                0,
                0,
                self.width,
                self.height,
                layout,
                GL.GL_UNSIGNED_BYTE,
                pixels,
            )
            GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        finally:
            self.release()

    def sub_image(self):
        """The whole image as an ``XrSwapchainSubImage``."""
        import xr

        rect = xr.Rect2Di(xr.Offset2Di(0, 0), xr.Extent2Di(self.width, self.height))
        return xr.SwapchainSubImage(swapchain=self.handle, image_rect=rect, image_array_index=0)

    def destroy(self) -> None:
        """``xrDestroySwapchain``."""
        import xr

        xr.destroy_swapchain(self.handle)
