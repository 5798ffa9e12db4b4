"""The reliability verdict as data: which checks failed, what was measured, against what.

:func:`registration.reliability.assess` returns a :class:`Verdict`; its :attr:`Verdict.reason`
is the human-readable string the CLI's JSON carries under ``"reason"`` (``"ok"`` when every
check passes, else one message per failed check joined by ``"; "``). Code that needs to know
*which* check failed reads :attr:`Verdict.checks`, never the text; consumers that only have the
text (a JSON report) recover the checks with :func:`parse_reason`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["VerdictCheck", "FailedCheck", "Verdict", "parse_reason", "NOT_ASSESSED"]


class VerdictCheck(enum.Enum):
    """The checks of the reliability verdict (see :mod:`registration.reliability`)."""

    #: Fewer points than ``ReliabilityCriteria.min_points``: insufficient evidence.
    TOO_FEW_POINTS = "too_few_points"
    #: Inlier fraction below ``min_inlier_fraction``.
    LOW_INLIER_FRACTION = "low_inlier_fraction"
    #: Inlier RMS above what the localisation noise explains, mm.
    HIGH_INLIER_RMS = "high_inlier_rms"
    #: Neighbour-averaged residual above what independent noise leaves, mm.
    SYSTEMATIC_RESIDUAL = "systematic_residual"
    #: Least constrained motion constrained by too small a share of the points.
    POORLY_CONSTRAINED = "poorly_constrained"
    #: A distinct global-search pose of near-equal score, this far away (mm).
    AMBIGUOUS = "ambiguous"
    #: The verdict was not computed (``RealTimeRegistrar(assess_fit=False)``).
    NOT_ASSESSED = "not_assessed"


#: The fixed opening of each check's message: what :func:`parse_reason` recognises.
_PREFIX = {
    VerdictCheck.TOO_FEW_POINTS: "too few points to tell",
    VerdictCheck.LOW_INLIER_FRACTION: "too few inliers",
    VerdictCheck.HIGH_INLIER_RMS: "inlier RMS",
    VerdictCheck.SYSTEMATIC_RESIDUAL: "systematic residual",
    VerdictCheck.POORLY_CONSTRAINED: "pose poorly constrained",
    VerdictCheck.AMBIGUOUS: "ambiguous:",
    VerdictCheck.NOT_ASSESSED: "not assessed",
}


@dataclass(frozen=True)
class FailedCheck:
    """One failed check of the verdict with its measured value and threshold.

    Attributes
    ----------
    check : VerdictCheck
        Which check failed.
    value : float
        Measured value, in the check's unit: points (``TOO_FEW_POINTS``), a fraction
        (``LOW_INLIER_FRACTION``, ``POORLY_CONSTRAINED``), mm (the others).
    threshold : float
        The limit it broke, same unit: a minimum for ``TOO_FEW_POINTS``,
        ``LOW_INLIER_FRACTION`` and ``POORLY_CONSTRAINED``, a maximum for the others.
    noise_mm : float
        Expected localisation noise the mm thresholds derive from (``nan`` where unused), mm.
    """

    check: VerdictCheck
    value: float
    threshold: float
    noise_mm: float = math.nan

    @property
    def message(self) -> str:
        """Human-readable account of the failure (one clause of :attr:`Verdict.reason`)."""
        v, t = self.value, self.threshold
        match self.check:
            case VerdictCheck.TOO_FEW_POINTS:
                return f"too few points to tell ({int(v)} < {int(t)}): insufficient evidence"
            case VerdictCheck.LOW_INLIER_FRACTION:
                return (
                    f"too few inliers ({v:.0%} < {t:.0%}): "
                    "outliers, wrong organ or wrong local minimum"
                )
            case VerdictCheck.HIGH_INLIER_RMS:
                return (
                    f"inlier RMS {v:.2f} mm above {t:.2f} mm expected from {self.noise_mm:g} mm "
                    "noise: shape mismatch or wrong local minimum"
                )
            case VerdictCheck.SYSTEMATIC_RESIDUAL:
                return (
                    f"systematic residual {v:.2f} mm above {t:.2f} mm: the points do not have "
                    "the model's shape (wrong or mirrored organ, deformation, wrong minimum)"
                )
            case VerdictCheck.POORLY_CONSTRAINED:
                return (
                    f"pose poorly constrained (weakest motion constrained by {v:.3f} of points "
                    f"< {t}): points nearly planar or sphere-like"
                )
            case VerdictCheck.AMBIGUOUS:
                return f"ambiguous: a pose {v:.0f} mm away fits nearly as well"
            case _:
                return "not assessed"


@dataclass(frozen=True)
class Verdict:
    """Outcome of the reliability checks of one fit.

    Attributes
    ----------
    failed_checks : tuple of FailedCheck
        Every failed check, in the order the checks run (empty: trustworthy).
    """

    failed_checks: tuple[FailedCheck, ...] = ()

    @property
    def trustworthy(self) -> bool:
        """Whether every check passed."""
        return not self.failed_checks

    @property
    def checks(self) -> tuple[VerdictCheck, ...]:
        """The failed checks' kinds, in order."""
        return tuple(f.check for f in self.failed_checks)

    @property
    def reason(self) -> str:
        """``"ok"``, or the failed checks' messages joined by ``"; "``."""
        return "; ".join(f.message for f in self.failed_checks) or "ok"

    def failed(self, check: VerdictCheck) -> FailedCheck | None:
        """The failure record of ``check``, or ``None`` if it passed."""
        return next((f for f in self.failed_checks if f.check is check), None)


#: The verdict of a fit that was not assessed (not trustworthy).
NOT_ASSESSED = Verdict((FailedCheck(VerdictCheck.NOT_ASSESSED, math.nan, math.nan),))


def parse_reason(reason: str) -> tuple[VerdictCheck, ...]:
    """The failed checks named in a :attr:`Verdict.reason` string (e.g. read from JSON).

    Parameters
    ----------
    reason : str
        ``"ok"`` or messages joined by ``"; "``, as :attr:`Verdict.reason` writes them.

    Returns
    -------
    tuple of VerdictCheck
        In the order they appear (empty for ``"ok"``).

    Raises
    ------
    ValueError
        A clause that is no check's message.
    """
    if reason == "ok":
        return ()
    found = []
    for clause in reason.split("; "):
        match = [c for c, prefix in _PREFIX.items() if clause.startswith(prefix)]
        if not match:
            raise ValueError(f"not a verdict message: {clause!r}")
        found.append(match[0])
    return tuple(found)
