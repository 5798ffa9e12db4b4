import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from registration.study import StudySpecError, expand_trials, load_spec, run_study
from registration.study.spec import parse_spec


def _spec_file(tmp_path, liver_models_dir, extra=""):
    text = f"""
name = "tiny"
seed = 5
repeats = 1
[[models]]
name = "liver"
surface = "{liver_models_dir / "liver.vtk"}"
targets = [{{ name = "tumour", surface = "{liver_models_dir / "liver_tumours.vtk"}" }},
           {{ name = "p", point_mm = [-60.0, -190.0, -280.0] }}]
[protocol]
n_points = [300]
coverage = [0.3]
noise_mm = [1.0]
rotation_deg = [0.0]
translation_mm = [10.0]
case = ["good", "too_few"]
{extra}
"""
    p = tmp_path / "spec.toml"
    p.write_text(text)
    return p


def test_spec_validation_names_the_field(tmp_path, liver_models_dir):
    with pytest.raises(StudySpecError, match=r"protocol.coverage.*out of range"):
        parse_spec(
            {
                "models": [{"surface": str(liver_models_dir / "liver.vtk")}],
                "protocol": {"coverage": [1.5]},
            },
            base_dir=tmp_path,
        )
    with pytest.raises(StudySpecError, match=r"models\[0\].surface.*not found"):
        parse_spec({"models": [{"surface": "nope.vtk"}]}, base_dir=tmp_path)
    with pytest.raises(StudySpecError, match="decoy_surface"):
        parse_spec(
            {
                "models": [{"surface": str(liver_models_dir / "liver.vtk")}],
                "protocol": {"case": ["wrong_organ"]},
            },
            base_dir=tmp_path,
        )
    yml = tmp_path / "s.yaml"
    yml.write_text(f"models:\n  - surface: {liver_models_dir / 'liver.vtk'}\nrepeats: 3\n")
    assert len(expand_trials(load_spec(yml))) == 3


def test_spec_typo_is_refused_with_the_file_and_field(tmp_path, liver_models_dir):
    # A misspelt key (`outlier_fractions`) must not silently fall back to the default.
    p = _spec_file(tmp_path, liver_models_dir, extra="outlier_fractions = [0.2]")
    with pytest.raises(
        StudySpecError, match=r"spec\.toml: field 'protocol\.outlier_fractions'.*unknown"
    ):
        load_spec(p)
    with pytest.raises(StudySpecError, match=r"field 'repeat': unknown field"):
        parse_spec(
            {"models": [{"surface": str(liver_models_dir / "liver.vtk")}], "repeat": 3},
            base_dir=tmp_path,
        )


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        ("many", r"field 'protocol': expected a table \(mapping\), got 'many'"),
        ({"n_points": ["300"]}, r"field 'protocol\.n_points\[0\]': .*valid integer, got '300'"),
        ({"n_points": [300.5]}, r"field 'protocol\.n_points\[0\]': .*valid integer, got 300\.5"),
        ({"noise_mm": 50.0}, r"field 'protocol\.noise_mm\[0\]': value 50\.0 out of range"),
        ({"sensor": "laser"}, r"field 'protocol\.sensor\[0\]': .*'swabs' or 'scan', got 'laser'"),
    ],
)
def test_spec_wrong_type_or_unphysical_value_names_the_field(
    tmp_path, liver_models_dir, protocol, message
):
    with pytest.raises(StudySpecError, match=message):
        parse_spec(
            {"models": [{"surface": str(liver_models_dir / "liver.vtk")}], "protocol": protocol},
            base_dir=tmp_path,
            source="study.toml",
        )


def test_study_runs_resumes_and_is_reproducible(tmp_path, liver_models_dir):
    spec = load_spec(_spec_file(tmp_path, liver_models_dir))
    out = tmp_path / "out"
    first = run_study(spec, out, n_workers=1, processes=False)
    assert (first.n_trials, first.n_computed) == (2, 2)
    table = pq.read_table(first.table).to_pydict()
    assert table["trial_id"] == [0, 1]
    assert table["case"] == ["good", "too_few"]
    assert table["tre_tumour_mm"][0] < 2.0 and table["trustworthy"] == [True, False]
    summary = json.loads(first.summary.read_text())
    assert summary["bad_cases"]["too_few"]["flag_rate"] == 1.0
    assert all(p.stat().st_size > 1000 for p in first.plots)
    # Resume: nothing recomputed.
    again = run_study(spec, out, n_workers=1, processes=False, plots=False)
    assert (again.n_computed, again.n_reused) == (0, 2)
    # Same spec and seed in a fresh folder: the same table (apart from timings).
    other = run_study(
        spec, tmp_path / "out2", n_workers=1, processes=False, plots=False, table_format="csv"
    )
    import pyarrow.csv as pcsv

    t2 = pcsv.read_csv(other.table).to_pydict()
    for key in ("tre_tumour_mm", "tre_p_mm", "fre_mm", "inlier_rms_mm"):
        np.testing.assert_array_equal(t2[key], table[key])
