"""Build the phantom: grid, anatomy, vessel trees, CT image, label map, masks and seed points."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from surgplan.phantom import anatomy as anat
from surgplan.phantom.anatomy import Anatomy
from surgplan.phantom.ct import HU, LABEL_NAMES, Painter, blur_and_noise, label_map
from surgplan.phantom.errors import PhantomError
from surgplan.phantom.mr import T1, mr_formation
from surgplan.phantom.sdf import FloatArray, Grid, Segment, intersect, segments_on_grid
from surgplan.phantom.vessels import VesselTrees, grow_vessel_trees

GENERATOR_VERSION = "1.0.0"
"""Version of the phantom generator; bump it whenever the generated arrays change."""
ORIGIN_MM = (-150.0, -126.0, -900.0)
"""LPS position (mm) of the centre of voxel (0, 0, 0): right, anterior, inferior corner."""
FIELD_OF_VIEW_MM = (300.0, 252.0, 180.0)
"""Extent (x, y, z) covered by the grid, mm; the voxel count is this divided by the spacing."""
DEFAULT_SPACING_MM = (1.5, 1.5, 2.0)
HU_RANGE = (-1024, 3071)
"""The CT values are clipped to this range (a 12-bit CT encoding with intercept -1024)."""

Point = tuple[float, float, float]


@dataclass(frozen=True)
class Phantom:
    """A synthetic abdominal CT with its ground truth.

    Attributes
    ----------
    ct
        CT image, int16 Hounsfield units, LPS geometry (identity direction).
    labels
        Label map (uint8) on the same grid, values of :attr:`label_names`; one value per voxel,
        so the liver label (1) is the parenchyma without the tumour and intrahepatic vessels.
    masks
        Boolean ``(nz, ny, nx)`` masks per structure, which may overlap: ``"liver"`` is the
        liver envelope (parenchyma + tumour + intrahepatic vessels), ``"liver_parenchyma"`` is
        label 1, ``"portal_vein"`` includes its extrahepatic trunk, ``"hepatic_veins"`` their
        short course between the cava and the liver, and ``"body"`` everything inside the skin;
        the other names are those of :attr:`label_names`.
    label_names
        Label value -> structure name.
    seeds_lps_mm
        One point (LPS mm) well inside each labelled structure (the liver seed lies in the
        parenchyma, the vessel seeds in the root of each tree).
    tumour_centre_lps_mm
        Centre of the tumour, LPS mm.
    tumour_radius_mm
        Mean (nominal) tumour radius, mm.
    vessels
        Centre-line segments of the portal and hepatic vein trees.
    seed
        The seed the phantom was generated from.
    parameters
        Generation parameters and derived measures (JSON-serialisable).
    """

    ct: sitk.Image
    labels: sitk.Image
    masks: dict[str, np.ndarray]
    label_names: dict[int, str]
    seeds_lps_mm: dict[str, Point]
    tumour_centre_lps_mm: Point
    tumour_radius_mm: float
    vessels: VesselTrees
    seed: int
    parameters: dict[str, Any] = field(default_factory=dict)

    def volume_ml(self, name: str) -> float:
        """Volume of mask ``name`` in millilitres (voxel count times voxel volume)."""
        voxel_mm3 = float(np.prod(self.ct.GetSpacing()))
        return float(np.count_nonzero(self.masks[name])) * voxel_mm3 / 1000.0


def _check_positive_triple(name: str, value: Any, upper: float) -> tuple[float, float, float]:
    try:
        triple = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise PhantomError(f"{name} must be 3 numbers in mm, got {value!r}") from exc
    if len(triple) != 3 or not all(math.isfinite(v) and 0.0 < v <= upper for v in triple):
        raise PhantomError(f"{name} must be 3 finite values in (0, {upper}] mm, got {value!r}")
    return triple[0], triple[1], triple[2]


def _in_box(
    grid: Grid,
    fn: Callable[[FloatArray, FloatArray, FloatArray], FloatArray],
    low: Any,
    high: Any,
) -> FloatArray:
    """Evaluate a signed distance inside an axis-aligned box only; +1000 mm elsewhere."""
    out = np.full(grid.shape_zyx, 1.0e3)
    box = grid.box(low, high)
    if box is not None:
        x, y, z = grid.axes()
        zs, ys, xs = box
        out[box] = np.broadcast_to(fn(x[:, :, xs], y[:, ys, :], z[zs, :, :]), out[box].shape)
    return out


def _ellipsoid_box(spec: tuple[Point, Point], pad_mm: float = 6.0) -> tuple[Any, Any]:
    centre, radii = np.asarray(spec[0]), np.asarray(spec[1])
    return centre - radii - pad_mm, centre + radii + pad_mm


def _deepest_point(grid: Grid, mask: np.ndarray) -> Point:
    """The voxel of ``mask`` farthest from its boundary (LPS mm)."""
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    sub = np.pad(mask[box], 1)
    depth = ndimage.distance_transform_edt(sub, sampling=grid.spacing_mm[::-1])
    k, j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
    index = (box[2].start + i - 1, box[1].start + j - 1, box[0].start + k - 1)
    return tuple(  # type: ignore[return-value]
        float(grid.origin_mm[d] + grid.spacing_mm[d] * index[d]) for d in range(3)
    )


def _point_along(seg: Segment, distance_mm: float) -> Point:
    a, b = np.asarray(seg.start_mm), np.asarray(seg.end_mm)
    p = a + (b - a) * (distance_mm / np.linalg.norm(b - a))
    return float(p[0]), float(p[1]), float(p[2])


def _image(array: np.ndarray, grid: Grid) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(grid.origin_mm)
    image.SetSpacing(grid.spacing_mm)
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return image


def generate_phantom(
    *,
    seed: int = 0,
    spacing_mm: tuple[float, float, float] = DEFAULT_SPACING_MM,
    noise_hu: float = 12.0,
    psf_sigma_mm: float = 1.0,
    modality: str = "ct",
) -> Phantom:
    """Generate the synthetic abdominal CT phantom (deterministic: same arguments, same bits).

    Parameters
    ----------
    seed
        Seed of the liver and tumour surface perturbations, the vessel branching and the noise.
    spacing_mm
        Voxel size ``(dx, dy, dz)`` in mm; the grid always covers :data:`FIELD_OF_VIEW_MM`
        from :data:`ORIGIN_MM` (200 x 168 x 90 voxels at the default 1.5 x 1.5 x 2 mm).
    noise_hu
        Standard deviation of the white Gaussian noise, HU.
    psf_sigma_mm
        Standard deviation of the Gaussian point-spread function, mm.
    modality
        ``"ct"`` (default: int16 HU, portal-venous phase) or ``"mr"``: a T1-weighted-like
        image without a physical scale (uint16, :data:`surgplan.phantom.mr.T1`), with a bias
        field and Rician noise whose channel sigma is ``noise_hu`` in signal units; the
        anatomy, labels, masks and seeds are the same as the CT's.

    Returns
    -------
    Phantom
        CT (int16 HU), label map, per-structure masks, seeds and metadata.

    Raises
    ------
    PhantomError
        If a parameter is out of range.
    """
    spacing = _check_parameters(seed, spacing_mm, noise_hu, psf_sigma_mm)
    if modality not in ("ct", "mr"):
        raise PhantomError(f"modality must be 'ct' or 'mr', got {modality!r}")
    seed = int(seed)
    size = tuple(int(round(f / s)) for f, s in zip(FIELD_OF_VIEW_MM, spacing, strict=True))
    grid = Grid(ORIGIN_MM, spacing, (size[0], size[1], size[2]))
    body = Anatomy.from_seed(seed)
    trees = grow_vessel_trees(body, seed=seed)
    sdf, bone_parts = _structure_sdfs(grid, body, trees)
    noise_rng = np.random.default_rng([seed, 3])
    if modality == "mr":
        signal = _paint_ct(grid, body, sdf, bone_parts, values=T1)
        ct = mr_formation(signal, grid, psf_sigma_mm=psf_sigma_mm, noise=noise_hu, rng=noise_rng)
    else:
        hu = _paint_ct(grid, body, sdf, bone_parts)
        hu = blur_and_noise(hu, grid, psf_sigma_mm=psf_sigma_mm, noise_hu=noise_hu, rng=noise_rng)
        ct = np.clip(np.rint(hu), *HU_RANGE).astype(np.int16)

    # --- ground truth ---------------------------------------------------------------------------
    shape = grid.shape_zyx
    masks = {
        name: np.broadcast_to(sdf[name] < 0.0, shape).copy()
        for name in ("body", *LABEL_NAMES.values())
    }
    labels = label_map(masks)
    masks["liver_parenchyma"] = labels == 1

    seeds = _seeds(grid, masks, labels, trees)
    parameters = _parameters(seed, grid, noise_hu, psf_sigma_mm, trees)
    if modality == "mr":
        parameters.update(modality="mr", contrast_phase="none", t1=dict(T1), hu=None)
    return Phantom(
        ct=_image(ct, grid),
        labels=_image(labels, grid),
        masks=masks,
        label_names=dict(LABEL_NAMES),
        seeds_lps_mm=seeds,
        tumour_centre_lps_mm=seeds["tumour"],
        tumour_radius_mm=anat.TUMOUR_RADIUS_MM,
        vessels=trees,
        seed=seed,
        parameters=parameters,
    )


def _check_parameters(
    seed: Any, spacing_mm: Any, noise_hu: Any, psf_sigma_mm: Any
) -> tuple[float, float, float]:
    """Refuse out-of-range arguments of :func:`generate_phantom`; return the spacing (mm)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise PhantomError(f"seed must be a non-negative integer, got {seed!r}")
    spacing = _check_positive_triple("spacing_mm", spacing_mm, 5.0)
    for name, value, upper in (("noise_hu", noise_hu, 200.0), ("psf_sigma_mm", psf_sigma_mm, 5.0)):
        if not (isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= upper):
            raise PhantomError(f"{name} must be a number in [0, {upper}], got {value!r}")
    return spacing


def _structure_sdfs(
    grid: Grid, body: Anatomy, trees: VesselTrees
) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Signed distances (mm, negative inside) of every labelled structure, and the bone parts.

    The bone parts (``vertebrae``, ``arches``, ``processes``, ``ribs``) are painted with their
    own marrow; ``sdf["bone"]`` is their union.
    """
    x, y, z = grid.axes()
    levels = anat.vertebra_levels_z_mm(grid.axis(2)[0], grid.axis(2)[-1])
    sdf: dict[str, FloatArray] = {}
    sdf["body"] = body.body(x, y, 0.0 * z[:1])
    sdf["liver"] = _in_box(grid, body.liver, (-135.0, -100.0, -900.0), (90.0, 85.0, -710.0))
    c, r = np.asarray(anat.TUMOUR_CENTRE), anat.TUMOUR_RADIUS_MM + 10.0
    sdf["tumour"] = _in_box(grid, body.tumour, c - r, c + r)
    sdf["kidney_right"] = _in_box(grid, body.kidney_right, *_ellipsoid_box(anat.KIDNEY_RIGHT))
    sdf["kidney_left"] = _in_box(grid, body.kidney_left, *_ellipsoid_box(anat.KIDNEY_LEFT))
    sdf["spleen"] = _in_box(grid, body.spleen, *_ellipsoid_box(anat.SPLEEN))
    sdf["stomach"] = _in_box(grid, body.stomach, *_ellipsoid_box(anat.STOMACH))
    path = np.asarray(anat.COLON_PATH)
    reach = anat.COLON_RADIUS_MM + 6.0
    sdf["colon"] = _in_box(grid, body.colon, path.min(axis=0) - reach, path.max(axis=0) + reach)
    sdf["portal_vein"] = segments_on_grid(grid, trees.portal)
    sdf["hepatic_veins"] = segments_on_grid(grid, trees.hepatic)
    sdf["ivc"] = body.ivc(x, y, 0.0 * z[:1])
    sdf["aorta"] = body.aorta(x, y, 0.0 * z[:1])
    parts = {
        "vertebrae": anat.vertebral_bodies(x, y, z, levels),
        "arches": anat.vertebral_arches(x, y, z, levels),
        "processes": segments_on_grid(grid, anat.posterior_element_segments(levels)),
        "ribs": segments_on_grid(grid, anat.rib_segments()),
    }
    sdf["bone"] = np.minimum(
        np.minimum(parts["vertebrae"], parts["arches"]),
        np.minimum(parts["processes"], parts["ribs"]),
    )
    return sdf, parts


def _paint_ct(
    grid: Grid,
    body: Anatomy,
    sdf: dict[str, FloatArray],
    bone: dict[str, FloatArray],
    values: dict[str, float] = HU,
) -> FloatArray:
    """Noise-free image of the phantom, painted outside in (later structures cover earlier).

    ``values`` gives each tissue's intensity: :data:`HU` (CT) or the MR table ``T1``.
    """
    x, y, z = grid.axes()
    paint = Painter(grid, values["air"])
    paint.paint(sdf["body"], values["fat"])
    paint.paint(body.muscle_wall(x, y, 0.0 * z[:1]), values["muscle"])
    paint.paint(body.cavity(x, y, 0.0 * z[:1]), values["visceral_fat"])
    paint.paint(body.paraspinal(x, y, 0.0 * z[:1]), values["muscle"])
    paint.paint(segments_on_grid(grid, list(anat.PSOAS)), values["muscle"])
    paint.paint(body.diaphragm(x, y, z), values["muscle"])
    paint.paint(body.lungs(x, y, z), values["lung"])
    paint.paint(anat.spinal_canal(x, y, 0.0 * z[:1]), values["spinal_canal"])
    paint.paint(body.vertebral_column(x, y, 0.0 * z[:1]), values["disc"])
    paint.paint(sdf["kidney_right"], values["kidney"])
    paint.paint(sdf["kidney_left"], values["kidney"])
    paint.paint(sdf["spleen"], values["spleen"])
    paint.paint(sdf["stomach"], values["bowel_wall"])
    lumen = sdf["stomach"] + anat.STOMACH_WALL_MM
    paint.paint(lumen, values["fluid"])
    gas_level_y = anat.STOMACH[0][1] - 8.0  # supine: gas floats to the front (smaller y)
    paint.paint(
        intersect(lumen, np.broadcast_to(y - gas_level_y, lumen.shape)), values["bowel_gas"]
    )
    paint.paint(sdf["colon"], values["bowel_wall"])
    paint.paint(sdf["colon"] + anat.COLON_WALL_MM, values["bowel_gas"])
    paint.paint(sdf["liver"], values["liver"])
    paint.paint(sdf["tumour"], values["tumour"])
    paint.paint(sdf["hepatic_veins"], values["hepatic_veins"])
    paint.paint(sdf["portal_vein"], values["portal_vein"])
    paint.paint(sdf["ivc"], values["ivc"])
    paint.paint(sdf["aorta"], values["aorta"])
    paint.paint(sdf["bone"], values["cortical_bone"])
    paint.paint(np.minimum(bone["vertebrae"], bone["arches"]) + 2.0, values["cancellous_bone"])
    paint.paint(np.minimum(bone["processes"] + 1.5, bone["ribs"] + 2.0), values["rib_marrow"])
    return paint.hu


def _seeds(
    grid: Grid, masks: dict[str, np.ndarray], labels: np.ndarray, trees: VesselTrees
) -> dict[str, Point]:
    """One seed point (LPS mm) inside each structure that the demo segments."""
    return {
        "liver": _deepest_point(grid, masks["liver_parenchyma"]),
        "tumour": tuple(float(v) for v in anat.TUMOUR_CENTRE),  # type: ignore[dict-item]
        "portal_vein": _point_along(trees.portal[0], 20.0),
        "hepatic_veins": _point_along(trees.hepatic[0], 22.0),
        "ivc": (anat.IVC_CENTRE[0], anat.IVC_CENTRE[1], -850.0),
        "aorta": (anat.AORTA_CENTRE[0], anat.AORTA_CENTRE[1], -850.0),
        "kidney_right": _deepest_point(grid, labels == 8),
        "kidney_left": _deepest_point(grid, labels == 9),
        "spleen": _deepest_point(grid, labels == 10),
    }


def _parameters(
    seed: int, grid: Grid, noise_hu: float, psf_sigma_mm: float, trees: VesselTrees
) -> dict[str, Any]:
    """The generator's parameters as stored in ``phantom.json``."""
    return {
        "generator": "surgplan.phantom",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "spacing_mm": list(grid.spacing_mm),
        "size": list(grid.size),
        "origin_mm": list(grid.origin_mm),
        "noise_hu": float(noise_hu),
        "psf_sigma_mm": float(psf_sigma_mm),
        "contrast_phase": "portal-venous",
        "hu": dict(HU),
        "vessel_radius_min_mm": 2.0,
        "portal_segments": len(trees.portal),
        "hepatic_segments": len(trees.hepatic),
    }
