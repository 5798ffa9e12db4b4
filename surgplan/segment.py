"""Step 2 of a case: segment structures from seeds, or import an existing segmentation.

Imports read 3D Slicer ``.seg.nrrd`` files (3-D and layered), TotalSegmentator's multi-label
NIfTI (names from its header extension) and integer label maps with a label-name file
(:mod:`surgplan.label_sources`). Every step also rewrites the case's Slicer segmentation
(:mod:`surgplan.case_segmentation`) in the same transaction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from imaging.grid import require_same_grid, voxel_volume_ml
from imaging.image_io import read_image_file, write_image
from imaging.labels import validate_structure_name
from imaging.segmentation import segment_preset, segment_tumour, segment_vessels
from imaging.segmentation.organ import segment_organ_checked
from surgplan.case import Case, CaseTransaction
from surgplan.case_segmentation import SEGMENTATION_RELPATH, stage_segmentation
from surgplan.errors import SurgplanError
from surgplan.label_sources import SourceStructure, read_structures
from surgplan.manifest import StructureEntry

#: Segmentation method chosen for a structure name when ``method`` is not given.
DEFAULT_METHODS: dict[str, str] = {
    "liver": "organ",
    "spleen": "organ",
    "kidney": "organ",
    "kidney_left": "organ",
    "kidney_right": "organ",
    "tumour": "tumour",
    "tumor": "tumour",
    "lesion": "tumour",
    "vessels": "vessels",
    "portal_vein": "vessels",
    "hepatic_veins": "vessels",
    "bone": "bone",
    "air": "air",
}
METHODS = ("organ", "tumour", "vessels", "bone", "air")
#: Organ models known to :func:`imaging.segmentation.segment_organ`.
ORGAN_OF_NAME = {"kidney_left": "kidney", "kidney_right": "kidney"}
#: Margin (mm) outside the liver mask that vessel segmentation may reach: vessels enter the
#: organ at its hilum, where the mask is thinnest, and seeds in the entering trunk and the
#: vessel walls at the capsule are kept (see ``segment_vessels(margin_mm=...)``).
VESSEL_MARGIN_MM = 3.0


class SegmentRequestError(SurgplanError):
    """A segmentation request is incomplete or inconsistent (method, seeds)."""


@dataclass(frozen=True)
class SegmentResult:
    """One structure segmented by :func:`segment_structure`.

    Attributes
    ----------
    structure : str
        Structure name.
    method : str
        Segmentation method used (``organ``, ``tumour``, ``vessels``, ``bone``, ``air``).
    label : pathlib.Path
        The stored binary label map.
    volume_ml : float
        Segmented volume, mL.
    n_voxels : int
        Voxels in the label map.
    seeds_lps_mm : tuple of tuple of float
        The seeds used, LPS mm.
    checks : dict or None
        The plausibility checks the result passed (``CheckedSegmentation.to_dict()``: each
        check's value and range, the parameter set used, those rejected), for organs.
    """

    structure: str
    method: str
    label: Path
    volume_ml: float
    n_voxels: int
    seeds_lps_mm: tuple[tuple[float, ...], ...]
    checks: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan segment --json``."""
        return {
            "action": "segment",
            "structure": self.structure,
            "method": self.method,
            "label": str(self.label),
            "volume_ml": self.volume_ml,
            "n_voxels": self.n_voxels,
            "seeds_lps_mm": [list(s) for s in self.seeds_lps_mm],
            "checks": self.checks,
        }


@dataclass(frozen=True)
class ImportedStructure:
    """One structure taken from a multi-label map by :func:`import_label_map`.

    Attributes
    ----------
    label : pathlib.Path
        The stored binary label map.
    value : int
        The structure's value in the source map.
    volume_ml : float
        Volume, mL.
    n_voxels : int
        Voxels in the label map.
    """

    label: Path
    value: int
    volume_ml: float
    n_voxels: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``label``, ``value``, ``volume_ml``, ``n_voxels``."""
        return {
            "label": str(self.label),
            "value": self.value,
            "volume_ml": self.volume_ml,
            "n_voxels": self.n_voxels,
        }


@dataclass(frozen=True)
class LabelImportResult:
    """What :func:`import_label_map` imported: structure name -> :class:`ImportedStructure`."""

    structures: Mapping[str, ImportedStructure]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan segment --labels ... --json``."""
        return {
            "action": "import_labels",
            "structures": {name: s.to_dict() for name, s in self.structures.items()},
        }


def label_relpath(name: str) -> str:
    """Where the label map of structure ``name`` lives inside a case."""
    return f"labels/{name}.nrrd"


def _stage_structure(
    tx: CaseTransaction, name: str, mask: sitk.Image, method: str, **details: Any
) -> StructureEntry:
    relpath = label_relpath(name)
    if relpath == SEGMENTATION_RELPATH:
        raise SegmentRequestError(
            f"structure name {name!r} is reserved for the case's segmentation file"
        )
    mask = sitk.Cast(mask > 0, sitk.sitkUInt8)
    n_voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    if n_voxels == 0:
        raise SegmentRequestError(f"segmentation of {name!r} is empty; nothing was saved")
    write_image(mask, tx.path(relpath))
    entry = StructureEntry(
        name=name,
        label_path=relpath,
        method=method,
        n_voxels=n_voxels,
        volume_ml=n_voxels * voxel_volume_ml(mask),
        **details,
    )
    tx.manifest.structures[name] = entry
    # Surfaces and the volume mesh of a changed structure are out of date (a volume mesh
    # without a region of this structure is not: it stays, with its FE results).
    if tx.manifest.surfaces.pop(name, None) is not None:
        tx.remove(f"meshes/{name}.vtp")
    volume_mesh = tx.manifest.volume_mesh
    if volume_mesh is not None and name in volume_mesh.regions:
        tx.manifest.volume_mesh = None
    return entry


def _restriction(case: Case, image: sitk.Image, method: str) -> sitk.Image | None:
    """Liver mask that tumour and vessel segmentation are confined to, when the case has one."""
    if method not in ("tumour", "vessels") or "liver" not in case.manifest.structures:
        return None
    liver = sitk.Cast(read_image_file(case.require_structure("liver")), sitk.sitkUInt8)
    require_same_grid(image, liver, "liver label map")
    return liver


#: Fewest voxels along any axis of a scan the seeded methods accept (ITK's recursive Gaussian
#: smoothing they start with needs four).
MIN_SEEDED_AXIS_VOXELS = 4


def segment_structure(
    case_folder: str | os.PathLike[str],
    name: str,
    seeds_lps_mm: Sequence[Sequence[float]],
    *,
    method: str | None = None,
) -> SegmentResult:
    """Segment one structure of a case's scan and store its label map.

    Parameters
    ----------
    case_folder
        An existing case with an imported scan.
    name
        Structure name (also the label file's name), e.g. ``liver``, ``tumour``, ``vessels``.
    seeds_lps_mm
        Seed points in patient LPS millimetres: one for organs and tumours, one or more for
        vessels, none for the ``bone`` and ``air`` presets.
    method
        ``organ``, ``tumour``, ``vessels``, ``bone`` or ``air``; chosen from ``name`` if omitted.

    Returns
    -------
    SegmentResult
        The structure's method, label map path, volume (mL), voxel count and seeds (LPS mm).
    """
    validate_structure_name(name)
    method = _checked_method(name, method)
    seeds = [tuple(float(c) for c in seed) for seed in seeds_lps_mm]
    if method in ("organ", "tumour", "vessels") and not seeds:
        raise SegmentRequestError(f"method {method!r} needs --seed X Y Z (LPS mm)")
    if method in ("organ", "tumour") and len(seeds) > 1:
        raise SegmentRequestError(f"method {method!r} takes one seed, got {len(seeds)}")
    case = Case.open(case_folder)
    _require_ct(case, method)
    image = read_image_file(case.require_image())
    if method in ("organ", "tumour", "vessels") and min(image.GetSize()) < MIN_SEEDED_AXIS_VOXELS:
        size = "x".join(str(n) for n in image.GetSize())
        raise SegmentRequestError(
            f"the case's scan is {size} voxels: method {method!r} smooths the scan and needs "
            f"at least {MIN_SEEDED_AXIS_VOXELS} voxels along every axis; import a "
            "segmentation made for this scan with --labels instead"
        )
    within = _restriction(case, image, method)
    mask, checks = _segment(image, name, method, seeds, within=within)
    # computed from the scan (and the liver) read before the lock: refused if they changed
    depends_on = ["image"] + ["structures/liver"] * (within is not None)
    with case.transaction(depends_on=depends_on) as tx:
        entry = _stage_structure(tx, name, mask, method, seed_lps_mm=seeds or None)
        stage_segmentation(tx)
    return SegmentResult(
        structure=name,
        method=method,
        label=case.file(entry.label_path),
        volume_ml=entry.volume_ml,
        n_voxels=entry.n_voxels,
        seeds_lps_mm=tuple(seeds),
        checks=checks,
    )


def _require_ct(case: Case, method: str) -> None:
    """Refuse the HU-threshold methods on a scan whose DICOM modality is not CT (MR, US...)."""
    entry = case.manifest.image
    modality = entry.modality if entry is not None else None
    if modality is not None and modality != "CT":
        raise SegmentRequestError(
            f"the case's scan is modality {modality}, not CT: method {method!r} thresholds CT "
            "Hounsfield units and would give a meaningless mask; import a segmentation made "
            "for this scan with --labels instead"
        )


def _checked_method(name: str, method: str | None) -> str:
    """``method``, or the default for ``name``; refused with the known methods if unknown."""
    method = method or DEFAULT_METHODS.get(name)
    if method is None:
        raise SegmentRequestError(
            f"no default method for structure {name!r}; pass --method ({', '.join(METHODS)})"
        )
    if method not in METHODS:
        raise SegmentRequestError(
            f"unknown method {method!r}; expected one of {', '.join(METHODS)}"
        )
    return method


def _segment(
    image: sitk.Image,
    name: str,
    method: str,
    seeds: Sequence[tuple[float, ...]],
    *,
    within: sitk.Image | None,
) -> tuple[sitk.Image, dict[str, Any] | None]:
    """The mask, and for organs the checks it passed (a failing organ raises)."""
    if method == "organ":
        checked = segment_organ_checked(image, seeds[0], organ=ORGAN_OF_NAME.get(name, name))
        return checked.mask, checked.to_dict()
    if method == "tumour":
        return segment_tumour(image, seeds[0], within=within), None
    if method == "vessels":
        return segment_vessels(image, seeds, within=within, margin_mm=VESSEL_MARGIN_MM), None
    return segment_preset(image, method), None


def import_label_map(
    case_folder: str | os.PathLike[str],
    labels_path: str | os.PathLike[str],
    names_path: str | os.PathLike[str] | None = None,
    *,
    structures: Sequence[str] = (),
) -> LabelImportResult:
    """Import structures from a segmentation file (3D Slicer, TotalSegmentator, any label map).

    Parameters
    ----------
    case_folder
        An existing case with an imported scan; the segmentation must lie on the scan's grid
        (a 3D Slicer file cropped to its segments is padded back to it).
    labels_path
        A 3D Slicer ``.seg.nrrd`` (3-D or layered), a multi-label NIfTI with a label-name header
        extension (TotalSegmentator ``--ml``), or an integer label map (NIfTI, NRRD, MHA).
    names_path
        Label names (JSON ``{"5": "liver"}`` or a Slicer colour table); for a ``.seg.nrrd``, a
        JSON object may also map segment names to structure names. Optional where the file
        names its labels; where given, its names win.
    structures
        Names to import; all named labels present in the file when empty. A requested name that
        the file lacks is an error, and nothing is imported.

    Returns
    -------
    LabelImportResult
        Per structure: label map path, value in the source file, volume (mL), voxel count.
    """
    case = Case.open(case_folder)
    image = read_image_file(case.require_image())
    found = read_structures(labels_path, names_path, image)
    chosen = _chosen(found, structures, Path(labels_path))
    imported: dict[str, ImportedStructure] = {}
    with case.transaction(depends_on=["image"]) as tx:
        for item in chosen:
            entry = _stage_structure(
                tx,
                item.name,
                item.mask,
                "imported",
                source_label_value=item.value,
                source_name=item.source_name if item.source_name != item.name else None,
                colour_rgb=item.colour_rgb,
                terminology=item.terminology,
            )
            imported[item.name] = ImportedStructure(
                label=case.file(entry.label_path),
                value=item.value,
                volume_ml=entry.volume_ml,
                n_voxels=entry.n_voxels,
            )
        stage_segmentation(tx)
    return LabelImportResult(structures=imported)


def _chosen(
    found: Sequence[SourceStructure], structures: Sequence[str], labels_path: Path
) -> list[SourceStructure]:
    """The requested structures (all non-empty ones if none requested), in request order."""
    by_name = {item.name: item for item in found}
    if not structures:
        present = [item for item in found if item.n_voxels > 0]
        if not present:
            raise SegmentRequestError(f"{labels_path.name} holds none of the labels it names")
        return present
    chosen = []
    for name in structures:
        item = by_name.get(name)
        if item is None:
            have = ", ".join(sorted(by_name)[:12]) + (", ..." if len(by_name) > 12 else "")
            raise SegmentRequestError(
                f"label {name!r} is not named in {labels_path.name} (names: {have})"
            )
        if item.n_voxels == 0:
            raise SegmentRequestError(
                f"label {name!r} (value {item.value}) is absent from the label map "
                f"{labels_path.name}"
            )
        chosen.append(item)
    return chosen
