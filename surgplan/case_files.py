"""Validated reads of a case's own mesh files: checked against the manifest, then parsed safely.

Every command that reads the case's tetrahedral mesh or a structure's surface goes through
here. A file is refused with one line naming it when it is missing, differs from the size or
sha256 the manifest recorded when it was written (changed behind the case's back), or does not
parse as what it should be (:func:`imaging.volume_mesh_io.read_volume_mesh`,
:func:`imaging.mesh_io.read_surface`, which keep VTK's crash-prone readers out of this process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imaging.errors import MeshingError
from surgplan.case import Case, file_checksum
from surgplan.errors import CaseError

if TYPE_CHECKING:
    import pyvista as pv

__all__ = ["read_case_surface", "read_case_volume_mesh"]


def read_case_volume_mesh(case: Case) -> pv.UnstructuredGrid:
    """The case's tetrahedral mesh, checked against the manifest and validated.

    Parameters
    ----------
    case : Case
        An opened case with a volume mesh (``surgplan mesh``).

    Returns
    -------
    pyvista.UnstructuredGrid
        Tetrahedra in LPS mm with an integer ``"region"`` cell array.

    Raises
    ------
    CaseError
        If the case has no volume mesh, or its file is missing, changed or not a valid mesh.
    """
    from imaging.volume_mesh_io import read_volume_mesh

    path = case.volume_mesh_path()
    rel = case.manifest.volume_mesh.path  # type: ignore[union-attr]  # checked by the call above
    _require_as_recorded(case, rel)
    try:
        return read_volume_mesh(path)
    except MeshingError as exc:
        raise CaseError(f"the case's volume mesh {rel}: {exc}; run 'surgplan mesh' again") from exc


def read_case_surface(case: Case, structure: str) -> pv.PolyData:
    """A structure's surface from the case, checked against the manifest and validated.

    Parameters
    ----------
    case : Case
        An opened case.
    structure : str
        Name of a structure with a surface in the manifest.

    Returns
    -------
    pyvista.PolyData
        The surface in LPS mm.

    Raises
    ------
    CaseError
        If the structure has no surface, or its file is missing, changed or not a surface.
    """
    from imaging.mesh_io import read_surface

    entry = case.manifest.surfaces.get(structure)
    if entry is None:
        raise CaseError(f"case {case.root} has no surface of {structure!r}")
    _require_as_recorded(case, entry.path)
    try:
        return read_surface(case.file(entry.path))
    except MeshingError as exc:
        raise CaseError(f"the case's surface of {structure!r} ({entry.path}): {exc}") from exc


def _require_as_recorded(case: Case, rel: str) -> None:
    """Refuse a case file that is missing or differs from its manifest checksum."""
    path = case.file(rel)
    if not path.is_file():
        raise CaseError(
            f"case file {rel} named by the manifest is not found: run the step that writes it again"
        )
    entry = case.manifest.files.get(rel)
    if entry is None:  # written before checksums were recorded (manifest schema < 3)
        return
    size = path.stat().st_size
    if size != entry.size_bytes:
        raise CaseError(
            f"case file {rel} has {size} bytes, the manifest recorded {entry.size_bytes}: it was "
            "changed outside surgplan"
        )
    if file_checksum(path).sha256 != entry.sha256:
        raise CaseError(
            f"case file {rel} differs from the manifest's sha256: it was changed outside surgplan"
        )
