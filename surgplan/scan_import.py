"""Step 1 of a case: import a scan (DICOM folder or image file), de-identified."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

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
        Structures removed because the new scan lies on a different grid.
    """

    case: Path
    image: Path
    source_kind: str
    size: tuple[int, ...]
    spacing_mm: tuple[float, ...]
    origin_mm: tuple[float, ...]
    direction: tuple[float, ...]
    dropped_structures: tuple[str, ...]

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
        }


def import_scan(
    source: str | os.PathLike[str],
    case_folder: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
) -> ImportResult:
    """Create or update a case from a DICOM folder or an image file.

    The scan is stored as NRRD with geometry only: no DICOM tag, and so no patient identifier,
    reaches the case. Re-importing a scan on a different grid drops the case's structures,
    segmentation, surfaces and volume mesh, which no longer match it.

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
    case = Case.open_or_new(case_folder)
    scan = load_scan(source, series_uid=series_uid)
    image = scan.image
    with case.transaction() as tx:
        dropped = _drop_if_regridded(case, tx, image)
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
        dropped_structures=tuple(dropped),
    )


def _drop_if_regridded(case: Case, tx: CaseTransaction, image: sitk.Image) -> list[str]:
    """Remove structures, the segmentation, surfaces and the volume mesh if the grid changes."""
    old = tx.manifest.image
    if old is None or not case.exists:
        return []
    if same_grid(read_image_file(case.file(old.path)), image):
        return []
    dropped = sorted(tx.manifest.structures)
    for entry in tx.manifest.structures.values():
        tx.remove(entry.label_path)
    for surface in tx.manifest.surfaces.values():
        tx.remove(surface.path)
    tx.manifest.structures.clear()
    tx.manifest.surfaces.clear()
    tx.manifest.volume_mesh = None
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
