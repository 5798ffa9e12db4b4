"""The twin's reliability verdict: registration's checks on the deformed fit, and more.

Checks, each recorded with its measured value and threshold:

- the checks of :func:`registration.reliability.assess` on the final residuals against the
  *deformed* surface (too few points, inlier fraction, inlier RMS against the noise,
  systematic residual, pose conditioning);
- implausible deformation: the Mahalanobis distance ``d^2 = sum (a_m / prior_std_m)^2`` of
  the amplitudes against their prior beyond the ``chi2_k`` 99.9 % quantile (a wrong organ
  or a mirrored one is "explained" only by amplitudes the model never produces);
- the rigid-versus-deformable guard: when the rigid fit that started the twin failed for a
  shape reason (low inlier fraction, high RMS, systematic residual, ambiguity: wrong organ,
  mirrored organ, wrong local minimum), the twin inherits those failures, marked as the rigid
  fit's, unless its own deformed residuals are within noise *and* the deformation is
  plausible. Deformation may explain a shape mismatch; it must not make a wrong fit look good.
  Explaining it means the deformed fit leaves no more outliers than the observation model
  itself produces: its inlier count must reach the 0.1 % binomial quantile of ``n`` points
  each inside the inlier threshold (``inlier_sigma`` effective noise standard deviations)
  with the Gaussian probability ``erf(inlier_sigma / sqrt 2)`` (:func:`explained_inlier_floor`,
  the same 99.9 % level as the plausibility check). A deformed fit that keeps 13 % of the
  points off the surface has not explained why the rigid fit missed them (a mirrored organ
  or a wrong minimum that deformation half-fits), whatever its residuals on the rest.

The noise of the fit checks is the noise a *correct* deformable fit leaves: the sensor's plus
the reduced model's surface discrepancy (:mod:`surgplan.twin.noise`): the effective noise for
the inlier and RMS checks, and for the systematic-residual check the noise whose
neighbour-average matches a correct fit's, :func:`with_systematic_noise`. The discrepancy is
a few tenths of a millimetre: a wrong organ, a mirrored one or a wrong minimum leaves
residuals of millimetres, and the implausible-deformation and rigid-fit checks do not depend
on the noise at all.
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import bdtr, bdtrik
from scipy.stats import chi2

from registration import FailedCheck, ReliabilityCriteria, Verdict, VerdictCheck

__all__ = [
    "TwinCheck",
    "TwinFailedCheck",
    "TwinVerdict",
    "deformation_check",
    "combine_verdicts",
    "SHAPE_CHECKS",
    "PLAUSIBLE_QUANTILE",
    "with_systematic_noise",
    "explained_inlier_floor",
]

#: Quantile of ``chi2_k`` beyond which the amplitudes are implausible.
PLAUSIBLE_QUANTILE = 0.999


class TwinCheck(enum.StrEnum):
    """Checks of the twin's verdict: registration's (same values) and the twin's own."""

    TOO_FEW_POINTS = VerdictCheck.TOO_FEW_POINTS.value
    LOW_INLIER_FRACTION = VerdictCheck.LOW_INLIER_FRACTION.value
    HIGH_INLIER_RMS = VerdictCheck.HIGH_INLIER_RMS.value
    SYSTEMATIC_RESIDUAL = VerdictCheck.SYSTEMATIC_RESIDUAL.value
    POORLY_CONSTRAINED = VerdictCheck.POORLY_CONSTRAINED.value
    AMBIGUOUS = VerdictCheck.AMBIGUOUS.value
    NOT_ASSESSED = VerdictCheck.NOT_ASSESSED.value
    #: Amplitudes' Mahalanobis distance (squared) beyond the chi2_k 99.9 % quantile.
    IMPLAUSIBLE_DEFORMATION = "implausible_deformation"


#: Registration checks that mean "the points do not have the model's shape".
SHAPE_CHECKS = frozenset(
    {
        TwinCheck.LOW_INLIER_FRACTION,
        TwinCheck.HIGH_INLIER_RMS,
        TwinCheck.SYSTEMATIC_RESIDUAL,
        TwinCheck.AMBIGUOUS,
    }
)


@dataclass(frozen=True)
class TwinFailedCheck:
    """One failed check with its measured value and threshold.

    Attributes
    ----------
    check : TwinCheck
        Which check failed.
    value, threshold : float
        As :class:`registration.FailedCheck` (``IMPLAUSIBLE_DEFORMATION``: the squared
        Mahalanobis distance and the chi2 quantile, dimensionless).
    noise_mm : float
        Noise the mm thresholds derive from (``nan`` where unused), mm.
    stage : str
        ``"twin"`` (the final deformed fit) or ``"rigid"`` (inherited from the rigid fit).
    """

    check: TwinCheck
    value: float
    threshold: float
    noise_mm: float = math.nan
    stage: str = "twin"

    @property
    def message(self) -> str:
        """Human-readable account (registration's wording for its checks)."""
        if self.check is TwinCheck.IMPLAUSIBLE_DEFORMATION:
            text = (
                f"implausible deformation (amplitude Mahalanobis distance^2 {self.value:.1f} > "
                f"{self.threshold:.1f}): wrong or mirrored organ, or a wrong minimum"
            )
        else:
            fc = FailedCheck(VerdictCheck(self.check.value), self.value, self.threshold,
                             self.noise_mm)  # fmt: skip
            text = fc.message
        return f"rigid fit: {text}" if self.stage == "rigid" else text

    @classmethod
    def from_registration(cls, failed: FailedCheck, stage: str) -> TwinFailedCheck:
        """Wrap a registration :class:`~registration.FailedCheck`."""
        return cls(TwinCheck(failed.check.value), failed.value, failed.threshold,
                   failed.noise_mm, stage)  # fmt: skip


@dataclass(frozen=True)
class TwinVerdict:
    """Outcome of the twin's checks (empty: trustworthy)."""

    failed_checks: tuple[TwinFailedCheck, ...] = ()

    @property
    def trustworthy(self) -> bool:
        """Whether every check passed."""
        return not self.failed_checks

    @property
    def checks(self) -> tuple[TwinCheck, ...]:
        """The failed checks' kinds, in order."""
        return tuple(f.check for f in self.failed_checks)

    @property
    def reason(self) -> str:
        """``"ok"``, or the failed checks' messages joined by ``"; "``."""
        return "; ".join(f.message for f in self.failed_checks) or "ok"


@functools.lru_cache(maxsize=64)
def _chi2_quantile(quantile: float, k: int) -> float:
    """``chi2_k`` quantile (cached: ``scipy.stats`` costs about 0.1 ms a call)."""
    return float(chi2.ppf(quantile, k))


def deformation_check(
    amplitudes: np.ndarray, prior_std: np.ndarray, quantile: float = PLAUSIBLE_QUANTILE
) -> TwinFailedCheck | None:
    """The implausible-deformation failure, or ``None`` (also for ``k = 0``)."""
    k = len(amplitudes)
    if k == 0:
        return None
    d2 = float(np.sum((np.asarray(amplitudes) / np.asarray(prior_std)) ** 2))
    limit = _chi2_quantile(quantile, k)
    if d2 <= limit:
        return None
    return TwinFailedCheck(TwinCheck.IMPLAUSIBLE_DEFORMATION, d2, limit)


@functools.lru_cache(maxsize=256)
def explained_inlier_floor(
    n_points: int, inlier_sigma: float = 3.0, quantile: float = PLAUSIBLE_QUANTILE
) -> float:
    """Smallest inlier fraction of ``n_points`` consistent with Gaussian residuals alone."""
    if n_points <= 0:
        return 0.0
    p0 = math.erf(inlier_sigma / math.sqrt(2.0))
    return _binomial_quantile(1.0 - quantile, n_points, p0) / n_points


def _binomial_quantile(q: float, n: int, p: float) -> int:
    """Smallest ``k`` with ``P(Binomial(n, p) <= k) >= q``, as ``scipy.stats.binom.ppf``.

    From the continuous inverse ``bdtrik`` and the CDF ``bdtr`` (``scipy.special`` ufuncs,
    microseconds, where ``binom.ppf`` costs about 0.2 ms: the window grows by a point with
    every pointer update, so the cache above misses).
    """
    k = min(max(math.floor(float(bdtrik(q, n, p))), 0), n)
    while k > 0 and bdtr(k - 1, n, p) >= q:
        k -= 1
    while k < n and bdtr(k, n, p) < q:
        k += 1
    return k


def combine_verdicts(
    fit: Verdict,
    deformation: TwinFailedCheck | None,
    rigid: Verdict | None,
    inlier_fraction: float | None = None,
    n_points: int = 0,
    inlier_sigma: float = 3.0,
    extra: tuple[TwinFailedCheck, ...] = (),
) -> TwinVerdict:
    """The twin's verdict from its own fit checks, the deformation check and the rigid fit's.

    Parameters
    ----------
    fit : registration.Verdict
        Registration's checks on the final residuals against the deformed surface.
    deformation : TwinFailedCheck or None
        :func:`deformation_check`'s outcome.
    rigid : registration.Verdict or None
        Verdict of the rigid fit that started the twin (``None``: started from a given pose).
    inlier_fraction, n_points, inlier_sigma : optional
        The deformed fit's inlier fraction over ``n_points`` and the inlier threshold in
        effective noise standard deviations: the rigid fit's shape failures are cleared only
        when it reaches :func:`explained_inlier_floor` (``None``: not required).
    extra : tuple of TwinFailedCheck
        The twin's own failures found elsewhere (an ambiguous start), kept as they are.
    """
    own = [TwinFailedCheck.from_registration(f, "twin") for f in fit.failed_checks]
    own += list(extra)
    if deformation is not None:
        own.append(deformation)
    if rigid is not None:
        shape_ok = not any(f.check in SHAPE_CHECKS for f in own)
        if inlier_fraction is not None and n_points > 0:
            shape_ok = shape_ok and inlier_fraction >= explained_inlier_floor(
                int(n_points), float(inlier_sigma)
            )
        if not (shape_ok and deformation is None):
            own += [
                TwinFailedCheck.from_registration(f, "rigid")
                for f in rigid.failed_checks
                if TwinCheck(f.check.value) in SHAPE_CHECKS
            ]
    return TwinVerdict(tuple(own))


def with_systematic_noise(
    fit: Verdict, noise_mm: float, criteria: ReliabilityCriteria | None = None
) -> Verdict:
    """``fit`` with its systematic-residual check judged against ``noise_mm`` instead.

    Registration's :func:`~registration.reliability.assess` takes one noise for every check;
    the twin's systematic check takes its own (:func:`surgplan.twin.noise.
    systematic_noise_mm`), never smaller than the one ``fit`` was judged with, so only a
    failure of that check can change (pass, or fail against the new threshold).
    """
    c = criteria or ReliabilityCriteria()
    limit = c.systematic_sigma * float(noise_mm) + c.systematic_floor_mm
    out = []
    for f in fit.failed_checks:
        if f.check is VerdictCheck.SYSTEMATIC_RESIDUAL:
            if f.value <= limit:
                continue
            f = FailedCheck(f.check, f.value, float(limit), float(noise_mm))
        out.append(f)
    return Verdict(tuple(out))
