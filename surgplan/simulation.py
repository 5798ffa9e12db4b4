"""App glue for tissue mechanics: scenario TOML -> biomech solve -> result stored in a case.

A scenario file (all lengths mm, pressures kPa)::

    name = "retraction"                       # artifact name (default: file stem)
    [model]
    type = "linear"                            # or "neohookean"
    degree = 1
    load_steps = 4
    [materials]                                # region name -> preset name or table
    default = "liver_healthy"
    tumour = "tumour"
    # tumour = { youngs_modulus_kpa = 20.0, poisson_ratio = 0.45 }
    [[supports]]                               # fixed regions
    region = { type = "sphere", centre_mm = [0, 0, -20], radius_mm = 12 }
    # region = { type = "near_surface", surface = "hepatic_veins", distance_mm = 3 }
    [[retractors]]
    region = { type = "sphere", centre_mm = [0, 0, 20], radius_mm = 10 }
    displacement_mm = [0, 0, 8]
    profile = "bump"                           # "uniform", "bump" or "spring"
    [[pressures]]
    region = { type = "all" }
    pressure_kpa = 1.6
    [gravity]
    direction = [0, 0, -1]

Region types: ``sphere``, ``plane`` (``point_mm``, ``normal``, ``tolerance_mm``), ``all``,
``near_surface`` (a surface of the case, by name), ``points`` (``points_mm``, ``distance_mm``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv

from biomech.loads import (
    AllBoundary,
    FixedSupport,
    Gravity,
    LoadCase,
    NearPoints,
    PlaneRegion,
    PrescribedDisplacement,
    Pressure,
    Selector,
    SphereRegion,
)
from biomech.materials import Material, get_material
from surgplan.case import Case
from surgplan.errors import SurgplanError


class ScenarioError(SurgplanError):
    """A scenario file is missing, not TOML, or names an unknown field or value."""


def read_scenario(path: str | Path) -> dict[str, Any]:
    """Parse a scenario TOML file.

    Raises
    ------
    ScenarioError
        If the file does not exist or is not valid TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"scenario file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"scenario {path} is not valid TOML: {exc}") from None


def _vec(value: Any, field: str, n: int = 3) -> tuple[float, ...]:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ScenarioError(f"{field} must be {n} numbers, got {value!r}") from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ScenarioError(f"{field} must be {n} finite numbers, got {value!r}")
    return tuple(float(v) for v in arr)


def region_from_spec(spec: Any, field: str, case: Case | None = None) -> Selector:
    """Build a biomech region selector from a scenario table."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ScenarioError(f"{field} must be a table with a 'type', got {spec!r}")
    kind = spec["type"]
    if kind == "sphere":
        return SphereRegion(
            _vec(spec.get("centre_mm"), f"{field}.centre_mm"), float(spec.get("radius_mm", 0))
        )  # type: ignore[arg-type]
    if kind == "plane":
        return PlaneRegion(
            _vec(spec.get("point_mm"), f"{field}.point_mm"),
            _vec(spec.get("normal"), f"{field}.normal"),
            float(spec.get("tolerance_mm", 1e-3)),
        )
    if kind == "all":
        return AllBoundary()
    if kind == "points":
        pts = np.asarray(spec.get("points_mm", []), dtype=float).reshape(-1, 3)
        return NearPoints(pts, float(spec.get("distance_mm", 2.0)))
    if kind == "near_surface":
        if case is None:
            raise ScenarioError(f"{field}: near_surface needs a case")
        name = spec.get("surface")
        entry = case.manifest.surfaces.get(name) if isinstance(name, str) else None
        if entry is None:
            have = sorted(case.manifest.surfaces)
            raise ScenarioError(f"{field}: case has no surface {name!r} (surfaces: {have})")
        pts = np.asarray(pv.read(case.file(entry.path)).points, dtype=float)
        return NearPoints(pts, float(spec.get("distance_mm", 2.0)))
    raise ScenarioError(
        f"{field}.type must be sphere, plane, all, points or near_surface, got {kind!r}"
    )


def _material(spec: Any, field: str) -> Material:
    if isinstance(spec, str):
        return get_material(spec)
    if isinstance(spec, dict):
        try:
            return Material(
                field,
                float(spec["youngs_modulus_kpa"]),
                float(spec["poisson_ratio"]),
                float(spec.get("density_kg_m3", 1060.0)),
            )
        except KeyError as exc:
            raise ScenarioError(f"{field} lacks {exc.args[0]!r}") from None
    raise ScenarioError(f"{field} must be a preset name or a table, got {spec!r}")


def scenario_loads(scn: dict[str, Any], case: Case | None = None) -> LoadCase:
    """The :class:`~biomech.loads.LoadCase` of a scenario."""
    supports = [
        FixedSupport(
            region_from_spec(s.get("region"), f"supports[{i}].region", case), name=f"support {i}"
        )
        for i, s in enumerate(scn.get("supports", []))
    ]
    retractors = [
        PrescribedDisplacement(
            region_from_spec(r.get("region"), f"retractors[{i}].region", case),
            _vec(r.get("displacement_mm"), f"retractors[{i}].displacement_mm"),  # type: ignore[arg-type]
            profile=str(r.get("profile", "bump")),
            name=f"retractor {i}",
        )
        for i, r in enumerate(scn.get("retractors", []))
    ]
    pressures = [
        Pressure(
            region_from_spec(p.get("region"), f"pressures[{i}].region", case),
            float(p.get("pressure_kpa", 0.0)),
            name=f"pressure {i}",
        )
        for i, p in enumerate(scn.get("pressures", []))
    ]
    gravity = None
    if "gravity" in scn:
        gravity = Gravity(_vec(scn["gravity"].get("direction"), "gravity.direction"))  # type: ignore[arg-type]
    return LoadCase(
        supports=supports, displacements=retractors, pressures=pressures, gravity=gravity
    )


def scenario_materials(scn: dict[str, Any], regions: dict[str, int]) -> dict[int, Material]:
    """Region id -> material from the scenario's ``[materials]`` table."""
    table = scn.get("materials", {"default": "liver_healthy"})
    default = table.get("default", "liver_healthy")
    out = {}
    for name, rid in regions.items():
        out[int(rid)] = _material(table.get(name, default), f"materials.{name}")
    unknown = [k for k in table if k != "default" and k not in regions]
    if unknown:
        raise ScenarioError(
            f"materials for unknown region(s) {unknown}; regions: {sorted(regions)}"
        )
    return out


def simulate_case(case_dir: str | Path, scenario_path: str | Path) -> dict[str, Any]:
    """Run a scenario on a case's volume mesh and store the result (VTU + XDMF) in the case.

    Nothing is written to the case if anything fails.

    Returns
    -------
    dict
        Summary: artifact path, dofs, max displacement (mm), max von Mises stress (kPa)...
    """
    from biomech.mesh import from_unstructured_grid
    from biomech.tissue import solve_tissue

    case = Case.open(case_dir)
    scn = read_scenario(scenario_path)
    mesh_path = case.volume_mesh_path()
    regions = dict(case.manifest.volume_mesh.regions)  # type: ignore[union-attr]
    grid = pv.read(mesh_path)
    fe = from_unstructured_grid(grid, region_names=regions)
    model = scn.get("model", {})
    name = str(scn.get("name", Path(scenario_path).stem))
    res = solve_tissue(
        fe,
        scenario_materials(scn, regions),
        scenario_loads(scn, case),
        model=model.get("type", "linear"),
        degree=int(model.get("degree", 1)),
        load_steps=int(model.get("load_steps", 1)),
    )
    out = res.to_pyvista()
    umax = float(np.linalg.norm(out.point_data["displacement_mm"], axis=1).max())
    vmmax = float(out.cell_data["von_mises_kpa"].max())
    rel = f"fe/{name}.vtu"
    with case.transaction() as tx:
        res.write_vtu(str(tx.path(rel)))
        xdmf = tx.path(f"fe/{name}.xdmf")
        tx.path(f"fe/{name}.h5")
        res.write_xdmf(str(xdmf))
        meta = {
            "model": res.model,
            "dofs": res.info.num_dofs,
            "newton_iterations": res.info.newton_iterations,
            "max_displacement_mm": umax,
            "max_von_mises_kpa": vmmax,
            "xdmf": f"fe/{name}.xdmf",
            "scenario": scn,
        }
        tx.record_artifact("fe_result", name, rel, meta)
    return {
        "artifact": f"fe_result/{name}",
        "path": rel,
        **{k: v for k, v in meta.items() if k != "scenario"},
    }


def farthest_point_sample(points: np.ndarray, n: int, start: np.ndarray) -> np.ndarray:
    """``n`` well-spread points of ``points``, starting nearest to ``start``."""
    sel = [int(np.argmin(np.linalg.norm(points - start, axis=1)))]
    dist = np.linalg.norm(points - points[sel[0]], axis=1)
    for _ in range(min(n, len(points)) - 1):
        nxt = int(np.argmax(dist))
        sel.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(points - points[nxt], axis=1))
    return points[sel]


def build_case_rom(
    case_dir: str | Path,
    scenario_path: str | Path,
    *,
    n_centres: int = 30,
    site_radius_mm: float = 15.0,
    n_validation: int = 2,
    seed: int = 0,
    real_time_modes: int = 100,
    progress: Any = None,
) -> dict[str, Any]:
    """Build the linear reduced model of a case and store it (``rom/linear.npz``).

    The scenario gives the supports, the nominal retractor patch (its first retractor's sphere:
    centre and radius) and the insufflation surface (its first pressure). Patch centres are
    sampled on the surface within ``site_radius_mm`` of the nominal centre; ``n_validation``
    held-out load cases (random centre within 2/3 of that radius, 8 mm push in a random
    direction, 0-1.6 kPa, and gravity as the change from the supine CT pose for random head-up
    and lateral tilts within +-30 degrees, :func:`biomech.rom.gravity_change_lps`) are solved
    in full to report the error.
    """
    from biomech.geometry import boundary_points_mm
    from biomech.mesh import from_unstructured_grid
    from biomech.rom import RomParameters, build_linear_rom, gravity_change_lps, load_case_for
    from biomech.tissue import solve_tissue

    case = Case.open(case_dir)
    scn = read_scenario(scenario_path)
    regions = dict(case.manifest.volume_mesh.regions) if case.manifest.volume_mesh else {}
    grid = pv.read(case.volume_mesh_path())
    fe = from_unstructured_grid(grid, region_names=regions)
    mats = scenario_materials(scn, regions)
    loads = scenario_loads(scn, case)
    if not loads.displacements or not isinstance(loads.displacements[0].region, SphereRegion):
        raise ScenarioError("the scenario needs a [[retractors]] entry with a sphere region")
    site = loads.displacements[0].region
    radius = float(site.radius_mm)
    pressure_region = loads.pressures[0].region if loads.pressures else None
    surf = boundary_points_mm(fe)
    near = surf[np.linalg.norm(surf - np.asarray(site.centre_mm), axis=1) <= site_radius_mm]
    if len(near) < 4:
        raise ScenarioError(
            f"fewer than 4 surface vertices within {site_radius_mm} mm of the retractor centre "
            f"{site.centre_mm}; is it on the organ surface?"
        )
    centres = farthest_point_sample(near, n_centres, np.asarray(site.centre_mm))
    region_ids = np.asarray(grid.cell_data["region"])
    outer_id = np.bincount(region_ids).argmax()
    cc = np.asarray(grid.cell_centers().points)
    targets = cc[region_ids != outer_id][:500]
    rom = build_linear_rom(
        fe,
        mats,
        supports=loads.supports,
        patch_centres_mm=centres,
        patch_radius_mm=radius,
        surface_points_mm=surf,
        target_points_mm=targets,
        pressure_region=pressure_region,
        progress=progress,
        centre_space="3d",
    )
    # >= 1,000 updates/s for a 20,000-vertex surface up to ~110 modes on one core
    # (benchmarks/biomech_rom.py, benchmarks/biomech_rom_liver.py).
    rom = rom.truncated(real_time_modes)
    rng = np.random.default_rng(seed)
    inner = near[
        np.linalg.norm(near - np.asarray(site.centre_mm), axis=1) <= site_radius_mm * 2 / 3
    ]
    errors = []
    for _ in range(n_validation):
        c = inner[rng.integers(len(inner))]
        d = rng.normal(size=3)
        g = gravity_change_lps(*rng.uniform(-30.0, 30.0, size=2))
        prm = RomParameters(
            tuple(c),
            tuple(d / np.linalg.norm(d) * 8.0),
            tuple(g),
            float(rng.uniform(0.0, 1.6)) if pressure_region is not None else 0.0,
        )
        full = solve_tissue(
            fe, mats, load_case_for(prm, loads.supports, radius, pressure_region), degree=1
        )
        ufe = full.evaluate_displacement_mm(surf)
        errors.append(float(np.linalg.norm(ufe - rom.evaluate(prm), axis=1).max()))
    rom.meta["validation_max_vertex_error_mm"] = errors
    rel = "rom/linear.npz"
    with case.transaction() as tx:
        rom.save(tx.path(rel))
        meta = {
            "kind": rom.kind,
            "n_modes": rom.n_modes,
            "n_surface_points": rom.n_surface,
            "n_targets": int(targets.shape[0]),
            "n_patch_centres": int(len(centres)),
            "validation_max_vertex_error_mm": errors,
        }
        tx.record_artifact("rom", "linear", rel, meta)
    return {"artifact": "rom/linear", "path": rel, **meta}


def liver_retraction_demo(
    out_dir: str | Path,
    liver_models_dir: str | Path,
    *,
    target_edge_mm: float = 6.0,
    lift_mm: float = 15.0,
    model: str = "linear",
) -> dict[str, Any]:
    """Real liver (``liver.vtk`` with ``liver_tumours.vtk`` inside) retracted, end to end.

    The hepatic veins are the fixed support (boundary facets within 5 mm of the vein model,
    where they leave the liver towards the vena cava); a 20 mm retractor patch at the most
    inferior point of the liver lifts it by ``lift_mm`` (LPS +z, superior). Writes
    ``liver_retraction.vtu``, ``liver_retraction.xdmf`` and a picture coloured by displacement
    (``liver_retraction.png``) into ``out_dir``.
    """
    from biomech.loads import LoadCase
    from biomech.materials import LIVER_HEALTHY, TUMOUR
    from biomech.mesh import from_unstructured_grid
    from biomech.tissue import solve_tissue
    from imaging.volume_mesh import tetrahedralize

    src = Path(liver_models_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    surfaces = {
        "liver": pv.read(src / "liver.vtk"),
        "tumour": pv.read(src / "liver_tumours.vtk"),
    }
    veins = np.asarray(pv.read(src / "hepatic_veins.vtk").points, dtype=float)
    vm = tetrahedralize(surfaces, outer="liver", inner=["tumour"], target_edge_mm=target_edge_mm)
    fe = from_unstructured_grid(vm.grid, region_names=vm.regions)
    boundary = np.asarray(vm.boundary.points)
    lowest = boundary[np.argmin(boundary[:, 2])]
    loads = LoadCase(
        supports=[FixedSupport(NearPoints(veins, 5.0), name="hepatic veins")],
        displacements=[
            PrescribedDisplacement(
                SphereRegion(tuple(lowest), 20.0), (0.0, 0.0, lift_mm), profile="bump"
            )
        ],
    )
    mats = {vm.regions["liver"]: LIVER_HEALTHY}
    if "tumour" in vm.regions:
        mats[vm.regions["tumour"]] = TUMOUR
    res = solve_tissue(fe, mats, loads, model=model, degree=1, load_steps=4)  # type: ignore[arg-type]
    grid = res.to_pyvista()
    res.write_vtu(str(out / "liver_retraction.vtu"))
    res.write_xdmf(str(out / "liver_retraction.xdmf"))
    mag = np.linalg.norm(grid.point_data["displacement_mm"], axis=1)
    grid.point_data["|u| mm"] = mag
    warped = grid.warp_by_vector("displacement_mm")
    plotter = pv.Plotter(off_screen=True, window_size=(900, 700))
    plotter.add_mesh(
        grid.extract_surface(algorithm="dataset_surface"),
        style="wireframe",
        color="grey",
        opacity=0.15,
    )
    plotter.add_mesh(
        warped.extract_surface(algorithm="dataset_surface"), scalars="|u| mm", cmap="viridis"
    )
    plotter.view_vector((0.3, -1.0, -0.6), viewup=(0.0, 0.0, 1.0))  # anterior-inferior (LPS)
    picture = out / "liver_retraction.png"
    plotter.screenshot(str(picture))
    plotter.close()
    tumour_disp = 0.0
    if "tumour" in vm.regions:
        cells = grid.cell_data["region"] == vm.regions["tumour"]
        sub = grid.extract_cells(np.flatnonzero(cells))
        tumour_disp = float(np.linalg.norm(sub.point_data["displacement_mm"], axis=1).max())
    return {
        "cells": fe.num_cells_global(),
        "dofs": res.info.num_dofs,
        "regions": vm.regions,
        "max_displacement_mm": float(mag.max()),
        "max_tumour_displacement_mm": tumour_disp,
        "max_von_mises_kpa": float(grid.cell_data["von_mises_kpa"].max()),
        "picture": str(picture),
        "vtu": str(out / "liver_retraction.vtu"),
    }
