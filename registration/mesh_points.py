"""Points from mesh files: the vertices of a VTK, VTP, STL or OBJ mesh, LPS mm.

A scanned or simulated surface patch is often saved as a mesh; as registration input only its
vertices count. VTK's readers report a bad file on stderr and return an empty mesh, so reading
runs with VTK's messages captured; an empty result then becomes one :class:`PointFileError`
naming VTK's first error. (VTK also reports harmless errors, such as an infinite cached range
in a ``.vtp``, while returning the data: those are ignored and the vertices checked instead.)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from registration._io_errors import PointFileError

__all__ = ["MESH_SUFFIXES", "read_mesh_vertices"]

#: VTK's legacy reader's warning for binary data that ends early.
_TRUNCATED = "Error reading binary data"

#: Suffixes read as meshes (``registration.io.read_points`` reads PLY as a point cloud).
MESH_SUFFIXES = (".vtk", ".vtp", ".stl", ".obj")


class _KeepRecords(logging.Filter):
    """Keep the messages of log records in a list and stop the records."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__()
        self.messages = messages

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return False


@contextmanager
def _vtk_messages_captured() -> Iterator[list[str]]:
    """Run a VTK read silently; yield the list that collects its error messages.

    VTK's output window, pyvista's warnings and pyvista's logging of VTK errors (on the root
    logger) are all captured, so nothing but the caller's own error reaches the user. The list
    is filled on exit: VTK's own errors first (the most specific), then pyvista's.
    """
    import pyvista as pv

    messages: list[str] = []
    logged: list[str] = []
    keep = _KeepRecords(logged)  # pyvista logs VTK's errors on the root logger, in order
    root = logging.getLogger()
    root.addFilter(keep)
    null = logging.NullHandler()  # so that logging.error() does not call basicConfig() for good
    root.addHandler(null)
    try:
        with pv.vtk_verbosity("off"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            catcher = pv.VtkErrorCatcher(raise_errors=False, send_to_logging=False)
            with catcher:
                yield messages
            messages.extend(str(e.alert) for e in catcher.error_events)
            # a legacy file cut short is only a warning to VTK, which then returns whatever
            # memory held: kept (last), so that the caller refuses the file
            messages.extend(
                " ".join(str(e.alert).split("\n")[1:]) or str(e.alert)
                for e in catcher.warning_events
                if _TRUNCATED in str(e.alert)
            )
            messages.extend(logged)
            messages.extend(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    finally:
        root.removeHandler(null)
        root.removeFilter(keep)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


def read_mesh_vertices(path: str | Path) -> NDArray[np.float64]:
    """Read the vertices of a mesh file as points.

    Parameters
    ----------
    path : str or pathlib.Path
        Mesh file: ``.vtk`` (legacy; any dataset), ``.vtp``, ``.stl`` or ``.obj``, LPS mm.

    Returns
    -------
    numpy.ndarray, shape (N, 3)
        Vertex positions, LPS mm, in file order.

    Raises
    ------
    PointFileError
        Missing or unreadable file, a mesh with no points, or NaN/infinite vertices (a mesh
        cannot have missing vertices; in a CSV point list such rows are dropped and counted).
    """
    import pyvista as pv

    p = Path(path)
    if not p.is_file():
        raise PointFileError(f"mesh file not found: {p}")
    try:
        with _vtk_messages_captured() as vtk_errors:
            mesh = pv.read(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad user input
        raise PointFileError(f"{p}: cannot read mesh ({_one_line(str(exc))})") from exc
    points = getattr(mesh, "points", None)
    if points is None:
        raise PointFileError(f"{p}: a {type(mesh).__name__} has no single vertex list")
    vertices = np.array(points, dtype=np.float64).reshape(-1, 3)
    if any(_TRUNCATED in m for m in vtk_errors):
        raise PointFileError(f"{p}: corrupt or truncated mesh file (VTK: {_TRUNCATED})")
    _check_cell_indices(mesh, len(vertices), p)
    if len(vertices) == 0 and vtk_errors:  # VTK returns an empty mesh from a file it cannot read
        raise PointFileError(f"{p}: cannot read mesh ({_one_line(vtk_errors[0])})")
    if len(vertices) == 0:
        raise PointFileError(f"{p}: mesh has no points (expected vertices in mm)")
    bad = np.flatnonzero(~np.all(np.isfinite(vertices), axis=1))
    if len(bad):
        raise PointFileError(
            f"{p}: {len(bad)} of {len(vertices)} mesh vertices are NaN or infinite "
            f"(first: vertex {bad[0]}); expected finite coordinates in mm"
        )
    return vertices


def _check_cell_indices(mesh: object, n_points: int, path: Path) -> None:
    """Refuse a mesh whose cells name missing vertices or whose offsets are inconsistent.

    Such a file is corrupt (truncated or overwritten), so its vertices cannot be trusted either;
    VTK does not check.
    """
    import pyvista as pv
    from vtkmodules.util.numpy_support import vtk_to_numpy

    arrays = []
    if isinstance(mesh, pv.PolyData):
        for cells in (mesh.GetVerts(), mesh.GetLines(), mesh.GetPolys(), mesh.GetStrips()):
            offsets = vtk_to_numpy(cells.GetOffsetsArray())
            arrays.append((offsets, vtk_to_numpy(cells.GetConnectivityArray())))
    elif isinstance(mesh, pv.UnstructuredGrid):
        arrays.append((np.asarray(mesh.cell_offsets), np.asarray(mesh.cell_connectivity)))
    for offsets, ids in arrays:
        if len(offsets) and (
            offsets[0] != 0 or offsets[-1] != len(ids) or np.any(np.diff(offsets) < 0)
        ):
            raise PointFileError(
                f"{path}: corrupt mesh file: its cell offsets do not describe its cell list"
            )
        if len(ids) and (ids.min() < 0 or ids.max() >= n_points):
            bad = ids[(ids < 0) | (ids >= n_points)][0]
            raise PointFileError(
                f"{path}: corrupt mesh file: a cell refers to vertex {bad} but the file has "
                f"{n_points} vertices"
            )
