"""The report's sections (:class:`surgplan.report.Section`).

Shared by ``credibility.html`` and ``surgplan demo``'s report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from surgplan.report import Section, Table

__all__ = ["credibility_sections"]


def _f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _ok(flag: bool | None, text: str) -> Any:
    if flag is None:
        return text
    return {"text": text, "cls": "pass" if flag else "fail"}


def _context(r: dict[str, Any]) -> Section:
    c = r["context"]
    req = c["requirements"]
    rows = [[k.replace("_", " "), _f(v, 3)] for k, v in req.items()]
    return Section(
        "Credibility: question of interest and context of use",
        f"Question: {c['question']} Quantity: {c['quantity']}. Use: {c['use']} Decision: "
        f"{c['decision']}. Model influence {c['model_influence']} x decision consequence "
        f"{c['decision_consequence']} = model risk level {c['risk_level']} of 5 (ASME V&V 40); "
        f"the evidence it requires is below. Context file: {c['source']}.",
        Table(["requirement (risk level " + str(c["risk_level"]) + ")", "value"], rows),
    )


def _verdict(r: dict[str, Any]) -> Section:
    v = r["verdict"]
    rows = [[c["requirement"], c["required"], c["achieved"], _ok(c["met"], "met" if c["met"]
             else "NOT met")] for c in v["checks"]]  # fmt: skip
    text = f"Verdict: {v['verdict']}."
    if v["missing"]:
        text += " Missing: " + " | ".join(v["missing"]) + "."
    return Section("Credibility: verdict", text,
                   Table(["requirement", "required", "achieved", "status"], rows))  # fmt: skip


def _code(r: dict[str, Any], images: dict[str, Path]) -> Section:
    cv = r["code_verification"]
    rows = [
        [c["problem"], c["quantity"], c["dofs"], f"{c['rel_error']:.2e}",
         _ok(c["error_ok"], f"<= {c['error_bound']:.0e}"), _f(c["order"]),
         _ok(c["order_ok"], "-" if c["expected_order"] is None else f"{c['expected_order']:g}")]
        for c in cv["checks"]
    ]  # fmt: skip
    sw = ", ".join(f"{k} {v}" for k, v in cv["software"].items() if v)
    s = Section(
        "Credibility: code verification",
        f"surgplan verify, {cv['source']} ({sw or 'software version not recorded'}; "
        f"{cv['time_s']:.0f} s): finest level of each problem against its analytical or "
        f"reference value; observed convergence order against the expected one (within "
        f"{cv['order_tolerance']:g}). Full table in credibility.json.",
        Table(["problem", "quantity", "dofs", "rel. error", "bound", "observed order",
               "expected order"], rows),
    )  # fmt: skip
    if "code_verification" in images:
        s.add_image(images["code_verification"], "Relative error against degrees of freedom")
    return s


def _calc(r: dict[str, Any], images: dict[str, Path]) -> list[Section]:
    cv = r["calculation_verification"]
    t, s = cv["tumour"], cv["surface"]
    rows = [[lv["level"], _f(lv["h_mm"]), _f(lv["mean_edge_mm"]), lv["n_tets"], lv["dofs"],
             _f(lv["tumour_displacement_mm"]), _f(lv["surface_rms_displacement_mm"]),
             _f(lv["surface_max_displacement_mm"])] for lv in cv["levels"]]  # fmt: skip
    order = lambda d: f"{d['order']:.2f} ({'observed' if d['order_observed'] else 'assumed'})"  # noqa: E731
    sec = Section(
        "Credibility: calculation verification on this case's mesh",
        f"Load: {cv['load']}. Discretisation error of the case mesh (Richardson, order "
        f"{order(t)} for the tumour, {order(s)} for the surface): tumour displacement "
        f"{t['error_mm']:.2f} mm; surface displacement RMS {s['error_rms_mm']:.2f} mm, max "
        f"{s['error_max_mm']:.2f} mm. " + " ".join(cv["notes"]),
        Table(["mesh", "h (mm)", "mean edge (mm)", "tets", "dofs", "tumour |u| (mm)",
               "surface RMS |u| (mm)", "surface max |u| (mm)"], rows),
    )  # fmt: skip
    if "calculation_verification" in images:
        sec.add_image(images["calculation_verification"], "Displacements against mesh size")
    keys = ("gamma_min", "gamma_mean", "fraction_gamma_below_0_1", "min_dihedral_deg",
            "max_dihedral_deg", "n_inverted")  # fmt: skip
    q_rows = [[lv["level"], *(_f(lv["quality"].get(k), 3) for k in keys)] for lv in cv["levels"]]
    quality = Section("Credibility: mesh quality", "gmsh gamma (1 regular, 0 flat) and dihedral "
                      "angles of each mesh.", Table(["mesh", *keys], q_rows))  # fmt: skip
    return [sec, quality]


def _validation(r: dict[str, Any], images: dict[str, Path]) -> Section:
    v = r["validation"]
    rows = [[_f(p["anterior_coverage"]), _f(p["noise_mm"]), p["n"], _f(p["tre_rigid_mm"]),
             _f(p["tre_deformable_mm"]), _f(p["tre_deformable_trusted_mm"]),
             _f(p["trusted_deformable"])] for p in v["by_protocol"]]  # fmt: skip
    tre = v["summary"]["tre_mm"]
    lit = v["literature"]
    pats = "; ".join(f"{p['name']}: {p['load']} (peak {p['max_displacement_mm']:.1f} mm)"
                     for p in v["patients"])  # fmt: skip
    s = Section(
        "Credibility: validation (virtual patients of this case)",
        f"{v['n_trials']} trials on {len(v['patients'])} virtual patients solved in full FE on "
        f"this case's mesh under loads the reduced model was not built from ({pats}); "
        f"{v['grid']['sensor']}, {v['grid']['n_points']} points, unknown pose (rotation up to "
        f"{v['grid']['rotation_deg']:g} deg). Mean tumour TRE over all trials: rigid "
        f"{_f(tre['rigid']['tumour'].get('mean'))} mm, deformable "
        f"{_f(tre['deformable']['tumour'].get('mean'))} mm. Literature anchor, a different "
        f"protocol ({lit['protocol']}): {lit['reference']}, rigid {lit['rigid_tre_mm'][0]:g}-"
        f"{lit['rigid_tre_mm'][1]:g} mm, best biomechanical {lit['best_biomechanical_tre_mm']:g}"
        f" mm. {_user_data_line(v.get('user_data'))}",
        Table(["anterior coverage", "noise (mm)", "trials", "rigid TRE (mm)",
               "deformable TRE (mm)", "deformable TRE, trusted (mm)", "trusted share"], rows),
    )  # fmt: skip
    if "validation" in images:
        s.add_image(images["validation"], "Mean tumour TRE by coverage and noise")
    return s


def _user_data_line(user: dict[str, Any] | None) -> str:
    if not user or not user["given"]:
        return "No real data with a known answer were given: no user validation data supplied."
    n = user["n_acquisitions"]
    return (f"Real data with a known answer: {n} acquisition{'s' if n != 1 else ''} supplied "
            "by the user, in 'validation on your data' below.")  # fmt: skip


def _vp_cell(a: dict[str, Any], mode: str) -> str:
    vp = a["virtual_patients"]
    if vp is None:
        return "-"
    where = f"cov. {vp['anterior_coverage']:g}, {vp['noise_mm']:g} mm"
    where += "" if vp["inside_grid"] else ", this acquisition outside the grid"
    return f"{_f(vp[mode]['tre_mm_trusted'])} trusted, {_f(vp[mode]['tre_mm'])} all ({where})"


def _targets_cell(m: dict[str, Any]) -> str:
    def one(t: dict[str, Any]) -> str:
        out = "" if t["inside"] else ", OUTSIDE"
        return f"{t['name']} {t['tre_mm']:.2f} (r95 {t['radius95_mm']:.2f}{out})"

    return "; ".join(one(t) for t in m["targets"])


def _user_row(user: dict[str, Any], a: dict[str, Any], mode: str) -> list[Any]:
    m = a["modes"][mode]
    trust = "trusted" if m["trustworthy"] else f"NOT trusted: {m['reason']}"
    inside, n = sum(t["inside"] for t in m["targets"]), len(m["targets"])
    return [
        a["name"], mode, f"{m['n_points_used']}/{a['n_points']}", _f(a["noise_mm"]),
        f"{a['coverage']['surface']:.2f} / {a['coverage']['anterior']:.2f}",
        _f(user["summary"][mode]["tre_mm_each"][a["name"]]), _targets_cell(m),
        _ok(inside == n, f"{inside}/{n}"), _ok(m["trustworthy"], trust), _vp_cell(a, mode),
    ]  # fmt: skip


def _user_rows(user: dict[str, Any]) -> list[list[Any]]:
    return [_user_row(user, a, mode) for a in user["acquisitions"] for mode in a["modes"]]


def _user_data(r: dict[str, Any]) -> Section:
    user = r["validation"].get("user_data")
    heading = "Credibility: validation on your data (real acquisitions with a known answer)"
    if not user or not user["given"]:
        return Section(heading, user["statement"] if user else "No user validation data "
                       "was supplied.")  # fmt: skip
    descr = " ".join(f"{a['name']}: {a['description']} (truth: {a['truth_kind']}; noise "
                     f"{a['noise_mm']:g} mm, {a['noise_source']})."
                     for a in user["acquisitions"])  # fmt: skip
    text = (f"{user['statement']} {descr} Coverage is the covered share of the whole / the "
            "anterior surface, estimated from the points on the registered surface. "
            f"{user['quantity']} TRE: at that target where the truth has it, else the mean over "
            "the truth targets. The virtual-patient column is this report's study: its mean "
            "tumour TRE over trusted and over all trials at the nearest studied anterior "
            "coverage and noise.")  # fmt: skip
    return Section(heading, text, Table(
        ["acquisition", "mode", "points used/file", "noise (mm)", "coverage surface/anterior",
         f"{user['quantity']} TRE (mm)", "TRE at each truth target (mm)", "inside radius95",
         "verdict", "virtual patients tumour TRE (mm)"], _user_rows(user)))  # fmt: skip


def _uq(r: dict[str, Any], images: dict[str, Path]) -> Section:
    u = r["uncertainty"]
    rows = []
    for key, c in u["calibration"].items():
        ci = c["clopper_pearson"]
        wi = c["wilson"]
        rows.append([key.replace("_", " "), c["n"], c["inside"], _f(c["fraction"], 3),
                     "-" if ci is None else f"{ci[0]:.3f}-{ci[1]:.3f}",
                     "-" if wi is None else f"{wi[0]:.3f}-{wi[1]:.3f}"])  # fmt: skip
    d = u["doubt_sources"]
    shares = ", ".join(f"{k.replace('_', ' ')} {100 * x:.0f} %" for k, x in d["share"].items())
    s = Section(
        "Credibility: uncertainty quantification",
        f"Calibration of the predicted 95 % radius at the tumour (share of trials whose TRE is "
        f"inside it, exact Clopper-Pearson and Wilson 95 % intervals). Sources of doubt of the "
        f"deformable twin's tumour prediction on the planned acquisition ({d['n_acquisitions']} "
        f"acquisitions; shares of the mean squared error {sum(d['variance_mm2'].values()):.2f}"
        f" mm^2, radius95 {d['radius95_mm']['total']:.2f} mm): {shares}.",
        Table(["mode, trials", "n", "inside", "fraction", "Clopper-Pearson 95 %",
               "Wilson 95 %"], rows),
    )  # fmt: skip
    for key, caption in (("calibration", "Tumour TRE against the predicted radius95"),
                         ("doubt_sources", "Shares of the tumour's predicted error")):  # fmt: skip
        if key in images:
            s.add_image(images[key], caption)
    return s


def _applicability(r: dict[str, Any]) -> Section:
    a = r["applicability"]
    rows = [
        [x["quantity"], f"{_f(x['case'], 3)} {x['unit']}",
         f"{x['validated'][0]:.3g}-{x['validated'][1]:.3g} {x['unit']}",
         _ok(x["inside"], "inside" if x["inside"] else "OUTSIDE")]
        for x in a["rows"]
    ]  # fmt: skip
    text = ("This case and its planned use against what the validation covered. "
            + ("WARNING: " + "; ".join(a["warnings"]) + "." if a["warnings"]
               else "Everything lies inside the validated range."))  # fmt: skip
    return Section("Credibility: applicability", text,
                   Table(["quantity", "this case", "validated", "status"], rows))  # fmt: skip


def credibility_sections(report: dict[str, Any], images: dict[str, Path]) -> list[Section]:
    """The report's sections, verdict first (``report``: :meth:`CredibilityReport.to_dict`)."""
    return [
        _verdict(report), _context(report), _code(report, images), *_calc(report, images),
        _validation(report, images), _user_data(report), _uq(report, images),
        _applicability(report),
    ]  # fmt: skip
