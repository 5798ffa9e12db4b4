"""Step 3 of a case: surfaces of every structure and the tetrahedral mesh for finite elements."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import pyvista as pv
import SimpleITK as sitk

from imaging.image_io import read_image_file
from imaging.mesh_io import write_surface
from imaging.segmentation import fill_holes
from imaging.surface import is_thin_structure, label_to_surface, surface_metrics
from imaging.volume_mesh import tetrahedralize, write_volume_mesh
from surgplan.case import Case
from surgplan.errors import CaseError
from surgplan.manifest import SurfaceEntry, VolumeMeshEntry

#: Structures meshed as inner regions of the volume mesh when present (lesions inside the organ).
DEFAULT_INNER = ("tumour",)
#: Triangle budget per surface (organ surfaces of this size keep volume error well below 1%).
DEFAULT_TARGET_TRIANGLES = 20_000

#: Closing radius (mm) sealing narrow vessel grooves and tunnels in the organ meshed with
#: tetrahedra: a surface of higher genus cannot be re-parametrised and remeshed by gmsh.
MESH_CLOSING_MM = 5.0
#: Inner regions are kept at least this far (mm) inside the organ's meshed surface, so that the
#: independently smoothed and remeshed surfaces never touch.
INNER_MARGIN_MM = 3.0

VOLUME_MESH_RELPATH = "meshes/volume.vtu"
VOLUME_MSH_RELPATH = "meshes/volume.msh"
BOUNDARY_RELPATH = "meshes/volume_boundary.vtp"


def surface_relpath(name: str) -> str:
    """Where the surface of structure ``name`` lives inside a case."""
    return f"meshes/{name}.vtp"


def _radius_voxels(image: sitk.Image, radius_mm: float) -> list[int]:
    return [max(1, round(radius_mm / s)) for s in image.GetSpacing()]


def _meshing_surfaces(
    case: Case, outer: str, inner: Sequence[str], target_triangles: int
) -> dict[str, pv.PolyData]:
    """Surfaces that bound the FE mesh: the organ envelope sealed, inner regions kept inside.

    The organ is the union of its label and the inner regions, closed by
    :data:`MESH_CLOSING_MM` and hole-filled; each inner region is cut to the organ eroded by
    :data:`INNER_MARGIN_MM`. The display surfaces of the case are not changed by this.
    """
    organ = sitk.Cast(read_image_file(case.require_structure(outer)) > 0, sitk.sitkUInt8)
    inner_masks = {
        n: sitk.Cast(read_image_file(case.require_structure(n)) > 0, sitk.sitkUInt8) for n in inner
    }
    for mask in inner_masks.values():
        organ = sitk.Or(organ, mask)
    organ = sitk.BinaryMorphologicalClosing(
        organ, _radius_voxels(organ, MESH_CLOSING_MM), sitk.sitkBall, 1
    )
    organ = fill_holes(organ)
    core = sitk.BinaryErode(organ, _radius_voxels(organ, INNER_MARGIN_MM), sitk.sitkBall, 0, 1)
    surfaces = {outer: label_to_surface(organ, target_triangles=target_triangles)}
    for name, mask in inner_masks.items():
        surfaces[name] = label_to_surface(sitk.And(mask, core), target_triangles=target_triangles)
    return surfaces


def build_meshes(
    case_folder: str | os.PathLike[str],
    *,
    structures: Sequence[str] = (),
    outer: str | None = None,
    inner: Sequence[str] | None = None,
    edge_mm: float = 6.0,
    target_triangles: int = DEFAULT_TARGET_TRIANGLES,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build closed surfaces of the case's structures and a tetrahedral volume mesh.

    Parameters
    ----------
    case_folder
        A case with segmented structures.
    structures
        Structures to surface; all of the case's structures when empty.
    outer
        Organ whose volume is meshed with tetrahedra; ``"liver"`` when the case has one. If no
        outer organ is given or found, only surfaces are built.
    inner
        Structures meshed as separate regions inside ``outer``; by default those of
        :data:`DEFAULT_INNER` that the case has.
    edge_mm
        Target tetrahedron edge length in mm.
    target_triangles
        Triangle budget of each surface after decimation.
    on_step
        Called with a description before each step (drives the CLI progress bar).

    Returns
    -------
    dict
        ``surfaces``: name -> path, volume (mL), label volume (mL), volume error (%), area (mm^2),
        closed/manifold flags; ``volume_mesh``: path, regions, quality figures, or ``None``.
    """
    case = Case.open(case_folder)
    names = list(structures) or sorted(case.manifest.structures)
    if not names:
        raise CaseError(f"case {case.root} has no structures to mesh; run 'surgplan segment' first")
    surfaces = {}
    report_surfaces: dict[str, Any] = {}
    entries: dict[str, SurfaceEntry] = {}
    for name in names:
        if on_step:
            on_step(f"surface of {name}")
        mask = read_image_file(case.require_structure(name))
        supersample = 2 if is_thin_structure(mask) else 1
        surface = label_to_surface(
            mask, target_triangles=target_triangles * supersample, supersample=supersample
        )
        metrics = surface_metrics(surface)
        label_ml = case.manifest.structures[name].volume_ml
        surfaces[name] = surface
        entries[name] = SurfaceEntry(
            name=name,
            path=surface_relpath(name),
            volume_ml=metrics.volume_ml,
            area_mm2=metrics.area_mm2,
            n_points=metrics.n_points,
            n_triangles=metrics.n_triangles,
            is_closed=metrics.is_closed,
            is_manifold=metrics.is_manifold,
            label_volume_ml=label_ml,
        )
        report_surfaces[name] = {
            "path": str(case.file(surface_relpath(name))),
            "volume_ml": metrics.volume_ml,
            "label_volume_ml": label_ml,
            "volume_error_pct": 100.0 * (metrics.volume_ml - label_ml) / label_ml,
            "area_mm2": metrics.area_mm2,
            "n_triangles": metrics.n_triangles,
            "is_closed": metrics.is_closed,
            "is_manifold": metrics.is_manifold,
        }

    if outer is not None and outer not in surfaces:
        raise CaseError(f"outer structure {outer!r} is not among the meshed structures {names}")
    outer_name = outer or ("liver" if "liver" in surfaces else None)
    volume_report: dict[str, Any] | None = None
    volume_mesh = None
    if outer_name is not None:
        inner_names = [n for n in (inner if inner is not None else DEFAULT_INNER) if n in surfaces]
        if inner is not None:
            missing = [n for n in inner if n not in surfaces]
            if missing:
                raise CaseError(f"inner structures {missing} are not among the meshed structures")
        if on_step:
            on_step(f"tetrahedral mesh of {outer_name}")
        volume_mesh = tetrahedralize(
            _meshing_surfaces(case, outer_name, inner_names, target_triangles),
            outer=outer_name,
            inner=inner_names,
            target_edge_mm=edge_mm,
        )
        quality = dataclasses.asdict(volume_mesh.quality)
        volume_report = {
            "path": str(case.file(VOLUME_MESH_RELPATH)),
            "msh_path": str(case.file(VOLUME_MSH_RELPATH)),
            "outer": outer_name,
            "inner": inner_names,
            "regions": volume_mesh.regions,
            "quality": quality,
            "closing_mm": MESH_CLOSING_MM,
            "inner_margin_mm": INNER_MARGIN_MM,
            "notes": list(volume_mesh.notes),
        }

    with case.transaction() as tx:
        for name, surface in surfaces.items():
            write_surface(surface, tx.path(surface_relpath(name)))
            tx.manifest.surfaces[name] = entries[name]
        if volume_mesh is not None and volume_report is not None:
            write_volume_mesh(volume_mesh, tx.path(VOLUME_MESH_RELPATH))
            write_volume_mesh(volume_mesh, tx.path(VOLUME_MSH_RELPATH))
            write_surface(volume_mesh.boundary, tx.path(BOUNDARY_RELPATH))
            tx.manifest.volume_mesh = VolumeMeshEntry(
                path=VOLUME_MESH_RELPATH,
                msh_path=VOLUME_MSH_RELPATH,
                boundary_path=BOUNDARY_RELPATH,
                regions=volume_mesh.regions,
                quality=volume_report["quality"],
            )
    return {"action": "mesh", "surfaces": report_surfaces, "volume_mesh": volume_report}
