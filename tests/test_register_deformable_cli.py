"""``surgplan register --case``: the twin from the CLI, its JSON contract and its bad inputs.

The small case of :mod:`tests.test_twin_case` (real liver models, coarse mesh, 4-centre ROM);
points are swabs on the surface deformed by that case's own model (a known deformation).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

import registration as reg
from surgplan.cli import registration_commands
from surgplan.twin.case_twin import load_case_model
from surgplan.twin.synthetic import posed_swabs
from tests.test_twin_case import known_deformation, small_twin_case

#: The register contract's keys (tests/data/cli_json_keys.json "register", without --targets).
CONTRACT = {
    "T_model_points", "condition_number", "global_search", "inlier_fraction", "inlier_rms_mm",
    "inlier_threshold_mm", "iterations", "n_points_dropped", "n_points_used", "reason",
    "systematic_residual_mm", "time_ms", "trustworthy", "weakest_constraint",
}  # fmt: skip
SHIFT = np.array([5.0, -3.0, 2.0])
PEAK_MM = 20.0  # largest surface displacement of the known deformation, mm


def _cli() -> click.Group:
    group = click.Group()
    registration_commands.register(group)
    return group


def run(*args: object):
    return CliRunner().invoke(_cli(), [str(a) for a in args])


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path) -> Path:
    return small_twin_case(tmp_path_factory, liver_models_dir)


@pytest.fixture(scope="module")
def points(case: Path, tmp_path_factory: pytest.TempPathFactory):
    model = load_case_model(case)
    a, u = known_deformation(model)
    basis = model.basis()
    # the same load makes a peak of 20-37 mm depending on the mesh; one-shot registration from
    # the undeformed pose is specified up to about 20 mm (beyond, it is flagged untrusted)
    a = a * min(1.0, PEAK_MM / np.linalg.norm(u, axis=1).max())
    u = basis.surface_displacement_mm(a)
    T = np.eye(4)
    T[:3, 3] = SHIFT
    surface = reg.prepare_surface((basis.vertices_mm, basis.faces))
    p = posed_swabs(surface, u, T, n_points=400, noise_mm=1.0, seed=0)
    p[:3] = np.nan  # dropped and counted
    folder = tmp_path_factory.mktemp("points")
    np.savetxt(folder / "p.csv", p, delimiter=",", header="x,y,z", comments="")
    truth = dict(zip(basis.target_names, basis.target_positions_mm(a) + SHIFT, strict=True))
    return folder / "p.csv", truth


@pytest.mark.parametrize("deformable", [False, True])
def test_register_case_json_contract(case: Path, points, deformable: bool) -> None:
    path, truth = points
    res = run("register", "--case", case, "--points", path, "--noise-mm", "1.0",
              *(["--deformable"] if deformable else []), "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert CONTRACT <= set(out)
    assert set(out) - CONTRACT == {"mode", "modes", "targets", "recommendation"}
    assert out["mode"] == ("deformable" if deformable else "rigid")
    assert out["n_points_dropped"] == 3 and out["n_points_used"] == 397
    n_modes = load_case_model(case).rom.n_modes
    assert len(out["modes"]) == (n_modes if deformable else 0)
    assert list(out["targets"]) == list(truth)
    for t in out["targets"].values():
        assert set(t) == {"position_tracker_mm", "radius95_mm", "posterior_mm",
                          "discrepancy_mm", "stiffness_mm"}  # fmt: skip
        assert t["radius95_mm"] > 0
    rec = out["recommendation"]
    assert rec["target"] == "tumour_centroid" and len(rec["vertex_indices"]) > 0
    tumour = np.array(out["targets"]["tumour_centroid"]["position_tracker_mm"])
    err = float(np.linalg.norm(tumour - truth["tumour_centroid"]))
    if deformable:
        assert out["trustworthy"], out["reason"]
        assert err < 2.0
        # T_model_points maps the points into model space: the known shift, undone
        c = load_case_model(case).vertices_mm.mean(axis=0)
        T = np.array(out["T_model_points"])
        np.testing.assert_allclose(T[:3, :3] @ (c + SHIFT) + T[:3, 3], c, atol=2.0)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bad_inputs_are_one_line_errors(case: Path, points, tmp_path: Path) -> None:
    path, _ = points
    p = np.loadtxt(path, delimiter=",", skiprows=1)
    np.savetxt(tmp_path / "m.csv", p / 1000.0, delimiter=",")  # metres
    np.savetxt(tmp_path / "nan.csv", np.full((10, 3), np.nan), delimiter=",")
    no_rom = tmp_path / "no_rom"
    shutil.copytree(case, no_rom)
    (no_rom / "rom" / "linear.npz").unlink()
    other = tmp_path / "other"
    shutil.copytree(case, other)
    import pyvista as pv

    grid = pv.read(other / "meshes" / "volume.vtu")
    grid = grid.extract_cells(np.arange(grid.n_cells - 5))  # another mesh
    from surgplan.case import Case

    with Case.open(other).transaction() as tx:  # re-meshed after the reduced model was built
        grid.save(tx.path("meshes/volume.vtu"))
    before = _snapshot(tmp_path)
    out = tmp_path / "r.tfm"
    cases = [
        (("--case", case, "--points", tmp_path / "m.csv"), "probably in metres"),
        (("--case", case, "--points", tmp_path / "nan.csv"), "all 10 points are NaN"),
        (("--case", no_rom, "--points", path), "case has no reduced model: run surgplan rom"),
        (("--case", other, "--points", path), "was built for another mesh"),
        (("--case", case, "--model", case / "meshes" / "liver.vtp", "--points", path),
         "exactly one of --model"),
        (("--points", path), "exactly one of --model"),
    ]  # fmt: skip
    for args, message in cases:
        res = run("register", *args, "--deformable", "--write-transform", out, "--json")
        assert res.exit_code == 2, res.output
        assert res.stdout == ""
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists() and _snapshot(tmp_path) == before  # nothing written
