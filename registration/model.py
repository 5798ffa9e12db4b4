"""The registration target: an organ surface prepared once and reused for every update.

Everything expensive that depends only on the model (the clean largest component, vertex
normals, KD-trees on the full and on a decimated surface, principal axes) is built here once, so a
real-time update only queries it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from registration.errors import RegistrationError

__all__ = ["SurfaceModel", "prepare_surface", "load_surface", "MeshError"]

#: Vertices kept in the decimated copy used by the global (multi-start) search.
COARSE_VERTICES = 3000
#: Most voxels in the real-time nearest-vertex grid (int32, about 0.5 GB while it is built).
MAX_GRID_VOXELS = 64_000_000
#: Longest edge kept by :func:`prepare_surface`, in median edge lengths (longer ones are split).
LONGEST_EDGE_SPACINGS = 3.0


class MeshError(RegistrationError):
    """A surface file or mesh is unreadable, empty or not a triangle surface."""


@dataclass(frozen=True, eq=False)
class SurfaceModel:
    """An organ surface ready for repeated registration queries.

    Attributes
    ----------
    vertices : numpy.ndarray, shape (V, 3)
        Vertex positions in model space (LPS mm) of the largest connected component.
    faces : numpy.ndarray, shape (F, 3)
        Triangle vertex indices.
    normals : numpy.ndarray, shape (V, 3)
        Outward unit vertex normals.
    tree : scipy.spatial.cKDTree
        KD-tree on ``vertices`` (built once).
    spacing_mm : float
        Median edge length, mm.
    coarse_index : numpy.ndarray, shape (C,)
        Vertex indices of the decimated copy used by global initialisation.
    coarse_tree : scipy.spatial.cKDTree
        KD-tree on ``vertices[coarse_index]``.
    name : str
        Label for reports.
    """

    vertices: NDArray[np.float64]
    faces: NDArray[np.int64]
    normals: NDArray[np.float64]
    tree: cKDTree
    spacing_mm: float
    coarse_index: NDArray[np.int64]
    coarse_tree: cKDTree
    name: str = "model"
    n_dropped_vertices: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def centroid_mm(self) -> NDArray[np.float64]:
        """Area-weighted surface centroid, mm."""
        if "centroid" not in self._cache:
            a, c = _face_areas_centroids(self.vertices, self.faces)
            self._cache["centroid"] = (a[:, None] * c).sum(axis=0) / a.sum()
        return self._cache["centroid"]

    @property
    def area_mm2(self) -> float:
        """Total surface area, mm^2."""
        return float(_face_areas_centroids(self.vertices, self.faces)[0].sum())

    @property
    def radius_mm(self) -> float:
        """RMS distance of the vertices from the centroid, mm."""
        return float(np.sqrt(np.mean(np.sum((self.vertices - self.centroid_mm) ** 2, axis=1))))

    def closest_vertex_grid(
        self, *, voxel_mm: float = 1.0, band_mm: float = 6.0
    ) -> tuple[NDArray[np.float64], float, NDArray[np.int32]]:
        """Precomputed nearest vertex on a voxel grid around the surface (built once, cached).

        For real-time updates: a point's nearest vertex is read from the voxel that holds it
        (``O(1)``, no tree search), at least within ``band_mm`` of the surface; ``-1`` outside. The
        vertex found is the nearest to the voxel centre, so it may differ from the point's own
        nearest vertex by up to ``voxel_mm * sqrt(3) / 2`` in position.

        Parameters
        ----------
        voxel_mm : float, keyword-only
            Voxel edge, mm; enlarged if the grid would hold more than :data:`MAX_GRID_VOXELS`.
        band_mm : float, keyword-only
            Half-width of the band around the surface that is filled, mm.

        Returns
        -------
        origin : numpy.ndarray, shape (3,)
            Corner of voxel ``(0, 0, 0)``, mm.
        voxel_mm : float
            The voxel edge used, mm.
        grid : numpy.ndarray of int32, shape (nx, ny, nz)
        """
        key = ("cvgrid", float(voxel_mm), float(band_mm))
        if key not in self._cache:
            from registration._grid_kernels import nearest_vertex_grid

            v, f = self.vertices, self.faces
            edges = [np.linalg.norm(v[f[:, i]] - v[f[:, (i + 1) % 3]], axis=1) for i in range(3)]
            longest = float(np.max(edges))
            # A large surface (a whole body, or one in the wrong units) gets coarser voxels
            # instead of a grid that exhausts memory; the walk over the mesh keeps the
            # correspondences exact either way, only slower.
            extent = np.ptp(v, axis=0) + 2 * (band_mm + longest + 2 * voxel_mm)
            h = max(float(voxel_mm), float(np.prod(extent) / MAX_GRID_VOXELS) ** (1.0 / 3.0))
            # A point within band_mm of the surface is within band_mm + (longest edge) / sqrt(3)
            # of a vertex; every voxel centre that near one gets its exact nearest vertex.
            radius = band_mm + longest / np.sqrt(3.0) + h
            lo = v.min(axis=0) - radius - h
            shape = np.ceil((np.ptp(v, axis=0) + 2 * radius + 2 * h) / h).astype(np.int64) + 1
            grid = nearest_vertex_grid(v, lo, shape, h, radius)
            self._cache[key] = (lo, h, grid)
        return self._cache[key]

    def sheet_seed_grid(
        self, *, voxel_mm: float = 1.0, band_mm: float = 6.0
    ) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Nearest-vertex guesses per voxel, two where the organ is thin (built once, cached).

        Parameters
        ----------
        voxel_mm, band_mm : float, keyword-only
            Voxel edge and band half-width of :meth:`closest_vertex_grid`, mm.

        Where the organ is thin (a lobe edge), a voxel's nearest vertex can lie on one sheet
        while a point in that voxel is nearer to the other; walking over the mesh cannot cross
        between them. The second guess of a voxel is the vertex nearest its centre among the
        guesses of its 26 neighbours (in :meth:`closest_vertex_grid`) whose normal faces away
        from its own guess's.

        Returns
        -------
        grid : numpy.ndarray of int32, same shape as :meth:`closest_vertex_grid`'s
            ``>= 0``: the one guess; ``-1``: outside the band; ``<= -2``: two guesses, in row
            ``-2 - grid`` of ``pairs``.
        pairs : numpy.ndarray of int32, shape (P, 2)
            The two guesses of each thin-part voxel.
        """
        key = ("sheets", float(voxel_mm), float(band_mm))
        if key not in self._cache:
            from registration._grid_kernels import facing_sheet_guesses

            lo, h, grid = self.closest_vertex_grid(voxel_mm=voxel_mm, band_mm=band_mm)
            other = facing_sheet_guesses(grid, self.vertices, self.normals, lo, h)
            thin = np.nonzero(other >= 0)
            encoded = grid.copy()
            encoded[thin] = -2 - np.arange(len(thin[0]), dtype=np.int32)
            pairs = np.ascontiguousarray(np.stack([grid[thin], other[thin]], axis=1), np.int32)
            self._cache[key] = (encoded, pairs)
        return self._cache[key]

    def nearest_vertex(self, points: NDArray[np.float64]) -> NDArray[np.intp]:
        """Nearest-vertex index of each point: voxel lookup in the band, KD-tree elsewhere.

        Uses :meth:`closest_vertex_grid` once it has been built (see
        :meth:`prepare_realtime`), otherwise the KD-tree.
        """
        active = self._cache.get("cvgrid_active")
        if active is None:
            grids = [v for k, v in self._cache.items() if isinstance(k, tuple) and k[0] == "cvgrid"]
            if not grids:
                return self.tree.query(points, k=1)[1]
            lo, h, grid = grids[0]
            # Flat lookup: one gather from the raveled grid, strides as integers.
            active = (
                lo,
                1.0 / h,
                grid.ravel(),
                np.array(grid.shape, dtype=np.int64),
                np.array([grid.shape[1] * grid.shape[2], grid.shape[2], 1], dtype=np.int64),
            )
            self._cache["cvgrid_active"] = active
        lo, inv_h, flat, shape, strides = active
        ijk = np.floor((points - lo) * inv_h).astype(np.int64)
        inside = ((ijk >= 0) & (ijk < shape)).all(axis=1)
        if inside.all():
            idx = flat[ijk @ strides].astype(np.intp)
        else:
            idx = np.full(len(points), -1, dtype=np.intp)
            idx[inside] = flat[ijk[inside] @ strides]
        miss = idx < 0
        if miss.any():
            idx[miss] = self.tree.query(points[miss], k=1)[1]
        return idx

    @property
    def feature_voxel_mm(self) -> float:
        """Voxel size of the FPFH feature search, mm.

        About 1/11 of :attr:`radius_mm` (8 mm for the real liver, where 5 and 12 mm matched
        fewer swab patches), and at least twice the vertex spacing.
        """
        return float(max(2.0 * self.spacing_mm, round(self.radius_mm / 11.0, 1)))

    def fpfh_features(self, voxel_mm: float | None = None) -> tuple[Any, Any]:
        """Voxel-downsampled model cloud and its FPFH features (Open3D), built once, cached.

        Parameters
        ----------
        voxel_mm : float, optional
            Downsampling voxel, mm (default :attr:`feature_voxel_mm`); the normal and feature
            radii are 2.5 and 5 voxels.

        Returns
        -------
        cloud : open3d.geometry.PointCloud
            Downsampled vertices with the model's outward normals.
        features : open3d.pipelines.registration.Feature
        """
        h = self.feature_voxel_mm if voxel_mm is None else float(voxel_mm)
        key = ("fpfh", round(h, 3))
        if key not in self._cache:
            import open3d as o3d

            pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(self.vertices))
            pc.normals = o3d.utility.Vector3dVector(self.normals)
            down = pc.voxel_down_sample(h)
            down.normalize_normals()
            feat = o3d.pipelines.registration.compute_fpfh_feature(
                down, o3d.geometry.KDTreeSearchParamHybrid(radius=5.0 * h, max_nn=100)
            )
            self._cache[key] = (down, feat)
        return self._cache[key]

    def vertex_neighbourhoods(
        self,
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]:
        """Each vertex's neighbours up to two edges away, in CSR form, built once, cached.

        Returns
        -------
        indptr : numpy.ndarray of int64, shape (V + 1,)
        indices : numpy.ndarray of int32
            The vertices within two edges of vertex ``i`` (itself excluded) are
            ``indices[indptr[i]:indptr[i + 1]]``.
        coordinates : numpy.ndarray of float32, shape (len(indices), 3)
            Their positions (mm), stored beside each other so that a walk over the mesh reads
            a vertex's neighbourhood from a few consecutive cache lines.
        """
        if "neighbourhoods" not in self._cache:
            from scipy.sparse import coo_matrix

            f = self.faces
            rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
            cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
            n = len(self.vertices)
            one = coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n)).tocsr()
            two = (one + one @ one).tocsr()
            two.setdiag(0)
            two.eliminate_zeros()
            two.sort_indices()
            indices = two.indices.astype(np.int32)
            self._cache["neighbourhoods"] = (
                two.indptr.astype(np.int64),
                indices,
                np.ascontiguousarray(self.vertices[indices], dtype=np.float32),
            )
        return self._cache["neighbourhoods"]

    def vertex_reach(self) -> NDArray[np.float64]:
        """Length of the longest edge at each vertex, mm (built once, cached).

        Every point of the triangles around a vertex lies within this distance of it.
        """
        if "reach" not in self._cache:
            v, f = self.vertices, self.faces
            reach = np.zeros(len(v))
            for i in range(3):
                a, b = f[:, i], f[:, (i + 1) % 3]
                length = np.linalg.norm(v[a] - v[b], axis=1)
                np.maximum.at(reach, a, length)
                np.maximum.at(reach, b, length)
            self._cache["reach"] = reach
        return self._cache["reach"]

    def prepare_realtime(self, *, voxel_mm: float = 1.0, band_mm: float = 6.0) -> None:
        """Build what warm-started updates query (once per model).

        The nearest-vertex voxel grids (:meth:`closest_vertex_grid`,
        :meth:`sheet_seed_grid`) and the vertex neighbourhoods (:meth:`vertex_neighbourhoods`).

        Parameters
        ----------
        voxel_mm : float, keyword-only
            Voxel edge of the grids, mm.
        band_mm : float, keyword-only
            Half-width of the band around the surface the grids cover, mm.
        """
        self.closest_vertex_grid(voxel_mm=voxel_mm, band_mm=band_mm)
        self.sheet_seed_grid(voxel_mm=voxel_mm, band_mm=band_mm)
        self.vertex_neighbourhoods()

    def to_polydata(self) -> Any:
        """Return the cleaned surface as a :class:`pyvista.PolyData`."""
        import pyvista as pv

        cells = np.hstack([np.full((len(self.faces), 1), 3), self.faces]).ravel()
        return pv.PolyData(self.vertices.copy(), cells)


def _face_areas_centroids(v: NDArray, f: NDArray) -> tuple[NDArray, NDArray]:
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    return areas, (a + b + c) / 3.0


def _largest_component(v: NDArray, f: NDArray) -> tuple[NDArray, NDArray]:
    """Keep the connected component (through shared vertices) of largest area.

    The graph work is scipy's (``connected_components``). pyvista's ``connectivity("largest")``
    keeps the same 9,987-vertex organ of ``liver.vtk`` but picks by cell count rather than
    area, needs a round trip through VTK for array and Open3D input, and renumbers the
    vertices (which would move every seeded sample of the model).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(v)
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    areas, _ = _face_areas_centroids(v, f)
    face_label = labels[f[:, 0]]
    best = np.argmax(np.bincount(face_label, weights=areas))
    f = f[(face_label == best) & (areas > 0)]
    used = np.unique(f)
    remap = np.full(n, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return v[used], remap[f]


def _split_long_edges(v: NDArray, f: NDArray, max_edge: float) -> tuple[NDArray, NDArray]:
    """Bisect every edge longer than ``max_edge`` until none is; the surface is unchanged.

    Each pass splits all long edges at their midpoints and each triangle into 2, 3 or 4 with
    its winding kept; a split decided per edge keeps the mesh conforming (watertight).

    Kept rather than pyvista's ``subdivide_adaptive`` (``vtkAdaptiveSubdivisionFilter``): on
    the sliver box of ``tests/test_registration_surface.py`` (56 vertices, limit 8 mm) VTK
    leaves 240 open edges and 2,450 vertices, this 0 open edges and 992 vertices, the original
    vertices first and unmoved (measured with pyvista 0.49).
    """
    while True:
        e = np.stack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=1)  # (F, 3, 2)
        lengths = np.linalg.norm(v[e[..., 0]] - v[e[..., 1]], axis=2)
        long_edge = lengths > max_edge
        if not long_edge.any():
            return v, f
        keys = np.sort(e, axis=2).reshape(-1, 2)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        split = np.zeros(len(uniq), dtype=bool)
        split[inverse[long_edge.ravel()]] = True
        mid = np.full(len(uniq), -1, dtype=np.int64)
        mid[split] = len(v) + np.arange(int(split.sum()))
        v = np.vstack([v, (v[uniq[split, 0]] + v[uniq[split, 1]]) / 2])
        m = mid[inverse].reshape(-1, 3)  # midpoint of edge (i, i+1), -1 if not split
        flag = m >= 0
        # Rotate each triangle so that its split edges come first: k = 1 -> edge 0;
        # k = 2 -> edges 0 and 1.
        k = flag.sum(axis=1)
        rot = np.zeros(len(f), dtype=np.int64)
        rot[(k == 1) & flag[:, 1]] = 1
        rot[(k == 1) & flag[:, 2]] = 2
        rot[(k == 2) & ~flag[:, 0]] = 1
        rot[(k == 2) & ~flag[:, 1]] = 2
        order = (np.arange(3)[None, :] + rot[:, None]) % 3
        a, b, c = (np.take_along_axis(f, order[:, [i]], axis=1)[:, 0] for i in range(3))
        m0, m1, m2 = (np.take_along_axis(m, order[:, [i]], axis=1)[:, 0] for i in range(3))
        parts = [np.stack([a, b, c], 1)[k == 0]]
        one = k == 1
        parts += [np.stack([a, m0, c], 1)[one], np.stack([m0, b, c], 1)[one]]
        two = k == 2
        parts += [
            np.stack([m0, b, m1], 1)[two],
            np.stack([a, m0, m1], 1)[two],
            np.stack([a, m1, c], 1)[two],
        ]
        three = k == 3
        parts += [
            np.stack([a, m0, m2], 1)[three],
            np.stack([m0, b, m1], 1)[three],
            np.stack([m2, m1, c], 1)[three],
            np.stack([m0, m1, m2], 1)[three],
        ]
        f = np.vstack(parts)


def _vertex_normals(v: NDArray, f: NDArray) -> NDArray:
    """Area-weighted vertex normals (sum of the unnormalised face normals around a vertex).

    Identical (to 1e-16 on ``liver.vtk``) to ``trimesh.geometry.mean_vertex_normals`` given the
    same area-weighted face normals, but six lines of numpy do not justify trimesh as a
    runtime dependency; pyvista's ``compute_normals`` averages unit face normals instead (up
    to 29 degrees apart on ``liver.vtk``) and trimesh's ``vertex_normals`` weights by angle.
    """
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    fn = np.cross(b - a, c - a)  # area-weighted face normals
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
    return vn


def _mesh_arrays(mesh: Any) -> tuple[NDArray, NDArray]:
    if isinstance(mesh, tuple) and len(mesh) == 2:
        return np.asarray(mesh[0], dtype=np.float64), np.asarray(mesh[1], dtype=np.int64)
    if hasattr(mesh, "triangles") and hasattr(mesh, "vertices"):  # open3d TriangleMesh
        return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, np.int64)
    if hasattr(mesh, "faces") and hasattr(mesh, "points"):  # pyvista PolyData
        tri = mesh.triangulate() if not mesh.is_all_triangles else mesh
        faces = np.asarray(tri.faces).reshape(-1, 4)[:, 1:]
        return np.asarray(tri.points, dtype=np.float64), faces.astype(np.int64)
    raise MeshError(
        f"expected a pyvista.PolyData, open3d TriangleMesh or (vertices, faces), got "
        f"{type(mesh).__name__}"
    )


def prepare_surface(mesh: Any, *, name: str = "model", seed: int = 0) -> SurfaceModel:
    """Build the reusable registration target from a triangle surface.

    Keeps the connected component of largest area (the real liver model carries five degenerate
    zero-volume pieces), splits edges longer than :data:`LONGEST_EDGE_SPACINGS` median edges
    (the surface itself is unchanged), orients normals outward and builds the KD-trees.

    Parameters
    ----------
    mesh : pyvista.PolyData or open3d.geometry.TriangleMesh or tuple
        Surface in model space (LPS mm), or ``(vertices (V, 3), faces (F, 3))``.
    name : str, keyword-only
        Label for reports.
    seed : int, keyword-only
        Seed of the decimated vertex subset used by the global search.

    Returns
    -------
    SurfaceModel

    Raises
    ------
    MeshError
        If the mesh has no triangles of non-zero area.
    """
    v, f = _mesh_arrays(mesh)
    n_in = len(v)
    if len(f) == 0 or f.ndim != 2 or f.shape[1] != 3 or not np.all(np.isfinite(v)):
        raise MeshError(f"{name}: surface has no valid triangles (faces shape {f.shape})")
    v, f = _largest_component(v, f)
    if len(f) < 4:
        raise MeshError(f"{name}: largest component has only {len(f)} triangles")
    n_dropped = n_in - len(v)
    # No edge longer than a few median edges: nearest-vertex correspondences and the fan of the
    # nearest vertex then cover every triangle (decimated surfaces keep long slivers in flat
    # areas).
    spacing = float(np.median(np.linalg.norm(v[f[:, 0]] - v[f[:, 1]], axis=1)))
    v, f = _split_long_edges(v, f, LONGEST_EDGE_SPACINGS * spacing)
    normals = _vertex_normals(v, f)
    areas, centres = _face_areas_centroids(v, f)
    c = (areas[:, None] * centres).sum(axis=0) / areas.sum()
    # Outward orientation: the signed volume of a closed surface is positive for outward normals.
    a, b, cc = v[f[:, 0]] - c, v[f[:, 1]] - c, v[f[:, 2]] - c
    if np.einsum("ij,ij->i", a, np.cross(b, cc)).sum() < 0:
        normals = -normals
    edges = np.linalg.norm(v[f[:, 0]] - v[f[:, 1]], axis=1)
    rng = np.random.default_rng(seed)
    coarse = np.sort(rng.choice(len(v), size=min(COARSE_VERTICES, len(v)), replace=False))
    return SurfaceModel(
        vertices=v,
        faces=f,
        normals=normals,
        tree=cKDTree(v),
        spacing_mm=float(np.median(edges)),
        coarse_index=coarse,
        coarse_tree=cKDTree(v[coarse]),
        name=name,
        n_dropped_vertices=n_dropped,
    )


def load_surface(path: str | Path, *, name: str | None = None) -> SurfaceModel:
    """Read a surface file (VTK, VTP, STL, PLY, OBJ) and prepare it for registration.

    Parameters
    ----------
    path : str or pathlib.Path
        Surface file in model space (LPS mm).
    name : str, optional
        Label for reports (default: the file stem).

    Raises
    ------
    MeshError
        If the file is missing or unreadable.
    """
    import pyvista as pv

    p = Path(path)
    if not p.is_file():
        raise MeshError(f"surface file not found: {p}")
    try:
        mesh = pv.read(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad user input
        raise MeshError(f"cannot read surface {p}: {exc}") from exc
    if not hasattr(mesh, "faces"):
        mesh = mesh.extract_surface()
    return prepare_surface(mesh, name=name or p.name.split(".")[0])


def as_triangles(mesh: ArrayLike | Any) -> tuple[NDArray, NDArray]:
    """Return ``(vertices, faces)`` of a pyvista/open3d mesh or a SurfaceModel."""
    if isinstance(mesh, SurfaceModel):
        return mesh.vertices, mesh.faces
    return _mesh_arrays(mesh)
