"""The virtual-patient study's figures (``summary.json``) and plots.

Figures (good cases unless said; TRE and radii in mm):

- ``tre_mm[mode]``: TRE statistics at the tumour centroid (``tumour``), at the vessel points
  (``vessels``: every portal / hepatic vein target of every trial) and at all targets;
- ``deformable_over_rigid``: the ratio of the deformable to the rigid mean TRE (tumour,
  vessels, all targets), the issue's goal being <= 0.7;
- ``calibration[mode]``: the share of (trial, target) pairs whose TRE is inside the predicted
  radius95 (all targets, tumour only), the goal being 90-98 %: over every good trial
  (``fraction_inside_radius95``, the headline), and, for reading it, over the trials the verdict
  trusts (``..._trusted``: where the radius is shown) and over those whose fit converged to
  the right basin (``..._successful``, tumour TRE < ``SUCCESS_TRE_MM``): a wrong minimum is
  a gross failure that no local covariance describes, the verdict's job, not the radius';
- ``verdict[mode]``: good-case false alarms (not trustworthy) and, per bad case and over all,
  the flag rate (not trustworthy, the twin's refusal of the points included; ``refused``
  counts those);
- ``recommendation``: points needed to bring the tumour TRE under the goal following the
  recommendation and by uniform random swabbing (median over the trials; a trial that never
  reaches it counts as ``inf`` in the median, and ``reached_rate`` says how often each did);
- ``patients``: each virtual patient's largest surface displacement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from registration.study.runner import _stats

__all__ = ["SUCCESS_TRE_MM", "plot_twin_study", "summarise_twin_study"]

#: A trial's fit counts as successful when its tumour TRE is below this, mm (as the
#: registration study's ``SUCCESS_TRE_MM``): false alarms are also reported on those only.
SUCCESS_TRE_MM = 5.0


def _targets(table: dict[str, np.ndarray], mode: str) -> list[str]:
    pre = f"tre_{mode}_"
    return [c[len(pre) : -3] for c in table if c.startswith(pre) and c.endswith("_mm")]


def _groups(names: list[str]) -> dict[str, list[str]]:
    tumour = [n for n in names if "tumour" in n or "tumor" in n]
    vessels = [n for n in names if "vein" in n]
    return {"tumour": tumour, "vessels": vessels, "all": names}


def _values(table: dict, prefix: str, names: list[str], sel: np.ndarray) -> np.ndarray:
    """Column ``<prefix><name>`` (``_mm`` appended for TRE and radii) of every name, stacked."""
    unit = "_mm" if prefix.startswith(("tre_", "r95_")) else ""
    cols = [np.asarray(table[f"{prefix}{n}{unit}"], float)[sel] for n in names
            if f"{prefix}{n}{unit}" in table]  # fmt: skip
    return np.concatenate(cols) if cols else np.zeros(0)


def _bool(table: dict, col: str) -> np.ndarray:
    return np.asarray(table[col]).astype(bool)


def _median_with_inf(x: np.ndarray) -> float | None:
    """Median where NaN (goal never reached) counts as +inf; None if that median is inf."""
    if len(x) == 0:
        return None
    m = float(np.median(np.where(np.isfinite(x), x, np.inf)))
    return m if np.isfinite(m) else None


def summarise_twin_study(table: dict[str, np.ndarray], spec: Any) -> dict[str, Any]:
    """Study summary (module docstring); ``table`` by column, ``spec`` a TwinStudySpec."""
    case = np.asarray(table["case"]).astype(str)
    good = case == "good"
    modes = [m for m in spec.modes if f"trustworthy_{m}" in table]
    out: dict[str, Any] = {
        "study": spec.name,
        "kind": spec.kind,
        "fingerprint": spec.fingerprint(),
        "n_trials": int(len(case)),
        "n_good_trials": int(good.sum()),
        "patients": _patients(table),
        "tre_mm": {},
        "tre_mm_trusted": {},
        "by_sensor": {},
        "radius95_mm": {},
        "deformable_over_rigid": {},
        "calibration": {},
        "verdict": {},
    }
    for mode in modes:
        groups = _groups(_targets(table, mode))
        out["tre_mm"][mode] = {
            g: _stats(_values(table, f"tre_{mode}_", names, good)) for g, names in groups.items()
        }
        trusted = good & _bool(table, f"trustworthy_{mode}")
        out["tre_mm_trusted"][mode] = {
            g: _stats(_values(table, f"tre_{mode}_", names, trusted)) for g, names in groups.items()
        }
        sensor = np.asarray(table["sensor"]).astype(str)
        for sname in sorted(set(sensor[good])):
            sel = good & (sensor == sname)
            out["by_sensor"].setdefault(sname, {})[mode] = {
                g: _stats(_values(table, f"tre_{mode}_", names, sel)).get("mean")
                for g, names in groups.items()
            }
        out["radius95_mm"][mode] = {
            g: _stats(_values(table, f"r95_{mode}_", names, good)) for g, names in groups.items()
        }
        tumour_name = groups["tumour"][0] if groups["tumour"] else None
        success = good & (
            np.asarray(table[f"tre_{mode}_{tumour_name}_mm"], float) < SUCCESS_TRE_MM
            if tumour_name is not None else False
        )  # fmt: skip
        out["calibration"][mode] = {"goal": [0.90, 0.98]}
        for key, sel in (("fraction_inside_radius95", good),
                         ("fraction_inside_radius95_trusted", trusted),
                         ("fraction_inside_radius95_successful", success)):  # fmt: skip
            cal = {}
            for g, names in groups.items():
                inside = _values(table, f"inside_{mode}_", names, sel)
                tre = _values(table, f"tre_{mode}_", names, sel)
                ok = np.isfinite(tre)
                cal[g] = float(inside[ok].mean()) if ok.any() else None
            out["calibration"][mode][key] = cal
        out["verdict"][mode] = _verdict(table, case, mode)
        tumour = groups["tumour"][0] if groups["tumour"] else None
        if tumour is not None:
            tre_t = np.asarray(table[f"tre_{mode}_{tumour}_mm"], float)
            ok = good & (tre_t < SUCCESS_TRE_MM)
            trust = _bool(table, f"trustworthy_{mode}")
            out["verdict"][mode] |= {
                "success_tre_mm": SUCCESS_TRE_MM,
                "good_success_rate": float(ok[good].mean()) if good.any() else None,
                "good_false_alarm_rate_successful": (
                    float((~trust[ok]).mean()) if ok.any() else None
                ),
                "good_missed_failures": int((trust & good & ~ok).sum()),
            }
    if {"rigid", "deformable"} <= set(modes):
        for g in ("tumour", "vessels", "all"):
            r = out["tre_mm"]["rigid"][g].get("mean")
            d = out["tre_mm"]["deformable"][g].get("mean")
            out["deformable_over_rigid"][g] = d / r if r and d is not None else None
        out["deformable_over_rigid"]["goal"] = 0.7
    out["recommendation"] = _recommendation(table, spec)
    return out


def _patients(table: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    names = np.asarray(table["patient"]).astype(str)
    disp = np.asarray(table["max_displacement_mm"], float)
    seen: dict[str, float] = {}
    for n, d in zip(names, disp, strict=True):
        seen.setdefault(n, float(d))
    return [{"name": n, "max_displacement_mm": d} for n, d in sorted(seen.items())]


def _verdict(table: dict, case: np.ndarray, mode: str) -> dict[str, Any]:
    trust = _bool(table, f"trustworthy_{mode}")
    refused = _bool(table, f"refused_{mode}")
    good = case == "good"
    bad = ~good
    out: dict[str, Any] = {
        "good_false_alarm_rate": float((~trust[good]).mean()) if good.any() else None,
        "good_n": int(good.sum()),
        "bad_flag_rate_all": float((~trust[bad]).mean()) if bad.any() else None,
        "bad_n": int(bad.sum()),
        "bad_cases": {},
    }
    for c in sorted(set(case) - {"good"}):
        sel = case == c
        out["bad_cases"][c] = {
            "n": int(sel.sum()),
            "flag_rate": float((~trust[sel]).mean()),
            "refused": int(refused[sel].sum()),
        }
    return out


def _recommendation(table: dict, spec: Any) -> dict[str, Any]:
    rec = np.asarray(table.get("rec_points_recommended", []), float)
    rnd = np.asarray(table.get("rec_points_random", []), float)
    ran = np.isfinite(np.asarray(table.get("rec_final_tre_recommended_mm", []), float))
    rec, rnd = rec[ran], rnd[ran]
    both = np.isfinite(rec) & np.isfinite(rnd)
    return {
        "n": int(ran.sum()),
        "target_tre_mm": spec.recommendation.target_tre_mm,
        "batch_points": spec.recommendation.batch_points,
        "initial_points": spec.recommendation.initial_points,
        "max_points": spec.recommendation.max_points,
        "median_points_recommended": _median_with_inf(rec),
        "median_points_random": _median_with_inf(rnd),
        "reached_rate_recommended": float(np.isfinite(rec).mean()) if len(rec) else None,
        "reached_rate_random": float(np.isfinite(rnd).mean()) if len(rnd) else None,
        "fewer_points_rate": float(
            (
                np.where(np.isfinite(rec), rec, np.inf) < np.where(np.isfinite(rnd), rnd, np.inf)
            ).mean()
        )
        if len(rec)
        else None,  # fmt: skip
        "equal_points_rate": float((rec[both] == rnd[both]).sum() / len(rec)) if len(rec) else None,
        "points_recommended": _stats(rec),
        "points_random": _stats(rnd),
    }


def plot_twin_study(table: dict[str, np.ndarray], out: Path) -> list[Path]:
    """PNG plots: TRE rigid vs deformable per target group, calibration, recommendation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from registration._atomic import write_atomic

    good = np.asarray(table["case"]).astype(str) == "good"
    modes = [m for m in ("rigid", "deformable") if f"trustworthy_{m}" in table]
    paths = []

    def save(fig: Any, name: str) -> None:
        path = Path(out) / name
        fig.tight_layout()
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
        plt.close(fig)
        paths.append(path)

    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
    data, labels = [], []
    for g in ("tumour", "vessels"):
        for mode in modes:
            names = _groups(_targets(table, mode))[g]
            x = _values(table, f"tre_{mode}_", names, good)
            data.append(x[np.isfinite(x)])
            labels.append(f"{g}\n{mode}")
    if any(len(d) for d in data):
        ax.boxplot([d if len(d) else [np.nan] for d in data], showmeans=True)
        ax.set_xticks(range(1, len(labels) + 1), labels)
    ax.set_ylabel("TRE (mm)")
    ax.set_title("Target error on virtual patients (good cases)")
    ax.grid(True, alpha=0.3)
    save(fig, "tre_rigid_vs_deformable.png")

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for mode, colour in zip(modes, ("tab:orange", "tab:blue"), strict=False):
        names = _targets(table, mode)
        tre = _values(table, f"tre_{mode}_", names, good)
        r95 = _values(table, f"r95_{mode}_", names, good)
        ax.scatter(r95, tre, s=6, alpha=0.5, label=mode, color=colour)
    lim = ax.get_xlim()[1] if modes else 1.0
    ax.plot([0, lim], [0, lim], "k--", lw=1, label="TRE = radius95")
    ax.set_xlabel("predicted radius95 (mm)")
    ax.set_ylabel("true TRE (mm)")
    ax.set_title("Calibration: points below the line are inside")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    save(fig, "calibration.png")

    fig, ax = plt.subplots(figsize=(5, 3.8), dpi=100)
    ran = np.isfinite(np.asarray(table.get("rec_final_tre_recommended_mm", []), float))
    for col, label in (("rec_points_recommended", "following the recommendation"),
                       ("rec_points_random", "uniform random swabbing")):  # fmt: skip
        x = np.asarray(table.get(col, []), float)[ran] if ran.any() else np.zeros(0)
        x = np.sort(np.where(np.isfinite(x), x, np.inf))
        if len(x):
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=label)
    ax.set_xlabel("points acquired")
    ax.set_ylabel("fraction of trials with tumour TRE < goal")
    ax.set_title("Where to measure next")
    ax.grid(True, alpha=0.3)
    if ran.any():
        ax.legend(fontsize=8)
    save(fig, "recommendation.png")
    return paths
