"""The case's 3D Slicer segmentation (``labels/segmentation.seg.nrrd``), kept in step.

Every step that adds, replaces or removes a structure calls :func:`stage_segmentation` inside
its transaction, so the ``.seg.nrrd`` always holds exactly the voxels of the per-structure label
maps (``labels/<name>.nrrd``), one named, coloured segment per structure, with its SNOMED CT
terminology where known. Structures that overlap (the liver envelope holds the tumour and the
vessels) go into separate layers, so a case normally has two.

Label values are stable: a structure keeps the value it had in the previous segmentation; a new
one takes its value in the map it was imported from when that value is free, else the smallest
free value. Colours are the project's display colours (:data:`surgplan.render.STYLE`) for the
names it knows (in any case), else the imported segment's colour, else grey.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import slicerio

from imaging.image_io import read_image_file
from imaging.seg_nrrd import Segment, terminology_for, write_slicer_segmentation
from surgplan.case import CaseTransaction
from surgplan.manifest import Manifest, SegmentationEntry, SegmentEntry, StructureEntry

#: Where the case's segmentation lives inside a case.
SEGMENTATION_RELPATH = "labels/segmentation.seg.nrrd"
#: Colour of structures the project has no display colour for and the source gave none.
FALLBACK_RGB = (0.7, 0.7, 0.7)


def structure_colour(name: str, entry: StructureEntry | None = None) -> tuple[float, float, float]:
    """Display colour (RGB in 0..1) of structure ``name`` in the case's segmentation.

    Parameters
    ----------
    name
        Structure name.
    entry
        Its manifest entry, whose imported ``colour_rgb`` is used for names without a
        project colour.
    """
    from surgplan.render import STYLE  # pyvista is loaded only when a segmentation is written

    style = STYLE.get(name) or STYLE.get(name.lower())
    if style is not None:
        return style[0]
    if entry is not None and entry.colour_rgb is not None:
        return entry.colour_rgb
    return FALLBACK_RGB


def assign_label_values(
    names: Sequence[str], previous: Mapping[str, int], preferred: Mapping[str, int | None]
) -> dict[str, int]:
    """A distinct label value (1..65535) for each structure, stable across rewrites.

    Parameters
    ----------
    names
        Structures in manifest order.
    previous
        Values in the segmentation written before (kept where still distinct).
    preferred
        Values the structures had in the map they were imported from (used where free).

    Returns
    -------
    dict of str to int
        Structure name -> label value, in ``names`` order.
    """
    values: dict[str, int] = {}
    used: set[int] = set()
    for source in (previous, preferred):
        for name in names:
            value = source.get(name)
            if name not in values and value is not None and 1 <= value <= 65535:
                if value not in used:
                    values[name] = value
                    used.add(value)
    free = (v for v in range(1, 65536) if v not in used)
    for name in names:
        if name not in values:
            values[name] = next(free)
    return {name: values[name] for name in names}


def case_segments(
    manifest: Manifest,
    label_file: Callable[[str], Path],
    names: Sequence[str] | None = None,
) -> list[Segment]:
    """The Slicer segments of a case's structures (masks read from their label maps).

    Parameters
    ----------
    manifest
        The case's manifest (structures and the previous segmentation's label values).
    label_file
        Maps a label map's path relative to the case to the file to read.
    names
        Structures to include, in this order; all structures in manifest order if None.

    Returns
    -------
    list of Segment
        One per structure, with its stable label value, colour and terminology.
    """
    structures = manifest.structures
    previous = {}
    if manifest.segmentation is not None:
        previous = {n: s.label_value for n, s in manifest.segmentation.segments.items()}
    preferred = {n: e.source_label_value for n, e in structures.items()}
    values = assign_label_values(list(structures), previous, preferred)
    segments = []
    for name in structures if names is None else names:
        entry = structures[name]
        mask = read_image_file(label_file(entry.label_path))
        terminology = terminology_for(name) or entry.terminology
        colour = structure_colour(name, entry)
        segments.append(Segment(name, mask, colour, values[name], terminology))
    return segments


def write_case_segmentation(
    path: str | os.PathLike[str],
    manifest: Manifest,
    label_file: Callable[[str], Path],
    names: Sequence[str] | None = None,
    *,
    relpath: str = SEGMENTATION_RELPATH,
) -> SegmentationEntry:
    """Write (atomically) a ``.seg.nrrd`` of the case's structures and describe it.

    Parameters
    ----------
    path
        Destination file; its folder must exist.
    manifest, label_file, names
        As for :func:`case_segments`.
    relpath
        The path inside the case that the returned entry records.

    Returns
    -------
    SegmentationEntry
        ``relpath``, number of layers, and each segment's label value, layer and colour.
    """
    segments = case_segments(manifest, label_file, names)
    written = write_slicer_segmentation(path, segments)
    header = slicerio.read_segmentation(str(written), skip_voxels=True)
    layers = {field["name"]: int(field.get("layer", 0)) for field in header["segments"]}
    return SegmentationEntry(
        path=relpath,
        n_layers=max(layers.values()) + 1,
        segments={
            s.name: SegmentEntry(
                label_value=s.label_value, layer=layers[s.name], colour_rgb=s.colour_rgb
            )
            for s in segments
        },
    )


def stage_segmentation(tx: CaseTransaction) -> SegmentationEntry | None:
    """Rewrite the case's segmentation in ``tx`` from its structures (or remove it if none).

    Call it after the step has staged its label maps: structures staged in ``tx`` are read
    from the staging folder, the others from the case.

    Parameters
    ----------
    tx
        The open transaction; ``tx.manifest.segmentation`` is updated.

    Returns
    -------
    SegmentationEntry or None
        The staged segmentation, or None when the case has no structure left.
    """
    if not tx.manifest.structures:
        if tx.manifest.segmentation is not None:
            tx.remove(tx.manifest.segmentation.path)
        tx.remove(SEGMENTATION_RELPATH)
        tx.manifest.segmentation = None
        return None
    entry = write_case_segmentation(tx.path(SEGMENTATION_RELPATH), tx.manifest, tx.current_path)
    tx.manifest.segmentation = entry
    return entry
