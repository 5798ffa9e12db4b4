"""Volume meshes for finite elements: gmsh models, ``.msh`` files and pyvista grids -> DOLFINx.

Public geometry is in millimetres. A :class:`FEMesh` stores its DOLFINx mesh in metres (the
solver works in SI internally, see :mod:`biomech.tissue`); the conversion happens here, once.
Cell regions (``"region"`` cell data, or gmsh physical volumes) become cell tags; gmsh physical
surfaces become facet tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import basix.ufl
import dolfinx
import dolfinx.io.gmsh
import dolfinx_solver  # noqa: F401  (must precede dolfinx / petsc4py, see DESIGN.md)
import numpy as np
import pyvista as pv
import ufl
from mpi4py import MPI

from biomech.errors import BiomechError

MM_TO_M = 1.0e-3
"""Metres per millimetre: public coordinates (mm) -> internal SI coordinates (m)."""


class MeshError(BiomechError):
    """A volume mesh is unusable: wrong cell type, inverted or degenerate elements, no regions."""


class EmptyRegionError(MeshError):
    """A named or numbered region selects no cells."""


@dataclass
class FEMesh:
    """A DOLFINx mesh with its cell regions and tagged boundary facets.

    Attributes
    ----------
    mesh : dolfinx.mesh.Mesh
        The mesh, coordinates in metres.
    cell_tags : dolfinx.mesh.MeshTags
        Region id of every cell.
    facet_tags : dolfinx.mesh.MeshTags or None
        Tags of boundary facets (gmsh physical surfaces), if any.
    regions : dict[str, int]
        Region name -> cell tag value.
    boundaries : dict[str, int]
        Boundary name -> facet tag value.
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags
    facet_tags: dolfinx.mesh.MeshTags | None = None
    regions: dict[str, int] = field(default_factory=dict)
    boundaries: dict[str, int] = field(default_factory=dict)

    @property
    def comm(self) -> MPI.Comm:
        """MPI communicator of the mesh."""
        return self.mesh.comm

    @property
    def gdim(self) -> int:
        """Geometric dimension (2 for plane-strain problems, 3 otherwise)."""
        return self.mesh.geometry.dim

    def region_ids(self) -> np.ndarray:
        """Return the sorted region ids present on any rank."""
        local = np.unique(self.cell_tags.values)
        allv = self.comm.allgather(local)
        return np.unique(np.concatenate(allv)).astype(np.int32)

    def num_cells_global(self) -> int:
        """Number of cells over all ranks."""
        imap = self.mesh.topology.index_map(self.mesh.topology.dim)
        return int(imap.size_global)

    def exterior_facets(self) -> np.ndarray:
        """Local indices of the facets on the mesh boundary."""
        tdim = self.mesh.topology.dim
        self.mesh.topology.create_connectivity(tdim - 1, tdim)
        return dolfinx.mesh.exterior_facet_indices(self.mesh.topology)


def from_gmsh_model(
    model: object,
    *,
    gdim: int = 3,
    comm: MPI.Comm = MPI.COMM_WORLD,
    rank: int = 0,
    length_unit_m: float = MM_TO_M,
) -> FEMesh:
    """Convert the current gmsh model (with physical groups) to an :class:`FEMesh`.

    Parameters
    ----------
    model : gmsh.model
        A meshed gmsh model on ``rank``; physical volumes (or surfaces in 2D) give cell regions,
        physical surfaces (or curves in 2D) give facet tags.
    gdim : int
        Geometric dimension, 2 or 3.
    comm : MPI.Comm
        Communicator the mesh is distributed over.
    rank : int
        Rank that holds the gmsh model.
    length_unit_m : float
        Metres per model length unit (1e-3 for a model in mm, 1.0 for a model in m).

    Returns
    -------
    FEMesh
        Mesh in metres with cell and facet tags.

    Raises
    ------
    MeshError
        If the model has no physical group of cells.
    """
    data = dolfinx.io.gmsh.model_to_mesh(model, comm, rank, gdim=gdim)
    if data.cell_tags is None:
        raise MeshError("gmsh model has no physical group of cells; tag the volume(s)")
    data.mesh.geometry.x[:, :] *= length_unit_m
    tdim = data.mesh.topology.dim
    regions = {n: t for n, (d, t) in data.physical_groups.items() if d == tdim}
    boundaries = {n: t for n, (d, t) in data.physical_groups.items() if d == tdim - 1}
    fe = FEMesh(data.mesh, data.cell_tags, data.facet_tags, regions, boundaries)
    _check_cells(fe)
    return fe


def read_msh(
    path: str | Path,
    *,
    gdim: int = 3,
    comm: MPI.Comm = MPI.COMM_WORLD,
    length_unit_m: float = MM_TO_M,
) -> FEMesh:
    """Read a gmsh ``.msh`` file (coordinates in mm by default) into an :class:`FEMesh`.

    Parameters
    ----------
    path : str or Path
        The ``.msh`` file; its physical groups become the region and facet tags.
    gdim : int
        Geometric dimension of the mesh (2 or 3).
    comm : mpi4py.MPI.Comm
        Communicator the mesh is distributed over (rank 0 reads the file).
    length_unit_m : float
        Length of one file coordinate unit in metres (default: 1 mm).

    Raises
    ------
    MeshError
        If the file does not exist or cannot be read by gmsh.
    """
    import gmsh

    path = Path(path)
    if not path.is_file():
        raise MeshError(f"mesh file not found: {path}")
    initialised = gmsh.isInitialized()
    if not initialised:
        gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        if comm.rank == 0:
            gmsh.clear()
            try:
                gmsh.open(str(path))
            except Exception as exc:  # gmsh raises a bare Exception
                raise MeshError(f"gmsh cannot read {path}: {exc}") from None
        return from_gmsh_model(gmsh.model, gdim=gdim, comm=comm, length_unit_m=length_unit_m)
    finally:
        if not initialised:
            gmsh.finalize()


def signed_tet_volumes(points: np.ndarray, tets: np.ndarray) -> np.ndarray:
    """Signed volumes of tetrahedra (units of ``points`` cubed), VTK vertex order.

    V = ((p1 - p0) x (p2 - p0)) . (p3 - p0) / 6, positive for VTK's right-handed ordering.

    Parameters
    ----------
    points : numpy.ndarray
        (N, 3) vertex coordinates (e.g. mm).
    tets : numpy.ndarray
        (M, 4) vertex indices of each tetrahedron.
    """
    p0, p1, p2, p3 = (points[tets[:, i]] for i in range(4))
    return np.einsum("ij,ij->i", np.cross(p1 - p0, p2 - p0), p3 - p0) / 6.0


def from_unstructured_grid(
    grid: pv.UnstructuredGrid | None,
    *,
    region_names: Mapping[str, int] | None = None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    min_volume_mm3: float = 1e-12,
) -> FEMesh:
    """Convert a tetrahedral pyvista grid in millimetres to an :class:`FEMesh` (in metres).

    Parameters
    ----------
    grid : pyvista.UnstructuredGrid
        Linear tetrahedra (VTK_TETRA) with integer cell data ``"region"``, coordinates in mm.
        Only rank 0's grid is used; other ranks may pass ``None``.
    region_names : Mapping[str, int], optional
        Region name -> id, e.g. ``VolumeMesh.regions``; every id must have cells.
    comm : MPI.Comm
        Communicator to distribute the mesh over.
    min_volume_mm3 : float
        Elements with a signed volume at or below this value (mm^3) are inverted or degenerate.

    Returns
    -------
    FEMesh
        The distributed mesh with cell tags from ``"region"``.

    Raises
    ------
    MeshError
        If the grid is empty, not all tetrahedra, lacks ``"region"``, or has inverted/degenerate
        elements (the message gives their number and the first cell index).
    EmptyRegionError
        If a region in ``region_names`` has no cells.
    """
    error: str | None = None
    exc_type: type[MeshError] = MeshError
    cells = np.zeros((0, 4), dtype=np.int64)
    x = np.zeros((0, 3), dtype=np.float64)
    region = np.zeros(0, dtype=np.int32)
    if comm.rank == 0:
        try:
            cells, x, region = _grid_arrays(grid, region_names, min_volume_mm3)
        except MeshError as exc:
            error, exc_type = str(exc), type(exc)
    error, exc_type = comm.bcast((error, exc_type), root=0)
    if error is not None:
        raise exc_type(error)
    element = basix.ufl.element("Lagrange", "tetrahedron", 1, shape=(3,))
    domain = ufl.Mesh(element)
    msh = dolfinx.mesh.create_mesh(comm, cells, domain, x * MM_TO_M)
    # Tag cells with their region: entities given by global input vertex numbers.
    local_entities, local_values = dolfinx.io.gmsh.distribute_entity_data(
        msh, 3, cells, region.astype(np.int32)
    )
    msh.topology.create_connectivity(3, 0)
    adj = dolfinx.graph.adjacencylist(local_entities)
    ct = dolfinx.mesh.meshtags_from_entities(msh, 3, adj, local_values.astype(np.int32))
    ct.name = "region"
    names = comm.bcast(dict(region_names) if region_names else None, root=0)
    if names is None:
        ids = np.unique(np.concatenate(comm.allgather(np.unique(ct.values))))
        names = {f"region_{int(i)}": int(i) for i in ids}
    return FEMesh(msh, ct, None, dict(names), {})


def _grid_arrays(
    grid: pv.UnstructuredGrid | None,
    region_names: Mapping[str, int] | None,
    min_volume_mm3: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if grid is None or not isinstance(grid, pv.UnstructuredGrid):
        raise MeshError(f"expected a pyvista.UnstructuredGrid of tetrahedra, got {type(grid)}")
    if grid.n_cells == 0:
        raise MeshError("volume mesh has no cells")
    celltypes = np.asarray(grid.celltypes)
    if not np.all(celltypes == pv.CellType.TETRA):
        bad = np.unique(celltypes[celltypes != pv.CellType.TETRA])
        raise MeshError(
            f"volume mesh must contain only linear tetrahedra (VTK type 10), found types {bad}"
        )
    if "region" not in grid.cell_data:
        raise MeshError(f"volume mesh lacks integer cell data 'region'; has {list(grid.cell_data)}")
    region = np.asarray(grid.cell_data["region"]).astype(np.int32).ravel()
    tets = grid.cells_dict[pv.CellType.TETRA].astype(np.int64)
    points = np.asarray(grid.points, dtype=np.float64)
    if not np.all(np.isfinite(points)):
        raise MeshError("volume mesh has non-finite point coordinates")
    vol = signed_tet_volumes(points, tets)
    bad = np.flatnonzero(vol <= min_volume_mm3)
    if bad.size:
        raise MeshError(
            f"volume mesh has {bad.size} inverted or degenerate tetrahedra (signed volume <= "
            f"{min_volume_mm3} mm^3), first is cell {int(bad[0])} with volume {vol[bad[0]]:.3g} "
            "mm^3"
        )
    if region_names:
        present = set(np.unique(region).tolist())
        for name, rid in region_names.items():
            if int(rid) not in present:
                raise EmptyRegionError(
                    f"region {name!r} (id {rid}) has no cells in the volume mesh; "
                    f"regions present: {sorted(present)}"
                )
    used = np.unique(tets)
    if used.size != points.shape[0]:
        # Drop unused points (dolfinx requires every input node to belong to a cell).
        remap = np.full(points.shape[0], -1, dtype=np.int64)
        remap[used] = np.arange(used.size)
        tets = remap[tets]
        points = points[used]
    return tets, points, region


def _check_cells(fe: FEMesh) -> None:
    """Raise :class:`MeshError` if any cell has non-positive volume (Jacobian)."""
    msh = fe.mesh
    tdim = msh.topology.dim
    if fe.num_cells_global() == 0:
        raise MeshError("mesh has no cells")
    dofmap = msh.geometry.dofmaps[0]
    x = msh.geometry.x
    if dofmap.shape[0] == 0:
        return
    nverts = tdim + 1
    verts = x[dofmap[:, :nverts]]
    if tdim == 3:
        e = verts[:, 1:4, :] - verts[:, :1, :]
        vol = np.abs(np.linalg.det(e)) / 6.0
    else:
        e = verts[:, 1:3, :2] - verts[:, :1, :2]
        vol = np.abs(np.linalg.det(e)) / 2.0
    scale = np.max(np.ptp(x, axis=0)) ** tdim if x.shape[0] else 1.0
    nbad = int(np.count_nonzero(vol <= 1e-14 * scale))
    nbad = msh.comm.allreduce(nbad)
    if nbad:
        raise MeshError(f"mesh has {nbad} degenerate (zero-volume) cells")
