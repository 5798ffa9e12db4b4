"""gmsh geometries for verification and tests, returned as :class:`~biomech.mesh.FEMesh`.

All dimensions are in mm; the returned meshes carry named facet tags (``boundaries``).
Only MPI rank 0 builds the gmsh model; the mesh is then distributed over ``comm``. Curved
boundaries use second-order (isoparametric) cells by default (``order=2``) so that the
geometry error does not cap the convergence order of P2 displacements.
"""

from __future__ import annotations

from collections.abc import Callable

import gmsh
import numpy as np
from mpi4py import MPI

from biomech.mesh import FEMesh, from_gmsh_model

_ARC = 2.0 * np.sqrt(2.0) / np.pi
"""Distance of the centre of mass of a quarter-circle arc from its centre, per unit radius."""

_OCTANT = np.sqrt(3.0) / 2.0
"""Distance of the centre of mass of a sphere octant surface from its centre, per unit radius."""


def _run(
    build: Callable[[], tuple[dict[str, list[int]], dict[str, list[int]], int]],
    comm: MPI.Comm,
    gdim: int,
    mesh_size_mm: float,
    order: int = 1,
) -> FEMesh:
    """Build and mesh a gmsh model on rank 0 with ``build`` and convert it."""
    initialised = gmsh.isInitialized()
    if not initialised:
        gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("biomech")
        if comm.rank == 0:
            gmsh.option.setNumber("Mesh.MeshSizeMax", mesh_size_mm)
            gmsh.option.setNumber("Mesh.MeshSizeMin", mesh_size_mm)
            gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
            gmsh.option.setNumber("Mesh.Algorithm", 6)
            gmsh.option.setNumber("Mesh.Algorithm3D", 1)
            regions, boundaries, dim = build()
            gmsh.model.occ.synchronize() if gmsh.model.getEntities(dim) == [] else None
            for i, (name, tags) in enumerate(regions.items(), start=1):
                gmsh.model.addPhysicalGroup(dim, tags, i, name=name)
            for i, (name, tags) in enumerate(boundaries.items(), start=1):
                gmsh.model.addPhysicalGroup(dim - 1, tags, i, name=name)
            gmsh.model.mesh.generate(dim)
            if order > 1:
                gmsh.model.mesh.setOrder(order)
        return from_gmsh_model(gmsh.model, gdim=gdim, comm=comm)
    finally:
        gmsh.model.remove()
        if not initialised:
            gmsh.finalize()


def _classify(dim: int, rules: dict[str, Callable[[np.ndarray], bool]]) -> dict[str, list[int]]:
    """Group entities of dimension ``dim`` by a rule on their centre of mass."""
    out: dict[str, list[int]] = {k: [] for k in rules}
    for _, tag in gmsh.model.getEntities(dim):
        com = np.array(gmsh.model.occ.getCenterOfMass(dim, tag))
        for name, rule in rules.items():
            if rule(com):
                out[name].append(tag)
                break
    return out


def thick_cylinder_slab(
    inner_radius_mm: float,
    outer_radius_mm: float,
    *,
    mesh_size_mm: float,
    thickness_mm: float | None = None,
    order: int = 2,
    comm: MPI.Comm = MPI.COMM_WORLD,
) -> FEMesh:
    """Quarter of a thick-walled cylinder slab (x, y >= 0, 0 <= z <= t), tetrahedra.

    Boundaries: ``inner``, ``outer``, ``x0`` (x = 0), ``y0`` (y = 0), ``z0``, ``z1``.

    Parameters
    ----------
    inner_radius_mm, outer_radius_mm : float
        Radii a < b of the wall, mm.
    mesh_size_mm : float
        Target element size, mm.
    thickness_mm : float, optional
        Slab thickness t along z, mm (default: ``mesh_size_mm``).
    order : int
        Geometric order of the elements (2: curved).
    comm : mpi4py.MPI.Comm
        Communicator the mesh is distributed over.
    """
    a, b = inner_radius_mm, outer_radius_mm
    t = thickness_mm if thickness_mm is not None else mesh_size_mm

    def build() -> tuple[dict[str, list[int]], dict[str, list[int]], int]:
        occ = gmsh.model.occ
        outer = occ.addCylinder(0, 0, 0, 0, 0, t, b)
        inner = occ.addCylinder(0, 0, 0, 0, 0, t, a)
        ring, _ = occ.cut([(3, outer)], [(3, inner)])
        box = occ.addBox(0, 0, 0, b, b, t)
        vol, _ = occ.intersect(ring, [(3, box)])
        occ.synchronize()
        tol = 1e-6 * b

        def rad(c: np.ndarray) -> float:
            return float(np.hypot(c[0], c[1]))

        rules = {
            "z0": lambda c: abs(c[2]) < tol,
            "z1": lambda c: abs(c[2] - t) < tol,
            "x0": lambda c: abs(c[0]) < tol,
            "y0": lambda c: abs(c[1]) < tol,
            # The centre of mass of a quarter-circle arc of radius r lies at 2 sqrt(2) r / pi
            # from the axis: compare with the mean of those for r = a and r = b (a thin wall
            # would otherwise put both curved faces on the same side of (a + b) / 2).
            "inner": lambda c: rad(c) < _ARC * 0.5 * (a + b),
            "outer": lambda c: rad(c) >= _ARC * 0.5 * (a + b),
        }
        return {"wall": [v[1] for v in vol]}, _classify(2, rules), 3

    return _run(build, comm, 3, mesh_size_mm, order)


def thick_sphere_octant(
    inner_radius_mm: float,
    outer_radius_mm: float,
    *,
    mesh_size_mm: float,
    order: int = 2,
    comm: MPI.Comm = MPI.COMM_WORLD,
) -> FEMesh:
    """Octant (x, y, z >= 0) of a thick-walled sphere. Boundaries ``inner``, ``outer``, ``x0``...

    Parameters
    ----------
    inner_radius_mm, outer_radius_mm : float
        Radii a < b of the wall, mm.
    mesh_size_mm : float
        Target element size, mm.
    order : int
        Geometric order of the elements (2: curved).
    comm : mpi4py.MPI.Comm
        Communicator the mesh is distributed over.
    """
    a, b = inner_radius_mm, outer_radius_mm

    def build() -> tuple[dict[str, list[int]], dict[str, list[int]], int]:
        occ = gmsh.model.occ
        outer = occ.addSphere(0, 0, 0, b)
        inner = occ.addSphere(0, 0, 0, a)
        shell, _ = occ.cut([(3, outer)], [(3, inner)])
        box = occ.addBox(0, 0, 0, b, b, b)
        vol, _ = occ.intersect(shell, [(3, box)])
        occ.synchronize()
        tol = 1e-6 * b
        rules = {
            "x0": lambda c: abs(c[0]) < tol,
            "y0": lambda c: abs(c[1]) < tol,
            "z0": lambda c: abs(c[2]) < tol,
            # Centre of mass of an octant of a sphere of radius r: sqrt(3) r / 2 from the centre.
            "inner": lambda c: np.linalg.norm(c) < _OCTANT * 0.5 * (a + b),
            "outer": lambda c: np.linalg.norm(c) >= _OCTANT * 0.5 * (a + b),
        }
        return {"wall": [v[1] for v in vol]}, _classify(2, rules), 3

    return _run(build, comm, 3, mesh_size_mm, order)


def box(
    length_mm: float,
    width_mm: float,
    height_mm: float,
    *,
    mesh_size_mm: float,
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    comm: MPI.Comm = MPI.COMM_WORLD,
) -> FEMesh:
    """A box [0, L] x [0, W] x [0, H] (shifted by ``origin_mm``), tetrahedra.

    Boundaries: ``x0``, ``x1``, ``y0``, ``y1``, ``z0``, ``z1``.

    Parameters
    ----------
    length_mm, width_mm, height_mm : float
        Edge lengths L, W, H along x, y, z, mm.
    mesh_size_mm : float
        Target element size, mm.
    origin_mm : tuple of 3 floats
        The corner with the smallest coordinates, mm.
    comm : mpi4py.MPI.Comm
        Communicator the mesh is distributed over.
    """
    ox, oy, oz = origin_mm

    def build() -> tuple[dict[str, list[int]], dict[str, list[int]], int]:
        occ = gmsh.model.occ
        v = occ.addBox(ox, oy, oz, length_mm, width_mm, height_mm)
        occ.synchronize()
        tol = 1e-6 * max(length_mm, width_mm, height_mm)
        rules = {
            "x0": lambda c: abs(c[0] - ox) < tol,
            "x1": lambda c: abs(c[0] - ox - length_mm) < tol,
            "y0": lambda c: abs(c[1] - oy) < tol,
            "y1": lambda c: abs(c[1] - oy - width_mm) < tol,
            "z0": lambda c: abs(c[2] - oz) < tol,
            "z1": lambda c: abs(c[2] - oz - height_mm) < tol,
        }
        return {"body": [v]}, _classify(2, rules), 3

    return _run(build, comm, 3, mesh_size_mm)


def cooks_membrane(divisions: int, *, comm: MPI.Comm = MPI.COMM_WORLD) -> FEMesh:
    """Cook's membrane (0,0)-(48,44)-(48,60)-(0,44) mm, structured ``divisions`` x ``divisions``.

    Triangles (plane strain). Boundaries: ``left`` (clamped), ``right`` (loaded), ``other``.

    Parameters
    ----------
    divisions : int
        Divisions of each side of the quadrilateral (structured triangles).
    comm : mpi4py.MPI.Comm
        Communicator the mesh is distributed over.
    """

    def build() -> tuple[dict[str, list[int]], dict[str, list[int]], int]:
        occ = gmsh.model.occ
        pts = [occ.addPoint(*p, 0.0) for p in [(0, 0), (48, 44), (48, 60), (0, 44)]]
        lines = [occ.addLine(pts[i], pts[(i + 1) % 4]) for i in range(4)]
        loop = occ.addCurveLoop(lines)
        surf = occ.addPlaneSurface([loop])
        occ.synchronize()
        for ln in lines:
            gmsh.model.mesh.setTransfiniteCurve(ln, divisions + 1)
        gmsh.model.mesh.setTransfiniteSurface(surf, "Alternate")
        return (
            {"membrane": [surf]},
            {"right": [lines[1]], "left": [lines[3]], "other": [lines[0], lines[2]]},
            2,
        )

    return _run(build, comm, 2, 60.0 / divisions)


def disc(
    radius_mm: float, *, mesh_size_mm: float, order: int = 2, comm: MPI.Comm = MPI.COMM_WORLD
) -> FEMesh:
    """A disc of radius R (a vessel cross-section), triangles. Boundary ``wall``.

    Parameters
    ----------
    radius_mm : float
        Radius R, mm.
    mesh_size_mm : float
        Target element size, mm.
    order : int
        Geometric order of the elements (2: curved).
    comm : mpi4py.MPI.Comm
        Communicator the mesh is distributed over.
    """

    def build() -> tuple[dict[str, list[int]], dict[str, list[int]], int]:
        occ = gmsh.model.occ
        s = occ.addDisk(0, 0, 0, radius_mm, radius_mm)
        occ.synchronize()
        walls = [c[1] for c in gmsh.model.getBoundary([(2, s)], oriented=False)]
        return {"lumen": [s]}, {"wall": walls}, 2

    return _run(build, comm, 2, mesh_size_mm, order)


def ellipsoid(
    radii_mm: tuple[float, float, float],
    *,
    mesh_size_mm: float,
    centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    comm: MPI.Comm = MPI.COMM_WORLD,
) -> FEMesh:
    """A solid ellipsoid (an organ stand-in), linear tetrahedra. Boundary ``surface``.

    Parameters
    ----------
    radii_mm : tuple of 3 floats
        Semi-axes along x, y, z, mm.
    mesh_size_mm : float
        Target element size, mm.
    centre_mm : tuple of 3 floats
        Centre, mm.
    comm : mpi4py.MPI.Comm
        Communicator the mesh is distributed over.
    """

    def build() -> tuple[dict[str, list[int]], dict[str, list[int]], int]:
        occ = gmsh.model.occ
        v = occ.addSphere(*centre_mm, 1.0)
        occ.dilate([(3, v)], *centre_mm, *radii_mm)
        occ.synchronize()
        surfs = [c[1] for c in gmsh.model.getBoundary([(3, v)], oriented=False)]
        return {"organ": [v]}, {"surface": surfs}, 3

    return _run(build, comm, 3, mesh_size_mm)


def boundary_points_mm(fe: FEMesh) -> np.ndarray:
    """(N, 3) coordinates in mm of this rank's mesh vertices on the exterior boundary."""
    import dolfinx

    msh = fe.mesh
    tdim = msh.topology.dim
    facets = fe.exterior_facets()
    verts = np.unique(dolfinx.mesh.compute_incident_entities(msh.topology, facets, tdim - 1, 0))
    msh.topology.create_connectivity(0, tdim)
    nodes = dolfinx.mesh.entities_to_geometry(msh, 0, verts).ravel()
    return msh.geometry.x[nodes] / 1e-3


def boundary_facets_mm(fe: FEMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exterior facets of this rank: indices, midpoints (F, 3) in mm and outward unit normals.

    The normal of each triangle is oriented away from the centroid of the tetrahedron it
    bounds, so it points out of the body whatever the vertex order.
    """
    import dolfinx

    msh = fe.mesh
    tdim = msh.topology.dim
    facets = fe.exterior_facets()
    msh.topology.create_connectivity(tdim - 1, tdim)
    f2c = msh.topology.connectivity(tdim - 1, tdim)
    x = msh.geometry.x / 1e-3
    fverts = dolfinx.mesh.entities_to_geometry(msh, tdim - 1, facets)
    cells = np.array([f2c.links(f)[0] for f in facets], dtype=np.int32)
    cverts = dolfinx.mesh.entities_to_geometry(msh, tdim, cells)
    tri = x[fverts[:, :3]]
    mid = tri.mean(axis=1)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    inward = x[cverts].mean(axis=1) - mid
    n[np.einsum("ij,ij->i", n, inward) > 0] *= -1.0
    return facets, mid, n


def inside_mesh(fe: FEMesh, points_mm: np.ndarray) -> np.ndarray:
    """(N,) bool: which points (N, 3) in mm lie in a cell of this rank's mesh."""
    import dolfinx

    msh = fe.mesh
    pts = np.asarray(points_mm, dtype=float).reshape(-1, 3) * 1e-3
    tree = dolfinx.geometry.bb_tree(msh, msh.topology.dim)
    cand = dolfinx.geometry.compute_collisions_points(tree, pts)
    coll = dolfinx.geometry.compute_colliding_cells(msh, cand, pts)
    return np.diff(coll.offsets) > 0
