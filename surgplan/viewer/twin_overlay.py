"""The live twin drawn in a pyvista plotter, one :class:`~.live_frame.LiveFrame` at a time.

:class:`TwinOverlay` owns a few actors of one plotter, all named with its ``prefix``:

- ``<prefix>_organ``: the posed, deformed organ surface (translucent, so that the targets
  inside show); its points are updated in place from each frame (tracker space, mm);
- ``<prefix>_region``: the recommended acquisition region, the organ's triangles whose three
  vertices are in the region (:meth:`LiveFrame.region_vertex_ids`), drawn over the organ in
  :data:`REGION_RGB`;
- ``<prefix>_target_<i>``: each target's predicted-error sphere, radius ``radius95_mm`` about
  its position, in :data:`TARGET_RGB` (the colour 3D Slicer gets), with a small opaque core;
- ``<prefix>_verdict``: a text actor always showing the verdict
  (:meth:`LiveFrame.verdict_text`), green when trusted.

A frame that is not trustworthy (or is not a state: pending, refused) greys everything out in
:data:`UNTRUSTED_RGB` and the text says why; a frame without geometry keeps the last organ
and targets, greyed. The overlay never renders by itself unless asked (``render=True``):
callers on a GUI thread decide when to draw.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pyvista as pv
import vtk

from surgplan.viewer.live_frame import LiveFrame

__all__ = [
    "ORGAN_RGB",
    "REGION_RGB",
    "TARGET_RGB",
    "TRUSTED_TEXT_RGB",
    "UNTRUSTED_RGB",
    "UNTRUSTED_TEXT_RGB",
    "TwinOverlay",
]


def _rgb8(r: int, g: int, b: int) -> tuple[float, float, float]:
    return (r / 255, g / 255, b / 255)


#: Colours (r, g, b in 0-1, exact in 8 bits as VTK keeps them).
ORGAN_RGB = _rgb8(204, 115, 89)
REGION_RGB = _rgb8(38, 217, 77)
TARGET_RGB = _rgb8(255, 64, 64)  # surgplan.live.publish.TARGET_RGBA, as 3D Slicer shows them
UNTRUSTED_RGB = _rgb8(140, 140, 140)
TRUSTED_TEXT_RGB = (0.2, 0.9, 0.3)
UNTRUSTED_TEXT_RGB = (1.0, 0.55, 0.1)
#: Opacities.
ORGAN_OPACITY = 0.3
REGION_OPACITY = 0.7
SPHERE_OPACITY = 0.45
#: Radius of a target's opaque core, mm.
CORE_RADIUS_MM = 1.5


@functools.cache
def _unit_sphere(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Points exactly on the unit sphere (float64) and the faces of a VTK sphere."""
    s = pv.Sphere(radius=1.0, theta_resolution=resolution, phi_resolution=resolution)
    p = np.asarray(s.points, np.float64)
    return p / np.linalg.norm(p, axis=1, keepdims=True), np.asarray(s.faces)


def sphere_mesh(centre_mm: np.ndarray, radius_mm: float, resolution: int = 32) -> pv.PolyData:
    """A sphere of ``radius_mm`` about ``centre_mm`` (float64 points, exactly on it)."""
    p, faces = _unit_sphere(resolution)
    return pv.PolyData(p * float(radius_mm) + np.asarray(centre_mm, np.float64), faces.copy())


def _faces_vtk(faces: np.ndarray) -> np.ndarray:
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    return np.hstack([np.full((len(f), 1), 3, np.int64), f]).ravel()


class TwinOverlay:
    """Actors of the live twin in ``plotter`` (module docstring).

    Parameters
    ----------
    plotter : pyvista.Plotter
        Any pyvista plotter (a ``pyvistaqt.QtInteractor`` or an offscreen one).
    prefix : str, keyword-only
        Prefix of the actors' names.
    reset_camera : bool, keyword-only
        Frame the organ when it first appears.
    """

    def __init__(self, plotter: pv.Plotter, *, prefix: str = "live", reset_camera: bool = True):
        self.plotter = plotter
        self.prefix = prefix
        self._reset_camera = reset_camera
        self.organ: pv.PolyData | None = None
        self.region: pv.PolyData | None = None
        self.actors: dict[str, Any] = {}
        self._faces: np.ndarray | None = None
        self.frame: LiveFrame | None = None
        self.text_actor = vtk.vtkTextActor()
        self.text_actor.SetInput("live: waiting for the first update")
        self.text_actor.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        self.text_actor.SetPosition(0.01, 0.95)
        prop = self.text_actor.GetTextProperty()
        prop.SetFontSize(16)
        prop.SetColor(*UNTRUSTED_RGB)
        prop.SetBold(True)
        plotter.add_actor(
            self.text_actor,
            reset_camera=False,
            name=f"{prefix}_verdict",
            pickable=False,
            render=False,
        )
        self.actors[f"{prefix}_verdict"] = self.text_actor

    # --- state ------------------------------------------------------------------------------

    @property
    def trusted(self) -> bool:
        """Whether the overlay shows a trusted state (not greyed)."""
        f = self.frame
        return f is not None and f.status == "state" and f.trustworthy

    @property
    def text(self) -> str:
        """The verdict line shown."""
        return str(self.text_actor.GetInput())

    # --- drawing ----------------------------------------------------------------------------

    def apply(self, frame: LiveFrame, *, render: bool = False) -> None:
        """Show ``frame``: move and deform the organ, update targets, region and verdict."""
        self.frame = frame
        first = self.organ is None
        if frame.has_geometry:
            self._set_organ(frame)
            self._set_region(frame)
        if frame.targets or frame.has_geometry:
            self._set_targets(frame)
        self._style()
        if first and self.organ is not None and self._reset_camera:
            self.plotter.reset_camera(bounds=self.organ.bounds)
        if render:
            self.plotter.render()

    def _mesh_actor(self, name: str, mesh: pv.PolyData, rgb: tuple, opacity: float) -> None:
        """Show ``mesh`` as actor ``name``: its dataset updated in place when it exists."""
        actor = self.actors.get(name)
        if actor is not None:
            actor.mapper.dataset.copy_from(mesh)
            return
        self.actors[name] = self.plotter.add_mesh(
            mesh, name=name, color=rgb, opacity=opacity, reset_camera=False, render=False
        )

    def _drop(self, name: str) -> None:
        if name in self.actors:
            self.plotter.remove_actor(self.actors.pop(name), render=False)

    def _set_organ(self, frame: LiveFrame) -> None:
        pts = np.asarray(frame.organ_points_mm, np.float64)
        faces = np.asarray(frame.organ_faces, np.int64)
        same = (
            self.organ is not None
            and self._faces is not None
            and np.array_equal(self._faces, faces)
            and self.organ.n_points == len(pts)
        )
        if same:
            self.organ.points = pts  # type: ignore[union-attr]
            return
        self._faces = faces.copy()
        name = f"{self.prefix}_organ"
        self._drop(name)
        self.organ = pv.PolyData(pts, _faces_vtk(faces))
        self._mesh_actor(name, self.organ, ORGAN_RGB, ORGAN_OPACITY)

    def _set_region(self, frame: LiveFrame) -> None:
        name = f"{self.prefix}_region"
        ids = frame.region_vertex_ids()
        faces = np.asarray(frame.organ_faces, np.int64)
        inside = np.zeros(len(frame.organ_points_mm), bool)  # type: ignore[arg-type]
        inside[ids] = True
        sub = faces[inside[faces].all(axis=1)]
        if len(sub) == 0:
            self._drop(name)
            self.region = None
            return
        new = name not in self.actors
        self.region = pv.PolyData(np.asarray(frame.organ_points_mm), _faces_vtk(sub))
        self._mesh_actor(name, self.region, REGION_RGB, REGION_OPACITY)
        if new:
            mapper = self.actors[name].mapper
            mapper.SetRelativeCoincidentTopologyPolygonOffsetParameters(-2.0, -2.0)

    def _set_targets(self, frame: LiveFrame) -> None:
        keep = set()
        for i, t in enumerate(frame.targets):
            centre = np.asarray(t.position_mm, np.float64)
            core = f"{self.prefix}_target_{i}_core"
            self._mesh_actor(core, sphere_mesh(centre, CORE_RADIUS_MM, 12), TARGET_RGB, 1.0)
            keep.add(core)
            if math.isfinite(t.radius95_mm) and t.radius95_mm > 0:
                name = f"{self.prefix}_target_{i}"
                sphere = sphere_mesh(centre, t.radius95_mm)
                self._mesh_actor(name, sphere, TARGET_RGB, SPHERE_OPACITY)
                keep.add(name)
        stale = [n for n in self.actors if n.startswith(f"{self.prefix}_target_") and n not in keep]
        for name in stale:
            self._drop(name)

    def _style(self) -> None:
        ok = self.trusted
        colours = {
            f"{self.prefix}_organ": ORGAN_RGB,
            f"{self.prefix}_region": REGION_RGB,
        }
        for name, actor in self.actors.items():
            if name == f"{self.prefix}_verdict":
                continue
            rgb = colours.get(name, TARGET_RGB)
            actor.prop.color = rgb if ok else UNTRUSTED_RGB
        assert self.frame is not None
        self.text_actor.SetInput(self.frame.verdict_text())
        rgb = TRUSTED_TEXT_RGB if ok else UNTRUSTED_TEXT_RGB
        self.text_actor.GetTextProperty().SetColor(*rgb)

    def clear(self) -> None:
        """Remove every actor of the overlay from the plotter."""
        for actor in list(self.actors.values()):
            self.plotter.remove_actor(actor, render=False)
        self.actors.clear()
        self.organ = self.region = None
        self._faces = None
