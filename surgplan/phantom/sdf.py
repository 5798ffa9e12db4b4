"""Signed-distance primitives in millimetres (negative inside), evaluated on broadcastable arrays.

Every function takes coordinate arrays ``x, y, z`` (LPS millimetres) that broadcast against each
other: either three ``(N,)`` point arrays, or the ``(nz, 1, 1)``, ``(1, ny, 1)``, ``(1, 1, nx)``
axes of a voxel grid (:class:`Grid`). The returned values are exact or close approximations of
the Euclidean signed distance near the surface, which is all the anti-aliasing needs.

References
----------
The ellipsoid approximation and the polynomial smooth minimum are those of I. Quilez,
"distance functions" (iquilezles.org/articles/distfunctions, /ellipsoids, /smin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]


@dataclass(frozen=True)
class Grid:
    """A regular voxel grid in LPS millimetres with identity direction.

    Parameters
    ----------
    origin_mm
        Centre of voxel ``(0, 0, 0)``, ``(x, y, z)`` in mm.
    spacing_mm
        Voxel size ``(dx, dy, dz)`` in mm.
    size
        Number of voxels ``(nx, ny, nz)``.
    """

    origin_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    size: tuple[int, int, int]

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Array shape in numpy / SimpleITK order ``(nz, ny, nx)``."""
        return (self.size[2], self.size[1], self.size[0])

    def axes(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Broadcastable coordinate axes ``x (1,1,nx)``, ``y (1,ny,1)``, ``z (nz,1,1)``."""
        x = self.axis(0).reshape(1, 1, -1)
        y = self.axis(1).reshape(1, -1, 1)
        z = self.axis(2).reshape(-1, 1, 1)
        return x, y, z

    def axis(self, dim: int) -> FloatArray:
        """Voxel-centre coordinates (mm, float64) along dimension ``dim`` (0 = x, 1 = y, 2 = z)."""
        n = self.size[dim]
        return self.origin_mm[dim] + self.spacing_mm[dim] * np.arange(n, dtype=np.float64)

    def box(
        self, low_mm: npt.ArrayLike, high_mm: npt.ArrayLike
    ) -> tuple[slice, slice, slice] | None:
        """Index slices ``(z, y, x)`` of the voxels inside an axis-aligned box, or ``None``.

        Parameters
        ----------
        low_mm, high_mm
            Opposite corners ``(x, y, z)`` of the box in mm.
        """
        slices = []
        for dim in (2, 1, 0):
            lo = (float(np.asarray(low_mm)[dim]) - self.origin_mm[dim]) / self.spacing_mm[dim]
            hi = (float(np.asarray(high_mm)[dim]) - self.origin_mm[dim]) / self.spacing_mm[dim]
            start = max(int(np.floor(lo)), 0)
            stop = min(int(np.ceil(hi)) + 1, self.size[dim])
            if stop <= start:
                return None
            slices.append(slice(start, stop))
        return slices[0], slices[1], slices[2]


def ellipsoid(
    x: FloatArray,
    y: FloatArray,
    z: FloatArray,
    centre: npt.ArrayLike,
    radii: npt.ArrayLike,
) -> FloatArray:
    """Approximate signed distance (mm) to an axis-aligned ellipsoid.

    Uses ``d = k0 (k0 - 1) / k1`` with ``k0 = |p / r|`` and ``k1 = |p / r^2|`` (Quilez), exact
    on the surface and for spheres, a close bound elsewhere.
    """
    c = np.asarray(centre, dtype=np.float64)
    r = np.asarray(radii, dtype=np.float64)
    qx, qy, qz = (x - c[0]) / r[0], (y - c[1]) / r[1], (z - c[2]) / r[2]
    k0 = np.sqrt(qx * qx + qy * qy + qz * qz)
    k1 = np.sqrt((qx / r[0]) ** 2 + (qy / r[1]) ** 2 + (qz / r[2]) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def ellipse_2d(
    x: FloatArray, y: FloatArray, centre_xy: npt.ArrayLike, radii_xy: npt.ArrayLike
) -> FloatArray:
    """Approximate signed distance (mm) to an infinite elliptic cylinder along z."""
    c = np.asarray(centre_xy, dtype=np.float64)
    r = np.asarray(radii_xy, dtype=np.float64)
    qx, qy = (x - c[0]) / r[0], (y - c[1]) / r[1]
    k0 = np.sqrt(qx * qx + qy * qy)
    k1 = np.sqrt((qx / r[0]) ** 2 + (qy / r[1]) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def round_cone(
    x: FloatArray,
    y: FloatArray,
    z: FloatArray,
    start: npt.ArrayLike,
    end: npt.ArrayLike,
    radius_start_mm: float,
    radius_end_mm: float,
) -> FloatArray:
    """Approximate signed distance (mm) to a tapered capsule from ``start`` to ``end``.

    The radius is interpolated linearly along the axis; the error of ignoring the cone's slope
    is negligible for the slow tapers of vessels (a few percent of the radius).
    """
    a = np.asarray(start, dtype=np.float64)
    b = np.asarray(end, dtype=np.float64)
    ab = b - a
    length2 = max(float(ab @ ab), 1e-12)
    px, py, pz = x - a[0], y - a[1], z - a[2]
    t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / length2, 0.0, 1.0)
    dx, dy, dz = px - t * ab[0], py - t * ab[1], pz - t * ab[2]
    return np.sqrt(dx * dx + dy * dy + dz * dz) - (
        radius_start_mm + t * (radius_end_mm - radius_start_mm)
    )


def slab_z(z: FloatArray, low_mm: float, high_mm: float) -> FloatArray:
    """Signed distance (mm) to the slab ``low_mm <= z <= high_mm``."""
    centre = 0.5 * (low_mm + high_mm)
    return np.abs(z - centre) - 0.5 * (high_mm - low_mm)


def smooth_union(a: FloatArray, b: FloatArray, k_mm: float) -> FloatArray:
    """Polynomial smooth minimum of two distances with blend width ``k_mm`` (Quilez)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k_mm, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k_mm * h * (1.0 - h)


def intersect(a: FloatArray, b: FloatArray) -> FloatArray:
    """Signed distance of the intersection of two shapes (exact outside, bound inside)."""
    return np.maximum(a, b)


def subtract(a: FloatArray, b: FloatArray, gap_mm: float = 0.0) -> FloatArray:
    """Shape ``a`` minus shape ``b`` grown by ``gap_mm``, leaving at least that gap between them."""
    return np.maximum(a, gap_mm - b)


@dataclass(frozen=True)
class FourierNoise:
    """A smooth random scalar field: a sum of plane waves with random directions and phases.

    ``n(p) = sum_k a_k sin(w_k . p + phi_k)``, a band-limited field whose spatial wavelengths
    lie between the limits given to :meth:`random`; with a small amplitude it displaces a
    surface smoothly along its normal when added to a signed distance.
    """

    wave_vectors: np.ndarray
    phases: np.ndarray
    amplitudes_mm: np.ndarray

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        *,
        n_waves: int,
        wavelength_mm: tuple[float, float],
        rms_mm: float,
    ) -> FourierNoise:
        """Draw a field with ``n_waves`` waves and root-mean-square amplitude ``rms_mm``.

        Parameters
        ----------
        rng
            Source of randomness (the only one used).
        n_waves
            Number of plane waves.
        wavelength_mm
            Shortest and longest wavelength in mm.
        rms_mm
            Root-mean-square value of the field in mm.
        """
        directions = rng.normal(size=(n_waves, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        wavelengths = rng.uniform(wavelength_mm[0], wavelength_mm[1], size=n_waves)
        wave_vectors = directions * (2.0 * np.pi / wavelengths)[:, None]
        phases = rng.uniform(0.0, 2.0 * np.pi, size=n_waves)
        weights = rng.uniform(0.5, 1.0, size=n_waves)
        # The mean of sin^2 is 1/2, so the field's variance is sum(a_k^2) / 2.
        amplitudes = weights * rms_mm * np.sqrt(2.0 / np.sum(weights**2))
        return cls(wave_vectors, phases, amplitudes)

    def __call__(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Evaluate the field (mm) at broadcastable coordinates."""
        total: FloatArray | float = 0.0
        for w, phi, amp in zip(self.wave_vectors, self.phases, self.amplitudes_mm, strict=True):
            total = total + amp * np.sin(x * w[0] + y * w[1] + z * w[2] + phi)
        return np.asarray(total)


@dataclass(frozen=True)
class Segment:
    """A tapered tube segment (vessel or bone) in LPS millimetres.

    Parameters
    ----------
    start_mm, end_mm
        Axis end points ``(x, y, z)`` in mm.
    radius_start_mm, radius_end_mm
        Radius at each end in mm.
    generation
        Branching generation (0 for a root segment); 0 for non-vessel tubes.
    """

    start_mm: tuple[float, float, float]
    end_mm: tuple[float, float, float]
    radius_start_mm: float
    radius_end_mm: float
    generation: int = 0


def segments_on_grid(grid: Grid, segments: list[Segment], *, pad_mm: float = 4.0) -> FloatArray:
    """Signed distance (mm) to the union of tube segments, evaluated on a grid.

    Each segment is evaluated only inside its bounding box grown by ``pad_mm``; farther voxels
    hold ``+pad_mm`` or more, which is all that painting and thresholding need.
    """
    out = np.full(grid.shape_zyx, 1.0e3)
    x, y, z = grid.axes()
    for seg in segments:
        a = np.asarray(seg.start_mm)
        b = np.asarray(seg.end_mm)
        reach = max(seg.radius_start_mm, seg.radius_end_mm) + pad_mm
        box = grid.box(np.minimum(a, b) - reach, np.maximum(a, b) + reach)
        if box is None:
            continue
        zs, ys, xs = box
        d = round_cone(
            x[:, :, xs], y[:, ys, :], z[zs, :, :], a, b, seg.radius_start_mm, seg.radius_end_mm
        )
        np.minimum(out[box], d, out=out[box])
    return out
