"""``surgplan credibility``: the ASME V&V 40-style report, its figures checked against sources.

A real-liver-model case (the session's small twin case of :mod:`tests.test_twin_case`) gets a
full report through the CLI with a kept ``surgplan verify --quick --json`` table; every
section's figures are recomputed from their sources (the verify JSON, the study's
``trials.csv``, the calibration count with an independent Clopper-Pearson interval, the
Richardson formula on the stored levels, the twin's own covariance for the doubt shares). The
same case with a planned coverage below the studied grid gives the applicability warning and
"not enough evidence" naming it, where the same lenient requirements inside the grid are met.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_twin_case import small_twin_case

#: Requirements lenient enough that this small study can meet them, so that the only thing
#: the outside-the-range case lacks is applicability.
LENIENT = """
[validation]
anterior_coverage = [0.2, 0.3]
noise_mm = [1.0]
patients = {patients}

[plan]
anterior_coverage = {coverage}

[requirements]
discretisation_error_mm = 50.0
tre_mm = 50.0
calibration_lower = 0.0
min_trials = 1
"""
HEAD = 'question = "Where is the tumour?"\nuse = "test"\ndecision = "where to cut"\n'


def _context(path: Path, *, coverage: float, patients: int) -> Path:
    path.write_text(HEAD + LENIENT.format(coverage=coverage, patients=patients))
    return path


def _run(*args: object) -> tuple[int, str, str]:
    """The installed ``surgplan`` console script (the real command line), its code and output."""
    exe = Path(sys.executable).parent / "surgplan"
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture(scope="module")
def liver_case(tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path) -> Path:
    return small_twin_case(tmp_path_factory, liver_models_dir)


@pytest.fixture(scope="module")
def verify_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``surgplan verify --quick --json`` prints (its records), kept in a file."""
    from biomech.verification import json_records, run_verification

    path = tmp_path_factory.mktemp("verify") / "verify.json"
    path.write_text(json.dumps(json_records(run_verification(quick=True))))
    return path


@pytest.fixture(scope="module")
def liver_report(
    liver_case: Path, verify_json: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    from surgplan.credibility import build_credibility

    out = tmp_path_factory.mktemp("cred_liver")
    ctx = _context(out.parent / "ctx_inside.toml", coverage=0.25, patients=2)
    result = build_credibility(liver_case, out, context=ctx, trials=4, verify_json=verify_json)
    report = json.loads((out / "credibility.json").read_text())
    return {"summary": result.to_dict(), "report": report, "out": out, "verify": verify_json}


def _trials(out: Path) -> list[dict[str, str]]:
    with open(out / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def _html_text(out: Path) -> str:
    html = (out / "credibility.html").read_text()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_code_verification_is_the_verify_table(liver_report: dict) -> None:
    cv = liver_report["report"]["code_verification"]
    source = json.loads(liver_report["verify"].read_text())
    assert cv["records"] == source
    assert cv["source"] == str(liver_report["verify"])
    finest = {(r["problem"], r["quantity"]): r for r in source}
    assert len(cv["checks"]) == len(finest)
    text = _html_text(liver_report["out"])
    for c in cv["checks"]:
        r = finest[(c["problem"], c["quantity"])]
        assert c["rel_error"] == r["rel_error"] and c["dofs"] == r["dofs"]
        assert c["error_ok"] == (r["rel_error"] <= c["error_bound"])
        if c["expected_order"] is not None:
            assert c["order_ok"] == (r["order"] >= c["expected_order"] - cv["order_tolerance"])
        assert f"{r['rel_error']:.2e}" in text
    # the quick levels pass: the P2 L2 error converges at order >= 2.5 on the sphere
    assert cv["errors_pass"] and cv["orders_pass"]


def test_calculation_verification_on_the_case_mesh(liver_report: dict, liver_case: Path) -> None:
    import pyvista as pv

    calc = liver_report["report"]["calculation_verification"]
    levels = {lv["level"]: lv for lv in calc["levels"]}
    grid = pv.read(liver_case / "meshes" / "volume.vtu")
    assert levels["case"]["n_tets"] == grid.n_cells
    assert levels["fine"]["h_mm"] < levels["medium"]["h_mm"] < levels["case"]["h_mm"]
    assert levels["fine"]["n_tets"] > 4 * levels["case"]["n_tets"]
    t = calc["tumour"]
    f1, f2, f3 = (levels[k]["tumour_displacement_mm"] for k in ("fine", "medium", "case"))
    h1, h2, h3 = (levels[k]["h_mm"] for k in ("fine", "medium", "case"))
    p = t["order"]
    if t["order_observed"]:  # the observed order satisfies Celik's equation
        q = math.log(((h2 / h1) ** p - 1) / ((h3 / h2) ** p - 1))
        assert p == pytest.approx(abs(math.log(abs((f3 - f2) / (f2 - f1))) + q) / math.log(h2 / h1))
        rp = (h2 / h1) ** p
        assert t["extrapolated_mm"] == pytest.approx(abs((rp * f1 - f2) / (rp - 1)), rel=0.05)
    assert 0.0 < t["error_mm"] < 5.0  # a 14 mm mesh: a millimetre-scale error
    assert calc["surface"]["error_rms_mm"] <= calc["surface"]["error_max_mm"]
    assert f"{t['error_mm']:.2f} mm" in _html_text(liver_report["out"])


def test_validation_figures_are_the_study_table(liver_report: dict) -> None:
    rows = _trials(liver_report["out"])
    val = liver_report["report"]["validation"]
    assert len(rows) == val["n_trials"] == 4
    tumour = val["tumour"]
    assert tumour == "tumour_centroid"
    for mode in ("rigid", "deformable"):
        tre = np.array([float(r[f"tre_{mode}_{tumour}_mm"]) for r in rows])
        assert val["summary"]["tre_mm"][mode]["tumour"]["mean"] == pytest.approx(tre.mean())
    for p in val["by_protocol"]:
        sel = [r for r in rows if float(r["anterior_coverage"]) == p["anterior_coverage"]
               and float(r["noise_mm"]) == p["noise_mm"]]  # fmt: skip
        assert p["n"] == len(sel) == 2  # 2 patients x 2 coverages, one repeat
        tre = [float(r[f"tre_deformable_{tumour}_mm"]) for r in sel]
        assert p["tre_deformable_mm"] == pytest.approx(np.mean(tre))
    # every patient was solved on the case mesh under a held-out load, 10-40 mm
    assert len(val["patients"]) == 2
    assert all(10.0 <= p["max_displacement_mm"] <= 40.0 for p in val["patients"])
    assert {r["patient"] for r in rows} == {"vp000", "vp001"}
    text = _html_text(liver_report["out"])
    assert "Sparse Data Challenge" in text and "different protocol" in text


def test_calibration_count_and_interval(liver_report: dict) -> None:
    from scipy.stats import beta

    rows = _trials(liver_report["out"])
    cal = liver_report["report"]["uncertainty"]["calibration"]["deformable_trusted"]
    trusted = [r for r in rows if r["trustworthy_deformable"] == "True"]
    inside = sum(r["inside_deformable_tumour_centroid"] == "True" for r in trusted)
    assert (cal["n"], cal["inside"]) == (len(trusted), inside)
    n, k = cal["n"], cal["inside"]
    low = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    high = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    assert cal["clopper_pearson"] == pytest.approx([low, high], abs=1e-9)
    assert liver_report["summary"]["calibration"]["inside"] == k


def test_doubt_shares_add_up_to_the_twin_covariance(liver_report: dict) -> None:
    d = liver_report["report"]["uncertainty"]["doubt_sources"]
    assert sum(d["variance_mm2"].values()) == pytest.approx(d["total_check_mm2"], rel=1e-9)
    assert sum(d["share"].values()) == pytest.approx(1.0)
    assert all(v >= 0.0 for v in d["variance_mm2"].values())
    assert set(d["share"]) == {"state", "measurement_sensor", "measurement_surface_model",
                               "model_discrepancy", "stiffness_spread"}  # fmt: skip


def test_verdict_met_inside_the_validated_range(liver_report: dict) -> None:
    r = liver_report["report"]
    assert r["applicability"]["inside"] and not r["applicability"]["warnings"]
    assert r["verdict"]["verdict"] == "evidence meets the required level", r["verdict"]
    assert liver_report["summary"]["verdict"] == r["verdict"]["verdict"]
    assert "evidence meets the required level" in _html_text(liver_report["out"])


def test_report_pictures(liver_report: dict) -> None:
    html = (liver_report["out"] / "credibility.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == 5
    for key in ("code_verification", "calculation_verification", "validation", "calibration",
                "doubt_sources"):  # fmt: skip
        path = Path(liver_report["report"]["files"][key])
        pixels = np.asarray(Image.open(path).convert("RGB"), float)
        assert pixels.shape[0] > 200 and 0.02 < (pixels < 200).any(axis=2).mean() < 0.9, key


def test_coverage_below_the_studied_grid_is_not_enough_evidence(
    liver_case: Path, verify_json: Path, tmp_path: Path
) -> None:
    ctx = _context(tmp_path / "ctx_outside.toml", coverage=0.1, patients=2)
    code, stdout, err = _run("credibility", liver_case, "--context", ctx, "--out",
                             tmp_path / "out", "--trials", 2, "--verify-json", verify_json,
                             "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["verdict"] == "not enough evidence"
    assert summary["applicability_warnings"] == [
        "planned anterior coverage 0.1 fraction is outside the validated range 0.2-0.3 fraction"
    ]
    assert len(summary["missing"]) == 1 and summary["missing"][0].startswith(
        "outside the validated range: planned anterior coverage 0.1"
    )
    text = _html_text(tmp_path / "out")
    assert "Applicability warning: planned anterior coverage 0.1" in text
    assert "not enough evidence" in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("question = 'q'\nuse = 'u'\ndecision = 'd'\ncolour = 'red'\n",
         "field 'colour': unknown field"),
        ("question = 'q'\nuse = 'u'\ndecision = 'd'\n[risk]\nmodel_influence = 'extreme'\n",
         "field 'risk.model_influence'"),
        ("question = 'q'\nuse = 'u'\n", "field 'decision': required field missing"),
        ("question = 'q\n", "not a valid TOML file"),
        ("question = 'q'\nuse = 'u'\ndecision = 'd'\n[plan]\nanterior_coverage = 1.5\n",
         "field 'plan.anterior_coverage'"),
    ],
)  # fmt: skip
def test_bad_context_is_named(tmp_path: Path, body: str, message: str) -> None:
    from surgplan.credibility import ContextError, load_context

    ctx = tmp_path / "ctx.toml"
    ctx.write_text(body)
    with pytest.raises(ContextError, match=re.escape(message)) as info:
        load_context(ctx)
    assert str(info.value).startswith(f"{ctx}: ") and "\n" not in str(info.value)


def test_bad_input_on_the_command_line_is_one_line_exit_2(liver_case: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx.toml"
    ctx.write_text(HEAD + "colour = 'red'\n")
    code, out, err = _run("credibility", liver_case, "--context", ctx, "--out", tmp_path / "o")
    assert (code, out) == (2, "") and err.count("\n") == 1, err
    unknown = "unknown field (a typo?); not part of a context of use file"
    assert err == f"error: {ctx}: field 'colour': {unknown}\n"
    code, _, err = _run("credibility", tmp_path / "nothing", "--out", tmp_path / "o", "--json")
    assert (
        code == 2 and err == f"error: not a surgplan case (no case.json): {tmp_path / 'nothing'}\n"
    )
    ctx.write_text(HEAD + 'quantity = "gallbladder_tip"\n')
    code, _, err = _run("credibility", liver_case, "--context", ctx, "--out", tmp_path / "o")
    assert code == 2 and "'gallbladder_tip' is not a target" in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "credibility.json").exists()


def test_risk_matrix_and_richardson() -> None:
    from surgplan.credibility.context import LEVELS, parse_context
    from surgplan.credibility.gci import coarse_error

    base = {"question": "q", "use": "u", "decision": "d"}
    for (inf, con), level in {("low", "low"): 1, ("medium", "high"): 4, ("high", "medium"): 4,
                              ("high", "high"): 5, ("low", "high"): 3}.items():  # fmt: skip
        ctx = parse_context(base | {"risk": {"model_influence": inf, "decision_consequence": con}},
                            source="t")  # fmt: skip
        assert ctx.risk_level == level and ctx.requirements == LEVELS[level]
    ctx = parse_context(base | {"requirements": {"tre_mm": 2.5}}, source="t")
    assert ctx.requirements.tre_mm == 2.5 and ctx.requirements.min_trials == LEVELS[3].min_trials
    # f = 1 + 0.3 h^1.5: the order 1.5 and the coarse error 0.3 h3^1.5 recovered exactly
    h = (1.0, 1.7, 3.1)
    f = tuple(1 + 0.3 * x**1.5 for x in h)
    r = coarse_error(f, h, f)
    assert r.observed and r.order == pytest.approx(1.5, abs=1e-9)
    assert float(r.error) == pytest.approx(0.3 * 3.1**1.5, rel=1e-9)
    # oscillating values: the formal order 2 on the finest and coarse meshes, said
    r = coarse_error((1.0, 1.2, 1.1), h, (1.0, 1.2, 1.1))
    assert not r.observed and r.order == 2.0 and "oscillatory" in r.note


def test_code_verification_flags_a_low_order() -> None:
    from surgplan.credibility.code_verification import CodeVerification, assess_records

    rec = [{"problem": "lame_sphere", "quantity": "u L2 relative error", "dofs": 100,
            "value": 0.01, "reference": 0.0, "rel_error": 0.01, "order": None},
           {"problem": "lame_sphere", "quantity": "u L2 relative error", "dofs": 800,
            "value": 0.004, "reference": 0.0, "rel_error": 0.004, "order": 1.3}]  # fmt: skip
    cv = CodeVerification(rec, assess_records(rec), "t", {})
    assert cv.errors_pass and not cv.orders_pass
    assert cv.failures(orders=True) == [
        "lame_sphere u L2 relative error: observed order 1.30 < expected 3 - 0.5"
    ]
    assert cv.failures(orders=False) == []


def test_readme_context_example_is_valid() -> None:
    import tomllib

    from surgplan.credibility.context import parse_context

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("### Credibility report", 1)[1]
    block = re.findall(r"```toml\n(.*?)```", section, flags=re.DOTALL)[0]
    ctx = parse_context(tomllib.loads(block), source="README")
    assert ctx.risk_level == 4 and ctx.plan["anterior_coverage"] == 0.25
