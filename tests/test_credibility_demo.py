"""The credibility report of the demo's phantom case, and its section in the demo's report.

The phantom case is built as cheaply as the demo's data allow: the bundled phantom CT with its
ground-truth labels (the liver envelope, vessels included, as the liver), liver and tumour
meshed, the twin's reduced model from 4 patch centres; then the demo's own credibility part
(:func:`surgplan.credibility.demo_part.demo_credibility`: quick verification levels, two
virtual patients, four trials, a capped refinement) and the demo report's sections. Figures
are checked against their sources: the verify records, the trials table, the calibration count.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from surgplan.credibility.demo_part import DEMO_MAX_TETS, DEMO_TRIALS


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from surgplan.case_rom import build_default_case_rom
    from surgplan.meshing import build_meshes
    from surgplan.sample_data import ensure_sample_data
    from surgplan.scan_import import import_scan
    from surgplan.segment import import_label_map

    data = ensure_sample_data().folder
    case = tmp_path_factory.mktemp("cred_phantom") / "case"
    import_scan(data / "phantom_ct.nii.gz", case)
    import_label_map(case, data / "phantom_labels.nrrd", data / "phantom_labels.json",
                     structures=["tumour"])  # fmt: skip
    names = case.parent / "envelope.json"
    names.write_text(json.dumps({"1": "liver"}))
    import_label_map(case, data / "phantom_liver_envelope.nrrd", names)
    build_meshes(case, structures=["liver", "tumour"])
    build_default_case_rom(case, n_centres=4, n_validation=1)
    return case


@pytest.fixture(scope="module")
def demo_report(phantom_case: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from surgplan.credibility import credibility_sections
    from surgplan.credibility.demo_part import demo_credibility
    from surgplan.report import write_report

    out = tmp_path_factory.mktemp("cred_demo")
    steps: list[str] = []
    result = demo_credibility(phantom_case, out / "credibility", steps.append)
    page = write_report(out / "report.html", "demo",
                        credibility_sections(result.report, result.images))  # fmt: skip
    return {"result": result, "page": page, "steps": steps, "out": out / "credibility"}


def _text(path: Path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", path.read_text()))


def test_demo_credibility_figures_match_their_sources(demo_report: dict) -> None:
    from biomech.verification import json_records, run_verification

    r = demo_report["result"].report
    # code verification: the quick verify table, rerun with the software version
    assert r["code_verification"]["source"] == "rerun (quick levels)"
    assert r["code_verification"]["software"]["surgplan"]
    again = json_records(run_verification(["poiseuille", "vessel_tree"], quick=True))
    mine = [x for x in r["code_verification"]["records"]
            if x["problem"] in ("vessel_tree", "poiseuille")]  # fmt: skip
    assert [x["dofs"] for x in mine] == [x["dofs"] for x in again]
    np.testing.assert_allclose([x["value"] for x in mine], [x["value"] for x in again], rtol=1e-9)
    # validation: the study table
    with open(demo_report["out"] / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    val = r["validation"]
    assert len(rows) == val["n_trials"] == DEMO_TRIALS
    tre = [float(x["tre_deformable_tumour_centroid_mm"]) for x in rows]
    assert val["summary"]["tre_mm"]["deformable"]["tumour"]["mean"] == pytest.approx(np.mean(tre))
    # calibration count
    cal = r["uncertainty"]["calibration"]["deformable_all"]
    inside = sum(x["inside_deformable_tumour_centroid"] == "True" for x in rows)
    assert (cal["n"], cal["inside"]) == (DEMO_TRIALS, inside)
    # calculation verification under the demo's cap
    levels = {lv["level"]: lv for lv in r["calculation_verification"]["levels"]}
    assert levels["fine"]["h_mm"] < levels["case"]["h_mm"]
    assert levels["fine"]["n_tets"] < 4 * max(DEMO_MAX_TETS, levels["case"]["n_tets"])
    assert any("refinement capped" in n for n in r["calculation_verification"]["notes"])
    d = r["uncertainty"]["doubt_sources"]
    assert sum(d["variance_mm2"].values()) == pytest.approx(d["total_check_mm2"], rel=1e-9)
    assert any(s.startswith("credibility: validation trial") for s in demo_report["steps"])


def test_demo_report_has_the_credibility_sections(demo_report: dict) -> None:
    r = demo_report["result"].report
    text = _text(demo_report["page"])
    parts = ("verdict", "code verification", "calculation verification", "validation",
             "uncertainty quantification", "applicability")  # fmt: skip
    for part in parts:
        assert f"Credibility: {part}" in text
    assert f"Verdict: {r['verdict']['verdict']}." in text
    cal = r["uncertainty"]["calibration"]["deformable_trusted"]
    assert f"{cal['n']} {cal['inside']}" in text  # the calibration table row
    # the small demo study cannot meet the default risk level 3: it says what is missing
    assert r["verdict"]["verdict"] == "not enough evidence"
    assert any("fewer than the 20 required" in m for m in r["verdict"]["missing"])
    html = demo_report["page"].read_text()
    assert html.count('<img src="data:image/png;base64,') == 5
