"""Step 1 of a case: import a scan (DICOM folder or image file), de-identified."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from imaging.errors import ImageReadError
from imaging.grid import same_grid
from imaging.image_io import LoadedScan, load_scan, read_image_file, write_image
from surgplan.case import Case, CaseTransaction
from surgplan.case_segmentation import stage_segmentation
from surgplan.manifest import ImageEntry

#: Where the scan lives inside a case.
SCAN_RELPATH = "images/scan.nrrd"


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_scan` did.

    Attributes
    ----------
    case : pathlib.Path
        The case folder, as given.
    image : pathlib.Path
        The stored scan (NRRD, geometry only).
    source_kind : str
        ``"dicom"`` or the image file kind reported by :func:`imaging.image_io.load_scan`.
    size : tuple of int
        Voxels along x, y, z.
    spacing_mm, origin_mm : tuple of float
        Voxel spacing and the first voxel's centre, LPS mm.
    direction : tuple of float
        The 9 direction cosines, row-major.
    dropped_structures : tuple of str
        Structures removed because the new scan differs from the case's previous one.
    dropped : tuple of str
        Everything removed for that reason (``structures/liver``, ``surfaces/liver``,
        ``volume_mesh``, ``artifacts/rom/linear``...); not in :meth:`to_dict` (the JSON
        contract), the CLI says it on stderr.
    modality : str or None
        DICOM Modality defined term of the series (``"OT"`` for an unknown value), ``None``
        for an image file.
    notes : tuple of str
        What the import changed that the user should know (a gantry tilt resampled onto an
        orthogonal grid, say).
    """

    case: Path
    image: Path
    source_kind: str
    size: tuple[int, ...]
    spacing_mm: tuple[float, ...]
    origin_mm: tuple[float, ...]
    direction: tuple[float, ...]
    dropped_structures: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    modality: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan import --json`` (direction rounded to 6 places)."""
        return {
            "action": "import",
            "case": str(self.case),
            "image": str(self.image),
            "source_kind": self.source_kind,
            "size": list(self.size),
            "spacing_mm": list(self.spacing_mm),
            "origin_mm": list(self.origin_mm),
            "direction": np.asarray(self.direction).round(6).tolist(),
            "dropped_structures": list(self.dropped_structures),
            "modality": self.modality,
            "notes": list(self.notes),
        }


def _refuse_a_single_dicom_file(source: Path) -> None:
    """Refuse one DICOM file given as SOURCE, without its name.

    Real exports name files after the patient; a DICOM scan is imported from its folder.
    """
    if not source.is_file():
        return
    with open(source, "rb") as handle:
        preamble = handle.read(132)
    if source.suffix.lower() in (".dcm", ".dicom", ".ima") or preamble[128:132] == b"DICM":
        raise ImageReadError(
            "SOURCE is a single DICOM file; give the folder that holds its series (a DICOM "
            "scan is imported from its folder)"
        )


def import_scan(
    source: str | os.PathLike[str],
    case_folder: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
) -> ImportResult:
    """Create or update a case from a DICOM folder or an image file.

    The scan is stored as NRRD with geometry only: no DICOM tag, and so no patient identifier,
    reaches the case. Re-importing a different scan (other voxels, on the same grid or not)
    drops everything derived from the old anatomy: structures, segmentation, surfaces (also
    imported models), volume mesh, FE results, reduced models, registrations and the DICOM
    export UIDs, their files deleted in the same commit; live-session logs and the pointer
    calibration are kept. Re-importing the same scan changes nothing derived.

    Parameters
    ----------
    source
        DICOM folder (one series, or pick one with ``series_uid``) or NIfTI/NRRD/MHA file.
    case_folder
        Case folder; created if it does not exist.
    series_uid
        SeriesInstanceUID to import from a folder holding several series.

    Returns
    -------
    ImportResult
        The stored scan's path and geometry (LPS mm) and the structures dropped because the
        grid changed.
    """
    _refuse_a_single_dicom_file(Path(source))
    case = Case.open_or_new(case_folder)
    scan = load_scan(source, series_uid=series_uid)
    image = scan.image
    with case.transaction() as tx:
        dropped = _drop_if_other_scan(case, tx, image)
        write_image(image, tx.path(SCAN_RELPATH))
        tx.manifest.image = _image_entry(scan)
    return ImportResult(
        case=Path(case_folder),
        image=case.file(SCAN_RELPATH),
        source_kind=scan.source_kind,
        size=tuple(int(v) for v in image.GetSize()),
        spacing_mm=tuple(float(v) for v in image.GetSpacing()),
        origin_mm=tuple(float(v) for v in image.GetOrigin()),
        direction=tuple(float(v) for v in image.GetDirection()),
        dropped_structures=tuple(
            sorted(n.removeprefix("structures/") for n in dropped if n.startswith("structures/"))
        ),
        dropped=tuple(dropped),
        modality=scan.modality,
        notes=tuple(scan.notes),
    )


#: Artifact kinds that do not depend on the scan (kept when another scan is imported).
SCAN_INDEPENDENT_ARTIFACTS = ("session", "pointer")


def _same_scan(old: sitk.Image, new: sitk.Image) -> bool:
    """Same grid and the same voxel values."""
    if not same_grid(old, new) or old.GetPixelID() != new.GetPixelID():
        return False
    return bool(np.array_equal(sitk.GetArrayViewFromImage(old), sitk.GetArrayViewFromImage(new)))


def _drop_if_other_scan(case: Case, tx: CaseTransaction, image: sitk.Image) -> list[str]:
    """Drop everything derived from the old scan if ``image`` is another one; what was dropped.

    Works on the manifest read under the lock (``tx.manifest``); the files of the dropped
    entries are deleted by the commit (they are no longer named).
    """
    m = tx.manifest
    if m.image is None:
        return []
    old_path = case.file(m.image.path)
    if old_path.is_file() and _same_scan(read_image_file(old_path), image):
        return []
    dropped = [f"structures/{n}" for n in m.structures] + [f"surfaces/{n}" for n in m.surfaces]
    dropped += ["segmentation"] * (m.segmentation is not None)
    dropped += ["volume_mesh"] * (m.volume_mesh is not None)
    dropped += ["dicom_uids"] * (m.dicom_uids is not None)
    derived = [k for k, a in m.artifacts.items() if a.kind not in SCAN_INDEPENDENT_ARTIFACTS]
    dropped += [f"artifacts/{k}" for k in derived]
    m.structures.clear()
    m.surfaces.clear()
    m.volume_mesh = None
    m.dicom_uids = None
    for key in derived:
        del m.artifacts[key]
    stage_segmentation(tx)  # no structure left: removes labels/segmentation.seg.nrrd
    return dropped


def _image_entry(scan: LoadedScan) -> ImageEntry:
    image = scan.image
    return ImageEntry(
        path=SCAN_RELPATH,
        size=tuple(int(v) for v in image.GetSize()),
        spacing_mm=tuple(float(v) for v in image.GetSpacing()),
        origin_mm=tuple(float(v) for v in image.GetOrigin()),
        direction=tuple(float(v) for v in image.GetDirection()),
        pixel_type=image.GetPixelIDTypeAsString(),
        source_kind=scan.source_kind,
        modality=scan.modality,
    )
