"""Twin study files are refused before any work when they ask for too many trials."""

from __future__ import annotations

from pathlib import Path

import pytest

from registration.study.spec import MAX_TRIALS
from surgplan.twin_study.spec import TwinStudySpecError, parse_twin_spec


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "case.json").write_text("{}")
    (tmp_path / "models").mkdir()
    return tmp_path


def spec(**overrides: object) -> dict:
    data: dict = {"kind": "twin_virtual_patients", "case": "case",
                  "patients": {"liver_models": "models", "n": 10}}  # fmt: skip
    data.update(overrides)
    return data


def test_a_billion_repeats_is_refused_naming_the_field(base: Path) -> None:
    with pytest.raises(TwinStudySpecError, match=r"field 'repeats'.*less than or equal"):
        parse_twin_spec(spec(repeats=1_000_000_000), base_dir=base)


def test_the_total_trial_count_is_bounded(base: Path) -> None:
    protocol = {"noise_mm": [0.5, 1.0, 2.0, 3.0], "n_points": [100, 200, 300, 400, 500]}
    repeats = MAX_TRIALS // (10 * 20) + 1  # 10 patients x 20 combinations x repeats > the cap
    with pytest.raises(TwinStudySpecError) as info:
        parse_twin_spec(spec(repeats=repeats, protocol=protocol), base_dir=base)
    message = str(info.value)
    assert f"{10 * 20 * repeats:,} trials" in message and f"{MAX_TRIALS:,}" in message
    ok = parse_twin_spec(spec(repeats=repeats - 1, protocol=protocol), base_dir=base)
    assert ok.repeats == repeats - 1
