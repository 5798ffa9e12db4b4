"""Export a case: one structure's label map or surface, a Slicer segmentation, scene or glTF.

:func:`export_structure` writes one structure (``surgplan export --label/--mesh``),
:func:`export_segmentation` a 3D Slicer ``.seg.nrrd``, :func:`export_scene` the whole case as a
3D Slicer scene (``--scene``), :func:`export_case_gltf` its surfaces as binary glTF (``--gltf``);
the DICOM exports are in :mod:`surgplan.dicom_case_export`. An export never writes inside the
case folder (:func:`require_outside_case`): that is the case's own data, changed only by its
transactions.

Display colours and opacities (:func:`display_style`) are the case segmentation's segment
colours and the opacities of :data:`surgplan.render.STYLE`, so a model in Slicer, a glTF mesh
and the segment of the same structure look alike.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imaging.image_io import image_suffix, read_image_file, write_image
from imaging.mesh_io import SURFACE_SUFFIXES, read_surface, write_surface
from imaging.surface import label_to_surface
from surgplan.atomic import atomic_path
from surgplan.case import Case
from surgplan.case_segmentation import structure_colour, write_case_segmentation
from surgplan.errors import SurgplanError

if TYPE_CHECKING:
    import pyvista as pv

    from surgplan.gltf_export import GltfExport
    from surgplan.slicer_scene import SceneExport

#: Artifact kinds (``case.json`` ``artifacts``) put into a scene as markups and as transforms;
#: artifacts of other kinds are recognised by their file suffix.
MARKUPS_ARTIFACT_KIND = "markups"
TRANSFORM_ARTIFACT_KIND = "transform"
#: Artifact ``meta`` key naming the transform artifact a markups artifact is placed under.
PARENT_TRANSFORM_META = "parent_transform"
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


@dataclass(frozen=True)
class RegistrationOutputs:
    """A case's markups and transforms recorded as artifacts, as a scene takes them.

    Attributes
    ----------
    markups, transforms : dict of str to pathlib.Path
        Artifact name -> its file (``.mrk.json``; ITK ``.tfm``/``.h5``).
    markups_parent : dict of str to str
        Markups name -> transform name it is placed under (artifact meta ``parent_transform``).
    """

    markups: dict[str, Path]
    transforms: dict[str, Path]
    markups_parent: dict[str, str]


def registration_outputs(case: Case) -> RegistrationOutputs:
    """The case's registration outputs: artifacts of kind ``markups`` or ``transform``.

    Artifacts of other kinds count as markups when their file ends in ``.mrk.json`` and as
    transforms when it ends in ``.tfm`` or ``.h5``. A markups artifact whose ``meta`` has
    ``parent_transform: NAME`` is placed under transform ``NAME`` (e.g. acquired points under
    ``T_model_tracker``).
    """
    markups: dict[str, Path] = {}
    transforms: dict[str, Path] = {}
    parents: dict[str, str] = {}
    for artifact in case.artifacts.values():
        path = artifact.path.lower()
        if artifact.kind == MARKUPS_ARTIFACT_KIND or path.endswith(".mrk.json"):
            markups[artifact.name] = case.file(artifact.path)
            parent = artifact.meta.get(PARENT_TRANSFORM_META)
            if parent:
                parents[artifact.name] = str(parent)
        elif artifact.kind == TRANSFORM_ARTIFACT_KIND or path.endswith((".tfm", ".h5")):
            transforms[artifact.name] = case.file(artifact.path)
    return RegistrationOutputs(markups, transforms, parents)


@dataclass(frozen=True)
class CaseSceneExport:
    """What :func:`export_scene` wrote.

    Attributes
    ----------
    scene : SceneExport
        The scene file and its nodes.
    structures : tuple of str
        Structures in the scene's segmentation.
    models : tuple of str
        Structures shown as models (those with a surface).
    """

    scene: SceneExport
    structures: tuple[str, ...]
    models: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan export --scene ... --json``."""
        return {
            **self.scene.to_dict(),
            "n_nodes": len(self.scene.nodes),
            "structures": list(self.structures),
            "models": list(self.models),
        }


def _scene_segmentation(
    case: Case, names: Sequence[str], whole_case: bool, tmp: Path
) -> Path | None:
    """The case's own ``.seg.nrrd``, or one of ``names`` written into ``tmp``."""
    if not names:
        return None
    entry = case.manifest.segmentation
    if whole_case and entry is not None and case.file(entry.path).is_file():
        return case.file(entry.path)
    out = tmp / "segmentation.seg.nrrd"
    write_case_segmentation(out, case.manifest, case.file, names)
    return out


def export_scene(
    case_folder: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    structures: Sequence[str] = (),
) -> CaseSceneExport:
    """Write the case as a 3D Slicer scene: a ``.mrb`` bundle, or a ``.mrml`` with its files.

    The scene holds the scan, the case's segmentation, the structures' surfaces as models in
    their colours and opacities (:func:`display_style`), and the registration outputs recorded
    as artifacts (:func:`registration_outputs`), markups under their transforms.

    Parameters
    ----------
    case_folder
        The case.
    out_path
        Destination ``.mrb`` or ``.mrml`` outside the case (a ``.mrml``'s files go into
        ``<name>_data`` beside it); its folder must exist.
    structures
        Only these structures (segments and models); all when empty.

    Returns
    -------
    CaseSceneExport
        The scene and its nodes, the structures and models in it.

    Raises
    ------
    ExportError
        A destination inside the case.
    SceneExportError
        A bad destination, a missing or unreadable file, a markups parent naming no transform.
    CaseError
        A case without a scan, or an unknown structure.
    """
    from surgplan.slicer_scene import write_slicer_scene

    out = Path(out_path)
    case = Case.open(case_folder)
    require_outside_case(case, out)
    if out.suffix.lower() == ".mrml":
        require_outside_case(case, out.with_name(f"{out.name[: -len(out.suffix)]}_data"))
    scan = case.require_image()
    names = structure_names(case, structures)
    surfaces = case.manifest.surfaces
    models = {
        name: (case.file(surfaces[name].path), *display_style(case, name))
        for name in names
        if name in surfaces
    }
    outputs = registration_outputs(case)
    with tempfile.TemporaryDirectory(prefix="surgplan-scene-") as tmp:
        scene = write_slicer_scene(
            out,
            scan_path=scan,
            segmentation_path=_scene_segmentation(case, names, not structures, Path(tmp)),
            models=models,
            markups=outputs.markups,
            transforms=outputs.transforms,
            markups_parent=outputs.markups_parent,
        )
    return CaseSceneExport(scene, tuple(names), tuple(models))


def case_surfaces(case: Case, structures: Sequence[str] = ()) -> dict[str, pv.PolyData]:
    """The case's surfaces (LPS mm) by structure name: those of ``structures``, or all.

    Raises
    ------
    ExportError
        A case without surfaces, or a named structure without one.
    """
    surfaces = case.manifest.surfaces
    if not surfaces:
        raise ExportError(
            f"case {case.root} has no surfaces; build them with 'surgplan mesh CASE' first"
        )
    names = structure_names(case, structures) if structures else list(surfaces)
    missing = [name for name in names if name not in surfaces]
    if missing:
        raise ExportError(
            f"structure(s) {', '.join(missing)} have no surface (surfaces: "
            f"{', '.join(surfaces)}); build them with 'surgplan mesh CASE'"
        )
    return {name: read_surface(case.file(surfaces[name].path)) for name in names}


def export_case_gltf(
    case_folder: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    structures: Sequence[str] = (),
) -> GltfExport:
    """Write the case's surfaces as binary glTF (``.glb``): metres, +Y up, display colours.

    Parameters
    ----------
    case_folder
        The case.
    out_path
        Destination ``.glb`` outside the case; its folder must exist.
    structures
        Only these structures' surfaces; all of the case's surfaces when empty.

    Returns
    -------
    GltfExport
        The file and, per structure, its counts, bounds in glTF metres and material colour.

    Raises
    ------
    ExportError
        A destination inside the case, a case without surfaces, a structure without one.
    GltfExportError
        A bad destination (not ``.glb``, missing folder) or an unusable surface.
    """
    from surgplan.gltf_export import export_gltf

    out = Path(out_path)
    case = Case.open(case_folder)
    require_outside_case(case, out)
    meshes = case_surfaces(case, structures)
    styles: Mapping[str, tuple[tuple[float, float, float], float]] = {
        name: display_style(case, name) for name in meshes
    }
    return export_gltf(
        out,
        meshes,
        colours={name: style[0] for name, style in styles.items()},
        opacities={name: style[1] for name, style in styles.items()},
    )
