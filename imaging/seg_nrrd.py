"""3D Slicer segmentations (``.seg.nrrd``): named, coloured segments in one or more layers.

A ``.seg.nrrd`` is a NRRD label volume whose header describes each segment (``Segment{i}_Name``,
``_Color``, ``_LabelValue``, ``_Layer``, ``_ID``, ``_Extent``, ``_Tags``). Segments that do not
overlap share one 3-D label volume; overlapping segments go into further layers, stored as a 4-D
NRRD whose first axis (kind ``list``) is the layer. The file space is ``left-posterior-superior``,
the same LPS millimetres as ``SimpleITK`` images, so the geometry is copied, never flipped.
Reading and writing go through :mod:`slicerio`, the reference implementation of the format
(https://github.com/lassoan/slicerio; format notes in the 3D Slicer developer guide,
"Segmentations" module, ``.seg.nrrd`` file format).

This module takes colours as input; it does not know the project's colour table.
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nrrd
import numpy as np
import SimpleITK as sitk
import slicerio

from imaging._atomic import write_atomically
from imaging.errors import LabelMapError
from imaging.grid import require_same_grid, same_grid


class SlicerSegmentationError(LabelMapError):
    """A Slicer segmentation file, or the segments to write into one, is invalid."""


_ANATOMY = "Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure"
_REGION = "Anatomic codes - DICOM master list~^^~^^"


def _entry(category: str, code: str, meaning: str, modifier: str = "^^") -> str:
    return f"{category}~SCT^{code}^{meaning}~{modifier}~{_REGION}"


_RIGHT, _LEFT = "SCT^24028007^Right", "SCT^7771000^Left"
_TISSUE = "Segmentation category and type - 3D Slicer General Anatomy list~SCT^85756007^Tissue"
_ALTERED = (
    "Segmentation category and type - DICOM master list"
    "~SCT^49755003^Morphologically Altered Structure"
)

#: Slicer ``TerminologyEntry`` strings for structure names whose SNOMED CT codes are known
#: (codes as used by 3D Slicer's terminology lists and the SlicerTotalSegmentator extension).
TERMINOLOGY: dict[str, str] = {
    "liver": _entry(_ANATOMY, "10200004", "Liver"),
    "tumour": _entry(_ALTERED, "108369006", "Neoplasm"),
    "tumor": _entry(_ALTERED, "108369006", "Neoplasm"),
    "portal_vein": _entry(_ANATOMY, "32764006", "Portal vein"),
    "portal_vein_and_splenic_vein": _entry(_ANATOMY, "32764006", "Portal vein"),
    "hepatic_veins": _entry(_ANATOMY, "8993003", "Hepatic vein"),
    "hepatic_vein": _entry(_ANATOMY, "8993003", "Hepatic vein"),
    "ivc": _entry(_ANATOMY, "64131007", "Inferior vena cava"),
    "inferior_vena_cava": _entry(_ANATOMY, "64131007", "Inferior vena cava"),
    "aorta": _entry(_ANATOMY, "15825003", "Aorta"),
    "bone": _entry(_TISSUE, "272673000", "Bone"),
    "kidney": _entry(_ANATOMY, "64033007", "Kidney"),
    "kidney_right": _entry(_ANATOMY, "64033007", "Kidney", _RIGHT),
    "kidney_left": _entry(_ANATOMY, "64033007", "Kidney", _LEFT),
    "spleen": _entry(_ANATOMY, "78961009", "Spleen"),
    "gallbladder": _entry(_ANATOMY, "28231008", "Gallbladder"),
    "pancreas": _entry(_ANATOMY, "15776009", "Pancreas"),
    "stomach": _entry(_ANATOMY, "69695003", "Stomach"),
}


def terminology_for(name: str) -> str | None:
    """Slicer ``TerminologyEntry`` string of structure ``name``, or None where no code is known."""
    return TERMINOLOGY.get(name.lower())


@dataclass(frozen=True, eq=False)
class Segment:
    """One segment of a Slicer segmentation.

    Attributes
    ----------
    name
        Segment name shown in Slicer (one line of text); also its segment ID.
    mask
        Binary mask (0/1, integer pixels) in LPS mm; every segment of a file is on one grid.
    colour_rgb
        Display colour, red, green, blue in 0..1.
    label_value
        Voxel value of the segment in its layer (1..65535).
    terminology
        Slicer ``TerminologyEntry`` string (seven ``~``-separated parts), or None.
    """

    name: str
    mask: sitk.Image
    colour_rgb: tuple[float, float, float]
    label_value: int = 1
    terminology: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or _bad_text(self.name):
            raise SlicerSegmentationError(
                f"segment name {self.name!r} must be one non-empty line of text"
            )
        rgb = tuple(float(c) for c in self.colour_rgb)
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
            raise SlicerSegmentationError(
                f"segment {self.name!r}: colour_rgb {self.colour_rgb!r} must be 3 values in 0..1"
            )
        object.__setattr__(self, "colour_rgb", rgb)
        value = self.label_value
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or not (1 <= value <= 65535)
        ):
            raise SlicerSegmentationError(
                f"segment {self.name!r}: label_value {value!r} must be an integer in 1..65535"
            )
        object.__setattr__(self, "label_value", int(value))
        term = self.terminology
        if term is not None and (term.count("~") != 6 or "|" in term or "\n" in term):
            raise SlicerSegmentationError(
                f"segment {self.name!r}: terminology {term!r} must be a Slicer TerminologyEntry "
                "(seven '~'-separated parts, no '|')"
            )
        if not isinstance(self.mask, sitk.Image) or self.mask.GetDimension() != 3:
            raise SlicerSegmentationError(f"segment {self.name!r}: mask must be a 3-D image")


def _bad_text(text: str) -> bool:
    return "\n" in text or "\r" in text


def segments_from_label_map(
    labels: sitk.Image,
    names: Mapping[int, str],
    colours: Mapping[str, tuple[float, float, float]],
    *,
    default_rgb: tuple[float, float, float] = (0.7, 0.7, 0.7),
) -> list[Segment]:
    """One segment per named label value that occurs in a multi-label map.

    Parameters
    ----------
    labels
        Integer label map (0 = background), LPS mm.
    names
        Label value -> structure name; values absent from the map are skipped.
    colours
        Structure name -> RGB in 0..1; names missing here get ``default_rgb``.
    default_rgb
        Colour of structures without an entry in ``colours``.

    Returns
    -------
    list of Segment
        In ascending label value, with the map's label values and known terminology.
    """
    array = sitk.GetArrayViewFromImage(labels)
    present = {int(v) for v in np.unique(array)}
    segments = []
    for value in sorted(v for v in names if v in present and v != 0):
        mask = sitk.Cast(labels == value, sitk.sitkUInt8)
        name = names[value]
        segments.append(
            Segment(name, mask, colours.get(name, default_rgb), value, terminology_for(name))
        )
    return segments


def write_slicer_segmentation(
    path: str | os.PathLike[str],
    segments: Sequence[Segment],
    *,
    reference: sitk.Image | None = None,
) -> Path:
    """Write segments as a 3D Slicer ``.seg.nrrd`` (atomically), in as few layers as possible.

    Each segment keeps its label value and goes into the first layer where it overlaps no
    segment already there and its label value is free; a file with one layer is a 3-D NRRD,
    otherwise a 4-D NRRD with the layer first (Slicer's layered form).

    Parameters
    ----------
    path
        Destination, normally ``*.seg.nrrd``; its folder must exist.
    segments
        The segments, all on one grid; names must be unique.
    reference
        If given, the grid (size, origin, spacing, direction) every mask must lie on, written as
        Slicer's reference image geometry.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    SlicerSegmentationError
        No segments, duplicate names, a mask that is not binary, or masks on different grids.
    """
    path = Path(path)
    grid, masks = _checked_masks(path, segments, reference)
    voxels, layers = _layered_voxels(masks, [s.label_value for s in segments])
    shape = masks[0].shape
    full_extent = [0, shape[0] - 1, 0, shape[1] - 1, 0, shape[2] - 1]
    segmentation = {
        "voxels": voxels,
        "ijkToLPS": ijk_to_lps_matrix(grid),
        "containedRepresentationNames": ["Binary labelmap"],
        "conversionParameters": [_reference_geometry_parameter(grid)],
        "segments": [
            _segment_fields(segment, layer, full_extent)
            for segment, layer in zip(segments, layers, strict=True)
        ],
    }
    write_atomically(path, lambda tmp: _write_with_slicerio(tmp, segmentation))
    return path


def _write_with_slicerio(tmp: Path, segmentation: dict) -> None:
    with warnings.catch_warnings():
        # pynrrd 1.1 stamps the header with datetime.utcnow(), deprecated in Python 3.12.
        warnings.filterwarnings("ignore", "datetime.datetime.utcnow", DeprecationWarning)
        slicerio.write_segmentation(str(tmp), segmentation)


def _checked_masks(
    path: Path, segments: Sequence[Segment], reference: sitk.Image | None
) -> tuple[sitk.Image, list[np.ndarray]]:
    """The grid and the (i, j, k) boolean arrays of the masks, after checking them."""
    if not segments:
        raise SlicerSegmentationError(f"{path.name}: no segments to write")
    names = [s.name for s in segments]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SlicerSegmentationError(f"{path.name}: segment names {duplicates} are repeated")
    grid = reference if reference is not None else segments[0].mask
    masks = []
    for segment in segments:
        if not same_grid(grid, segment.mask):
            raise SlicerSegmentationError(
                f"{path.name}: segment {segment.name!r} is on another grid (size "
                f"{segment.mask.GetSize()}, spacing {segment.mask.GetSpacing()}, origin "
                f"{segment.mask.GetOrigin()}) than {'the reference' if reference else names[0]!r}"
                f" (size {grid.GetSize()}, spacing {grid.GetSpacing()}, origin "
                f"{grid.GetOrigin()})"
            )
        array = sitk.GetArrayViewFromImage(segment.mask)
        values = np.unique(array)
        if not np.isin(values, (0, 1)).all():
            raise SlicerSegmentationError(
                f"{path.name}: mask of segment {segment.name!r} is not binary "
                f"(values {values[:6].tolist()}, expected 0 and 1)"
            )
        masks.append(np.asarray(array).transpose(2, 1, 0) == 1)
    return grid, masks


def _layered_voxels(masks: list[np.ndarray], label_values: list[int]) -> tuple[np.ndarray, list]:
    """Pack masks into layers; return the voxels (3-D or layer-first 4-D) and each layer."""
    dtype = np.uint8 if max(label_values) <= 255 else np.uint16
    layer_arrays: list[np.ndarray] = []
    layer_values: list[set[int]] = []
    layers = []
    for mask, value in zip(masks, label_values, strict=True):
        for index, layer in enumerate(layer_arrays):
            if value not in layer_values[index] and not layer[mask].any():
                break
        else:
            layer_arrays.append(np.zeros(mask.shape, dtype=dtype))
            layer_values.append(set())
            index = len(layer_arrays) - 1
        layer_arrays[index][mask] = value
        layer_values[index].add(value)
        layers.append(index)
    voxels = layer_arrays[0] if len(layer_arrays) == 1 else np.stack(layer_arrays)
    return voxels, layers


def _segment_fields(segment: Segment, layer: int, extent: list[int]) -> dict:
    """Segment fields as :mod:`slicerio` takes them.

    The extent is the whole grid: slicerio notes that Slicer versions crop every segment of a
    layer to the first segment's extent otherwise.
    """
    fields = {
        "id": segment.name,
        "name": segment.name,
        "nameAutoGenerated": False,
        "color": list(segment.colour_rgb),
        "colorAutoGenerated": False,
        "labelValue": segment.label_value,
        "layer": layer,
        "extent": extent,
        "status": "completed",
    }
    if segment.terminology is not None:
        fields["terminology"] = slicerio.segmentation.terminology_entry_from_string(
            segment.terminology
        )
    return fields


def ijk_to_lps_matrix(image: sitk.Image) -> np.ndarray:
    """4x4 matrix from voxel index (i, j, k) to LPS mm: ``origin + D @ diag(spacing) @ ijk``."""
    matrix = np.eye(4)
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    matrix[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=float)
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def reference_geometry_string_ras(image: sitk.Image) -> str:
    """Slicer's "Reference image geometry" string of an image's grid, in RAS.

    Parameters
    ----------
    image
        The grid (LPS mm).

    Returns
    -------
    str
        The 4x4 IJK-to-RAS matrix row by row, then the extent ``0;n_i-1;0;n_j-1;0;n_k-1``, each
        followed by ``;``. RAS = diag(-1, -1, 1) LPS, as Slicer stores this parameter.
    """
    ijk_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ijk_to_lps_matrix(image)
    numbers = [f"{v:.17g}" for v in ijk_to_ras.ravel()]
    numbers += [str(v) for n in image.GetSize() for v in (0, n - 1)]
    return ";".join(numbers) + ";"


def _reference_geometry_parameter(image: sitk.Image) -> dict[str, str]:
    return {
        "name": "Reference image geometry",
        "value": reference_geometry_string_ras(image),
        "description": "Image geometry description string determining the geometry of the "
        "labelmap that is created in course of conversion.",
    }


def read_slicer_segmentation(path: str | os.PathLike[str]) -> list[Segment]:
    """Read a 3D Slicer ``.seg.nrrd`` (3-D, or layered 4-D) as binary masks with their metadata.

    Parameters
    ----------
    path
        A ``.seg.nrrd`` written by 3D Slicer, :mod:`slicerio` or :func:`write_slicer_segmentation`
        (``left-posterior-superior`` or ``right-anterior-superior`` space).

    Returns
    -------
    list of Segment
        In file order; masks are UInt8 0/1 on the file's voxel grid (LPS mm). A segment without
        a colour gets mid grey, one without a name its segment ID.

    Raises
    ------
    SlicerSegmentationError
        A missing, corrupt or non-NRRD file, one with no segments, segments pointing at a layer
        the file lacks, or two segments with the same layer and label value.
    """
    path = Path(path)
    segmentation = _read_with_slicerio(path)
    voxels = segmentation["voxels"]
    if voxels.ndim not in (3, 4) or not np.issubdtype(voxels.dtype, np.integer):
        raise SlicerSegmentationError(
            f"{path.name}: voxels must be an integer 3-D or layered 4-D array, got "
            f"{voxels.ndim}-D {voxels.dtype}"
        )
    layers = voxels if voxels.ndim == 4 else voxels[np.newaxis]
    fields = segmentation.get("segments") or []
    if not fields:
        raise SlicerSegmentationError(f"{path.name}: the segmentation holds no segments")
    geometry = _geometry_from_ijk_to_lps(path, np.asarray(segmentation["ijkToLPS"], dtype=float))
    claimed: dict[tuple[int, int], str] = {}
    return [
        _segment_from_fields(path, index, entry, layers, geometry, claimed)
        for index, entry in enumerate(fields)
    ]


def _segment_from_fields(
    path: Path,
    index: int,
    entry: dict,
    layers: np.ndarray,
    geometry: tuple,
    claimed: dict[tuple[int, int], str],
) -> Segment:
    """Segment ``index`` of a file, from slicerio's fields; records its (layer, label value)."""
    name = str(entry.get("name") or entry.get("id") or f"Segment_{index + 1}")
    layer, value = int(entry.get("layer", 0)), int(entry.get("labelValue", 1))
    if not 0 <= layer < layers.shape[0]:
        raise SlicerSegmentationError(
            f"{path.name}: segment {name!r} is in layer {layer}, but the file has "
            f"{layers.shape[0]} layer(s)"
        )
    if (layer, value) in claimed:
        raise SlicerSegmentationError(
            f"{path.name}: segments {claimed[layer, value]!r} and {name!r} both use label "
            f"value {value} in layer {layer}"
        )
    claimed[layer, value] = name
    mask = _image_from_ijk((layers[layer] == value).astype(np.uint8), geometry)
    terminology = entry.get("terminology")
    if terminology is not None:
        terminology = slicerio.segmentation.terminology_entry_to_string(terminology)
    colour = entry.get("color", (0.5, 0.5, 0.5))
    try:
        return Segment(name, mask, tuple(colour), value, terminology)
    except SlicerSegmentationError as error:
        raise SlicerSegmentationError(f"{path.name}: {error}") from None


_READ_ERRORS = (nrrd.NRRDError, OSError, EOFError, ValueError, KeyError, IndexError, zlib.error)


def _read_with_slicerio(path: Path) -> dict:
    """The dict of :func:`slicerio.read_segmentation`, every failure turned into one error."""
    if not path.is_file():
        raise SlicerSegmentationError(f"segmentation file {path} does not exist")
    if path.name.lower().endswith((".nii", ".nii.gz")):
        raise SlicerSegmentationError(
            f"{path.name} is a NIfTI file, not a Slicer .seg.nrrd (read its label names with "
            "imaging.nifti_labels.read_label_names_from_nifti)"
        )
    try:
        segmentation = slicerio.read_segmentation(str(path))
    except _READ_ERRORS as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SlicerSegmentationError(f"cannot read Slicer segmentation {path}: {detail}") from None
    if segmentation.get("voxels") is None:
        raise SlicerSegmentationError(f"cannot read Slicer segmentation {path}: no voxels")
    return segmentation


def _geometry_from_ijk_to_lps(path: Path, ijk_to_lps: np.ndarray) -> tuple:
    """(origin, spacing, direction) of a SimpleITK image from a 4x4 IJK-to-LPS matrix."""
    columns = ijk_to_lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if not np.all(np.isfinite(ijk_to_lps)) or np.any(spacing <= 0):
        raise SlicerSegmentationError(
            f"{path.name}: invalid space directions {columns.T.tolist()} (expected three "
            "non-zero vectors)"
        )
    direction = columns / spacing
    if abs(abs(np.linalg.det(direction)) - 1.0) > 1e-3:
        raise SlicerSegmentationError(
            f"{path.name}: space directions {columns.T.tolist()} are not orthogonal"
        )
    return tuple(ijk_to_lps[:3, 3]), tuple(spacing), tuple(direction.ravel())


def _image_from_ijk(array_ijk: np.ndarray, geometry: tuple) -> sitk.Image:
    """SimpleITK image of an (i, j, k)-indexed array (SimpleITK arrays are (k, j, i))."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_ijk.transpose(2, 1, 0)))
    origin, spacing, direction = geometry
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def is_slicer_segmentation(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a 3D Slicer segmentation (to read with :func:`read_slicer_segmentation`).

    True for a ``*.seg.nrrd`` name, and for a ``*.nrrd`` whose header describes segments
    (``Segment0_...`` fields); only the header is read.

    Parameters
    ----------
    path
        Any file path.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".seg.nrrd"):
        return True
    if not name.endswith(".nrrd") or not path.is_file():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = nrrd.read_header(str(path))
    except _READ_ERRORS:
        return False  # not a readable NRRD: the label-map reader names the problem
    return any(key.startswith("Segment0_") for key in header)


def mask_on_grid(mask: sitk.Image, reference: sitk.Image, what: str) -> sitk.Image:
    """A segment's mask on a scan's grid: as is, or padded when its file was cropped.

    3D Slicer may save a segmentation cropped to its segments' extent: a sub-grid of the scan
    with the same spacing and direction, its origin on one of the scan's voxel centres. Such a
    mask is padded with zeros to the scan's grid (no resampling); any other grid is refused.

    Parameters
    ----------
    mask
        Binary mask (UInt8), LPS mm.
    reference
        The scan whose grid is expected.
    what
        How to name the mask in an error message (file and segment).

    Returns
    -------
    SimpleITK.Image
        UInt8 mask on ``reference``'s grid.

    Raises
    ------
    LabelMapError
        If the mask is on another grid that is not an aligned sub-grid of ``reference``.
    """
    if same_grid(reference, mask):
        return mask
    offset = _sub_grid_offset(mask, reference)
    if offset is None:
        require_same_grid(reference, mask, what)  # raises, naming both grids
    array = np.zeros(sitk.GetArrayViewFromImage(reference).shape, dtype=np.uint8)
    (i, j, k), (ni, nj, nk) = offset, mask.GetSize()
    array[k : k + nk, j : j + nj, i : i + ni] = sitk.GetArrayViewFromImage(mask)
    padded = sitk.GetImageFromArray(array)
    padded.CopyInformation(reference)
    return padded


def _sub_grid_offset(mask: sitk.Image, reference: sitk.Image) -> tuple[int, int, int] | None:
    """Index in ``reference`` of ``mask``'s first voxel, if ``mask`` is an aligned sub-grid."""
    atol = 1e-3
    if not (
        np.allclose(mask.GetSpacing(), reference.GetSpacing(), atol=atol)
        and np.allclose(mask.GetDirection(), reference.GetDirection(), atol=atol)
    ):
        return None
    direction = np.asarray(reference.GetDirection(), dtype=float).reshape(3, 3)
    shift_mm = np.subtract(mask.GetOrigin(), reference.GetOrigin())
    index = direction.T @ shift_mm / np.asarray(reference.GetSpacing(), dtype=float)
    rounded = np.round(index)
    if not np.allclose(index, rounded, atol=atol):
        return None
    start = rounded.astype(int)
    end = start + np.asarray(mask.GetSize())
    if np.any(start < 0) or np.any(end > np.asarray(reference.GetSize())):
        return None
    return int(start[0]), int(start[1]), int(start[2])
