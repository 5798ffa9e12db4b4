"""Per-eye rendering with plain OpenGL 3.3 (PyOpenGL, no display): the VTK renderer's peer.

A headless EGL context on the first EGL device (:mod:`vr.egl_context`; Mesa's software
device on machines without a GPU), one framebuffer object of the eye size (and one whose
colour is the texture given to :meth:`GlEyeRenderer.render_to_texture`: an OpenXR swapchain
image), one vertex array (positions + point normals, float32)
and index buffer per mesh uploaded once, and a two-line Lambert shader lit from the eye.
The model-view-projection matrix is ``projection_matrix(fov) @ T_eye_world @ T_world_twin``
(:mod:`vr.views`), so the image agrees with :func:`vr.views.project_points` exactly as the
VTK renderer's does. Used by ``benchmarks/vr_render.py`` to compare with VTK.

The context is made through ``ctypes`` on libEGL, so PyOpenGL may run on any platform (pyopenxr
forces GLX): libglvnd dispatches the GL calls to the current context.
"""

from __future__ import annotations

import ctypes

import numpy as np

from vr.egl_context import create_egl_context
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
uniform float alpha;
out vec4 fragment;
void main() { fragment = vec4(colour * (0.2 + 0.8 * abs(normalize(normal_eye).z)), alpha); }
"""


def _modules():
    from OpenGL import GL
    from OpenGL.GL import shaders

    return GL, shaders


def raw_vertex_attrib_pointer(*args) -> None:
    """``glVertexAttribPointer`` without PyOpenGL's wrapper.

    The wrapper asks the platform (GLX once pyopenxr is imported) for the current context,
    which fails under an EGL context.
    """
    from OpenGL.raw.GL.VERSION.GL_2_0 import glVertexAttribPointer

    glVertexAttribPointer(*args)


def _vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of a triangle surface."""
    p0, p1, p2 = (points[faces[:, i]] for i in range(3))
    face_normals = np.cross(p1 - p0, p2 - p0)
    corners = faces.ravel()
    per_corner = np.repeat(face_normals, 3, axis=0)
    normals = np.column_stack(
        [np.bincount(corners, per_corner[:, k], minlength=len(points)) for k in range(3)]
    )
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


class GlEyeRenderer:
    """Renders eye images of one size into an offscreen framebuffer with plain OpenGL.

    Parameters
    ----------
    width, height : int
        Eye image size, pixels.
    platform : {"egl", "glx"}
        Headless EGL (:mod:`vr.egl_context`) or GLX on ``DISPLAY`` (:mod:`vr.glx_context`,
        for OpenXR runtimes that take only the Xlib binding).
    """

    def __init__(self, width: int, height: int, *, platform: str = "egl"):
        if width < 1 or height < 1:
            raise VrError(f"eye image size must be positive, got {width} x {height}")
        if platform not in ("egl", "glx"):
            raise VrError(f"platform must be 'egl' or 'glx', got {platform!r}")
        self._GL, shaders = _modules()
        GL = self._GL
        self.width, self.height = int(width), int(height)
        if platform == "egl":
            self.context = create_egl_context()
        else:
            from vr.glx_context import create_glx_context

            self.context = create_glx_context()
        self.platform = platform
        self.renderer_name = GL.glGetString(GL.GL_RENDERER).decode()
        self._program = shaders.compileProgram(
            shaders.compileShader(_VERTEX, GL.GL_VERTEX_SHADER),
            shaders.compileShader(_FRAGMENT, GL.GL_FRAGMENT_SHADER),
        )
        depth = self._renderbuffer(GL.GL_DEPTH_COMPONENT24)
        self._fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
        colour = self._renderbuffer(GL.GL_RGBA8)
        GL.glFramebufferRenderbuffer(
            GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, colour
        )
        GL.glFramebufferRenderbuffer(
            GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, depth
        )
        if GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER) != GL.GL_FRAMEBUFFER_COMPLETE:
            raise VrError(f"OpenGL framebuffer of {self.width} x {self.height} is incomplete")
        self._target_fbo = GL.glGenFramebuffers(1)  # colour: the texture given per render
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._target_fbo)
        GL.glFramebufferRenderbuffer(
            GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, depth
        )
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        self._meshes: dict[int, tuple] = {}

    def _renderbuffer(self, internal_format: int) -> int:
        GL = self._GL
        buffer = GL.glGenRenderbuffers(1)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, buffer)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, internal_format, self.width, self.height)
        return int(buffer)

    def _upload(self, mesh) -> tuple:
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
            raw_vertex_attrib_pointer(  # the raw call: no PyOpenGL context bookkeeping
                location, 3, GL.GL_FLOAT, False, 24, ctypes.c_void_p(12 * location)
            )
        return mesh, vao, int(faces.size), (vbo, ebo)

    def _check_size(self, view: EyeView) -> None:
        if (view.width, view.height) != (self.width, self.height):
            raise VrError(
                f"view is {view.width} x {view.height} px, renderer {self.width} x {self.height}"
            )

    def _draw(self, scene: VrScene, view: EyeView) -> None:
        """Draw the scene's visible meshes into the bound framebuffer."""
        GL = self._GL
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
        visible = scene.visible_meshes()
        GL.glDisable(GL.GL_BLEND)
        self._draw_meshes([m for m in visible if m.opacity >= 1.0])
        translucent = [m for m in visible if m.opacity < 1.0]
        if translucent:  # over the opaque ones, blended, not hiding each other
            GL.glEnable(GL.GL_BLEND)
            GL.glBlendFuncSeparate(
                GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ZERO, GL.GL_ONE
            )
            GL.glDepthMask(GL.GL_FALSE)
            self._draw_meshes(translucent)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glDisable(GL.GL_BLEND)
        self._evict({id(m.mesh) for m in scene.meshes})

    def _draw_meshes(self, meshes) -> None:
        GL = self._GL
        colour = GL.glGetUniformLocation(self._program, "colour")
        alpha = GL.glGetUniformLocation(self._program, "alpha")
        for item in meshes:
            if id(item.mesh) not in self._meshes:
                self._meshes[id(item.mesh)] = self._upload(item.mesh)
            _, vao, count, _ = self._meshes[id(item.mesh)]
            GL.glUniform3f(colour, *item.colour)
            GL.glUniform1f(alpha, float(item.opacity))
            GL.glBindVertexArray(vao)
            GL.glDrawElements(GL.GL_TRIANGLES, count, GL.GL_UNSIGNED_INT, None)

    def _evict(self, keep: set[int]) -> None:
        """Free the buffers of meshes no longer in the scene (a live twin's old states)."""
        GL = self._GL
        for key in [k for k in self._meshes if k not in keep]:
            _, vao, _, buffers = self._meshes.pop(key)
            GL.glDeleteVertexArrays(1, [vao])
            GL.glDeleteBuffers(2, buffers)

    def render(self, scene: VrScene, view: EyeView) -> np.ndarray:
        """Render one eye: ``(height, width, 3)`` uint8 RGB, row 0 at the top.

        Meshes must be triangle surfaces; each is uploaded on first sight (a mesh changed in
        place later is not re-uploaded: give a new mesh object).
        """
        GL = self._GL
        self._check_size(view)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
        self._draw(scene, view)
        pixels = GL.glReadPixels(0, 0, self.width, self.height, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        return np.frombuffer(pixels, np.uint8).reshape(self.height, self.width, 3)[::-1].copy()

    def render_to_texture(self, scene: VrScene, view: EyeView, texture: int) -> None:
        """Render one eye straight into a 2-D texture of the eye size (an OpenXR swapchain image).

        The texture's row 0 is the image's bottom row (OpenGL's convention, which OpenXR's
        OpenGL swapchains follow); the values written are those :meth:`render` returns.
        """
        GL = self._GL
        self._check_size(view)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._target_fbo)
        GL.glFramebufferTexture2D(
            GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, int(texture), 0
        )
        if GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER) != GL.GL_FRAMEBUFFER_COMPLETE:
            raise VrError(f"cannot render into texture {texture}: framebuffer incomplete")
        self._draw(scene, view)
        GL.glFramebufferTexture2D(
            GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, 0, 0
        )
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)

    def close(self) -> None:
        """Release the EGL context."""
        self.context.destroy()
        self._meshes.clear()
