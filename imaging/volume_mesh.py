"""Closed surfaces -> conforming tetrahedral finite-element mesh with tagged regions (gmsh).

One outer structure (e.g. the liver) is meshed with inner structures (e.g. tumours) embedded
as separate volumes that share their boundary with the outer tissue, so one conforming mesh
carries a cell-data ``"region"`` id per structure: ``1`` for the outer structure minus the
inner ones, ``2, 3, ...`` for each inner structure in the order given.

Input surfaces are repaired only in ways that are reported in :attr:`VolumeMesh.notes`:
degenerate zero-volume pieces are dropped, only the largest closed piece of the outer
structure is kept, and inner pieces poking out of the outer surface are clipped to lie
``clip_margin_mm`` inside it (or dropped, or refused, see ``inner_outside``).  Open,
non-manifold or overlapping input raises :class:`~imaging.errors.MeshingError`.

gmsh remeshes the input triangles to the requested size: the surfaces are classified into
parametrisable patches and re-meshed (gmsh tutorial t13, "remeshing an STL file without an
underlying CAD model"), then the volumes are filled by Delaunay and optimised.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import gmsh
import numpy as np
import pyvista as pv
import vtk
from numpy.typing import NDArray
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree
from vtk.util.numpy_support import vtk_to_numpy

from imaging.errors import MeshingError
from imaging.mesh_io import write_atomically
from imaging.surface import array_to_surface, edge_defects, signed_volume_mm3

__all__ = [
    "MeshQuality",
    "VolumeMesh",
    "tetrahedralize",
    "write_volume_mesh",
]

#: Outer-structure boundary id in :attr:`VolumeMesh.boundary`; inner interfaces use region ids.
OUTER_BOUNDARY_ID = 1
#: Pieces smaller than this (mm^3) with a negligible share of their structure's area are junk.
_DEGENERATE_VOLUME_MM3 = 1.0
_DEGENERATE_AREA_FRACTION = 0.01
#: Dihedral angle between neighbouring triangles above which gmsh starts a new patch (deg).
_CLASSIFY_ANGLE_DEG = 40.0
VOLUME_MESH_SUFFIXES = (".vtu", ".msh")
#: Triangle budget of a clipped inner surface before gmsh remeshes it.
_CLIPPED_TRIANGLES = 10_000


@dataclass(frozen=True)
class MeshQuality:
    """Element-quality summary of a tetrahedral mesh.

    Attributes
    ----------
    n_tets, n_nodes : int
        Element and node counts.
    gamma_min, gamma_mean, gamma_max : float
        gmsh ``"gamma"`` quality (normalised inscribed / circumscribed radius ratio, 1 for the
        regular tetrahedron, 0 for a flat one).
    fraction_gamma_below_0_1 : float
        Fraction of tetrahedra with gamma < 0.1 (slivers).
    min_dihedral_deg, max_dihedral_deg : float
        Extreme dihedral angles over all tetrahedra, in degrees (70.5 for a regular one).
    n_inverted : int
        Tetrahedra with non-positive volume (must be 0).
    region_volume_ml : dict of str to float
        Meshed volume per structure in mL.
    """

    n_tets: int
    n_nodes: int
    gamma_min: float
    gamma_mean: float
    gamma_max: float
    fraction_gamma_below_0_1: float
    min_dihedral_deg: float
    max_dihedral_deg: float
    n_inverted: int
    region_volume_ml: dict[str, float]


@dataclass(frozen=True)
class VolumeMesh:
    """A tagged tetrahedral mesh, ready for FE.

    Attributes
    ----------
    grid : pyvista.UnstructuredGrid
        Linear tetrahedra, points in LPS mm, cell data ``"region"`` (int32).
    boundary : pyvista.PolyData
        Boundary triangles (sharing ``grid``'s point coordinates) with cell data
        ``"boundary_id"``: :data:`OUTER_BOUNDARY_ID` on the outer surface, the inner structure's
        region id on each inner interface.
    regions : dict of str to int
        Structure name -> region id.
    boundary_ids : dict of str to int
        Structure name -> boundary id of its surface.
    quality : MeshQuality
        Element quality summary.
    notes : tuple of str
        What was dropped, clipped or otherwise changed in the input, in words.
    """

    grid: pv.UnstructuredGrid
    boundary: pv.PolyData
    regions: dict[str, int]
    boundary_ids: dict[str, int]
    quality: MeshQuality
    notes: tuple[str, ...] = field(default_factory=tuple)


def tetrahedralize(
    surfaces: dict[str, pv.PolyData],
    *,
    outer: str,
    target_edge_mm: float = 6.0,
    inner: list[str] | None = None,
    inner_outside: Literal["clip", "drop", "raise"] = "clip",
    clip_margin_mm: float = 1.0,
    optimize_netgen: bool = False,
) -> VolumeMesh:
    """Mesh an outer closed surface and embedded inner closed surfaces with tetrahedra.

    Parameters
    ----------
    surfaces : dict of str to pyvista.PolyData
        Structure name -> closed triangle surface in LPS mm (several closed pieces allowed).
    outer : str
        Name of the enclosing structure (region 1); only its largest closed piece is meshed.
    target_edge_mm : float, default 6.0
        Target tetrahedron edge length in mm (gmsh ``Mesh.MeshSizeMax``).
    inner : list of str or None, default None
        Structures embedded in ``outer`` (regions 2, 3, ... in this order); ``None`` means every
        structure in ``surfaces`` other than ``outer``, in dict order.
    inner_outside : {"clip", "drop", "raise"}, default "clip"
        What to do with an inner piece that is not entirely inside ``outer``: clip it to
        ``outer`` shrunk by ``clip_margin_mm`` (pieces entirely outside are dropped), drop it,
        or raise. Every change is reported in :attr:`VolumeMesh.notes`.
    clip_margin_mm : float, default 1.0
        Minimum gap in mm kept between a clipped inner piece and the outer surface.
    optimize_netgen : bool, default False
        Also run gmsh's Netgen optimiser (better worst elements, slower).

    Returns
    -------
    VolumeMesh
        Tetrahedra with ``"region"``, tagged boundary, quality summary and notes.

    Raises
    ------
    MeshingError
        If a name is unknown, a surface is open, non-manifold or empty, inner pieces overlap,
        an inner piece leaves ``outer`` with ``inner_outside="raise"``, or gmsh fails.
    """
    inner_names = _check_arguments(surfaces, outer, inner, target_edge_mm, clip_margin_mm)
    if inner_outside not in ("clip", "drop", "raise"):
        raise MeshingError(
            f"inner_outside must be 'clip', 'drop' or 'raise', got {inner_outside!r}"
        )
    notes: list[str] = []
    outer_piece = _closed_pieces(outer, surfaces[outer], notes, keep_largest=True)[0]

    regions = {outer: 1}
    pieces: list[tuple[int, pv.PolyData]] = [(1, outer_piece)]
    for region_id, name in enumerate(inner_names, start=2):
        kept = []
        for k, piece in enumerate(_closed_pieces(name, surfaces[name], notes)):
            label = f"{name!r} piece {k}"
            kept.extend(
                _inside_outer(
                    label,
                    piece,
                    outer,
                    outer_piece,
                    inner_outside,
                    clip_margin_mm,
                    target_edge_mm,
                    notes,
                )
            )
        if kept:
            regions[name] = region_id
            pieces.extend((region_id, p) for p in kept)
        else:
            notes.append(f"{name!r}: nothing left inside {outer!r}; structure not meshed")
    _check_no_overlap(pieces, regions)

    with _gmsh_model():
        return _mesh_with_gmsh(pieces, regions, target_edge_mm, optimize_netgen, tuple(notes))


def write_volume_mesh(mesh: VolumeMesh, path: str | os.PathLike[str]) -> Path:
    """Write a volume mesh atomically as ``.vtu`` (ParaView) or ``.msh`` (gmsh 4.1).

    The ``.msh`` file has one physical volume per region (tag = region id, name = structure)
    and one physical surface per boundary id (name ``"<structure>_surface"``), which is what
    ``dolfinx.io.gmshio.read_from_msh`` turns into cell and facet tags.  Coordinates are LPS mm.

    Parameters
    ----------
    mesh : VolumeMesh
        Mesh from :func:`tetrahedralize`.
    path : str or os.PathLike
        Destination with suffix ``.vtu`` or ``.msh``.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    MeshingError
        If the suffix is unknown or the folder does not exist.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VOLUME_MESH_SUFFIXES:
        raise MeshingError(
            f"unknown volume mesh file extension {path.suffix!r} in {path}; "
            f"expected one of {', '.join(VOLUME_MESH_SUFFIXES)}"
        )
    if not path.parent.is_dir():
        raise MeshingError(f"cannot write {path}: folder {path.parent} does not exist")
    if suffix == ".vtu":
        write_atomically(path, lambda tmp: mesh.grid.save(tmp, binary=True))
    else:
        write_atomically(path, lambda tmp: _write_msh(mesh, tmp))
    return path


# --------------------------------------------------------------------------- input checks


def _check_arguments(
    surfaces: dict[str, pv.PolyData],
    outer: str,
    inner: list[str] | None,
    target_edge_mm: float,
    clip_margin_mm: float,
) -> list[str]:
    if outer not in surfaces:
        raise MeshingError(f"outer structure {outer!r} not in surfaces {sorted(surfaces)!r}")
    inner_names = [n for n in surfaces if n != outer] if inner is None else list(inner)
    for name in inner_names:
        if name not in surfaces or name == outer:
            raise MeshingError(
                f"inner structure {name!r} must be a key of surfaces other than {outer!r}, "
                f"got keys {sorted(surfaces)!r}"
            )
    if len(set(inner_names)) != len(inner_names):
        raise MeshingError(f"inner names repeat: {inner_names!r}")
    if not (math.isfinite(target_edge_mm) and target_edge_mm > 0):
        raise MeshingError(f"target_edge_mm must be a positive number, got {target_edge_mm!r}")
    if not (math.isfinite(clip_margin_mm) and clip_margin_mm >= 0):
        raise MeshingError(f"clip_margin_mm must be >= 0, got {clip_margin_mm!r}")
    for name in [outer, *inner_names]:
        poly = surfaces[name]
        if not isinstance(poly, pv.PolyData) or poly.n_cells == 0:
            raise MeshingError(f"surface {name!r} must be a non-empty pyvista.PolyData")
    return inner_names


def _closed_pieces(
    name: str, poly: pv.PolyData, notes: list[str], *, keep_largest: bool = False
) -> list[pv.PolyData]:
    """Split into connected pieces, drop degenerate ones, check closed/manifold, orient out."""
    tri = poly.extract_surface(algorithm="dataset_surface").triangulate().clean(tolerance=0.0)
    tri = pv.PolyData(np.asarray(tri.points, dtype=np.float64), faces=tri.faces)
    split = tri.connectivity("all")
    region_of_cell = np.asarray(split.cell_data["RegionId"])
    total_area = float(tri.area)
    pieces: list[tuple[float, pv.PolyData]] = []
    n_degenerate = 0
    for rid in np.unique(region_of_cell):
        piece = split.extract_cells(region_of_cell == rid).extract_surface(
            algorithm="dataset_surface"
        )
        piece = pv.PolyData(np.asarray(piece.points, dtype=np.float64), faces=piece.faces)
        volume = signed_volume_mm3(piece)
        if abs(volume) < _DEGENERATE_VOLUME_MM3 and piece.area < (
            _DEGENERATE_AREA_FRACTION * total_area
        ):
            n_degenerate += 1
            continue
        n_boundary, n_nonmanifold = edge_defects(piece)
        if n_boundary or n_nonmanifold:
            raise MeshingError(
                f"surface {name!r} is not watertight: piece {int(rid)} has {n_boundary} "
                f"boundary edges and {n_nonmanifold} non-manifold edges"
            )
        if volume < 0:
            piece = piece.flip_faces()
            volume = -volume
        pieces.append((volume, piece))
    if n_degenerate:
        notes.append(f"{name!r}: dropped {n_degenerate} degenerate piece(s) of ~zero volume")
    if not pieces:
        raise MeshingError(f"surface {name!r} has no closed piece with a non-zero volume")
    pieces.sort(key=lambda vp: -vp[0])
    if keep_largest and len(pieces) > 1:
        dropped = ", ".join(f"{v / 1000.0:.3g} mL" for v, _ in pieces[1:])
        notes.append(f"{name!r}: kept the largest closed piece, dropped {dropped}")
        pieces = pieces[:1]
    return [p for _, p in pieces]


def _signed_distance(points: NDArray[np.float64], surface: pv.PolyData) -> NDArray[np.float64]:
    """Signed distance (mm) of points to an outward-oriented closed surface, < 0 inside."""
    cloud = pv.PolyData(points)
    return np.asarray(cloud.compute_implicit_distance(surface)["implicit_distance"])


def _inside_outer(
    label: str,
    piece: pv.PolyData,
    outer: str,
    outer_piece: pv.PolyData,
    policy: str,
    margin_mm: float,
    target_edge_mm: float,
    notes: list[str],
) -> list[pv.PolyData]:
    """Return the piece (or its clipped remains) if it lies inside ``outer_piece``."""
    distance = _signed_distance(np.asarray(piece.points), outer_piece)
    if distance.max() < 0.0:
        return [piece]
    volume_ml = signed_volume_mm3(piece) / 1000.0
    outside = float(np.mean(distance >= 0.0))
    what = (
        f"{label} ({volume_ml:.3g} mL) has {100 * outside:.1f}% of its vertices outside {outer!r} "
        f"(up to {distance.max():.2f} mm)"
    )
    if policy == "raise":
        raise MeshingError(f"{what}; inner surfaces must lie inside the outer surface")
    if policy == "drop" or outside == 1.0:
        notes.append(f"{what}: dropped")
        return []
    clipped = _clip_inside(piece, outer_piece, margin_mm, min(1.0, target_edge_mm / 4.0))
    kept = [c for c in clipped if signed_volume_mm3(c) >= _DEGENERATE_VOLUME_MM3]
    for c in kept:
        worst = _signed_distance(np.asarray(c.points), outer_piece).max()
        if worst >= 0.0:  # pragma: no cover - the margin exceeds the smoothing displacement
            raise MeshingError(f"{what}: clipping failed, {worst:.2f} mm still outside")
    kept_ml = sum(signed_volume_mm3(c) for c in kept) / 1000.0
    notes.append(
        f"{what}: clipped to {margin_mm:g} mm inside {outer!r}, {kept_ml:.3g} mL kept "
        f"in {len(kept)} piece(s)"
    )
    return kept


def _clip_inside(
    piece: pv.PolyData, outer_piece: pv.PolyData, margin_mm: float, step_mm: float
) -> list[pv.PolyData]:
    """Intersect ``piece`` with ``outer_piece`` shrunk by ``margin_mm``.

    Both closed surfaces are rasterised on a grid of ``step_mm`` around the piece; the kept
    voxels are inside the piece and deeper than ``margin_mm`` (Euclidean distance transform)
    inside the outer surface; their surface is extracted, smoothed and checked again.
    """
    pad = margin_mm + 3.0 * step_mm
    lo = np.asarray(piece.bounds, dtype=np.float64)[0::2] - pad
    hi = np.asarray(piece.bounds, dtype=np.float64)[1::2] + pad
    dims = (np.ceil((hi - lo) / step_mm).astype(int) + 1).tolist()
    inside_piece = _rasterize(piece, lo, step_mm, dims)
    inside_outer = _rasterize(outer_piece, lo, step_mm, dims)
    depth_mm = distance_transform_edt(inside_outer, sampling=step_mm)
    keep = inside_piece & (depth_mm > margin_mm + step_mm)
    if not keep.any():
        return []
    surface = array_to_surface(
        keep,
        spacing_mm=(step_mm,) * 3,
        origin_mm=lo,
        target_triangles=_CLIPPED_TRIANGLES,
        what="clipped inner surface",
    )
    notes: list[str] = []
    return _closed_pieces("clipped inner surface", surface, notes)


def _rasterize(
    surface: pv.PolyData, origin: NDArray[np.float64], step_mm: float, dims: list[int]
) -> NDArray[np.bool_]:
    """Voxels (z, y, x) whose centres lie inside a closed surface (scan-line stencil)."""
    stencil = vtk.vtkPolyDataToImageStencil()
    stencil.SetInputData(surface)
    stencil.SetOutputOrigin(*origin)
    stencil.SetOutputSpacing(step_mm, step_mm, step_mm)
    stencil.SetOutputWholeExtent(0, dims[0] - 1, 0, dims[1] - 1, 0, dims[2] - 1)
    to_image = vtk.vtkImageStencilToImage()
    to_image.SetInputConnection(stencil.GetOutputPort())
    to_image.SetInsideValue(1)
    to_image.SetOutsideValue(0)
    to_image.SetOutputScalarTypeToUnsignedChar()
    to_image.Update()
    values = vtk_to_numpy(to_image.GetOutput().GetPointData().GetScalars())
    return values.reshape(dims[2], dims[1], dims[0]).astype(bool)


def _check_no_overlap(pieces: list[tuple[int, pv.PolyData]], regions: dict[str, int]) -> None:
    """Raise if two inner pieces overlap (a vertex of one inside the other)."""
    names = {v: k for k, v in regions.items()}
    inner = [(rid, p) for rid, p in pieces if rid != 1]
    for i, (ra, a) in enumerate(inner):
        for rb, b in inner[i + 1 :]:
            ba, bb = np.asarray(a.bounds), np.asarray(b.bounds)
            if np.any(ba[1::2] < bb[0::2]) or np.any(bb[1::2] < ba[0::2]):
                continue
            if (_signed_distance(np.asarray(a.points), b) < 0).any() or (
                _signed_distance(np.asarray(b.points), a) < 0
            ).any():
                raise MeshingError(
                    f"inner surfaces {names[ra]!r} and {names[rb]!r} overlap or self-intersect; "
                    "inner pieces must be disjoint"
                )


# --------------------------------------------------------------------------- gmsh


@contextlib.contextmanager
def _gmsh_model() -> Iterator[None]:
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


def _add_discrete_surfaces(pieces: list[tuple[int, pv.PolyData]]) -> None:
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


def _mesh_with_gmsh(
    pieces: list[tuple[int, pv.PolyData]],
    regions: dict[str, int],
    target_edge_mm: float,
    optimize_netgen: bool,
    notes: tuple[str, ...],
) -> VolumeMesh:
    names = {v: k for k, v in regions.items()}
    # 1. every piece as a discrete surface with its own triangles
    _add_discrete_surfaces(pieces)
    owner_points = [np.asarray(piece.points) for _, piece in pieces]
    owner_piece = [np.full(piece.n_points, k) for k, (_, piece) in enumerate(pieces)]
    # 2. classify into parametrisable patches so gmsh can remesh them (tutorial t13)
    remeshed = True
    try:
        gmsh.model.mesh.classifySurfaces(math.radians(_CLASSIFY_ANGLE_DEG), True, True, math.pi)
        gmsh.model.mesh.createGeometry()
    except Exception as exc:  # gmsh raises plain Exception with its log message
        # Surfaces of higher genus (an organ pierced by vessel tunnels) may not split into
        # patches gmsh can parametrise. Their own triangles then bound the tetrahedra as they
        # are (no surface remeshing), which any closed manifold surface allows.
        remeshed = False
        notes = (*notes, f"surfaces kept as given (gmsh could not re-parametrise them: {exc})")
        gmsh.model.remove()
        gmsh.model.add(f"surgplan_{os.getpid()}_{id(object())}_discrete")
        _add_discrete_surfaces(pieces)
    tree = cKDTree(np.concatenate(owner_points))
    piece_of_point = np.concatenate(owner_piece)
    patches: dict[int, list[int]] = {k: [] for k in range(len(pieces))}
    if not remeshed:
        patches = {k: [k + 1] for k in range(len(pieces))}
    for _, tag in gmsh.model.getEntities(2) if remeshed else []:
        _, coords, _ = gmsh.model.mesh.getNodes(2, tag, includeBoundary=True)
        _, nearest = tree.query(coords.reshape(-1, 3)[:16])
        patches[int(np.bincount(piece_of_point[nearest]).argmax())].append(tag)
    # 3. volumes: outer with holes, one per inner piece
    loops = [gmsh.model.geo.addSurfaceLoop(patches[k]) for k in range(len(pieces))]
    volume_region = {gmsh.model.geo.addVolume(loops): 1}
    for k in range(1, len(pieces)):
        volume_region[gmsh.model.geo.addVolume([loops[k]])] = pieces[k][0]
    gmsh.model.geo.synchronize()
    for rid, name in names.items():
        gmsh.model.addPhysicalGroup(3, [v for v, r in volume_region.items() if r == rid], rid, name)
    # 4. size, generate, optimise
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
    try:
        gmsh.model.mesh.generate(3)
    except Exception as exc:
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


def _collect(
    pieces: list[tuple[int, pv.PolyData]],
    patches: dict[int, list[int]],
    volume_region: dict[int, int],
    names: dict[int, str],
    notes: tuple[str, ...],
) -> VolumeMesh:
    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    index = np.full(int(node_tags.max()) + 1, -1, dtype=np.int64)
    index[node_tags.astype(np.int64)] = np.arange(node_tags.size)
    points = coords.reshape(-1, 3)

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
    triangles = np.concatenate(tris)

    # keep only nodes used by tetrahedra, renumbered
    used = np.unique(cells)
    renumber = np.full(points.shape[0], -1, dtype=np.int64)
    renumber[used] = np.arange(used.size)
    points = np.ascontiguousarray(points[used], dtype=np.float64)
    cells = renumber[cells]
    triangles = renumber[triangles]
    if (triangles < 0).any():  # pragma: no cover - gmsh meshes are conforming
        raise MeshingError("gmsh boundary triangles reference nodes outside the tetrahedra")

    volumes = _tet_volumes(points, cells)
    n_inverted = int(np.count_nonzero(volumes <= 0.0))
    flip = volumes < 0.0
    cells[flip] = cells[flip][:, [0, 2, 1, 3]]
    volumes = np.abs(volumes)

    region = np.concatenate(tet_region)
    grid = pv.UnstructuredGrid({pv.CellType.TETRA: cells}, points)
    grid.cell_data["region"] = region
    boundary = pv.PolyData.from_regular_faces(points, triangles)
    boundary.cell_data["boundary_id"] = np.concatenate(tri_id)
    boundary = boundary.clean(tolerance=0.0, point_merging=False)

    dihedral = _dihedral_angles_deg(points, cells)
    quality = MeshQuality(
        n_tets=int(cells.shape[0]),
        n_nodes=int(points.shape[0]),
        gamma_min=float(gamma.min()),
        gamma_mean=float(gamma.mean()),
        gamma_max=float(gamma.max()),
        fraction_gamma_below_0_1=float(np.mean(gamma < 0.1)),
        min_dihedral_deg=float(dihedral.min()),
        max_dihedral_deg=float(dihedral.max()),
        n_inverted=n_inverted,
        region_volume_ml={
            name: float(volumes[region == rid].sum() / 1000.0) for rid, name in names.items()
        },
    )
    regions = {name: rid for rid, name in names.items()}
    boundary_ids = {name: (OUTER_BOUNDARY_ID if rid == 1 else rid) for rid, name in names.items()}
    return VolumeMesh(grid, boundary, regions, boundary_ids, quality, notes)


def _tet_volumes(points: NDArray[np.float64], cells: NDArray[np.int64]) -> NDArray[np.float64]:
    """Signed tetrahedron volumes, V = det[p1-p0, p2-p0, p3-p0] / 6, in mm^3."""
    p = points[cells]
    return (
        np.einsum("ij,ij->i", p[:, 1] - p[:, 0], np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]))
        / 6.0
    )


def _dihedral_angles_deg(
    points: NDArray[np.float64], cells: NDArray[np.int64]
) -> NDArray[np.float64]:
    """All six dihedral angles of each tetrahedron, in degrees, shape (n, 6).

    The dihedral angle along the edge shared by faces a and b is pi minus the angle between
    their outward normals.
    """
    p = points[cells]
    faces = ((1, 2, 3), (0, 3, 2), (0, 1, 3), (0, 2, 1))  # face k is opposite vertex k
    normals = []
    for a, b, c in faces:
        n = np.cross(p[:, b] - p[:, a], p[:, c] - p[:, a])
        normals.append(n / np.linalg.norm(n, axis=1, keepdims=True))
    angles = []
    for i in range(4):
        for j in range(i + 1, 4):
            cos = np.clip(-np.einsum("ij,ij->i", normals[i], normals[j]), -1.0, 1.0)
            angles.append(np.degrees(np.arccos(cos)))
    return np.stack(angles, axis=1)


def _write_msh(mesh: VolumeMesh, tmp: Path) -> None:
    """Rebuild the mesh as discrete gmsh entities with physical groups and write MSH 4.1."""
    points = np.asarray(mesh.grid.points, dtype=np.float64)
    cells = np.asarray(mesh.grid.cells_dict[pv.CellType.TETRA], dtype=np.int64)
    region = np.asarray(mesh.grid.cell_data["region"])
    triangles = np.asarray(mesh.boundary.regular_faces, dtype=np.int64)
    boundary_id = np.asarray(mesh.boundary.cell_data["boundary_id"])
    boundary_pts = np.asarray(mesh.boundary.points, dtype=np.float64)
    # boundary points are grid points; map by coordinates to be safe against re-indexing
    _, to_grid = cKDTree(points).query(boundary_pts)
    triangles = to_grid[triangles]
    names = {v: k for k, v in mesh.regions.items()}
    surface_names = {v: k for k, v in mesh.boundary_ids.items()}
    with _gmsh_model():
        rids = sorted(names)
        for rid in rids:
            gmsh.model.addDiscreteEntity(3, rid)
        gmsh.model.mesh.addNodes(3, rids[0], np.arange(1, points.shape[0] + 1), points.ravel())
        next_tag = 1
        for rid in rids:
            sel = cells[region == rid] + 1
            tags = np.arange(next_tag, next_tag + sel.shape[0])
            gmsh.model.mesh.addElementsByType(rid, 4, tags, sel.ravel())
            next_tag += sel.shape[0]
            gmsh.model.addPhysicalGroup(3, [rid], rid, names[rid])
        for bid in sorted(np.unique(boundary_id).tolist()):
            gmsh.model.addDiscreteEntity(2, bid)
            sel = triangles[boundary_id == bid] + 1
            tags = np.arange(next_tag, next_tag + sel.shape[0])
            gmsh.model.mesh.addElementsByType(bid, 2, tags, sel.ravel())
            next_tag += sel.shape[0]
            gmsh.model.addPhysicalGroup(2, [bid], bid, f"{surface_names.get(bid, bid)}_surface")
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.option.setNumber("Mesh.Binary", 0)
        gmsh.write(str(tmp))
