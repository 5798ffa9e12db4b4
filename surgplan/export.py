"""Export structures of a case: a label map on the scan's grid, a Slicer segmentation, a surface."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imaging.image_io import image_suffix, read_image_file, write_image
from imaging.mesh_io import SURFACE_SUFFIXES, read_surface, write_surface
from imaging.surface import label_to_surface
from surgplan.atomic import atomic_path
from surgplan.case import Case
from surgplan.case_segmentation import write_case_segmentation
from surgplan.errors import SurgplanError


class ExportError(SurgplanError):
    """An export request names an unusable destination."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_structure` wrote.

    Attributes
    ----------
    structure : str
        Structure name.
    kind : str
        ``"label"`` (label map on the scan's grid, or a 3D Slicer ``.seg.nrrd``) or ``"mesh"``
        (surface, LPS mm).
    output : pathlib.Path
        The written file.
    """

    structure: str
    kind: str
    output: Path

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan export --json``."""
        return {
            "action": "export",
            "structure": self.structure,
            "kind": self.kind,
            "output": str(self.output),
        }


def export_structure(
    case_folder: str | os.PathLike[str],
    name: str,
    *,
    label_out: str | os.PathLike[str] | None = None,
    mesh_out: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Write structure ``name`` as a label map, a 3D Slicer segmentation or a surface.

    Parameters
    ----------
    case_folder
        The case.
    name
        Structure name.
    label_out
        Destination of the binary label map (0/1, UInt8) on the scan's grid, LPS geometry
        (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``); a ``.seg.nrrd`` is a 3D Slicer
        segmentation with the structure's name, colour, label value and terminology.
    mesh_out
        Destination of the surface (``.vtp``, ``.vtk``, ``.stl``, ``.obj``, ``.ply``), LPS mm.
        The case's stored surface is used when it exists, else one is built from the label map.

    Returns
    -------
    ExportResult
        The structure, the kind of file (``label`` or ``mesh``) and its path.
    """
    if (label_out is None) == (mesh_out is None):
        raise ExportError("give exactly one of --label OUT or --mesh OUT")
    case = Case.open(case_folder)
    label_path = case.require_structure(name)
    if label_out is not None:
        out = Path(label_out)
        if not image_suffix(out):
            raise ExportError(f"--label {out.name}: use .nii.gz, .nii, .nrrd or .mha")
        if not out.parent.is_dir():
            raise ExportError(f"--label {out}: folder {out.parent} does not exist")
        if out.name.lower().endswith(".seg.nrrd"):
            export_segmentation(case_folder, out, [name])
            return ExportResult(structure=name, kind="label", output=out)
        with atomic_path(out) as tmp:
            write_image(read_image_file(label_path), tmp)
        return ExportResult(structure=name, kind="label", output=out)
    out = Path(mesh_out)  # type: ignore[arg-type]
    if out.suffix.lower() not in SURFACE_SUFFIXES:
        raise ExportError(f"--mesh {out.name}: use one of {', '.join(SURFACE_SUFFIXES)}")
    entry = case.manifest.surfaces.get(name)
    if entry is not None:
        surface = read_surface(case.file(entry.path))
    else:
        surface = label_to_surface(read_image_file(label_path))
    write_surface(surface, out)
    return ExportResult(structure=name, kind="mesh", output=out)


def export_segmentation(
    case_folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    structures: Sequence[str] = (),
) -> Path:
    """Write structures of a case as a 3D Slicer segmentation (``.seg.nrrd``), atomically.

    Parameters
    ----------
    case_folder
        The case.
    out
        Destination ``*.seg.nrrd``; its folder must exist.
    structures
        Structures to include, in this order; all of the case's structures when empty.

    Returns
    -------
    Path
        The written file: one segment per structure, with the names, colours, label values
        and terminology of the case's own segmentation, layered where structures overlap.

    Raises
    ------
    ExportError
        A destination that is not a ``.seg.nrrd`` in an existing folder, or a case with no
        structures.
    CaseError
        A structure the case does not have.
    """
    out = Path(out)
    if not out.name.lower().endswith(".seg.nrrd"):
        raise ExportError(f"{out.name}: a Slicer segmentation must be named *.seg.nrrd")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: folder {out.parent} does not exist")
    case = Case.open(case_folder)
    names = list(structures) or list(case.manifest.structures)
    if not names:
        raise ExportError(f"case {case.root} has no structures; run 'surgplan segment' first")
    for name in names:
        case.require_structure(name)
    write_case_segmentation(out, case.manifest, case.file, names)
    return out
