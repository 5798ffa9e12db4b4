"""Per-eye offscreen rendering of a :class:`vr.scene.VrScene` with VTK (EGL, no display needed).

The camera of each eye takes the view's pose (``vtkCamera`` position, focal point and view-up
from ``T_world_eye``) and the view's asymmetric field of view as an explicit projection matrix
(:func:`vr.views.projection_matrix`, ``UseExplicitProjectionTransformMatrix``), so the image
is exactly what :func:`vr.views.project_points` predicts. Multisampling is off (pixel-exact).
"""

from __future__ import annotations

import numpy as np
import vtk
from vtk.util.numpy_support import vtk_to_numpy

from vr.errors import VrError
from vr.scene import VrScene
from vr.views import EyeView

__all__ = ["VtkEyeRenderer"]


def _vtk_matrix(M: np.ndarray) -> vtk.vtkMatrix4x4:
    out = vtk.vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            out.SetElement(i, j, float(M[i, j]))
    return out


class VtkEyeRenderer:
    """Renders eye images of one size offscreen; actors are built once per mesh and reused.

    Parameters
    ----------
    width, height : int
        Eye image size, pixels.
    background : tuple of float
        RGB 0..1 behind the twin (black: additive displays show black as transparent).
    """

    def __init__(self, width: int, height: int, background: tuple[float, float, float] = (0, 0, 0)):
        if width < 1 or height < 1:
            raise VrError(f"eye image size must be positive, got {width} x {height}")
        self.width, self.height = int(width), int(height)
        self._window = vtk.vtkRenderWindow()
        self._window.SetOffScreenRendering(1)
        self._window.SetMultiSamples(0)
        self._window.SetSize(self.width, self.height)
        self._renderer = vtk.vtkRenderer()
        self._renderer.SetBackground(*background)
        self._window.AddRenderer(self._renderer)
        self._grab = vtk.vtkWindowToImageFilter()
        self._grab.SetInput(self._window)
        self._grab.SetInputBufferTypeToRGB()
        self._grab.ReadFrontBufferOff()
        # id(mesh) -> (mesh, actor): holding the mesh keeps its id from being reused
        self._actors: dict[int, tuple[object, vtk.vtkActor]] = {}

    def _sync_actors(self, scene: VrScene) -> None:
        visible = scene.visible_meshes()
        wanted = {id(m.mesh) for m in visible}
        for key in list(self._actors):
            if key not in wanted:
                self._renderer.RemoveActor(self._actors.pop(key)[1])
        pose = _vtk_matrix(scene.T_world_twin)
        for item in visible:
            cached = self._actors.get(id(item.mesh))
            actor = cached[1] if cached is not None else None
            if actor is None:
                mapper = vtk.vtkPolyDataMapper()
                mapper.SetInputData(item.mesh)
                mapper.ScalarVisibilityOff()
                actor = vtk.vtkActor()
                actor.SetMapper(mapper)
                self._renderer.AddActor(actor)
                self._actors[id(item.mesh)] = (item.mesh, actor)
            prop = actor.GetProperty()
            prop.SetColor(*item.colour)
            prop.SetOpacity(item.opacity)
            actor.SetUserMatrix(pose)

    def _place_camera(self, view: EyeView) -> None:
        T = view.pose.matrix()
        position, forward, up = T[:3, 3], -T[:3, 2], T[:3, 1]
        camera = self._renderer.GetActiveCamera()
        camera.SetPosition(*position)
        camera.SetFocalPoint(*(position + 100.0 * forward))
        camera.SetViewUp(*up)
        camera.SetExplicitProjectionTransformMatrix(_vtk_matrix(view.projection_matrix()))
        camera.UseExplicitProjectionTransformMatrixOn()

    def render(self, scene: VrScene, view: EyeView) -> np.ndarray:
        """Render one eye.

        Parameters
        ----------
        scene : VrScene
            What to draw (only :meth:`VrScene.visible_meshes`).
        view : EyeView
            The eye; its size must be the renderer's.

        Returns
        -------
        numpy.ndarray
            ``(height, width, 3)`` uint8 RGB, row 0 at the top.
        """
        if (view.width, view.height) != (self.width, self.height):
            raise VrError(
                f"view is {view.width} x {view.height} px but the renderer is "
                f"{self.width} x {self.height}"
            )
        self._sync_actors(scene)
        self._place_camera(view)
        self._window.Render()
        self._grab.Modified()
        self._grab.Update()
        image = self._grab.GetOutput()
        pixels = vtk_to_numpy(image.GetPointData().GetScalars())
        return np.ascontiguousarray(pixels.reshape(self.height, self.width, 3)[::-1])

    def close(self) -> None:
        """Release the offscreen window's graphics resources."""
        self._renderer.RemoveAllViewProps()
        self._actors.clear()
        self._window.Finalize()
