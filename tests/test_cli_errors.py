"""The CLI's error boundary: one line for a user's mistake, a traceback for a bug, no noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from surgplan.cli import cli
from surgplan.cli.common import command_context
from surgplan.cli.error_boundary import BUG_REPORT_LINE, SurgplanGroup, user_error_message
from surgplan.errors import CaseError


def run(group: click.Group, *args: object) -> tuple[int, list[str]]:
    result = CliRunner().invoke(group, [str(a) for a in args])
    return result.exit_code, result.stderr.splitlines()


def one_error(code: int, lines: list[str]) -> str:
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["register"], "Missing option '--points'. (see 'surgplan register --help')"),
        (["register", "--points", "p.csv", "--bogus"], "No such option '--bogus'"),
        (["nosuchcommand"], "No such command 'nosuchcommand'. (see 'surgplan --help')"),
        (["register", "--points", "p.csv", "--units", "furlong"], "'furlong' is not one of"),
        (["rom", "case", "--centres", "many"], "'many' is not a valid integer"),
    ],
)
def test_click_usage_errors_are_one_line(args: list[str], needle: str) -> None:
    line = one_error(*run(cli, *args))
    assert needle in line, line


def _group() -> click.Group:
    group = SurgplanGroup(name="t")

    @group.command("bug")
    def bug() -> None:
        with command_context(False):
            {}["missing"]  # noqa: B018 - a genuine bug

    @group.command("native")
    def native() -> None:
        with command_context(False):
            os.write(2, b"\x1b[31mERROR: In vtkThing.cxx, line 12: the file is bad\x1b[0m\n")
            raise CaseError("case /x is broken")

    @group.command("folder")
    @click.argument("path", type=click.Path(path_type=Path))
    def folder(path: Path) -> None:
        with command_context(False):
            path.read_bytes()

    @group.command("quiet-ok")
    def quiet_ok() -> None:
        with command_context(True) as ctx:
            os.write(2, b"PETSC WARNING: something harmless\n")
            ctx.report["value"] = 1

    @group.command("early")
    def early() -> None:
        raise ZeroDivisionError("outside the command context")

    return group


def test_bug_keeps_its_traceback_and_asks_for_a_report() -> None:
    code, lines = run(_group(), "bug")
    assert code == 1
    assert lines[0] == "Traceback (most recent call last):" and "KeyError: 'missing'" in lines
    assert lines[-1] == BUG_REPORT_LINE
    code, lines = run(_group(), "early")
    assert code == 1 and "ZeroDivisionError: outside the command context" in lines
    assert lines[-1] == BUG_REPORT_LINE


def test_native_stderr_is_folded_into_the_one_line() -> None:
    line = one_error(*run(_group(), "native"))
    assert line == (
        "error: case /x is broken "
        "[library output: ERROR: In vtkThing.cxx, line 12: the file is bad]"
    )


def test_native_output_of_a_successful_command_is_one_warning_line() -> None:
    result = CliRunner().invoke(_group(), ["quiet-ok"])
    assert result.exit_code == 0 and result.stdout == '{"value": 1}\n'
    assert result.stderr == "warning: PETSC WARNING: something harmless\n"


def test_os_errors_about_the_users_paths_are_one_line(tmp_path: Path) -> None:
    line = one_error(*run(_group(), "folder", tmp_path))
    assert line == f"error: {tmp_path}: is a folder, expected a file"
    line = one_error(*run(_group(), "folder", tmp_path / "nope"))
    assert line == f"error: {tmp_path / 'nope'}: no such file or folder"


def test_classification() -> None:
    assert user_error_message(PermissionError(13, "Permission denied", "/p")) == (
        "/p: permission denied"
    )
    assert user_error_message(MemoryError()).startswith("not enough memory")
    for bug in (KeyError("k"), TypeError("t"), ValueError("v"), AttributeError("a")):
        assert user_error_message(bug) is None


def test_corrupt_vtk_file_gives_no_library_noise_on_the_real_stderr(tmp_path: Path) -> None:
    """In a real process (fd 2 is the terminal's): a corrupt VTP gives exactly one line."""
    (tmp_path / "junk.vtp").write_bytes(b'<?xml version="1.0"?>\n<VTKFile type="PolyData">\x00\xff')
    (tmp_path / "p.csv").write_text("1,2,3\n4,5,6\n7,8,9\n")
    done = subprocess.run(
        [sys.executable, "-c", "from surgplan.cli import main; main()", "register",
         "--model", tmp_path / "junk.vtp", "--points", tmp_path / "p.csv"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: cannot read surface file {tmp_path / 'junk.vtp'}: ")
    assert "\x1b[" not in done.stderr
