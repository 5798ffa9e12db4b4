"""security_check.py: accepted-vulnerability logic on recorded pip-audit JSON, a real SBOM."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data" / "pip_audit"


def _module():
    spec = importlib.util.spec_from_file_location(
        "security_check", REPO_ROOT / "scripts" / "security_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["security_check"] = module
    spec.loader.exec_module(module)
    return module


sc = _module()


def _report(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def _accepted(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "accepted.toml"
    path.write_text(text)
    return sc.read_accepted(path)


def test_a_known_vulnerability_fails(tmp_path: Path) -> None:
    outcome = sc.evaluate(_report("vulnerable.json"), _accepted(tmp_path, "accepted = []\n"))
    assert outcome.verdict == sc.FAIL
    assert outcome.failures == ("jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in: 3.1.3)",)


def test_an_accepted_vulnerability_passes_with_its_reason(tmp_path: Path) -> None:
    accepted = _accepted(
        tmp_path,
        '[[accepted]]\npackage = "Jinja2"\nid = "CVE-2024-22195"\n'
        'reason = "no user-controlled xmlattr keys"\n',
    )
    outcome = sc.evaluate(_report("vulnerable.json"), accepted)
    assert outcome.verdict == sc.PASS
    assert "2 packages audited" in outcome.line and "1 not auditable" in outcome.line
    assert "accepted: no user-controlled xmlattr keys" in outcome.line


def test_acceptance_is_per_package(tmp_path: Path) -> None:
    accepted = _accepted(
        tmp_path, '[[accepted]]\npackage = "numpy"\nid = "GHSA-h5c8-rqwp-cp95"\nreason = "x"\n'
    )
    assert sc.evaluate(_report("vulnerable.json"), accepted).verdict == sc.FAIL


def test_acceptance_needs_a_reason(tmp_path: Path) -> None:
    with pytest.raises(sc.AcceptedListError, match="entry 1 needs non-empty package, id and"):
        _accepted(
            tmp_path, '[[accepted]]\npackage = "jinja2"\nid = "CVE-2024-22195"\nreason = " "\n'
        )


def test_all_not_found_is_neither_pass_nor_fail(tmp_path: Path) -> None:
    outcome = sc.evaluate(_report("all_not_found.json"), _accepted(tmp_path, "accepted = []\n"))
    assert outcome.verdict == sc.UNVERIFIED
    assert outcome.line == (
        "pip-audit: UNVERIFIED (neither pass nor fail): 6 of 6 packages answered "
        "'Dependency not found on PyPI'; no package could be checked from this machine"
    )


def test_checked_in_accepted_list_is_valid() -> None:
    for reason in sc.read_accepted(sc.ACCEPTED_FILE).values():
        assert reason.strip()


def test_sbom_of_the_real_environment_has_its_components(tmp_path: Path) -> None:
    out = tmp_path / "sbom.json"
    count = sc.write_sbom(Path(sys.executable), out)
    names = {c["name"].lower() for c in json.loads(out.read_text())["components"]}
    assert count == sc.sbom_component_count(out) > 50
    assert {"numpy", "simpleitk", "pydicom", "vtk", "pip_audit"} <= names
