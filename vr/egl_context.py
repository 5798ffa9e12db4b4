"""A headless OpenGL 3.3 core context on EGL, made through ``ctypes`` on ``libEGL.so.1``.

Why ctypes and not PyOpenGL's EGL module: PyOpenGL chooses one platform per process, and
pyopenxr forces it to GLX as soon as ``xr`` is imported. The context is therefore made with
the few EGL calls below directly; OpenGL calls then go through PyOpenGL (on whatever platform
it chose), which libglvnd dispatches to the current context whether EGL or GLX made it.

The display is the first EGL device (``EGL_EXT_device_base`` + ``EGL_EXT_platform_device``:
the GPU where there is one, Mesa's software device otherwise). Mesa's software device has no
framebuffer configs, so the context is made without one (``EGL_KHR_no_config_context``) when
none is found; rendering goes to framebuffer objects, never to an EGL surface.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from vr.errors import VrError

__all__ = ["EglContext", "create_egl_context"]

_VOID = ctypes.c_void_p
_INT = ctypes.c_int
_EGL_PLATFORM_DEVICE_EXT = 0x313F
_EGL_RENDERABLE_TYPE, _EGL_OPENGL_BIT, _EGL_NONE = 0x3040, 0x0008, 0x3038
_EGL_OPENGL_API = 0x30A2
_EGL_CONTEXT_MAJOR, _EGL_CONTEXT_MINOR, _EGL_CONTEXT_PROFILE = 0x3098, 0x30FB, 0x30FD
_EGL_CORE_PROFILE_BIT = 0x1


def _library() -> ctypes.CDLL:
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError as error:
        raise VrError(f"cannot load libEGL.so.1 (install libegl1): {error}") from None
    egl.eglGetProcAddress.restype = _VOID
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    egl.eglInitialize.argtypes = [_VOID, ctypes.POINTER(_INT), ctypes.POINTER(_INT)]
    egl.eglChooseConfig.argtypes = [
        _VOID, ctypes.POINTER(_INT), ctypes.POINTER(_VOID), _INT, ctypes.POINTER(_INT)
    ]  # fmt: skip
    egl.eglBindAPI.argtypes = [ctypes.c_uint]
    egl.eglCreateContext.restype = _VOID
    egl.eglCreateContext.argtypes = [_VOID, _VOID, _VOID, ctypes.POINTER(_INT)]
    egl.eglMakeCurrent.argtypes = [_VOID, _VOID, _VOID, _VOID]
    egl.eglDestroyContext.argtypes = [_VOID, _VOID]
    egl.eglTerminate.argtypes = [_VOID]
    return egl


def _extension(egl: ctypes.CDLL, name: bytes, restype, *argtypes):
    address = egl.eglGetProcAddress(name)
    if not address:
        raise VrError(f"EGL lacks {name.decode()} (needed for a headless OpenGL context)")
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


def _first_device_display(egl: ctypes.CDLL) -> int:
    query = _extension(
        egl, b"eglQueryDevicesEXT", ctypes.c_uint, _INT, ctypes.POINTER(_VOID), ctypes.POINTER(_INT)
    )
    platform_display = _extension(
        egl, b"eglGetPlatformDisplayEXT", _VOID, ctypes.c_uint, _VOID, ctypes.POINTER(_INT)
    )
    devices, count = (_VOID * 8)(), _INT()
    if not query(8, devices, ctypes.byref(count)) or count.value < 1:
        raise VrError("EGL reports no device to render on (eglQueryDevicesEXT)")
    display = platform_display(_EGL_PLATFORM_DEVICE_EXT, devices[0], None)
    major, minor = _INT(), _INT()
    if not display or not egl.eglInitialize(display, ctypes.byref(major), ctypes.byref(minor)):
        raise VrError("eglInitialize failed on the first EGL device")
    return display


@dataclass
class EglContext:
    """A current OpenGL context and the EGL handles an OpenXR EGL binding needs.

    Attributes
    ----------
    display, config, context : int
        ``EGLDisplay``, ``EGLConfig`` (0 when made without one) and ``EGLContext`` handles.
    get_proc_address : int
        Address of ``eglGetProcAddress`` (``XrGraphicsBindingEGLMNDX.getProcAddress``).
    """

    display: int
    config: int
    context: int
    get_proc_address: int
    _egl: ctypes.CDLL

    def make_current(self) -> None:
        """Make the context current on the calling thread (no surface)."""
        if not self._egl.eglMakeCurrent(self.display, None, None, self.context):
            raise VrError("eglMakeCurrent failed for the OpenGL context")

    def destroy(self) -> None:
        """Release and destroy the context, then the display connection."""
        if self.context:
            self._egl.eglMakeCurrent(self.display, None, None, None)
            self._egl.eglDestroyContext(self.display, self.context)
            self.context = 0


def create_egl_context() -> EglContext:
    """A new surfaceless OpenGL 3.3 core context, made current on the calling thread.

    Raises
    ------
    VrError
        No EGL library or device, or the context cannot be made.
    """
    egl = _library()
    display = _first_device_display(egl)
    wanted = (_INT * 3)(_EGL_RENDERABLE_TYPE, _EGL_OPENGL_BIT, _EGL_NONE)
    config, found = _VOID(), _INT()
    if not egl.eglChooseConfig(display, wanted, ctypes.byref(config), 1, ctypes.byref(found)):
        found.value = 0
    egl.eglBindAPI(_EGL_OPENGL_API)
    version = (_INT * 7)(
        _EGL_CONTEXT_MAJOR, 3, _EGL_CONTEXT_MINOR, 3, _EGL_CONTEXT_PROFILE,
        _EGL_CORE_PROFILE_BIT, _EGL_NONE,
    )  # fmt: skip
    config_handle = config.value if found.value > 0 else None
    context = egl.eglCreateContext(display, config_handle, None, version)
    if not context:
        raise VrError("eglCreateContext failed for OpenGL 3.3 core")
    get_proc_address = ctypes.cast(egl.eglGetProcAddress, _VOID).value or 0
    created = EglContext(display, config_handle or 0, context, get_proc_address, egl)
    created.make_current()
    return created
