"""The live twin drawn in a pyvista plotter, one :class:`~.live_frame.LiveFrame` at a time.

**One frame for the whole scene: model (CT) space, LPS mm.** A frame is published in tracker
space; the overlay maps its organ, targets and region back with ``T_model_tracker =
T_tracker_model^-1``, which keeps the twin's deformation and removes only its pose. Model space
rather than tracker space because everything else the viewer shows is already there and stays
valid unchanged: the case's structures, the CT slices with their label maps and crosshair, the
markups, the clipping plane, picking and measurements, and the camera the window set from the
structures (so it frames the twin too). Tracker space would need every one of those moved by
``T_tracker_model`` at each frame, and the slices resampled. The pose is not lost: it is the
published ``ModelToTracker``, and what the surgeon needs against the anatomy is the shape.

The case's structures follow the organ's deformation field
(:class:`~surgplan.viewer.structure_follow.StructureFollower`: the organ's model-space
displacement ``T_model_tracker p - p_rest`` interpolated to their vertices) when the overlay has
the twin's rest surface (the frame's ``organ_rest_mm`` for logged states, or ``rest_organ_mm``)
and a ``structures`` provider; their own meshes are never changed (the actors get deformed
copies, given back by :meth:`TwinOverlay.clear`). A frame that is not trusted puts them back at
rest: an untrustworthy deformation is greyed on the twin, never shown on the anatomy.

:class:`TwinOverlay` owns a few actors of one plotter, all named with its ``prefix``:

- ``<prefix>_organ``: the deformed organ surface (translucent, so that the targets inside
  show; drawn just in front of the case's coincident organ mesh); its points are updated in
  place from each frame (model space, mm);
- ``<prefix>_region``: the recommended acquisition region, the organ's triangles whose three
  vertices are in the region (:meth:`LiveFrame.region_vertex_ids`: the published vertex ids),
  drawn over the organ in :data:`REGION_RGB`;
- ``<prefix>_target_<i>``: each target's predicted-error sphere, radius ``radius95_mm`` about
  its position, in :data:`TARGET_RGB` (the colour 3D Slicer gets), with a small opaque core;
- ``<prefix>_verdict``: a text actor always showing the verdict
  (:meth:`LiveFrame.verdict_text`), green when trusted, and why the structures do not follow
  when they cannot (:attr:`TwinOverlay.note`).

A frame that is not trustworthy (or is not a state: pending, refused) greys everything out in
:data:`UNTRUSTED_RGB` and the text says why; a frame without geometry keeps the last organ
and targets, greyed. The overlay never renders by itself unless asked (``render=True``):
callers on a GUI thread decide when to draw.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyvista as pv
import vtk
from numpy.typing import ArrayLike

from surgplan.viewer.live_frame import LiveFrame
from surgplan.viewer.scene import ViewerError
from surgplan.viewer.structure_follow import StructureFollower, organ_displacement_mm

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
        Frame the organ when it first appears, unless structures are shown (the camera set
        from them frames the twin, which is drawn in their space).
    structures : callable, keyword-only, optional
        Returns the case's structure actors by name (model space), called at each frame.
    rest_organ_mm : array_like (V, 3), keyword-only, optional
        The twin's rest surface, model space (a frame's ``organ_rest_mm`` wins).

    Attributes
    ----------
    T_model_tracker : numpy.ndarray (4, 4) or None
        Inverse of the last frame's registration: what maps the published geometry.
    note : str
        Why the structures do not follow the twin (empty when they do, or there are none).
    """

    def __init__(
        self,
        plotter: pv.Plotter,
        *,
        prefix: str = "live",
        reset_camera: bool = True,
        structures: Callable[[], Mapping[str, Any]] | None = None,
        rest_organ_mm: ArrayLike | None = None,
    ):
        self.plotter = plotter
        self.prefix = prefix
        self._reset_camera = reset_camera
        self._structures = structures
        self._rest = None if rest_organ_mm is None else np.asarray(rest_organ_mm, np.float64)
        self.follower: StructureFollower | None = None
        self.T_model_tracker: np.ndarray | None = None
        self.note = ""
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

    def set_rest_organ(self, rest_organ_mm: ArrayLike | None) -> None:
        """Give the twin's rest surface (model space) once it is known (e.g. loaded later)."""
        self._rest = None if rest_organ_mm is None else np.asarray(rest_organ_mm, np.float64)

    def apply(self, frame: LiveFrame, *, render: bool = False) -> None:
        """Show ``frame``: deform the organ and the structures, update targets, region, verdict."""
        self.frame = frame
        first = self.organ is None
        if frame.has_geometry:
            self.T_model_tracker = np.linalg.inv(np.asarray(frame.T_tracker_model, np.float64))
            organ_mm = self._to_model(frame.organ_points_mm)
            self._set_organ(organ_mm, frame.organ_faces)
            self._set_region(frame, organ_mm)
            self._follow(frame)
        if (frame.targets or frame.has_geometry) and self.T_model_tracker is not None:
            self._set_targets(frame)
        self._style()
        if first and self.organ is not None and self._reset_camera and not self._has_structures():
            self.plotter.reset_camera(bounds=self.organ.bounds)
        if render:
            self.plotter.render()

    def _to_model(self, points_tracker_mm: Any) -> np.ndarray:
        T = self.T_model_tracker
        assert T is not None
        return np.asarray(points_tracker_mm, np.float64) @ T[:3, :3].T + T[:3, 3]

    def _has_structures(self) -> bool:
        return self._structures is not None and bool(self._structures())

    def _follow(self, frame: LiveFrame) -> None:
        """Deform the case's structures with the organ (module docstring)."""
        rest = frame.organ_rest_mm if frame.organ_rest_mm is not None else self._rest
        if self._structures is None or not self._structures():
            self.note = ""
            return
        if rest is None:
            self.note = "structures at rest: the twin's rest surface is not known yet"
            return
        try:
            u = organ_displacement_mm(frame.organ_points_mm, frame.T_tracker_model, rest)
        except ViewerError as error:
            self.note = f"structures not following the twin: {error}"
            return
        if self.follower is None or self.follower.rest.shape != rest.shape:
            if self.follower is not None:
                self.follower.release()
            self.follower = StructureFollower(rest, self._structures)
        if not (frame.status == "state" and frame.trustworthy):
            self.follower.at_rest()  # an untrusted deformation is not shown on the anatomy
            self.note = "structures at rest (fit not trusted)"
            return
        targets = {t.name: self._to_model(t.position_mm[None])[0] for t in frame.targets}
        self.follower.apply(u, targets)
        self.note = self.follower.note

    def _mesh_actor(self, name: str, mesh: pv.PolyData, rgb: tuple, opacity: float) -> None:
        """Show ``mesh`` as actor ``name``: its dataset updated in place when it exists."""
        actor = self.actors.get(name)
        if actor is not None:
            actor.mapper.dataset.copy_from(mesh)
            return
        from surgplan.viewer.actors import encloses_outward

        actor = self.plotter.add_mesh(
            mesh, name=name, color=rgb, opacity=opacity, reset_camera=False, render=False
        )
        if encloses_outward(mesh):  # closed: its back faces add only fragments (actors.py)
            actor.prop.culling = "back"
        self.actors[name] = actor

    def _drop(self, name: str) -> None:
        if name in self.actors:
            self.plotter.remove_actor(self.actors.pop(name), render=False)

    def _set_organ(self, organ_mm: np.ndarray, organ_faces: Any) -> None:
        pts = organ_mm
        faces = np.asarray(organ_faces, np.int64)
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
        mapper = self.actors[name].mapper  # in front of the case's coincident organ mesh
        mapper.SetRelativeCoincidentTopologyPolygonOffsetParameters(-1.0, -1.0)

    def _set_region(self, frame: LiveFrame, organ_mm: np.ndarray) -> None:
        name = f"{self.prefix}_region"
        ids = frame.region_vertex_ids()
        faces = np.asarray(frame.organ_faces, np.int64)
        inside = np.zeros(len(organ_mm), bool)
        inside[ids] = True
        sub = faces[inside[faces].all(axis=1)]
        if len(sub) == 0:
            self._drop(name)
            self.region = None
            return
        new = name not in self.actors
        self.region = pv.PolyData(organ_mm, _faces_vtk(sub))
        self._mesh_actor(name, self.region, REGION_RGB, REGION_OPACITY)
        if new:
            mapper = self.actors[name].mapper
            mapper.SetRelativeCoincidentTopologyPolygonOffsetParameters(-2.0, -2.0)

    def _set_targets(self, frame: LiveFrame) -> None:
        keep = set()
        for i, t in enumerate(frame.targets):
            centre = self._to_model(np.asarray(t.position_mm, np.float64)[None])[0]
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
        note = f"\n{self.note}" if self.note else ""
        self.text_actor.SetInput(self.frame.verdict_text() + note)
        rgb = TRUSTED_TEXT_RGB if ok else UNTRUSTED_TEXT_RGB
        self.text_actor.GetTextProperty().SetColor(*rgb)

    def clear(self) -> None:
        """Remove every actor of the overlay; give the structures their own meshes back."""
        if self.follower is not None:
            self.follower.release()
            self.follower = None
        for actor in list(self.actors.values()):
            self.plotter.remove_actor(actor, render=False)
        self.actors.clear()
        self.organ = self.region = None
        self._faces = None
