"""Export a case's structures: one label map or surface, or a 3D Slicer segmentation.

:func:`export_structure` writes one structure (``surgplan export --label/--mesh``),
:func:`export_segmentation` a 3D Slicer ``.seg.nrrd``. The whole-case exports build on the
helpers here: the scene and glTF exports are in :mod:`surgplan.case_scene_export`, the DICOM
exports in :mod:`surgplan.dicom_case_export`. An export never writes inside the case folder
(:func:`require_outside_case`): that is the case's own data, changed only by its transactions.

Display colours and opacities (:func:`display_style`) are the case segmentation's segment
colours and the opacities of :data:`surgplan.render.STYLE`, so a model in Slicer, a glTF mesh
and the segment of the same structure look alike.
"""

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
from surgplan.case_segmentation import structure_colour, write_case_segmentation
from surgplan.errors import SurgplanError

#: Opacity of structures :data:`surgplan.render.STYLE` does not know (as the renderer's).
FALLBACK_OPACITY = 0.8


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
    require_outside_case(case, Path(label_out if label_out is not None else mesh_out))
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
    with atomic_path(out) as tmp:
        write_surface(surface, tmp)
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
    require_outside_case(case, out)
    names = list(structures) or list(case.manifest.structures)
    if not names:
        raise ExportError(f"case {case.root} has no structures; run 'surgplan segment' first")
    for name in names:
        case.require_structure(name)
    write_case_segmentation(out, case.manifest, case.file, names)
    return out


def require_outside_case(case: Case, out: str | os.PathLike[str]) -> None:
    """Refuse an export destination inside the case folder (or the case folder itself).

    Raises
    ------
    ExportError
        If ``out`` (resolved, links followed) lies in ``case.root``.
    """
    target = Path(out).resolve()
    root = case.root.resolve()
    if target == root or target.is_relative_to(root):
        raise ExportError(
            f"{out} is inside the case folder {case.root}, which holds the case's own data; "
            "export to a path outside it"
        )


def require_writable_destination(out: str | os.PathLike[str], *, folder: bool = False) -> None:
    """Refuse, before any work, an export destination where nothing can be written.

    ``out`` must not be a folder (a file is meant) or, with ``folder``, a file (``--dicom``
    writes a folder); the folder it goes into (or, when missing, its nearest existing parent,
    where the folders will be created) must accept a new file: one is created there and removed.

    Raises
    ------
    ExportError
        ``out`` is of the wrong kind, or no file can be created where it goes.
    """
    import tempfile

    target = Path(out)
    if not folder and target.is_dir():
        raise ExportError(f"{out}: is a folder; expected a file name for the export")
    if folder and target.exists() and not target.is_dir():
        raise ExportError(f"{out}: is a file; expected a folder for the DICOM series")
    parent = target if folder and target.is_dir() else target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ExportError(f"{out}: cannot write here ({parent} is a file, not a folder)")
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=".surgplan-write-check."):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ExportError(f"{out}: cannot write in {parent} ({reason})") from None


def structure_names(case: Case, structures: Sequence[str] = ()) -> list[str]:
    """``structures`` (checked, repeats dropped), or all of the case's in manifest order.

    Raises
    ------
    CaseError
        For a structure the case does not have.
    """
    for name in structures:
        case.require_structure(name)
    return list(dict.fromkeys(structures)) or list(case.manifest.structures)


def display_style(case: Case, name: str) -> tuple[tuple[float, float, float], float]:
    """Display colour (RGB in 0..1, sRGB) and opacity (0..1) of structure ``name``.

    The colour is the structure's segment colour in the case's segmentation (as recorded in the
    manifest, else as it would be written); the opacity is that of
    :data:`surgplan.render.STYLE` (see-through organs, opaque targets), else the renderer's
    fallback.
    """
    from surgplan.render import STYLE

    segmentation = case.manifest.segmentation
    segment = segmentation.segments.get(name) if segmentation is not None else None
    if segment is not None:
        colour = tuple(segment.colour_rgb)
    else:
        colour = structure_colour(name, case.manifest.structures.get(name))
    style = STYLE.get(name) or STYLE.get(name.lower())
    return (colour[0], colour[1], colour[2]), FALLBACK_OPACITY if style is None else style[1]
