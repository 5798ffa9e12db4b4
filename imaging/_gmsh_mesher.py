"""gmsh's side of :func:`imaging.volume_mesh.tetrahedralize`: surfaces in, tetrahedra out.

The input triangles become discrete gmsh surfaces, are classified into parametrisable patches
and remeshed (gmsh tutorial t13, "remeshing an STL file without an underlying CAD model"); the
volumes they bound are filled by Delaunay and optimised (gmsh's own optimiser, then Netgen's
and ``Relocate3D``). The result is handed back as plain arrays (:class:`GmshTets`, also the
form :mod:`imaging._ftetwild_mesher` returns), before any quality figure is computed.

Recipes (:class:`GmshRecipe`) are tried in turn by :func:`imaging.volume_mesh.tetrahedralize`.
:data:`CLASSIC` splits patches where neighbouring triangles meet at more than 40 degrees and
meshes every piece at the target edge; it meshes smooth organs well. On the 3D-IRCADb liver at
12 mm it left one 2.85-degree tetrahedron, which Netgen's optimiser removes
(:data:`CLASSIC_NETGEN`, 8.0 degrees). On the real CT liver (a smoothed 3 mm label, cut flat by
the scan's first and last slices) 40-degree patches were slivers whose remeshed triangles had
0.6-degree angles, and the tetrahedra on them 1-degree dihedral angles. :data:`REFINED` splits
at 60 degrees (worst dihedral angle 15.7 on that liver), gives small inner pieces shorter
edges, and adds Netgen and ``Relocate3D``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import gmsh
import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from imaging.errors import MeshingError


@dataclass(frozen=True)
class GmshRecipe:
    """How gmsh remeshes the surfaces and fills the volumes.

    Attributes
    ----------
    name : str
        Short name reported with the mesh.
    classify_angle_deg : float
        Dihedral angle between neighbouring triangles above which a new patch starts, degrees.
    size_small_pieces : bool
        Give pieces of small equivalent radius their own, shorter edge (size fields).
    always_netgen : bool
        Run Netgen's optimiser whatever the caller asked.
    relocate : bool
        Run gmsh's ``Relocate3D`` node smoothing after generation.
    """

    name: str
    classify_angle_deg: float
    size_small_pieces: bool
    always_netgen: bool
    relocate: bool


#: Smooth organs: 40-degree patches, one edge for every piece.
CLASSIC = GmshRecipe("classic", 40.0, False, False, False)
#: :data:`CLASSIC` with Netgen's optimiser (removes the odd flat tetrahedron it leaves).
CLASSIC_NETGEN = GmshRecipe("classic+netgen", 40.0, False, True, False)
#: Scans cut flat or with small inner pieces: 60-degree patches, sized pieces, Netgen, relocation.
REFINED = GmshRecipe("refined", 60.0, True, True, True)
#: Boundary id of the outer structure's surface; inner interfaces use their region ids.
OUTER_BOUNDARY_ID = 1

Pieces = list[tuple[int, pv.PolyData]]


@dataclass(frozen=True)
class GmshTets:
    """Tetrahedra and boundary triangles read back from a mesher, nodes compacted.

    Attributes
    ----------
    points : numpy.ndarray, shape (n, 3)
        Node coordinates, LPS mm (only nodes used by tetrahedra).
    cells : numpy.ndarray, shape (m, 4)
        Tetrahedra as gmsh made them (orientation not yet checked).
    region : numpy.ndarray, shape (m,)
        Region id of each tetrahedron.
    gamma : numpy.ndarray, shape (m,)
        gmsh ``"gamma"`` quality of each tetrahedron.
    triangles : numpy.ndarray, shape (k, 3)
        Boundary triangles (node indices).
    boundary_id : numpy.ndarray, shape (k,)
        Boundary id of each triangle.
    notes : tuple of str
        The input's notes, plus any fallback taken here.
    """

    points: NDArray[np.float64]
    cells: NDArray[np.int64]
    region: NDArray[np.int32]
    gamma: NDArray[np.float64]
    triangles: NDArray[np.int64]
    boundary_id: NDArray[np.int32]
    notes: tuple[str, ...]


@contextlib.contextmanager
def gmsh_model() -> Iterator[None]:
    """Run in a fresh gmsh model; initialise/finalise gmsh only if nobody else has."""
    owner = not gmsh.isInitialized()
    if owner:
        gmsh.initialize(argv=[], readConfigFiles=False, interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.add(f"surgplan_{os.getpid()}_{id(object())}")
    try:
        yield
    finally:
        if owner:
            gmsh.finalize()
        else:
            gmsh.model.remove()


def mesh_with_gmsh(
    pieces: Pieces,
    regions: dict[str, int],
    target_edge_mm: float,
    optimize_netgen: bool,
    notes: tuple[str, ...],
    piece_edge_mm: list[float] | None = None,
    recipe: GmshRecipe = REFINED,
) -> GmshTets:
    """Tetrahedralise closed surface pieces in the current gmsh model (see :func:`gmsh_model`).

    Parameters
    ----------
    pieces : list of (int, pyvista.PolyData)
        ``(region id, closed surface)``; the first is the outer structure (region 1), the
        others lie inside it and become volumes of their own.
    regions : dict of str to int
        Structure name -> region id.
    target_edge_mm : float
        Target tetrahedron edge length, mm.
    optimize_netgen : bool
        Also run gmsh's Netgen optimiser.
    notes : tuple of str
        Notes so far (carried into the result).
    piece_edge_mm : list of float, optional
        Per piece, a smaller edge length (mm) on its surface and inside it (a small inner
        structure needs shorter edges to keep its volume); ``None`` uses ``target_edge_mm``.
        Ignored unless ``recipe.size_small_pieces``.
    recipe : GmshRecipe, default REFINED
        Patch angle, sizing and optimisation steps.

    Returns
    -------
    GmshTets
        The tetrahedra, boundary triangles and gamma quality as arrays.
    """
    names = {v: k for k, v in regions.items()}
    _add_discrete_surfaces(pieces)  # 1. every piece as a discrete surface with its triangles
    patches, notes = _remesh_patches(pieces, notes, recipe.classify_angle_deg)  # 2. (t13)
    volume_region = _add_volumes(pieces, patches, names)  # 3. outer with holes, one per inner
    _set_mesh_options(target_edge_mm, optimize_netgen or recipe.always_netgen)  # 4. size
    if recipe.size_small_pieces:
        _piece_sizes(patches, volume_region, pieces, target_edge_mm, piece_edge_mm)
    try:
        gmsh.model.mesh.generate(3)
        if recipe.relocate:
            gmsh.model.mesh.optimize("Relocate3D")
    except Exception as exc:  # gmsh raises plain Exception with its log message
        structure_of_patch = {
            tag: names[pieces[k][0]] for k, tags in patches.items() for tag in tags
        }
        culprits = sorted(
            {structure_of_patch.get(int(t), "?") for t in re.findall(r"surface (\d+)", str(exc))}
        )
        raise MeshingError(
            f"gmsh could not tetrahedralise {culprits or sorted(regions)!r}: {exc}; the "
            "surface(s) self-intersect or intersect each other"
        ) from exc
    return _collect(pieces, patches, volume_region, names, notes)


def _add_discrete_surfaces(pieces: Pieces) -> None:
    """Add each piece to the current gmsh model as discrete surface ``k`` (1-based)."""
    offset = 0
    for k, (_, piece) in enumerate(pieces, start=1):
        gmsh.model.addDiscreteEntity(2, k)
        n = piece.n_points
        gmsh.model.mesh.addNodes(
            2, k, np.arange(offset + 1, offset + n + 1), np.asarray(piece.points).ravel()
        )
        triangles = np.asarray(piece.regular_faces, dtype=np.int64) + offset + 1
        gmsh.model.mesh.addElementsByType(k, 2, [], triangles.ravel())
        offset += n


def _remesh_patches(
    pieces: Pieces, notes: tuple[str, ...], classify_angle_deg: float
) -> tuple[dict[int, list[int]], tuple[str, ...]]:
    """Classify the surfaces into patches; piece index -> its gmsh surface tags.

    Surfaces of higher genus (an organ pierced by vessel tunnels) may not split into patches
    gmsh can parametrise. Their own triangles then bound the tetrahedra as they are (no
    surface remeshing), which any closed manifold surface allows; a note says so.
    """
    try:
        gmsh.model.mesh.classifySurfaces(math.radians(classify_angle_deg), True, True, math.pi)
        gmsh.model.mesh.createGeometry()
    except Exception as exc:  # gmsh raises plain Exception with its log message
        notes = (*notes, f"surfaces kept as given (gmsh could not re-parametrise them: {exc})")
        gmsh.model.remove()
        gmsh.model.add(f"surgplan_{os.getpid()}_{id(object())}_discrete")
        _add_discrete_surfaces(pieces)
        return {k: [k + 1] for k in range(len(pieces))}, notes
    tree = cKDTree(np.concatenate([np.asarray(piece.points) for _, piece in pieces]))
    piece_of_point = np.concatenate(
        [np.full(piece.n_points, k) for k, (_, piece) in enumerate(pieces)]
    )
    patches: dict[int, list[int]] = {k: [] for k in range(len(pieces))}
    for _, tag in gmsh.model.getEntities(2):
        _, coords, _ = gmsh.model.mesh.getNodes(2, tag, includeBoundary=True)
        _, nearest = tree.query(coords.reshape(-1, 3)[:16])
        patches[int(np.bincount(piece_of_point[nearest]).argmax())].append(tag)
    return patches, notes


def _add_volumes(
    pieces: Pieces, patches: dict[int, list[int]], names: dict[int, str]
) -> dict[int, int]:
    """One gmsh volume per piece (the outer one with the inner ones as holes); tag -> region."""
    loops = [gmsh.model.geo.addSurfaceLoop(patches[k]) for k in range(len(pieces))]
    volume_region = {gmsh.model.geo.addVolume(loops): 1}
    for k in range(1, len(pieces)):
        volume_region[gmsh.model.geo.addVolume([loops[k]])] = pieces[k][0]
    gmsh.model.geo.synchronize()
    for rid, name in names.items():
        gmsh.model.addPhysicalGroup(3, [v for v, r in volume_region.items() if r == rid], rid, name)
    return volume_region


def _piece_sizes(
    patches: dict[int, list[int]],
    volume_region: dict[int, int],
    pieces: Pieces,
    target_edge_mm: float,
    piece_edge_mm: list[float] | None,
) -> None:
    """Size fields for pieces that need edges shorter than the target.

    Such a piece gets its edge on its surface and inside it (a "Constant" field); around an
    inner piece the size grows from its edge to the target between one and three target
    lengths away (a "Distance" + "Threshold" field), so that the outer surface facing it is
    refined too: two remeshed surfaces a clipping margin apart must not cut each other.
    """
    if piece_edge_mm is None:
        return
    volume_of_piece = dict(enumerate(volume_region))  # volumes were added in piece order
    field = gmsh.model.mesh.field
    fields = []
    for k, edge in enumerate(piece_edge_mm):
        if edge >= target_edge_mm:
            continue
        constant = field.add("Constant")
        field.setNumbers(constant, "SurfacesList", patches[k])
        if k > 0:  # an inner piece: its own volume too
            field.setNumbers(constant, "VolumesList", [volume_of_piece[k]])
        field.setNumber(constant, "VIn", edge)
        field.setNumber(constant, "IncludeBoundary", 1)
        fields.append(constant)
        if k == 0:
            continue
        distance = field.add("Distance")
        field.setNumbers(distance, "SurfacesList", patches[k])
        field.setNumber(distance, "Sampling", 20)
        threshold = field.add("Threshold")
        field.setNumber(threshold, "InField", distance)
        field.setNumber(threshold, "SizeMin", edge)
        field.setNumber(threshold, "SizeMax", target_edge_mm)
        field.setNumber(threshold, "DistMin", target_edge_mm)
        field.setNumber(threshold, "DistMax", 3.0 * target_edge_mm)
        fields.append(threshold)
    if fields:
        smallest = field.add("Min")
        field.setNumbers(smallest, "FieldsList", fields)
        field.setAsBackgroundMesh(smallest)
        gmsh.option.setNumber("Mesh.MeshSizeMin", 0.2 * min(piece_edge_mm))


def _set_mesh_options(target_edge_mm: float, optimize_netgen: bool) -> None:
    for option, value in (
        ("Mesh.MeshSizeMax", target_edge_mm),
        ("Mesh.MeshSizeMin", 0.2 * target_edge_mm),
        ("Mesh.MeshSizeFromCurvature", 0),
        ("Mesh.MeshSizeFromPoints", 0),
        ("Mesh.MeshSizeExtendFromBoundary", 0),
        ("Mesh.Algorithm", 6),  # Frontal-Delaunay surfaces
        ("Mesh.Algorithm3D", 1),  # Delaunay volumes
        ("Mesh.Optimize", 1),
        ("Mesh.OptimizeNetgen", int(optimize_netgen)),
        ("General.NumThreads", 1),
    ):
        gmsh.option.setNumber(option, value)


def _collect(
    pieces: Pieces,
    patches: dict[int, list[int]],
    volume_region: dict[int, int],
    names: dict[int, str],
    notes: tuple[str, ...],
) -> GmshTets:
    """Read tetrahedra, their gamma quality and the boundary triangles back from gmsh."""
    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    index = np.full(int(node_tags.max()) + 1, -1, dtype=np.int64)
    index[node_tags.astype(np.int64)] = np.arange(node_tags.size)
    tets, tet_tags, tet_region = [], [], []
    for volume, rid in volume_region.items():
        tags, nodes = gmsh.model.mesh.getElementsByType(4, volume)
        tets.append(index[nodes.astype(np.int64)].reshape(-1, 4))
        tet_tags.append(tags)
        tet_region.append(np.full(tags.size, rid, dtype=np.int32))
    cells = np.concatenate(tets)
    if cells.size == 0:
        raise MeshingError(f"gmsh produced no tetrahedra for {sorted(names.values())!r}")
    gamma = np.asarray(gmsh.model.mesh.getElementQualities(np.concatenate(tet_tags), "gamma"))
    tris, tri_id = [], []
    for k, (rid, _) in enumerate(pieces):
        bid = OUTER_BOUNDARY_ID if rid == 1 else rid
        for tag in patches[k]:
            _, nodes = gmsh.model.mesh.getElementsByType(2, tag)
            tris.append(index[nodes.astype(np.int64)].reshape(-1, 3))
            tri_id.append(np.full(nodes.size // 3, bid, dtype=np.int32))
    points, cells, triangles = _compact(coords.reshape(-1, 3), cells, np.concatenate(tris))
    return GmshTets(
        points=points,
        cells=cells,
        region=np.concatenate(tet_region),
        gamma=gamma,
        triangles=triangles,
        boundary_id=np.concatenate(tri_id),
        notes=notes,
    )


def _compact(
    points: NDArray[np.float64], cells: NDArray[np.int64], triangles: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Keep only the nodes used by tetrahedra, renumbered."""
    used = np.unique(cells)
    renumber = np.full(points.shape[0], -1, dtype=np.int64)
    renumber[used] = np.arange(used.size)
    triangles = renumber[triangles]
    if (triangles < 0).any():  # pragma: no cover - gmsh meshes are conforming
        raise MeshingError("gmsh boundary triangles reference nodes outside the tetrahedra")
    return np.ascontiguousarray(points[used], dtype=np.float64), renumber[cells], triangles
