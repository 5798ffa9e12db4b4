"""Applicability: whether this patient's case lies inside what the validation covered.

Compared, each with the validated range and a warning when outside:

- **organ volume** (mL, the case's volume mesh) against the validation cases' organs;
- **tumour depth** below the organ surface (mm, the distance of the tumour target to the
  closest point of the twin's organ surface) against the depths of every validation target;
- **expected deformation** (the context's largest organ displacement, mm) against the
  validation patients' largest surface displacements;
- the planned **anterior coverage** and **sensor noise** against the studied grid, and the
  planned **sensor** against the studied one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Applicability", "CaseDescriptors", "assess_applicability", "depth_below_surface_mm"]


def depth_below_surface_mm(
    points_mm: NDArray[np.float64], vertices_mm: NDArray[np.float64], faces: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Distance (mm) of each point to the closest point of a triangle surface."""
    import pyvista as pv

    f = np.asarray(faces, np.int64)
    poly = pv.PolyData(np.asarray(vertices_mm, float), np.hstack([np.full((len(f), 1), 3), f]))
    pts = np.asarray(points_mm, float).reshape(-1, 3)
    _, closest = poly.find_closest_cell(pts, return_closest_point=True)
    return np.linalg.norm(np.asarray(closest).reshape(-1, 3) - pts, axis=1)


@dataclass(frozen=True)
class CaseDescriptors:
    """What applicability compares (mm, mL)."""

    organ_volume_ml: float
    tumour_depth_mm: float | None
    target_depths_mm: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Applicability:
    """Each comparison and the warnings.

    Attributes
    ----------
    case : dict
        This case's figures (organ volume, tumour depth, planned protocol).
    validated : dict
        The validated ranges ``[min, max]`` (and the studied sensor).
    rows : list of dict
        ``quantity``, ``case`` value, ``validated`` range, ``inside``.
    warnings : list of str
        One line per quantity outside its range.
    """

    case: dict[str, Any]
    validated: dict[str, Any]
    rows: list[dict[str, Any]]
    warnings: list[str]

    @property
    def inside(self) -> bool:
        """Every quantity lies inside its validated range."""
        return not self.warnings

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self) | {"inside": self.inside}


def describe_case(model: Any, organ_volume_ml: float, tumour: str) -> CaseDescriptors:
    """The case's organ volume, tumour depth and every target's depth (mm)."""
    names = list(model.targets_mm)
    pts = np.array([model.targets_mm[k] for k in names]).reshape(-1, 3)
    depth = depth_below_surface_mm(pts, model.vertices_mm, model.faces) if len(pts) else []
    depths = {k: float(d) for k, d in zip(names, depth, strict=True)}
    return CaseDescriptors(float(organ_volume_ml), depths.get(tumour), depths)


def _row(quantity: str, value: float | None, lo: float, hi: float, unit: str) -> dict[str, Any]:
    inside = value is not None and lo - 1e-9 <= value <= hi + 1e-9
    return {"quantity": quantity, "unit": unit, "case": value, "validated": [lo, hi],
            "inside": bool(inside)}  # fmt: skip


def assess_applicability(
    case: CaseDescriptors, validation_cases: list[CaseDescriptors], plan: dict[str, Any],
    grid: dict[str, Any], patient_peaks_mm: list[float],
) -> Applicability:  # fmt: skip
    """Compare the case and its planned use with the validation (module docstring).

    Parameters
    ----------
    case : CaseDescriptors
        This case.
    validation_cases : list of CaseDescriptors
        The validation's organs and targets.
    plan : dict
        The context's planned acquisition (anterior_coverage, noise_mm, sensor,
        expected_max_displacement_mm).
    grid : dict
        The studied grid (anterior_coverage, noise_mm lists; sensor).
    patient_peaks_mm : list of float
        The validation patients' largest surface displacements, mm.
    """
    vols = [c.organ_volume_ml for c in validation_cases]
    depths = [d for c in validation_cases for d in c.target_depths_mm.values()]
    rows = [
        _row("organ volume", case.organ_volume_ml, min(vols), max(vols), "mL"),
        _row("tumour depth below the surface", case.tumour_depth_mm, min(depths), max(depths),
             "mm"),
        _row("expected largest displacement", plan["expected_max_displacement_mm"],
             min(patient_peaks_mm), max(patient_peaks_mm), "mm"),
        _row("planned anterior coverage", plan["anterior_coverage"],
             min(grid["anterior_coverage"]), max(grid["anterior_coverage"]), "fraction"),
        _row("planned sensor noise", plan["noise_mm"], min(grid["noise_mm"]),
             max(grid["noise_mm"]), "mm"),
    ]  # fmt: skip
    warnings = [
        f"{r['quantity']} {r['case'] if r['case'] is None else round(r['case'], 3)} "
        f"{r['unit']} is outside the validated range {r['validated'][0]:.3g}-"
        f"{r['validated'][1]:.3g} {r['unit']}"
        for r in rows if not r["inside"]
    ]  # fmt: skip
    if plan["sensor"] != grid["sensor"]:
        warnings.append(f"planned sensor {plan['sensor']!r} was not studied ({grid['sensor']!r})")
    validated = {r["quantity"]: r["validated"] for r in rows} | {"sensor": grid["sensor"]}
    return Applicability(
        case=case.to_dict() | {"plan": dict(plan)}, validated=validated, rows=rows,
        warnings=warnings,
    )  # fmt: skip
