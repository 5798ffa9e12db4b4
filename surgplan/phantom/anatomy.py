"""The phantom's anatomy as signed-distance functions in LPS millimetres.

The layout is fixed (a small adult abdomen, liver in the right upper quadrant); the seed only
changes the smooth random perturbations of the liver and tumour surfaces and, in
:mod:`surgplan.phantom.vessels`, the branching of the vessel trees. LPS: ``x`` grows to the
patient's left, ``y`` to posterior, ``z`` to superior, so the liver sits at negative ``x`` and
negative (anterior) ``y``.

Organs of similar attenuation are kept apart by fat: the liver is built as a blend of smooth
ellipsoids and then carved away from every neighbour grown by a few millimetres
(:func:`~surgplan.phantom.sdf.subtract`), so its surface follows the diaphragm, the kidney, the
vena cava and the stomach as a real liver does, with a fat gap a segmentation can see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgplan.phantom.sdf import (
    FloatArray,
    FourierNoise,
    Segment,
    ellipse_2d,
    ellipsoid,
    intersect,
    round_cone,
    slab_z,
    smooth_union,
    subtract,
)

# --- body wall (elliptic cylinder along z) -------------------------------------------------
BODY_RADII_MM = (142.0, 112.0)
"""Semi-axes (x, y) of the body outline, mm; centred on x = y = 0."""
SUBCUTANEOUS_FAT_MM = 12.0
"""Depth of the inner edge of the subcutaneous fat below the skin, mm."""
CAVITY_DEPTH_MM = 23.0
"""Depth of the abdominal cavity below the skin (fat + 11 mm muscle wall), mm."""
RIB_DEPTH_MM = 17.5
"""Depth of the rib centre lines below the skin (inside the muscle wall), mm."""

# --- diaphragm and lung bases ----------------------------------------------------------------
DOME_RIGHT = (-55.0, 0.0, -728.0)
"""Apex (x, y, z) of the right hemidiaphragm's abdominal surface, mm."""
DOME_LEFT = (50.0, 0.0, -740.0)
"""Apex (x, y, z) of the left hemidiaphragm's abdominal surface, mm."""
DOME_CURVATURE_RADIUS_MM = 150.0
DOME_LOWEST_Z_MM = -800.0
DIAPHRAGM_MM = 5.0

# --- retroperitoneum -------------------------------------------------------------------------
AORTA_CENTRE = (14.0, -4.0)
AORTA_RADIUS_MM = 11.0
IVC_CENTRE = (-25.0, -4.0)
IVC_RADII_MM = (13.0, 9.0)
VERTEBRA_CENTRE = (0.0, 30.0)
VERTEBRA_RADII_MM = (20.0, 16.0)
VERTEBRA_HEIGHT_MM = 26.0
DISC_HEIGHT_MM = 8.0
FIRST_DISC_Z_MM = -889.0
CANAL_CENTRE = (0.0, 56.0)
CANAL_RADIUS_MM = 9.0
PSOAS = tuple(
    Segment((side * 33.0, 31.0, -765.0), (side * 41.0, 33.0, -935.0), 6.0, 17.0)
    for side in (-1.0, 1.0)
)
"""Right and left psoas muscles as tapered tubes widening downwards."""
KIDNEY_RIGHT = ((-74.0, 32.0, -852.0), (21.0, 17.0, 52.0))
KIDNEY_LEFT = ((74.0, 34.0, -836.0), (21.0, 17.0, 52.0))
SPLEEN = ((76.0, 25.0, -765.0), (17.0, 38.0, 40.0))
STOMACH = ((42.0, -22.0, -790.0), (27.0, 27.0, 38.0))
STOMACH_WALL_MM = 4.0
COLON_PATH = (
    (-85.0, -25.0, -905.0),
    (-82.0, -35.0, -872.0),
    (-40.0, -58.0, -878.0),
    (20.0, -58.0, -882.0),
    (70.0, -35.0, -866.0),
    (85.0, -20.0, -905.0),
)
COLON_RADIUS_MM = 15.0
COLON_WALL_MM = 3.0

# --- liver -------------------------------------------------------------------------------------
LIVER_LOBES = (
    # (centre xyz, radii xyz) in mm: right lobe, left lobe, central bridge, inferior right tip
    ((-62.0, -5.0, -792.0), (64.0, 76.0, 72.0)),
    ((18.0, -46.0, -772.0), (74.0, 38.0, 40.0)),
    ((-28.0, -26.0, -784.0), (54.0, 54.0, 54.0)),
    ((-72.0, -22.0, -842.0), (36.0, 42.0, 42.0)),
)
LIVER_BLEND_MM = 18.0
LIVER_PERTURBATION_RMS_MM = 3.5
LIVER_GAP_MM = 5.0
"""Minimum fat gap between the liver and its neighbours (except its own vessels), mm."""

# --- tumour ------------------------------------------------------------------------------------
TUMOUR_CENTRE = (-85.0, 15.0, -770.0)
TUMOUR_RADIUS_MM = 19.0
TUMOUR_PERTURBATION_RMS_MM = 1.5


def _above_dome(x: FloatArray, y: FloatArray, z: FloatArray, lift_mm: float) -> FloatArray:
    """Signed distance to the region above the diaphragm's abdominal surface raised by ``lift``.

    The surface is the upper envelope of two paraboloid domes (radius of curvature
    :data:`DOME_CURVATURE_RADIUS_MM`), clamped at :data:`DOME_LOWEST_Z_MM`.
    """
    heights = []
    slopes = []
    for apex in (DOME_RIGHT, DOME_LEFT):
        dx, dy = x - apex[0], y - apex[1]
        heights.append(apex[2] - (dx * dx + dy * dy) / (2.0 * DOME_CURVATURE_RADIUS_MM))
        slopes.append(np.sqrt(dx * dx + dy * dy) / DOME_CURVATURE_RADIUS_MM)
    right_wins = heights[0] >= heights[1]
    height = np.maximum(np.where(right_wins, heights[0], heights[1]), DOME_LOWEST_Z_MM)
    slope = np.where(right_wins, slopes[0], slopes[1])
    # Distance to a surface z = h(x, y) is about (h - z) / sqrt(1 + |grad h|^2).
    return (height + lift_mm - z) / np.sqrt(1.0 + slope * slope)


@dataclass(frozen=True)
class Anatomy:
    """Signed-distance functions (mm, negative inside) of every structure of the phantom.

    Build it with :meth:`from_seed`. Every method takes broadcastable LPS coordinate arrays in
    mm and returns the signed distance in mm.
    """

    seed: int
    liver_noise: FourierNoise
    tumour_noise: FourierNoise

    @classmethod
    def from_seed(cls, seed: int) -> Anatomy:
        """Draw the random surface perturbations from ``seed`` (deterministic)."""
        rng = np.random.default_rng([seed, 0])
        liver_noise = FourierNoise.random(
            rng, n_waves=14, wavelength_mm=(70.0, 180.0), rms_mm=LIVER_PERTURBATION_RMS_MM
        )
        tumour_noise = FourierNoise.random(
            rng, n_waves=8, wavelength_mm=(25.0, 60.0), rms_mm=TUMOUR_PERTURBATION_RMS_MM
        )
        return cls(seed=seed, liver_noise=liver_noise, tumour_noise=tumour_noise)

    # --- body -------------------------------------------------------------------------------
    def body(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """The whole body (skin outline)."""
        return ellipse_2d(x, y, (0.0, 0.0), BODY_RADII_MM) + 0.0 * z

    def muscle_wall(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Everything deeper than the subcutaneous fat (muscle wall and its contents)."""
        return self.body(x, y, z) + SUBCUTANEOUS_FAT_MM

    def cavity(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """The abdominal and thoracic cavity inside the muscle wall."""
        return self.body(x, y, z) + CAVITY_DEPTH_MM

    def diaphragm(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """The diaphragm and everything above it inside the cavity."""
        return intersect(self.cavity(x, y, z), _above_dome(x, y, z, 0.0))

    def lungs(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Both lung bases: above the diaphragm, inside the cavity, outside the mediastinum."""
        mediastinum = ellipse_2d(x, y, (0.0, -5.0), (30.0, 70.0))
        above = _above_dome(x, y, z, DIAPHRAGM_MM)
        return subtract(intersect(self.cavity(x, y, z) + 2.0, above), mediastinum)

    # --- retroperitoneum ----------------------------------------------------------------------
    def aorta(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Abdominal aorta, a straight vertical tube left-anterior of the spine."""
        return ellipse_2d(x, y, AORTA_CENTRE, (AORTA_RADIUS_MM,) * 2) + 0.0 * z

    def ivc(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Inferior vena cava, a vertical elliptic tube right-anterior of the spine."""
        return ellipse_2d(x, y, IVC_CENTRE, IVC_RADII_MM) + 0.0 * z

    def _posterior_column(
        self, x: FloatArray, y: FloatArray, centre: tuple[float, float], radius_x_mm: float
    ) -> FloatArray:
        """A vertical column from ``centre`` to the back: the liver must stay in front of it."""
        back = BODY_RADII_MM[1]
        half = 0.5 * (back - centre[1])
        return ellipse_2d(x, y, (centre[0], centre[1] + half), (radius_x_mm, half))

    def vertebral_column(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Vertebral bodies and discs as one elliptic column."""
        return ellipse_2d(x, y, VERTEBRA_CENTRE, VERTEBRA_RADII_MM) + 0.0 * z

    def psoas(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Both psoas muscles, tapered tubes widening downwards beside the spine."""
        d = [
            round_cone(x, y, z, s.start_mm, s.end_mm, s.radius_start_mm, s.radius_end_mm)
            for s in PSOAS
        ]
        return np.minimum(d[0], d[1])

    def paraspinal(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Erector spinae muscles either side of the spinous processes."""
        right = ellipse_2d(x, y, (-32.0, 74.0), (22.0, 16.0))
        left = ellipse_2d(x, y, (32.0, 74.0), (22.0, 16.0))
        return np.minimum(right, left) + 0.0 * z

    def kidney_right(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Right kidney (lower than the left, under the liver)."""
        return ellipsoid(x, y, z, *KIDNEY_RIGHT)

    def kidney_left(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Left kidney."""
        return ellipsoid(x, y, z, *KIDNEY_LEFT)

    # --- intraperitoneal organs --------------------------------------------------------------
    def spleen(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Spleen, left upper quadrant, kept 5 mm from the left kidney and under the diaphragm."""
        shape = ellipsoid(x, y, z, *SPLEEN)
        shape = subtract(shape, self.kidney_left(x, y, z), 5.0)
        shape = subtract(shape, self.diaphragm(x, y, z), 2.0)
        return intersect(shape, self.cavity(x, y, z) + 3.0)

    def stomach(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Stomach (outer wall surface), between the left lobe and the spleen."""
        shape = ellipsoid(x, y, z, *STOMACH)
        shape = subtract(shape, self.spleen(x, y, z), 5.0)
        shape = subtract(shape, self.aorta(x, y, z), 5.0)
        shape = subtract(shape, self.diaphragm(x, y, z), 2.0)
        return intersect(shape, self.cavity(x, y, z) + 3.0)

    def colon(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Ascending, transverse and descending colon (outer wall surface)."""
        d = None
        for a, b in zip(COLON_PATH[:-1], COLON_PATH[1:], strict=True):
            part = round_cone(x, y, z, a, b, COLON_RADIUS_MM, COLON_RADIUS_MM)
            d = part if d is None else np.minimum(d, part)
        assert d is not None
        return d

    def liver(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Liver envelope: parenchyma with its tumour and intrahepatic vessels.

        A smooth union of four ellipsoids (right lobe, left lobe, central bridge and inferior
        right tip) displaced along its normal by a smooth random field (wavelengths 70-180 mm,
        :data:`LIVER_PERTURBATION_RMS_MM` rms), then carved :data:`LIVER_GAP_MM` away from the
        diaphragm, the body wall and every neighbouring organ. The vena cava and aorta are carved
        together with the space behind them, so the liver grooves around the cava from the front
        instead of enclosing it.
        """
        d = None
        for centre, radii in LIVER_LOBES:
            lobe = ellipsoid(x, y, z, centre, radii)
            d = lobe if d is None else smooth_union(d, lobe, LIVER_BLEND_MM)
        assert d is not None
        d = d + self.liver_noise(x, y, z)
        gap = LIVER_GAP_MM
        d = intersect(d, self.cavity(x, y, z) + gap)
        d = subtract(d, self.diaphragm(x, y, z), 2.0)
        ivc_groove = self._posterior_column(x, y, IVC_CENTRE, IVC_RADII_MM[0]) + 0.0 * z
        aorta_groove = self._posterior_column(x, y, AORTA_CENTRE, AORTA_RADIUS_MM) + 0.0 * z
        d = subtract(d, np.minimum(self.ivc(x, y, z), ivc_groove), 3.0)
        d = subtract(d, np.minimum(self.aorta(x, y, z), aorta_groove), gap)
        d = subtract(d, self.vertebral_column(x, y, z), gap)
        d = subtract(d, self.psoas(x, y, z), gap)
        d = subtract(d, self.paraspinal(x, y, z), gap)
        d = subtract(d, ellipse_2d(x, y, (0.0, 60.0), (44.0, 22.0)), gap)  # posterior elements
        d = subtract(d, self.kidney_right(x, y, z), gap + 1.0)
        d = subtract(d, self.stomach(x, y, z), gap)
        d = subtract(d, self.spleen(x, y, z), gap + 3.0)
        d = subtract(d, self.colon(x, y, z), gap + 3.0)
        return d

    def tumour(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Tumour: a sphere whose radius varies smoothly with direction (irregular, lobulated).

        ``d = |p - c| - (R + n(c + R u))`` with ``u`` the unit direction from the centre ``c``
        and ``n`` a smooth random field of :data:`TUMOUR_PERTURBATION_RMS_MM` rms.
        """
        c = TUMOUR_CENTRE
        dx, dy, dz = x - c[0], y - c[1], z - c[2]
        r = np.sqrt(dx * dx + dy * dy + dz * dz)
        scale = TUMOUR_RADIUS_MM / np.maximum(r, 1e-6)
        radius = TUMOUR_RADIUS_MM + self.tumour_noise(
            c[0] + dx * scale, c[1] + dy * scale, c[2] + dz * scale
        )
        return r - radius


def vertebra_levels_z_mm(z_low_mm: float, z_high_mm: float) -> list[float]:
    """Centres (z, mm) of the vertebral bodies that overlap ``[z_low_mm, z_high_mm]``."""
    period = VERTEBRA_HEIGHT_MM + DISC_HEIGHT_MM
    first = FIRST_DISC_Z_MM + 0.5 * (DISC_HEIGHT_MM + VERTEBRA_HEIGHT_MM)
    k_low = int(np.floor((z_low_mm - first) / period)) - 1
    k_high = int(np.ceil((z_high_mm - first) / period)) + 1
    return [first + k * period for k in range(k_low, k_high + 1)]


def vertebral_bodies(
    x: FloatArray, y: FloatArray, z: FloatArray, levels: list[float]
) -> FloatArray:
    """Vertebral bodies (without discs) at the given centre heights."""
    column = ellipse_2d(x, y, VERTEBRA_CENTRE, VERTEBRA_RADII_MM)
    half = 0.5 * VERTEBRA_HEIGHT_MM
    nearest = np.full(np.broadcast_shapes(np.shape(z), np.shape(column)), np.inf)
    for zc in levels:
        nearest = np.minimum(nearest, slab_z(z, zc - half, zc + half))
    return intersect(column, nearest)


RIB_RADIUS_MM = 5.0
RIB_MARROW_RADIUS_MM = 3.0
RIB_POSTERIOR_Z_MM = (-708.0, -738.0, -768.0, -798.0, -828.0, -858.0, -888.0)
"""Height (z, mm) of each rib's posterior end, top to bottom (ribs 6 to 12)."""


def rib_segments() -> list[Segment]:
    """Both sides' ribs as chains of short tube segments inside the muscle wall.

    Each rib follows the body outline :data:`RIB_DEPTH_MM` below the skin from beside the spine
    (22 degrees from the posterior midline) towards the front, descending 0.45 mm per degree;
    lower ribs are shorter (floating ribs end laterally).
    """
    semi_x = BODY_RADII_MM[0] - RIB_DEPTH_MM
    semi_y = BODY_RADII_MM[1] - RIB_DEPTH_MM
    segments = []
    for index, z_back in enumerate(RIB_POSTERIOR_Z_MM):
        end_deg = 150.0 - 12.0 * index
        angles = np.deg2rad(np.linspace(22.0, end_deg, 24))
        drop = 0.45 * np.rad2deg(angles - angles[0])
        for side in (-1.0, 1.0):
            pts = np.column_stack(
                [side * semi_x * np.sin(angles), semi_y * np.cos(angles), z_back - drop]
            )
            for a, b in zip(pts[:-1], pts[1:], strict=True):
                segments.append(
                    Segment(tuple(a.tolist()), tuple(b.tolist()), RIB_RADIUS_MM, RIB_RADIUS_MM)
                )
    return segments


def posterior_element_segments(levels: list[float]) -> list[Segment]:
    """Spinous and transverse processes of each vertebra as tube segments (radius 4-4.5 mm)."""
    segments = []
    for zc in levels:
        segments.append(Segment((0.0, 66.0, zc), (0.0, 86.0, zc - 10.0), 4.5, 4.0))
        for side in (-1.0, 1.0):
            segments.append(Segment((side * 12.0, 52.0, zc), (side * 36.0, 60.0, zc), 4.0, 3.5))
    return segments


def vertebral_arches(
    x: FloatArray, y: FloatArray, z: FloatArray, levels: list[float]
) -> FloatArray:
    """Neural arches (pedicles and laminae): a ring around the spinal canal at each level."""
    ring = subtract(ellipse_2d(x, y, (0.0, 57.0), (17.0, 15.0)), spinal_canal(x, y, z))
    nearest = np.full(np.broadcast_shapes(np.shape(z), np.shape(ring)), np.inf)
    for zc in levels:
        nearest = np.minimum(nearest, slab_z(z, zc - 9.0, zc + 9.0))
    return intersect(ring, nearest)


def spinal_canal(x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
    """Spinal canal (cord and fluid), a vertical tube behind the vertebral bodies."""
    return ellipse_2d(x, y, CANAL_CENTRE, (CANAL_RADIUS_MM,) * 2) + 0.0 * z
