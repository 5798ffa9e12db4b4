"""The overlay text as an RGBA image for a quad layer (Pillow), and its placement in the view.

A warning (untrusted overlay) is white on opaque red; ordinary status text is white on a
half-transparent dark grey. The quad is head-locked (``"view"`` space) below the line of sight.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vr.layers import QuadLayer
from vr.views import Pose

__all__ = ["text_quad", "WARNING_RGB", "TEXT_BACKGROUND_RGBA"]

#: Background of a warning quad (opaque red).
WARNING_RGB = (200, 0, 0)
#: Background of a status-text quad.
TEXT_BACKGROUND_RGBA = (40, 40, 40, 160)

#: Head-locked placement: 600 mm ahead, 120 mm below the eyes, 360 x 90 mm.
QUAD_POSE = Pose((0.0, -120.0, -600.0))
QUAD_SIZE_MM = (360.0, 90.0)
QUAD_PIXELS = (512, 128)


@functools.lru_cache(maxsize=32)
def text_quad(text: str, *, warning: bool) -> QuadLayer:
    """The quad layer showing ``text`` (a warning in red).

    Cached: the same text gives the same layer object (its image read-only), so a backend
    uploads a quad's image only when the text changes.
    """
    background = (*WARNING_RGB, 255) if warning else TEXT_BACKGROUND_RGBA
    image = Image.new("RGBA", QUAD_PIXELS, background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=28)
    lines = text.strip().splitlines()[:3] or [""]
    for row, line in enumerate(lines):
        draw.text((16, 12 + 36 * row), line[:40], fill=(255, 255, 255, 255), font=font)
    rgba = np.asarray(image, dtype=np.uint8).copy()
    rgba.flags.writeable = False
    return QuadLayer("view", QUAD_POSE, QUAD_SIZE_MM, rgba)
