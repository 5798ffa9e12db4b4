"""Element quality of a tetrahedral mesh: volumes, dihedral angles, gmsh's gamma, summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MeshQuality", "dihedral_angles_deg", "mesh_quality", "tet_volumes"]


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


def mesh_quality(
    points: NDArray[np.float64],
    cells: NDArray[np.int64],
    region: NDArray[np.int32],
    gamma: NDArray[np.float64],
    names: Mapping[int, str],
    *,
    n_inverted: int,
) -> MeshQuality:
    """Summarise the quality of positively oriented tetrahedra.

    Parameters
    ----------
    points : numpy.ndarray, shape (n, 3)
        Node coordinates, mm.
    cells : numpy.ndarray, shape (m, 4)
        Tetrahedra (node indices), oriented to positive volume.
    region : numpy.ndarray, shape (m,)
        Region id of each tetrahedron.
    gamma : numpy.ndarray, shape (m,)
        gmsh ``"gamma"`` quality of each tetrahedron (dimensionless, 0..1).
    names : mapping of int to str
        Region id -> structure name.
    n_inverted : int
        Tetrahedra that had non-positive volume before reorientation.

    Returns
    -------
    MeshQuality
        Counts, gamma and dihedral-angle extremes (degrees), region volumes (mL).
    """
    volumes = tet_volumes(points, cells)
    dihedral = dihedral_angles_deg(points, cells)
    return MeshQuality(
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


def tet_volumes(points: NDArray[np.float64], cells: NDArray[np.int64]) -> NDArray[np.float64]:
    """Signed tetrahedron volumes, V = det[p1-p0, p2-p0, p3-p0] / 6, in mm^3.

    Parameters
    ----------
    points : numpy.ndarray, shape (n, 3)
        Node coordinates, mm.
    cells : numpy.ndarray, shape (m, 4)
        Tetrahedra as node indices.
    """
    p = points[cells]
    return (
        np.einsum("ij,ij->i", p[:, 1] - p[:, 0], np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]))
        / 6.0
    )


def dihedral_angles_deg(
    points: NDArray[np.float64], cells: NDArray[np.int64]
) -> NDArray[np.float64]:
    """All six dihedral angles of each tetrahedron, in degrees, shape (n, 6).

    The dihedral angle along the edge shared by faces a and b is pi minus the angle between
    their outward normals.

    Parameters
    ----------
    points : numpy.ndarray, shape (n, 3)
        Node coordinates, mm.
    cells : numpy.ndarray, shape (m, 4)
        Tetrahedra as node indices.
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
