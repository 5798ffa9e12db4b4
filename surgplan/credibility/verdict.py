"""The verdict: does the evidence meet the level the model risk requires, and what is missing.

Each requirement of :class:`~surgplan.credibility.context.Requirements` is checked against the
evidence gathered; a requirement not met is listed with its reason (required vs achieved).
The verdict is ``"evidence meets the required level"`` only when every one is met, else
``"not enough evidence"``.

With the user's validation data (:mod:`surgplan.credibility.user_summary`), two more checks,
at every risk level: the TRE at the question's target on every acquisition the deformable
twin trusted must not exceed the level's ``tre_mm`` (each is a real case the twin would have
shown; no trusted acquisition fails the check), and the truth targets inside the predicted
radius95 must not be fewer than a share ``calibration_lower`` allows: a one-sided binomial
test, failed when the chance of so few inside at that share is below
:data:`CALIBRATION_ALPHA`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CALIBRATION_ALPHA", "MEETS", "NOT_ENOUGH", "Verdict", "judge", "user_data_checks"]

MEETS = "evidence meets the required level"
NOT_ENOUGH = "not enough evidence"
#: Significance of the user-data calibration test (one-sided binomial).
CALIBRATION_ALPHA = 0.05


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
    n_trials: int, applicability: Any, real_data: bool = False, user_data: Any = None,
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
        Validation on real data with a known answer was given (implied by ``user_data``).
    user_data : UserValidation, optional
        The user's acquisitions scored (:func:`surgplan.credibility.user_summary.
        summarise_user_data`): adds :func:`user_data_checks`.
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
    given = user_data is not None and user_data.given
    real_data = real_data or given
    if given:
        checks += user_data_checks(req, user_data)
    if req.real_data:
        checks.append(_check(
            "real-data validation", "validation on real data with a known answer",
            "given" if real_data else "none", real_data,
            "no validation on real data with a known answer (required at this risk level)",
        ))  # fmt: skip
    missing = [c["reason"] for c in checks if not c["met"]]
    return Verdict(context.risk_level, checks, NOT_ENOUGH if missing else MEETS, missing)


def _tre_check(req: Any, user: Any) -> dict[str, Any]:
    d = user.summary["deformable"]
    tre, n, k = d["tre_mm_trusted"], user.n_acquisitions, len(d["trusted"])
    if tre is None:
        why = "; ".join(f"{u['name']}: {u['reason']}" for u in d["untrusted"])
        reason = f"the deformable twin trusted none of the {n} user acquisitions ({why})"
    over = [f"{name} {d['tre_mm_each'][name]:.2f} mm" for name in d["trusted"]
            if d["tre_mm_each"][name] > req.tre_mm]  # fmt: skip
    if tre is not None:
        reason = (f"on your data the {user.quantity} TRE exceeds {req.tre_mm:g} mm on "
                  f"{len(over)} of {k} trusted acquisitions: {', '.join(over)}")  # fmt: skip
    return _check(
        "validation TRE on your data",
        f"{user.quantity} TRE on each of your acquisitions (deformable, trusted) <= "
        f"{req.tre_mm:g} mm",
        "no trusted acquisition" if tre is None else
        f"mean {tre:.2f} mm, max {d['max_headline_tre_mm_trusted']:.2f} mm over {k} trusted of "
        f"{n} acquisitions", tre is not None and not over, reason,
    )  # fmt: skip


def _calibration_check(req: Any, user: Any) -> dict[str, Any]:
    from scipy.stats import binom

    d = user.summary["deformable"]
    k, n, lower = int(d["inside"]), int(d["n_targets"]), float(req.calibration_lower)
    p = float(binom.cdf(k, n, lower))
    return _check(
        "calibration on your data",
        f"truth targets inside radius95 not fewer than a share of {lower:g} allows "
        f"(one-sided binomial, {CALIBRATION_ALPHA:g})",
        f"{k}/{n} inside (p = {p:.3g})", p >= CALIBRATION_ALPHA,
        f"on your data radius95 missed {n - k} of {n} truth targets: fewer inside than a share "
        f"of {lower:g} allows (binomial p = {p:.3g} < {CALIBRATION_ALPHA:g})",
    )  # fmt: skip


def user_data_checks(req: Any, user: Any) -> list[dict[str, Any]]:
    """The checks of the user's validation data (module docstring).

    Parameters
    ----------
    req : Requirements
        The risk level's requirements (``tre_mm``, ``calibration_lower``).
    user : UserValidation
        The scored acquisitions (``given`` true).

    Returns
    -------
    list of dict
        The TRE check, and the calibration check when a trusted acquisition has targets.
    """
    checks = [_tre_check(req, user)]
    if user.summary["deformable"]["n_targets"]:
        checks.append(_calibration_check(req, user))
    return checks
