"""A case whose case.json is not UTF-8 text: every case command gives one line, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from surgplan.cli import cli

COMMANDS = [
    ["export", "{case}", "--structure", "liver", "--label", "{tmp}/out.nii.gz"],
    ["mesh", "{case}"],
    ["rom", "{case}"],
    ["rom", "{case}", "--scenario", "{tmp}/junk.toml"],
    ["segment", "{case}", "--structure", "liver", "--seed", "0", "0", "0"],
    ["sessions", "{case}"],
    ["live", "{case}", "--port", "0"],
    ["register", "--case", "{case}", "--points", "{tmp}/p.csv"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_non_utf8_manifest_is_one_line_error(tmp_path: Path, command: list[str]) -> None:
    case = tmp_path / "case"
    case.mkdir()
    junk = b"\x7f\x00\x81\xfe" * 16
    (case / "case.json").write_bytes(junk)
    (tmp_path / "junk.toml").write_bytes(junk)
    (tmp_path / "p.csv").write_text("x,y,z\n" + "1,2,3\n" * 10)
    args = [a.format(case=case, tmp=tmp_path) for a in command]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.exception, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    assert (case / "case.json").read_bytes() == junk
    assert sorted(p.name for p in case.iterdir()) == ["case.json"]
