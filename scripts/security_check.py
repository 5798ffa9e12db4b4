"""CI security step: an SBOM of the installed environment and a pip-audit of it.

Usage::

    .venv/bin/python scripts/security_check.py [--python .venv/bin/python] [--out build/security]

1. ``cyclonedx-py environment PYTHON -o OUT/sbom.json`` (offline): prints the component count;
   an SBOM without components fails.
2. ``PYTHON -m pip_audit --local --skip-editable -f json -o OUT/pip-audit.json``: every known
   vulnerability fails the step unless ``scripts/security_accepted.toml`` accepts its ID (or an
   alias) for that package with a reason. When the look-ups answered "Dependency not found on
   PyPI" for every package (as from machines without access to the vulnerability service), or
   pip-audit could not run at all, the step says so in one line: the audit is *unverified*,
   counted neither as a pass nor as a failure (exit code 0).

Exit codes: 0 pass or unverified, 1 a vulnerability not accepted or an empty SBOM, 2 a broken
accepted-list file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ACCEPTED_FILE = REPO / "scripts" / "security_accepted.toml"
NOT_FOUND = "Dependency not found on PyPI"
PASS, FAIL, UNVERIFIED = "pass", "fail", "unverified"


class AcceptedListError(Exception):
    """The accepted-vulnerabilities file is malformed (an entry without id, package or reason)."""


@dataclass(frozen=True)
class AuditOutcome:
    """The verdict on one pip-audit run: ``pass``, ``fail`` or ``unverified``, and why."""

    verdict: str
    line: str
    failures: tuple[str, ...] = ()


def read_accepted(path: Path) -> dict[tuple[str, str], str]:
    """Accepted vulnerabilities: ``(package, id) -> reason`` from ``[[accepted]]`` tables.

    Raises
    ------
    AcceptedListError
        Unreadable TOML, or an entry lacking ``package``, ``id`` or a non-empty ``reason``.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise AcceptedListError(f"{path}: cannot read the accepted list: {error}") from None
    accepted: dict[tuple[str, str], str] = {}
    for number, entry in enumerate(data.get("accepted", []), start=1):
        fields = {
            key: entry.get(key) if isinstance(entry, dict) else None
            for key in ("package", "id", "reason")
        }
        if not all(isinstance(v, str) and v.strip() for v in fields.values()):
            raise AcceptedListError(
                f"{path}: accepted entry {number} needs non-empty package, id and reason"
            )
        accepted[(fields["package"].lower(), fields["id"].upper())] = fields["reason"].strip()
    return accepted


def evaluate(report: dict[str, Any], accepted: dict[tuple[str, str], str]) -> AuditOutcome:
    """Judge a pip-audit JSON report (``-f json``) against the accepted vulnerabilities.

    Parameters
    ----------
    report
        pip-audit's JSON: ``{"dependencies": [{"name", "version", "vulns": [...]} or
        {"name", "skip_reason"}], "fixes": [...]}``.
    accepted
        From :func:`read_accepted`.

    Returns
    -------
    AuditOutcome
        ``fail`` if any vulnerability is not accepted; otherwise ``unverified`` if no package
        could be audited (every one skipped), else ``pass``.
    """
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "vulns" in d]
    skipped = [d for d in deps if "skip_reason" in d]
    failures, waived = [], []
    for dep in audited:
        for vuln in dep["vulns"]:
            ids = {vuln["id"].upper(), *(a.upper() for a in vuln.get("aliases", []))}
            reasons = [
                accepted[(dep["name"].lower(), i)]
                for i in ids
                if (dep["name"].lower(), i) in accepted
            ]
            label = f"{dep['name']} {dep.get('version', '?')}: {vuln['id']}"
            if reasons:
                waived.append(f"{label} (accepted: {reasons[0]})")
            else:
                fixes = ", ".join(vuln.get("fix_versions", [])) or "none"
                failures.append(f"{label} (fixed in: {fixes})")
    if failures:
        return AuditOutcome(
            FAIL,
            f"pip-audit: FAIL, {len(failures)} known vulnerabilit(ies) not accepted in "
            f"{ACCEPTED_FILE.name}: " + "; ".join(failures),
            tuple(failures),
        )
    if not audited:
        not_found = sum(NOT_FOUND in d.get("skip_reason", "") for d in skipped)
        return AuditOutcome(
            UNVERIFIED,
            f"pip-audit: UNVERIFIED (neither pass nor fail): {not_found} of {len(deps)} "
            f"packages answered '{NOT_FOUND}'; no package could be checked from this machine",
        )
    note = f", {len(skipped)} not auditable" if skipped else ""
    note += f", {len(waived)} accepted: " + "; ".join(waived) if waived else ""
    return AuditOutcome(
        PASS, f"pip-audit: PASS, {len(audited)} packages audited, no vulnerability{note}"
    )


def sbom_component_count(sbom_path: Path) -> int:
    """Number of components in a CycloneDX JSON SBOM (nested components included)."""
    data = json.loads(sbom_path.read_text(encoding="utf-8"))

    def count(components: list[dict[str, Any]]) -> int:
        return sum(1 + count(c.get("components", [])) for c in components)

    return count(data.get("components", []))


def write_sbom(python: Path, out: Path) -> int:
    """Write ``out`` with ``cyclonedx-py environment python``; return its component count."""
    tool = python.parent / "cyclonedx-py"
    command = [str(tool), "environment", str(python), "-o", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=300)
    return sbom_component_count(out)


def run_pip_audit(python: Path, out: Path) -> dict[str, Any] | None:
    """pip-audit's JSON report of ``python``'s environment, or ``None`` if it produced none."""
    out.unlink(missing_ok=True)
    command = [
        str(python),
        "-m",
        "pip_audit",
        "--local",
        "--skip-editable",
        "-f",
        "json",
        "-o",
        str(out),
        "--progress-spinner",
        "off",
        "--timeout",
        "10",
    ]
    try:
        subprocess.run(command, capture_output=True, timeout=240, check=False)
    except subprocess.TimeoutExpired:
        return None
    try:
        return json.loads(out.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def main(argv: list[str] | None = None) -> int:
    """Run both steps; print the SBOM's component count and the audit's one-line verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, default=REPO / ".venv" / "bin" / "python")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "security")
    parser.add_argument("--accepted", type=Path, default=ACCEPTED_FILE)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        accepted = read_accepted(args.accepted)
    except AcceptedListError as error:
        print(f"security: {error}", file=sys.stderr)
        return 2
    sbom = args.out / "sbom.json"
    components = write_sbom(args.python, sbom)
    print(f"SBOM (CycloneDX, {sbom}): {components} components")
    if components == 0:
        print("security: FAIL, the SBOM lists no component", file=sys.stderr)
        return 1
    report = run_pip_audit(args.python, args.out / "pip-audit.json")
    if report is None:
        outcome = AuditOutcome(UNVERIFIED, "pip-audit: UNVERIFIED, it ran but wrote no report")
    else:
        outcome = evaluate(report, accepted)
    print(outcome.line)
    return 1 if outcome.verdict == FAIL else 0


if __name__ == "__main__":
    sys.exit(main())
