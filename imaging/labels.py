"""Import existing multi-label maps (e.g. TotalSegmentator output) with their label names."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from imaging.errors import ImageReadError, LabelMapError
from imaging.image_io import count_non_finite, read_image_file, strip_metadata

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class LabelMap:
    """An integer label map and the name of each label value."""

    image: sitk.Image
    names: dict[int, str]

    def values_present(self) -> list[int]:
        """Non-zero label values that occur in the map, ascending."""
        values = np.unique(sitk.GetArrayViewFromImage(self.image))
        return [int(v) for v in values if v != 0]

    def value_of(self, name: str) -> int:
        """Label value of structure ``name``.

        Raises
        ------
        LabelMapError
            If ``name`` is not in the names file, or its label does not occur in the map.
        """
        matches = [value for value, label_name in self.names.items() if label_name == name]
        if not matches:
            raise LabelMapError(f"label name {name!r} is not in the label-name file")
        value = matches[0]
        if value not in self.values_present():
            raise LabelMapError(f"label {name!r} (value {value}) is absent from the label map")
        return value

    def mask(self, value: int) -> sitk.Image:
        """Binary (0/1, UInt8) mask of label ``value`` on the map's grid.

        Raises
        ------
        LabelMapError
            If the value does not occur in the map.
        """
        if value not in self.values_present():
            raise LabelMapError(f"label value {value} is absent from the label map")
        return sitk.Cast(sitk.BinaryThreshold(self.image, value, value, 1, 0), sitk.sitkUInt8)


def validate_structure_name(name: str) -> str:
    """Return ``name`` if it is usable as a structure and file name.

    Raises
    ------
    LabelMapError
        For names with spaces, slashes or other characters unsafe in file names.
    """
    if not _NAME_PATTERN.match(name):
        raise LabelMapError(
            f"structure name {name!r} must use letters, digits, '_', '-' or '.', "
            "and start with a letter, digit or '_'"
        )
    return name


def structure_name_from_label(text: str) -> str:
    """A valid structure name made from a segment or label name (``"Right lung"``: ``right_lung``).

    A name that is already valid (``liver``, ``vertebrae_L2``) is kept as it is. Otherwise it is
    put in lower case, every run of characters other than letters, digits, ``_``, ``-`` and
    ``.`` (spaces, slashes, brackets...) becomes one ``_``, and leading ``.`` and ``-`` go.

    Parameters
    ----------
    text
        The name as the source file gives it (3D Slicer segment name, label table entry).

    Returns
    -------
    str
        A name accepted by :func:`validate_structure_name`.

    Raises
    ------
    LabelMapError
        If nothing usable is left (e.g. a name of only punctuation).
    """
    if _NAME_PATTERN.match(text):
        return text
    name = _UNSAFE_RUN.sub("_", text.strip().lower()).strip("_")
    name = name.lstrip(".-")
    if not name or not _NAME_PATTERN.match(name):
        raise LabelMapError(
            f"label name {text!r} gives no usable structure name; name it with --names"
        )
    return name


def read_label_names(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read label names: JSON ``{"5": "liver"}`` or a 3D Slicer colour table (``.txt``).

    Parameters
    ----------
    path
        JSON object mapping label value to name, or lines ``value name [r g b a]`` (``#`` comments).

    Returns
    -------
    dict of int to str
        Label value to structure name (value 0, background, is dropped).

    Raises
    ------
    LabelMapError
        Unreadable file, non-integer values, or invalid names.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LabelMapError(f"cannot read label-name file {path}: {error}") from None
    names: dict[int, str] = {}
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise LabelMapError(f"label-name file {path} is not valid JSON: {error}") from None
        if not isinstance(raw, dict):
            raise LabelMapError(f"label-name file {path} must hold a JSON object value -> name")
        items = list(raw.items())
    else:
        items = []
        for line in text.splitlines():
            fields = line.split()
            if fields and not fields[0].startswith("#"):
                items.append((fields[0], fields[1] if len(fields) > 1 else ""))
    for key, name in items:
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise LabelMapError(
                f"label-name file {path}: label value {key!r} is not an integer"
            ) from None
        if value == 0:
            continue
        if not isinstance(name, str) or not name:
            raise LabelMapError(f"label-name file {path}: label {value} has no name")
        names[value] = validate_structure_name(name)
    if not names:
        raise LabelMapError(f"label-name file {path} names no labels")
    return names


def load_label_map(path: str | os.PathLike[str], names_path: str | os.PathLike[str]) -> LabelMap:
    """Read a label map file and its names.

    Parameters
    ----------
    path
        Integer label map (NIfTI, NRRD, MHA).
    names_path
        Label-name file, see :func:`read_label_names`.

    Returns
    -------
    LabelMap
        The map (cast to UInt16, metadata stripped) and its names.

    Raises
    ------
    LabelMapError
        If the map holds non-integer values or negative labels.
    """
    return LabelMap(image=read_label_image(path), names=read_label_names(names_path))


def read_label_image(path: str | os.PathLike[str]) -> sitk.Image:
    """Read an integer label map (NIfTI, NRRD, MHA) as UInt16 with its metadata stripped.

    Parameters
    ----------
    path
        The label map file (0 = background, values 1..65535).

    Returns
    -------
    SimpleITK.Image
        UInt16 label map on the file's grid (LPS mm).

    Raises
    ------
    LabelMapError
        If the file cannot be read, or holds NaN, infinite or non-integer values, or values
        outside 0..65535.
    """
    try:
        image = read_image_file(path)
    except ImageReadError as error:
        raise LabelMapError(str(error)) from None
    components = image.GetNumberOfComponentsPerPixel()
    if image.GetDimension() != 3 or components != 1:
        raise LabelMapError(
            f"label map {Path(path).name} is {image.GetDimension()}-D with {components} "
            "value(s) per voxel; expected a 3-D map with one integer label per voxel (a layered "
            "3D Slicer segmentation must keep its .seg.nrrd name)"
        )
    array = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(array.dtype, np.integer):
        bad = count_non_finite(image)
        if bad:
            raise LabelMapError(
                f"label map {Path(path).name} holds {bad} NaN or infinite value(s) of "
                f"{array.size}; expected integer labels"
            )
        if not np.all(np.mod(array, 1) == 0):
            raise LabelMapError(f"label map {Path(path).name} holds non-integer values")
    if array.min() < 0 or array.max() > 65535:
        raise LabelMapError(
            f"label map {Path(path).name} holds values outside 0..65535 "
            f"(min {array.min()}, max {array.max()})"
        )
    return strip_metadata(sitk.Cast(image, sitk.sitkUInt16))
