"""The CLI's JSON output keeps the same keys (a promise to users' scripts).

Each command of the scriptable contract runs once on small real inputs and the nested key
structure of its JSON output is compared with ``tests/data/cli_json_keys.json``, recorded from
the code before the typed-results refactor. Set ``SURGPLAN_RECORD_CLI_KEYS=1`` to re-record it
(only when a contract change is intended and documented).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvista as pv
from click.testing import CliRunner

from registration.io import write_slicer_markups
from registration.model import load_surface
from registration.sensors import add_noise, simulate_swabs
from surgplan.cli import cli

KEYS_FILE = Path(__file__).parent / "data" / "cli_json_keys.json"
RECORD = os.environ.get("SURGPLAN_RECORD_CLI_KEYS") == "1"

SCENARIO = """
name = "contract"
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
[gravity]
direction = [0, 0, -1]
"""


def key_schema(value: Any) -> Any:
    """Nested keys of a JSON value: dicts keep their keys, lists collapse to one element's."""
    if isinstance(value, dict):
        return {k: key_schema(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            if isinstance(item, dict | list):
                schema = key_schema(item)
                if isinstance(schema, dict) and isinstance(merged, dict):
                    merged = {**merged, **schema}
                else:
                    merged = schema
        return [merged] if merged is not None else []
    return None


def run_json(*args: object) -> Any:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def box_case(folder: Path) -> Path:
    from surgplan.case import Case
    from surgplan.manifest import VolumeMeshEntry

    grid = pv.UnstructuredGrid(
        pv.ImageData(dimensions=(7, 5, 5), spacing=(5.0, 5.0, 5.0)).triangulate()
    )
    centres = grid.cell_centers().points
    region = np.where(np.linalg.norm(centres - [15.0, 10.0, 10.0], axis=1) < 6.0, 2, 1)
    grid.cell_data["region"] = region.astype(np.int32)
    case = Case.open_or_new(folder)
    with case.transaction() as tx:
        grid.save(tx.path("meshes/volume.vtu"))
        tx.manifest.volume_mesh = VolumeMeshEntry(
            path="meshes/volume.vtu", regions={"liver": 1, "tumour": 2}, quality={}
        )
    return folder


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory, totalseg_dir: Path, liver_models_dir: Path):
    tmp = tmp_path_factory.mktemp("contract")
    case = tmp / "case"
    out: dict[str, Any] = {}
    out["import"] = run_json("import", totalseg_dir / "example_ct_sm.nii.gz", case, "--json")
    out["segment"] = run_json(
        "segment", case, "--labels", totalseg_dir / "example_seg.nii.gz",
        "--names", totalseg_dir / "labels.json", "--structure", "liver", "--json",
    )  # fmt: skip
    out["mesh"] = run_json("mesh", case, "--edge-mm", "12", "--json")
    out["export_label"] = run_json(
        "export", case, "--structure", "liver", "--label", tmp / "liver.nii.gz", "--json"
    )
    out["export_mesh"] = run_json(
        "export", case, "--structure", "liver", "--mesh", tmp / "liver.vtp", "--json"
    )
    out["verify"] = run_json("verify", "--quick", "--problem", "vessel_tree", "--json")
    box = box_case(tmp / "box")
    scenario = tmp / "scenario.toml"
    scenario.write_text(SCENARIO)
    out["simulate"] = run_json("simulate", box, "--scenario", scenario, "--json")
    out["rom"] = run_json("rom", box, "--scenario", scenario, "--centres", "8", "--json")

    liver = load_surface(liver_models_dir / "liver.vtk")
    points = add_noise(
        simulate_swabs(liver, n_points=300, coverage=0.3, seed=0), noise_mm=0.5, seed=1
    )
    np.savetxt(tmp / "p.csv", points + [5.0, -3.0, 2.0], delimiter=",", header="x,y,z", comments="")
    (tmp / "init.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    write_slicer_markups(tmp / "t.mrk.json", [liver.centroid_mm])
    out["register"] = run_json(
        "register", "--model", liver_models_dir / "liver.vtk", "--points", tmp / "p.csv",
        "--init", tmp / "init.txt", "--targets", tmp / "t.mrk.json", "--json",
    )  # fmt: skip
    spec = tmp / "spec.toml"
    spec.write_text(
        f'name = "contract"\nseed = 1\nrepeats = 1\n[[models]]\nname = "liver"\n'
        f'surface = "{liver_models_dir / "liver.vtk"}"\n'
        f'targets = [{{ name = "tumour", surface = "{liver_models_dir / "liver_tumours.vtk"}" }}]\n'
        "[protocol]\nn_points = [200]\ncoverage = [0.3]\nnoise_mm = [1.0]\n"
        'rotation_deg = [0.0]\ntranslation_mm = [5.0]\ncase = ["good", "too_few"]\n'
    )
    out["study"] = run_json("study", spec, "--out", tmp / "study", "--workers", "1", "--json")
    return {name: key_schema(value) for name, value in out.items()}


def test_cli_json_keys_unchanged(outputs: dict[str, Any]) -> None:
    if RECORD:
        KEYS_FILE.write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n")
    expected = json.loads(KEYS_FILE.read_text())
    assert set(outputs) == set(expected)
    for command, schema in expected.items():
        missing = missing_keys(schema, outputs[command])
        assert not missing, f"`surgplan {command}` JSON lost or changed keys: {missing}"


def missing_keys(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Paths of recorded keys that ``actual`` lacks (new keys are allowed: they add, not break).

    Both arguments are :func:`key_schema` values: dicts of keys, one-element lists, ``None``.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [where or "<root>"]
        found = [k for k in expected if k in actual]
        lost = [f"{where}.{k}" for k in expected if k not in actual]
        deeper = [missing_keys(expected[k], actual[k], f"{where}.{k}") for k in found]
        return lost + [path for paths in deeper for path in paths]
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [where]
        if expected and actual:
            return missing_keys(expected[0], actual[0], f"{where}[]")
    return []


def test_missing_keys_finds_a_renamed_key_and_allows_an_added_one() -> None:
    recorded = {"a": {"b": None, "c": None}, "d": None}
    assert missing_keys(recorded, {"a": {"b": 1, "c": 2, "new": 3}, "d": 4, "e": 5}) == []
    assert missing_keys(recorded, {"a": {"b": 1, "cc": 2}, "d": 4}) == [".a.c"]
    assert missing_keys(recorded, {"a": 1, "d": 4}) == [".a"]
    assert missing_keys({"l": [{"x": None}]}, {"l": [{"y": None}]}) == [".l[].x"]
