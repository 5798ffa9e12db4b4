"""Simulated intraoperative sensors: tracked-pointer swabs and surface-scan patches.

All functions return points in model space (LPS mm); a study then moves them by a known pose.
An optional per-vertex displacement (``displacement_mm``, e.g. from a biomechanical model) deforms
the surface before it is sampled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration.errors import RegistrationError
from registration.model import as_triangles

__all__ = [
    "SimulationError",
    "simulate_swabs",
    "simulate_scan",
    "add_noise",
    "add_outliers",
    "ANTERIOR_LPS",
]

#: Unit vector pointing anterior in LPS (towards a surgeon looking at a supine patient).
ANTERIOR_LPS = np.array([0.0, -1.0, 0.0])


class SimulationError(RegistrationError):
    """Invalid sensor-simulation parameters."""


def _deformed(mesh: Any, displacement_mm: ArrayLike | None) -> tuple[NDArray, NDArray]:
    v, f = as_triangles(mesh)
    if displacement_mm is not None:
        d = np.asarray(displacement_mm, dtype=np.float64)
        if d.shape != v.shape:
            raise SimulationError(
                f"displacement_mm must have one row per vertex {v.shape}, got {d.shape}"
            )
        v = v + d
    return v, f


def _check_common(n_points: int, coverage: float) -> None:
    if int(n_points) < 1:
        raise SimulationError(f"n_points must be >= 1, got {n_points}")
    if not 0.0 < coverage <= 1.0:
        raise SimulationError(f"coverage must be in (0, 1], got {coverage}")


def _sample_faces(
    v: NDArray, f: NDArray, faces: NDArray, n: int, rng: np.random.Generator
) -> NDArray:
    a, b, c = v[f[faces, 0]], v[f[faces, 1]], v[f[faces, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    pick = rng.choice(len(faces), size=n, p=area / area.sum())
    u, w = rng.random(n), rng.random(n)
    flip = u + w > 1
    u[flip], w[flip] = 1 - u[flip], 1 - w[flip]
    return a[pick] + u[:, None] * (b[pick] - a[pick]) + w[:, None] * (c[pick] - a[pick])


def _random_view(rng: np.random.Generator, view: ArrayLike, spread_deg: float) -> NDArray:
    view = np.asarray(view, dtype=np.float64)
    view = view / np.linalg.norm(view)
    if spread_deg <= 0:
        return view
    axis = np.cross(view, rng.normal(size=3))
    axis /= np.linalg.norm(axis)
    ang = np.deg2rad(spread_deg) * np.sqrt(rng.random())
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(axis * ang).apply(view)


def simulate_swabs(
    mesh: Any,
    *,
    n_points: int,
    coverage: float,
    seed: int | np.random.Generator = 0,
    view_direction: ArrayLike = ANTERIOR_LPS,
    view_spread_deg: float = 30.0,
    n_strokes: int = 10,
    displacement_mm: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Tracked-pointer swabs: continuous strokes over the visible side of the organ.

    A patch of ``coverage`` of the surface area is grown (by distance) from the surface point
    most exposed towards the viewer, among faces facing the viewer; ``n_strokes`` parallel
    strokes (intersections of the patch with evenly spaced planes) sweep it, and ``n_points`` are
    drawn along them.

    Parameters
    ----------
    mesh : pyvista.PolyData, open3d TriangleMesh, SurfaceModel or (vertices, faces)
        Organ surface in model space, mm.
    n_points : int, keyword-only
        Points returned.
    coverage : float, keyword-only
        Fraction of the surface area swabbed, in (0, 1].
    seed : int or numpy.random.Generator, keyword-only
        Random source.
    view_direction : array_like, shape (3,)
        Direction from the organ towards the surgeon (default anterior, LPS ``(0, -1, 0)``).
    view_spread_deg : float
        The actual view is drawn within this angle of ``view_direction``, degrees.
    n_strokes : int
        Number of strokes.
    displacement_mm : array_like, shape (V, 3), optional
        Per-vertex displacement applied before sampling, mm.

    Returns
    -------
    numpy.ndarray, shape (n_points, 3)
        Noise-free points on the (deformed) surface, model space, mm.
    """
    _check_common(n_points, coverage)
    rng = np.random.default_rng(seed)
    v, f = _deformed(mesh, displacement_mm)
    view = _random_view(rng, view_direction, view_spread_deg)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    fn = np.cross(b - a, c - a)
    area = 0.5 * np.linalg.norm(fn, axis=1)
    centre = (a + b + c) / 3.0
    centroid = (area[:, None] * centre).sum(axis=0) / area.sum()
    if np.einsum("ij,ij->i", a - centroid, np.cross(b - centroid, c - centroid)).sum() < 0:
        fn = -fn
    facing = (fn @ view) > 0
    proj = centre @ view
    seed_pt = centre[np.argmax(np.where(facing, proj, -np.inf))]
    dist = np.linalg.norm(centre - seed_pt, axis=1) + np.where(facing, 0.0, 1e9)
    order = np.argsort(dist, kind="stable")
    n_faces = int(np.searchsorted(np.cumsum(area[order]), coverage * area.sum()) + 1)
    region = order[: min(n_faces, len(order))]
    dense = _sample_faces(v, f, region, max(20 * n_points, 20000), rng)
    # Strokes: the patch cut by n_strokes parallel planes normal to u (u perpendicular to view).
    u = np.cross(view, rng.normal(size=3))
    u /= np.linalg.norm(u)
    s = dense @ u
    lo, hi = np.percentile(s, [2, 98])
    spacing = (hi - lo) / max(n_strokes, 1)
    centres = lo + spacing * (np.arange(n_strokes) + 0.5)
    off = np.abs(s[:, None] - centres[None, :]).min(axis=1)
    band = max(0.02 * spacing, 0.2)
    on = dense[off < band]
    if len(on) < n_points:
        on = dense[np.argsort(off)[: max(n_points, len(on))]]
    return on[rng.choice(len(on), size=n_points, replace=len(on) < n_points)]


def simulate_scan(
    mesh: Any,
    *,
    n_points: int,
    coverage: float,
    camera_position_mm: ArrayLike | None = None,
    seed: int | np.random.Generator = 0,
    view_direction: ArrayLike = ANTERIOR_LPS,
    view_spread_deg: float = 30.0,
    distance_mm: float = 300.0,
    displacement_mm: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Surface-scan patch seen from a camera, with self-occlusion (ray casting).

    Rays from the camera hit the first surface they meet (Open3D ``RaycastingScene``), so hidden
    parts are never seen. The patch keeps the visible hits nearest to the optical axis until their
    area reaches ``coverage`` of the surface (or all that is visible).

    Parameters
    ----------
    mesh : pyvista.PolyData, open3d TriangleMesh, SurfaceModel or (vertices, faces)
        Organ surface in model space, mm.
    n_points : int, keyword-only
        Points returned.
    coverage : float, keyword-only
        Fraction of the surface area in the patch, in (0, 1].
    camera_position_mm : array_like, shape (3,), optional
        Camera centre, mm; default ``distance_mm`` from the centroid along a view drawn within
        ``view_spread_deg`` of ``view_direction``. The camera looks at the centroid.
    seed : int or numpy.random.Generator, keyword-only
        Random source.
    distance_mm : float
        Camera distance when ``camera_position_mm`` is not given, mm.
    displacement_mm : array_like, shape (V, 3), optional
        Per-vertex displacement applied before sampling, mm.

    Returns
    -------
    numpy.ndarray, shape (n_points, 3)
        Noise-free visible surface points, model space, mm.
    """
    import open3d as o3d

    _check_common(n_points, coverage)
    rng = np.random.default_rng(seed)
    v, f = _deformed(mesh, displacement_mm)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    centroid = (area[:, None] * (a + b + c) / 3.0).sum(axis=0) / area.sum()
    if camera_position_mm is None:
        cam = centroid + distance_mm * _random_view(rng, view_direction, view_spread_deg)
    else:
        cam = np.asarray(camera_position_mm, dtype=np.float64)
        if cam.shape != (3,) or not np.all(np.isfinite(cam)):
            raise SimulationError(f"camera_position_mm must be 3 finite numbers, got {cam}")
    axis = centroid - cam
    dist = float(np.linalg.norm(axis))
    axis /= dist
    half = np.arcsin(min(0.99, np.max(np.linalg.norm(v - centroid, axis=1)) / dist))
    e1 = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    n_side = 400
    g = np.tan(half) * np.linspace(-1.0, 1.0, n_side)
    gx, gy = np.meshgrid(g, g)
    dirs = axis + gx.ravel()[:, None] * e1 + gy.ravel()[:, None] * e2
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(v.astype(np.float32), f.astype(np.uint32))
    rays = np.hstack([np.broadcast_to(cam, dirs.shape), dirs]).astype(np.float32)
    ans = scene.cast_rays(o3d.core.Tensor(rays))
    t_hit = ans["t_hit"].numpy().astype(np.float64)
    hit = np.isfinite(t_hit)
    if not hit.any():
        raise SimulationError(f"camera at {cam.tolist()} sees no part of the surface")
    nrm = ans["primitive_normals"].numpy()[hit].astype(np.float64)
    d_hit = dirs[hit]
    pts = cam + t_hit[hit, None] * d_hit
    cos = np.clip(np.abs(np.einsum("ij,ij->i", nrm, d_hit)), 0.1, 1.0)
    pixel = (g[1] - g[0]) ** 2
    hit_area = pixel * t_hit[hit] ** 2 / cos * (d_hit @ axis) ** -3
    ang = np.arccos(np.clip(d_hit @ axis, -1.0, 1.0))
    order = np.argsort(ang, kind="stable")
    k = int(np.searchsorted(np.cumsum(hit_area[order]), coverage * area.sum()) + 1)
    patch = pts[order[: min(k, len(order))]]
    jitter = rng.normal(scale=0.0, size=patch.shape)
    pick = rng.choice(len(patch), size=n_points, replace=len(patch) < n_points)
    return patch[pick] + jitter[pick]


def add_noise(
    points: ArrayLike,
    *,
    noise_mm: float | ArrayLike,
    seed: int | np.random.Generator = 0,
    axes: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Add zero-mean Gaussian localisation noise.

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Points, mm.
    noise_mm : float or array_like, shape (3,)
        Standard deviation per axis, mm: a scalar is isotropic; three values are anisotropic
        along ``axes``.
    seed : int or numpy.random.Generator, keyword-only
        Random source.
    axes : array_like, shape (3, 3), optional
        Rows are the orthonormal noise axes (default the coordinate axes), e.g. a scanner's
        viewing ray as the third axis.

    Returns
    -------
    numpy.ndarray, shape (N, 3)
    """
    p = np.asarray(points, dtype=np.float64)
    rng = np.random.default_rng(seed)
    sd = np.broadcast_to(np.asarray(noise_mm, dtype=np.float64), (3,))
    if np.any(sd < 0) or not np.all(np.isfinite(sd)):
        raise SimulationError(f"noise_mm must be finite and >= 0, got {noise_mm!r}")
    e = rng.normal(size=p.shape) * sd
    if axes is not None:
        A = np.asarray(axes, dtype=np.float64)
        if A.shape != (3, 3) or not np.allclose(A @ A.T, np.eye(3), atol=1e-6):
            raise SimulationError("axes must be a 3x3 matrix with orthonormal rows")
        e = e @ A
    return p + e


def add_outliers(
    points: ArrayLike,
    *,
    fraction: float,
    seed: int | np.random.Generator = 0,
    min_mm: float = 10.0,
    max_mm: float = 50.0,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Replace a fraction of points by gross outliers.

    Each chosen point is moved by ``min_mm`` to ``max_mm`` in a uniformly random direction.

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Points, mm.
    fraction : float, keyword-only
        Share of the points replaced, in [0, 1].
    seed : int or numpy.random.Generator, keyword-only
        Random stream.
    min_mm, max_mm : float, keyword-only
        Range of the displacement of an outlier, mm.

    Returns
    -------
    points : numpy.ndarray, shape (N, 3)
    is_outlier : numpy.ndarray of bool, shape (N,)
    """
    p = np.array(points, dtype=np.float64)
    if not 0.0 <= fraction <= 1.0:
        raise SimulationError(f"fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    k = int(round(fraction * len(p)))
    idx = rng.choice(len(p), size=k, replace=False)
    d = rng.normal(size=(k, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    p[idx] += d * rng.uniform(min_mm, max_mm, size=(k, 1))
    mask = np.zeros(len(p), dtype=bool)
    mask[idx] = True
    return p, mask
