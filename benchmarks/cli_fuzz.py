"""A larger fuzz campaign of the ``surgplan`` CLI than the tests run; prints one JSON object.

Usage: ``python benchmarks/cli_fuzz.py [--per-format 300] [--seed 16] [--out FILE]``.

The byte-level mutation campaign of ``tests/test_cli_fuzz.py`` (:mod:`tests.cli_fuzzing`),
scaled up: real files of every format the project reads (CT and label images ``.nrrd`` /
``.nii.gz``, surfaces ``.vtk`` / ``.vtp`` / ``.stl``, a volume mesh ``.vtu``, points ``.csv`` /
``.txt``, ``.mrk.json`` markups, ``.tfm`` / ``.txt`` transforms, ``case.json``, scenario and
study specs), each mutated ``--per-format`` times and fed to the command that reads it, in a child
process that invokes the CLI in-process (a crash kills the child and is counted against its
input). Reported: inputs per command and per format, clean refusals (exit 2, one ``error:``
line, the case byte-identical), acceptances (the mutation left a valid file), crashes
(signals), tracebacks (exit 1), malformed error output, case changes on refusal, timeouts, the
failing inputs, and the legacy-VTK probe: how many mutated ``.vtk`` files crash VTK's reader when
read directly, in a child, without the probe.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cli_fuzzing import make_fixtures, mutate, mutated_cases, run_cases, summarise  # noqa: E402

_DIRECT_READ = """
import sys
from vtkmodules.vtkIOLegacy import vtkDataSetReader
for path in sys.argv[1:]:
    r = vtkDataSetReader()
    r.SetFileName(path)
    r.ReadAllFieldsOn(); r.ReadAllScalarsOn(); r.ReadAllNormalsOn()
    r.Update()
    print(path, flush=True)
"""


def direct_vtk_crashes(source: Path, work: Path, n: int, seed: int) -> dict[str, float]:
    """Mutated legacy files read by VTK directly (no probe): how many crash the reader."""
    rng = random.Random(seed)
    files = []
    for i in range(n):
        path = work / f"direct_{i}.vtk"
        path.write_bytes(mutate(source.read_bytes(), rng))
        files.append(str(path))
    crashes, i = 0, 0
    started = time.perf_counter()
    while i < len(files):
        done = subprocess.run(
            [sys.executable, "-c", _DIRECT_READ, *files[i:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        read = len(done.stdout.splitlines())
        if done.returncode < 0:
            crashes += 1
            i += read + 1
        else:
            i = len(files)
    return {
        "files": n,
        "reader_crashes": crashes,
        "crash_fraction": crashes / n,
        "time_s": time.perf_counter() - started,
    }


def main() -> None:
    """Run the campaign and print its figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-format", type=int, default=300, help="Mutations per format.")
    ap.add_argument("--seed", type=int, default=16, help="Mutation seed.")
    ap.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-fuzz-") as tmp:
        root = Path(tmp)
        fixtures = make_fixtures(root / "fixtures")
        started = time.perf_counter()
        cases = mutated_cases(fixtures, root / "work", args.per_format, args.seed)
        results = run_cases(cases)
        elapsed = time.perf_counter() - started
        summary = summarise(results)
        direct = direct_vtk_crashes(fixtures["vtk"], root, args.per_format, args.seed)
    report = {
        "seed": args.seed,
        "mutations_per_format": args.per_format,  # "per_format" is the table below
        "time_s": elapsed,
        **summary,
        "legacy_vtk_without_probe": direct,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
