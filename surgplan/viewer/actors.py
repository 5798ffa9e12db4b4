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

__all__ = ["VIEWS", "add_structures", "encloses_outward", "pick_translucency", "place_camera"]

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

    A closed surface wound outward is drawn with back-face culling (:func:`encloses_outward`),
    as 3D Slicer draws its models by default: an opaque one looks the same (its front faces
    hide the back ones); a translucent organ shows one layer instead of two, so it is lighter
    and what lies inside shows more clearly. A software renderer draws the frame about a third
    faster (``benchmarks/viewer_rehearsal.py``).

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
        actor.prop.culling = "back" if encloses_outward(s.mesh) else "none"
        actors[name] = actor
    return actors


def encloses_outward(mesh: pv.PolyData) -> bool:
    """Whether a surface is closed (no open edges) with its triangles wound outward.

    Outward winding (counter-clockwise seen from outside) gives a positive signed volume.
    Only then may its back faces be culled: an open surface, or one wound inward, would lose
    the faces the viewer should see.

    Parameters
    ----------
    mesh : pyvista.PolyData
        A surface, any units.
    """
    if mesh.n_cells == 0 or mesh.n_open_edges > 0:
        return False
    tri = mesh if mesh.is_all_triangles else mesh.triangulate()
    p = np.asarray(tri.points, np.float64)
    f = np.asarray(tri.regular_faces)
    if len(f) == 0:
        return False
    p = p - p.mean(axis=0)
    signed = float(np.einsum("ij,ij->i", p[f[:, 0]], np.cross(p[f[:, 1]], p[f[:, 2]])).sum())
    return signed > 0.0


def pick_translucency(renderer: object) -> bool:
    """Order-independent translucency only where it changes the picture; return whether on.

    One translucent actor drawn with back-face culling (a closed organ, :func:`add_structures`)
    is a single layer over opaque geometry: plain alpha blending draws it as VTK's
    order-independent pass does (at most 7 of 255 grey levels apart, where the organ's own
    folds overlap, on the benchmark's liver) and about 8 ms faster per frame in Mesa's
    software renderer. With two translucent actors, or an unculled one, the order matters and
    the order-independent pass stays on.

    Parameters
    ----------
    renderer : vtkRenderer
        The 3D view's renderer.
    """
    translucent = []
    actors = renderer.GetActors()  # type: ignore[attr-defined]
    actors.InitTraversal()
    for _ in range(actors.GetNumberOfItems()):
        actor = actors.GetNextActor()
        if actor.GetVisibility() and actor.GetProperty().GetOpacity() < 1.0:
            translucent.append(actor)
    single = len(translucent) == 1 and bool(translucent[0].GetProperty().GetBackfaceCulling())
    use = bool(translucent) and not single
    if bool(renderer.GetUseOIT()) != use:  # type: ignore[attr-defined]
        renderer.SetUseOIT(use)  # type: ignore[attr-defined]
    return use


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
