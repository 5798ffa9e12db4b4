"""The real liver retracted end to end: meshed, solved, written and pictured.

``liver.vtk`` with ``liver_tumours.vtk`` inside is tetrahedralised and held by the documented
liver supports of :func:`surgplan.liver_defaults.default_liver_supports` (the extrahepatic
hepatic-vein trunks fixed; a sliding elastic bed with weak ligament springs on the
posterior/diaphragmatic surface); a rigid retractor blade lifts the edge of the inferior lobe
anteriorly and cranially, and the lobe follows (:func:`liver_retraction_demo`;
``benchmarks/biomech_liver_supports.py`` compares these supports with the former ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyvista as pv

from biomech.loads import LoadCase, PrescribedDisplacement, SphereRegion
from surgplan.liver_defaults import default_liver_supports

if TYPE_CHECKING:
    from biomech.materials import Material
    from biomech.mesh import FEMesh

__all__ = ["RetractionDemoResult", "liver_retraction_demo"]

#: Radius of the retractor patch at the liver's most inferior point, mm.
RETRACTOR_RADIUS_MM = 20.0
#: Direction of the lift (LPS): anterior and superior, off the hilum of a supine patient.
LIFT_DIRECTION_LPS = (0.0, -np.sqrt(0.5), np.sqrt(0.5))


@dataclass(frozen=True)
class RetractionDemoResult:
    """Headline numbers and files of :func:`liver_retraction_demo` (mm, kPa).

    Attributes
    ----------
    cells : int
        Tetrahedra of the mesh.
    dofs : int
        Unknowns of the finite-element problem.
    regions : Mapping[str, int]
        Region name -> cell region id (``liver``, ``tumour``).
    max_displacement_mm, max_tumour_displacement_mm : float
        Largest displacement of the liver and of the tumour, mm.
    max_von_mises_kpa : float
        Largest cell von Mises stress, kPa.
    picture, vtu : str
        The PNG picture and the VTU result.
    """

    cells: int
    dofs: int
    regions: Mapping[str, int]
    max_displacement_mm: float
    max_tumour_displacement_mm: float
    max_von_mises_kpa: float
    picture: str
    vtu: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready summary (the demo report's row)."""
        return {
            "cells": self.cells,
            "dofs": self.dofs,
            "regions": dict(self.regions),
            "max_displacement_mm": self.max_displacement_mm,
            "max_tumour_displacement_mm": self.max_tumour_displacement_mm,
            "max_von_mises_kpa": self.max_von_mises_kpa,
            "picture": self.picture,
            "vtu": self.vtu,
        }


def render_retraction(grid: pv.UnstructuredGrid, picture: Path) -> Path:
    """Picture of the deformed liver coloured by |u| (mm) over its undeformed wireframe.

    Parameters
    ----------
    grid : pyvista.UnstructuredGrid
        Result grid with point data ``displacement_mm``.
    picture : Path
        The PNG to write (900 x 700 pixels).
    """
    grid = grid.copy()
    grid.point_data["|u| mm"] = np.linalg.norm(grid.point_data["displacement_mm"], axis=1)
    warped = grid.warp_by_vector("displacement_mm")
    plotter = pv.Plotter(off_screen=True, window_size=(900, 700))
    plotter.add_mesh(
        grid.extract_surface(algorithm="dataset_surface"),
        style="wireframe",
        color="grey",
        opacity=0.15,
    )
    plotter.add_mesh(
        warped.extract_surface(algorithm="dataset_surface"), scalars="|u| mm", cmap="viridis"
    )
    plotter.view_vector((0.3, -1.0, -0.6), viewup=(0.0, 0.0, 1.0))  # anterior-inferior (LPS)
    plotter.screenshot(str(picture))
    plotter.close()
    return picture


def _max_region_displacement_mm(grid: pv.UnstructuredGrid, region_id: int) -> float:
    cells = grid.cell_data["region"] == region_id
    sub = grid.extract_cells(np.flatnonzero(cells))
    return float(np.linalg.norm(sub.point_data["displacement_mm"], axis=1).max())


def _lowest_point(surface: pv.PolyData) -> np.ndarray:
    """Most inferior point (LPS z) of the surface's largest piece, mm.

    Taken on the input surface, not on the tetrahedral mesh's boundary, so that the retractor
    sits at the same place on every mesh of the liver (on the 6 mm and 3 mm meshes the
    boundary's lowest vertices differ by millimetres, which moved the blade's patch and
    changed the displacement field by 8 % instead of 5 %).
    """
    piece = surface.connectivity("largest")
    pts = np.asarray(piece.points, dtype=np.float64)
    return pts[np.argmin(pts[:, 2])]


def _retraction_problem(
    src: Path, target_edge_mm: float, lift_mm: float
) -> tuple[Any, FEMesh, dict[int, Material], LoadCase]:
    """The tetrahedralised liver (with tumour), its FE mesh, materials and retraction loads."""
    from biomech.materials import LIVER_HEALTHY, TUMOUR
    from biomech.mesh import from_unstructured_grid
    from imaging.mesh_io import read_surface
    from imaging.volume_mesh import tetrahedralize

    surfaces = {
        "liver": read_surface(src / "liver.vtk"),
        "tumour": read_surface(src / "liver_tumours.vtk"),
    }
    veins = read_surface(src / "hepatic_veins.vtk")
    vm = tetrahedralize(surfaces, outer="liver", inner=["tumour"], target_edge_mm=target_edge_mm)
    fe = from_unstructured_grid(vm.grid, region_names=vm.regions)
    lowest = _lowest_point(surfaces["liver"])
    supports, _ = default_liver_supports(fe, {"hepatic_veins": veins})
    loads = LoadCase(
        supports=supports,
        displacements=[
            PrescribedDisplacement(
                SphereRegion(tuple(lowest), RETRACTOR_RADIUS_MM),
                tuple(lift_mm * np.asarray(LIFT_DIRECTION_LPS)),
                profile="uniform",  # a rigid blade: a "bump" would clamp the patch rim
                name="retractor",
            )
        ],
    )
    mats = {vm.regions["liver"]: LIVER_HEALTHY}
    if "tumour" in vm.regions:
        mats[vm.regions["tumour"]] = TUMOUR
    return vm, fe, mats, loads


def liver_retraction_demo(
    out_dir: str | Path,
    liver_models_dir: str | Path,
    *,
    target_edge_mm: float = 6.0,
    lift_mm: float = 15.0,
    model: str = "linear",
) -> RetractionDemoResult:
    """Real liver (``liver.vtk`` with ``liver_tumours.vtk`` inside) retracted, end to end.

    Supports: :func:`surgplan.liver_defaults.default_liver_supports` (the extrahepatic
    hepatic-vein trunks fixed, a sliding bed of normal springs and weak ligament springs on the
    posterior/diaphragmatic surface). A rigid 20 mm retractor blade at the most inferior point
    of the liver lifts the edge of the lobe by ``lift_mm`` anteriorly and cranially
    (:data:`LIFT_DIRECTION_LPS`), and the lobe follows. Writes
    ``liver_retraction.vtu``, ``liver_retraction.xdmf`` and a picture coloured by displacement
    (``liver_retraction.png``) into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder; created if missing.
    liver_models_dir : str or Path
        Folder with ``liver.vtk``, ``liver_tumours.vtk`` and ``hepatic_veins.vtk`` (mm).
    target_edge_mm : float
        Tetrahedron edge length, mm.
    lift_mm : float
        Retractor lift, mm.
    model : {"linear", "neohookean"}
        Constitutive model.
    """
    from biomech.tissue import solve_tissue

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vm, fe, mats, loads = _retraction_problem(Path(liver_models_dir), target_edge_mm, lift_mm)
    res = solve_tissue(fe, mats, loads, model=model, degree=1, load_steps=4)  # type: ignore[arg-type]
    grid = res.to_pyvista()
    res.write_vtu(str(out / "liver_retraction.vtu"))
    res.write_xdmf(str(out / "liver_retraction.xdmf"))
    picture = render_retraction(grid, out / "liver_retraction.png")
    tumour = vm.regions.get("tumour")
    return RetractionDemoResult(
        cells=fe.num_cells_global(),
        dofs=res.info.num_dofs,
        regions=dict(vm.regions),
        max_displacement_mm=float(np.linalg.norm(grid.point_data["displacement_mm"], axis=1).max()),
        max_tumour_displacement_mm=(
            _max_region_displacement_mm(grid, tumour) if tumour is not None else 0.0
        ),
        max_von_mises_kpa=float(grid.cell_data["von_mises_kpa"].max()),
        picture=str(picture),
        vtu=str(out / "liver_retraction.vtu"),
    )
