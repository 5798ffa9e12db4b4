"""Success rate of global initialisation on the real liver (rigid case, 30 % swab coverage).

Two conditions, each trial with fresh swabs (300-1000 points, 30 % coverage, 1 mm noise per
axis, ``registration.sensors``) moved by a random pose:

- ``random_orientation``: rotation uniform over SO(3) about the organ centroid plus a Gaussian
  translation (50 mm per axis); no prior: ``register_surface(points, model)``, i.e. FPFH + RANSAC,
  robust ICP, and the multi-start search when the verdict rejects that fit.
- ``within_30deg``: random axis, angle uniform in [0, 30] degrees about the organ centroid, plus a
  translation uniform in a 20 mm ball; prior the identity with ``max_rotation_deg=30``: robust ICP
  from the prior first, the multi-start search within the cone only when the verdict rejects it.

Success: TRE at the tumour centroid (``liver_tumours.vtk``) < 5 mm. Per condition it prints the
trials, successes, success rate, the one-sided 95 % Clopper-Pearson lower bound, the median time
of ``register_surface`` per trial, the mean TRE of the successes, how often each initialisation
path gave the pose, and the verdict's record (failures flagged untrustworthy, wrong fits accepted).
Partial results are rewritten to ``--out`` every ``--flush`` trials, so a cut-off run still
reports; the run stops at ``--budget-s``.

Run: nice .venv/bin/python benchmarks/registration_init_success.py --random 1000 --cone 3000 \\
        --workers 1 --budget-s 2100 --out /tmp/init_success.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from scipy.stats import beta  # noqa: E402

from registration.metrics import target_registration_error  # noqa: E402
from registration.model import load_surface  # noqa: E402
from registration.sensors import add_noise, simulate_swabs  # noqa: E402
from registration.surface import register_surface  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "liver_models"
SUCCESS_TRE_MM = 5.0
CONDITIONS = ("random_orientation", "within_30deg")

_MODEL = None
_TARGET = None


def _init_worker(data_dir: str) -> None:
    global _MODEL, _TARGET
    _MODEL = load_surface(Path(data_dir) / "liver.vtk")
    _TARGET = load_surface(Path(data_dir) / "liver_tumours.vtk").centroid_mm
    _MODEL.fpfh_features()  # built once per model, not timed


def run_trial(task: tuple[str, int, int]) -> dict:
    """One trial: ``(condition, index, seed)`` -> row."""
    cond, i, seed = task
    m, target = _MODEL, _TARGET
    rng = np.random.default_rng(seed)
    pts = simulate_swabs(m, n_points=int(rng.integers(300, 1001)), coverage=0.3, seed=rng)
    pts = add_noise(pts, noise_mm=1.0, seed=rng)
    c = m.centroid_mm
    T_pm = np.eye(4)
    if cond == "random_orientation":
        R = Rotation.random(random_state=rng).as_matrix()
        shift = rng.normal(scale=50.0, size=3)
        kwargs: dict = {}
    else:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        R = Rotation.from_rotvec(axis * np.deg2rad(rng.uniform(0.0, 30.0))).as_matrix()
        d = rng.normal(size=3)
        shift = d / np.linalg.norm(d) * 20.0 * rng.random() ** (1.0 / 3.0)
        kwargs = {"T_init": np.eye(4), "max_rotation_deg": 30.0}
    T_pm[:3, :3] = R
    T_pm[:3, 3] = c - R @ c + shift
    meas = pts @ R.T + T_pm[:3, 3]
    t0 = time.perf_counter()
    res = register_surface(meas, m, seed=seed, noise_mm=1.0, **kwargs)
    dt = time.perf_counter() - t0
    tre = float(target_registration_error(res.T_model_points, T_pm, target)[0])
    return {
        "condition": cond,
        "i": i,
        "seed": seed,
        "n_points": len(pts),
        "tre_mm": tre,
        "time_s": dt,
        "trustworthy": bool(res.trustworthy),
        "init": res.init.value,
        "reason": res.reason,
    }


def clopper_pearson_lower(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided lower confidence bound of a binomial proportion (exact, Clopper-Pearson)."""
    if n == 0 or k == 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence, k, n - k + 1))


def summarise(rows: list[dict], meta: dict) -> dict:
    out = dict(meta)
    out["conditions"] = {}
    for cond in CONDITIONS:
        r = [x for x in rows if x["condition"] == cond]
        n = len(r)
        ok = [x for x in r if x["tre_mm"] < SUCCESS_TRE_MM]
        k = len(ok)
        paths: dict = {}
        for x in r:
            paths[x["init"]] = paths.get(x["init"], 0) + 1
        fails = [x for x in r if x["tre_mm"] >= SUCCESS_TRE_MM]
        out["conditions"][cond] = {
            "trials": n,
            "successes": k,
            "success_rate": k / n if n else None,
            "lower_95_clopper_pearson": clopper_pearson_lower(k, n),
            "median_time_s": float(np.median([x["time_s"] for x in r])) if n else None,
            "p95_time_s": float(np.percentile([x["time_s"] for x in r], 95)) if n else None,
            "mean_tre_success_mm": float(np.mean([x["tre_mm"] for x in ok])) if k else None,
            "init_path_counts": paths,
            "failures_flagged_untrustworthy": sum(not x["trustworthy"] for x in fails),
            "failures_accepted_as_trustworthy": sum(x["trustworthy"] for x in fails),
            "successes_flagged_untrustworthy": sum(not x["trustworthy"] for x in ok),
            "failures": [
                {
                    key: x[key]
                    for key in ("i", "seed", "n_points", "tre_mm", "trustworthy", "init", "reason")
                }
                for x in fails[:20]
            ],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", type=int, default=200, help="trials from random orientations")
    ap.add_argument("--cone", type=int, default=600, help="trials from within 30 degrees")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--budget-s", type=float, default=float("inf"))
    ap.add_argument("--flush", type=int, default=50)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    seeds = np.random.SeedSequence(args.seed).generate_state(args.random + args.cone)
    tasks = [("random_orientation", i, int(seeds[i])) for i in range(args.random)]
    tasks += [("within_30deg", i, int(seeds[args.random + i])) for i in range(args.cone)]
    # Interleave the two conditions so a cut-off run reports on both in proportion.
    order = np.argsort(
        np.concatenate(
            [
                np.linspace(0, 1, args.random, endpoint=False),
                np.linspace(0, 1, args.cone, endpoint=False),
            ]
        ),
        kind="stable",
    )
    tasks = [tasks[j] for j in order]
    meta = {
        "model": "liver.vtk",
        "target": "liver_tumours.vtk centroid",
        "coverage": 0.3,
        "noise_mm": 1.0,
        "points": "300-1000",
        "success_tre_mm": SUCCESS_TRE_MM,
        "workers": args.workers,
        "seed": args.seed,
        "requested": {"random_orientation": args.random, "within_30deg": args.cone},
    }
    rows: list[dict] = []
    t_start = time.perf_counter()

    def flush(final: bool) -> dict:
        summary = summarise(
            rows, {**meta, "wall_s": time.perf_counter() - t_start, "complete": final}
        )
        if args.out is not None:
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(summary, indent=2))
            tmp.replace(args.out)
        return summary

    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers, initializer=_init_worker, initargs=(str(DATA),)) as pool:
        for row in pool.imap(run_trial, tasks, chunksize=4):
            rows.append(row)
            if len(rows) % args.flush == 0:
                flush(False)
            if time.perf_counter() - t_start > args.budget_s:
                pool.terminate()
                break
    summary = flush(len(rows) == len(tasks))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
