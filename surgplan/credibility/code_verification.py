"""Code verification: ``surgplan verify``'s table against the expected convergence orders.

The records are those of :func:`biomech.verification.run_verification` (rerun here, quick or
full levels) or of a ``surgplan verify --json`` file the user kept. Each (problem, quantity)
is judged on its finest level: the relative error against the analytical or reference value
must be below :data:`ERROR_BOUNDS` and, where the quantity has a theoretical rate
(:data:`EXPECTED_ORDERS`), the observed order must reach it within :data:`ORDER_TOLERANCE`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from surgplan.credibility.errors import CredibilityError

__all__ = [
    "ERROR_BOUNDS",
    "EXPECTED_ORDERS",
    "ORDER_TOLERANCE",
    "CodeVerification",
    "assess_records",
    "read_verify_json",
    "run_code_verification",
]

#: Theoretical convergence order of each quantity (P2 elements; h = dofs^(-1/d)):
#: L2 displacement error of P2, p + 1 = 3; a domain integral of a P2 field converges at 2p = 4;
#: a wall flux (gradient) at p = 2; Cook's corner displacement, behind a re-entrant singularity,
#: at about 1.
EXPECTED_ORDERS: dict[tuple[str, str], float] = {
    ("lame_cylinder", "u L2 relative error"): 3.0,
    ("lame_sphere", "u L2 relative error"): 3.0,
    ("poiseuille", "flow rate [mL/s]"): 4.0,
    ("poiseuille", "wall shear stress [Pa]"): 2.0,
    ("cooks_membrane", "u_y(48, 60) [mm]"): 1.0,
}
#: Observed orders may fall this far below the expected one (pre-asymptotic meshes).
ORDER_TOLERANCE = 0.5
#: Largest relative error on the finest level, per problem (default 1e-2): the vessel tree is
#: solved exactly; Cook's reference (6.9 mm) is a literature value to about 1 %.
ERROR_BOUNDS: dict[str, float] = {"vessel_tree": 1e-9, "cooks_membrane": 2e-2}
DEFAULT_ERROR_BOUND = 1e-2
_KEYS = ("problem", "quantity", "dofs", "value", "reference", "rel_error", "order")


@dataclass(frozen=True)
class CodeVerification:
    """The verification table and its assessment.

    Attributes
    ----------
    records : list of dict
        ``surgplan verify --json`` records (keys problem, quantity, dofs, value, reference,
        rel_error, order), every level.
    checks : list of dict
        Per (problem, quantity), its finest level: rel_error, error bound, observed order,
        expected order, ``error_ok``, ``order_ok`` (``None`` where no rate is expected).
    source : str
        ``"rerun (quick levels)"``, ``"rerun (full levels)"`` or the file read.
    software : dict
        surgplan and DOLFINx versions of the run (``None`` when read from a file that does
        not say).
    time_s : float
        Wall time of the rerun, s (0 when read).
    """

    records: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    source: str
    software: dict[str, str | None]
    time_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def errors_pass(self) -> bool:
        """Every quantity's finest-level error is within its bound."""
        return all(c["error_ok"] for c in self.checks)

    @property
    def orders_pass(self) -> bool:
        """Every quantity with an expected rate reaches it (within the tolerance)."""
        return all(c["order_ok"] is not False for c in self.checks)

    def failures(self, *, orders: bool) -> list[str]:
        """One line per failed check (orders only when ``orders``)."""
        out = []
        for c in self.checks:
            name = f"{c['problem']} {c['quantity']}"
            if not c["error_ok"]:
                out.append(f"{name}: relative error {c['rel_error']:.2e} > {c['error_bound']:.0e}")
            if orders and c["order_ok"] is False:
                got = "none" if c["order"] is None else f"{c['order']:.2f}"
                out.append(
                    f"{name}: observed order {got} < expected {c['expected_order']:g} "
                    f"- {ORDER_TOLERANCE:g}"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "source": self.source,
            "software": dict(self.software),
            "time_s": self.time_s,
            "records": self.records,
            "checks": self.checks,
            "errors_pass": self.errors_pass,
            "orders_pass": self.orders_pass,
            "order_tolerance": ORDER_TOLERANCE,
            "notes": list(self.notes),
        }


def assess_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finest-level check of each (problem, quantity) of ``records`` (module docstring)."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        last[(str(r["problem"]), str(r["quantity"]))] = r
    checks = []
    for (problem, quantity), r in last.items():
        bound = ERROR_BOUNDS.get(problem, DEFAULT_ERROR_BOUND)
        expected = EXPECTED_ORDERS.get((problem, quantity))
        order = r.get("order")
        order_ok = None
        if expected is not None:
            order_ok = order is not None and float(order) >= expected - ORDER_TOLERANCE
        checks.append({
            "problem": problem, "quantity": quantity, "dofs": int(r["dofs"]),
            "rel_error": float(r["rel_error"]), "error_bound": bound,
            "error_ok": float(r["rel_error"]) <= bound,
            "order": None if order is None else float(order), "expected_order": expected,
            "order_ok": order_ok,
        })  # fmt: skip
    return checks


def _software() -> dict[str, str | None]:
    import dolfinx

    return {"surgplan": version("surgplan"), "dolfinx": str(dolfinx.__version__)}


def run_code_verification(*, quick: bool = True) -> CodeVerification:
    """Rerun every verification problem (:func:`biomech.verification.run_verification`).

    Parameters
    ----------
    quick : bool, keyword-only
        Coarser levels (a few seconds) instead of the full study.
    """
    import time

    from biomech.verification import json_records, run_verification

    t = time.perf_counter()
    records = json_records(run_verification(quick=quick))
    return CodeVerification(
        records=records,
        checks=assess_records(records),
        source=f"rerun ({'quick' if quick else 'full'} levels)",
        software=_software(),
        time_s=time.perf_counter() - t,
    )


def read_verify_json(path: str | Path) -> CodeVerification:
    """A ``surgplan verify --json`` output kept by the user (a list of records).

    Raises
    ------
    CredibilityError
        Missing file, not JSON, or not a list of records with the verify keys.
    """
    p = Path(path)
    if not p.is_file():
        raise CredibilityError(f"verification file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CredibilityError(f"{p}: not a surgplan verify --json file: {exc}") from None
    if not isinstance(data, list) or not data:
        raise CredibilityError(f"{p}: expected a non-empty JSON list of verify records")
    for i, r in enumerate(data):
        if not isinstance(r, dict) or set(r) != set(_KEYS):
            raise CredibilityError(
                f"{p}: record {i} must have exactly the keys {list(_KEYS)} (surgplan verify --json)"
            )
    return CodeVerification(
        records=[{k: r[k] for k in _KEYS} for r in data],
        checks=assess_records(data),
        source=str(p),
        software={"surgplan": None, "dolfinx": None},
        notes=["read from a file: surgplan verify --json does not record the software version"],
    )
