"""Scenario files are validated before any mesh is read: one error naming file, field, value."""

import json
import tomllib

import pytest
from click.testing import CliRunner

from surgplan.cli.biomech_commands import simulate_command
from surgplan.errors import PROJECT_ERRORS
from surgplan.scenario import (
    MAX_DISPLACEMENT_MM,
    MAX_PRESSURE_KPA,
    ScenarioError,
    read_scenario,
)
from tests.test_biomech_cli import SCENARIO, case_dir  # noqa: F401  (fixture)
from tests.test_cli_json_contract import SCENARIO as CONTRACT_SCENARIO

BAD = {
    "typo section": (
        SCENARIO.replace("[[retractors]]", "[[retractor]]"),
        r"retractor: Extra inputs are not permitted",
    ),
    "string for a table": (
        SCENARIO.replace(
            'region = { type = "sphere", centre_mm = [30, 10, 20], radius_mm = 8 }',
            'region = "sphere"',
        ),
        r"retractors\[0\]\.region: .*valid dictionary.* \(got 'sphere'\)",
    ),
    "pressure beyond any surgeon": (
        SCENARIO.replace("pressure_kpa = 0.5", "pressure_kpa = 500.0"),
        rf"pressures\[0\]\.pressure_kpa: Input should be less than or equal to "
        rf"{MAX_PRESSURE_KPA:g}.* \(got 500\.0\)",
    ),
    "retractor displacement beyond any surgeon": (
        SCENARIO.replace("displacement_mm = [0, 0, 5]", "displacement_mm = [0, 0, 500]"),
        rf"retractors\[0\]\.displacement_mm: each component must lie within "
        rf"\+-{MAX_DISPLACEMENT_MM:g} mm.*\[0\.0, 0\.0, 500\.0\]",
    ),
    "unknown region type": (
        SCENARIO.replace('type = "plane", point_mm', 'type = "cube", point_mm'),
        r"supports\[0\]\.region: Input tag 'cube' .* does not match",
    ),
    "negative radius": (
        SCENARIO.replace("radius_mm = 8", "radius_mm = -8"),
        r"retractors\[0\]\.region\.radius_mm: Input should be greater than 0",
    ),
    "unknown material preset": (
        SCENARIO.replace('tumour = "tumour"', 'tumour = "tumor"'),
        r"materials: unknown material 'tumor'",
    ),
}


def test_the_contract_and_cli_scenarios_are_accepted(tmp_path):
    for text in (SCENARIO, CONTRACT_SCENARIO):
        path = tmp_path / "ok.toml"
        path.write_text(text)
        scn = read_scenario(path)
        assert scn.retractors[0].displacement_mm == (0.0, 0.0, 5.0)
        assert scn.retractors[0].region.radius_mm == 8.0  # type: ignore[union-attr]
        assert scn.model.type == "linear" and scn.model.degree == 1
        # what is stored with the result is the document that was read (as JSON)
        dumped = scn.model_dump(mode="json", exclude_unset=True)
        assert json.loads(json.dumps(dumped)) == tomllib.loads(text)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_scenario_is_refused_naming_file_and_field(tmp_path, name):
    text, match = BAD[name]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=match) as info:
        read_scenario(path)
    message = str(info.value)
    assert message.startswith(f"invalid scenario {path}: ")
    assert "\n" not in message
    assert isinstance(info.value, PROJECT_ERRORS)


@pytest.mark.parametrize("name", sorted(BAD))
def test_cli_refuses_bad_scenario_in_one_line_case_untouched(case_dir, tmp_path, name):  # noqa: F811
    text, match = BAD[name]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    before = sorted(p.relative_to(case_dir) for p in case_dir.rglob("*"))
    manifest = (case_dir / "case.json").read_text()
    result = CliRunner().invoke(simulate_command, [str(case_dir), "--scenario", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid scenario")
    assert "bad.toml" in lines[0]
    assert sorted(p.relative_to(case_dir) for p in case_dir.rglob("*")) == before
    assert (case_dir / "case.json").read_text() == manifest


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ScenarioError, match=r"scenario file not found: .*nope\.toml"):
        read_scenario(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ScenarioError, match=r"is not valid TOML"):
        read_scenario(bad)
