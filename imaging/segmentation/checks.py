"""Plausibility checks of a seeded segmentation before it is returned.

Every check is a named number with its accepted range (:class:`Check`); a result is returned
only when all pass (:class:`CheckedSegmentation`), otherwise the segmenter retries with other
parameters and finally raises :class:`SegmentationCheckError`, which names the failed checks.

Checks of a solid organ (:func:`organ_checks`):

``seed_neighbourhood_inside``
    Fraction of the ball of :data:`SEED_BALL_MM` around the seed inside the result.
``seed_in_body``
    1 when the seed lies in the body (:mod:`imaging.segmentation._body`), else 0.
``volume_ml``
    Volume within the organ's :class:`VolumeLimits`, scaled by the body's cross-section and,
    for an organ cut by the first or last slice, by the scan's length.
``body_fraction``
    Share of the body's volume in the scan the result takes up.
``outside_body_fraction``
    Share of the result outside the body (table, air).
``border_fraction``
    Share of the result on the in-plane image border (a leak into the table or the field of
    view's edge; the first and last slice may cut an organ).
``components``
    Number of 26-connected pieces of the result.
``compactness``
    Sphericity ``pi^(1/3) (6 V)^(2/3) / A`` of the result: a leak along a thin neighbour
    makes the surface grow faster than the volume.
``lateral_position``, ``ap_position``
    Centroid of the result across the body's bounding box in LPS: 0 at the patient's right
    (anterior) edge, 1 at the left (posterior) edge; e.g. the liver lies on the right.
``growth_jump``
    Largest ratio between successive volumes of the seed's region as the intensity window
    widens to the one used (:func:`growth_curve`): a leak shows as a jump.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from imaging.errors import SegmentationError
from imaging.segmentation._body import Body
from imaging.segmentation.cleanup import component_at_index, radius_voxels

#: Radius (mm) of the seed's neighbourhood that must lie inside the result.
SEED_BALL_MM = 4.0
#: Window scales (of the final window's half-widths) at which the growth curve is sampled.
GROWTH_SCALES = (0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Check:
    """One named plausibility check: a measured value and its accepted range.

    Attributes
    ----------
    name : str
        Check name (see the module docstring).
    value : float
        Measured value, in ``unit``.
    lower, upper : float or None
        Accepted range (inclusive); ``None`` is unbounded.
    unit : str
        Unit of ``value`` (``"mL"``, ``""`` for ratios and counts).
    """

    name: str
    value: float
    lower: float | None = None
    upper: float | None = None
    unit: str = ""

    @property
    def passed(self) -> bool:
        """Whether ``value`` is finite and within ``[lower, upper]``."""
        if not math.isfinite(self.value):
            return False
        if self.lower is not None and self.value < self.lower:
            return False
        return self.upper is None or self.value <= self.upper

    def describe(self) -> str:
        """One-line text: ``name = value unit (expected lower..upper)``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.lower is not None and self.upper is not None:
            expected = f"{self.lower:.4g}..{self.upper:.4g}"
        elif self.lower is not None:
            expected = f">= {self.lower:.4g}"
        else:
            expected = f"<= {self.upper:.4g}"
        return f"{self.name} = {self.value:.4g}{unit} (expected {expected}{unit})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``name``, ``value``, ``lower``, ``upper``, ``unit``, ``passed``."""
        return {
            "name": self.name,
            "value": float(self.value),
            "lower": self.lower,
            "upper": self.upper,
            "unit": self.unit,
            "passed": self.passed,
        }


def failed(checks: Sequence[Check]) -> list[Check]:
    """The checks of ``checks`` that did not pass."""
    return [c for c in checks if not c.passed]


@dataclass(frozen=True)
class Attempt:
    """One parameter set tried by a segmenter and the checks it failed."""

    parameters: str
    failed: tuple[Check, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``parameters`` and the failed checks."""
        return {"parameters": self.parameters, "failed": [c.to_dict() for c in self.failed]}


@dataclass(frozen=True)
class CheckedSegmentation:
    """A segmentation that passed all its checks.

    Attributes
    ----------
    mask : SimpleITK.Image
        ``sitkUInt8`` 0/1 mask on the input image's grid.
    structure : str
        What was segmented (``liver``, ``spleen``, ``kidney``...).
    parameters : str
        Name of the parameter set that passed.
    checks : tuple of Check
        Every check with its value.
    rejected : tuple of Attempt
        Parameter sets tried before, with the checks they failed.
    """

    mask: sitk.Image
    structure: str
    parameters: str
    checks: tuple[Check, ...]
    rejected: tuple[Attempt, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the mask): parameters, checks and rejected attempts."""
        return {
            "structure": self.structure,
            "parameters": self.parameters,
            "passed": all(c.passed for c in self.checks),
            "checks": [c.to_dict() for c in self.checks],
            "rejected": [a.to_dict() for a in self.rejected],
        }


class SegmentationCheckError(SegmentationError):
    """Every parameter set gave a result that failed a plausibility check.

    Attributes
    ----------
    attempts : tuple of Attempt
        Each parameter set tried and the checks it failed.
    """

    def __init__(self, message: str, attempts: Sequence[Attempt]) -> None:
        super().__init__(message)
        self.attempts = tuple(attempts)


def refusal(structure: str, seed_lps_mm: Sequence[float], attempts: Sequence[Attempt]) -> str:
    """One-line refusal naming the checks the first (default) parameter set failed, with values."""
    point = tuple(round(float(c), 1) for c in seed_lps_mm)
    first = attempts[0].failed if attempts else ()
    what = "; ".join(c.describe() for c in first) or "no region at the seed"
    return (
        f"{structure} from seed {point} mm refused: {what} (and {len(attempts) - 1} other "
        f"parameter sets failed); expected a seed inside the {structure}"
    )


@dataclass(frozen=True)
class VolumeLimits:
    """Plausible volume of a structure in a reference adult (mL) and its share of the body.

    Attributes
    ----------
    min_ml, max_ml : float
        Volume range for a body of :data:`imaging.segmentation._body.REFERENCE_AREA_CM2`;
        scaled by :attr:`Body.scale` (clipped to [0.25, 3]).
    max_body_fraction : float
        Largest share of the body volume in the scan.
    height_mm : float
        Typical cranio-caudal extent: an organ cut by the scan's first or last slice has its
        lower limit scaled by ``scan length / height_mm`` (at most 1).
    """

    min_ml: float
    max_ml: float
    max_body_fraction: float
    height_mm: float


def volume_range(
    limits: VolumeLimits, body: Body, truncated: bool, scan_length_mm: float
) -> tuple[float, float]:
    """Accepted ``(min_ml, max_ml)`` for this body and field of view."""
    scale = float(np.clip(body.scale, 0.25, 3.0))
    low = limits.min_ml * scale
    if truncated:
        low *= min(1.0, scan_length_mm / limits.height_mm)
    return low, limits.max_ml * scale


def growth_curve(
    smooth: sitk.Image,
    idx: tuple[int, int, int],
    centre: float,
    lower: float,
    upper: float,
    open_mm: float,
    scales: Sequence[float] = GROWTH_SCALES,
) -> list[float]:
    """Volume (mL) of the seed's opened region at windows ``centre + s * (bound - centre)``.

    The window is widened from the smallest scale to 1 (the window used); the region is the
    thresholded smoothed image, opened by ``open_mm`` and reduced to the seed's component
    (0 mL where the seed is not in it).
    """
    voxel_ml = float(np.prod(smooth.GetSpacing())) / 1000.0
    radius = radius_voxels(smooth, open_mm)
    out = []
    for s in scales:
        window = sitk.BinaryThreshold(
            smooth, centre + s * (lower - centre), centre + s * (upper - centre), 1, 0
        )
        region = component_at_index(
            sitk.BinaryMorphologicalOpening(window, radius, sitk.sitkBall), idx
        )
        n = 0 if region is None else int(np.count_nonzero(sitk.GetArrayViewFromImage(region)))
        out.append(n * voxel_ml)
    return out


def _ball_fraction(mask: np.ndarray, idx: tuple[int, int, int], spacing: np.ndarray) -> float:
    """Fraction of the :data:`SEED_BALL_MM` ball (at least one voxel) at ``idx`` in ``mask``."""
    radius = max(SEED_BALL_MM, float(spacing.max()))
    r = np.floor(radius / spacing + 1e-6).astype(int)
    c = np.array(idx[::-1])
    lo, hi = np.maximum(c - r, 0), np.minimum(c + r + 1, mask.shape)
    zz, yy, xx = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    ball = (
        ((zz - c[0]) * spacing[0]) ** 2
        + ((yy - c[1]) * spacing[1]) ** 2
        + ((xx - c[2]) * spacing[2]) ** 2
    ) <= radius**2 + 1e-6
    sub = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    return float(sub[ball].mean())


def sphericity(mask: np.ndarray, spacing: Sequence[float]) -> float:
    """Sphericity ``pi^(1/3) (6 V)^(2/3) / A`` of a binary ``(z, y, x)`` mask (1 = a ball).

    ``A`` is ITK's surface-area estimate (``LabelShapeStatistics`` perimeter, Crofton
    formula), ``spacing`` is ``(x, y, z)`` mm.
    """
    if not mask.any():
        return 0.0
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.SetSpacing(tuple(float(s) for s in spacing))
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputePerimeterOn()
    stats.Execute(image)
    return float(stats.GetRoundness(1))


@dataclass(frozen=True)
class ShapeLimits:
    """Accepted shape and place of a structure.

    Attributes
    ----------
    min_compactness : float
        Least sphericity.
    max_growth_jump : float
        Largest ratio of successive growth-curve volumes.
    lateral, ap : tuple of float
        Accepted ``lateral_position`` and ``ap_position`` (fractions of the body's box).
    """

    min_compactness: float
    max_growth_jump: float
    lateral: tuple[float, float] = (0.0, 1.0)
    ap: tuple[float, float] = (0.0, 1.0)


def body_positions(mask_img: sitk.Image, mask: np.ndarray, body: Body) -> tuple[float, float]:
    """Centroid of ``mask`` across the body's LPS bounding box: ``(right->left, ant->post)``."""

    def lps(arr: np.ndarray) -> np.ndarray:
        zyx = np.argwhere(arr)[:: max(1, int(arr.sum()) // 20000)]
        direction = np.array(mask_img.GetDirection()).reshape(3, 3)
        return (direction @ (zyx[:, ::-1] * np.array(mask_img.GetSpacing())).T).T

    pts, box = lps(mask), lps(body.mask)
    lo, hi = box.min(axis=0), box.max(axis=0)
    frac = (pts.mean(axis=0) - lo) / np.maximum(hi - lo, 1e-9)
    return float(frac[0]), float(frac[1])


def organ_checks(
    mask_img: sitk.Image,
    idx: tuple[int, int, int],
    body: Body,
    limits: VolumeLimits,
    shape: ShapeLimits,
    curve_ml: Sequence[float],
) -> tuple[Check, ...]:
    """All checks of a solid-organ result on its working grid (see the module docstring).

    Parameters
    ----------
    mask_img : SimpleITK.Image
        The result, 0/1, on the grid ``body`` was found on.
    idx : tuple of int
        Seed voxel ``(i, j, k)`` on that grid.
    body : Body
        The body on that grid.
    limits : VolumeLimits
        The structure's plausible volume.
    shape : ShapeLimits
        The structure's plausible shape.
    curve_ml : sequence of float
        :func:`growth_curve` of the result's window.
    """
    mask = sitk.GetArrayViewFromImage(mask_img) > 0
    spacing = np.array(mask_img.GetSpacing()[::-1], dtype=float)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    n = int(mask.sum())
    volume = n * voxel_ml
    truncated = bool(mask[0].any() or mask[-1].any())
    low, high = volume_range(limits, body, truncated, mask.shape[0] * spacing[0])
    border = np.zeros(mask.shape, bool)
    border[:, [0, -1], :] = True
    border[:, :, [0, -1]] = True
    _, n_pieces = ndi.label(mask, structure=np.ones((3, 3, 3), bool))
    grown = [v for v in curve_ml if v > 0]  # narrow windows may miss the seed voxel
    steps = [b / a for a, b in zip(grown[:-1], grown[1:], strict=True)]
    lateral, ap = body_positions(mask_img, mask, body) if n else (math.nan, math.nan)
    return (
        Check("seed_neighbourhood_inside", _ball_fraction(mask, idx, spacing), lower=0.5),
        Check("seed_in_body", float(body.mask[idx[2], idx[1], idx[0]]), lower=1.0),
        Check("volume_ml", volume, lower=round(low, 1), upper=round(high, 1), unit="mL"),
        Check(
            "body_fraction",
            volume / max(body.volume_ml, 1e-9),
            upper=limits.max_body_fraction,
        ),
        Check("outside_body_fraction", float((mask & ~body.mask).sum()) / max(n, 1), upper=0.05),
        Check("border_fraction", float((mask & border).sum()) / max(n, 1), upper=0.005),
        Check("components", float(n_pieces), lower=1.0, upper=1.0),
        Check("compactness", sphericity(mask, spacing[::-1]), lower=shape.min_compactness),
        Check("lateral_position", lateral, lower=shape.lateral[0], upper=shape.lateral[1]),
        Check("ap_position", ap, lower=shape.ap[0], upper=shape.ap[1]),
        Check("growth_jump", max(steps, default=1.0), upper=shape.max_growth_jump),
    )
