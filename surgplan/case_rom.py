"""Building a case's real-time reduced deformation model (``rom/linear.npz``).

Without a scenario, :mod:`surgplan.case_rom_defaults` builds the model the twin uses from the
documented liver defaults. With one, the scenario (:mod:`surgplan.scenario`) gives the supports, the nominal retractor patch and the
insufflation surface; :func:`build_case_rom` samples patch centres around the nominal one,
builds the linear reduced model (:func:`biomech.rom.build_linear_rom`), checks it against full
solves at held-out load cases and stores it in the case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biomech.loads import SphereRegion
from registration import farthest_point_sample
from surgplan.scenario import ScenarioError
from surgplan.simulation import CaseProblem, load_case_problem

if TYPE_CHECKING:
    from biomech.rom import ReducedModel, TrainingSet

__all__ = ["CaseRomResult", "build_case_rom"]

#: Retractor push of the held-out validation load cases, mm.
VALIDATION_PUSH_MM = 8.0


@dataclass(frozen=True)
class CaseRomResult:
    """What :func:`build_case_rom` stored (``rom/linear``) and its held-out error.

    Attributes
    ----------
    artifact, path : str
        ``rom/linear`` and the ``.npz`` file relative to the case folder.
    kind : str
        ``"linear"``.
    n_modes, n_surface_points, n_targets, n_patch_centres : int
        Modes kept, surface vertices, interior targets, sampled patch centres.
    validation_max_vertex_error_mm : tuple[float, ...]
        Largest surface-vertex error (mm) against a full solve, per held-out load case.
    defaults : Mapping, optional
        Without a scenario: the liver supports chosen (:class:`~surgplan.liver_defaults.
        SupportChoice`), the model discrepancy and the stiffness spread (mm).
    """

    artifact: str
    path: str
    kind: str
    n_modes: int
    n_surface_points: int
    n_targets: int
    n_patch_centres: int
    validation_max_vertex_error_mm: tuple[float, ...]
    defaults: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready summary that ``surgplan rom --json`` prints.

        ``"defaults"`` (the liver supports chosen) is there only for a model built without a
        scenario, so the scenario path keeps its recorded keys.
        """
        out = {"artifact": self.artifact, "path": self.path, **self._meta()}
        if self.defaults is not None:
            out["defaults"] = dict(self.defaults)
        return out

    def _meta(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_modes": self.n_modes,
            "n_surface_points": self.n_surface_points,
            "n_targets": self.n_targets,
            "n_patch_centres": self.n_patch_centres,
            "validation_max_vertex_error_mm": list(self.validation_max_vertex_error_mm),
        }


def _retractor_site(prob: CaseProblem) -> SphereRegion:
    loads = prob.loads
    if not loads.displacements or not isinstance(loads.displacements[0].region, SphereRegion):
        raise ScenarioError("the scenario needs a [[retractors]] entry with a sphere region")
    return loads.displacements[0].region


def _validation_errors(
    prob: CaseProblem, rom: Any, near: np.ndarray, surf: np.ndarray, site_radius_mm: float,
    n_validation: int, seed: int,
) -> list[float]:  # fmt: skip
    """Largest surface error (mm) of ``rom`` against full solves at random held-out cases."""
    from biomech.rom import RomParameters, gravity_change_lps, load_case_for
    from biomech.tissue import solve_tissue

    site = _retractor_site(prob)
    pressure_region = prob.loads.pressures[0].region if prob.loads.pressures else None
    rng = np.random.default_rng(seed)
    centre = np.asarray(site.centre_mm)
    inner = near[np.linalg.norm(near - centre, axis=1) <= site_radius_mm * 2 / 3]
    errors = []
    for _ in range(n_validation):
        c = inner[rng.integers(len(inner))]
        d = rng.normal(size=3)
        g = gravity_change_lps(*rng.uniform(-30.0, 30.0, size=2))
        prm = RomParameters(
            tuple(c),
            tuple(d / np.linalg.norm(d) * VALIDATION_PUSH_MM),
            tuple(g),
            float(rng.uniform(0.0, 1.6)) if pressure_region is not None else 0.0,
        )
        loads = load_case_for(prm, prob.loads.supports, float(site.radius_mm), pressure_region)
        full = solve_tissue(prob.fe, prob.materials, loads, degree=1)
        ufe = full.evaluate_displacement_mm(surf)
        errors.append(float(np.linalg.norm(ufe - rom.evaluate(prm), axis=1).max()))
    return errors


def _surface_near_site(
    prob: CaseProblem, site: SphereRegion, site_radius_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """All boundary vertices (mm) and those within ``site_radius_mm`` of the retractor centre."""
    from biomech.geometry import boundary_points_mm

    surf = boundary_points_mm(prob.fe)
    near = surf[np.linalg.norm(surf - np.asarray(site.centre_mm), axis=1) <= site_radius_mm]
    if len(near) < 4:
        raise ScenarioError(
            f"fewer than 4 surface vertices within {site_radius_mm} mm of the retractor centre "
            f"{site.centre_mm}; is it on the organ surface?"
        )
    return surf, near


def _inner_region_points(prob: CaseProblem, limit: int = 500) -> np.ndarray:
    """(T, 3) mm: cell centres of the inner regions (tumour...), the model's targets."""
    region_ids = np.asarray(prob.grid.cell_data["region"])
    outer_id = np.bincount(region_ids).argmax()  # the organ has the most cells
    cc = np.asarray(prob.grid.cell_centers().points)
    return cc[region_ids != outer_id][:limit]


def _store(
    prob: CaseProblem, rom: ReducedModel, training: TrainingSet, errors: list[float]
) -> CaseRomResult:
    """Save the model with its held-out errors in the case as ``rom/linear`` (one transaction)."""
    rom.meta["validation_max_vertex_error_mm"] = errors
    result = CaseRomResult(
        artifact="rom/linear",
        path="rom/linear.npz",
        kind=rom.kind,
        n_modes=rom.n_modes,
        n_surface_points=rom.n_surface,
        n_targets=int(np.asarray(training.target_points_mm).shape[0]),
        n_patch_centres=int(len(training.patch_centres_mm)),
        validation_max_vertex_error_mm=tuple(errors),
    )
    with prob.case.transaction() as tx:
        rom.save(tx.path(result.path))
        tx.record_artifact("rom", "linear", result.path, result._meta())
    return result


def build_case_rom(
    case_dir: str | Path,
    scenario_path: str | Path | None = None,
    *,
    n_centres: int = 30,
    site_radius_mm: float = 15.0,
    n_validation: int = 2,
    seed: int = 0,
    real_time_modes: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> CaseRomResult:
    """Build the linear reduced model of a case and store it (``rom/linear.npz``).

    The scenario gives the supports, the nominal retractor patch (its first retractor's sphere:
    centre and radius) and the insufflation surface (its first pressure). Patch centres are
    sampled on the surface within ``site_radius_mm`` of the nominal centre (farthest-point
    sampling); ``n_validation`` held-out load cases (random centre within 2/3 of that radius,
    8 mm push in a random direction, 0-1.6 kPa, and gravity as the change from the supine CT
    pose for random head-up and lateral tilts within +-30 degrees,
    :func:`biomech.rom.gravity_change_lps`) are solved in full to report the error.

    Parameters
    ----------
    case_dir : str or Path
        The case folder (it must have a volume mesh).
    scenario_path : str or Path
        The scenario TOML file (:mod:`surgplan.scenario`).
    n_centres : int
        Sampled retractor patch centres (FE snapshots: 7 unit solves each).
    site_radius_mm : float
        Patch centres lie within this distance of the nominal centre, mm.
    n_validation : int
        Held-out load cases solved in full.
    seed : int
        Seed of the held-out load cases.
    real_time_modes : int
        Modes kept for real-time use.
    progress : callable, optional
        ``progress(done, total)`` after each patch centre.

    Without a scenario (``scenario_path=None``) the documented liver defaults are used instead
    (:func:`surgplan.case_rom_defaults.build_default_case_rom`: supports of
    :mod:`surgplan.liver_defaults`, patch centres over the whole surface, every volume vertex
    evaluated, discrepancy and stiffness spread stored); ``site_radius_mm`` is then unused.

    Returns
    -------
    CaseRomResult
    """
    from biomech.rom import BasisConfig, TrainingSet, build_linear_rom

    if scenario_path is None:
        from surgplan.case_rom_defaults import build_default_case_rom

        return build_default_case_rom(
            case_dir, n_centres=n_centres, n_validation=n_validation, seed=seed,
            real_time_modes=real_time_modes, progress=progress,
        )  # fmt: skip
    prob = load_case_problem(case_dir, scenario_path)
    site = _retractor_site(prob)
    surf, near = _surface_near_site(prob, site, site_radius_mm)
    centres = near[farthest_point_sample(near, n_centres, start=np.asarray(site.centre_mm))]
    targets = _inner_region_points(prob)
    training = TrainingSet(
        supports=tuple(prob.loads.supports),
        patch_centres_mm=centres,
        patch_radius_mm=float(site.radius_mm),
        surface_points_mm=surf,
        target_points_mm=targets,
        pressure_region=prob.loads.pressures[0].region if prob.loads.pressures else None,
    )
    rom = build_linear_rom(
        prob.fe, prob.materials, training, BasisConfig(centre_space="3d"), progress=progress
    )
    # >= 1,000 updates/s for a 20,000-vertex surface up to ~110 modes on one core
    # (benchmarks/biomech_rom.py, benchmarks/biomech_rom_liver.py).
    rom = rom.truncated(real_time_modes)
    errors = _validation_errors(prob, rom, near, surf, site_radius_mm, n_validation, seed)
    return _store(prob, rom, training, errors)
