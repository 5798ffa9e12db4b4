"""Building a case's real-time reduced deformation model (``rom/linear.npz``).

Without a scenario, :func:`build_default_case_rom` builds the model the twin uses from the
documented liver defaults (:mod:`surgplan.liver_defaults`). With one, the scenario
(:mod:`surgplan.scenario`) gives the supports, the nominal retractor patch and the insufflation
surface; :func:`build_case_rom` samples patch centres around the nominal one,
builds the linear reduced model (:func:`biomech.rom.build_linear_rom`), checks it against full
solves at held-out load cases and stores it in the case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biomech.loads import SphereRegion
from registration import farthest_point_sample
from surgplan.case_files import read_case_surface, read_case_volume_mesh
from surgplan.scenario import ScenarioError
from surgplan.simulation import CaseProblem, load_case_problem

if TYPE_CHECKING:
    from biomech.rom import ReducedModel, TrainingSet
    from surgplan.case import Case

__all__ = ["CaseRomResult", "build_case_rom", "build_default_case_rom"]

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
    case: Case,
    rom: ReducedModel,
    training: TrainingSet,
    errors: list[float],
    *,
    defaults: Mapping[str, Any] | None = None,
    extra_meta: Mapping[str, Any] | None = None,
) -> CaseRomResult:
    """Save the model in the case as ``rom/linear`` (one transaction), with its figures.

    The artifact's ``meta`` is the result's figures followed by ``extra_meta``.
    """
    result = CaseRomResult(
        artifact="rom/linear",
        path="rom/linear.npz",
        kind=rom.kind,
        n_modes=rom.n_modes,
        n_surface_points=rom.n_surface,
        n_targets=int(np.asarray(training.target_points_mm).shape[0]),
        n_patch_centres=int(len(training.patch_centres_mm)),
        validation_max_vertex_error_mm=tuple(errors),
        defaults=defaults,
    )
    # built on the mesh and surfaces read before the lock: refused if they changed meanwhile
    with case.transaction(depends_on=["volume_mesh", "surfaces"]) as tx:
        rom.save(tx.path(result.path))
        tx.record_artifact("rom", "linear", result.path, {**result._meta(), **(extra_meta or {})})
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
    (:func:`build_default_case_rom`: supports of
    :mod:`surgplan.liver_defaults`, patch centres over the whole surface, every volume vertex
    evaluated, discrepancy and stiffness spread stored); ``site_radius_mm`` is then unused.

    Returns
    -------
    CaseRomResult
    """
    from biomech.rom import BasisConfig, TrainingSet, build_linear_rom

    if scenario_path is None:
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
    rom.meta["validation_max_vertex_error_mm"] = errors
    return _store(prob.case, rom, training, errors)


# --- Without a scenario: the liver defaults, the model the twin uses -------------------------

#: Typical loads of the default model (POD weights and held-out cases): retractor push (mm),
#: gravity change of a 30-degree tilt (g) and insufflation pressure (kPa, 12 mmHg).
DEFAULT_PUSH_MM = 10.0
DEFAULT_TILT_DEG = 30.0
DEFAULT_PRESSURE_KPA = 1.6
#: Radius and stiffness of the spring retractor patch of the default model (mm, kPa/mm).
DEFAULT_PATCH_RADIUS_MM = 20.0
#: Young's modulus factors of the stiffness spread (+-30 %).
STIFFNESS_FACTORS = (0.7, 1.3)
#: Sampled load cases of the amplitude statistics.
N_AMPLITUDE_SAMPLES = 400


def _default_materials(regions: Mapping[str, int]) -> dict[int, Any]:
    """Region id -> material: tumour-like names get TUMOUR, everything else LIVER_HEALTHY."""
    from biomech.materials import LIVER_HEALTHY, TUMOUR

    lesion = ("tumour", "tumor", "lesion", "metastasis")
    return {
        rid: (TUMOUR if any(w in name.lower() for w in lesion) else LIVER_HEALTHY)
        for name, rid in regions.items()
    } or {1: LIVER_HEALTHY}


def _scaled(materials: Mapping[int, Any], factor: float) -> dict[int, Any]:
    from dataclasses import replace

    return {
        k: replace(m, youngs_modulus_kpa=m.youngs_modulus_kpa * factor)
        for k, m in materials.items()
    }


def _volume_points(grid: Any) -> tuple[np.ndarray, int, np.ndarray]:
    """Every vertex of the volume mesh, outer-surface vertices first; and remapped tetrahedra."""
    import pyvista as pv

    surf = grid.extract_surface(algorithm="dataset_surface")
    sid = np.unique(np.asarray(surf.point_data["vtkOriginalPointIds"], np.int64))
    rest = np.setdiff1d(np.arange(grid.n_points), sid)
    order = np.concatenate([sid, rest])
    inv = np.empty(grid.n_points, np.int64)
    inv[order] = np.arange(grid.n_points)
    tets = np.asarray(grid.cells_dict[pv.CellType.TETRA], np.int64)
    return np.asarray(grid.points, float)[order], int(sid.size), inv[tets].astype(np.int32)


def _random_parameters(rng: np.random.Generator, centres: np.ndarray, push_mm: float) -> Any:
    from biomech.rom import RomParameters, gravity_change_lps

    d = rng.normal(size=3)
    return RomParameters(
        tuple(centres[rng.integers(len(centres))]),
        tuple(d / np.linalg.norm(d) * push_mm),
        tuple(gravity_change_lps(*rng.uniform(-DEFAULT_TILT_DEG, DEFAULT_TILT_DEG, size=2))),
        float(rng.uniform(0.0, DEFAULT_PRESSURE_KPA)),
    )


def _amplitude_statistics(rom: Any, centres: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Mean and std (k,) of the amplitudes over sampled training load cases."""
    rng = np.random.default_rng(seed + 7919)
    amps = np.array(
        [
            rom.amplitudes(
                _random_parameters(rng, centres, float(rng.uniform(0.0, 2 * DEFAULT_PUSH_MM)))
            )
            for _ in range(N_AMPLITUDE_SAMPLES)
        ]
    )
    return amps.mean(axis=0), amps.std(axis=0)


def _errors(u_rom: np.ndarray, u_fe: np.ndarray, n_surface: int) -> dict[str, float]:
    e = np.linalg.norm(u_rom - u_fe, axis=1)
    s, i = e[:n_surface], e[n_surface:]
    return {
        "surface_max_mm": float(s.max()),
        "surface_rms_mm": float(np.sqrt(np.mean(s**2))),
        "interior_max_mm": float(i.max()) if i.size else 0.0,
        "interior_rms_mm": float(np.sqrt(np.mean(i**2))) if i.size else 0.0,
        "fe_peak_mm": float(np.linalg.norm(u_fe, axis=1).max()),
    }


def _held_out(
    prob: dict[str, Any], rom: Any, training: Any, n_validation: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Model discrepancy, stiffness spread and other-physics discrepancy (full FE solves).

    Held-out centres are surface vertices at least half the training spacing from every
    training centre; loads as :func:`_random_parameters` with a ``DEFAULT_PUSH_MM`` push.
    These are loads of the *same kind* as training (same supports, stiffness, load family).
    The third list is the basis' error on physics the model was not built with: the first
    held-out load at Young's modulus x0.7 and x1.3 (the stiffness-spread solves, whose shape
    differs from the nominal one because the supports' springs are not scaled) and with the
    ligaments released (other supports), each with the amplitudes fitted by least squares to
    the whole FE surface (the twin's situation).
    """
    from scipy.spatial import cKDTree

    from biomech.rom import load_case_for
    from biomech.tissue import solve_tissue

    pts, n_s = rom.points_mm, rom.n_surface
    centres = np.asarray(training.patch_centres_mm)
    spacing = float(np.median(cKDTree(centres).query(centres, k=2)[0][:, 1]))
    d, _ = cKDTree(centres).query(pts[:n_s])
    pool = pts[:n_s][d >= spacing / 2]
    rng = np.random.default_rng(seed)
    disc, spread, other = [], [], []
    for i in range(n_validation):
        prm = _random_parameters(rng, pool, DEFAULT_PUSH_MM)
        loads = load_case_for(
            prm, training.supports, training.patch_radius_mm, training.pressure_region
        )
        fe_u = solve_tissue(prob["fe"], prob["materials"], loads, degree=1)
        u_fe = fe_u.evaluate_displacement_mm(pts)
        row = _errors(rom.displacement_from_amplitudes(rom.amplitudes(prm)), u_fe, n_s)
        # the twin fits the amplitudes to surface data: the error left inside the organ when
        # they are fitted (least squares) to the whole FE surface is the basis' own error
        phi = np.asarray(rom.modes, float)
        a_s = np.linalg.lstsq(phi[:, :n_s].reshape(rom.n_modes, -1).T, u_fe[:n_s].ravel(),
                              rcond=None)[0]  # fmt: skip
        fit = _errors(rom.displacement_from_amplitudes(a_s), u_fe, n_s)
        row |= {f"surface_fit_{k}": v for k, v in fit.items() if k != "fe_peak_mm"}
        disc.append(row)
        if i == 0:  # stiffness spread: the first held-out case at E x 0.7 and E x 1.3
            for f in STIFFNESS_FACTORS:
                mats = _scaled(prob["materials"], f)
                u_f = solve_tissue(prob["fe"], mats, loads, degree=1).evaluate_displacement_mm(pts)
                row = _errors(u_f, u_fe, n_s)
                row["youngs_modulus_factor"] = f
                spread.append(row)
                other.append({"kind": f"youngs_modulus x{f:g}"} | _surface_fit(rom, u_f, n_s))
            # other supports: the same load with the ligaments released (bed sliding only)
            free = [sp for sp in training.supports if getattr(sp, "name", "") != "ligaments"]
            if len(free) < len(training.supports):
                loads_f = load_case_for(prm, free, training.patch_radius_mm,
                                        training.pressure_region)  # fmt: skip
                u_f = solve_tissue(prob["fe"], prob["materials"], loads_f, degree=1)
                other.append(
                    {"kind": "ligaments released"}
                    | _surface_fit(rom, u_f.evaluate_displacement_mm(pts), n_s)
                )
    return disc, spread, other


def _surface_fit(rom: Any, u_fe: np.ndarray, n_s: int) -> dict[str, float]:
    """Error left by the amplitudes fitted (least squares) to the whole FE surface (mm)."""
    phi = np.asarray(rom.modes, float)
    a_s = np.linalg.lstsq(phi[:, :n_s].reshape(rom.n_modes, -1).T, u_fe[:n_s].ravel(),
                          rcond=None)[0]  # fmt: skip
    fit = _errors(rom.displacement_from_amplitudes(a_s), u_fe, n_s)
    return {f"surface_fit_{k}": v for k, v in fit.items() if k != "fe_peak_mm"} | {
        "fe_peak_mm": fit["fe_peak_mm"]
    }


def build_default_case_rom(
    case_dir: str | Path,
    *,
    n_centres: int = 30,
    n_validation: int = 2,
    seed: int = 0,
    real_time_modes: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> CaseRomResult:
    """The case's reduced model from the documented liver defaults, for the twin.

    - Supports: :func:`surgplan.liver_defaults.default_liver_supports` with the case's
      surfaces (hepatic veins / vena cava when the case has them).
    - Loads: a spring retractor patch (20 mm, 10 kPa/mm) whose centre ranges over the WHOLE
      organ surface (``n_centres`` farthest-point samples), the gravity change of repositioning
      and insufflation pressure on the exposed surface (everything off the supports): 7 unit
      responses per centre, weighted by the typical loads (10 mm, 2 sin 15 deg g, 1.6 kPa).
    - Evaluation points: every vertex of the FE volume mesh (outer-surface vertices first),
      with the tetrahedra stored (``cells``) for :func:`biomech.rom.modes_at`.
    - Stored statistics (``meta`` and arrays): ``amplitude_mean`` / ``amplitude_std`` over
      400 sampled training load cases (a training centre, a 0-20 mm push in a random direction,
      head-up and lateral tilts within +-30 degrees, 0-1.6 kPa); ``"model_discrepancy"``, the
      max and RMS ROM-vs-FE error at surface and interior vertices over ``n_validation``
      held-out load cases (centres off the training centres, 10 mm push), both with the
      amplitudes the model predicts for the load (RBF) and, ``surface_fit_*``, with amplitudes
      fitted by least squares to the full FE surface displacement (the twin's situation: the
      error the basis leaves inside the organ); ``"stiffness_spread"``,
      the displacement difference of full FE solves of the first held-out case with Young's
      modulus x0.7 and x1.3 against the nominal one; ``"model_discrepancy_other_physics"``,
      the surface-fit errors on physics the model was not built with (those two stiffness
      solves, and the first held-out load with the ligaments released); and their per-axis
      standard deviations for the twin, ``"discrepancy_mm"`` / ``"surface_discrepancy_mm"``
      (largest surface-fit interior / surface RMS / sqrt 3 over the same-kind held-out AND the
      other-physics cases: same-kind held-out loads alone understate a real patient) and
      ``"stiffness_spread_mm"`` (largest interior RMS / sqrt 3).

    Parameters are those of :func:`build_case_rom`.
    """
    from surgplan.case import Case
    from surgplan.liver_defaults import default_liver_supports

    case = Case.open(case_dir)
    grid, fe, regions, surfaces = _case_volume(case)
    supports, choice = default_liver_supports(fe, surfaces)
    training, cells = _default_training(grid, supports, _exposed_surface(fe, supports), n_centres)
    rom = _default_rom(fe, _default_materials(regions), training, real_time_modes, progress)
    mean, std = _amplitude_statistics(rom, training.patch_centres_mm, seed)
    prob = {"fe": fe, "materials": _default_materials(regions)}
    disc, spread, other = _held_out(prob, rom, training, n_validation, seed)
    rom.meta.update(_default_meta(choice.to_dict(), disc, spread, other))
    rom = _with_arrays(rom, cells, mean, std)
    return _store(
        case,
        rom,
        training,
        [r["surface_max_mm"] for r in disc],
        defaults=choice.to_dict(),
        extra_meta={
            "defaults": choice.to_dict(),
            "model_discrepancy": disc,
            "model_discrepancy_other_physics": other,
            "stiffness_spread": spread,
        },
    )


def _case_volume(case: Case) -> tuple[Any, Any, dict[str, int], dict[str, np.ndarray]]:
    """The case's volume mesh (grid and FE mesh), its region ids and surface vertices (mm)."""
    from biomech.mesh import from_unstructured_grid

    grid = read_case_volume_mesh(case)
    regions = dict(case.manifest.volume_mesh.regions) if case.manifest.volume_mesh else {}
    fe = from_unstructured_grid(grid, region_names=regions)
    surfaces = {
        name: np.asarray(read_case_surface(case, name).points, float)
        for name in case.manifest.surfaces
    }
    return grid, fe, regions, surfaces


def _exposed_surface(fe: Any, supports: Sequence[Any]) -> Any:
    """The insufflated surface: boundary facets (midpoints) that no support holds."""
    from biomech.geometry import boundary_facets_mm
    from biomech.loads import NearPoints, selector_mask

    _, mid, _ = boundary_facets_mm(fe)
    held = np.zeros(len(mid), bool)
    for sp in supports:
        held |= selector_mask(sp.region, mid)
    if held.all():
        raise ScenarioError("the liver supports cover the whole surface: no exposed surface")
    return NearPoints(mid[~held], 1e-3)


def _default_training(
    grid: Any, supports: Sequence[Any], pressure_region: Any, n_centres: int
) -> tuple[TrainingSet, np.ndarray]:
    """Training loads over the whole surface, every volume vertex evaluated; and the cells."""
    from biomech.rom import TrainingSet

    pts, n_surface, cells = _volume_points(grid)
    surf = pts[:n_surface]
    training = TrainingSet(
        supports=supports,
        patch_centres_mm=surf[farthest_point_sample(surf, n_centres)],
        patch_radius_mm=DEFAULT_PATCH_RADIUS_MM,
        surface_points_mm=surf,
        target_points_mm=pts[n_surface:],
        pressure_region=pressure_region,
    )
    return training, cells


def _default_rom(
    fe: Any,
    materials: Mapping[int, Any],
    training: TrainingSet,
    real_time_modes: int,
    progress: Callable[[int, int], None] | None,
) -> ReducedModel:
    """The linear reduced model, POD-weighted by the typical loads, truncated for real time."""
    from biomech.rom import BasisConfig, build_linear_rom

    gmax = 2.0 * np.sin(np.radians(DEFAULT_TILT_DEG) / 2.0)
    scales = [DEFAULT_PUSH_MM] * 3 + [gmax] * 3 + [DEFAULT_PRESSURE_KPA]
    return build_linear_rom(
        fe, materials, training,
        BasisConfig(centre_space="3d", load_scales=scales), progress=progress,
    ).truncated(real_time_modes)  # fmt: skip


def _default_meta(
    supports: Mapping[str, Any],
    disc: list[dict[str, float]],
    spread: list[dict[str, float]],
    other: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The model's ``meta``: supports, what was evaluated and the discrepancy statistics.

    ``discrepancy_mm`` / ``surface_discrepancy_mm`` (per-axis standard deviations for the
    twin, inside the organ / on its surface) are the LARGER of the same-kind held-out figure
    and the other-physics one (other stiffness, other supports): held-out loads of the
    training's own kind understate what a real patient's unmodelled physics leaves.
    """
    sqrt3 = float(np.sqrt(3.0))
    rows = [*disc, *other]
    return {
        "supports": supports,
        "evaluation_points": "every FE volume vertex, outer-surface vertices first; cells",
        "amplitude_statistics": (
            f"{N_AMPLITUDE_SAMPLES} load cases: a training centre, 0-20 mm push in a random "
            "direction, tilts within +-30 deg (change from supine), 0-1.6 kPa"
        ),
        "model_discrepancy": disc,
        "model_discrepancy_other_physics": list(other),
        "stiffness_spread": spread,
        "discrepancy_mm": (
            max(r["surface_fit_interior_rms_mm"] for r in rows) / sqrt3 if rows else 0.0
        ),
        "surface_discrepancy_mm": (
            max(r["surface_fit_surface_rms_mm"] for r in rows) / sqrt3 if rows else 0.0
        ),
        "discrepancy_source": (
            "largest surface-fit RMS / sqrt 3 over held-out loads of the training kind and "
            "over other physics (Young's modulus x0.7, x1.3; ligaments released)"
        ),
        "stiffness_spread_mm": (
            max(r["interior_rms_mm"] for r in spread) / sqrt3 if spread else 0.0
        ),
    }


def _with_arrays(rom: Any, cells: np.ndarray, mean: np.ndarray, std: np.ndarray) -> Any:
    from dataclasses import replace

    return replace(rom, cells=cells, amplitude_mean=mean, amplitude_std=std)
