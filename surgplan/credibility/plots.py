"""The report's pictures (matplotlib, Agg), written atomically as PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_all"]


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from surgplan.atomic import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _code(records: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["problem"], r["quantity"]), []).append(r)
    for (problem, quantity), rows in groups.items():
        err = np.array([max(float(r["rel_error"]), 1e-17) for r in rows])
        if len(rows) < 2 or problem == "vessel_tree":
            continue
        ax.loglog([r["dofs"] for r in rows], err, "o-", ms=3, label=f"{problem}: {quantity}")
    ax.set_xlabel("degrees of freedom")
    ax.set_ylabel("relative error")
    ax.set_title("Code verification: error against the analytical / reference value")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, loc="lower left")
    return _save(fig, path)


def _calc(calc: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    levels = calc["levels"]
    h = np.array([lv["h_mm"] for lv in levels])
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.4), dpi=100)
    for ax, key, ext, title in (
        (axes[0], "tumour_displacement_mm", calc["tumour"]["extrapolated_mm"],
         "tumour displacement"),
        (axes[1], "surface_rms_displacement_mm", None, "RMS surface displacement"),
    ):  # fmt: skip
        ax.plot(h, [lv[key] for lv in levels], "o-", label="solved")
        for lv in levels:
            ax.annotate(lv["level"], (lv["h_mm"], lv[key]), fontsize=7)
        if ext is not None:
            ax.plot([0.0], [ext], "k*", ms=9, label="Richardson extrapolation")
        ax.set_xlim(left=-0.2)
        ax.set_xlabel("mesh size (V/N)^(1/3) (mm)")
        ax.set_ylabel("mm")
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Calculation verification: the default load on the case mesh and refinements",
                 fontsize=9)  # fmt: skip
    return _save(fig, path)


def _validation(by_protocol: list[dict[str, Any]], literature: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    labels = [f"cov {r['anterior_coverage']:g}\nnoise {r['noise_mm']:g} mm" for r in by_protocol]
    x = np.arange(len(by_protocol))
    for k, (mode, colour) in enumerate((("rigid", "tab:orange"), ("deformable", "tab:blue"))):
        y = [np.nan if r[f"tre_{mode}_mm"] is None else r[f"tre_{mode}_mm"] for r in by_protocol]
        ax.bar(x + (k - 0.5) * 0.38, y, 0.38, label=f"{mode} (all trials)", color=colour)
    lo, hi = literature["rigid_tre_mm"]
    ax.axhspan(
        lo, hi, color="grey", alpha=0.15, label="Sparse Data Challenge rigid (other protocol)"
    )
    ax.axhline(literature["best_biomechanical_tre_mm"], color="k", ls="--", lw=1,
               label="best biomechanical there (other protocol)")  # fmt: skip
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("mean tumour TRE (mm)")
    ax.set_title("Validation on this case's virtual patients")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def _calibration(table: dict[str, np.ndarray], tumour: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 4.0), dpi=100)
    lim = 1.0
    for mode, colour in (("rigid", "tab:orange"), ("deformable", "tab:blue")):
        tre = np.asarray(table[f"tre_{mode}_{tumour}_mm"], float)
        r95 = np.asarray(table[f"r95_{mode}_{tumour}_mm"], float)
        ok = np.isfinite(tre) & np.isfinite(r95)
        ax.scatter(r95[ok], tre[ok], s=12, alpha=0.7, label=mode, color=colour)
        if ok.any():
            lim = max(lim, float(r95[ok].max()), float(tre[ok].max()))
    ax.plot([0, lim], [0, lim], "k--", lw=1, label="TRE = radius95")
    ax.set_xlabel("predicted radius95 (mm)")
    ax.set_ylabel("true tumour TRE (mm)")
    ax.set_title("Calibration: points below the line are inside")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def _doubt(doubt: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 2.4), dpi=100)
    left = 0.0
    for name, share in doubt["share"].items():
        ax.barh([0], [share], left=left, label=name.replace("_", " "))
        left += share
    ax.set_xlim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("share of the tumour's mean squared predicted error")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    ax.set_title("Sources of doubt (deformable twin, planned acquisition)", fontsize=9)
    return _save(fig, path)


def plot_all(report: dict[str, Any], table: dict[str, np.ndarray], out: Path) -> dict[str, Path]:
    """Every picture of the report in ``out`` (name -> path)."""
    import matplotlib

    matplotlib.use("Agg")
    val = report["validation"]
    return {
        "code_verification": _code(report["code_verification"]["records"],
                                   out / "code_verification.png"),
        "calculation_verification": _calc(report["calculation_verification"],
                                          out / "calculation_verification.png"),
        "validation": _validation(val["by_protocol"], val["literature"], out / "validation.png"),
        "calibration": _calibration(table, val["tumour"], out / "calibration.png"),
        "doubt_sources": _doubt(report["uncertainty"]["doubt_sources"], out / "doubt_sources.png"),
    }  # fmt: skip
