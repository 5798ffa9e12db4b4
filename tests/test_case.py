"""The case folder: atomic transactions, validated manifest, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surgplan.atomic import atomic_path
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
    assert manifest["format"] == "surgplan-case" and manifest["schema_version"] == 1


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
