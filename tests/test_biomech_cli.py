"""``surgplan verify / simulate / rom`` through the click commands (JSON contract)."""

import json

import numpy as np
import pytest
import pyvista as pv
from click.testing import CliRunner

from surgplan.case import Case
from surgplan.cli.biomech_commands import rom_command, simulate_command, verify_command
from surgplan.manifest import VolumeMeshEntry


def test_verify_json_is_a_list_of_records():
    result = CliRunner().invoke(
        verify_command, ["--json", "--quick", "--problem", "vessel_tree", "--problem", "poiseuille"]
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert isinstance(records, list) and len(records) == 5 + 6
    keys = ["problem", "quantity", "dofs", "value", "reference", "rel_error", "order"]
    for r in records:
        assert list(r) == keys  # exactly the contract, in this order
        assert isinstance(r["dofs"], int) and isinstance(r["rel_error"], float)
    levels: dict[int, set[str]] = {}
    for r in records:
        if r["problem"] == "poiseuille":
            levels.setdefault(r["dofs"], set()).add(r["quantity"])
    assert len(levels) == 3  # --quick: three mesh levels, each with both quantities
    assert all(q == {"flow rate [mL/s]", "wall shear stress [Pa]"} for q in levels.values())
    q = [r for r in records if r["quantity"] == "flow rate [mL/s]"]
    assert q[0]["order"] is None and q[-1]["order"] > 3.0
    assert q[-1]["rel_error"] < 1e-4


def test_verify_without_json_prints_a_table():
    result = CliRunner().invoke(verify_command, ["--quick", "--problem", "vessel_tree"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[0].split()
    assert header == ["problem", "quantity", "dofs", "value", "reference", "rel_error", "order"]
    rows = [ln for ln in lines[2:] if ln.startswith("vessel_tree")]
    assert len(rows) == 5
    # columns line up: every row's numbers end where the header's rel_error column ends
    end = lines[0].index("rel_error") + len("rel_error")
    assert all(len(row) >= end and row[end - 1] != " " for row in rows)
    assert "bifurcation pressure, daughter 2 clamped [kPa]" in result.stdout
    assert "time_s" in result.stdout


def test_verify_unknown_problem_is_one_line_error():
    result = CliRunner().invoke(verify_command, ["--json", "--problem", "bogus"])
    assert result.exit_code == 2
    assert "unknown verification problem" in result.stderr


@pytest.fixture()
def case_dir(tmp_path):
    grid = pv.UnstructuredGrid(
        pv.ImageData(dimensions=(7, 5, 5), spacing=(5.0, 5.0, 5.0)).triangulate()
    )
    cc = grid.cell_centers().points
    region = np.where(np.linalg.norm(cc - [15.0, 10.0, 10.0], axis=1) < 6.0, 2, 1)
    grid.cell_data["region"] = region.astype(np.int32)
    case = Case.open_or_new(tmp_path / "case")
    with case.transaction() as tx:
        grid.save(tx.path("meshes/volume.vtu"))
        tx.manifest.volume_mesh = VolumeMeshEntry(
            path="meshes/volume.vtu", regions={"liver": 1, "tumour": 2}, quality={}
        )
    return tmp_path / "case"


SCENARIO = """
name = "retraction"
[model]
type = "linear"
degree = 1
[materials]
default = "liver_healthy"
tumour = "tumour"
[[supports]]
region = { type = "plane", point_mm = [0, 0, 0], normal = [1, 0, 0] }
[[retractors]]
region = { type = "sphere", centre_mm = [30, 10, 20], radius_mm = 8 }
displacement_mm = [0, 0, 5]
profile = "bump"
[[pressures]]
region = { type = "plane", point_mm = [0, 0, 20], normal = [0, 0, 1] }
pressure_kpa = 0.5
[gravity]
direction = [0, 0, -1]
"""


def test_simulate_stores_result_in_case(case_dir, tmp_path):
    scn = tmp_path / "scn.toml"
    scn.write_text(SCENARIO)
    result = CliRunner().invoke(simulate_command, [str(case_dir), "--scenario", str(scn), "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["max_displacement_mm"] >= 5.0 - 1e-9
    assert report["max_von_mises_kpa"] > 0.0
    case = Case.open(case_dir)
    art = case.artifacts["fe_result/retraction"]
    grid = pv.read(case.file(art.path))
    assert "displacement_mm" in grid.point_data and "von_mises_kpa" in grid.cell_data
    assert (case_dir / "fe" / "retraction.xdmf").is_file()
    assert (case_dir / "fe" / "retraction.h5").is_file()


def test_bad_scenario_writes_nothing(case_dir, tmp_path):
    scn = tmp_path / "bad.toml"
    scn.write_text(SCENARIO.replace("centre_mm = [30, 10, 20]", "centre_mm = [300, 10, 20]"))
    before = sorted(p.relative_to(case_dir) for p in case_dir.rglob("*"))
    manifest = (case_dir / "case.json").read_text()
    result = CliRunner().invoke(simulate_command, [str(case_dir), "--scenario", str(scn), "--json"])
    assert result.exit_code == 2
    assert "retractor 0" in result.stderr and "selects no boundary facets" in result.stderr
    assert sorted(p.relative_to(case_dir) for p in case_dir.rglob("*")) == before
    assert (case_dir / "case.json").read_text() == manifest
    scn.write_text(
        SCENARIO.replace(
            'tumour = "tumour"', "tumour = { youngs_modulus_kpa = -1, poisson_ratio = 0.4 }"
        )
    )
    result = CliRunner().invoke(simulate_command, [str(case_dir), "--scenario", str(scn)])
    assert result.exit_code == 2 and "Young's modulus" in result.stderr


def test_rom_command_stores_model(case_dir, tmp_path):
    scn = tmp_path / "scn.toml"
    scn.write_text(SCENARIO)
    result = CliRunner().invoke(
        rom_command, [str(case_dir), "--scenario", str(scn), "--centres", "8", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_modes"] > 0 and len(report["validation_max_vertex_error_mm"]) == 2
    case = Case.open(case_dir)
    assert (case_dir / case.artifacts["rom/linear"].path).is_file()
