"""The dependency star of DESIGN.md: library packages import neither surgplan nor each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

LIBRARIES = ("imaging", "biomech", "registration", "vr")


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", LIBRARIES)
def test_library_package_keeps_the_star(package: str) -> None:
    forbidden = {"surgplan", *LIBRARIES} - {package}
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    offenders = {
        str(f.relative_to(REPO_ROOT)): sorted(_imported_top_levels(f) & forbidden) for f in files
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_the_detector_sees_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import numpy\nfrom surgplan.case import Case\nfrom . import sibling\n")
    assert _imported_top_levels(module) == {"numpy", "surgplan"}
