"""Offscreen pictures of the twin (VTK through EGL: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# VTK picks an X11 window by default and complains without a display; EGL renders headless.
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import numpy as np  # noqa: E402
import pyvista as pv  # noqa: E402

from surgplan.atomic import atomic_path  # noqa: E402

#: Display colours (r, g, b in 0-1) and opacities of the usual structures.
STYLE: dict[str, tuple[tuple[float, float, float], float]] = {
    "liver": ((0.80, 0.45, 0.35), 0.35),
    "tumour": ((1.00, 0.85, 0.10), 1.0),
    "vessels": ((0.25, 0.45, 0.95), 1.0),
    "portal_vein": ((0.55, 0.30, 0.90), 1.0),
    "hepatic_veins": ((0.25, 0.45, 0.95), 1.0),
    "bone": ((0.92, 0.90, 0.82), 1.0),
    "spleen": ((0.60, 0.25, 0.45), 0.6),
    "kidney": ((0.85, 0.55, 0.45), 0.6),
}
_FALLBACK = ((0.7, 0.7, 0.7), 0.8)


def render_structures(
    surfaces: Mapping[str, pv.PolyData],
    path: str | os.PathLike[str],
    *,
    window_size: tuple[int, int] = (900, 700),
    view: str = "anterior",
    points: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Render closed surfaces (LPS mm) to a PNG, as a surgeon facing the patient sees them.

    Parameters
    ----------
    surfaces
        Structure name -> surface in LPS mm.
    path
        PNG destination (written atomically).
    window_size
        Image width and height in pixels.
    view
        ``"anterior"`` (camera in front of the patient, head up), ``"right"`` or
        ``"anterior-inferior"`` (from the front and below, as a retractor is seen).
    points
        Name -> point positions (N, 3) in LPS mm, drawn as small dark-green spheres (e.g.
        registered tracker points).

    Returns
    -------
    Path
        The written PNG.
    """
    plotter = pv.Plotter(off_screen=True, window_size=list(window_size))
    plotter.set_background("white")
    for name, surface in surfaces.items():
        colour, opacity = STYLE.get(name, _FALLBACK)
        plotter.add_mesh(surface, color=colour, opacity=opacity, smooth_shading=True, label=name)
    for name, xyz in (points or {}).items():
        plotter.add_mesh(
            pv.PolyData(np.asarray(xyz, dtype=float)),
            color=(0.05, 0.45, 0.20),
            point_size=7.0,
            render_points_as_spheres=True,
            label=name,
        )
    plotter.add_legend(bcolor="white", face="circle", size=(0.18, 0.18))
    _place_camera(plotter, view)
    out = Path(path)
    with atomic_path(out) as tmp:
        plotter.screenshot(str(tmp))
    plotter.close()
    return out


def render_displacement(
    mesh: pv.DataSet,
    path: str | os.PathLike[str],
    *,
    window_size: tuple[int, int] = (900, 700),
    context: pv.PolyData | None = None,
) -> Path:
    """Render a mesh warped by its ``displacement_mm`` point data, coloured by |u| in mm.

    Parameters
    ----------
    mesh
        FE result with point data ``displacement_mm`` (N, 3) in mm.
    path
        PNG destination (written atomically).
    window_size
        Image size in pixels.
    context
        Optional undeformed surface drawn as a faint wireframe.
    """
    surface = mesh.extract_surface(algorithm="dataset_surface")
    surface.point_data["|u| (mm)"] = np.linalg.norm(surface.point_data["displacement_mm"], axis=1)
    warped = surface.warp_by_vector("displacement_mm")
    plotter = pv.Plotter(off_screen=True, window_size=list(window_size))
    plotter.set_background("white")
    plotter.add_mesh(warped, scalars="|u| (mm)", cmap="viridis", smooth_shading=True)
    if context is not None:
        plotter.add_mesh(context, style="wireframe", color="grey", opacity=0.12)
    _place_camera(plotter, "anterior-inferior")
    out = Path(path)
    with atomic_path(out) as tmp:
        plotter.screenshot(str(tmp))
    plotter.close()
    return out


def _place_camera(plotter: pv.Plotter, view: str) -> None:
    """Camera looking at the scene from the patient's front (LPS: anterior is -y), head up (+z)."""
    bounds = np.asarray(plotter.bounds).reshape(3, 2)
    centre = bounds.mean(axis=1)
    extent = float(np.linalg.norm(bounds[:, 1] - bounds[:, 0]))
    direction = {
        "anterior": np.array([0.0, -1.0, 0.0]),
        "right": np.array([-1.0, 0.0, 0.0]),
        "anterior-inferior": np.array([0.3, -1.0, -0.6]) / np.linalg.norm([0.3, -1.0, -0.6]),
    }[view]
    plotter.camera_position = [
        tuple(centre + 1.6 * extent * direction),
        tuple(centre),
        (0.0, 0.0, 1.0),
    ]
    plotter.reset_camera_clipping_range()
