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

Meshers, tried in order until one meets the finite-element standard
(:data:`imaging.mesh_quality.FE_STANDARD`: minimum dihedral angle >= 5 degrees, < 0.1% of
tetrahedra with gamma < 0.1, no inverted element, each region's volume within 2% of its
surface's):

1. ``"gmsh"`` (default, fastest): the surfaces are classified into parametrisable patches and
   re-meshed (gmsh tutorial t13, "remeshing an STL file without an underlying CAD model"), the
   volumes filled by Delaunay and optimised. Its classic recipe (40-degree patches, one edge
   length) is tried first, then classic with Netgen's optimiser; when those fall short, the
   refined recipe (60-degree patches,
   Netgen and ``Relocate3D``, and a small structure with edges of at most
   :data:`RADIUS_EDGE_FACTOR` times its equivalent-sphere radius, which keeps its volume within
   about 1%) is tried;
2. ``"ftetwild"`` (fTetWild, ``pytetwild``): robust to surfaces gmsh cannot re-parametrise,
   about 10x slower, 2-3x more tetrahedra, quality-optimised.

A mesh that meets the standard with neither is refused (:class:`~imaging.errors.MeshingError`
naming each mesher's failed metric and value), never returned with slivers. Before any work,
the tetrahedron count is estimated from the organ's volume and the edge length
(:func:`estimate_mesh_size`) and a request above ``max_tets`` is refused with the figures.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from scipy.ndimage import distance_transform_edt

from imaging._ftetwild_mesher import mesh_with_ftetwild
from imaging._gmsh_mesher import (
    CLASSIC,
    CLASSIC_NETGEN,
    OUTER_BOUNDARY_ID,
    REFINED,
    GmshRecipe,
    GmshTets,
    gmsh_model,
    mesh_with_gmsh,
)
from imaging.errors import MeshingError
from imaging.mesh_quality import (
    FE_STANDARD,
    FEStandard,
    MeshQuality,
    mesh_quality,
    standard_failures,
    tet_volumes,
)
from imaging.surface import (
    array_to_surface,
    edge_defects,
    signed_volume_mm3,
    smooth_for_meshing,
)
from imaging.surface_mask import rasterize_surface
from imaging.volume_mesh_io import VOLUME_MESH_SUFFIXES, write_volume_mesh

__all__ = [
    "DEFAULT_MAX_TETS",
    "MESHERS",
    "OUTER_BOUNDARY_ID",
    "VOLUME_MESH_SUFFIXES",
    "MeshQuality",
    "MeshSizeEstimate",
    "VolumeMesh",
    "estimate_mesh_size",
    "tetrahedralize",
    "write_volume_mesh",
]

#: Meshers in the order ``mesher="auto"`` tries them.
MESHERS = ("gmsh", "ftetwild")
#: Largest estimated tetrahedron count meshed without ``max_tets`` raised (about 4 minutes and
#: 1 GB of gmsh on one free core; the real 2.3 L liver at 2.2 mm).
DEFAULT_MAX_TETS = 1_000_000
#: A structure's edge length is at most this times its equivalent-sphere radius (a sphere
#: meshed with edge h loses about h^2 / (4 R^2) of its volume: 0.6% here; kidneys, less round,
#: lost 1.7% at 0.2).
RADIUS_EDGE_FACTOR = 0.15
#: Tetrahedra per mm^3 times the cubed edge length (gmsh's Delaunay on organs: 4.2-4.9 at
#: 6 mm for the real liver, the CT liver, spleen and kidneys), and per mm^2 times its square.
_TETS_PER_VOLUME = 4.2
_TETS_PER_AREA = 1.0
#: Peak memory of gmsh's 3-D meshing and optimisation per tetrahedron, bytes (140 MB for the CT
#: liver's 158,214 tetrahedra at 3 mm).
_BYTES_PER_TET = 1000.0
#: gmsh's tetrahedra per second on one free core, meshing and optimisation (the 3 mm CT liver:
#: 270 s at one-sixth of a core on a loaded machine).
_TETS_PER_SECOND = 4000.0

#: Pieces smaller than this (mm^3) with a negligible share of their structure's area are junk.
_DEGENERATE_VOLUME_MM3 = 1.0
_DEGENERATE_AREA_FRACTION = 0.01
#: Triangle budget of a clipped inner surface before gmsh remeshes it.
_CLIPPED_TRIANGLES = 10_000


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


@dataclass(frozen=True)
class MeshSizeEstimate:
    """Up-front size of a tetrahedral mesh (gmsh's; fTetWild makes 2-3x more).

    Attributes
    ----------
    n_tets : int
        Estimated tetrahedron count.
    memory_gb : float
        Estimated peak memory of the mesher, GB.
    seconds : float
        Estimated meshing time on one core, s.
    volume_ml, area_mm2, edge_mm : float
        The inputs: organ volume (mL), surface area (mm^2) and target edge (mm).
    """

    n_tets: int
    memory_gb: float
    seconds: float
    volume_ml: float
    area_mm2: float
    edge_mm: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        return {
            "n_tets": self.n_tets,
            "memory_gb": self.memory_gb,
            "seconds": self.seconds,
            "volume_ml": self.volume_ml,
            "area_mm2": self.area_mm2,
            "edge_mm": self.edge_mm,
        }


def estimate_mesh_size(volume_mm3: float, area_mm2: float, edge_mm: float) -> MeshSizeEstimate:
    """Estimate tetrahedra, memory and time of meshing a volume with a target edge length.

    ``n = 4.2 V / h^3 + 1.0 A / h^2``, calibrated on gmsh meshes of the real organs.

    Parameters
    ----------
    volume_mm3 : float
        Volume enclosed by the organ's surface, mm^3.
    area_mm2 : float
        Area of the organ's surface, mm^2.
    edge_mm : float
        Target edge length, mm.

    Returns
    -------
    MeshSizeEstimate
        Tetrahedra, memory (GB) and time (s, one core).
    """
    n = _TETS_PER_VOLUME * volume_mm3 / edge_mm**3 + _TETS_PER_AREA * area_mm2 / edge_mm**2
    return MeshSizeEstimate(
        n_tets=int(round(n)),
        memory_gb=n * _BYTES_PER_TET / 1e9,
        seconds=n / _TETS_PER_SECOND,
        volume_ml=volume_mm3 / 1000.0,
        area_mm2=area_mm2,
        edge_mm=edge_mm,
    )


def _check_size(name: str, piece: pv.PolyData, edge_mm: float, max_tets: int) -> None:
    """Raise before meshing if the estimated mesh is larger than ``max_tets``."""
    volume, area = signed_volume_mm3(piece), float(piece.area)
    estimate = estimate_mesh_size(volume, area, edge_mm)
    if estimate.n_tets <= max_tets:
        return
    smallest = edge_mm
    while estimate_mesh_size(volume, area, smallest).n_tets > max_tets:
        smallest *= 1.05
    raise MeshingError(
        f"meshing {name!r} ({estimate.volume_ml:.0f} mL) with target_edge_mm={edge_mm:g} would "
        f"make about {estimate.n_tets:.3g} tetrahedra (~{estimate.memory_gb:.2g} GB, "
        f"~{estimate.seconds / 60:.2g} min), over the limit of {max_tets:,}; use an edge of "
        f"at least {smallest:.2g} mm (or raise max_tets: --max-tets on the command line)"
    )


def tetrahedralize(
    surfaces: dict[str, pv.PolyData],
    *,
    outer: str,
    target_edge_mm: float = 6.0,
    inner: list[str] | None = None,
    inner_outside: Literal["clip", "drop", "raise"] = "clip",
    clip_margin_mm: float = 1.0,
    optimize_netgen: bool = False,
    mesher: Literal["auto", "gmsh", "ftetwild"] = "auto",
    max_tets: int = DEFAULT_MAX_TETS,
    standard: FEStandard = FE_STANDARD,
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
        Also run gmsh's Netgen optimiser in the classic recipe (better worst elements, about
        1.5x slower); otherwise classic with Netgen is tried second, and the refined recipe
        always runs it.
    mesher : {"auto", "gmsh", "ftetwild"}, default "auto"
        ``"auto"`` tries gmsh's recipes (:data:`imaging._gmsh_mesher.CLASSIC`, with Netgen,
        then :data:`~imaging._gmsh_mesher.REFINED`) and then fTetWild, and keeps the first mesh that
        meets ``standard``; a name uses that mesher only (all its recipes for gmsh). gmsh refuses
        surfaces that self-intersect (or that its remeshing made intersect); fTetWild, built
        for such input, meshes the volume they enclose by winding number.
    max_tets : int, default DEFAULT_MAX_TETS
        Largest estimated tetrahedron count (:func:`estimate_mesh_size`) accepted.
    standard : FEStandard, default FE_STANDARD
        Quality every returned mesh meets.

    Returns
    -------
    VolumeMesh
        Tetrahedra with ``"region"``, tagged boundary, quality summary (with the mesher and
        its time) and notes (a mesher that fell short, and why).

    Raises
    ------
    MeshingError
        If a name is unknown, a surface is open, non-manifold or empty, inner pieces overlap,
        an inner piece leaves ``outer`` with ``inner_outside="raise"``, the estimated mesh is
        larger than ``max_tets``, gmsh fails on self-intersecting input, or no mesher meets
        ``standard`` (the message names each failed metric and its value).
    """
    inner_names = _check_arguments(surfaces, outer, inner, target_edge_mm, clip_margin_mm)
    if inner_outside not in ("clip", "drop", "raise"):
        raise MeshingError(
            f"inner_outside must be 'clip', 'drop' or 'raise', got {inner_outside!r}"
        )
    if mesher not in ("auto", *MESHERS):
        raise MeshingError(f"mesher must be 'auto', 'gmsh' or 'ftetwild', got {mesher!r}")
    notes: list[str] = []
    outer_piece = _closed_pieces(outer, surfaces[outer], notes, keep_largest=True)[0]
    _check_size(outer, outer_piece, target_edge_mm, max_tets)

    regions, pieces = _embedded_pieces(
        surfaces,
        outer,
        outer_piece,
        inner_names,
        inner_outside,
        clip_margin_mm,
        target_edge_mm,
        notes,
    )
    _check_no_overlap(pieces, regions)
    reference_ml = _reference_volumes_ml(pieces, regions)
    shortfalls: list[str] = []
    for name, recipe in _attempts(mesher, optimize_netgen):
        start = time.perf_counter()
        try:
            tets = _run_mesher(
                name,
                recipe,
                pieces,
                regions,
                target_edge_mm,
                optimize_netgen,
                (*notes, *shortfalls),
            )
        except MeshingError as exc:  # e.g. gmsh on a surface it remeshed into self-intersection
            shortfalls.append(f"{_label(name, recipe)} failed: {exc}")
            continue
        mesh = _assemble(tets, regions, reference_ml, name, time.perf_counter() - start)
        failures = standard_failures(mesh.quality, standard)
        if not failures:
            return mesh
        shortfalls.append(
            f"{_label(name, recipe)} fell short of the FE standard: {'; '.join(failures)}"
        )
    raise MeshingError(
        f"{outer!r} could not be meshed to the finite-element standard at "
        f"target_edge_mm={target_edge_mm:g}: {' | '.join(shortfalls)}"
    )


def _attempts(mesher: str, optimize_netgen: bool) -> list[tuple[str, GmshRecipe | None]]:
    """(mesher, gmsh recipe) pairs tried in order: gmsh's recipes, then fTetWild."""
    recipes = [CLASSIC, REFINED] if optimize_netgen else [CLASSIC, CLASSIC_NETGEN, REFINED]
    gmsh_attempts: list[tuple[str, GmshRecipe | None]] = [("gmsh", r) for r in recipes]
    if mesher == "gmsh":
        return gmsh_attempts
    if mesher == "ftetwild":
        return [("ftetwild", None)]
    return [*gmsh_attempts, ("ftetwild", None)]


def _label(name: str, recipe: GmshRecipe | None) -> str:
    return name if recipe is None else f"{name} ({recipe.name})"


def _run_mesher(
    name: str,
    recipe: GmshRecipe | None,
    pieces: list[tuple[int, pv.PolyData]],
    regions: dict[str, int],
    target_edge_mm: float,
    optimize_netgen: bool,
    notes: tuple[str, ...],
) -> GmshTets:
    """One mesher attempt on the prepared pieces."""
    if recipe is None:
        note = "fTetWild's mesh differs between runs on the same input (wildmeshing/fTetWild#72)"
        return mesh_with_ftetwild(pieces, target_edge_mm, (*notes, note))
    with gmsh_model():
        return mesh_with_gmsh(
            pieces,
            regions,
            target_edge_mm,
            optimize_netgen,
            notes,
            piece_edge_mm=_piece_edges(pieces, target_edge_mm),
            recipe=recipe,
        )


def _piece_edges(pieces: list[tuple[int, pv.PolyData]], target_edge_mm: float) -> list[float]:
    """Edge length per piece: the target, or less for a piece of small equivalent radius."""
    edges = []
    for _, piece in pieces:
        radius = (3.0 * abs(signed_volume_mm3(piece)) / (4.0 * math.pi)) ** (1.0 / 3.0)
        edges.append(min(target_edge_mm, RADIUS_EDGE_FACTOR * radius))
    return edges


def _reference_volumes_ml(
    pieces: list[tuple[int, pv.PolyData]], regions: dict[str, int]
) -> dict[str, float]:
    """Volume (mL) each region's surfaces enclose: the outer one less the inner pieces."""
    by_region: dict[int, float] = {}
    for rid, piece in pieces:
        by_region[rid] = by_region.get(rid, 0.0) + signed_volume_mm3(piece) / 1000.0
    inner_total = sum(v for rid, v in by_region.items() if rid != 1)
    names = {rid: name for name, rid in regions.items()}
    out = {names[rid]: v for rid, v in by_region.items() if rid != 1}
    return {names[1]: by_region[1] - inner_total, **out}


def _embedded_pieces(
    surfaces: dict[str, pv.PolyData],
    outer: str,
    outer_piece: pv.PolyData,
    inner_names: list[str],
    inner_outside: Literal["clip", "drop", "raise"],
    clip_margin_mm: float,
    target_edge_mm: float,
    notes: list[str],
) -> tuple[dict[str, int], list[tuple[int, pv.PolyData]]]:
    """Regions and ``(region id, piece)`` list: the outer piece, then what is kept inside it."""
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
    return regions, pieces


def _assemble(
    tets: GmshTets,
    regions: dict[str, int],
    reference_ml: dict[str, float] | None = None,
    mesher: str = "",
    seconds: float = 0.0,
) -> VolumeMesh:
    """Orient the tetrahedra positively and build the grid, tagged boundary and quality."""
    points, cells = tets.points, tets.cells.copy()
    volumes = tet_volumes(points, cells)
    n_inverted = int(np.count_nonzero(volumes <= 0.0))
    flip = volumes < 0.0
    cells[flip] = cells[flip][:, [0, 2, 1, 3]]
    grid = pv.UnstructuredGrid({pv.CellType.TETRA: cells}, points)
    grid.cell_data["region"] = tets.region
    boundary = pv.PolyData.from_regular_faces(points, tets.triangles)
    boundary.cell_data["boundary_id"] = tets.boundary_id
    boundary = boundary.clean(tolerance=0.0, point_merging=False)
    names = {rid: name for name, rid in regions.items()}
    quality = mesh_quality(
        points,
        cells,
        tets.region,
        tets.gamma,
        names,
        n_inverted=n_inverted,
        reference_ml=reference_ml,
        mesher=mesher,
        seconds=seconds,
    )
    boundary_ids = {name: (OUTER_BOUNDARY_ID if rid == 1 else rid) for rid, name in names.items()}
    return VolumeMesh(grid, boundary, dict(regions), boundary_ids, quality, tets.notes)


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
    inside the outer surface; their surface is extracted, smoothed and checked again. A
    volume-preserving pass (:func:`~imaging.surface.smooth_for_meshing`) then removes the
    creases decimation leaves: on the 3D-IRCADb tumour clipped to its liver they were 14
    edges sharper than 40 degrees and gave 1-degree slivers; after it, none, and the worst
    dihedral angle is 25 degrees (volume within 0.1%).
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
    surface = smooth_for_meshing(surface, what="clipped inner surface")
    notes: list[str] = []
    return _closed_pieces("clipped inner surface", surface, notes)


def _rasterize(
    surface: pv.PolyData, origin: NDArray[np.float64], step_mm: float, dims: list[int]
) -> NDArray[np.bool_]:
    """Voxels (z, y, x) whose centres lie inside a closed surface (scan-line stencil)."""
    return rasterize_surface(surface, origin, (step_mm, step_mm, step_mm), dims).astype(bool)


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
