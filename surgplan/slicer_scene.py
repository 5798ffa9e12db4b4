"""A 3D Slicer scene of a case: a ``.mrml`` beside a folder of its files, or a ``.mrb`` bundle.

The scene holds the scan (``vtkMRMLScalarVolumeNode``), the segmentation
(``vtkMRMLSegmentationNode``), the surface models in their colours and opacities
(``vtkMRMLModelNode``), the markups (``vtkMRMLMarkupsFiducialNode``) and the registration
transforms (``vtkMRMLLinearTransformNode``), each with its storage node and, where Slicer shows
it, a display node. Markups can be placed under a transform (``transformNodeRef``), for example
the acquired points under ``T_model_tracker``, so Slicer shows them on the model.

The XML follows Slicer's own writer (``vtkMRMLNode::WriteXML``, Slicer/Slicer
``Libs/MRML/Core``): one element per node, named by the node's XML tag (``Volume``,
``VolumeArchetypeStorage``...); node references both as their MRML attribute
(``storageNodeRef``, ``displayNodeRef``, ``transformNodeRef``) and in ``references="role:id;"``.
File names are relative to the ``.mrml`` file. A ``.mrb`` (Medical Reality Bundle) is a zip
holding ``<name>/<name>.mrml`` and ``<name>/Data/<files>``; Slicer unpacks it and loads the
first ``.mrml`` it finds (``vtkMRMLApplicationLogic::UnpackSlicerDataBundle``).

Coordinates stay as written by the project: LPS. Images, ``.seg.nrrd`` files, markups JSON and
ITK transforms carry their space and Slicer converts them itself. Models do not always: Slicer
reads a model file as the coordinate system declared in the file (``SPACE`` field data of
``.vtp``, ``SPACE=...`` in a legacy ``.vtk`` header), else as the storage node's
``coordinateSystem`` attribute, else (no attribute: a legacy scene) as RAS
(``vtkMRMLModelStorageNode::ReadXMLAttributes`` / ``ReadDataInternal``). Every model storage node
therefore says ``coordinateSystem="LPS"``, so undeclared files are read as the LPS they are.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imaging.mesh_io import SURFACE_SUFFIXES
from surgplan.atomic import atomic_path, fsync_file, write_text_atomic
from surgplan.errors import SurgplanError

__all__ = [
    "SceneExportError",
    "SceneNode",
    "SceneExport",
    "write_slicer_scene",
    "MRML_VERSION",
]

#: ``version`` attribute of the ``<MRML>`` root, as Slicer 4.4 to 5.x write it.
MRML_VERSION = "Slicer4.4.0"
#: Folder of the data files inside a ``.mrb``, relative to its ``.mrml``.
MRB_DATA_FOLDER = "Data"

SCAN_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
SEGMENTATION_SUFFIXES = (".seg.nrrd", ".nrrd", ".nii.gz", ".nii")
MARKUPS_SUFFIXES = (".mrk.json", ".json")
TRANSFORM_SUFFIXES = (".tfm", ".txt", ".h5")
_COMPOUND_SUFFIXES = (".seg.nrrd", ".nii.gz", ".mrk.json")
_FILE_MODE = 0o644  # of the members of a .mrb (never the 0600 of a private temporary file)

RGB = tuple[float, float, float]
ModelSpec = tuple[str | os.PathLike[str], Sequence[float], float]


class SceneExportError(SurgplanError):
    """A scene request names a missing file, an unusable format, colour or parent."""


@dataclass(frozen=True)
class SceneNode:
    """One data node of the written scene.

    Attributes
    ----------
    node_id : str
        MRML node ID (``vtkMRMLModelNode1``...).
    tag : str
        XML tag of the node (``Volume``, ``Segmentation``, ``Model``, ``MarkupsFiducial``,
        ``LinearTransform``).
    name : str
        Node name shown in Slicer.
    file : str
        Its data file, relative to the ``.mrml``.
    parent_transform : str or None
        Name of the transform node the node is under, if any.
    """

    node_id: str
    tag: str
    name: str
    file: str
    parent_transform: str | None = None


@dataclass(frozen=True)
class SceneExport:
    """What :func:`write_slicer_scene` wrote.

    Attributes
    ----------
    output : pathlib.Path
        The ``.mrb`` or ``.mrml`` file.
    kind : str
        ``"mrb"`` or ``"mrml"``.
    scene_file : str
        The ``.mrml`` inside the bundle (``name/name.mrml``), or the ``.mrml`` itself.
    data_folder : str
        Folder of the data files, relative to the ``.mrml`` (``Data`` in a bundle,
        ``<name>_data`` beside a ``.mrml``).
    nodes : tuple of SceneNode
        The data nodes, in scene order.
    """

    output: Path
    kind: str
    scene_file: str
    data_folder: str
    nodes: tuple[SceneNode, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan export --scene ... --json``."""
        return {
            "action": "export",
            "kind": "scene",
            "format": self.kind,
            "output": str(self.output),
            "scene_file": self.scene_file,
            "nodes": [
                {
                    "id": n.node_id,
                    "tag": n.tag,
                    "name": n.name,
                    "file": n.file,
                    "parent_transform": n.parent_transform,
                }
                for n in self.nodes
            ],
        }


@dataclass(frozen=True)
class _Item:
    """A data node to write: its kind, name, source file and display settings."""

    kind: str  # key of _NODE_CLASSES
    name: str
    source: Path
    colour: RGB | None = None
    opacity: float = 1.0
    parent: str | None = None  # transform name


#: kind -> (data node class, its XML tag, storage class, storage tag, display class, display tag)
_NODE_CLASSES: dict[str, tuple[str, str, str, str, str | None, str | None]] = {
    "volume": (
        "vtkMRMLScalarVolumeNode",
        "Volume",
        "vtkMRMLVolumeArchetypeStorageNode",
        "VolumeArchetypeStorage",
        "vtkMRMLScalarVolumeDisplayNode",
        "VolumeDisplay",
    ),
    "segmentation": (
        "vtkMRMLSegmentationNode",
        "Segmentation",
        "vtkMRMLSegmentationStorageNode",
        "SegmentationStorage",
        "vtkMRMLSegmentationDisplayNode",
        "SegmentationDisplay",
    ),
    "model": (
        "vtkMRMLModelNode",
        "Model",
        "vtkMRMLModelStorageNode",
        "ModelStorage",
        "vtkMRMLModelDisplayNode",
        "ModelDisplay",
    ),
    "markups": (
        "vtkMRMLMarkupsFiducialNode",
        "MarkupsFiducial",
        "vtkMRMLMarkupsJsonStorageNode",
        "MarkupsJsonStorage",
        "vtkMRMLMarkupsDisplayNode",
        "MarkupsDisplay",
    ),
    "transform": (
        "vtkMRMLLinearTransformNode",
        "LinearTransform",
        "vtkMRMLTransformStorageNode",
        "TransformStorage",
        None,
        None,
    ),
}


def write_slicer_scene(
    out_path: str | os.PathLike[str],
    *,
    scan_path: str | os.PathLike[str] | None = None,
    segmentation_path: str | os.PathLike[str] | None = None,
    models: Mapping[str, ModelSpec] | None = None,
    markups: Mapping[str, str | os.PathLike[str]] | None = None,
    transforms: Mapping[str, str | os.PathLike[str]] | None = None,
    markups_parent: Mapping[str, str] | None = None,
) -> SceneExport:
    """Write a 3D Slicer scene (``.mrb`` bundle, or ``.mrml`` beside a folder of its files).

    The files are copied into the scene, byte for byte; nothing is converted (see the module
    docstring for how Slicer learns each file's coordinate system). The output is written
    atomically: a ``.mrb`` through a temporary name; a ``.mrml`` after its data folder
    ``<name>_data`` (replaced as a whole, only where it belongs to an earlier ``<name>.mrml``).

    Parameters
    ----------
    out_path
        Destination ending in ``.mrb`` or ``.mrml``; its folder must exist.
    scan_path
        The scan (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``), LPS geometry in the file.
    segmentation_path
        The segmentation (``.seg.nrrd``; a label map ``.nrrd``/``.nii.gz`` also loads).
    models
        Model name -> ``(surface file, (r, g, b) in 0..1, opacity in 0..1)``; surfaces in LPS mm
        (``.vtp``, ``.vtk``, ``.stl``, ``.obj``, ``.ply``).
    markups
        Markups name -> 3D Slicer markups file (``.mrk.json``).
    transforms
        Transform name -> ITK transform file (``.tfm``, ``.txt``, ``.h5``), e.g.
        ``{"T_model_tracker": case/T_model_tracker.tfm}``.
    markups_parent
        Markups name -> transform name it is placed under (``transformNodeRef``).

    Returns
    -------
    SceneExport
        The output, the scene file inside it and the nodes written.

    Raises
    ------
    SceneExportError
        Wrong output suffix or missing folder; a missing input file or one of an unknown
        format; a colour or opacity out of range; a parent naming an unknown markups or
        transform; an empty scene.
    """
    out = Path(out_path)
    kind = _output_kind(out)
    items = _collect_items(
        scan_path,
        segmentation_path,
        dict(models or {}),
        dict(markups or {}),
        dict(transforms or {}),
        dict(markups_parent or {}),
    )
    stem = out.name[: -len(out.suffix)]
    data_folder = MRB_DATA_FOLDER if kind == "mrb" else f"{stem}_data"
    files = _data_file_names(items)
    root, nodes = _scene_xml(items, [f"{data_folder}/{name}" for name in files])
    xml_text = _xml_text(root)
    copies = [(name, item.source) for name, item in zip(files, items, strict=True)]
    if kind == "mrb":
        _write_mrb(out, stem, xml_text, copies)
        scene_file = f"{stem}/{stem}.mrml"
    else:
        _write_mrml(out, data_folder, xml_text, copies)
        scene_file = str(out)
    return SceneExport(out, kind, scene_file, data_folder, tuple(nodes))


def _output_kind(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in (".mrb", ".mrml"):
        raise SceneExportError(f"scene output {out} must end in .mrb or .mrml, got {out.suffix!r}")
    if not out.parent.is_dir():
        raise SceneExportError(f"cannot write {out}: folder {out.parent} does not exist")
    if len(out.name) == len(suffix):
        raise SceneExportError(f"scene output {out} needs a name before {suffix}")
    return suffix[1:]


def _collect_items(
    scan: str | os.PathLike[str] | None,
    segmentation: str | os.PathLike[str] | None,
    models: dict[str, ModelSpec],
    markups: dict[str, str | os.PathLike[str]],
    transforms: dict[str, str | os.PathLike[str]],
    parents: dict[str, str],
) -> list[_Item]:
    """Validate every input; return the nodes in load order (transforms before their children)."""
    items = [
        _Item("transform", _name(n, "transform"), _source(p, TRANSFORM_SUFFIXES, f"transform {n}"))
        for n, p in transforms.items()
    ]
    if scan is not None:
        items.append(_Item("volume", "scan", _source(scan, SCAN_SUFFIXES, "scan")))
    if segmentation is not None:
        path = _source(segmentation, SEGMENTATION_SUFFIXES, "segmentation")
        items.append(_Item("segmentation", "segmentation", path))
    for name, spec in models.items():
        items.append(_model_item(_name(name, "model"), spec))
    for name in parents:
        if name not in markups:
            raise SceneExportError(
                f"markups_parent names markups {name!r}, which is not among the markups "
                f"{sorted(markups)}"
            )
    for name, path in markups.items():
        parent = parents.get(name)
        if parent is not None and parent not in transforms:
            raise SceneExportError(
                f"markups {name!r} is to go under transform {parent!r}, which is not among the "
                f"transforms {sorted(transforms)}"
            )
        source = _source(path, MARKUPS_SUFFIXES, f"markups {name}")
        items.append(_Item("markups", _name(name, "markups"), source, parent=parent))
    if not items:
        raise SceneExportError("a scene needs at least one file (scan, segmentation, models...)")
    return items


def _name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise SceneExportError(f"{what} name must be a non-empty string, got {name!r}")
    return name


def _source(path: str | os.PathLike[str], suffixes: Sequence[str], what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise SceneExportError(f"{what}: file {p} does not exist")
    if not p.name.lower().endswith(tuple(suffixes)):
        raise SceneExportError(f"{what}: {p} is not one of {', '.join(suffixes)}")
    return p


def _model_item(name: str, spec: ModelSpec) -> _Item:
    try:
        path, colour, opacity = spec
        rgb = tuple(float(c) for c in colour)
        alpha = float(opacity)
    except (TypeError, ValueError) as exc:
        raise SceneExportError(
            f"model {name!r}: expected (file, (r, g, b), opacity), got {spec!r}"
        ) from exc
    if len(rgb) != 3 or not all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in rgb):
        raise SceneExportError(f"model {name!r}: colour must be 3 values in 0..1, got {colour!r}")
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise SceneExportError(f"model {name!r}: opacity must be in 0..1, got {opacity!r}")
    source = _source(path, SURFACE_SUFFIXES, f"model {name}")
    return _Item("model", name, source, colour=(rgb[0], rgb[1], rgb[2]), opacity=alpha)


def _data_file_names(items: Sequence[_Item]) -> list[str]:
    """A distinct, portable file name per item: the node name (sanitised) and the source suffix."""
    names: list[str] = []
    taken: set[str] = set()
    for item in items:
        low = item.source.name.lower()
        suffix = next((s for s in _COMPOUND_SUFFIXES if low.endswith(s)), item.source.suffix)
        suffix = item.source.name[len(item.source.name) - len(suffix) :]
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", item.name).strip("_") or item.kind
        candidate, n = stem, 1
        while (candidate + suffix).lower() in taken:  # case-insensitive file systems
            n += 1
            candidate = f"{stem}_{n}"
        taken.add((candidate + suffix).lower())
        names.append(candidate + suffix)
    return names


def _scene_xml(items: Sequence[_Item], files: Sequence[str]) -> tuple[ET.Element, list[SceneNode]]:
    """Build the ``<MRML>`` tree; ``files[k]`` is item ``k``'s file relative to the ``.mrml``."""
    root = ET.Element("MRML", {"version": MRML_VERSION, "userTags": ""})
    counters: dict[str, int] = {}
    transform_ids: dict[str, str] = {}
    nodes: list[SceneNode] = []

    def new_id(cls: str) -> str:
        counters[cls] = counters.get(cls, 0) + 1
        return f"{cls}{counters[cls]}"

    for item, file in zip(items, files, strict=True):
        cls, tag, storage_cls, storage_tag, display_cls, display_tag = _NODE_CLASSES[item.kind]
        node_id, storage_id = new_id(cls), new_id(storage_cls)
        refs = {"storage": storage_id}
        if display_cls is not None and display_tag is not None:
            refs["display"] = new_id(display_cls)
            root.append(_display_element(item, display_tag, refs["display"]))
        if item.parent is not None:
            refs["transform"] = transform_ids[item.parent]
        root.append(_storage_element(item, storage_tag, storage_id, file))
        root.append(_data_element(tag, node_id, item.name, refs))
        if item.kind == "transform":
            transform_ids[item.name] = node_id
        if item.kind == "volume":
            root.extend(_slice_composite_elements(node_id))
        nodes.append(SceneNode(node_id, tag, item.name, file, item.parent))
    return root, nodes


def _slice_composite_elements(volume_id: str) -> list[ET.Element]:
    """Show the scan in the three slice views (Slicer's singleton ``SliceComposite`` nodes)."""
    return [
        ET.Element(
            "SliceComposite",
            {
                "id": f"vtkMRMLSliceCompositeNode{view}",
                "name": "SliceComposite",
                "hideFromEditors": "true",
                "singletonTag": view,
                "layoutName": view,
                "backgroundVolumeID": volume_id,
                "doPropagateVolumeSelection": "1",
            },
        )
        for view in ("Red", "Yellow", "Green")
    ]


def _data_element(tag: str, node_id: str, name: str, refs: Mapping[str, str]) -> ET.Element:
    """A data node with its references, written as ``vtkMRMLNode::WriteXML`` writes them."""
    attrs = {
        "id": node_id,
        "name": name,
        "hideFromEditors": "false",
        "selectable": "true",
        "selected": "false",
    }
    for role, attribute in (
        ("display", "displayNodeRef"),
        ("storage", "storageNodeRef"),
        ("transform", "transformNodeRef"),
    ):
        if role in refs:
            attrs[attribute] = refs[role]
    attrs["references"] = "".join(f"{role}:{refs[role]};" for role in sorted(refs))
    if tag == "Volume":
        attrs["labelMap"] = "0"
    return ET.Element(tag, attrs)


def _storage_element(item: _Item, tag: str, storage_id: str, file: str) -> ET.Element:
    attrs = {
        "id": storage_id,
        "name": f"{item.name} storage",
        "hideFromEditors": "true",
        "selectable": "true",
        "selected": "false",
        "fileName": file,
        "useCompression": "1",
    }
    if item.kind == "model":
        attrs["coordinateSystem"] = "LPS"  # undeclared model files are LPS (module docstring)
    return ET.Element(tag, attrs)


def _display_element(item: _Item, tag: str, display_id: str) -> ET.Element:
    attrs = {
        "id": display_id,
        "name": f"{item.name} display",
        "hideFromEditors": "true",
        "visibility": "true",
    }
    if item.kind == "volume":
        attrs.update(colorNodeID="vtkMRMLColorTableNodeGrey", autoWindowLevel="1")
        attrs["interpolate"] = "1"
    elif item.kind == "model" and item.colour is not None:
        attrs["color"] = " ".join(repr(c) for c in item.colour)
        attrs.update(opacity=repr(item.opacity), visibility2D="true", scalarVisibility="false")
    elif item.kind == "segmentation":
        attrs.update(visibility2DFill="true", visibility2DOutline="true")
    return ET.Element(tag, attrs)


def _xml_text(root: ET.Element) -> str:
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _write_mrb(out: Path, stem: str, xml_text: str, copies: Sequence[tuple[str, Path]]) -> None:
    """Zip ``stem/stem.mrml`` and ``stem/Data/*`` atomically, members with mode 0644."""
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "x", compression=zipfile.ZIP_DEFLATED) as zf:
            info = zipfile.ZipInfo(f"{stem}/{stem}.mrml")
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | _FILE_MODE) << 16
            zf.writestr(info, xml_text.encode("utf-8"))
            for name, source in copies:
                member = zipfile.ZipInfo.from_file(source, f"{stem}/{MRB_DATA_FOLDER}/{name}")
                member.compress_type = zipfile.ZIP_DEFLATED
                member.external_attr = (0o100000 | _FILE_MODE) << 16
                with source.open("rb") as src, zf.open(member, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)


def _write_mrml(
    out: Path, data_folder: str, xml_text: str, copies: Sequence[tuple[str, Path]]
) -> None:
    """Fill a staging folder, swap it in as ``data_folder``, then write the ``.mrml``."""
    final = out.parent / data_folder
    if final.exists() and not (final.is_dir() and out.is_file()):
        raise SceneExportError(
            f"cannot write {out}: {final} exists and is not the data folder of an earlier "
            f"{out.name}"
        )
    token = uuid.uuid4().hex
    staging = out.parent / f".{data_folder}.{token}.tmp"
    old = out.parent / f".{data_folder}.{token}.old"
    staging.mkdir()
    try:
        for name, source in copies:
            shutil.copyfile(source, staging / name)  # new files: mode from the umask
            fsync_file(staging / name)
        fsync_file(staging)
        if final.exists():
            os.replace(final, old)
        try:
            os.replace(staging, final)
            write_text_atomic(out, xml_text)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)  # no data folder without its .mrml
            if old.exists():  # put the earlier export back as it was
                os.replace(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
