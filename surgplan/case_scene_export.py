"""Export a whole case for viewing: a 3D Slicer scene or binary glTF of its surfaces.

:func:`export_scene` writes the case as a 3D Slicer scene (``surgplan export --scene``): the
scan, the segmentation, the surfaces as models and the registration outputs recorded as
artifacts (:func:`registration_outputs`); :func:`export_case_gltf` writes its surfaces as binary
glTF (``--gltf``; a live session's twin at one moment is :mod:`surgplan.session_gltf`'s, written
in the same styles by :func:`write_case_gltf`). Destinations, structure selection and display
styles are those of
:mod:`surgplan.export` (:func:`~surgplan.export.require_outside_case`,
:func:`~surgplan.export.structure_names`, :func:`~surgplan.export.display_style`), so a model
in Slicer, a glTF mesh and the segment of the same structure look alike.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imaging.mesh_io import read_surface
from surgplan.case import Case
from surgplan.case_segmentation import write_case_segmentation
from surgplan.export import ExportError, display_style, require_outside_case, structure_names

if TYPE_CHECKING:
    import pyvista as pv

    from surgplan.gltf_export import GltfExport
    from surgplan.slicer_scene import SceneExport

__all__ = [
    "CaseSceneExport",
    "RegistrationOutputs",
    "case_surfaces",
    "export_case_gltf",
    "export_scene",
    "registration_outputs",
    "write_case_gltf",
]

#: Artifact kinds (``case.json`` ``artifacts``) put into a scene as markups and as transforms;
#: artifacts of other kinds are recognised by their file suffix.
MARKUPS_ARTIFACT_KIND = "markups"
TRANSFORM_ARTIFACT_KIND = "transform"
#: Artifact ``meta`` key naming the transform artifact a markups artifact is placed under.
PARENT_TRANSFORM_META = "parent_transform"


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
    names = list(dict.fromkeys(structures)) or list(surfaces)
    # a structure with a surface needs no label map (cases built with ``import-model``)
    structure_names(case, [name for name in names if name not in surfaces])
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
    out = Path(out_path)
    case = Case.open(case_folder)
    require_outside_case(case, out)
    return write_case_gltf(case, out, case_surfaces(case, structures))


def write_case_gltf(
    case: Case, out: str | os.PathLike[str], meshes: Mapping[str, pv.PolyData]
) -> GltfExport:
    """Write ``meshes`` (LPS mm, by structure name) as ``.glb`` in the case's display styles.

    The colours and opacities are :func:`display_style`'s, so the glTF of the case
    (:func:`export_case_gltf`) and of a session's twin (:mod:`surgplan.session_gltf`) look alike.
    ``out`` is not checked against the case folder here (the callers do).
    """
    from surgplan.gltf_export import export_gltf

    styles: Mapping[str, tuple[tuple[float, float, float], float]] = {
        name: display_style(case, name) for name in meshes
    }
    return export_gltf(
        out,
        meshes,
        colours={name: style[0] for name, style in styles.items()},
        opacities={name: style[1] for name, style in styles.items()},
    )
