"""Crash and concurrency safety of the case folder at scale: many SIGKILLs per command.

Usage: ``python benchmarks/case_kill.py [--op-kills 12] [--time-kills 6] [--pairs 10]
[--seed 2026] [--out FILE]``.

The experiment of ``tests/test_case_kill.py``, scaled up. ``import`` (over an existing case,
and creating a new one), ``segment``, ``mesh``, ``simulate`` and ``rom`` run on the tiny
inputs of the tests (the phantom on a 5 mm grid; the 7 x 5 x 5 box mesh) in children forked
from a zygote, and each is SIGKILLed ``--op-kills`` times just before a seeded file-system
operation (drawn over a clean run's count: staging, journal, moves, deletes, fsyncs) and
``--time-kills`` times at a seeded moment of a clean run's duration. After each kill the case
must open, validate, name only files that exist with their recorded sha256 and size, be in
the state before or after the step, and the command run again must succeed. Then
``--pairs`` rounds of two writers at once (``segment bone`` and ``segment air``; and
``segment liver`` and ``segment bone``) count lost updates.

Prints one JSON object: per command the kills, the kills that landed inside a commit (a
journal was left), the runs that finished before their kill, the inconsistent cases after a
kill (goal 0) and the failed next runs (goal 0); and the lost updates (goal 0).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import SimpleITK as sitk  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surgplan.phantom.generate import generate_phantom  # noqa: E402
from tests.test_case_kill import Zygote, _copy, kill_command, lost_updates  # noqa: E402
from tests.test_cli_json_contract import SCENARIO, box_case  # noqa: E402


def _inputs(tmp: Path, zygote: Zygote) -> dict:
    phantom = generate_phantom(seed=0, spacing_mm=(5.0, 5.0, 5.0))
    scans = {"a": tmp / "a.nrrd", "b": tmp / "b.nrrd"}
    sitk.WriteImage(phantom.ct, str(scans["a"]))
    sitk.WriteImage(generate_phantom(seed=1, spacing_mm=(5.0, 5.0, 5.0)).ct, str(scans["b"]))
    seed = [str(v) for v in phantom.seeds_lps_mm["liver"]]
    imported, segmented = tmp / "imported", tmp / "segmented"
    assert zygote.run({"argv": ["import", scans["a"], imported]})[0]["code"] == 0
    _copy(imported, segmented)
    liver = ["segment", segmented, "--structure", "liver", "--seed", *seed]
    assert zygote.run({"argv": liver})[0]["code"] == 0
    meshed = tmp / "meshed"
    _copy(segmented, meshed)
    assert zygote.run({"argv": ["mesh", meshed, "--edge-mm", "15"]})[0]["code"] == 0
    box = box_case(tmp / "box")
    scenario = tmp / "scenario.toml"
    scenario.write_text(SCENARIO)
    liver_args = ["--structure", "liver", "--seed", *seed]
    return {
        "commands": {
            "import_over_case": (meshed, ["import", scans["b"], "{case}"]),
            "import_new_case": (tmp / "absent", ["import", scans["a"], "{case}"]),
            "segment": (meshed, ["segment", "{case}", *liver_args]),
            "mesh": (segmented, ["mesh", "{case}", "--edge-mm", "15"]),
            "simulate": (box, ["simulate", "{case}", "--scenario", scenario]),
            "rom": (box, ["rom", "{case}", "--scenario", scenario, "--centres", "4"]),
        },
        "imported": imported,
        "pairs": {
            "bone+air": (["--structure", "bone"], ["--structure", "air"]),
            "liver+bone": (liver_args, ["--structure", "bone"]),
        },
    }


def main() -> None:
    """Run the kills and the concurrent writers; print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op-kills", type=int, default=12)
    parser.add_argument("--time-kills", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="case_kill_") as folder:
        tmp = Path(folder)
        zygote = Zygote(tmp)
        try:
            inputs = _inputs(tmp, zygote)
            per_command = {}
            for i, (name, (start, argv)) in enumerate(inputs["commands"].items()):
                work = tmp / f"work-{name}"
                work.mkdir()
                figures = kill_command(
                    zygote, start, work, argv, n_op_kills=args.op_kills,
                    n_time_kills=args.time_kills, seed=args.seed + i,
                )  # fmt: skip
                per_command[name] = figures.to_dict()
            writers = {}
            for name, pair in inputs["pairs"].items():
                work = tmp / f"pairs-{name}"
                work.mkdir()
                writers[name] = lost_updates(zygote, inputs["imported"], work, args.pairs, pair)
        finally:
            zygote.close()
    report = {
        "benchmark": "case_kill",
        "seed": args.seed,
        "commands": per_command,
        "total_kills": sum(c["kills"] for c in per_command.values()),
        "total_kills_in_commit": sum(c["kills_in_commit"] for c in per_command.values()),
        "inconsistent_after_kill": sum(c["inconsistent_after_kill"] for c in per_command.values()),
        "next_command_failed": sum(c["next_command_failed"] for c in per_command.values()),
        "concurrent_writers": writers,
        "lost_updates": sum(w["lost_updates"] for w in writers.values()),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(report, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
