"""A synthetic organ with a known smooth deformation basis (tests, examples, benchmarks).

The organ is an ellipsoid (semi-axes 40 x 30 x 20 mm: 80 x 60 x 40 mm) with two off-axis
bumps, so that it has no mirror symmetry; the basis is low-order polynomial displacement
fields of the normalised coordinates, each scaled to a 1 mm peak on the surface.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration import SurfaceModel, prepare_surface
from surgplan.twin.basis import DeformationBasis

__all__ = [
    "synthetic_organ",
    "polynomial_modes",
    "synthetic_basis",
    "random_pose",
    "posed_swabs",
    "smooth_random_modes",
    "SEMI_AXES_MM",
]

#: Semi-axes of the synthetic organ, mm.
SEMI_AXES_MM = (40.0, 30.0, 20.0)
#: Bumps ``(centre (3), height mm, width mm)`` that break the mirror symmetry.
_BUMPS = (((25.0, -20.0, 10.0), 8.0, 12.0), ((-22.0, 12.0, -10.0), 5.0, 10.0))


def synthetic_organ(
    subdivisions: int = 4, *, semi_axes_mm: ArrayLike = SEMI_AXES_MM
) -> SurfaceModel:
    """The prepared surface of the bumpy ellipsoid (icosphere; 4 subdivisions: 2,562 vertices)."""
    import pyvista as pv

    s = pv.Icosphere(radius=1.0, nsub=subdivisions)
    v = np.asarray(s.points, np.float64) * np.asarray(semi_axes_mm, np.float64)
    faces = np.asarray(s.faces).reshape(-1, 4)[:, 1:]
    n = v / np.asarray(semi_axes_mm, np.float64) ** 2  # ellipsoid normal direction
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    for centre, height, width in _BUMPS:
        d2 = np.sum((v - np.asarray(centre)) ** 2, axis=1)
        v = v + n * (height * np.exp(-d2 / (2.0 * width**2)))[:, None]
    return prepare_surface((v, faces), name="synthetic organ")


def polynomial_modes(points_mm: ArrayLike, scale_mm: ArrayLike = SEMI_AXES_MM) -> NDArray:
    """Six smooth displacement fields (k, N, 3) of normalised coordinates, unscaled (mm)."""
    p = np.asarray(points_mm, np.float64) / np.asarray(scale_mm, np.float64)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    zero = np.zeros_like(x)
    fields = [
        (zero, zero, x * x),  # sag along z
        (zero, x * x, zero),  # sag along y
        (-y * z, x * z, zero),  # twist about z
        (x * y, zero, zero),  # shear
        (zero, zero, x * y),  # saddle
        (x, -0.5 * y, zero),  # stretch
    ]
    return np.array([np.stack(f, axis=1) for f in fields])


def synthetic_basis(
    model: SurfaceModel,
    *,
    targets: dict[str, ArrayLike] | None = None,
    prior_std: float = 4.0,
    discrepancy_mm: float = 0.0,
    stiffness_spread_mm: float = 0.0,
) -> DeformationBasis:
    """The polynomial basis on ``model`` (each mode 1 mm peak on the surface) and targets."""
    targets = targets or {"tumour": (10.0, -5.0, 3.0), "vessel": (-15.0, 8.0, -5.0)}
    modes = polynomial_modes(model.vertices)
    peak = np.abs(modes).max(axis=(1, 2))
    t_pts = np.array([np.asarray(t, np.float64) for t in targets.values()])
    return DeformationBasis(
        vertices_mm=model.vertices,
        faces=model.faces,
        surface_modes=modes / peak[:, None, None],
        prior_std=np.full(len(modes), prior_std),
        target_names=tuple(targets),
        target_points_mm=t_pts,
        target_modes=polynomial_modes(t_pts) / peak[:, None, None],
        discrepancy_mm=discrepancy_mm,
        stiffness_spread_mm=stiffness_spread_mm,
        meta={"source": "surgplan.twin.synthetic"},
    )


def random_pose(
    rng: np.random.Generator, *, rotation_deg: float = 30.0, translation_mm: float = 200.0
) -> NDArray[np.float64]:
    """A random ``T_tracker_model``: rotation about a random axis, translation in mm."""
    from scipy.spatial.transform import Rotation

    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(np.radians(rotation_deg) * axis).as_matrix()
    T[:3, 3] = rng.normal(size=3) * translation_mm / np.sqrt(3.0)
    return T


def posed_swabs(
    model: SurfaceModel,
    displacement_mm: ArrayLike,
    T_tracker_model: NDArray[np.float64],
    *,
    n_points: int,
    noise_mm: float,
    seed: int,
    coverage: float = 0.3,
) -> NDArray[np.float64]:
    """Noisy swab points on the deformed organ, in tracker space (mm)."""
    from registration import add_noise, apply_transform, simulate_swabs

    v = model.vertices + np.asarray(displacement_mm, np.float64)
    p = simulate_swabs((v, model.faces), n_points=n_points, coverage=coverage, seed=seed)
    return add_noise(apply_transform(T_tracker_model, p), noise_mm=noise_mm, seed=seed + 7919)


def smooth_random_modes(
    points_mm: ArrayLike, n_modes: int, *, wavelength_mm: float = 150.0, seed: int = 0
) -> NDArray[np.float64]:
    """``n_modes`` smooth random fields (k, N, 3), each with a 1 mm peak on ``points_mm``.

    Mode ``m`` is ``d_m sin(2 pi k_m . x / wavelength + phi_m)`` with a random unit direction
    ``d_m``, a random wave vector ``k_m`` (``|k_m|`` in [0.3, 1]) and phase: smooth on the
    organ's scale, for timing and tests on a real surface without an FE model.
    """
    p = np.asarray(points_mm, np.float64)
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n_modes, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    k = rng.normal(size=(n_modes, 3))
    k *= (rng.uniform(0.3, 1.0, size=n_modes) / np.linalg.norm(k, axis=1))[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=n_modes)
    s = np.sin(2 * np.pi * (p - p.mean(axis=0)) @ k.T / wavelength_mm + phase)  # (N, k)
    modes = s.T[:, :, None] * d[:, None, :]
    return modes / np.abs(modes).max(axis=(1, 2), keepdims=True)
