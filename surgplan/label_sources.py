"""Structures found in a segmentation file, with the names and colours the file gives them.

Three kinds of file are read:

- 3D Slicer segmentations (``.seg.nrrd``, 3-D or layered; also a ``.nrrd`` whose header
  describes segments), through :func:`imaging.seg_nrrd.read_slicer_segmentation`: never through
  SimpleITK, which cannot read the layered form. Segment names become structure names
  (``"right lung"`` -> ``right_lung``); colours and terminology are kept.
- TotalSegmentator's multi-label NIfTI (``--ml``), whose names and colours are in a header
  extension (:func:`imaging.nifti_labels.read_label_table_from_nifti`).
- Any integer label map (NIfTI, NRRD, MHA) with a label-name file.

A label-name file, where given, wins over the names in the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from imaging.errors import LabelMapError
from imaging.grid import require_same_grid
from imaging.labels import (
    read_label_image,
    read_label_names,
    structure_name_from_label,
    validate_structure_name,
)
from imaging.nifti_labels import read_label_table_from_nifti
from imaging.seg_nrrd import is_slicer_segmentation, mask_on_grid, read_slicer_segmentation

_NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr")


@dataclass(frozen=True, eq=False)
class SourceStructure:
    """One labelled structure of a segmentation file.

    Attributes
    ----------
    name : str
        Structure name (valid as a file name).
    source_name : str
        The name as the file gives it (a Slicer segment name may hold spaces).
    value : int
        Label value in the file (in its layer, for a layered Slicer file).
    n_voxels : int
        Voxels of the structure (0: named but absent from the map).
    mask : SimpleITK.Image or None
        Binary UInt8 mask on the scan's grid; None where ``n_voxels`` is 0.
    colour_rgb : tuple of float or None
        The file's colour for it (RGB in 0..1), if any.
    terminology : str or None
        The file's Slicer terminology entry, if any.
    """

    name: str
    source_name: str
    value: int
    n_voxels: int
    mask: sitk.Image | None
    colour_rgb: tuple[float, float, float] | None = None
    terminology: str | None = None


def read_structures(
    labels_path: str | os.PathLike[str],
    names_path: str | os.PathLike[str] | None,
    image: sitk.Image,
) -> list[SourceStructure]:
    """The structures of a segmentation file, on the scan's grid.

    Parameters
    ----------
    labels_path
        3D Slicer ``.seg.nrrd``, TotalSegmentator multi-label NIfTI, or integer label map.
    names_path
        Label-name file (see :func:`imaging.labels.read_label_names`); for a Slicer file, a
        JSON object may also map segment names to structure names. Optional where the file
        names its labels.
    image
        The case's scan; every mask must lie on its grid.

    Returns
    -------
    list of SourceStructure
        In the file's order (segments) or ascending label value (label maps).

    Raises
    ------
    LabelMapError
        Unreadable file, no label names, names that clash, or a grid other than the scan's.
    """
    path = Path(labels_path)
    if is_slicer_segmentation(path):
        return _from_slicer_segmentation(path, names_path, image)
    names, colours = _label_map_names(path, names_path)
    labels = read_label_image(path)
    require_same_grid(image, labels, f"label map {path.name}")
    array = sitk.GetArrayViewFromImage(labels)
    counts = np.bincount(np.asarray(array).ravel())
    found = []
    for value, (name, source_name) in sorted(names.items()):
        n_voxels = int(counts[value]) if value < counts.size else 0
        mask = None
        if n_voxels:
            mask = sitk.Cast(sitk.BinaryThreshold(labels, value, value, 1, 0), sitk.sitkUInt8)
        found.append(SourceStructure(name, source_name, value, n_voxels, mask, colours.get(value)))
    return found


def _label_map_names(
    path: Path, names_path: str | os.PathLike[str] | None
) -> tuple[dict[int, tuple[str, str]], dict[int, tuple[float, float, float]]]:
    """Value -> (structure name, name in the source), and value -> colour where known."""
    if names_path is not None:
        return {v: (n, n) for v, n in read_label_names(names_path).items()}, {}
    if not path.name.lower().endswith(_NIFTI_SUFFIXES):
        raise LabelMapError(
            f"{path.name} has no label names (3D Slicer .seg.nrrd files and TotalSegmentator "
            "NIfTI files carry them); pass --names"
        )
    table = read_label_table_from_nifti(path)
    if table is None:
        raise LabelMapError(f"{path.name} has no label-name extension; pass --names")
    names = {v: (structure_name_from_label(label.name), label.name) for v, label in table.items()}
    _refuse_clashes(path, {v: n for v, (n, _) in names.items()})
    return names, {v: label.colour_rgb for v, label in table.items()}


def _from_slicer_segmentation(
    path: Path, names_path: str | os.PathLike[str] | None, image: sitk.Image
) -> list[SourceStructure]:
    segments = read_slicer_segmentation(path)
    mapping = _segment_name_mapping(names_path, segments) if names_path is not None else {}
    names = {}
    for index, segment in enumerate(segments):
        names[index] = mapping.get(index) or structure_name_from_label(segment.name)
    _refuse_clashes(path, names)
    found = []
    for index, segment in enumerate(segments):
        mask = mask_on_grid(segment.mask, image, f"segmentation {path.name}")
        n_voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
        found.append(
            SourceStructure(
                names[index],
                segment.name,
                segment.label_value,
                n_voxels,
                mask if n_voxels else None,
                segment.colour_rgb,
                segment.terminology,
            )
        )
    return found


def _segment_name_mapping(names_path: str | os.PathLike[str], segments: list) -> dict[int, str]:
    """Segment index -> structure name from a names file keyed by segment name or label value."""
    names_path = Path(names_path)
    if names_path.suffix.lower() == ".json":
        try:
            raw = json.loads(names_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise LabelMapError(f"cannot read label-name file {names_path}: {error}") from None
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise LabelMapError(
                f"label-name file {names_path} must hold a JSON object of names "
                "(segment name or label value -> structure name)"
            )
    else:
        raw = {str(v): n for v, n in read_label_names(names_path).items()}
    mapping: dict[int, str] = {}
    for key, name in raw.items():
        index = _segment_index(names_path, key, segments)
        if index is not None:
            mapping[index] = validate_structure_name(name)
    return mapping


def _segment_index(names_path: Path, key: str, segments: list) -> int | None:
    """Index of the segment named ``key``, or of the one segment with label value ``key``."""
    by_name = [i for i, s in enumerate(segments) if s.name == key]
    if by_name:
        return by_name[0]
    try:
        value = int(key)
    except ValueError:
        return None
    by_value = [i for i, s in enumerate(segments) if s.label_value == value]
    if len(by_value) > 1:
        raise LabelMapError(
            f"label-name file {names_path}: label value {value} is used by segments "
            f"{[segments[i].name for i in by_value]} in different layers; key them by name"
        )
    return by_value[0] if by_value else None


def _refuse_clashes(path: Path, names: Mapping[int, str]) -> None:
    seen: dict[str, int] = {}
    for key, name in names.items():
        if name in seen:
            raise LabelMapError(
                f"{path.name}: two labels give the structure name {name!r}; name them with --names"
            )
        seen[name] = key
