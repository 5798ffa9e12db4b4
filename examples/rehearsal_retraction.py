"""Rehearsal: simulate a liver retraction, build its reduced model, deform it in real time.

Goal: show how a surgeon's rehearsal gets from a planning case to a liver that deforms under a
virtual retractor at interactive rates, and how much the fast answer can be trusted. On the
bundled phantom we (1) predict one retraction with the full finite-element model from a
scenario file, (2) build the case's reduced model from unit finite-element responses at retractor
positions sampled around that one, (3) deform the liver with it for a retractor placement and
push it was not trained on, timing many updates, and (4) check that answer against a fresh full
finite-element solve of the same load: the surface agrees to a stated tolerance and the tumour
moves with the tissue. All lengths are LPS millimetres, stresses kPa.

Run: ``python examples/rehearsal_retraction.py [OUT]`` (about a minute on one core). The CLI
equivalent is ``surgplan simulate CASE --scenario retraction.toml`` then
``surgplan rom CASE --scenario retraction.toml``.
"""

# ## The case
#
# The phantom's CT and its ground-truth label map become a planning case (as in
# ``examples/case_from_label_map.py``); the liver is tetrahedralised with its tumour as a
# separate region. An 8 mm edge keeps every solve below a second or two.

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pyvista as pv

from biomech.rom import ReducedModel, RomParameters, load_case_for, load_reduced_model
from biomech.tissue import solve_tissue
from surgplan.case_rom import VALIDATION_PUSH_MM, CaseRomResult, build_case_rom
from surgplan.meshing import build_meshes
from surgplan.sample_data import ensure_sample_data
from surgplan.scan_import import import_scan
from surgplan.segment import import_label_map
from surgplan.simulation import SimulationResult, load_case_problem, simulate_case

EDGE_MM = 8.0  # tetrahedron edge, mm
LIFT_MM = 10.0  # the scenario's retractor lift towards the head (+z), mm
PATCH_RADIUS_MM = 20.0  # retractor patch radius, mm
N_CENTRES = 20  # retractor positions the reduced model is trained on (7 unit solves each)
SITE_RADIUS_MM = 25.0  # they lie on the surface within this distance of the nominal one, mm
UPDATES = 2000  # reduced-model evaluations timed


def build_case(out: Path) -> tuple[Path, dict]:
    """The phantom as a case with a liver + tumour volume mesh; also the phantom's seeds."""
    sample = ensure_sample_data()
    case = out / "case"
    import_scan(sample.folder / "phantom_ct.nii.gz", case)
    import_label_map(
        case,
        sample.folder / "phantom_labels.nrrd",
        sample.folder / "phantom_labels.json",
        structures=["liver", "tumour"],
    )
    build_meshes(case, edge_mm=EDGE_MM)
    return case, sample.seeds_lps_mm


# ## The scenario
#
# The hepatic veins hold the liver where they join the vena cava (a fixed 25 mm sphere around
# their root); a retractor patch at the most inferior point of the liver lifts it towards the
# head. The scenario is validated before anything is solved (a typo such as ``[[retractor]]``
# is refused, naming the file and the field).


def point(p: np.ndarray) -> str:
    """A TOML array of three coordinates, mm."""
    return "[" + ", ".join(f"{float(c):.3f}" for c in p) + "]"


def write_scenario(case: Path, seeds: dict, path: Path) -> np.ndarray:
    """Write the retraction scenario to ``path``; return the retractor's nominal centre, mm."""
    boundary = pv.read(case / "meshes" / "volume.vtu").extract_surface(algorithm="dataset_surface")
    lowest = np.asarray(boundary.points)[np.argmin(boundary.points[:, 2])]
    path.write_text(
        f"""name = "retraction"
[model]
type = "linear"
[materials]
default = "liver_healthy"
tumour = "tumour"
[[supports]]
region = {{ type = "sphere", centre_mm = {point(seeds["hepatic_veins"])}, radius_mm = 25.0 }}
[[retractors]]
region = {{ type = "sphere", centre_mm = {point(lowest)}, radius_mm = {PATCH_RADIUS_MM} }}
displacement_mm = [0.0, 0.0, {LIFT_MM}]
profile = "bump"
"""
    )
    return lowest


# ## 1. The full finite-element prediction
#
# ``simulate_case`` solves the scenario on the case's mesh and stores the field (VTU and XDMF,
# for ParaView) in the case as ``fe_result/retraction``.


def full_prediction(case: Path, scenario: Path) -> SimulationResult:
    """The scenario solved by finite elements and stored in the case."""
    t0 = time.perf_counter()
    sim = simulate_case(case, scenario)
    print(
        f"full FE: {sim.dofs} dofs, max |u| = {sim.max_displacement_mm:.4f} mm, "
        f"max von Mises = {sim.max_von_mises_kpa:.2f} kPa ({time.perf_counter() - t0:.1f} s)"
    )
    return sim


# ## 2. The reduced model
#
# For a fixed retractor position the linear response is exactly linear in the push, the gravity
# change and the pressure, so 7 unit solves per sampled position give it exactly; POD compresses
# the responses into modes and a cubic RBF interpolates their coefficients between positions.
# Two held-out load cases are solved in full to report the error; the model is stored in the
# case as ``rom/linear.npz``.


def reduced_model(case: Path, scenario: Path) -> CaseRomResult:
    """The case's linear reduced model, built and stored."""
    t0 = time.perf_counter()
    info = build_case_rom(
        case, scenario, n_centres=N_CENTRES, site_radius_mm=SITE_RADIUS_MM, n_validation=2
    )
    print(
        f"reduced model: {info.n_modes} modes from {info.n_patch_centres} positions, "
        f"held-out max error {max(info.validation_max_vertex_error_mm):.2f} mm "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return info


# ## 3. Deforming in real time
#
# The stored model is plain arrays: loading and evaluating it needs no finite-element library.
# The new retractor placement is the surface vertex near the nominal centre that lies farthest
# from every trained position (the hardest place to interpolate); the new push goes up, forward
# and to the side. A rehearsal updates the push every frame, so we time a sweep of pushes.


def untrained_centre(rom: ReducedModel, surface: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """The surface vertex within half the site radius of ``nominal`` farthest from training."""
    trained = rom.rbf_centres + rom.plane_origin  # centre_space="3d": centres less an origin
    near = surface[np.linalg.norm(surface - nominal, axis=1) <= SITE_RADIUS_MM / 2]
    gap = np.linalg.norm(near[:, None] - trained[None], axis=2).min(axis=1)
    print(f"new retractor position: {gap.max():.1f} mm from the nearest trained one")
    return near[np.argmax(gap)]


def time_updates(rom: ReducedModel, params: RomParameters) -> float:
    """Updates per second of the surface displacement over a sweep of pushes."""
    push = np.asarray(params.displacement_mm)
    t0 = time.perf_counter()
    for i in range(UPDATES):
        rom.evaluate(RomParameters(params.patch_centre_mm, tuple(push * (i + 1) / UPDATES)))
    rate = UPDATES / (time.perf_counter() - t0)
    print(f"{rate:,.0f} updates/s for {rom.n_surface} surface vertices, {rom.n_modes} modes")
    return rate


# ## 4. How far can it be trusted?
#
# The same load as a fresh full finite-element solve: :func:`biomech.rom.load_case_for` builds
# the load case the parameters stand for (the spring retractor the model was trained with).


def full_solve_at(
    case: Path, scenario: Path, params: RomParameters, points: np.ndarray
) -> np.ndarray:
    """Full finite-element displacement (mm) at ``points`` for the load ``params``."""
    prob = load_case_problem(case, scenario)
    loads = load_case_for(params, prob.loads.supports, PATCH_RADIUS_MM, None)
    return solve_tissue(prob.fe, prob.materials, loads, degree=1).evaluate_displacement_mm(points)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("rehearsal_output")
    out.mkdir(parents=True, exist_ok=True)
    case, seeds = build_case(out)
    scenario = out / "retraction.toml"
    nominal = write_scenario(case, seeds, scenario)
    sim = full_prediction(case, scenario)
    # The bump patch moves its centre vertex by exactly the prescribed lift.
    assert abs(sim.max_displacement_mm - LIFT_MM) < 1e-6 * LIFT_MM, sim.max_displacement_mm
    info = reduced_model(case, scenario)

    rom = load_reduced_model(case / info.path)
    surface = rom.points_mm[: rom.n_surface]
    params = RomParameters(tuple(untrained_centre(rom, surface, nominal)), (3.0, -2.0, 8.0))
    time_updates(rom, params)
    u_rom, u_tumour_rom = rom.evaluate(params), rom.evaluate_targets(params)

    u_fe = full_solve_at(case, scenario, params, rom.points_mm)
    u_surface_fe, u_tumour_fe = u_fe[: rom.n_surface], u_fe[rom.n_surface :]
    err = np.linalg.norm(u_surface_fe - u_rom, axis=1)
    peak = np.linalg.norm(u_surface_fe, axis=1).max()
    tumour_err = np.linalg.norm(u_tumour_fe - u_tumour_rom, axis=1)
    print(
        f"surface: max |u| {peak:.2f} mm, max error {err.max():.3f} mm, mean {err.mean():.3f} mm;"
        f" tumour ({len(u_tumour_fe)} points): mean displacement "
        f"{np.round(u_tumour_fe.mean(axis=0), 2)} mm, max error {tumour_err.max():.3f} mm"
    )
    # The reduced model reproduces the full solve of a load it was not trained on, at the
    # position farthest from training: measured 1.01 mm at the worst surface vertex for a 9.0 mm
    # peak on a gmsh mesh, 1.42-2.01 mm for an 8.9 mm peak on fTetWild's (which gmsh's recipes
    # leave to it for this phantom, and whose mesh differs between runs), 0.03 mm on average
    # (the retractor's load moves with its position, which the model interpolates between
    # trained positions). The bounds leave room for mesh-generator and solver differences,
    # not for a wrong model: that shows in the mean and in the tumour.
    assert peak > 5.0, peak  # the push really deforms the liver
    assert err.max() < 0.25 * peak, (err.max(), peak)  # worst surface vertex
    assert err.mean() < 0.1, err.mean()  # mm
    # The tumour moves with the tissue (upwards, with the lift) and the reduced model follows it
    # far inside the error bound of the surface.
    assert np.linalg.norm(u_tumour_fe, axis=1).mean() > 0.5  # mm; measured about 1.6 mm
    assert u_tumour_fe[:, 2].mean() > 0.5  # mm towards the head; measured 1.56 mm
    assert tumour_err.max() < 0.1, tumour_err.max()
    # The stored held-out check of step 2 tells the same story: its worst vertex was 1.5-2.9 mm
    # for the 8 mm push on fTetWild's meshes (they differ between runs); a wrong model is off
    # by about the push itself.
    assert max(info.validation_max_vertex_error_mm) < 0.5 * VALIDATION_PUSH_MM, (
        info.validation_max_vertex_error_mm
    )


if __name__ == "__main__":
    main()
