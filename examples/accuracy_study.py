"""Accuracy study of tracked-pointer swab registration on the real liver.

Goal: know how wrong the registered twin may be at the tumour, and whether the reliability
verdict catches bad acquisitions. The study is a file (``accuracy_study.toml``): models, targets,
an acquisition grid (number of points, coverage, noise, outliers, start-pose error) and repeats.
Every trial simulates swabs, moves them by a random pose, registers them back and measures the
target registration error (TRE). The CLI equivalent is ``surgplan study SPEC --out DIR``.

Run: ``python examples/accuracy_study.py [SPEC] [OUT]`` (CI runs the small grid).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from registration.study import load_spec, run_study


def main() -> None:
    here = Path(__file__).resolve().parent
    spec_path = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "accuracy_study.toml"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("demo_output") / "accuracy_study"
    spec = load_spec(spec_path)
    outputs = run_study(spec, out, n_workers=2)
    summary = json.loads(outputs.summary.read_text())
    good = summary["good_cases"]
    print(json.dumps({"good_cases": good, "bad_cases": summary["bad_cases"]}, indent=2))
    # The study's promises on this grid: accurate at the tumour, honest about bad inputs.
    assert good["tre_tumour_mm"]["mean"] <= 2.0, good["tre_tumour_mm"]
    assert good["false_alarm_rate"] <= 0.25, good
    assert all(b["flag_rate"] == 1.0 for b in summary["bad_cases"].values()), summary
    assert all(p.is_file() for p in outputs.plots)


if __name__ == "__main__":
    main()
