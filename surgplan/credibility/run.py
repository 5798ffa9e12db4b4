"""Build the credibility report of a case: evidence, verdict, ``credibility.html`` and ``.json``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from surgplan.credibility.context import ContextOfUse, load_context
from surgplan.credibility.errors import CredibilityError

__all__ = ["DEFAULT_TRIALS", "CredibilityReport", "build_credibility", "gather_evidence"]

#: Validation trials by default (a couple of minutes on two cores).
DEFAULT_TRIALS = 24
#: Cap on the finest calculation-verification mesh, tetrahedra (its solve stays under a minute).
DEFAULT_MAX_REFINED_TETS = 150_000
JSON_NAME, HTML_NAME = "credibility.json", "credibility.html"


@dataclass(frozen=True)
class CredibilityReport:
    """The report: every section's figures (``report``), its files and the trials table.

    Attributes
    ----------
    report : dict
        What ``credibility.json`` holds.
    html, json : pathlib.Path
        The two files written.
    images : dict of str to pathlib.Path
        The pictures beside them.
    """

    report: dict[str, Any]
    html: Path
    json: Path
    images: dict[str, Path]

    def to_dict(self) -> dict[str, Any]:
        """The command's ``--json`` summary: verdict, headline figures and files."""
        r = self.report
        val, unc = r["validation"], r["uncertainty"]
        cal = unc["calibration"]["deformable_trusted"]
        return {
            "verdict": r["verdict"]["verdict"],
            "risk_level": r["verdict"]["risk_level"],
            "missing": r["verdict"]["missing"],
            "applicability_warnings": r["applicability"]["warnings"],
            "code_verification_pass": r["code_verification"]["errors_pass"]
            and r["code_verification"]["orders_pass"],
            "tumour_discretisation_error_mm": r["calculation_verification"]["tumour"]["error_mm"],
            "surface_discretisation_error_rms_mm": r["calculation_verification"]["surface"][
                "error_rms_mm"
            ],
            "n_trials": val["n_trials"],
            "tumour_tre_mm": {
                m: val["summary"]["tre_mm"][m]["tumour"].get("mean")
                for m in ("rigid", "deformable")
            },  # fmt: skip
            "tumour_tre_trusted_mm": {
                m: val["summary"]["tre_mm_trusted"][m]["tumour"].get("mean")
                for m in ("rigid", "deformable")
            },  # fmt: skip
            "calibration": {
                "inside": cal["inside"],
                "n": cal["n"],
                "fraction": cal["fraction"],
                "clopper_pearson": cal["clopper_pearson"],
            },  # fmt: skip
            "doubt_shares": unc["doubt_sources"]["share"],
            "user_data": _user_headline(val.get("user_data")),
            "html": str(self.html),
            "json": str(self.json),
            "time_s": r["time_s"],
        }


def _user_headline(user: dict[str, Any] | None) -> dict[str, Any]:
    """The ``--json`` summary of the user's validation data."""
    if not user or not user["given"]:
        return {"n_acquisitions": 0}
    return {"n_acquisitions": user["n_acquisitions"]} | {
        m: {k: user["summary"][m][k] for k in ("trusted", "untrusted", "tre_mm_trusted")}
        for m in ("rigid", "deformable")
    }  # fmt: skip


def _model(case_dir: Path, context: ContextOfUse) -> Any:
    from surgplan.case import Case
    from surgplan.twin.case_twin import load_case_model

    if not (case_dir / "case.json").is_file():
        raise CredibilityError(f"not a surgplan case (no case.json): {case_dir}")
    Case.open(case_dir)
    model = load_case_model(case_dir)
    if context.quantity not in model.targets_mm:
        raise CredibilityError(
            f"{context.source}: field 'quantity': {context.quantity!r} is not a target of the "
            f"case's twin (targets: {', '.join(model.targets_mm) or 'none'})"
        )
    return model


def _organ_volume_ml(case_dir: Path, structure: str) -> float:
    from surgplan.case import Case

    entry = Case.open(case_dir).manifest.volume_mesh
    vols = dict(entry.quality.get("region_volume_ml", {})) if entry is not None else {}
    if structure not in vols:
        raise CredibilityError(f"case volume mesh has no region {structure!r}: run surgplan mesh")
    return float(vols[structure])


def gather_evidence(
    case_dir: str | Path, out_dir: str | Path, context: ContextOfUse, *, trials: int,
    quick_verify: bool = False, verify_json: str | Path | None = None,
    max_refined_tets: int | None = DEFAULT_MAX_REFINED_TETS,
    step: Callable[[str], None] | None = None, user_scores: tuple[Any, ...] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Every section's figures (the ``credibility.json`` content) and the trials table.

    ``user_scores``: the user's acquisitions already scored
    (:func:`surgplan.credibility.user_validation.score_acquisitions`), summed up into
    ``validation.user_data`` and checked by the verdict.
    """
    from surgplan.credibility.applicability import assess_applicability, describe_case
    from surgplan.credibility.calculation import calculation_verification
    from surgplan.credibility.code_verification import read_verify_json, run_code_verification
    from surgplan.credibility.uq import calibration, doubt_sources
    from surgplan.credibility.user_summary import summarise_user_data
    from surgplan.credibility.validation import run_validation
    from surgplan.credibility.verdict import judge
    from surgplan.virtual_patients import load_virtual_patients

    say = step or (lambda text: None)
    t0 = time.perf_counter()
    case_dir, out = Path(case_dir).resolve(), Path(out_dir)
    model = _model(case_dir, context)
    tumour = context.quantity
    say("code verification")
    code = read_verify_json(verify_json) if verify_json else run_code_verification(
        quick=quick_verify)  # fmt: skip
    say("calculation verification on the case mesh")
    calc = calculation_verification(case_dir, model.targets_mm[tumour], max_tets=max_refined_tets)
    say("validation on virtual patients")
    val, table = run_validation(case_dir, context, out, trials=trials,
                                progress=lambda d, n: say(f"validation trial {d}/{n}"))  # fmt: skip
    say("uncertainty: sources of doubt")
    patients = load_virtual_patients(val.patients_path)
    doubt = doubt_sources(case_dir, patients, context.plan, context.validation, tumour,
                          seed=context.validation["seed"])  # fmt: skip
    cals = {f"{m}_{'trusted' if t else 'all'}": calibration(table, m, tumour, trusted_only=t)
            for m in ("deformable", "rigid") for t in (True, False)}  # fmt: skip
    desc = describe_case(model, _organ_volume_ml(case_dir, model.structure), tumour)
    appl = assess_applicability(desc, [desc], context.plan, val.grid,
                                [p["max_displacement_mm"] for p in val.patients])  # fmt: skip
    trusted = val.summary["tre_mm_trusted"]["deformable"]["tumour"]
    user = summarise_user_data(user_scores, val.by_protocol, tumour)
    verdict = judge(context, code, calc, trusted.get("mean"), int(trusted.get("n", 0)),
                    cals["deformable_trusted"], val.n_trials, appl, user_data=user)  # fmt: skip
    report = {
        "title": "Credibility of the twin for this case (ASME V&V 40 style)",
        "case": case_dir.name,
        "software": {"surgplan": version("surgplan")},
        "context": context.to_dict(),
        "code_verification": code.to_dict(),
        "calculation_verification": calc.to_dict(),
        "validation": val.to_dict() | {"user_data": user.to_dict()},
        "uncertainty": {"calibration": {k: c.to_dict() for k, c in cals.items()},
                        "doubt_sources": doubt.to_dict()},  # fmt: skip
        "applicability": appl.to_dict() | {"validation_cases": "this case's own twin and mesh"},
        "verdict": verdict.to_dict(),
    }  # fmt: skip
    report["time_s"] = time.perf_counter() - t0
    return report, table


def _write(report: dict[str, Any], images: dict[str, Path], out: Path) -> tuple[Path, Path]:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from surgplan.atomic import write_text_atomic
    from surgplan.cli.common import to_jsonable
    from surgplan.credibility.sections import credibility_sections
    from surgplan.manifest import utc_now

    report["files"] = {k: str(p) for k, p in images.items()} | {
        "html": str(out / HTML_NAME), "json": str(out / JSON_NAME)}  # fmt: skip
    env = Environment(loader=PackageLoader("surgplan", "templates"),
                      autoescape=select_autoescape(["html"]))  # fmt: skip
    v = report["verdict"]
    html = env.get_template(HTML_NAME).render(
        title=report["title"], sections=credibility_sections(report, images),
        generated=utc_now(), version=report["software"]["surgplan"], time_s=report["time_s"],
        verdict=v["verdict"], meets=not v["missing"], missing=v["missing"],
        risk_level=v["risk_level"], warnings=report["applicability"]["warnings"],
    )  # fmt: skip
    json_path = out / JSON_NAME
    write_text_atomic(json_path, json.dumps(to_jsonable(report), indent=1) + "\n")
    html_path = out / HTML_NAME
    write_text_atomic(html_path, html)
    return html_path, json_path


def _score_user_data(
    case_dir: str | Path, context: ContextOfUse,
    manifests: list[str | Path] | tuple[str | Path, ...], step: Callable[[str], None] | None,
) -> tuple[Any, ...]:  # fmt: skip
    """The user's acquisitions checked and scored (before anything is written)."""
    from surgplan.credibility.user_validation import score_acquisitions

    if not manifests:
        return ()
    _model(Path(case_dir).resolve(), context)
    return score_acquisitions(Path(case_dir).resolve(), manifests, context.plan["noise_mm"],
                              progress=step)  # fmt: skip


def build_credibility(
    case_dir: str | Path, out_dir: str | Path, *,
    context: str | Path | ContextOfUse | None = None,
    trials: int = DEFAULT_TRIALS, quick_verify: bool = False,
    verify_json: str | Path | None = None,
    max_refined_tets: int | None = DEFAULT_MAX_REFINED_TETS,
    step: Callable[[str], None] | None = None,
    validation_data: list[str | Path] | tuple[str | Path, ...] = (),
) -> CredibilityReport:  # fmt: skip
    """Gather the evidence for a case and write ``credibility.html`` and ``credibility.json``.

    Parameters
    ----------
    case_dir : path
        A twin-ready case (``surgplan rom CASE`` without a scenario).
    out_dir : path
        Output folder (created): the two files, the pictures, ``trials.csv``, the patients.
    context : path or ContextOfUse, optional
        Context-of-use TOML (:mod:`surgplan.credibility.context`) or one already read; the
        liver-resection default when omitted.
    trials : int
        Validation trials.
    quick_verify : bool
        Rerun ``surgplan verify`` on its quick levels instead of the full study.
    verify_json : path, optional
        Read a kept ``surgplan verify --json`` output instead of rerunning.
    max_refined_tets : int, optional
        Cap on the finest calculation-verification mesh (``None``: always ``h / 2``).
    step : callable, optional
        ``step(text)`` before each part (drives the progress bar).
    validation_data : list of path, optional
        The user's validation-data manifests (:mod:`surgplan.credibility.user_data`): real
        acquisitions with a known answer, checked and scored before anything is written.

    Raises
    ------
    ContextError
        Bad context file.
    UserDataError
        A bad validation-data manifest, points file or truth (``DIR`` left untouched).
    CredibilityError, surgplan.errors.CaseError, surgplan.twin.TwinError
        Not a case, no reduced model, the question's target is not one of the twin's.
    """
    from surgplan.case import Case
    from surgplan.credibility.plots import plot_all
    from surgplan.export import require_outside_case

    ctx = context if isinstance(context, ContextOfUse) else load_context(context)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CredibilityError(f"--out {out} exists and is not a folder")
    if not (Path(case_dir) / "case.json").is_file():
        raise CredibilityError(f"not a surgplan case (no case.json): {case_dir}")
    require_outside_case(Case.open(case_dir), out)  # the next step would collect its files
    scores = _score_user_data(case_dir, ctx, validation_data, step)
    out.mkdir(parents=True, exist_ok=True)
    report, table = gather_evidence(case_dir, out, ctx, trials=trials, quick_verify=quick_verify,
                                    verify_json=verify_json, max_refined_tets=max_refined_tets,
                                    step=step, user_scores=scores)  # fmt: skip
    images = plot_all(report, table, out)
    html, js = _write(report, images, out)
    return CredibilityReport(report, html, js, images)
