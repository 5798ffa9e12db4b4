"""Validation: a virtual-patient study of this case's twin, rigid and deformable.

The case's virtual patients (:func:`surgplan.credibility.patients.case_virtual_patients`, loads
the reduced model was not built from) are saved beside the report and scored by the project's
twin study trial (:func:`surgplan.twin_study.run_twin_trial`, kind ``twin_virtual_patients``):
each trial draws an unknown tracker pose, acquires the planned sensor's points over a share of
the anterior surface with Gaussian noise, runs a fresh rigid and a fresh deformable twin, and
records per target the TRE, the predicted radius95 and whether the TRE lies inside it. The
grid (anterior coverage x noise) comes from the context of use; ``trials`` trials are taken
from patients x grid x repeats, repeat-major, so every patient and grid cell is covered
before any repeats. Figures come from the study's own summary
(:func:`surgplan.twin_study.summarise_twin_study`) and, per coverage and noise, the tumour's
mean TRE per mode (trusted trials, and all).

The literature anchor, the liver Sparse Data Challenge (Heiselman et al. 2024: rigid
3.8-7.7 mm, best biomechanical 3.1 mm mean TRE on a phantom with several-centimetre
deformation), used its own protocol: it is stated beside the figures, never compared as equal.
"""

from __future__ import annotations

import csv
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from surgplan.credibility.context import ContextOfUse

__all__ = ["SPARSE_DATA_CHALLENGE", "Validation", "run_validation"]

#: Heiselman et al. 2024 (liver Sparse Data Challenge), mean TRE, mm.
SPARSE_DATA_CHALLENGE = {
    "rigid_tre_mm": [3.8, 7.7],
    "best_biomechanical_tre_mm": 3.1,
    "reference": "Heiselman et al. 2024, liver Sparse Data Challenge",
    "protocol": "a liver phantom with several-centimetre deformation, sparse-data "
    "acquisitions of its own protocol: a different protocol from these virtual patients",
}
MODES = ("rigid", "deformable")


@dataclass(frozen=True)
class Validation:
    """The virtual-patient study of the case's twin (lengths mm).

    Attributes
    ----------
    n_trials : int
        Trials run.
    patients : list of dict
        Each patient: name, loads in words, largest surface displacement, target displacements.
    grid : dict
        The studied anterior coverages and noises (mm), sensor, points, pose range.
    summary : dict
        :func:`surgplan.twin_study.summarise_twin_study` of the table.
    by_protocol : list of dict
        Per (coverage, noise): trials, and per mode the tumour's mean TRE over all and over
        trusted trials, the trusted share.
    table_path, patients_path : str
        The trials table (CSV) and the saved patients (``.npz``).
    tumour : str
        The target the figures are about.
    time_s : float
        Wall time, s.
    """

    n_trials: int
    patients: list[dict[str, Any]]
    grid: dict[str, Any]
    summary: dict[str, Any]
    by_protocol: list[dict[str, Any]]
    table_path: str
    patients_path: str
    tumour: str
    time_s: float
    literature: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _spec(case_dir: Path, patients_file: Path, context: ContextOfUse, repeats: int) -> Any:
    from surgplan.twin_study import parse_twin_spec

    plan, grid = context.plan, context.validation
    data = {
        "kind": "twin_virtual_patients", "name": "credibility", "seed": grid["seed"],
        "repeats": repeats, "case": str(case_dir), "modes": list(MODES),
        "patients": {"file": str(patients_file)},
        "protocol": {
            "sensor": [plan["sensor"]], "n_points": [plan["n_points"]],
            "anterior_coverage": list(grid["anterior_coverage"]),
            "noise_mm": list(grid["noise_mm"]), "rotation_deg": [grid["rotation_deg"]],
            "translation_mm": [grid["translation_mm"]], "case": ["good"],
        },
        "recommendation": {"enabled": False},
    }  # fmt: skip
    return parse_twin_spec(data, base_dir=case_dir, source="credibility validation study")


def _patients_file(out_dir: Path, case_dir: Path, context: ContextOfUse) -> Path:
    """A name unique to the case's model and the patients' parameters (the trial caches)."""
    from surgplan.twin.case_twin import load_case_model

    fp = load_case_model(case_dir).meta["volume_mesh_fingerprint"]
    key = f"{case_dir.resolve()}|{fp}|{context.validation['patients']}|{context.validation['seed']}"
    return out_dir / f"patients_{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"


def _columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: np.asarray([r.get(k, np.nan) for r in rows]) for k in keys}


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    from surgplan.atomic import atomic_path

    keys = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else None


def _by_protocol(table: dict[str, np.ndarray], tumour: str) -> list[dict[str, Any]]:
    cov, noise = table["anterior_coverage"].astype(float), table["noise_mm"].astype(float)
    out = []
    for c in sorted(set(cov)):
        for s in sorted(set(noise)):
            sel = (cov == c) & (noise == s)
            row: dict[str, Any] = {"anterior_coverage": c, "noise_mm": s, "n": int(sel.sum())}
            for mode in MODES:
                tre = table[f"tre_{mode}_{tumour}_mm"].astype(float)[sel]
                trust = table[f"trustworthy_{mode}"].astype(bool)[sel]
                row[f"tre_{mode}_mm"] = _mean(tre)
                row[f"tre_{mode}_trusted_mm"] = _mean(tre[trust])
                row[f"trusted_{mode}"] = float(trust.mean()) if len(trust) else None
            out.append(row)
    return out


def run_validation(
    case_dir: str | Path,
    context: ContextOfUse,
    out_dir: str | Path,
    *,
    trials: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Validation, dict[str, np.ndarray]]:
    """Make the patients, run ``trials`` study trials, summarise (module docstring).

    Parameters
    ----------
    case_dir : path
        A twin-ready case.
    context : ContextOfUse
        Its ``plan`` (sensor, points) and ``validation`` grid (coverages, noises, patients).
    out_dir : path
        Folder for ``patients_*.npz`` and ``trials.csv``.
    trials : int, keyword-only
        Trials to run (>= 1).
    progress : callable, optional
        ``progress(done, total)`` after each trial.

    Returns
    -------
    Validation, dict
        The figures, and the trials table by column.
    """
    from surgplan.credibility.errors import CredibilityError
    from surgplan.credibility.patients import case_virtual_patients
    from surgplan.twin_study import expand_twin_trials, run_twin_trial, summarise_twin_study
    from surgplan.twin_study.trial import tumour_target
    from surgplan.virtual_patients import save_virtual_patients

    if int(trials) < 1:
        raise CredibilityError(f"--trials must be >= 1, got {trials}")
    t0 = time.perf_counter()
    case_dir, out = Path(case_dir).resolve(), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_pat = int(context.validation["patients"])
    path = _patients_file(out, case_dir, context)
    patients = case_virtual_patients(case_dir, n_pat, context.validation["seed"])
    save_virtual_patients(patients, path)
    cells = (
        n_pat * len(context.validation["anterior_coverage"]) * len(context.validation["noise_mm"])
    )
    spec = _spec(case_dir, path, context, repeats=max(1, math.ceil(int(trials) / cells)))
    plan = sorted(expand_twin_trials(spec), key=lambda t: (t["repeat"], t["trial_id"]))
    plan = plan[: int(trials)]
    rows = []
    for i, trial in enumerate(plan):
        rows.append(run_twin_trial(spec, trial))
        if progress is not None:
            progress(i + 1, len(plan))
    table = _columns(rows)
    table_path = out / "trials.csv"
    _write_csv(table_path, rows)
    tumour = tumour_target(list(patients[0].targets_mm))
    grid = {k: context.validation[k] for k in ("anterior_coverage", "noise_mm", "rotation_deg",
            "translation_mm")} | {"sensor": context.plan["sensor"],
            "n_points": context.plan["n_points"]}  # fmt: skip
    return Validation(
        n_trials=len(rows), patients=[p.to_dict() for p in patients], grid=grid,
        summary=summarise_twin_study(table, spec), by_protocol=_by_protocol(table, tumour),
        table_path=str(table_path), patients_path=str(path), tumour=tumour,
        time_s=time.perf_counter() - t0, literature=dict(SPARSE_DATA_CHALLENGE),
    ), table  # fmt: skip
