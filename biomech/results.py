"""Results: von Mises stress, point evaluation, pyvista grids, VTU and XDMF files (mm, kPa).

Files are written to a temporary name, flushed to disk and renamed (:mod:`biomech._atomic`), so a
crash never leaves half a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import basix.ufl
import dolfinx
import dolfinx.io
import dolfinx.plot
import dolfinx_solver  # noqa: F401
import numpy as np
import pyvista as pv
import ufl
from scipy.spatial import cKDTree

from biomech._atomic import atomic_write, commit, temporary_name
from biomech.elasticity import cauchy_stress
from biomech.mesh import MM_TO_M

if TYPE_CHECKING:
    from biomech.tissue import TissueResult

PA_TO_KPA = 1.0e-3


def von_mises_function(result: TissueResult) -> dolfinx.fem.Function:
    """Cell-wise (DG0) von Mises stress in kPa.

    sigma_vm = sqrt(3/2 s:s), s = sigma - tr(sigma)/3 I (deviatoric Cauchy stress).
    """
    msh = result.fe_mesh.mesh
    sigma = cauchy_stress(result.u, result.mu, result.kappa, result.model, msh.geometry.dim)
    s = sigma - ufl.tr(sigma) / 3.0 * ufl.Identity(3)
    vm = ufl.sqrt(1.5 * ufl.inner(s, s)) * PA_TO_KPA
    q = dolfinx.fem.functionspace(msh, ("DG", 0))
    out = dolfinx.fem.Function(q, name="von_mises_kpa")
    out.interpolate(dolfinx.fem.Expression(vm, q.element.interpolation_points))
    return out


def locate_points(msh: dolfinx.mesh.Mesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells containing points (N, gdim or 3) in mesh units, for :meth:`Function.eval`.

    Points outside the discretised domain are moved to the nearest geometry node.

    Parameters
    ----------
    msh : dolfinx.mesh.Mesh
        The mesh (coordinates in metres).
    points : numpy.ndarray
        (N, gdim or 3) points in mesh units (m).

    Returns
    -------
    tuple of numpy.ndarray
        (N, 3) evaluation points and (N,) local cell indices.
    """
    pts = np.zeros((points.shape[0], 3))
    pts[:, : points.shape[1]] = points
    tree = dolfinx.geometry.bb_tree(msh, msh.topology.dim)
    cand = dolfinx.geometry.compute_collisions_points(tree, pts)
    coll = dolfinx.geometry.compute_colliding_cells(msh, cand, pts)
    cells = np.full(pts.shape[0], -1, dtype=np.int32)
    offs, links = coll.offsets, coll.array
    has = offs[1:] > offs[:-1]
    cells[has] = links[offs[:-1][has]]
    if not np.all(has):
        x = msh.geometry.x
        _, node = cKDTree(x).query(pts[~has])
        dofmap = msh.geometry.dofmaps[0]
        node_to_cell = np.full(x.shape[0], -1, dtype=np.int32)
        node_to_cell[dofmap.ravel()] = np.repeat(np.arange(dofmap.shape[0]), dofmap.shape[1])
        pts[~has] = x[node]
        cells[~has] = node_to_cell[node]
    return pts, cells


def evaluate_function(
    u: dolfinx.fem.Function,
    points: np.ndarray,
    located: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Values of ``u`` at points (N, 3) in mesh units (see :func:`locate_points`).

    Parameters
    ----------
    u : dolfinx.fem.Function
        The function to evaluate (SI units).
    points : numpy.ndarray
        (N, 3) points in mesh units (m).
    located : tuple of numpy.ndarray, optional
        A previous :func:`locate_points` of the same points (reused).
    """
    pts, cells = located if located is not None else locate_points(u.function_space.mesh, points)
    return u.eval(pts, cells).reshape(pts.shape[0], -1)


def _p1_displacement_mm(result: TissueResult) -> dolfinx.fem.Function:
    msh = result.fe_mesh.mesh
    gdim = msh.geometry.dim
    v1 = dolfinx.fem.functionspace(
        msh, basix.ufl.element("Lagrange", msh.basix_cell(), 1, shape=(gdim,))
    )
    u1 = dolfinx.fem.Function(v1, name="displacement_mm")
    u1.interpolate(result.u)
    u1.x.array[:] /= MM_TO_M
    return u1


def to_pyvista(result: TissueResult) -> pv.UnstructuredGrid:
    """Return this rank's part of the result as a pyvista grid in mm.

    Point data ``displacement_mm`` (3 components), cell data ``von_mises_kpa`` and ``region``.
    """
    msh = result.fe_mesh.mesh
    u1 = _p1_displacement_mm(result)
    topo, types, x = dolfinx.plot.vtk_mesh(u1.function_space)
    grid = pv.UnstructuredGrid(topo, types, x / MM_TO_M)
    nloc = msh.topology.index_map(msh.topology.dim).size_local
    gdim = msh.geometry.dim
    disp = np.zeros((x.shape[0], 3))
    disp[:, :gdim] = u1.x.array.reshape(-1, gdim)[: x.shape[0]]
    grid.point_data["displacement_mm"] = disp
    vm = von_mises_function(result)
    ncells = grid.n_cells
    grid.cell_data["von_mises_kpa"] = vm.x.array[:ncells].copy()
    region = np.zeros(ncells, dtype=np.int32)
    ct = result.fe_mesh.cell_tags
    keep = ct.indices < ncells
    region[ct.indices[keep]] = ct.values[keep]
    grid.cell_data["region"] = region
    grid.field_data["num_owned_cells"] = np.array([nloc])
    return grid


def write_vtu(result: TissueResult, path: str | os.PathLike[str]) -> Path:
    """Write the result grid as ``.vtu`` (mm, kPa), atomically. Serial only.

    Parameters
    ----------
    result : TissueResult
        The converged result.
    path : str or os.PathLike
        The ``.vtu`` file.
    """
    grid = to_pyvista(result)
    return atomic_write(path, grid.save)


def write_xdmf(result: TissueResult, path: str | os.PathLike[str]) -> Path:
    """Write mesh (mm), ``displacement_mm`` and ``von_mises_kpa`` as XDMF/HDF5 (MPI-parallel).

    The ``.xdmf`` and its ``.h5`` are written under temporary names and renamed on rank 0.

    Parameters
    ----------
    result : TissueResult
        The converged result.
    path : str or os.PathLike
        The ``.xdmf`` file (its ``.h5`` is written next to it).
    """
    msh = result.fe_mesh.mesh
    comm = msh.comm
    path = Path(path).with_suffix(".xdmf")
    tag = comm.bcast(os.getpid(), root=0)
    tmp = temporary_name(path, tag)
    u1 = _p1_displacement_mm(result)
    vm = von_mises_function(result)
    msh.geometry.x[:, :] /= MM_TO_M
    try:
        with dolfinx.io.XDMFFile(comm, str(tmp), "w") as xf:
            xf.write_mesh(msh)
            xf.write_function(u1)
            xf.write_function(vm)
    finally:
        msh.geometry.x[:, :] *= MM_TO_M
    comm.barrier()
    if comm.rank == 0:
        h5_tmp, h5 = tmp.with_suffix(".h5"), path.with_suffix(".h5")
        text = tmp.read_text().replace(h5_tmp.name, h5.name)
        commit(h5_tmp, h5)
        tmp.write_text(text)
        commit(tmp, path)
    comm.barrier()
    return path
