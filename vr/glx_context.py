"""An OpenGL 3.3 core context on GLX (an X display), made through ``ctypes``: the Xlib binding.

A runtime without ``XR_MNDX_egl_enable`` (SteamVR on Linux, among others) takes only
``XrGraphicsBindingOpenGLXlibKHR``: an X ``Display``, the context's visual id and
``GLXFBConfig``, a drawable and the ``GLXContext``. This module opens the display named by
``DISPLAY``, picks an RGBA8 frame-buffer config with a 24-bit depth buffer that can back a
pbuffer, makes a 3.3 core context (``GLX_ARB_create_context``) and makes it current on a
16 x 16 pbuffer (rendering goes to framebuffer objects, never to the pbuffer).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

from vr.errors import VrError

__all__ = ["GlxContext", "create_glx_context"]

_VOID, _INT, _ULONG = ctypes.c_void_p, ctypes.c_int, ctypes.c_ulong
_GLX_DRAWABLE_TYPE, _GLX_PBUFFER_BIT = 0x8010, 0x4
_GLX_RENDER_TYPE, _GLX_RGBA_BIT = 0x8011, 0x1
_GLX_RED, _GLX_GREEN, _GLX_BLUE, _GLX_ALPHA, _GLX_DEPTH, _GLX_DOUBLEBUFFER = 8, 9, 10, 11, 12, 5
_GLX_PBUFFER_WIDTH, _GLX_PBUFFER_HEIGHT = 0x8041, 0x8040
_CONTEXT_MAJOR, _CONTEXT_MINOR, _CONTEXT_PROFILE, _CORE_BIT = 0x2091, 0x2092, 0x9126, 0x1


class _VisualInfo(ctypes.Structure):
    _fields_ = [("visual", _VOID), ("visualid", _ULONG), ("screen", _INT), ("depth", _INT)]


def _libraries() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    try:
        x11, gl = ctypes.CDLL("libX11.so.6"), ctypes.CDLL("libGL.so.1")
    except OSError as error:
        raise VrError(f"cannot load libX11/libGL for a GLX context: {error}") from None
    x11.XOpenDisplay.restype = _VOID
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = [_VOID]
    x11.XFree.argtypes = [_VOID]
    x11.XCloseDisplay.argtypes = [_VOID]
    gl.glXChooseFBConfig.restype = ctypes.POINTER(_VOID)
    gl.glXChooseFBConfig.argtypes = [_VOID, _INT, ctypes.POINTER(_INT), ctypes.POINTER(_INT)]
    gl.glXGetVisualFromFBConfig.restype = ctypes.POINTER(_VisualInfo)
    gl.glXGetVisualFromFBConfig.argtypes = [_VOID, _VOID]
    gl.glXCreatePbuffer.restype = _ULONG
    gl.glXCreatePbuffer.argtypes = [_VOID, _VOID, ctypes.POINTER(_INT)]
    gl.glXMakeContextCurrent.argtypes = [_VOID, _ULONG, _ULONG, _VOID]
    gl.glXDestroyContext.argtypes = [_VOID, _VOID]
    gl.glXDestroyPbuffer.argtypes = [_VOID, _ULONG]
    gl.glXGetProcAddressARB.restype = _VOID
    gl.glXGetProcAddressARB.argtypes = [ctypes.c_char_p]
    return x11, gl


def _attributes(*pairs: int) -> ctypes.Array:
    return (_INT * (len(pairs) + 1))(*pairs, 0)


@dataclass
class GlxContext:
    """A current GLX context and the handles ``XrGraphicsBindingOpenGLXlibKHR`` needs."""

    display: int
    visualid: int
    fbconfig: int
    drawable: int
    context: int
    _x11: ctypes.CDLL
    _gl: ctypes.CDLL

    def make_current(self) -> None:
        """Make the context current on the calling thread (on its pbuffer)."""
        if not self._gl.glXMakeContextCurrent(
            self.display, self.drawable, self.drawable, self.context
        ):
            raise VrError("glXMakeContextCurrent failed for the OpenGL context")

    def destroy(self) -> None:
        """Release the context, its pbuffer and the display connection."""
        if self.context:
            self._gl.glXMakeContextCurrent(self.display, 0, 0, None)
            self._gl.glXDestroyContext(self.display, self.context)
            self._gl.glXDestroyPbuffer(self.display, self.drawable)
            self._x11.XCloseDisplay(self.display)
            self.context = 0


def _fbconfig(gl: ctypes.CDLL, x11: ctypes.CDLL, display: int) -> int:
    wanted = _attributes(
        _GLX_DRAWABLE_TYPE, _GLX_PBUFFER_BIT, _GLX_RENDER_TYPE, _GLX_RGBA_BIT, _GLX_RED, 8,
        _GLX_GREEN, 8, _GLX_BLUE, 8, _GLX_ALPHA, 8, _GLX_DEPTH, 24, _GLX_DOUBLEBUFFER, 0,
    )  # fmt: skip
    count = _INT()
    configs = gl.glXChooseFBConfig(
        display, x11.XDefaultScreen(display), wanted, ctypes.byref(count)
    )
    if not configs or count.value < 1:
        raise VrError("GLX offers no RGBA8 frame-buffer config with a depth buffer for a pbuffer")
    chosen = configs[0]
    x11.XFree(configs)
    return chosen


def create_glx_context() -> GlxContext:
    """A new OpenGL 3.3 core GLX context on ``DISPLAY``, current on a small pbuffer.

    Raises
    ------
    VrError
        No ``DISPLAY``, the display cannot be opened, or GLX cannot make the context.
    """
    name = os.environ.get("DISPLAY")
    if not name:
        raise VrError("the OpenXR runtime needs the Xlib/GLX binding but DISPLAY is not set")
    x11, gl = _libraries()
    display = x11.XOpenDisplay(name.encode())
    if not display:
        raise VrError(f"cannot open the X display {name!r} for the GLX context")
    config = _fbconfig(gl, x11, display)
    visual = gl.glXGetVisualFromFBConfig(display, config)
    visualid = int(visual.contents.visualid) if visual else 0
    if visual:
        x11.XFree(ctypes.cast(visual, _VOID))
    address = gl.glXGetProcAddressARB(b"glXCreateContextAttribsARB")
    if not address:
        raise VrError("GLX lacks glXCreateContextAttribsARB (an OpenGL 3.3 core context)")
    create = ctypes.CFUNCTYPE(_VOID, _VOID, _VOID, _VOID, _INT, ctypes.POINTER(_INT))(address)
    version = _attributes(_CONTEXT_MAJOR, 3, _CONTEXT_MINOR, 3, _CONTEXT_PROFILE, _CORE_BIT)
    context = create(display, config, None, 1, version)
    if not context:
        raise VrError("glXCreateContextAttribsARB failed for OpenGL 3.3 core")
    pbuffer = gl.glXCreatePbuffer(
        display, config, _attributes(_GLX_PBUFFER_WIDTH, 16, _GLX_PBUFFER_HEIGHT, 16)
    )
    created = GlxContext(display, visualid, config, int(pbuffer), context, x11, gl)
    created.make_current()
    return created
