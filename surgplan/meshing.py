"""Step 3 of a case: surfaces of every structure and the tetrahedral mesh for finite elements.

A structure has a label map (``surgplan segment``), or only a surface (``surgplan
import-model``: a *model structure*). The display surface of a segmented structure is rebuilt
from its label map; that of a model structure is the imported surface, kept as it is. The
surfaces bounding the tetrahedral mesh are built the same way for both: from masks, the
model structures' surfaces rasterised (:func:`imaging.surface_mask.surface_to_mask`) on the
grid of the case's label maps or, in a case of models only, on a :data:`MODEL_GRID_MM` grid.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvista as pv
import SimpleITK as sitk

from imaging.image_io import read_image_file
from imaging.mesh_io import read_surface, write_surface
from imaging.segmentation import fill_holes
from imaging.surface import (
    SurfaceMetrics,
    label_to_surface,
    smooth_for_meshing,
    structure_surface,
    surface_metrics,
)
from imaging.surface_mask import grid_around, surface_to_mask
from imaging.volume_mesh import (
    DEFAULT_MAX_TETS,
    MeshQuality,
    VolumeMesh,
    tetrahedralize,
    write_volume_mesh,
)
from surgplan.case import Case, CaseTransaction
from surgplan.errors import CaseError
from surgplan.manifest import SurfaceEntry, VolumeMeshEntry

#: Structures meshed as inner regions of the volume mesh when present (lesions inside the organ).
DEFAULT_INNER = ("tumour",)
#: Triangle budget per surface (organ surfaces of this size keep volume error well below 1%).
DEFAULT_TARGET_TRIANGLES = 20_000
#: Triangle budget of the surfaces that bound the FE mesh. Decimating further leaves creases
#: that survive smoothing: at 20,000 the phantom liver (80,000 triangles undecimated) gave gmsh
#: self-intersecting patches or a hang; at 100,000 it and the 3D-IRCADb liver (355,000) mesh
#: with gmsh at 16 degrees minimum dihedral angle, in about 17 s.
MESHING_TARGET_TRIANGLES = 100_000

#: Closing radius (mm) sealing narrow vessel grooves and tunnels in the organ meshed with
#: tetrahedra: a surface of higher genus cannot be re-parametrised and remeshed by gmsh.
MESH_CLOSING_MM = 5.0
#: Inner regions are kept at least this far (mm) inside the organ's meshed surface, so that the
#: independently smoothed and remeshed surfaces never touch.
INNER_MARGIN_MM = 3.0
#: Voxel size (mm) on which the surfaces of a case of model structures only are rasterised to
#: build the meshing surfaces: the real liver's mask volume is within 0.1% of its surface's.
MODEL_GRID_MM = 1.0

VOLUME_MESH_RELPATH = "meshes/volume.vtu"
VOLUME_MSH_RELPATH = "meshes/volume.msh"
BOUNDARY_RELPATH = "meshes/volume_boundary.vtp"


@dataclass(frozen=True)
class SurfaceReport:
    """A structure's closed surface built by :func:`build_meshes`.

    Attributes
    ----------
    path : pathlib.Path
        The stored surface (VTP, LPS mm).
    volume_ml : float
        Volume enclosed by the surface, mL.
    label_volume_ml : float
        Volume of the label map it was built from, mL.
    area_mm2 : float
        Surface area, mm^2.
    n_triangles : int
        Triangle count.
    is_closed, is_manifold : bool
        Watertight (no boundary edge) and edge-manifold.
    """

    path: Path
    volume_ml: float
    label_volume_ml: float
    area_mm2: float
    n_triangles: int
    is_closed: bool
    is_manifold: bool

    @property
    def volume_error_pct(self) -> float:
        """Surface volume relative to the label volume, percent (positive: surface larger)."""
        return 100.0 * (self.volume_ml - self.label_volume_ml) / self.label_volume_ml

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with ``volume_error_pct``."""
        return {
            "path": str(self.path),
            "volume_ml": self.volume_ml,
            "label_volume_ml": self.label_volume_ml,
            "volume_error_pct": self.volume_error_pct,
            "area_mm2": self.area_mm2,
            "n_triangles": self.n_triangles,
            "is_closed": self.is_closed,
            "is_manifold": self.is_manifold,
        }


@dataclass(frozen=True)
class VolumeMeshReport:
    """The tetrahedral mesh built by :func:`build_meshes`.

    Attributes
    ----------
    path, msh_path : pathlib.Path
        The stored mesh as VTU (with a ``"region"`` cell array) and as gmsh 4.1 MSH.
    outer : str
        Organ filled with tetrahedra.
    inner : tuple of str
        Structures meshed as regions inside ``outer``.
    regions : dict of str to int
        Structure name -> region tag.
    quality : imaging.volume_mesh.MeshQuality
        Element-quality figures.
    closing_mm, inner_margin_mm : float
        :data:`MESH_CLOSING_MM` and :data:`INNER_MARGIN_MM` used, mm.
    notes : tuple of str
        Remarks of the mesher (e.g. a fallback taken).
    """

    path: Path
    msh_path: Path
    outer: str
    inner: tuple[str, ...]
    regions: Mapping[str, int]
    quality: MeshQuality
    closing_mm: float
    inner_margin_mm: float
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``quality`` as a dict of :class:`MeshQuality`'s fields."""
        return {
            "path": str(self.path),
            "msh_path": str(self.msh_path),
            "outer": self.outer,
            "inner": list(self.inner),
            "regions": dict(self.regions),
            "quality": dataclasses.asdict(self.quality),
            "closing_mm": self.closing_mm,
            "inner_margin_mm": self.inner_margin_mm,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class MeshResult:
    """What :func:`build_meshes` built: surfaces by structure, and the volume mesh if any.

    ``dropped_artifacts`` names the FE results and reduced models (``kind/name``) removed
    because they were computed on the volume mesh this run replaced.
    """

    surfaces: Mapping[str, SurfaceReport]
    volume_mesh: VolumeMeshReport | None
    dropped_artifacts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan mesh --json``."""
        return {
            "action": "mesh",
            "surfaces": {name: s.to_dict() for name, s in self.surfaces.items()},
            "dropped_artifacts": list(self.dropped_artifacts),
            "volume_mesh": None if self.volume_mesh is None else self.volume_mesh.to_dict(),
        }


def surface_relpath(name: str) -> str:
    """Where the surface of structure ``name`` lives inside a case."""
    return f"meshes/{name}.vtp"


def surface_entry(name: str, metrics: SurfaceMetrics, *, label_volume_ml: float) -> SurfaceEntry:
    """The manifest entry of structure ``name``'s surface (at :func:`surface_relpath`).

    Parameters
    ----------
    name
        Structure name.
    metrics
        :func:`imaging.surface.surface_metrics` of the stored surface (LPS mm).
    label_volume_ml
        Volume of the structure's label map, mL, that the surface's volume is compared with.
    """
    return SurfaceEntry(
        name=name,
        path=surface_relpath(name),
        volume_ml=metrics.volume_ml,
        area_mm2=metrics.area_mm2,
        n_points=metrics.n_points,
        n_triangles=metrics.n_triangles,
        is_closed=metrics.is_closed,
        is_manifold=metrics.is_manifold,
        label_volume_ml=label_volume_ml,
    )


def _radius_voxels(image: sitk.Image, radius_mm: float) -> list[int]:
    return [max(1, round(radius_mm / s)) for s in image.GetSpacing()]


def _meshing_surfaces(
    case: Case, outer: str, inner: Sequence[str], target_triangles: int
) -> dict[str, pv.PolyData]:
    """Surfaces that bound the FE mesh: the organ envelope sealed, inner regions kept inside.

    The organ is the union of its label and the inner regions, closed by
    :data:`MESH_CLOSING_MM` and hole-filled; each inner region is cut to the organ eroded by
    :data:`INNER_MARGIN_MM`; both are smoothed for meshing
    (:func:`~imaging.surface.smooth_for_meshing`). The display surfaces of the case are not
    changed by this. Model
    structures enter as their surfaces rasterised (see the module docstring).
    """
    masks = _structure_masks(case, [outer, *inner])
    organ = masks[outer]
    inner_masks = {n: masks[n] for n in inner}
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
    return {name: smooth_for_meshing(s, what=name) for name, s in surfaces.items()}


def _structure_masks(case: Case, names: Sequence[str]) -> dict[str, sitk.Image]:
    """0/1 masks of ``names`` on one grid: the label maps', or one around the model surfaces."""
    labelled = [n for n in names if n in case.manifest.structures]
    masks = {
        n: sitk.Cast(read_image_file(case.require_structure(n)) > 0, sitk.sitkUInt8)
        for n in labelled
    }
    models = {
        n: read_surface(case.file(case.manifest.surfaces[n].path)) for n in names if n not in masks
    }
    if not models:
        return masks
    if masks:
        reference = next(iter(masks.values()))
    else:
        pad_mm = MESH_CLOSING_MM + 3.0 * MODEL_GRID_MM
        reference = grid_around(list(models.values()), spacing_mm=MODEL_GRID_MM, pad_mm=pad_mm)
    masks.update({n: surface_to_mask(surface, reference) for n, surface in models.items()})
    return {n: masks[n] for n in names}


def model_structures(case: Case) -> list[str]:
    """Structures of ``case`` known only by a surface (``surgplan import-model``), sorted."""
    return sorted(n for n in case.manifest.surfaces if n not in case.manifest.structures)


def build_meshes(
    case_folder: str | os.PathLike[str],
    *,
    structures: Sequence[str] = (),
    outer: str | None = None,
    inner: Sequence[str] | None = None,
    edge_mm: float = 6.0,
    target_triangles: int = DEFAULT_TARGET_TRIANGLES,
    max_tets: int = DEFAULT_MAX_TETS,
    on_step: Callable[[str], None] | None = None,
) -> MeshResult:
    """Build closed surfaces of the case's structures and a tetrahedral volume mesh.

    Parameters
    ----------
    case_folder
        A case with segmented structures or model structures (``surgplan import-model``).
    structures
        Structures to surface; all of the case's structures when empty. The surface of a
        model structure is kept as imported.
    outer
        Organ whose volume is meshed with tetrahedra; ``"liver"`` when the case has one. If no
        outer organ is given or found, only surfaces are built.
    inner
        Structures meshed as separate regions inside ``outer``; by default those of
        :data:`DEFAULT_INNER` that the case has.
    edge_mm
        Target tetrahedron edge length in mm.
    target_triangles
        Triangle budget of each surface after decimation (the surfaces bounding the FE mesh
        get at least :data:`MESHING_TARGET_TRIANGLES`).
    max_tets
        Largest estimated tetrahedron count meshed; a finer request is refused before meshing
        with the smallest edge (mm) that fits (``surgplan mesh --max-tets``).
    on_step
        Called with a description before each step (drives the CLI progress bar).

    Returns
    -------
    MeshResult
        Per structure its surface's path, volume (mL), label volume (mL), volume error (%),
        area (mm^2) and closed/manifold flags; the volume mesh's paths, regions and quality, or
        ``None`` when no outer organ was meshed; the FE results and reduced models removed
        because they were computed on the replaced volume mesh.
    """
    step = on_step or (lambda text: None)
    case = Case.open(case_folder)
    names = list(structures) or sorted(case.manifest.structures) + model_structures(case)
    if not names:
        raise CaseError(
            f"case {case.root} has no structures to mesh; run 'surgplan segment' or "
            "'surgplan import-model' first"
        )
    surfaces: dict[str, pv.PolyData] = {}
    entries: dict[str, SurfaceEntry] = {}
    for name in names:
        step(f"surface of {name}")
        surfaces[name], entries[name] = _structure_surface(case, name, target_triangles)
    rebuilt = [name for name in names if name in case.manifest.structures]
    outer_name, inner_names = _volume_regions(surfaces, names, outer, inner)
    volume_mesh = None
    if outer_name is not None:
        step(f"tetrahedral mesh of {outer_name}")
        volume_mesh = tetrahedralize(
            _meshing_surfaces(
                case, outer_name, inner_names, max(target_triangles, MESHING_TARGET_TRIANGLES)
            ),
            outer=outer_name,
            inner=inner_names,
            target_edge_mm=edge_mm,
            max_tets=max_tets,
        )
    # built from the structures (and model surfaces) read before the lock: refused if changed
    depends_on = ["image", "structures", *(f"surfaces/{n}" for n in names if n not in rebuilt)]
    dropped: list[str] = []
    with case.transaction(depends_on=depends_on) as tx:
        for name in rebuilt:  # a model structure's surface stays as imported
            write_surface(surfaces[name], tx.path(surface_relpath(name)))
            tx.manifest.surfaces[name] = entries[name]
        if volume_mesh is not None:
            _stage_volume_mesh(tx, volume_mesh)
            dropped = _drop_mesh_derived(tx)
    reports = {name: _surface_report(case, entry) for name, entry in entries.items()}
    volume_report = None
    if volume_mesh is not None and outer_name is not None:
        volume_report = _volume_report(case, volume_mesh, outer_name, inner_names)
    return MeshResult(surfaces=reports, volume_mesh=volume_report, dropped_artifacts=tuple(dropped))


def _structure_surface(
    case: Case, name: str, target_triangles: int
) -> tuple[pv.PolyData, SurfaceEntry]:
    """The display surface of structure ``name`` and its manifest entry.

    A model structure's surface and entry are the imported ones, unchanged.
    """
    if name not in case.manifest.structures and name in case.manifest.surfaces:
        entry = case.manifest.surfaces[name]
        return read_surface(case.file(entry.path)), entry
    if name not in case.manifest.structures:
        have = ", ".join(sorted(case.manifest.structures) + model_structures(case)) or "none"
        raise CaseError(f"case has no structure {name!r} (structures: {have})")
    mask = read_image_file(case.require_structure(name))
    surface = structure_surface(mask, target_triangles=target_triangles)
    label_volume_ml = case.manifest.structures[name].volume_ml
    return surface, surface_entry(name, surface_metrics(surface), label_volume_ml=label_volume_ml)


def _volume_regions(
    surfaces: Mapping[str, pv.PolyData],
    names: Sequence[str],
    outer: str | None,
    inner: Sequence[str] | None,
) -> tuple[str | None, list[str]]:
    """The organ to fill with tetrahedra (or ``None``) and the inner regions, checked."""
    if outer is not None and outer not in surfaces:
        raise CaseError(f"outer structure {outer!r} is not among the meshed structures {names}")
    outer_name = outer or ("liver" if "liver" in surfaces else None)
    if outer_name is None:
        return None, []
    if inner is not None:
        missing = [n for n in inner if n not in surfaces]
        if missing:
            raise CaseError(f"inner structures {missing} are not among the meshed structures")
    inner_names = [n for n in (inner if inner is not None else DEFAULT_INNER) if n in surfaces]
    return outer_name, inner_names


#: Artifact kinds computed on the volume mesh: removed, with their files, when it is rebuilt.
MESH_DERIVED_ARTIFACTS = ("fe_result", "rom")


def _drop_mesh_derived(tx: CaseTransaction) -> list[str]:
    """Remove the artifacts computed on the old volume mesh; their keys, sorted."""
    keys = sorted(k for k, a in tx.manifest.artifacts.items() if a.kind in MESH_DERIVED_ARTIFACTS)
    for key in keys:
        del tx.manifest.artifacts[key]
    return keys


def _stage_volume_mesh(tx: CaseTransaction, volume_mesh: VolumeMesh) -> None:
    write_volume_mesh(volume_mesh, tx.path(VOLUME_MESH_RELPATH))
    write_volume_mesh(volume_mesh, tx.path(VOLUME_MSH_RELPATH))
    write_surface(volume_mesh.boundary, tx.path(BOUNDARY_RELPATH))
    tx.manifest.volume_mesh = VolumeMeshEntry(
        path=VOLUME_MESH_RELPATH,
        msh_path=VOLUME_MSH_RELPATH,
        boundary_path=BOUNDARY_RELPATH,
        regions=volume_mesh.regions,
        quality=dataclasses.asdict(volume_mesh.quality),
    )


def _surface_report(case: Case, entry: SurfaceEntry) -> SurfaceReport:
    return SurfaceReport(
        path=case.file(entry.path),
        volume_ml=entry.volume_ml,
        label_volume_ml=entry.label_volume_ml,
        area_mm2=entry.area_mm2,
        n_triangles=entry.n_triangles,
        is_closed=entry.is_closed,
        is_manifold=entry.is_manifold,
    )


def _volume_report(
    case: Case, volume_mesh: VolumeMesh, outer: str, inner: Sequence[str]
) -> VolumeMeshReport:
    return VolumeMeshReport(
        path=case.file(VOLUME_MESH_RELPATH),
        msh_path=case.file(VOLUME_MSH_RELPATH),
        outer=outer,
        inner=tuple(inner),
        regions=dict(volume_mesh.regions),
        quality=volume_mesh.quality,
        closing_mm=MESH_CLOSING_MM,
        inner_margin_mm=INNER_MARGIN_MM,
        notes=tuple(volume_mesh.notes),
    )
