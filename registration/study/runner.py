"""Run a study on Dask, resumably, and write the table, summary and plots.

Finished trials are written in small Parquet parts under ``OUT/parts/`` as they complete (atomic
renames), so an interrupted study resumes without recomputing them. Each trial's random stream
derives only from the spec seed and its ``trial_id``; the final table is sorted by ``trial_id``,
so the same spec gives the same table (apart from the ``time_ms`` column).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registration._atomic import write_atomic, write_text_atomic
from registration.errors import RegistrationError
from registration.study.spec import StudySpec, expand_trials
from registration.study.trial import run_trial

__all__ = ["StudyOutputs", "run_study", "summarise", "plot_study"]

BATCH = 4


@dataclass(frozen=True)
class StudyOutputs:
    """Paths written by :func:`run_study` and the counts of trials run and reused."""

    table: Path
    summary: Path
    plots: tuple[Path, ...]
    n_trials: int
    n_computed: int
    n_reused: int


#: What a caller may plug in (defaults: the registration study's own functions).
TrialFn = Callable[[Any, dict], dict]
ExpandFn = Callable[[Any], list[dict]]
SummaryFn = Callable[[dict[str, np.ndarray], Any], dict]
PlotFn = Callable[[dict[str, np.ndarray], Path], list[Path]]


def _run_batch(trial_fn: TrialFn, spec: Any, trials: list[dict]) -> list[dict]:
    return [trial_fn(spec, t) for t in trials]


def _done_ids(parts: Path) -> set[int]:
    import pyarrow.parquet as pq

    ids: set[int] = set()
    for f in sorted(parts.glob("part-*.parquet")):
        ids.update(pq.read_table(f, columns=["trial_id"]).column(0).to_pylist())
    return ids


def _write_part(parts: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = min(r["trial_id"] for r in rows)
    write_atomic(
        parts / f"part-{first:08d}.parquet",
        lambda tmp: pq.write_table(pa.Table.from_pylist(rows), str(tmp)),
    )


def run_study(
    spec: StudySpec | Any,
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    processes: bool = True,
    table_format: str = "parquet",
    progress: Callable[[int, int], None] | None = None,
    plots: bool = True,
    trial_fn: TrialFn = run_trial,
    expand_fn: ExpandFn = expand_trials,
    summary_fn: SummaryFn | None = None,
    plot_fn: PlotFn | None = None,
) -> StudyOutputs:
    """Run the trials of ``spec`` not yet in ``out_dir`` and write the outputs.

    The engine (Dask, resumable Parquet parts, fingerprint stamp, table, summary, plots) is
    generic: another study plugs in its own ``trial_fn``, ``expand_fn``, ``summary_fn`` and
    ``plot_fn`` (module-level functions, so that worker processes can unpickle them); its spec
    needs only ``fingerprint()``. The defaults are the registration study's.

    Parameters
    ----------
    spec : StudySpec or any object with ``fingerprint() -> str``
        Validated study.
    out_dir : str or pathlib.Path
        Output folder: ``trials.parquet`` (or ``.csv``), ``summary.json``, ``tre_vs_*.png``.
    scheduler : str, optional
        Address of an existing Dask scheduler; default a new local cluster.
    n_workers : int, keyword-only
        Workers of the local cluster (one thread each).
    processes : bool, keyword-only
        Local cluster with worker processes (``False``: threads in this process, for tests).
    table_format : {"parquet", "csv"}, keyword-only
        Table format.
    progress : callable, optional
        Called as ``progress(done, total)`` after each finished batch.
    plots : bool, keyword-only
        Write the PNG plots.
    trial_fn : callable, keyword-only
        ``trial_fn(spec, trial) -> row`` (a flat dict with ``trial_id``).
    expand_fn : callable, keyword-only
        ``expand_fn(spec) -> trials`` in a fixed order (``trial_id`` their position).
    summary_fn : callable, optional
        ``summary_fn(table, spec) -> dict`` (``summary.json``); default :func:`summarise`.
    plot_fn : callable, optional
        ``plot_fn(table, out_dir) -> paths``; default :func:`plot_study`.

    Returns
    -------
    StudyOutputs
    """
    from dask.distributed import Client, LocalCluster, as_completed

    if table_format not in ("parquet", "csv"):
        raise RegistrationError(f"table_format must be 'parquet' or 'csv', got {table_format!r}")
    if n_workers < 1:
        raise RegistrationError(f"n_workers must be >= 1, got {n_workers}")
    out = Path(out_dir)
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    stamp = out / "spec_fingerprint.txt"
    fp = spec.fingerprint()
    if stamp.is_file() and stamp.read_text().strip() != fp:
        raise RegistrationError(
            f"{out} holds results of a different study (fingerprint {stamp.read_text().strip()} "
            f"!= {fp}); use a new --out folder"
        )
    write_text_atomic(stamp, fp + "\n")
    trials = expand_fn(spec)
    done = _done_ids(parts)
    todo = [t for t in trials if t["trial_id"] not in done]
    n_done = len(trials) - len(todo)
    if progress:
        progress(n_done, len(trials))
    if todo:
        batches = [todo[i : i + BATCH] for i in range(0, len(todo), BATCH)]
        cluster = None
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=":0",  # any free port: never clash with another cluster
            )
            client = Client(cluster)
        try:
            futures = client.map(
                _run_batch, [trial_fn] * len(batches), [spec] * len(batches), batches, pure=False
            )
            for fut in as_completed(futures):
                rows = fut.result()
                _write_part(parts, rows)
                n_done += len(rows)
                if progress:
                    progress(n_done, len(trials))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    table = _combine(parts, out, table_format)
    summary = out / "summary.json"
    summary_fn = summary_fn or summarise
    write_text_atomic(summary, json.dumps(summary_fn(table, spec), indent=2, allow_nan=False))
    pngs = (plot_fn or plot_study)(table, out) if plots else ()
    return StudyOutputs(
        table=out / f"trials.{table_format}",
        summary=summary,
        plots=tuple(pngs),
        n_trials=len(trials),
        n_computed=len(todo),
        n_reused=len(trials) - len(todo),
    )


def _combine(parts: Path, out: Path, table_format: str) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    tables = [pq.read_table(f) for f in sorted(parts.glob("part-*.parquet"))]
    t = pa.concat_tables(tables, promote_options="default").sort_by("trial_id")
    path = out / f"trials.{table_format}"
    if table_format == "parquet":
        write_atomic(path, lambda tmp: pq.write_table(t, str(tmp)))
    else:
        write_atomic(path, lambda tmp: pcsv.write_csv(t, str(tmp)))
    return {name: t.column(name).to_numpy(zero_copy_only=False) for name in t.column_names}


def _stats(x: np.ndarray) -> dict:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"n": 0}
    return {
        "n": int(len(x)),
        "mean": float(x.mean()),
        "median": float(np.median(x)),
        "p95": float(np.percentile(x, 95)),
        "max": float(x.max()),
    }


def summarise(table: dict[str, np.ndarray], spec: StudySpec) -> dict:
    """Study summary: TRE statistics, success, and verdict rates (flag rate per bad case).

    Parameters
    ----------
    table : dict of str to numpy.ndarray
        The trials table by column (TRE columns ``tre_<target>_mm`` in mm).
    spec : StudySpec
        The study it came from.

    Returns
    -------
    dict
        JSON-ready summary (what ``summary.json`` holds); TRE, FRE in mm, times in ms.
    """
    tre_cols = [c for c in table if c.startswith("tre_") and c.endswith("_mm")]
    case = table["case"].astype(str)
    good = case == "good"
    trust = table["trustworthy"].astype(bool)
    success = table["success"].astype(bool)
    out: dict = {
        "study": spec.name,
        "fingerprint": spec.fingerprint(),
        "n_trials": int(len(case)),
        "good_cases": {
            "n": int(good.sum()),
            "success_rate": float(success[good].mean()) if good.any() else None,
            "false_alarm_rate": float((~trust[good]).mean()) if good.any() else None,
            "false_alarm_rate_successful": (
                float((~trust[good & success]).mean()) if (good & success).any() else None
            ),
            "missed_failures": int((trust & good & ~success).sum()),
            "fre_mm": _stats(table["fre_mm"][good]),
            "time_ms": _stats(table["time_ms"][good]),
            **{c: _stats(table[c][good]) for c in tre_cols},
        },
        "bad_cases": {},
        "by_protocol": [],
    }
    for c in sorted(set(case) - {"good"}):
        sel = case == c
        out["bad_cases"][c] = {"n": int(sel.sum()), "flag_rate": float((~trust[sel]).mean())}
    bad = ~good
    out["bad_flag_rate_all"] = float((~trust[bad]).mean()) if bad.any() else None
    keys = [
        "model",
        "sensor",
        "case",
        "n_points",
        "coverage",
        "noise_mm",
        "outlier_fraction",
        "rotation_deg",
    ]
    combos = sorted({tuple(str(table[k][i]) for k in keys) for i in range(len(case))})
    for combo in combos:
        sel = np.ones(len(case), dtype=bool)
        for k, v in zip(keys, combo, strict=True):
            sel &= table[k].astype(str) == v
        entry = dict(zip(keys, combo, strict=True))
        entry.update(
            {
                "n": int(sel.sum()),
                "success_rate": float(success[sel].mean()),
                "trustworthy_rate": float(trust[sel].mean()),
                **{c: _stats(table[c][sel]) for c in tre_cols},
            }
        )
        out["by_protocol"].append(entry)
    return out


def plot_study(table: dict[str, np.ndarray], out: Path) -> list[Path]:
    """PNG plots of TRE against number of points, coverage and noise (good cases).

    Parameters
    ----------
    table : dict of str to numpy.ndarray
        The trials table by column (TRE in mm).
    out : pathlib.Path
        Folder the ``tre_vs_<key>.png`` files go to.

    Returns
    -------
    list of pathlib.Path
        The plots written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tre_cols = [c for c in table if c.startswith("tre_") and c.endswith("_mm")]
    good = table["case"].astype(str) == "good"
    paths = []
    for key, label in (
        ("n_points", "number of points"),
        ("coverage", "coverage (fraction)"),
        ("noise_mm", "noise (mm, per axis)"),
    ):
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
        xs = np.unique(table[key][good]) if good.any() else np.array([])
        for c in tre_cols:
            med = [np.median(table[c][good & (table[key] == x)]) for x in xs]
            p95 = [np.percentile(table[c][good & (table[key] == x)], 95) for x in xs]
            name = c[4:-3]
            ax.plot(xs, med, "o-", label=f"{name} median")
            ax.plot(xs, p95, "s--", label=f"{name} 95th pct")
        ax.set_xlabel(label)
        ax.set_ylabel("TRE (mm)")
        ax.set_title(f"TRE against {label}")
        ax.grid(True, alpha=0.3)
        if tre_cols and len(xs):
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"tre_vs_{key}.png"
        write_atomic(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png"))
        plt.close(fig)
        paths.append(path)
    return paths
