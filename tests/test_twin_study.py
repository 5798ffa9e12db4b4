"""The virtual-patient twin study: spec validation, a 2-patient run through `surgplan study`.

Two coarse virtual patients (14 mm FE mesh) on the small case of :mod:`tests.test_twin_case`;
one good swab trial (with a short recommendation experiment) and one ``too_few`` trial per
patient, run by the Dask engine in threads.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from surgplan.cli import registration_commands
from surgplan.twin_study import TwinStudySpecError, expand_twin_trials, load_twin_spec, spec_kind
from tests.test_twin_case import small_twin_case


def _cli() -> click.Group:
    group = click.Group()
    registration_commands.register(group)
    return group


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path) -> Path:
    from surgplan.virtual_patients import make_virtual_patients, save_virtual_patients

    case = small_twin_case(tmp_path_factory, liver_models_dir)
    folder = tmp_path_factory.mktemp("twin_study")
    save_virtual_patients(make_virtual_patients(liver_models_dir, 2, 0, edge_mm=14.0),
                          folder / "vp.npz")  # fmt: skip
    path = folder / "study.toml"
    path.write_text(
        f'kind = "twin_virtual_patients"\nname = "small"\nseed = 1\ncase = "{case}"\n'
        '[patients]\nfile = "vp.npz"\n'
        '[protocol]\nn_points = [300]\ncase = ["good", "too_few"]\n'
        "[recommendation]\ninitial_points = 50\nbatch_points = 50\nmax_points = 150\n"
    )
    return path


def test_spec_is_validated(spec_path: Path, tmp_path: Path) -> None:
    assert spec_kind(spec_path) == "twin_virtual_patients"
    spec = load_twin_spec(spec_path)
    assert spec.modes == ("rigid", "deformable") and spec.protocol["sensor"] == ("swabs",)
    trials = expand_twin_trials(spec)
    assert [t["trial_id"] for t in trials] == list(range(4))
    assert [(t["patient"], t["case"]) for t in trials] == [
        ("vp000", "good"), ("vp000", "too_few"), ("vp001", "good"), ("vp001", "too_few")
    ]  # fmt: skip
    text = spec_path.read_text()
    bad = tmp_path / "bad.toml"
    for change, message in (
        (text.replace("n_points = [300]", "n_pionts = [300]"), "protocol.n_pionts': unknown"),
        (text.replace('case = ["good"', 'case = ["wrong_organ"'), "'decoy_surface': required"),
        (text.replace('file = "vp.npz"', 'file = "none.npz"'), "file not found"),
        (text.replace("kind = ", "kind = 'x'\n#"), "field 'kind'"),
    ):
        bad.write_text(change.replace('"vp.npz"', f'"{spec_path.parent / "vp.npz"}"'))
        with pytest.raises(TwinStudySpecError, match=message):
            spec_kind(bad)
            load_twin_spec(bad)


def test_two_patient_study_runs_through_the_engine(
    spec_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import surgplan.twin_study as ts

    real = ts.run_twin_study  # Dask in threads: no worker processes to start in a test
    monkeypatch.setattr(ts, "run_twin_study", lambda *a, **k: real(*a, **{**k, "processes": False}))
    out = tmp_path / "out"
    res = CliRunner().invoke(_cli(), ["study", str(spec_path), "--out", str(out), "--workers",
                                      "1", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["kind"] == "twin_virtual_patients" and report["n_trials"] == 4
    summary = json.loads((out / "summary.json").read_text())
    for key in ("tre_mm", "radius95_mm", "deformable_over_rigid", "calibration", "verdict",
                "recommendation", "patients"):  # fmt: skip
        assert key in summary and key in report or key in ("radius95_mm", "patients")
    for mode in ("rigid", "deformable"):
        assert summary["tre_mm"][mode]["tumour"]["n"] == 2  # one good trial per patient
        assert summary["tre_mm"][mode]["vessels"]["n"] == 2 * 8
        cal = summary["calibration"][mode]["fraction_inside_radius95"]
        assert 0.0 <= cal["all"] <= 1.0
        v = summary["verdict"][mode]
        assert v["bad_cases"]["too_few"] == {"n": 2, "flag_rate": 1.0, "refused": 0}
    assert set(summary["deformable_over_rigid"]) == {"tumour", "vessels", "all", "goal"}
    rec = summary["recommendation"]
    assert rec["n"] == 2 and {"median_points_recommended", "median_points_random"} <= set(rec)
    assert sorted(p.name for p in out.glob("*.png")) == [
        "calibration.png", "recommendation.png", "tre_rigid_vs_deformable.png"
    ]  # fmt: skip
    # resumed: nothing recomputed
    again = CliRunner().invoke(_cli(), ["study", str(spec_path), "--out", str(out), "--workers",
                                        "1", "--json"])  # fmt: skip
    assert again.exit_code == 0 and json.loads(again.stdout)["n_reused"] == 4
    import pyarrow.parquet as pq

    table = pq.read_table(out / "trials.parquet").to_pydict()
    tre = np.array(table["tre_deformable_tumour_centroid_mm"])
    assert np.all(np.isfinite(tre)) and np.all(tre >= 0)
