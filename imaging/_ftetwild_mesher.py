"""fTetWild's side of :func:`imaging.volume_mesh.tetrahedralize`: surfaces in, tetrahedra out.

fTetWild (Hu et al., "Fast Tetrahedral Meshing in the Wild", SIGGRAPH 2020; ``pytetwild``,
MPL-2.0) fills the space bounded by the input triangles with tetrahedra optimised for quality
(conformal AMIPS energy), keeping the output's boundary within an envelope of the input
(``epsilon`` of the bounding-box diagonal). All pieces go in as one triangle soup, outward
oriented, so the inside of an inner piece has winding number 2 and is kept; each tetrahedron
then takes the region of the inner piece that encloses its centroid (region 1 otherwise), and
the boundary triangles are the faces used by one tetrahedron (the outer surface) or shared by
tetrahedra of two regions (an inner interface). It is slower than gmsh (about 30 s for a
1 L liver at 6 mm on one core against 2 s) and makes 2-3 times as many tetrahedra, but does not
depend on the surface being parametrisable.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytetwild
import pyvista as pv
from numpy.typing import NDArray

from imaging._gmsh_mesher import OUTER_BOUNDARY_ID, GmshTets, Pieces
from imaging.errors import MeshingError
from imaging.mesh_quality import tet_gamma, tet_volumes

#: Envelope of the output boundary around the input, relative to the bounding-box diagonal.
ENVELOPE_EPSILON = 1e-3
#: Tetrahedron faces as vertex triples, face k opposite vertex k.
_FACES = ((1, 2, 3), (0, 3, 2), (0, 1, 3), (0, 2, 1))


#: fTetWild writes ``_tracked_surface.stl`` into the current folder; it runs in a private one.
_CWD_LOCK = threading.Lock()


@contextmanager
def _private_working_folder() -> Iterator[None]:
    """Run the block with a fresh temporary folder as the working directory, then remove it.

    The working directory is process-wide, so concurrent callers are serialised.
    """
    with _CWD_LOCK, tempfile.TemporaryDirectory(prefix="surgplan-ftetwild-") as folder:
        previous = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(previous)


def mesh_with_ftetwild(
    pieces: Pieces, target_edge_mm: float, notes: tuple[str, ...], *, threads: int = 0
) -> GmshTets:
    """Tetrahedralise closed, outward-oriented surface pieces with fTetWild.

    Parameters
    ----------
    pieces : list of (int, pyvista.PolyData)
        ``(region id, closed surface)``; the first is the outer structure (region 1), the
        others lie inside it.
    target_edge_mm : float
        Ideal tetrahedron edge length, mm (fTetWild's ``edge_length_abs``).
    notes : tuple of str
        Notes so far (carried into the result).
    threads : int, default 0
        Threads for fTetWild; 0 uses every core.

    Returns
    -------
    GmshTets
        Positively oriented tetrahedra, region per tetrahedron, gamma, boundary triangles.
    """
    offsets = np.cumsum([0] + [p.n_points for _, p in pieces])
    vertices = np.concatenate([np.asarray(p.points, dtype=np.float64) for _, p in pieces])
    faces = np.concatenate(
        [
            np.asarray(p.regular_faces, dtype=np.int64) + offsets[k]
            for k, (_, p) in enumerate(pieces)
        ]
    ).astype(np.int32)
    try:
        with _private_working_folder():
            points, cells = pytetwild.tetrahedralize(
                vertices,
                faces,
                edge_length_abs=float(target_edge_mm),
                epsilon=ENVELOPE_EPSILON,
                num_threads=threads,
                quiet=True,
            )
    except MeshingError:
        raise
    except Exception as exc:  # the C++ wrapper raises RuntimeError with its own message
        raise MeshingError(f"fTetWild could not tetrahedralise the surfaces: {exc}") from exc
    points = np.ascontiguousarray(points, dtype=np.float64)
    cells = np.asarray(cells, dtype=np.int64)
    if cells.size == 0:
        raise MeshingError("fTetWild produced no tetrahedra")
    flip = tet_volumes(points, cells) < 0.0
    cells[flip] = cells[flip][:, [0, 2, 1, 3]]
    region = _regions(points, cells, pieces)
    triangles, boundary_id = _boundary(cells, region)
    points, cells, triangles = _compact(points, cells, triangles)
    return GmshTets(
        points=points,
        cells=cells,
        region=region,
        gamma=tet_gamma(points, cells),
        triangles=triangles,
        boundary_id=boundary_id,
        notes=notes,
    )


def _regions(
    points: NDArray[np.float64], cells: NDArray[np.int64], pieces: Pieces
) -> NDArray[np.int32]:
    """Region of each tetrahedron: the inner piece enclosing its centroid, else 1."""
    region = np.ones(cells.shape[0], dtype=np.int32)
    if len(pieces) == 1:
        return region
    centroids = pv.PolyData(points[cells].mean(axis=1))
    for rid, piece in pieces[1:]:
        lo, hi = np.asarray(piece.bounds)[0::2], np.asarray(piece.bounds)[1::2]
        near = np.flatnonzero(np.all((centroids.points >= lo) & (centroids.points <= hi), axis=1))
        if near.size == 0:
            continue
        distance = pv.PolyData(centroids.points[near]).compute_implicit_distance(piece)
        region[near[np.asarray(distance["implicit_distance"]) < 0.0]] = rid
    return region


def _boundary(
    cells: NDArray[np.int64], region: NDArray[np.int32]
) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """Outer faces (id 1) and inner interfaces (the inner region's id), oriented outward.

    A face of tetrahedron ``t`` listed as in :data:`_FACES` is wound so that its normal points
    away from ``t``; an interface keeps the winding of its inner-region tetrahedron.
    """
    tri = np.concatenate([cells[:, list(face)] for face in _FACES])  # (4m, 3)
    owner = np.tile(np.arange(cells.shape[0]), 4)
    key = np.sort(tri, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    outer = counts[inverse] == 1
    owner_region = region[owner]
    # the largest region among the (one or two) tetrahedra on each face
    face_max = np.zeros(counts.size, dtype=np.int32)
    np.maximum.at(face_max, inverse, owner_region)
    face_min = np.full(counts.size, np.iinfo(np.int32).max, dtype=np.int32)
    np.minimum.at(face_min, inverse, owner_region)
    interface = (~outer) & (face_max[inverse] != face_min[inverse])
    interface &= owner_region == face_max[inverse]  # one copy: the inner tetrahedron's
    keep = outer | interface
    boundary_id = np.where(outer, OUTER_BOUNDARY_ID, owner_region).astype(np.int32)
    return tri[keep], boundary_id[keep]


def _compact(
    points: NDArray[np.float64], cells: NDArray[np.int64], triangles: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Keep only the nodes used by tetrahedra, renumbered."""
    used = np.unique(cells)
    renumber = np.full(points.shape[0], -1, dtype=np.int64)
    renumber[used] = np.arange(used.size)
    return np.ascontiguousarray(points[used]), renumber[cells], renumber[triangles]
