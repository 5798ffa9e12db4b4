"""The verdict: does the evidence meet the level the model risk requires, and what is missing.

Each requirement of :class:`~surgplan.credibility.context.Requirements` is checked against the
evidence gathered; a requirement not met is listed with its reason (required vs achieved).
The verdict is ``"evidence meets the required level"`` only when every one is met, else
``"not enough evidence"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MEETS", "NOT_ENOUGH", "Verdict", "judge"]

MEETS = "evidence meets the required level"
NOT_ENOUGH = "not enough evidence"


@dataclass(frozen=True)
class Verdict:
    """The checks and the verdict.

    Attributes
    ----------
    risk_level : int
        Model risk level (1-5).
    checks : list of dict
        ``requirement``, ``required``, ``achieved``, ``met``, ``reason``.
    verdict : str
        :data:`MEETS` or :data:`NOT_ENOUGH`.
    missing : list of str
        The reasons of every requirement not met.
    """

    risk_level: int
    checks: list[dict[str, Any]]
    verdict: str
    missing: list[str]

    @property
    def meets(self) -> bool:
        """Every requirement is met."""
        return self.verdict == MEETS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _check(name: str, required: str, achieved: str, met: bool, reason: str) -> dict[str, Any]:
    return {"requirement": name, "required": required, "achieved": achieved, "met": bool(met),
            "reason": "" if met else reason}  # fmt: skip


def _fmt(x: float | None, unit: str = " mm", digits: int = 2) -> str:
    return "none" if x is None else f"{x:.{digits}f}{unit}"


def judge(
    context: Any, code: Any, calc: Any, tre_mm: float | None, n_trusted: int, cal: Any,
    n_trials: int, applicability: Any, real_data: bool = False,
) -> Verdict:  # fmt: skip
    """Check every requirement of ``context.requirements`` (module docstring).

    Parameters
    ----------
    context : ContextOfUse
        The requirements and the risk level.
    code : CodeVerification
        Code verification.
    calc : CalculationVerification
        Calculation verification on the case mesh.
    tre_mm : float or None
        Mean tumour TRE of the deformable twin over trusted validation trials, mm.
    n_trusted : int
        Those trials.
    cal : Calibration
        The tumour's radius95 calibration (deformable, trusted trials).
    n_trials : int
        Validation trials run.
    applicability : Applicability
        The comparison with the validation cases.
    real_data : bool
        Validation on real data with a known answer was given.
    """
    req = context.requirements
    checks = []
    fails = code.failures(orders=req.code_verification_orders)
    what = "errors and observed orders" if req.code_verification_orders else "errors"
    checks.append(_check(
        "code verification", f"every problem's {what} within bounds",
        "all pass" if not fails else f"{len(fails)} failed", not fails,
        "code verification failed: " + "; ".join(fails),
    ))  # fmt: skip
    e = calc.tumour_error_mm
    checks.append(_check(
        "calculation verification",
        f"tumour discretisation error <= {req.discretisation_error_mm:g} mm",
        _fmt(e), e <= req.discretisation_error_mm,
        f"the case mesh's tumour discretisation error {e:.2f} mm exceeds "
        f"{req.discretisation_error_mm:g} mm: refine the case mesh (surgplan mesh --edge-mm)",
    ))  # fmt: skip
    checks.append(_check(
        "validation TRE", f"mean tumour TRE (deformable, trusted) <= {req.tre_mm:g} mm",
        f"{_fmt(tre_mm)} over {n_trusted} trusted trials",
        tre_mm is not None and tre_mm <= req.tre_mm,
        "no trusted validation trial" if tre_mm is None else
        f"mean tumour TRE {tre_mm:.2f} mm exceeds {req.tre_mm:g} mm",
    ))  # fmt: skip
    low = None if cal.clopper_pearson is None else cal.clopper_pearson[0]
    checks.append(_check(
        "calibration",
        f"lower 95 % bound of the share inside radius95 >= {req.calibration_lower:g}",
        "none" if low is None else f"{cal.inside}/{cal.n} inside, lower bound {low:.3f}",
        low is not None and low >= req.calibration_lower,
        "no calibration trial" if low is None else
        f"calibration lower bound {low:.3f} ({cal.inside}/{cal.n} inside) below "
        f"{req.calibration_lower:g}: more trials or a wider radius",
    ))  # fmt: skip
    checks.append(_check(
        "validation trials", f">= {req.min_trials} trials", str(n_trials),
        n_trials >= req.min_trials,
        f"{n_trials} validation trials, fewer than the {req.min_trials} required (--trials)",
    ))  # fmt: skip
    inside = applicability.inside
    checks.append(_check(
        "applicability", "case inside the validated range" if req.applicability else
        "(warning only at this risk level)", "inside" if inside else
        f"{len(applicability.warnings)} outside", inside or not req.applicability,
        "outside the validated range: " + "; ".join(applicability.warnings),
    ))  # fmt: skip
    if req.real_data:
        checks.append(_check(
            "real-data validation", "validation on real data with a known answer",
            "given" if real_data else "none", real_data,
            "no validation on real data with a known answer (required at this risk level)",
        ))  # fmt: skip
    missing = [c["reason"] for c in checks if not c["met"]]
    return Verdict(context.risk_level, checks, NOT_ENOUGH if missing else MEETS, missing)
