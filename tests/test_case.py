"""The case folder: atomic transactions, validated manifest, nothing half-written."""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from surgplan.atomic import atomic_path, write_text_atomic
from surgplan.case import Case
from surgplan.errors import CaseError


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_new_case_is_written_only_on_success(tmp_path: Path) -> None:
    case = Case.open_or_new(tmp_path / "c")
    with pytest.raises(RuntimeError, match="boom"):
        with case.transaction() as tx:
            tx.path("images/scan.txt").write_text("x")
            raise RuntimeError("boom")
    assert not (tmp_path / "c").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no staging or lock left behind


def test_committed_files_and_manifest(tmp_path: Path) -> None:
    case = Case.open_or_new(tmp_path / "c")
    with case.transaction() as tx:
        tx.path("fe/result.txt").write_text("42")
        tx.record_artifact("fe_result", "retraction", "fe/result.txt", {"max_displacement_mm": 4.2})
    reopened = Case.open(tmp_path / "c")
    assert reopened.artifacts["fe_result/retraction"].meta == {"max_displacement_mm": 4.2}
    assert (tmp_path / "c" / "fe" / "result.txt").read_text() == "42"
    manifest = json.loads((tmp_path / "c" / "case.json").read_text())
    assert manifest["format"] == "surgplan-case" and manifest["schema_version"] == 3
    assert manifest["$schema"] == "urn:surgplan:schema:case:3"
    assert manifest["surgplan_version"] == importlib.metadata.version("surgplan")


def test_failed_step_leaves_existing_case_byte_identical(tmp_path: Path) -> None:
    case = Case.open_or_new(tmp_path / "c")
    with case.transaction() as tx:
        tx.path("a.txt").write_text("old")
    before = _snapshot(tmp_path / "c")
    with pytest.raises(ValueError, match="half way"):
        with case.transaction() as tx:
            tx.path("a.txt").write_text("new")
            tx.path("b.txt").write_text("new")
            tx.remove("a.txt")
            raise ValueError("half way")
    assert _snapshot(tmp_path / "c") == before


def test_paths_must_stay_inside_the_case(tmp_path: Path) -> None:
    case = Case.open_or_new(tmp_path / "c")
    with pytest.raises(CaseError, match="inside the case"):
        with case.transaction() as tx:
            tx.path("../escape.txt")


def test_invalid_manifest_names_the_field(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "case.json").write_text(json.dumps({"format": "surgplan-case", "schema_version": 7}))
    with pytest.raises(CaseError, match="schema_version"):
        Case.open(folder)


def test_not_a_case(tmp_path: Path) -> None:
    (tmp_path / "other.txt").write_text("mine")
    with pytest.raises(CaseError, match="non-empty folder without case.json"):
        Case.open_or_new(tmp_path)
    with pytest.raises(CaseError, match="not a surgplan case"):
        Case.open(tmp_path)


def test_atomic_path_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(OSError, match="disk"):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise OSError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


HOLD_SCRIPT = """
import sys
from surgplan.case import Case
case = Case.open_or_new(sys.argv[1])
with case.transaction() as tx:
    tx.path("held.txt").write_text("held")
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_second_process_is_refused_while_first_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("surgplan.case.LOCK_WAIT_S", 0.0)  # refused at once, not after waiting
    folder = tmp_path / "c"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(CaseError, match="being changed by another process"):
            with Case.open_or_new(folder).transaction() as tx:
                tx.path("mine.txt").write_text("mine")
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    assert (folder / "held.txt").read_text() == "held"
    assert not (folder / "mine.txt").exists()
    with Case.open(folder).transaction() as tx:  # free again once the first writer is done
        tx.path("mine.txt").write_text("mine")
    assert (folder / "mine.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # lock file removed


def test_writer_that_opened_a_removed_lock_file_does_not_share_the_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of unlinking a lock file: B opens it, A removes it and unlocks, B locks it.

    B then holds a lock on a deleted file while C creates and locks a new one. B must notice
    and contend for the new file (refused, C holds it), not write alongside C.
    """
    monkeypatch.setattr("surgplan.case.LOCK_WAIT_S", 0.0)  # refused at once, not after waiting
    folder = tmp_path / "c"
    with Case.open_or_new(folder).transaction() as tx:
        tx.path("a.txt").write_text("0")
    real_flock = fcntl.flock
    b_opened, b_may_lock = threading.Event(), threading.Event()
    delayed: list[bool] = []

    def flock(fd: object, operation: int) -> None:
        if threading.current_thread().name == "B" and operation & fcntl.LOCK_EX and not delayed:
            delayed.append(True)
            b_opened.set()
            assert b_may_lock.wait(30)
        real_flock(fd, operation)  # type: ignore[arg-type]

    monkeypatch.setattr(fcntl, "flock", flock)
    outcome: list[str] = []

    def writer_b() -> None:
        try:
            with Case.open(folder).transaction():
                outcome.append("entered while C writes")
        except CaseError as error:
            outcome.append(str(error))

    with Case.open(folder).transaction():  # A
        thread_b = threading.Thread(target=writer_b, name="B")
        thread_b.start()
        assert b_opened.wait(30)
    with Case.open(folder).transaction():  # C: a new lock file, B still holds the old one
        b_may_lock.set()
        thread_b.join(30)
    assert outcome == [f"case {folder} is being changed by another process"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_writes_get_the_usual_file_mode(tmp_path: Path, umask: int) -> None:
    """Files written atomically have mode 0o666 less the umask, not mkstemp's 0o600."""
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "notes.json", "{}\n")
        with atomic_path(tmp_path / "scan.nii.gz") as tmp:
            tmp.write_bytes(b"data")
        with Case.open_or_new(tmp_path / "c").transaction() as tx:
            tx.path("fe/result.txt").write_text("42")
    finally:
        os.umask(previous)
    for path in (tmp_path / "notes.json", tmp_path / "scan.nii.gz", tmp_path / "c" / "case.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name
    assert (tmp_path / "notes.json").read_text() == "{}\n"
    assert (tmp_path / "scan.nii.gz").read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "notes.json", "scan.nii.gz"]


def test_package_lists_the_application_api_and_imports_light() -> None:
    """``import surgplan`` loads no heavy dependency; every listed name resolves and is listed."""
    code = (
        "import sys, surgplan\n"
        "heavy = {'dolfinx', 'gmsh', 'vtk', 'pyvista', 'SimpleITK', 'pydantic'}\n"
        "heavy &= set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    import surgplan
    from surgplan.meshing import build_meshes

    assert surgplan.build_meshes is build_meshes
    assert {"Case", "import_scan", "segment_structure", "build_meshes", "export_structure"} <= set(
        surgplan.__all__
    )
    for name in surgplan.__all__:
        assert getattr(surgplan, name) is not None, name
        assert name in (surgplan.__doc__ or ""), f"{name} missing from the docstring"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        surgplan.nope  # noqa: B018
