"""Every program in examples/ runs to its final assertions (as DOLFINx's demo/test.py does)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.py"))


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "case_from_label_map.py",
        "accuracy_study.py",
        "rehearsal_retraction.py",
        "intraop_tracking.py",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
