"""Flat patches on a triangle surface: the mark of a segmentation cut by a plane.

Anatomy is curved. A connected patch of a surface that lies in one plane over an area larger
than a vessel's cross-section is an artefact: a structure cut by a mask boundary, a slab or a
crop box (for example the vena cava cut by a widened liver mask into a flat sheet).
:func:`largest_planar_patch` finds the largest such patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from imaging.errors import MeshingError
from imaging.surface import _triangles as _surface_triangles
from imaging.surface import edge_keys

__all__ = ["PlanarPatch", "largest_planar_patch"]


@dataclass(frozen=True)
class PlanarPatch:
    """The largest connected planar patch of a surface.

    Attributes
    ----------
    area_mm2 : float
        Area of the patch, mm^2.
    centre_mm : tuple of float
        Area-weighted centroid of the patch (the surface's coordinates, mm).
    normal : tuple of float
        Unit normal of its plane.
    width_mm : float
        Its width, the narrower in-plane extent (``sqrt(12 x`` the smaller in-plane variance
        of its area``)``, exact for a rectangle), mm.
    n_triangles : int
        Triangles in the patch.
    """

    area_mm2: float
    centre_mm: tuple[float, float, float]
    normal: tuple[float, float, float]
    width_mm: float
    n_triangles: int


def largest_planar_patch(
    surface: pv.PolyData,
    *,
    max_angle_deg: float = 10.0,
    max_distance_mm: float = 0.5,
    min_width_mm: float = 4.0,
    n_seeds: int = 400,
) -> PlanarPatch:
    """Largest edge-connected set of triangles lying in the plane of one of them.

    For each of ``n_seeds`` triangles spread evenly over the surface, the triangles whose
    normal is within ``max_angle_deg`` of the seed's and whose centroid lies within
    ``max_distance_mm`` of the seed's plane are candidates; the patch is the candidates
    edge-connected to the seed. A patch narrower than ``min_width_mm`` is a strip along a
    straight tube (a 7 mm vessel keeps its normal within 10 degrees over a 2.4 mm strip), not
    a flat face, and is not counted. A smooth organ yields patches of a few triangles; a
    structure cut by a plane yields one as large as the cut.

    Parameters
    ----------
    surface : pyvista.PolyData
        Triangle surface, mm.
    max_angle_deg : float, default 10
        Largest angle between a patch triangle's normal and the plane's, degrees.
    max_distance_mm : float, default 0.5
        Largest distance of a patch triangle's centroid from the plane, mm.
    min_width_mm : float, default 4
        Narrowest patch counted, mm.
    n_seeds : int, default 400
        Seed triangles tried (all of them on a smaller surface).

    Returns
    -------
    PlanarPatch
        The largest patch found (area 0 and no triangles when none is as wide as
        ``min_width_mm``).

    Raises
    ------
    MeshingError
        If the surface has no triangles or is not all triangles.
    """
    tri = _triangles(surface)
    points = np.asarray(surface.points, dtype=np.float64)
    corners = points[tri]
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    normal = cross / np.maximum(2.0 * area, 1e-12)[:, None]
    centroid = corners.mean(axis=1)
    pairs = _adjacent_triangles(tri)
    cos_max = float(np.cos(np.radians(max_angle_deg)))
    best = PlanarPatch(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, 0)
    for seed in np.unique(np.linspace(0, len(tri) - 1, min(n_seeds, len(tri))).astype(int)):
        on_plane = (normal @ normal[seed] >= cos_max) & (
            np.abs((centroid - centroid[seed]) @ normal[seed]) <= max_distance_mm
        )
        patch = _component_of(seed, on_plane, pairs, len(tri))
        if float(area[patch].sum()) <= best.area_mm2:
            continue
        found = _describe(area[patch], centroid[patch], normal[seed])
        if found.width_mm >= min_width_mm:
            best = found
    return best


def _describe(area: NDArray[np.float64], centroid: NDArray[np.float64], normal) -> PlanarPatch:
    """Area, centre, normal and width of the patch with these triangle areas and centroids."""
    total = float(area.sum())
    centre = (area[:, None] * centroid).sum(axis=0) / total
    offsets = centroid - centre
    in_plane = offsets - np.outer(offsets @ normal, normal)
    moments = (area[:, None, None] * in_plane[:, :, None] * in_plane[:, None, :]).sum(axis=0)
    variances = np.sort(np.linalg.eigvalsh(moments / total))  # one ~0 (the normal), then two
    return PlanarPatch(
        area_mm2=total,
        centre_mm=tuple(float(v) for v in centre),  # type: ignore[arg-type]
        normal=tuple(float(v) for v in normal),  # type: ignore[arg-type]
        width_mm=float(np.sqrt(12.0 * max(variances[1], 0.0))),
        n_triangles=int(area.size),
    )


def _triangles(surface: pv.PolyData) -> NDArray[np.int64]:
    if not isinstance(surface, pv.PolyData) or surface.n_cells == 0:
        raise MeshingError("expected a non-empty triangle surface")
    return _surface_triangles(surface)


def _adjacent_triangles(tri: NDArray[np.int64]) -> NDArray[np.int64]:
    """``(m, 2)`` pairs of triangles sharing an edge."""
    owner = np.tile(np.arange(len(tri)), 3)
    keys = edge_keys(tri)
    order = np.argsort(keys, kind="stable")
    keys, owner = keys[order], owner[order]
    same = np.flatnonzero(keys[1:] == keys[:-1])
    return np.stack([owner[same], owner[same + 1]], axis=1)


def _component_of(
    seed: int, keep: NDArray[np.bool_], pairs: NDArray[np.int64], n: int
) -> NDArray[np.bool_]:
    """Triangles of ``keep`` edge-connected to ``seed`` through triangles of ``keep``."""
    both = keep[pairs[:, 0]] & keep[pairs[:, 1]]
    links = pairs[both]
    graph = coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return keep & (label == label[seed])
