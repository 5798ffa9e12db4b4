"""Per-eye rendering with plain OpenGL 3.3 (PyOpenGL on EGL, no display): the VTK renderer's peer.

A headless EGL context on the first EGL device (``EGL_EXT_device_base`` +
``EGL_EXT_platform_device``; Mesa's software device on machines without a GPU), one
framebuffer object of the eye size, one vertex array (positions + point normals, float32)
and index buffer per mesh uploaded once, and a two-line Lambert shader lit from the eye.
The model-view-projection matrix is ``projection_matrix(fov) @ T_eye_world @ T_world_twin``
(:mod:`vr.views`), so the image agrees with :func:`vr.views.project_points` exactly as the
VTK renderer's does. Used by ``benchmarks/vr_render.py`` to compare with VTK.

PyOpenGL picks its platform once per process: ``PYOPENGL_PLATFORM`` is set to ``egl`` before
OpenGL is imported; a process that already loaded PyOpenGL for GLX gets a :class:`VrError`.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from vr.errors import VrError
from vr.scene import VrScene
from vr.views import EyeView

__all__ = ["GlEyeRenderer"]

_VERTEX = """#version 330 core
layout(location = 0) in vec3 position;
layout(location = 1) in vec3 normal;
uniform mat4 mvp;
uniform mat4 mv;
out vec3 normal_eye;
void main() { gl_Position = mvp * vec4(position, 1.0); normal_eye = mat3(mv) * normal; }
"""
_FRAGMENT = """#version 330 core
in vec3 normal_eye;
uniform vec3 colour;
out vec4 fragment;
void main() { fragment = vec4(colour * (0.2 + 0.8 * abs(normalize(normal_eye).z)), 1.0); }
"""
_EGL_PLATFORM_DEVICE_EXT = 0x313F
_EGL_CONTEXT_MAJOR_VERSION, _EGL_CONTEXT_MINOR_VERSION = 0x3098, 0x30FB


def _modules():
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    from OpenGL import platform

    chosen = type(platform.PLATFORM).__name__
    if "EGL" not in chosen.upper():
        raise VrError(
            f"render_gl needs PyOpenGL on EGL but this process loaded it for {chosen} "
            "(set PYOPENGL_PLATFORM=egl before anything imports OpenGL, e.g. pyopenxr)"
        )
    from OpenGL import EGL, GL
    from OpenGL.GL import shaders

    return EGL, GL, shaders


def _egl_context(EGL):
    from OpenGL.EGL.EXT.device_base import eglQueryDevicesEXT
    from OpenGL.EGL.EXT.platform_base import eglGetPlatformDisplayEXT

    devices, count = (EGL.EGLDeviceEXT * 8)(), EGL.EGLint()
    if not eglQueryDevicesEXT(8, devices, ctypes.pointer(count)) or count.value < 1:
        raise VrError("EGL reports no device to render on (eglQueryDevicesEXT)")
    display = eglGetPlatformDisplayEXT(_EGL_PLATFORM_DEVICE_EXT, devices[0], None)
    major, minor = EGL.EGLint(), EGL.EGLint()
    if not EGL.eglInitialize(display, ctypes.pointer(major), ctypes.pointer(minor)):
        raise VrError("eglInitialize failed on the first EGL device")
    wanted = (EGL.EGLint * 5)(
        EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT, EGL.EGL_DEPTH_SIZE, 24, EGL.EGL_NONE
    )
    config, found = EGL.EGLConfig(), EGL.EGLint()
    if not EGL.eglChooseConfig(display, wanted, ctypes.pointer(config), 1, ctypes.pointer(found)):
        raise VrError("eglChooseConfig found no OpenGL config with a depth buffer")
    EGL.eglBindAPI(EGL.EGL_OPENGL_API)
    version = (EGL.EGLint * 5)(_EGL_CONTEXT_MAJOR_VERSION, 3, _EGL_CONTEXT_MINOR_VERSION, 3, 0x3038)
    context = EGL.eglCreateContext(display, config, EGL.EGL_NO_CONTEXT, version)
    if not context or not EGL.eglMakeCurrent(
        display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, context
    ):
        raise VrError("cannot create or make current an OpenGL 3.3 EGL context (surfaceless)")
    return display, context


def _vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of a triangle surface."""
    p0, p1, p2 = (points[faces[:, i]] for i in range(3))
    face_normals = np.cross(p1 - p0, p2 - p0)
    normals = np.zeros_like(points, dtype=float)
    for i in range(3):
        np.add.at(normals, faces[:, i], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


class GlEyeRenderer:
    """Renders eye images of one size into an offscreen framebuffer with plain OpenGL.

    Parameters
    ----------
    width, height : int
        Eye image size, pixels.
    """

    def __init__(self, width: int, height: int):
        if width < 1 or height < 1:
            raise VrError(f"eye image size must be positive, got {width} x {height}")
        self._EGL, self._GL, shaders = _modules()
        GL = self._GL
        self.width, self.height = int(width), int(height)
        self._display, self._context = _egl_context(self._EGL)
        self.renderer_name = GL.glGetString(GL.GL_RENDERER).decode()
        self._program = shaders.compileProgram(
            shaders.compileShader(_VERTEX, GL.GL_VERTEX_SHADER),
            shaders.compileShader(_FRAGMENT, GL.GL_FRAGMENT_SHADER),
        )
        self._fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
        for fmt, attachment in (
            (GL.GL_RGBA8, GL.GL_COLOR_ATTACHMENT0),
            (GL.GL_DEPTH_COMPONENT24, GL.GL_DEPTH_ATTACHMENT),
        ):
            buffer = GL.glGenRenderbuffers(1)
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, buffer)
            GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, fmt, self.width, self.height)
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, attachment, GL.GL_RENDERBUFFER, buffer)
        if GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER) != GL.GL_FRAMEBUFFER_COMPLETE:
            raise VrError(f"OpenGL framebuffer of {self.width} x {self.height} is incomplete")
        self._meshes: dict[int, tuple[object, int, int]] = {}

    def _upload(self, mesh) -> tuple[object, int, int]:
        GL = self._GL
        if not mesh.is_all_triangles:
            mesh = mesh.triangulate()
        faces = mesh.faces.reshape(-1, 4)[:, 1:].astype(np.uint32)
        vertices = np.hstack([mesh.points, _vertex_normals(mesh.points, faces)]).astype(np.float32)
        vao = GL.glGenVertexArrays(1)
        GL.glBindVertexArray(vao)
        vbo, ebo = GL.glGenBuffers(2)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, vertices.nbytes, vertices, GL.GL_STATIC_DRAW)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, ebo)
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, faces.nbytes, faces, GL.GL_STATIC_DRAW)
        for location in (0, 1):
            GL.glEnableVertexAttribArray(location)
            GL.glVertexAttribPointer(
                location, 3, GL.GL_FLOAT, False, 24, ctypes.c_void_p(12 * location)
            )
        return mesh, vao, int(faces.size)

    def render(self, scene: VrScene, view: EyeView) -> np.ndarray:
        """Render one eye: ``(height, width, 3)`` uint8 RGB, row 0 at the top.

        Meshes must be triangle surfaces; each is uploaded on first sight (a mesh changed in
        place later is not re-uploaded: give a new mesh object).
        """
        GL = self._GL
        if (view.width, view.height) != (self.width, self.height):
            raise VrError(
                f"view is {view.width} x {view.height} px, renderer {self.width} x {self.height}"
            )
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
        GL.glViewport(0, 0, self.width, self.height)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glClearColor(0.0, 0.0, 0.0, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
        GL.glUseProgram(self._program)
        mv = view.view_matrix() @ scene.T_world_twin
        mvp = view.projection_matrix() @ mv
        for name, matrix in (("mvp", mvp), ("mv", mv)):
            location = GL.glGetUniformLocation(self._program, name)
            GL.glUniformMatrix4fv(location, 1, GL.GL_TRUE, matrix.astype(np.float32))
        colour = GL.glGetUniformLocation(self._program, "colour")
        for item in scene.visible_meshes():
            if id(item.mesh) not in self._meshes:
                self._meshes[id(item.mesh)] = self._upload(item.mesh)
            _, vao, count = self._meshes[id(item.mesh)]
            GL.glUniform3f(colour, *item.colour)
            GL.glBindVertexArray(vao)
            GL.glDrawElements(GL.GL_TRIANGLES, count, GL.GL_UNSIGNED_INT, None)
        pixels = GL.glReadPixels(0, 0, self.width, self.height, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        return np.frombuffer(pixels, np.uint8).reshape(self.height, self.width, 3)[::-1].copy()

    def close(self) -> None:
        """Release the EGL context."""
        EGL = self._EGL
        EGL.eglMakeCurrent(
            self._display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT
        )
        EGL.eglDestroyContext(self._display, self._context)
        self._meshes.clear()
