"""Solving a case: scenario TOML -> biomech solve -> result stored in the case.

The scenario format is described (and validated) in :mod:`surgplan.scenario`; the case's
reduced model is built by :mod:`surgplan.case_rom`, the rendered real-liver retraction by
:mod:`surgplan.retraction_demo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv

from biomech.loads import LoadCase
from biomech.materials import Material
from biomech.mesh import FEMesh
from surgplan.case import Case
from surgplan.case_files import read_case_surface, read_case_volume_mesh
from surgplan.scenario import (
    Scenario,
    ScenarioError,
    read_scenario,
    scenario_loads,
    scenario_materials,
)

__all__ = ["CaseProblem", "SimulationResult", "load_case_problem", "simulate_case"]


@dataclass(frozen=True)
class CaseProblem:
    """A case's volume mesh with a scenario's loads and materials, ready to solve.

    Attributes
    ----------
    case : Case
        The opened case.
    scenario : Scenario
        The validated scenario.
    grid : pyvista.UnstructuredGrid
        The case's volume mesh (mm, cell data ``region``).
    fe : FEMesh
        The same mesh for DOLFINx.
    regions : dict[str, int]
        Region name -> cell region id.
    materials : dict[int, Material]
        Region id -> material.
    loads : LoadCase
        Supports and loads of the scenario.
    """

    case: Case
    scenario: Scenario
    grid: pv.UnstructuredGrid
    fe: FEMesh
    regions: dict[str, int]
    materials: dict[int, Material]
    loads: LoadCase


def case_surface_points(case: Case) -> Any:
    """``points(name) -> (N, 3)`` mm: vertices of one of the case's surfaces, by name."""

    def points(name: str) -> np.ndarray:
        entry = case.manifest.surfaces.get(name)
        if entry is None:
            have = sorted(case.manifest.surfaces)
            raise ScenarioError(f"near_surface: case has no surface {name!r} (surfaces: {have})")
        return np.asarray(read_case_surface(case, name).points, dtype=float)

    return points


def load_case_problem(case_dir: str | Path, scenario_path: str | Path) -> CaseProblem:
    """Open a case, read and validate a scenario, and build the problem to solve.

    Parameters
    ----------
    case_dir : str or Path
        The case folder (it must have a volume mesh).
    scenario_path : str or Path
        The scenario TOML file (:mod:`surgplan.scenario`).

    Raises
    ------
    ScenarioError
        If the scenario is invalid or does not fit the case (unknown region or surface).
    """
    from biomech.mesh import from_unstructured_grid

    case = Case.open(case_dir)
    scn = read_scenario(scenario_path)
    grid = read_case_volume_mesh(case)
    regions = dict(case.manifest.volume_mesh.regions) if case.manifest.volume_mesh else {}
    return CaseProblem(
        case=case,
        scenario=scn,
        grid=grid,
        fe=from_unstructured_grid(grid, region_names=regions),
        regions=regions,
        materials=scenario_materials(scn, regions),
        loads=scenario_loads(scn, case_surface_points(case)),
    )


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate_case` stored (``fe_result/<name>``) and its headline numbers.

    Attributes
    ----------
    artifact : str
        ``fe_result/<name>``.
    path : str
        The VTU file, relative to the case folder.
    model : str
        ``"linear"`` or ``"neohookean"``.
    dofs : int
        Unknowns of the finite-element problem.
    newton_iterations : tuple[int, ...]
        Newton iterations per accepted load step.
    max_displacement_mm : float
        Largest nodal displacement, mm.
    max_von_mises_kpa : float
        Largest cell von Mises stress, kPa.
    xdmf : str
        The XDMF file, relative to the case folder.
    """

    artifact: str
    path: str
    model: str
    dofs: int
    newton_iterations: tuple[int, ...]
    max_displacement_mm: float
    max_von_mises_kpa: float
    xdmf: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready summary that ``surgplan simulate --json`` prints."""
        return {
            "artifact": self.artifact,
            "path": self.path,
            "model": self.model,
            "dofs": self.dofs,
            "newton_iterations": list(self.newton_iterations),
            "max_displacement_mm": self.max_displacement_mm,
            "max_von_mises_kpa": self.max_von_mises_kpa,
            "xdmf": self.xdmf,
        }


def simulate_case(case_dir: str | Path, scenario_path: str | Path) -> SimulationResult:
    """Run a scenario on a case's volume mesh and store the result (VTU + XDMF) in the case.

    Nothing is written to the case if anything fails.

    Parameters
    ----------
    case_dir : str or Path
        The case folder (it must have a volume mesh).
    scenario_path : str or Path
        The scenario TOML file (:mod:`surgplan.scenario`; mm, kPa).

    Returns
    -------
    SimulationResult
        Artifact path, dofs, max displacement (mm), max von Mises stress (kPa)...
    """
    from biomech.tissue import solve_tissue

    prob = load_case_problem(case_dir, scenario_path)
    scn = prob.scenario
    name = scn.name or Path(scenario_path).stem
    res = solve_tissue(
        prob.fe,
        prob.materials,
        prob.loads,
        model=scn.model.type,
        degree=scn.model.degree,
        load_steps=scn.model.load_steps,
    )
    out = res.to_pyvista()
    result = SimulationResult(
        artifact=f"fe_result/{name}",
        path=f"fe/{name}.vtu",
        model=res.model,
        dofs=res.info.num_dofs,
        newton_iterations=tuple(res.info.newton_iterations),
        max_displacement_mm=float(np.linalg.norm(out.point_data["displacement_mm"], axis=1).max()),
        max_von_mises_kpa=float(out.cell_data["von_mises_kpa"].max()),
        xdmf=f"fe/{name}.xdmf",
    )
    # solved on the mesh and surfaces read before the lock: refused if they changed meanwhile
    with prob.case.transaction(depends_on=["volume_mesh", "surfaces"]) as tx:
        res.write_vtu(str(tx.path(result.path)))
        tx.path(f"fe/{name}.h5")
        res.write_xdmf(str(tx.path(result.xdmf)))
        meta = {k: v for k, v in result.to_dict().items() if k not in ("artifact", "path")}
        meta["scenario"] = scn.model_dump(mode="json", exclude_unset=True)
        files = [result.xdmf, f"fe/{name}.h5"]
        tx.record_artifact("fe_result", name, result.path, meta, files=files)
    return result
