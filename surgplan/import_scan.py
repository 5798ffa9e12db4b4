"""Step 1 of a case: import a scan (DICOM folder or image file), de-identified."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from imaging.grid import same_grid
from imaging.image_io import load_scan, read_image_file, write_image
from surgplan.case import Case
from surgplan.manifest import ImageEntry

#: Where the scan lives inside a case.
SCAN_RELPATH = "images/scan.nrrd"


def import_scan(
    source: str | os.PathLike[str],
    case_folder: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
) -> dict[str, Any]:
    """Create or update a case from a DICOM folder or an image file.

    The scan is stored as NRRD with geometry only: no DICOM tag, and so no patient identifier,
    reaches the case. Re-importing a scan on a different grid drops the case's structures,
    surfaces and volume mesh, which no longer match it.

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
    dict
        What was done: ``case``, ``image`` (path), ``size``, ``spacing_mm``, ``origin_mm``,
        ``source_kind``, ``dropped`` (structures removed because the grid changed).
    """
    case = Case.open_or_new(case_folder)
    scan = load_scan(source, series_uid=series_uid)
    image = scan.image
    dropped: list[str] = []
    with case.transaction() as tx:
        old = tx.manifest.image
        if old is not None and case.exists:
            previous = read_image_file(case.file(old.path))
            if not same_grid(previous, image):
                dropped = sorted(tx.manifest.structures)
                for entry in tx.manifest.structures.values():
                    tx.remove(entry.label_path)
                for surface in tx.manifest.surfaces.values():
                    tx.remove(surface.path)
                tx.manifest.structures.clear()
                tx.manifest.surfaces.clear()
                tx.manifest.volume_mesh = None
        write_image(image, tx.path(SCAN_RELPATH))
        tx.manifest.image = ImageEntry(
            path=SCAN_RELPATH,
            size=tuple(int(v) for v in image.GetSize()),
            spacing_mm=tuple(float(v) for v in image.GetSpacing()),
            origin_mm=tuple(float(v) for v in image.GetOrigin()),
            direction=tuple(float(v) for v in image.GetDirection()),
            pixel_type=image.GetPixelIDTypeAsString(),
            source_kind=scan.source_kind,
            modality=scan.modality,
        )
    return {
        "action": "import",
        "case": str(Path(case_folder)),
        "image": str(case.file(SCAN_RELPATH)),
        "source_kind": scan.source_kind,
        "size": list(image.GetSize()),
        "spacing_mm": list(image.GetSpacing()),
        "origin_mm": list(image.GetOrigin()),
        "direction": np.asarray(image.GetDirection()).round(6).tolist(),
        "dropped_structures": dropped,
    }
