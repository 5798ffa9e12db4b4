"""Element quality of a tetrahedral mesh: volumes, dihedral angles, gamma, the FE standard.

:data:`FE_STANDARD` is what a mesh must meet before it is handed to finite elements (slivers
make stiffness matrices ill-conditioned and stresses wrong): minimum dihedral angle >= 5
degrees, fewer than 0.1% of tetrahedra with gamma < 0.1, no inverted element, and every
region's volume within 2% of the volume its surface encloses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FE_STANDARD",
    "FEStandard",
    "MeshQuality",
    "dihedral_angles_deg",
    "mesh_quality",
    "standard_failures",
    "tet_gamma",
    "tet_volumes",
]


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
    volume_error_pct : dict of str to float
        Per structure, meshed volume relative to the volume its surface encloses, percent
        (empty when no reference was given).
    mesher : str
        The tetrahedral mesher that made the mesh (``"gmsh"`` or ``"ftetwild"``).
    seconds : float
        Wall time of the meshing attempt that made it, s.
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
    volume_error_pct: dict[str, float] = field(default_factory=dict)
    mesher: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class FEStandard:
    """Thresholds a tetrahedral mesh must meet for finite elements.

    Attributes
    ----------
    min_dihedral_deg : float
        Smallest dihedral angle allowed anywhere, degrees.
    sliver_gamma : float
        Gamma below which a tetrahedron counts as a sliver.
    max_sliver_fraction : float
        Largest fraction of slivers allowed (strictly below).
    max_volume_error_pct : float
        Largest relative difference (percent) between a region's meshed volume and the volume
        its surface encloses.
    """

    min_dihedral_deg: float = 5.0
    sliver_gamma: float = 0.1
    max_sliver_fraction: float = 0.001
    max_volume_error_pct: float = 2.0


#: The standard :func:`imaging.volume_mesh.tetrahedralize` holds every mesh to.
FE_STANDARD = FEStandard()


def standard_failures(quality: MeshQuality, standard: FEStandard = FE_STANDARD) -> list[str]:
    """Each way ``quality`` falls short of ``standard``, as a phrase naming metric and value.

    Parameters
    ----------
    quality : MeshQuality
        Summary of the mesh (:func:`mesh_quality`).
    standard : FEStandard, default FE_STANDARD
        Thresholds.

    Returns
    -------
    list of str
        Empty when the mesh meets the standard.
    """
    failures = []
    if quality.n_inverted:
        failures.append(f"{quality.n_inverted} inverted tetrahedra (expected 0)")
    if quality.min_dihedral_deg < standard.min_dihedral_deg:
        failures.append(
            f"minimum dihedral angle {quality.min_dihedral_deg:.3g} deg "
            f"(expected >= {standard.min_dihedral_deg:g})"
        )
    if quality.fraction_gamma_below_0_1 >= standard.max_sliver_fraction:
        failures.append(
            f"{100 * quality.fraction_gamma_below_0_1:.3g}% of tetrahedra with gamma < "
            f"{standard.sliver_gamma:g} (expected < {100 * standard.max_sliver_fraction:g}%)"
        )
    for name, error in quality.volume_error_pct.items():
        if not abs(error) <= standard.max_volume_error_pct:
            failures.append(
                f"volume of {name!r} {error:+.3g}% off its surface's "
                f"(expected within {standard.max_volume_error_pct:g}%)"
            )
    return failures


def mesh_quality(
    points: NDArray[np.float64],
    cells: NDArray[np.int64],
    region: NDArray[np.int32],
    gamma: NDArray[np.float64],
    names: Mapping[int, str],
    *,
    n_inverted: int,
    reference_ml: Mapping[str, float] | None = None,
    mesher: str = "",
    seconds: float = 0.0,
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
    reference_ml : mapping of str to float, optional
        Structure name -> volume its surface encloses (mL), for ``volume_error_pct``.
    mesher : str, default ""
        Name of the mesher, recorded as is.
    seconds : float, default 0.0
        Meshing wall time (s), recorded as is.

    Returns
    -------
    MeshQuality
        Counts, gamma and dihedral-angle extremes (degrees), region volumes (mL).
    """
    volumes = tet_volumes(points, cells)
    dihedral = dihedral_angles_deg(points, cells)
    region_ml = {name: float(volumes[region == rid].sum() / 1000.0) for rid, name in names.items()}
    errors = {
        name: 100.0 * (region_ml[name] - ref) / ref
        for name, ref in (reference_ml or {}).items()
        if name in region_ml and ref > 0
    }
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
        region_volume_ml=region_ml,
        volume_error_pct=errors,
        mesher=mesher,
        seconds=float(seconds),
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


def tet_gamma(points: NDArray[np.float64], cells: NDArray[np.int64]) -> NDArray[np.float64]:
    """Gamma quality, 3 r_in / R_circ (1 for the regular tetrahedron, 0 when flat).

    The same figure as gmsh's ``"gamma"`` element quality; ``r_in = 3 V / S`` (S the total
    face area) and ``R_circ`` from the edge vectors ``u, v, w`` at one vertex:
    ``| |u|^2 (v x w) + |v|^2 (w x u) + |w|^2 (u x v) | / (12 V)``.

    Parameters
    ----------
    points : numpy.ndarray, shape (n, 3)
        Node coordinates, mm.
    cells : numpy.ndarray, shape (m, 4)
        Tetrahedra as node indices.
    """
    p = points[cells]
    u, v, w = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]
    six_v = np.abs(np.einsum("ij,ij->i", u, np.cross(v, w)))
    twice_area = (
        np.linalg.norm(np.cross(u, v), axis=1)
        + np.linalg.norm(np.cross(v, w), axis=1)
        + np.linalg.norm(np.cross(w, u), axis=1)
        + np.linalg.norm(np.cross(v - u, w - u), axis=1)
    )
    r_in = six_v / twice_area  # 3 V / S
    lift = (
        np.einsum("ij,ij->i", u, u)[:, None] * np.cross(v, w)
        + np.einsum("ij,ij->i", v, v)[:, None] * np.cross(w, u)
        + np.einsum("ij,ij->i", w, w)[:, None] * np.cross(u, v)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        r_circ = np.linalg.norm(lift, axis=1) / (2.0 * six_v)
        gamma = np.where(six_v > 0, 3.0 * r_in / r_circ, 0.0)
    return np.nan_to_num(gamma, nan=0.0)


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
