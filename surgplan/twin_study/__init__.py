"""Virtual-patient studies of the twin, on the Dask study engine.

``load_twin_spec`` reads a study file (``kind = "twin_virtual_patients"``), ``run_twin_study``
runs its trials with :func:`registration.study.run_study` (resumable, Parquet parts) using this
package's trial (:func:`~surgplan.twin_study.trial.run_twin_trial`), summary and plots
(:mod:`surgplan.twin_study.summary`). ``spec_kind`` tells a twin study file from a registration
one (``surgplan study`` dispatches on it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from surgplan.twin_study.spec import (
    KIND,
    TwinStudySpec,
    TwinStudySpecError,
    expand_twin_trials,
    load_twin_spec,
    parse_twin_spec,
    spec_kind,
)
from surgplan.twin_study.summary import plot_twin_study, summarise_twin_study
from surgplan.twin_study.trial import run_twin_trial

__all__ = [
    "KIND",
    "TwinStudySpec",
    "TwinStudySpecError",
    "expand_twin_trials",
    "load_twin_spec",
    "parse_twin_spec",
    "plot_twin_study",
    "run_twin_study",
    "run_twin_trial",
    "spec_kind",
    "summarise_twin_study",
]


def run_twin_study(
    spec: TwinStudySpec,
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    processes: bool = True,
    table_format: str = "parquet",
    progress: Callable[[int, int], None] | None = None,
    plots: bool = True,
) -> Any:
    """Run a virtual-patient study (arguments as :func:`registration.study.run_study`).

    Returns
    -------
    registration.study.StudyOutputs
        ``trials.parquet``/``.csv``, ``summary.json`` (:func:`summarise_twin_study`) and the
        plots (:func:`plot_twin_study`).
    """
    from registration.study import run_study

    return run_study(
        spec, out_dir, scheduler=scheduler, n_workers=n_workers, processes=processes,
        table_format=table_format, progress=progress, plots=plots, trial_fn=run_twin_trial,
        expand_fn=expand_twin_trials, summary_fn=summarise_twin_study, plot_fn=plot_twin_study,
    )  # fmt: skip
