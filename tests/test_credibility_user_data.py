"""``surgplan credibility --validation-data``: the twin on the user's data with a known answer.

Acquisitions with a known answer are made from the project's own machinery on the session's
small real-liver twin case (:func:`tests.test_twin_case.small_twin_case`): a known reduced-model
deformation (:func:`tests.test_twin_case.known_deformation`) and a known pose, swabs on the
deformed organ with 1 mm noise (:func:`surgplan.twin.synthetic.posed_swabs`); the truth is the
deformed, posed targets (the tumour centroid, a portal-vein point and a fiducial inside the
organ that is not one of the twin's targets). They are written to files as a user would (a CSV
and a TOML manifest with the truth in tracker space; a RAS markups file and a JSON manifest
with a ground-truth ``T_tracker_model`` on an undeformed organ). The reported TRE must equal the
TRE computed here from the known truth, with the twin built as ``surgplan register --case``
builds it (:func:`surgplan.twin.case_twin.twin_from_case`), to 1e-6 mm. A truth displaced by
20 mm fails the verdict with its reason; bad manifests are refused in one line naming the file
and field, and on the command line with exit code 2 and no output folder. One full command
line run (quick levels: a kept verify table, one virtual patient, two trials, a small refined
mesh) checks the JSON key, the HTML subsection and the verdict end to end.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import registration as reg
from registration.io import read_points, write_slicer_markups
from surgplan.credibility.context import load_context
from surgplan.credibility.sections import _user_data
from surgplan.credibility.user_data import UserDataError, load_acquisition
from surgplan.credibility.user_summary import NONE_SUPPLIED, summarise_user_data
from surgplan.credibility.user_validation import score_acquisitions
from surgplan.credibility.verdict import MEETS, NOT_ENOUGH, judge
from surgplan.twin.case_twin import load_case_model, twin_from_case
from surgplan.twin.synthetic import posed_swabs, random_pose
from tests.test_twin_case import known_deformation, small_twin_case

TUMOUR = "tumour_centroid"
DISPLACED_MM = 20.0
#: Everything but the user data met by the small study (applicability a warning only).
CONTEXT = """
question = "Where is the tumour?"
use = "test"
decision = "where to cut"
[validation]
anterior_coverage = [0.2, 0.3]
noise_mm = [1.0]
patients = 1
[requirements]
discretisation_error_mm = 50.0
tre_mm = 10.0
calibration_lower = {cal}
min_trials = 1
applicability = false
"""


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path) -> Path:
    return small_twin_case(tmp_path_factory, liver_models_dir)


def _deformed_targets(model, a: np.ndarray, T: np.ndarray, names_mm: dict) -> dict:
    """True tracker positions: model points moved by the known amplitudes, then posed."""
    pts = np.array(list(names_mm.values()))
    moved = pts + np.tensordot(a, model.modes_at(pts), axes=(0, 0))
    return dict(zip(names_mm, reg.apply_transform(T, moved), strict=True))


def _toml_vec(x: np.ndarray) -> str:
    return "[" + ", ".join(repr(float(v)) for v in x) + "]"


def _write_manifest(path: Path, points: str, targets: dict, model_mm: dict, noise: float) -> Path:
    lines = ['description = "synthetic swabs, known deformation and pose"',
             f'points = "{points}"', f"noise_mm = {noise!r}"]  # fmt: skip
    for name, x in targets.items():
        lines += [f"[targets.{name}]", f"tracker_mm = {_toml_vec(x)}"]
        if name in model_mm:
            lines.append(f"model_mm = {_toml_vec(model_mm[name])}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def data(case: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two acquisitions with a known answer and a wrong one, written as a user would."""
    model = load_case_model(case)
    folder = tmp_path_factory.mktemp("user_data")
    a, u = known_deformation(model)
    basis = model.basis()
    surface = reg.prepare_surface((basis.vertices_mm, basis.faces))
    T = random_pose(np.random.default_rng(3), rotation_deg=20.0, translation_mm=50.0)
    pts = posed_swabs(surface, u, T, n_points=300, noise_mm=1.0, seed=0)
    interior = np.asarray(model.rom.points_mm[model.rom.n_surface :], float)
    fiducial = interior[np.argmin(np.linalg.norm(interior - interior.mean(axis=0), axis=1))]
    model_mm = {TUMOUR: model.targets_mm[TUMOUR], "portal_vein_1": model.targets_mm[
        "portal_vein_1"], "fiducial_1": fiducial}  # fmt: skip
    truth1 = _deformed_targets(model, a, T, model_mm)
    np.savetxt(folder / "swabs.csv", pts, delimiter=",", header="x,y,z", comments="", fmt="%.17g")
    m1 = _write_manifest(folder / "acq1.toml", "swabs.csv", truth1, {"fiducial_1": fiducial}, 1.0)
    wrong = {k: v + [DISPLACED_MM, 0.0, 0.0] for k, v in truth1.items()}
    bad = _write_manifest(folder / "displaced.toml", "swabs.csv", wrong,
                          {"fiducial_1": fiducial}, 1.0)  # fmt: skip
    T2 = random_pose(np.random.default_rng(5), rotation_deg=30.0, translation_mm=80.0)
    pts2 = posed_swabs(surface, np.zeros_like(u), T2, n_points=250, noise_mm=0.5, seed=1)
    write_slicer_markups(folder / "scan.mrk.json", pts2, coordinate_system="RAS")
    m2 = folder / "acq2.json"
    m2.write_text(json.dumps({
        "description": "undeformed phantom, tracked pointer", "points": "scan.mrk.json",
        "noise_mm": 0.5, "T_tracker_model": T2.tolist(), "targets": {TUMOUR: {}},
    }))  # fmt: skip
    truth2 = {TUMOUR: reg.apply_transform(T2, model.targets_mm[TUMOUR][None])[0]}
    return {"folder": folder, "manifests": [m1, m2], "displaced": bad, "model": model,
            "truth": {"acq1": truth1, "acq2": truth2}, "fiducial": fiducial,
            "points": {"acq1": folder / "swabs.csv", "acq2": folder / "scan.mrk.json"},
            "noise": {"acq1": 1.0, "acq2": 0.5}}  # fmt: skip


@pytest.fixture(scope="module")
def scores(case: Path, data: dict) -> tuple:
    return score_acquisitions(case, [*data["manifests"], data["displaced"]], 1.0)


def _independent(case: Path, data: dict, name: str, mode: str) -> dict:
    """TRE and radius95 per truth target, the twin built as ``register --case`` builds it."""
    twin = twin_from_case(case, mode=mode, noise_mm=data["noise"][name], seed=0)
    state = twin.update(read_points(data["points"][name]))
    out = {}
    for target, truth in data["truth"][name].items():
        if target == "fiducial_1":  # not a twin target: the twin's motion of that model point
            p = data["fiducial"][None]
            pos = twin.deform_points(p, data["model"].modes_at(p))[0]
            r95 = None
        else:
            pos, r95 = state.target(target).position_tracker_mm, state.target(target).radius95_mm
        out[target] = (float(np.linalg.norm(pos - truth)), r95, state.trustworthy)
    return out


def test_reported_tre_is_the_tre_from_the_known_truth(case: Path, data: dict, scores) -> None:
    by_name = {s.name: s for s in scores}
    for name in ("acq1", "acq2"):
        s = by_name[name]
        assert s.n_points == len(read_points(data["points"][name]))
        for mode in ("rigid", "deformable"):
            m = s.modes[mode]
            ref = _independent(case, data, name, mode)
            assert [t.name for t in m.targets] == list(data["truth"][name])
            assert m.trustworthy == ref[TUMOUR][2] and m.n_points_used == s.n_points
            for t in m.targets:
                tre, r95, _ = ref[t.name]
                assert abs(t.tre_mm - tre) < 1e-6, (name, mode, t.name, t.tre_mm, tre)
                if r95 is not None:
                    assert abs(t.radius95_mm - r95) < 1e-6
                assert t.inside == (t.tre_mm <= t.radius95_mm)
                assert t.twin_target == (t.name != "fiducial_1")
    d1 = by_name["acq1"].modes["deformable"]
    assert d1.trustworthy and d1.headline(TUMOUR)[0] < 2.0  # the known deformation recovered
    cov = by_name["acq1"].coverage  # swabs over 0.3 of the whole surface
    assert 0.2 < cov.surface < 0.32 and cov.anterior > cov.surface, cov
    assert by_name["acq2"].truth_kind == "T_tracker_model"


def _evidence_met(context) -> dict:
    """Stand-ins for the other evidence, meeting every requirement (the verdict's inputs)."""
    return {
        "code": SimpleNamespace(failures=lambda orders: []),
        "calc": SimpleNamespace(tumour_error_mm=0.0),
        "cal": SimpleNamespace(clopper_pearson=(0.99, 1.0), inside=100, n=100),
        "appl": SimpleNamespace(inside=True, warnings=[]),
    }


def _judge(context, user) -> object:
    e = _evidence_met(context)
    return judge(context, e["code"], e["calc"], 1.0, 100, e["cal"], 100, e["appl"],
                 user_data=user)  # fmt: skip


def test_displaced_truth_is_not_enough_evidence(scores, tmp_path: Path) -> None:
    (tmp_path / "ctx.toml").write_text(CONTEXT.format(cal=0.75))
    context = load_context(tmp_path / "ctx.toml")
    rows = [{"anterior_coverage": 0.3, "noise_mm": 1.0, "n": 4, "tre_rigid_mm": 3.0,
             "tre_rigid_trusted_mm": None, "tre_deformable_mm": 2.0,
             "tre_deformable_trusted_mm": 2.0}]  # fmt: skip
    good = summarise_user_data(scores[:2], rows, TUMOUR)
    assert _judge(context, good).verdict == MEETS
    assert good.summary["deformable"]["inside"] == good.summary["deformable"]["n_targets"] == 4
    vp = good.acquisitions[0]["virtual_patients"]
    assert vp["anterior_coverage"] == 0.3 and vp["deformable"]["tre_mm_trusted"] == 2.0
    bad = summarise_user_data(scores[2:], rows, TUMOUR)
    v = _judge(context, bad)
    tre = bad.summary["deformable"]["tre_mm_each"]["displaced"]
    assert 15.0 < tre < 25.0
    assert v.verdict == NOT_ENOUGH
    assert (f"on your data the {TUMOUR} TRE exceeds 10 mm on 1 of 1 trusted acquisitions: "
            f"displaced {tre:.2f} mm") in v.missing  # fmt: skip
    assert any("radius95 missed 3 of 3 truth targets" in m for m in v.missing), v.missing
    # none given: the statement, and no user-data check
    none = summarise_user_data((), rows, TUMOUR)
    assert not none.given and none.statement == NONE_SUPPLIED
    assert not any("your data" in c["requirement"] for c in _judge(context, none).checks)
    section = _user_data({"validation": {"user_data": none.to_dict()}})
    assert "validation on your data" in section.heading and section.text == NONE_SUPPLIED


def test_an_untrusted_acquisition_is_reported_not_averaged(scores) -> None:
    d = scores[0].modes["deformable"]
    untrusted = replace(scores[0], name="blocked",
                        modes=scores[0].modes | {"deformable": replace(
                            d, trustworthy=False, reason="too few inliers")})  # fmt: skip
    user = summarise_user_data((scores[0], untrusted), [], TUMOUR)
    s = user.summary["deformable"]
    assert s["trusted"] == ["acq1"] and s["untrusted"] == [
        {"name": "blocked", "reason": "too few inliers"}]  # fmt: skip
    assert s["tre_mm_trusted"] == d.headline(TUMOUR)[0]
    assert "Not trusted (reported, not averaged in): blocked: too few inliers" in user.statement
    only = summarise_user_data((untrusted,), [], TUMOUR)
    v = _judge(load_context(), only)
    assert any(m.startswith("the deformable twin trusted none of the 1 user acquisitions")
               for m in v.missing), v.missing  # fmt: skip


def _manifest(folder: Path, body: str, name: str = "m.toml") -> Path:
    (folder / name).write_text(body)
    return folder / name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('points = "swabs.csv"\n[targets.tumour_centroid]\ntracker_mm = [1, 2, 3]\n',
         "field 'description': required field missing"),
        ('description = "d"\npoints = "swabs.csv"\ncolour = "red"\n'
         "[targets.tumour_centroid]\ntracker_mm = [1, 2, 3]\n", "field 'colour': unknown field"),
        ('description = "d"\npoints = "swabs.csv"\n[targets.tumour_centroid]\n'
         "tracker_mm = [1, 2]\n", "field 'targets.tumour_centroid.tracker_mm': List should have"),
        ('description = "d"\npoints = "swabs.csv"\n[targets.tumour_centroid]\n'
         "tracker_mm = [1, nan, 3]\n", "field 'targets.tumour_centroid.tracker_mm[1]'"),
        ('description = "d"\npoints = "nothing.csv"\n[targets.tumour_centroid]\n'
         "tracker_mm = [1, 2, 3]\n", "field 'points': points file not found"),
        ('description = "d"\npoints = "swabs.csv"\n[targets.fiducial_9]\n'
         "tracker_mm = [1, 2, 3]\n", "field 'targets.fiducial_9': 'fiducial_9' is not a target"),
        ('description = "d"\npoints = "metres.csv"\n[targets.tumour_centroid]\n'
         "tracker_mm = [1, 2, 3]\n", "field 'points'"),
        ('description = "d"\npoints = "nan.csv"\n[targets.tumour_centroid]\n'
         "tracker_mm = [1, 2, 3]\n", "1 of 300 points are NaN or infinite (rows 7)"),
        ('description = "d"\npoints = "swabs.csv"\n[targets.tumour_centroid]\n'
         "tracker_mm = [0.1, 0.0, 0.2]\nmodel_mm = [0.1, 0.0, 0.2]\n",
         "field 'targets.tumour_centroid.model_mm': [0.1, 0.0, 0.2] lies outside the organ"),
        ('description = "d"\npoints = "swabs.csv"\nT_tracker_model = [[1, 0, 0, 0], [0, 1, 0, '
         "0], [0, 0, 1, 0], [0, 0, 0, 1]]\n[targets.tumour_centroid]\ntracker_mm = [1, 2, 3]\n",
         "give either T_tracker_model or each target's tracker_mm"),
        ("description = \n", "not a valid TOML file"),
    ],
)  # fmt: skip
def test_bad_manifest_is_one_line_naming_file_and_field(
    data: dict, body: str, message: str
) -> None:
    folder = data["folder"]
    pts = read_points(folder / "swabs.csv")
    np.savetxt(folder / "metres.csv", pts / 1000.0, delimiter=",")
    with_nan = pts.copy()
    with_nan[7, 1] = np.nan
    np.savetxt(folder / "nan.csv", with_nan, delimiter=",")
    path = _manifest(folder, body)
    with pytest.raises(UserDataError) as exc:
        load_acquisition(path, data["model"])
    text = str(exc.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text, text


def test_targets_in_another_unit_are_refused(data: dict) -> None:
    truth = data["truth"]["acq1"]
    cm = {k: v / 10.0 for k, v in truth.items()}
    path = _write_manifest(data["folder"] / "cm.toml", "swabs.csv", cm,
                           {"fiducial_1": data["fiducial"]}, 1.0)  # fmt: skip
    with pytest.raises(UserDataError, match=r"field 'targets.*not .*mm\?"):
        load_acquisition(path, data["model"])


def _run(*args: object) -> tuple[int, str, str]:
    exe = Path(sys.executable).parent / "surgplan"
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout, r.stderr


def test_bad_validation_data_on_the_command_line(case: Path, data: dict, tmp_path: Path) -> None:
    body = 'description = "d"\npoints = "metres.csv"\n[targets.tumour_centroid]\n'
    bad = _manifest(data["folder"], body + "tracker_mm = [1, 2, 3]\n", "metres.toml")
    np.savetxt(data["folder"] / "metres.csv", read_points(data["points"]["acq1"]) / 1e3,
               delimiter=",")  # fmt: skip
    for manifest, message in ((bad, "probably in metres"), (tmp_path / "none.toml", "not found")):
        out = tmp_path / "o"
        code, stdout, err = _run("credibility", case, "--out", out, "--validation-data",
                                 data["manifests"][0], "--validation-data", manifest)  # fmt: skip
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
        assert message in lines[0] and str(manifest) in lines[0]
        assert not out.exists()


def test_command_line_report_with_validation_data(case: Path, data: dict, tmp_path: Path) -> None:
    from biomech.verification import json_records, run_verification

    verify = tmp_path / "verify.json"
    verify.write_text(json.dumps(json_records(run_verification(quick=True))))
    (tmp_path / "ctx.toml").write_text(CONTEXT.format(cal=0.0))  # 2 trials: no tight bound
    out = tmp_path / "report"
    code, stdout, err = _run(
        "credibility", case, "--context", tmp_path / "ctx.toml", "--out", out, "--trials", 2,
        "--verify-json", verify, "--max-refined-tets", 20000, "--json",
        *(x for m in (*data["manifests"], data["displaced"]) for x in ("--validation-data", m)),
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    report = json.loads((out / "credibility.json").read_text())
    user = report["validation"]["user_data"]
    assert user["given"] and user["n_acquisitions"] == 3
    assert summary["user_data"]["n_acquisitions"] == 3
    for acq in user["acquisitions"][:2]:
        for mode, m in acq["modes"].items():
            ref = _independent(case, data, acq["name"], mode)
            for t in m["targets"]:
                assert abs(t["tre_mm"] - ref[t["name"]][0]) < 1e-6
    # everything else is met: the displaced truth alone makes it not enough evidence
    v = report["verdict"]
    assert summary["verdict"] == v["verdict"] == NOT_ENOUGH
    failed = [c["requirement"] for c in v["checks"] if not c["met"]]
    assert failed == ["validation TRE on your data"], v["missing"]
    assert "displaced" in v["missing"][0]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (out / "credibility.html").read_text()))
    assert "Credibility: validation on your data" in text
    assert "3 real acquisitions with a known answer supplied by the user" in text
    vp = user["acquisitions"][0]["virtual_patients"]["deformable"]["tre_mm_trusted"]
    mine = user["summary"]["deformable"]["tre_mm_each"]["acq1"]
    # the comparison, in words (with 2 trials the nearest one may not be trusted)
    theirs = "none (no trusted virtual-patient trial)" if vp is None else f"{vp:.2f} mm"
    assert f"acq1 {mine:.2f} mm vs {theirs}" in text
    tre = user["acquisitions"][0]["modes"]["deformable"]["targets"][0]["tre_mm"]
    assert f"{tre:.2f}" in text


def test_comparison_in_words_names_both_figures_or_says_none() -> None:
    from surgplan.credibility.user_summary import _comparison

    def acq(name: str, trusted: float | None) -> dict:
        vp = {"anterior_coverage": 0.3, "noise_mm": 1.0, "inside_grid": trusted is not None,
              "deformable": {"tre_mm_trusted": trusted}}  # fmt: skip
        return {"name": name, "virtual_patients": vp}

    summary = {"deformable": {"tre_mm_each": {"a": 2.345, "b": 4.0}}}
    text = _comparison([acq("a", 1.5), acq("b", None)], summary)
    assert "a 2.35 mm vs 1.50 mm (coverage 0.3, noise 1 mm)" in text
    assert "b 4.00 mm vs none (no trusted virtual-patient trial)" in text
