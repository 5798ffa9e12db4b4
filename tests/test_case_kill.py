"""SIGKILL ``import``, ``segment``, ``mesh``, ``simulate`` and ``rom`` at seeded moments.

After every kill the case must open (finishing an interrupted commit), validate, name only
files that exist with the recorded sha256 and size (:meth:`surgplan.case.Case.verify`), be in
the state before or after the step (revision ``r`` or ``r + 1``), and the command run again
must succeed. Two writers at once must both be recorded.

Commands run in children forked from a *zygote*: one process that has imported the CLI and
its libraries once (but run none of them, and not DOLFINx, whose MPI must not cross a fork),
so a kill costs a fork, not an interpreter start. Two kinds of moment are used:

- ``kill_at_op = k``: the child SIGKILLs itself just before its k-th file-system operation
  (``os.replace``, ``rename``, ``unlink``, ``rmdir``, ``mkdir``, ``fsync``), k drawn from a
  clean run's count, so the kills land inside staging, the journal and its application;
- ``kill_after_s = t``: SIGKILL from the zygote after t seconds, t uniform over a clean run.

``benchmarks/case_kill.py`` runs the same with many more kills and prints the figures.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import SimpleITK as sitk

from surgplan.case import Case

ZYGOTE = r"""
import json, os, signal, sys, time, warnings
# A native library imported below starts one idle helper thread; the children use no state
# of it (the zygote has run no ITK or VTK filter), so Python's fork warning is expected.
warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
import SimpleITK, pyvista, vtk, gmsh  # noqa: F401  (imported once, before any fork)
import surgplan.scan_import, surgplan.segment, surgplan.meshing  # noqa: F401
from surgplan.cli import cli

OPS = ("replace", "rename", "unlink", "rmdir", "mkdir", "fsync")


def counting(kill_at, after, counter):
    for name in OPS:
        real = getattr(os, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            counter[0] += 1
            if kill_at is not None and counter[0] >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            out = _real(*args, **kwargs)
            if _name == "replace" and after is not None and os.fspath(args[1]) == after:
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        setattr(os, name, wrapper)


def child(job, count_file):
    counter = [0]
    counting(job.get("kill_at_op"), job.get("kill_after_replace_onto"), counter)
    code = 0
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(err, 2)
    try:
        cli.main(args=job["argv"], prog_name="surgplan")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    with open(count_file, "w") as handle:
        handle.write(str(counter[0]))
    sys.stderr.flush()
    os._exit(code)


for line in sys.stdin:
    jobs = json.loads(line)
    started, pids = time.monotonic(), {}
    for i, job in enumerate(jobs):
        count_file = f"{job['stderr']}.ops"
        pid = os.fork()
        if pid == 0:
            child(job, count_file)
        pids[pid] = (i, count_file)
    results = [None] * len(jobs)
    deadline = [None if j.get("kill_after_s") is None else started + j["kill_after_s"]
                for j in jobs]
    hard = started + 300.0  # a child that hangs is killed and reported
    hung = [False] * len(jobs)
    while pids:
        for pid, (i, count_file) in list(pids.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                killed = os.WIFSIGNALED(status)
                ops = None
                if os.path.exists(count_file):
                    ops = int(open(count_file).read() or 0)
                    os.unlink(count_file)
                results[i] = {"killed": killed, "code": None if killed else os.WEXITSTATUS(status),
                              "ops": ops, "elapsed_s": time.monotonic() - started,
                              "hung": hung[i]}
                del pids[pid]
            elif deadline[i] is not None and time.monotonic() >= deadline[i]:
                os.kill(pid, signal.SIGKILL)
                deadline[i] = None
            elif time.monotonic() >= hard and not hung[i]:
                os.kill(pid, signal.SIGKILL)
                hung[i] = True
        time.sleep(0.002)
    print(json.dumps(results), flush=True)
"""


class Zygote:
    """A process that forks CLI commands on request (see the module docstring)."""

    def __init__(self, workdir: Path) -> None:
        env = {**os.environ, "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1"}
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"
        self.workdir = workdir
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._n = 0

    def run(self, *jobs: dict[str, Any]) -> list[dict[str, Any]]:
        """Run ``jobs`` (``argv``, optional ``kill_at_op``/``kill_after_s``) at once.

        Returns one dict per job: ``killed``, exit ``code``, file-system ``ops`` counted
        (None when killed), ``elapsed_s`` and ``stderr`` (its text).
        """
        sent = []
        for job in jobs:
            self._n += 1
            err = self.workdir / f"stderr-{self._n}.txt"
            sent.append({**job, "argv": [str(a) for a in job["argv"]], "stderr": str(err)})
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(sent) + "\n")
        self.proc.stdin.flush()
        results = json.loads(self.proc.stdout.readline())
        for result, job in zip(results, sent, strict=True):
            err = Path(job["stderr"])  # absent if killed before the child opened it
            result["stderr"] = err.read_text(errors="replace") if err.exists() else ""
        return results

    def close(self) -> None:
        """Stop the zygote."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def check_case(folder: Path, revisions: tuple[int, ...]) -> list[str]:
    """Problems of the case after a kill (empty: it opens, validates and tells the truth)."""
    if not (folder / "case.json").exists() and not any(
        p.name == ".case.commit.json" for p in folder.iterdir()
    ):
        # a new case killed before its first commit: nothing but what the next step collects
        leftovers = [p.name for p in folder.iterdir() if not p.name.startswith(".staging-")]
        return [f"new case left {leftovers}"] if leftovers else []
    try:
        case = Case.open(folder)
    except Exception as error:  # noqa: BLE001  (any failure to open is the finding)
        return [f"does not open: {error}"]
    problems = [p for p in case.verify() if "left by an interrupted step" not in p]
    if case.manifest.revision not in revisions:
        problems.append(f"revision {case.manifest.revision}, expected one of {revisions}")
    return problems


@dataclass
class KillFigures:
    """What the kills of one command found."""

    kills: int = 0
    kills_in_commit: int = 0
    finished_before_kill: int = 0
    inconsistent: int = 0
    next_command_failed: int = 0
    hung: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "kills": self.kills,
            "kills_in_commit": self.kills_in_commit,
            "finished_before_kill": self.finished_before_kill,
            "inconsistent_after_kill": self.inconsistent,
            "next_command_failed": self.next_command_failed,
            "hung": self.hung,
            "problems": self.problems[:5],
        }


def kill_command(
    zygote: Zygote,
    start: Path,
    work: Path,
    argv: list[Any],
    *,
    n_op_kills: int,
    n_time_kills: int,
    seed: int,
    next_argv: list[Any] | None = None,
) -> KillFigures:
    """Kill ``argv`` (``{case}`` stands for the case) run on copies of the case ``start``.

    A clean run first counts its file-system operations and times it; then ``n_op_kills``
    kills at seeded operations and ``n_time_kills`` at seeded times. After each, the case is
    checked (:func:`check_case`) and a next command must succeed on it: ``next_argv`` (a
    cheaper step that also takes the lock, collects and commits) if given, else, and always
    after the last kill, ``argv`` again.
    """
    rng = random.Random(seed)
    figures = KillFigures()
    clean = work / "clean"
    _copy(start, clean)
    revision = Case.open(start).manifest.revision if (start / "case.json").exists() else 0
    args = [clean if a == "{case}" else a for a in argv]
    (first,) = zygote.run({"argv": args})
    assert first["code"] == 0 and first["ops"], first["stderr"]
    n_ops, duration = first["ops"], first["elapsed_s"]
    plan = [("op", rng.randint(1, n_ops)) for _ in range(n_op_kills)]
    plan += [("time", rng.uniform(0.0, duration)) for _ in range(n_time_kills)]
    for i, (kind, when) in enumerate(plan):
        folder = work / f"kill-{i}"
        _copy(start, folder)
        args = [folder if a == "{case}" else a for a in argv]
        job = {"argv": args, "kill_at_op" if kind == "op" else "kill_after_s": when}
        (result,) = zygote.run(job)
        figures.hung += result["hung"]
        if not result["killed"]:
            figures.finished_before_kill += 1
        else:
            figures.kills += 1
            figures.kills_in_commit += _in_commit(folder)
        found = check_case(folder, (revision, revision + 1)) if folder.exists() else []
        if found:
            figures.inconsistent += 1
            figures.problems += [f"{kind} {when:.3g}: {p}" for p in found]
        then = argv if next_argv is None or i == len(plan) - 1 else next_argv
        (again,) = zygote.run({"argv": [folder if a == "{case}" else a for a in then]})
        after = check_case(folder, (revision + 1, revision + 2))  # r + 2: the kill committed
        if again["code"] != 0 or after:
            figures.next_command_failed += 1
            figures.problems.append(
                f"{kind} {when:.3g}: next run: {after} {again['stderr'][-300:]}"
            )
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(clean, ignore_errors=True)
    return figures


def _in_commit(folder: Path) -> int:
    """1 if the kill left a committed journal (killed while applying a commit)."""
    return int(folder.is_dir() and (folder / ".case.commit.json").exists())


def _copy(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    if source.exists():
        shutil.copytree(source, target)


def lost_updates(
    zygote: Zygote, start: Path, work: Path, rounds: int, pair: tuple[list[str], list[str]]
) -> dict[str, int]:
    """Two ``segment`` commands (arguments ``pair``) at once on copies of ``start``.

    A lost update is a command that exited 0 whose structure (its ``--structure``) the case
    does not list; a refused one (exit 2, "changed by another command") is not lost.
    """
    lost = refused = inconsistent = 0
    names = [args[args.index("--structure") + 1] for args in pair]
    for i in range(rounds):
        folder = work / f"pair-{i}"
        _copy(start, folder)
        results = zygote.run(*({"argv": ["segment", folder, *args]} for args in pair))
        case = Case.open(folder)
        for name, result in zip(names, results, strict=True):
            if result["code"] == 0 and name not in case.manifest.structures:
                lost += 1
            elif result["code"] != 0:
                refused += 1
        inconsistent += bool(case.verify())
        shutil.rmtree(folder)
    return {
        "rounds": rounds,
        "lost_updates": lost,
        "refused": refused,
        "inconsistent": inconsistent,
    }


# --- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The zygote, the phantom scans and the starting cases of every command."""
    from surgplan.phantom.generate import generate_phantom
    from tests.test_cli_json_contract import SCENARIO, box_case

    tmp = tmp_path_factory.mktemp("kill")
    zygote = Zygote(tmp)
    phantom = generate_phantom(seed=0, spacing_mm=(5.0, 5.0, 5.0))
    scans = {"a": tmp / "a.nrrd", "b": tmp / "b.nrrd"}
    sitk.WriteImage(phantom.ct, str(scans["a"]))
    sitk.WriteImage(generate_phantom(seed=1, spacing_mm=(5.0, 5.0, 5.0)).ct, str(scans["b"]))
    seed = [str(v) for v in phantom.seeds_lps_mm["liver"]]
    imported, segmented = tmp / "imported", tmp / "segmented"
    assert zygote.run({"argv": ["import", scans["a"], imported]})[0]["code"] == 0
    _copy(imported, segmented)
    segment = ["segment", segmented, "--structure", "liver", "--seed", *seed]
    assert zygote.run({"argv": segment})[0]["code"] == 0
    box = box_case(tmp / "box")
    (tmp / "scenario.toml").write_text(SCENARIO)
    yield {"zygote": zygote, "tmp": tmp, "scans": scans, "seed": seed, "imported": imported,
           "segmented": segmented, "box": box, "scenario": tmp / "scenario.toml"}  # fmt: skip
    zygote.close()


def commands(setup: dict[str, Any]) -> dict[str, tuple[Path, list[Any], list[Any] | None]]:
    """Each command's starting case, arguments (``{case}`` for the case) and next command."""
    bone = ["segment", "{case}", "--structure", "bone"]
    simulate = ["simulate", "{case}", "--scenario", setup["scenario"]]
    liver = ["segment", "{case}", "--structure", "liver", "--seed", *setup["seed"]]
    return {
        "import": (setup["segmented"], ["import", setup["scans"]["b"], "{case}"], bone),
        "import_new": (setup["tmp"] / "absent", ["import", setup["scans"]["a"], "{case}"], None),
        "segment": (setup["imported"], liver, bone),
        "mesh": (setup["segmented"], ["mesh", "{case}", "--edge-mm", "15"], bone),
        "simulate": (setup["box"], simulate, None),
        "rom": (
            setup["box"],
            ["rom", "{case}", "--scenario", setup["scenario"], "--centres", "4"],
            simulate,
        ),  # fmt: skip
    }


@pytest.mark.parametrize("command", ["import", "import_new", "segment", "mesh", "simulate", "rom"])
def test_killed_command_leaves_a_case_that_tells_the_truth(
    setup: dict[str, Any], command: str
) -> None:
    start, argv, next_argv = commands(setup)[command]
    work = setup["tmp"] / f"work-{command}"
    work.mkdir()
    figures = kill_command(
        setup["zygote"], start, work, argv, n_op_kills=2, n_time_kills=1, seed=16,
        next_argv=next_argv,
    )  # fmt: skip
    assert figures.kills >= 2, figures.to_dict()
    assert figures.inconsistent == figures.next_command_failed == figures.hung == 0, (
        figures.to_dict()
    )


def test_two_writers_at_once_never_lose_an_update(setup: dict[str, Any]) -> None:
    """Issue 16, 2: ``segment liver & segment bone``: both exit 0, both recorded."""
    work = setup["tmp"] / "pairs"
    work.mkdir()
    pair = (["--structure", "liver", "--seed", *setup["seed"]], ["--structure", "bone"])
    figures = lost_updates(setup["zygote"], setup["imported"], work, 2, pair)
    assert figures == {"rounds": 2, "lost_updates": 0, "refused": 0, "inconsistent": 0}


def test_kill_right_after_the_label_is_renamed_into_place(setup: dict[str, Any]) -> None:
    """Issue 16, 3: killed after the label's rename, before case.json: the commit completes.

    The case has a liver, its surface and volume mesh; ``segment liver`` is killed right after
    ``labels/liver.nrrd`` is renamed into place. The next opener finishes the commit: the
    manifest's voxel count is the label's, the old surface and volume mesh are gone.
    """
    zygote, tmp = setup["zygote"], setup["tmp"]
    folder = tmp / "renamed"
    _copy(setup["segmented"], folder)
    assert zygote.run({"argv": ["mesh", folder, "--edge-mm", "15"]})[0]["code"] == 0
    before = Case.open(folder).manifest
    assert before.volume_mesh is not None and "liver" in before.surfaces
    argv = ["segment", folder, "--structure", "liver", "--seed", *setup["seed"]]
    label = folder / "labels" / "liver.nrrd"
    (result,) = zygote.run({"argv": argv, "kill_after_replace_onto": str(label)})
    assert result["killed"] and (folder / ".case.commit.json").exists()
    assert json.loads((folder / "case.json").read_text())["revision"] == before.revision
    case = Case.open(folder)
    voxels = sitk.GetArrayFromImage(sitk.ReadImage(str(label)))
    assert case.manifest.revision == before.revision + 1
    assert case.manifest.structures["liver"].n_voxels == int(voxels.sum()) > 1000
    assert case.manifest.surfaces == {} and case.manifest.volume_mesh is None
    assert not (folder / "meshes" / "volume.vtu").exists()
    assert case.verify() == [] and not list(folder.glob(".*"))
