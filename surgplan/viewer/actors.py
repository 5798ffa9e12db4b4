"""Drawing a :class:`~surgplan.viewer.scene.Scene` into any pyvista plotter, and the six views.

Shared by the offscreen snapshot and the Qt window (a ``pyvistaqt.QtInteractor`` is a
``pyvista.Plotter``). Views are named from the patient (LPS: +x left, +y posterior,
+z superior): ``"anterior"`` puts the camera in front of the patient, head up, as a surgeon
facing the supine patient sees the anatomy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyvista as pv

from surgplan.viewer.scene import Scene, ViewerError

__all__ = ["VIEWS", "add_structures", "place_camera"]

#: View name -> (direction from the scene's centre to the camera, camera up), LPS.
VIEWS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
    "inferior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
}


def add_structures(
    plotter: pv.Plotter, scene: Scene, names: Sequence[str] = ()
) -> dict[str, pv.Actor]:
    """Add the scene's surfaces in their colours and opacities; return the actors by name.

    Parameters
    ----------
    plotter : pyvista.Plotter
        Any plotter (offscreen or a ``QtInteractor``).
    scene : Scene
        What to draw.
    names : sequence of str
        Structures to draw (default all).

    Raises
    ------
    ViewerError
        A name the scene does not have.
    """
    actors = {}
    for name in names or scene.names:
        s = scene.structure(name)
        actor = plotter.add_mesh(
            s.mesh, color=s.colour, opacity=s.opacity, smooth_shading=True, name=name,
            reset_camera=False,
        )  # fmt: skip
        actor.user_matrix = s.T_world_structure
        actors[name] = actor
    return actors


def place_camera(plotter: pv.Plotter, view: str, bounds: Sequence[float] | None = None) -> None:
    """Point the camera at the scene from one of :data:`VIEWS`.

    Parameters
    ----------
    plotter : pyvista.Plotter
        The plotter.
    view : str
        A key of :data:`VIEWS`.
    bounds : sequence of 6 floats, optional
        Region to frame (default the plotter's bounds), LPS mm.

    Raises
    ------
    ViewerError
        An unknown view name.
    """
    if view not in VIEWS:
        raise ViewerError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    direction, up = VIEWS[view]
    b = np.asarray(plotter.bounds if bounds is None else bounds, float).reshape(3, 2)
    centre = b.mean(axis=1)
    extent = float(np.linalg.norm(b[:, 1] - b[:, 0])) or 1.0
    plotter.camera_position = [
        tuple(centre + 1.6 * extent * np.asarray(direction)),
        tuple(centre),
        up,
    ]
    plotter.reset_camera(bounds=tuple(b.ravel()))
    plotter.reset_camera_clipping_range()
