"""A structure from a surface model: a case built from meshes instead of (or beside) a scan.

Researchers and clinical pipelines often hold organ models as meshes exported from 3D Slicer
or a segmentation tool, not a CT. :func:`import_model` reads one (VTK, VTP, STL, OBJ, PLY),
repairs what real exports carry (:func:`imaging.mesh_repair.repair_surface`: degenerate
pieces, duplicate points, collapsed triangles, small holes, inconsistent or inward winding) or
refuses it with a named reason, and stores it as the structure's surface
(``meshes/<name>.vtp``) in one case transaction, creating the case (without a scan) when it
does not exist. ``surgplan mesh`` and ``surgplan rom`` then work on the case as on a CT case.

Frame and units: coordinates are taken as patient LPS millimetres, the project's space
(DESIGN.md). A ``.vtk``/``.vtp`` file declaring another space (``SPACE=RAS``) is refused by
:func:`imaging.mesh_io.read_surface`; STL, OBJ and PLY cannot say, so they are LPS by
convention. Wrong units are caught by the extent check (metres, centimetres, inches named);
a wrong frame is caught when the case has a scan: at least :data:`MIN_INSIDE_SCAN_FRACTION`
of the surface's vertices must lie inside the scan's physical extent.

The manifest entry is a :class:`surgplan.manifest.SurfaceEntry` with no structure (label map)
entry: ``label_volume_ml`` is the surface's own enclosed volume (there is no label map to
compare with), so ``surgplan mesh`` reports a 0% volume error for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from imaging.labels import validate_structure_name
from imaging.mesh_io import read_surface, write_surface
from imaging.mesh_repair import RepairReport, repair_surface
from imaging.surface import surface_metrics
from surgplan.case import Case
from surgplan.errors import SurgplanError
from surgplan.manifest import ImageEntry
from surgplan.meshing import surface_entry, surface_relpath

__all__ = ["MIN_INSIDE_SCAN_FRACTION", "ImportModelResult", "ModelImportError", "import_model"]

#: Share of a model's vertices that must lie inside the case scan's physical extent (a liver
#: cut by the scan's field of view still has most of its surface inside).
MIN_INSIDE_SCAN_FRACTION = 0.5


class ModelImportError(SurgplanError):
    """A surface model cannot be added to the case (wrong frame, name taken by a label map)."""


@dataclass(frozen=True)
class ImportModelResult:
    """What :func:`import_model` stored.

    Attributes
    ----------
    case : pathlib.Path
        The case folder, as given.
    structure : str
        Structure name.
    created_case : bool
        Whether the case was created by this import.
    surface : pathlib.Path
        The stored surface (VTP, LPS mm).
    volume_ml : float
        Enclosed volume, mL.
    area_mm2 : float
        Surface area, mm^2.
    n_points, n_triangles : int
        Vertex and triangle counts of the stored surface.
    is_closed, is_manifold : bool
        No boundary edge; no edge shared by more than two triangles.
    extent_mm : tuple of float
        Bounding-box size along L, P, S, mm.
    repairs : imaging.mesh_repair.RepairReport
        What was repaired.
    """

    case: Path
    structure: str
    created_case: bool
    surface: Path
    volume_ml: float
    area_mm2: float
    n_points: int
    n_triangles: int
    is_closed: bool
    is_manifold: bool
    extent_mm: tuple[float, float, float]
    repairs: RepairReport

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan import-model --json`` (``time_s`` is the CLI's)."""
        repairs = self.repairs.to_dict()
        return {
            "action": "import_model",
            "case": str(self.case),
            "structure": self.structure,
            "created_case": self.created_case,
            "surface": {
                "path": str(self.surface),
                "volume_ml": self.volume_ml,
                "area_mm2": self.area_mm2,
                "n_points": self.n_points,
                "n_triangles": self.n_triangles,
                "n_pieces": repairs.pop("n_pieces"),
                "is_closed": self.is_closed,
                "is_manifold": self.is_manifold,
                "extent_mm": list(self.extent_mm),
            },
            "repairs": repairs,
        }


def import_model(
    mesh_path: str | os.PathLike[str],
    case_folder: str | os.PathLike[str],
    *,
    structure: str,
    keep: Literal["all", "largest"] = "all",
) -> ImportModelResult:
    """Add structure ``structure`` to a case from a surface mesh file, repaired.

    Parameters
    ----------
    mesh_path
        Surface file: ``.vtk``, ``.vtp``, ``.stl``, ``.obj`` or ``.ply``, LPS mm.
    case_folder
        Case folder; created (without a scan) if it does not exist.
    structure
        Structure name (``liver``, ``tumour``...). A structure of that name imported from a
        model before is replaced; one with a label map is not (refused).
    keep
        ``"all"``: every piece that is not degenerate (several lesions in one file);
        ``"largest"``: only the piece of largest volume.

    Returns
    -------
    ImportModelResult
        The stored surface, its figures and the repairs.

    Raises
    ------
    ModelImportError
        If the structure has a label map in the case, or the case has a scan and the surface
        lies mostly outside it.
    imaging.errors.MeshingError
        If the file cannot be read or the surface cannot be repaired (the reason named).
    surgplan.errors.CaseError
        If the case folder is unusable.
    """
    validate_structure_name(structure)
    case = Case.open_or_new(case_folder)
    if structure in case.manifest.structures:
        raise ModelImportError(
            f"case {case.root} already has a label map for structure {structure!r}; "
            "import the model under another name"
        )
    mesh_path = Path(mesh_path)
    repaired = repair_surface(read_surface(mesh_path), what=str(mesh_path), keep=keep)
    surface = repaired.surface
    if case.manifest.image is not None:
        _check_inside_scan(np.asarray(surface.points), case.manifest.image, mesh_path)
    metrics = surface_metrics(surface)
    relpath = surface_relpath(structure)
    created = not case.exists
    # checked against the scan and structures read before the lock: refused if they changed
    with case.transaction(depends_on=["image", f"structures/{structure}"]) as tx:
        write_surface(surface, tx.path(relpath))
        # no label map: the surface's own volume stands for the label map's
        entry = surface_entry(structure, metrics, label_volume_ml=metrics.volume_ml)
        tx.manifest.surfaces[structure] = entry
        volume_mesh = tx.manifest.volume_mesh
        if volume_mesh is not None and structure in volume_mesh.regions:
            tx.manifest.volume_mesh = None  # out of date with a changed region
    extent = np.ptp(np.asarray(surface.points), axis=0)
    return ImportModelResult(
        case=Path(case_folder),
        structure=structure,
        created_case=created,
        surface=case.file(relpath),
        volume_ml=metrics.volume_ml,
        area_mm2=metrics.area_mm2,
        n_points=metrics.n_points,
        n_triangles=metrics.n_triangles,
        is_closed=metrics.is_closed,
        is_manifold=metrics.is_manifold,
        extent_mm=(float(extent[0]), float(extent[1]), float(extent[2])),
        repairs=repaired.report,
    )


def _inside_fraction(points: NDArray[np.float64], image: ImageEntry) -> float:
    """Share of points inside the scan's physical extent (voxel centres +- half a voxel)."""
    direction = np.asarray(image.direction, dtype=np.float64).reshape(3, 3)
    index = (points - np.asarray(image.origin_mm)) @ direction / np.asarray(image.spacing_mm)
    inside = np.all((index >= -0.5) & (index <= np.asarray(image.size) - 0.5), axis=1)
    return float(inside.mean())


def _check_inside_scan(points: NDArray[np.float64], image: ImageEntry, path: Path) -> None:
    """Refuse a surface that lies mostly outside the case's scan (wrong frame or units)."""
    fraction = _inside_fraction(points, image)
    if fraction >= MIN_INSIDE_SCAN_FRACTION:
        return
    hint = ""
    if _inside_fraction(points * np.array([-1.0, -1.0, 1.0]), image) >= MIN_INSIDE_SCAN_FRACTION:
        hint = " (with x and y negated it would: the file looks like RAS, not LPS)"
    raise ModelImportError(
        f"{path}: only {100 * fraction:.0f}% of the surface lies inside the case's scan "
        f"(at least {100 * MIN_INSIDE_SCAN_FRACTION:.0f}% expected){hint}; the model must be in "
        "the scan's frame, LPS millimetres"
    )
