"""Read and write triangle surfaces (VTP, VTK, STL, OBJ, PLY), atomically, in LPS millimetres.

Coordinates are written exactly as held: patient LPS millimetres.  For ``.vtk`` and ``.vtp`` the
file also carries a field-data string ``"SPACE" = "LPS"`` (and legacy ``.vtk`` files a header
line ``SPACE=LPS``), the convention 3D Slicer uses for models: Slicer >= 4.11 reads models as LPS
unless the file declares RAS, so these files open in the right place in Slicer and ParaView.
STL, OBJ and PLY have no place for a coordinate-system tag; they are LPS by this project's
convention.

VTK's legacy ``.vtk`` reader crashes the process (SIGSEGV) on some corrupt files: about one
mutated binary file in twenty with a few bytes changed near the header (``benchmarks/
cli_fuzz.py``), none of the XML (``.vtp``, ``.vtu``) or STL files mutated the same way.
:func:`probe_mesh_file` therefore reads a legacy file first in a child process (VTK's reader
only, kept alive between files: :mod:`imaging._vtk_probe`) and turns a crash there into a
:class:`~imaging.errors.MeshingError`;
:func:`read_surface` does this for every ``.vtk`` file before handing it to VTK in-process.
(Validating the legacy format's structure instead would mean a second parser of every section
the format has: field data, cell arrays in both the 4.2 and 5.1 layouts, lookup tables.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyvista as pv

from imaging._atomic import write_atomically
from imaging._vtk_probe import probe_legacy_vtk
from imaging.errors import MeshingError

__all__ = [
    "CRASH_PRONE_SUFFIXES",
    "SURFACE_SUFFIXES",
    "probe_mesh_file",
    "read_surface",
    "write_surface",
]

#: File suffixes understood by :func:`write_surface` and :func:`read_surface`.
SURFACE_SUFFIXES = (".vtp", ".vtk", ".stl", ".obj", ".ply")

#: Suffixes whose VTK reader can crash the process on a corrupt file (read first in a child).
CRASH_PRONE_SUFFIXES = (".vtk",)
#: Largest vertex coordinate magnitude accepted, mm (100 m: beyond any patient or room).
MAX_COORDINATE_MM = 1.0e5

_SPACE_FIELD = "SPACE"
_LEGACY_HEADER = "SPACE=LPS"


def write_surface(poly: pv.PolyData, path: str | os.PathLike[str]) -> Path:
    """Write a surface atomically in the format given by the file suffix.

    The file is written to a temporary name in the destination folder and renamed over
    ``path`` only when complete, so a crash never leaves a half-written file.

    Parameters
    ----------
    poly : pyvista.PolyData
        Surface with points in LPS mm.
    path : str or os.PathLike
        Destination; suffix one of ``.vtp``, ``.vtk``, ``.stl``, ``.obj``, ``.ply``.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    MeshingError
        If the suffix is unknown, ``poly`` is not a non-empty ``PolyData``, or the folder is
        missing.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not isinstance(poly, pv.PolyData) or poly.n_points == 0:
        raise MeshingError(f"cannot write {path}: expected a non-empty pyvista.PolyData")
    if not path.parent.is_dir():
        raise MeshingError(f"cannot write {path}: folder {path.parent} does not exist")
    out = poly.copy(deep=False)
    if suffix in (".vtp", ".vtk"):
        out.field_data[_SPACE_FIELD] = np.array(["LPS"])
    if suffix in (".stl", ".obj", ".ply") and not out.is_all_triangles:
        out = out.triangulate()
    write_atomically(path, lambda tmp: _save(out, tmp, suffix))
    return path


def read_surface(path: str | os.PathLike[str]) -> pv.PolyData:
    """Read a surface written by :func:`write_surface` (or any file of those formats).

    Parameters
    ----------
    path : str or os.PathLike
        File with suffix ``.vtp``, ``.vtk``, ``.stl``, ``.obj`` or ``.ply``.

    Returns
    -------
    pyvista.PolyData
        The surface, points in LPS mm.

    Raises
    ------
    MeshingError
        If the suffix is unknown, the file is missing, declares RAS space, or holds no surface.
    """
    path = Path(path)
    suffix = _suffix(path)
    mesh = _read_vtk_file(path, "surface file", f"not a readable {suffix[1:].upper()} surface")
    _check_cells(mesh, path)
    if not isinstance(mesh, pv.PolyData):
        mesh = mesh.extract_surface(algorithm="dataset_surface")
    if mesh.n_points == 0:
        raise MeshingError(f"surface file {path} holds no points")
    if not np.all(np.isfinite(mesh.points)):
        raise MeshingError(f"surface file {path} has NaN or infinite vertex coordinates")
    if np.abs(mesh.points).max() > MAX_COORDINATE_MM:
        raise MeshingError(
            f"surface file {path} has vertex coordinates beyond {MAX_COORDINATE_MM:g} mm "
            f"(up to {np.abs(mesh.points).max():.4g}); expected patient coordinates in mm"
        )
    mesh.points = np.asarray(mesh.points, dtype=np.float64)  # STL/PLY store float32
    if suffix in (".vtp", ".vtk") and _SPACE_FIELD in mesh.field_data:
        try:
            values = np.asarray(mesh.field_data[_SPACE_FIELD]).ravel()
        except UnicodeDecodeError:
            raise MeshingError(
                f"surface file {path} is corrupt: its {_SPACE_FIELD} field is not ASCII text"
            ) from None
        space = str(values[0]) if len(values) else ""
        if space.upper() != "LPS":
            raise MeshingError(f"surface file {path} declares SPACE={space}; expected LPS")
    return mesh


#: VTK's legacy reader's warning (not error) for binary data that ends early.
_TRUNCATED = "Error reading binary data"


def _read_vtk_file(path: Path, what: str, expected: str = "") -> pv.DataSet:
    """``pv.read`` of an existing file, crash-probed and quiet; errors name ``what`` and why."""
    if not path.is_file():
        raise MeshingError(f"{what} {path} does not exist")
    probe_mesh_file(path)
    try:
        with _quiet_vtk():
            catcher = pv.VtkErrorCatcher(raise_errors=False, send_to_logging=False)
            with catcher:
                mesh = pv.read(path)
    except Exception as exc:  # VTK readers raise many types for corrupt files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        detail = f"{expected} ({reason})" if expected else reason
        raise MeshingError(f"cannot read {what} {path}: {detail}") from exc
    # a legacy file cut short is only a warning to VTK, which returns whatever memory held
    if any(_TRUNCATED in str(event.alert) for event in catcher.warning_events):
        raise MeshingError(f"cannot read {what} {path}: corrupt or truncated (VTK: {_TRUNCATED})")
    return mesh


def _check_cells(mesh: object, path: Path, what: str = "surface file") -> None:
    """Every cell's vertex indices must name a vertex of the file (VTK does not check)."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    if not isinstance(mesh, pv.DataSet):
        raise MeshingError(f"{what} {path} holds a {type(mesh).__name__}, not one mesh")
    n = mesh.n_points
    arrays = []
    if isinstance(mesh, pv.PolyData):
        for cells in (mesh.GetVerts(), mesh.GetLines(), mesh.GetPolys(), mesh.GetStrips()):
            arrays.append(
                (
                    vtk_to_numpy(cells.GetOffsetsArray()),
                    vtk_to_numpy(cells.GetConnectivityArray()),
                )
            )
    elif isinstance(mesh, pv.UnstructuredGrid):
        arrays.append((np.asarray(mesh.cell_offsets), np.asarray(mesh.cell_connectivity)))
    for offsets, ids in arrays:
        if len(offsets) and (
            offsets[0] != 0 or offsets[-1] != len(ids) or np.any(np.diff(offsets) < 0)
        ):
            raise MeshingError(
                f"{what} {path} is corrupt: its cell offsets do not describe its "
                f"{len(ids)} cell vertex indices"
            )
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise MeshingError(
                f"{what} {path} is corrupt: a cell refers to vertex {int(ids.max())} "
                f"(or {int(ids.min())}) but the file has {n} vertices"
            )


def probe_mesh_file(path: str | os.PathLike[str]) -> Path:
    """Check that VTK's reader survives ``path``: a legacy ``.vtk`` file is read in a child first.

    Files of other formats are returned at once (their readers report corrupt files as errors).

    Parameters
    ----------
    path : str or os.PathLike
        A mesh file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    MeshingError
        When the child reading the file is killed by a signal (a crash in VTK's reader), runs
        out of its memory or time (:mod:`imaging._vtk_probe`).
    """
    p = Path(path)
    if p.suffix.lower() in CRASH_PRONE_SUFFIXES and p.is_file():
        probe_legacy_vtk(p)
    return p


@contextlib.contextmanager
def _quiet_vtk() -> Iterator[None]:
    """Keep VTK's reader messages off the terminal: failures are raised, not logged.

    VTK prints reader errors through its own log and pyvista forwards them to Python's root
    logger and as warnings; a corrupt file must give one error line, not pages of VTK output.
    """

    def drop(record: logging.LogRecord) -> bool:
        return False

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        with pv.vtk_verbosity("off"), warnings.catch_warnings():
            # pyvista's "The VTK reader ... raised an error" becomes an exception
            warnings.filterwarnings("error", message="The VTK reader")
            yield
    finally:
        root.removeFilter(drop)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SURFACE_SUFFIXES:
        raise MeshingError(
            f"unknown surface file extension {path.suffix!r} in {path}; "
            f"expected one of {', '.join(SURFACE_SUFFIXES)}"
        )
    return suffix


def _save(poly: pv.PolyData, tmp: Path, suffix: str) -> None:
    if suffix == ".obj":
        _write_obj(poly, tmp)
    elif suffix == ".vtk":
        poly.save(tmp, binary=True)
        _add_legacy_header(tmp)
    else:
        poly.save(tmp, binary=True)


def _write_obj(poly: pv.PolyData, tmp: Path) -> None:
    """Write Wavefront OBJ (vertices + faces, 1-based) at full float precision."""
    faces = np.asarray(poly.regular_faces, dtype=np.int64) + 1
    with tmp.open("w", encoding="ascii") as fh:
        fh.write("# surgplan surface, LPS millimetres\n")
        np.savetxt(fh, np.asarray(poly.points, dtype=np.float64), fmt="v %.17g %.17g %.17g")
        np.savetxt(fh, faces, fmt="f %d %d %d")


def _add_legacy_header(tmp: Path) -> None:
    """Put ``SPACE=LPS`` in the legacy VTK title line (line 2), as 3D Slicer writes it."""
    data = tmp.read_bytes()
    first = data.index(b"\n") + 1
    second = data.index(b"\n", first) + 1
    tmp.write_bytes(data[:first] + _LEGACY_HEADER.encode("ascii") + b"\n" + data[second:])
