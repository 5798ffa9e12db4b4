"""Fuzzing the ``surgplan`` CLI: real input files of every format, mutated byte by byte.

Used by ``tests/test_cli_fuzz.py`` (a few hundred cases in CI) and ``benchmarks/cli_fuzz.py``
(a larger campaign). :func:`make_fixtures` writes small real inputs with the project's own
writers (CT and label images, surfaces, a volume mesh, points, markups, transforms, a case, a
scenario and a study spec); :func:`mutated_cases` turns them into CLI invocations on mutated
copies; :func:`run_cases` runs them in a child process (``python -m tests.cli_fuzzing``) that
invokes the CLI in-process through click's ``CliRunner`` and reports one JSON line per case, so a
crash of a native reader (a signal) ends only the child: it is recorded against that case and a
fresh child takes the rest.

Every outcome is classified (:func:`classify`): ``refused`` (exit 2, exactly one ``error:``
line, no traceback, the case byte-identical and nothing new written), ``accepted`` (exit 0: the
mutation left a valid file), or a failure: ``crash``, ``traceback``, ``bad_error`` (exit 2 but not
one line), ``case_changed`` (a refusal that altered the case), ``timeout``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

FAILURES = ("crash", "traceback", "bad_error", "case_changed", "timeout", "bad_exit")
#: Seconds one case may take before the child is killed.
CASE_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class FuzzCase:
    """One CLI invocation on a mutated input."""

    name: str
    command: str
    fmt: str
    args: list[str]
    case_dir: str | None = None  # a case that must be unchanged after a refusal
    must_not_exist: str | None = None  # an output that must not exist after a refusal


# -- fixtures -----------------------------------------------------------------------------------


def make_fixtures(root: Path) -> dict[str, Path]:
    """Write the real, valid inputs the mutations start from; return them by format name."""
    import numpy as np
    import pyvista as pv
    import SimpleITK as sitk
    from click.testing import CliRunner

    from imaging.mesh_io import write_surface
    from registration.io import write_itk_transform, write_slicer_markups
    from surgplan.case import Case
    from surgplan.cli import cli
    from surgplan.manifest import VolumeMeshEntry

    root.mkdir(parents=True, exist_ok=True)
    z, y, x = np.mgrid[:12, :24, :24]
    blob = ((x - 12) ** 2 + (y - 12) ** 2 + 4 * (z - 6) ** 2) < 49
    ct = sitk.GetImageFromArray(np.where(blob, 60, -900).astype(np.int16))
    ct.SetSpacing((4.0, 4.0, 4.0))
    ct.SetOrigin((-48.0, -48.0, -24.0))
    labels = sitk.GetImageFromArray(blob.astype(np.uint8))
    labels.CopyInformation(ct)
    f = {
        "nrrd": root / "scan.nrrd",
        "nii.gz": root / "scan.nii.gz",
        "labels.nii.gz": root / "labels.nii.gz",
    }
    sitk.WriteImage(ct, str(f["nrrd"]), True)
    sitk.WriteImage(ct, str(f["nii.gz"]), True)
    sitk.WriteImage(labels, str(f["labels.nii.gz"]), True)
    f["names"] = root / "names.json"
    f["names"].write_text('{"1": "liver"}')

    surface = pv.Sphere(radius=1.0, theta_resolution=14, phi_resolution=14).scale((45, 40, 22))
    for suffix in ("vtk", "vtp", "stl"):
        f[suffix] = write_surface(surface, root / f"surface.{suffix}")
    rng = np.random.default_rng(0)
    pts = np.asarray(surface.points)[rng.choice(surface.n_points, 40, replace=False)]
    pts = pts + [2.0, -1.0, 1.0]
    np.savetxt(root / "points.csv", pts, delimiter=",", header="x,y,z", comments="")
    np.savetxt(root / "points.txt", pts)
    f["csv"], f["txt"] = root / "points.csv", root / "points.txt"
    f["mrk.json"] = write_slicer_markups(root / "points.mrk.json", pts)
    f["tfm"] = write_itk_transform(root / "init.tfm", np.eye(4))
    f["init.txt"] = root / "init.txt"
    f["init.txt"].write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")

    case = root / "case"
    runner = CliRunner()
    for args in (
        ["import", str(f["nrrd"]), str(case)],
        ["segment", str(case), "--labels", str(f["labels.nii.gz"]), "--names", str(f["names"]),
         "--structure", "liver"],
    ):  # fmt: skip
        done = runner.invoke(cli, args)
        assert done.exit_code == 0, done.output
    f["case"], f["case.json"] = case, case / "case.json"

    box = root / "box"
    grid = pv.ImageData(dimensions=(4, 3, 3), spacing=(5.0, 5.0, 5.0)).triangulate()
    grid = pv.UnstructuredGrid(grid)
    grid.cell_data["region"] = np.ones(grid.n_cells, dtype=np.int32)
    with Case.open_or_new(box).transaction() as tx:
        grid.save(tx.path("meshes/volume.vtu"))
        tx.manifest.volume_mesh = VolumeMeshEntry(
            path="meshes/volume.vtu", regions={"liver": 1}, quality={}
        )
    f["box"], f["vtu"] = box, box / "meshes" / "volume.vtu"
    f["scenario.toml"] = root / "scenario.toml"
    f["scenario.toml"].write_text(
        'name = "s"\n[model]\ntype = "linear"\n[materials]\ndefault = "liver_healthy"\n'
        '[[supports]]\nregion = { type = "plane", point_mm = [0, 0, 0], normal = [1, 0, 0] }\n'
        "[[retractors]]\n"
        'region = { type = "sphere", centre_mm = [15, 5, 10], radius_mm = 6 }\n'
        "displacement_mm = [0, 0, 2]\n"
    )
    spec = (
        f'name = "fuzz"\nseed = 1\nrepeats = 1\n[[models]]\nname = "organ"\n'
        f'surface = "{f["vtp"]}"\ntargets = [{{ name = "t", point_mm = [0.0, 0.0, 0.0] }}]\n'
        '[protocol]\nn_points = [50]\ncase = ["good"]\n'
    )
    f["study.toml"] = root / "study.toml"
    f["study.toml"].write_text(spec)
    f["study.yaml"] = root / "study.yaml"
    f["study.yaml"].write_text(
        f"name: fuzz\nseed: 1\nmodels:\n  - name: organ\n    surface: {f['vtp']}\n"
        "    targets:\n      - {name: t, point_mm: [0.0, 0.0, 0.0]}\nprotocol:\n  n_points: [50]\n"
    )
    return f


# -- mutations ----------------------------------------------------------------------------------


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few byte-level changes, biased to the header where parsers decide on sizes."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        head = min(len(b), 400)
        pos = rng.randrange(head) if rng.random() < 0.7 else rng.randrange(len(b))
        kind = rng.random()
        if kind < 0.55:
            b[pos] = rng.randrange(256)
        elif kind < 0.7:
            b[pos] = ord(rng.choice("0123456789-.e \n"))
        elif kind < 0.8:
            del b[pos : pos + rng.randint(1, 16)]
        elif kind < 0.9:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            del b[rng.randrange(len(b)) :]  # truncation
    return bytes(b)


def _valid_spec(path: Path, kind: str) -> bool:
    """Whether a mutated scenario/study spec is still valid (it would run a solve or a study)."""
    from registration.errors import RegistrationError
    from registration.study import load_spec
    from surgplan.errors import SurgplanError
    from surgplan.scenario import read_scenario

    try:
        (read_scenario if kind == "scenario" else load_spec)(path)
    except (SurgplanError, RegistrationError):
        return False
    except Exception:  # noqa: BLE001 - let the CLI show what the reader does with it
        return False
    return True


def mutated_cases(fixtures: dict[str, Path], work: Path, n_per_format: int, seed: int) -> list:
    """``n_per_format`` mutated inputs of every format, each with the command that reads it."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    f = fixtures
    reg = ["register", "--points", str(f["csv"]), "--init", str(f["init.txt"])]
    cases: list[FuzzCase] = []
    for fmt in (
        "nrrd", "nii.gz", "labels.nii.gz", "vtk", "vtp", "stl", "vtu", "csv", "txt", "mrk.json",
        "tfm", "init.txt", "case.json", "scenario.toml", "study.toml", "study.yaml",
    ):  # fmt: skip
        source = f[fmt].read_bytes()
        n = n_per_format
        for i in range(n):
            name = f"{fmt.replace('.', '_')}_{i}"
            suffix = "." + fmt.split(".", 1)[1] if fmt.startswith(("labels", "init")) else "." + fmt
            if fmt in ("scenario.toml", "study.toml", "study.yaml"):
                suffix = "." + fmt.rsplit(".", 1)[1]
            target = work / f"{name}{suffix}"
            if fmt.endswith(".gz") and rng.random() < 0.6:  # the NIfTI inside, recompressed
                target.write_bytes(gzip.compress(mutate(gzip.decompress(source), rng)))
            else:
                target.write_bytes(mutate(source, rng))
            cases.append(_case_for(fmt, name, target, f, work, reg, i))
    return [c for c in cases if c is not None]


def _copy_case(src: Path, dst: Path) -> str:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return str(dst)


def _case_for(fmt, name, target, f, work, reg, i) -> FuzzCase | None:  # noqa: ANN001, PLR0911
    """The invocation that reads a mutated file of format ``fmt``."""
    if fmt in ("nrrd", "nii.gz"):
        out = work / f"{name}_case"
        return FuzzCase(name, "import", fmt, ["import", str(target), str(out)], None, str(out))
    if fmt == "labels.nii.gz":
        case = _copy_case(f["case"], work / f"{name}_case")
        args = ["segment", case, "--labels", str(target), "--names", str(f["names"]),
                "--structure", "liver"]  # fmt: skip
        return FuzzCase(name, "segment", fmt, args, case)
    if fmt in ("vtk", "vtp", "stl"):
        if i % 2:
            case = _copy_case(f["case"], work / f"{name}_case")
            args = ["import-model", str(target), case, "--structure", "gallbladder"]
            return FuzzCase(name, "import-model", fmt, args, case)
        return FuzzCase(name, "register", fmt, [*reg, "--model", str(target)])
    if fmt == "vtu":
        case = _copy_case(f["box"], work / f"{name}_case")
        shutil.copy(target, Path(case) / "meshes" / "volume.vtu")
        return FuzzCase(name, "simulate", fmt, ["simulate", case, "--scenario",
                                                str(f["scenario.toml"])], None)  # fmt: skip
    if fmt in ("csv", "txt", "mrk.json"):
        args = ["register", "--model", str(f["vtp"]), "--points", str(target), "--init",
                str(f["init.txt"])]  # fmt: skip
        return FuzzCase(name, "register", fmt, args)
    if fmt in ("tfm", "init.txt"):
        args = ["register", "--model", str(f["vtp"]), "--points", str(f["csv"]), "--init",
                str(target)]  # fmt: skip
        return FuzzCase(name, "register", fmt, args)
    if fmt == "case.json":
        case = _copy_case(f["case"], work / f"{name}_case")
        shutil.copy(target, Path(case) / "case.json")
        out = work / f"{name}_label.nii.gz"
        cmd = ["export", case, "--structure", "liver", "--label", str(out)]
        return FuzzCase(name, "export", fmt, cmd, case, str(out))
    if fmt == "scenario.toml":
        if _valid_spec(target, "scenario"):
            return None  # still valid: it would run a solve, not test a refusal
        return FuzzCase(name, "simulate", fmt, ["simulate", str(f["box"]), "--scenario",
                                                str(target)], str(f["box"]))  # fmt: skip
    if _valid_spec(target, "study"):
        return None
    out = work / f"{name}_study"
    return FuzzCase(name, "study", fmt, ["study", str(target), "--out", str(out)], None, str(out))


# -- running ------------------------------------------------------------------------------------


def digest(folder: str | None) -> str | None:
    """A hash of every file (path and bytes) under ``folder``."""
    if folder is None or not Path(folder).exists():
        return None
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def invoke(case: FuzzCase) -> dict[str, Any]:
    """Run one case in this process (click's CliRunner); the raw outcome."""
    from click.testing import CliRunner

    from surgplan.cli import cli

    before = digest(case.case_dir)
    started = time.perf_counter()
    result = CliRunner().invoke(cli, case.args)
    elapsed = time.perf_counter() - started
    lines = result.stderr.splitlines()
    exc = result.exception
    return {
        "name": case.name,
        "time_s": round(elapsed, 4),
        "exit_code": result.exit_code,
        "error_lines": sum(1 for line in lines if line.startswith("error:")),
        "stderr_lines": len(lines),
        "first_line": lines[0][:300] if lines else "",
        "last_lines": [line[:300] for line in lines[-3:]],
        "traceback": "Traceback (most recent call last)" in result.output
        or (exc is not None and not isinstance(exc, SystemExit)),
        "case_changed": before is not None and digest(case.case_dir) != before,
        "output_left": case.must_not_exist is not None and Path(case.must_not_exist).exists(),
    }


def classify(raw: dict[str, Any]) -> str:
    """``refused``, ``accepted`` or one of :data:`FAILURES`."""
    if raw.get("crash"):
        return "crash"
    if raw.get("timeout"):
        return "timeout"
    if raw["traceback"] or raw["exit_code"] == 1:
        return "traceback"
    if raw["exit_code"] == 0:
        return "accepted"
    if raw["exit_code"] != 2:
        return "bad_exit"
    if raw["stderr_lines"] != 1 or raw["error_lines"] != 1:
        return "bad_error"
    if raw["case_changed"] or raw["output_left"]:
        return "case_changed"
    return "refused"


def run_cases(cases: list[FuzzCase]) -> list[dict[str, Any]]:
    """Run ``cases`` in child processes; a crash or hang ends a child, not the caller."""
    results: list[dict[str, Any]] = []
    pending = list(cases)
    while pending:
        # the cases go through a file, not a pipe: a child that dies must not leave the parent
        # writing into a closed pipe (SIGPIPE, which PETSc, once imported, turns into an abort)
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
            fh.write("".join(json.dumps(dataclasses.asdict(c)) + "\n" for c in pending))
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_fuzzing", fh.name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert child.stdout is not None
        done = 0
        while done < len(pending):
            ready, _, _ = select.select([child.stdout], [], [], CASE_TIMEOUT_S)
            line = child.stdout.readline() if ready else None
            if not line:
                break
            raw = json.loads(line)
            raw.update(command=pending[done].command, fmt=pending[done].fmt)
            raw["outcome"] = classify(raw)
            results.append(raw)
            done += 1
        if done < len(pending):  # the child died (or hung) on pending[done]
            hung = child.poll() is None
            if hung:
                child.kill()
            code = child.wait()
            bad = pending[done]
            results.append({
                "name": bad.name, "command": bad.command, "fmt": bad.fmt, "exit_code": code,
                "crash": not hung, "timeout": hung, "outcome": "timeout" if hung else "crash",
                "args": bad.args,
            })  # fmt: skip
            pending = pending[done + 1 :]
        else:
            child.wait()
            pending = []
        child.stdout.close()
        Path(fh.name).unlink()
    return results


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per command and per format, and the failures with their case names."""
    outcomes = Counter(r["outcome"] for r in results)
    by = {}
    for key in ("command", "fmt"):
        table: dict[str, Counter] = {}
        for r in results:
            table.setdefault(r[key], Counter())[r["outcome"]] += 1
        by[key] = {k: {"inputs": sum(v.values()), **dict(v)} for k, v in sorted(table.items())}
        for k, row in by[key].items():
            times = [r.get("time_s", 0.0) for r in results if r[key] == k]
            row["mean_time_s"] = round(sum(times) / len(times), 4)
    return {
        "inputs": len(results),
        "refused_clean": outcomes["refused"],
        "accepted": outcomes["accepted"],
        "crashes": outcomes["crash"],
        "tracebacks": outcomes["traceback"],
        "bad_error_lines": outcomes["bad_error"] + outcomes["bad_exit"],
        "case_changes_on_refusal": outcomes["case_changed"],
        "timeouts": outcomes["timeout"],
        "per_command": by["command"],
        "per_format": by["fmt"],
        "failures": [
            {
                k: r.get(k)
                for k in (
                    "name",
                    "command",
                    "fmt",
                    "outcome",
                    "exit_code",
                    "first_line",
                    "last_lines",
                )
            }
            for r in results
            if r["outcome"] in FAILURES
        ],
    }


def _worker() -> None:
    """Child side of :func:`run_cases`: one JSON case per line of a file, one result per line."""
    for line in Path(sys.argv[1]).read_text().splitlines():
        case = FuzzCase(**json.loads(line))
        sys.stdout.write(json.dumps(invoke(case)) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _worker()
