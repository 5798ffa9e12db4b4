"""Study throughput on a local Dask cluster: 2 workers against 1 (same small grid).

Prints one JSON document with trials per second for each and the speed-up. Run on an otherwise
idle machine with at least 2 cores:
nice .venv/bin/python benchmarks/registration_study_throughput.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from registration.study import expand_trials, load_spec, run_study

SPEC = Path(__file__).resolve().parents[1] / "examples" / "accuracy_study.toml"


def main() -> None:
    spec = load_spec(SPEC)
    n = len(expand_trials(spec))
    out = {
        "spec": str(SPEC),
        "trials": n,
        "cpu_count": os.cpu_count(),
        "load_avg_at_start": os.getloadavg()[0],
    }
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            run_study(spec, tmp, n_workers=workers, plots=False)
            dt = time.perf_counter() - t
        out[f"workers_{workers}"] = {"seconds": dt, "trials_per_s": n / dt}
    out["speedup"] = out["workers_2"]["trials_per_s"] / out["workers_1"]["trials_per_s"]
    out["goal_met_1_7x"] = out["speedup"] >= 1.7
    out["load_avg_at_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
