"""Write tetrahedral meshes atomically: ``.vtu`` (ParaView) and ``.msh`` (gmsh 4.1, DOLFINx)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import gmsh
import numpy as np
import pyvista as pv
from scipy.spatial import cKDTree

from imaging._atomic import write_atomically
from imaging._gmsh_mesher import gmsh_model
from imaging.errors import MeshingError
from imaging.mesh_io import MAX_COORDINATE_MM, _check_cells, _read_vtk_file
from imaging.mesh_quality import tet_volumes

if TYPE_CHECKING:
    from imaging.volume_mesh import VolumeMesh

__all__ = ["VOLUME_MESH_SUFFIXES", "read_volume_mesh", "write_volume_mesh"]

#: File suffixes understood by :func:`write_volume_mesh`.
VOLUME_MESH_SUFFIXES = (".vtu", ".msh")


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
    with gmsh_model():
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


def read_volume_mesh(path: str | os.PathLike[str]) -> pv.UnstructuredGrid:
    """Read and validate a tetrahedral mesh written by :func:`write_volume_mesh`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.vtu`` (or legacy ``.vtk``) file.

    Returns
    -------
    pyvista.UnstructuredGrid
        Consistently oriented tetrahedra in LPS mm with an integer ``"region"`` cell array.

    Raises
    ------
    MeshingError
        If the file is missing or does not parse, holds cells other than tetrahedra, vertex
        indices out of range, NaN or implausible coordinates, no ``"region"`` array (or one of
        the wrong length), or tetrahedra of zero or negative volume.
    """
    path = Path(path)
    grid = _read_vtk_file(path, "volume mesh")
    if not isinstance(grid, pv.UnstructuredGrid) or grid.n_cells == 0:
        raise MeshingError(f"volume mesh {path} holds no tetrahedra")
    _check_cells(grid, path, what="volume mesh")
    if not np.all(grid.celltypes == pv.CellType.TETRA):
        raise MeshingError(f"volume mesh {path} holds cells other than linear tetrahedra")
    points = np.asarray(grid.points, dtype=np.float64)
    if not np.all(np.isfinite(points)) or np.abs(points).max() > MAX_COORDINATE_MM:
        raise MeshingError(
            f"volume mesh {path} has NaN, infinite or implausible (> {MAX_COORDINATE_MM:g} mm) "
            "vertex coordinates"
        )
    region = grid.cell_data.get("region")
    if (
        region is None
        or len(region) != grid.n_cells
        or not np.issubdtype(np.asarray(region).dtype, np.integer)
    ):
        raise MeshingError(f"volume mesh {path} has no integer 'region' array per tetrahedron")
    cells = np.asarray(grid.cell_connectivity, dtype=np.int64).reshape(-1, 4)
    volumes = tet_volumes(points, cells)
    if (volumes == 0.0).any() or ((volumes > 0.0).any() and (volumes < 0.0).any()):
        raise MeshingError(
            f"volume mesh {path} has flat tetrahedra or tetrahedra inverted against the others"
        )
    grid.points = points
    return grid
