"""The report's "Validation on your data": the scored acquisitions summed up per mode.

Per mode: which acquisitions the twin trusted and which it did not (with the reason); over
the trusted ones only, the mean and largest TRE at the question's target (an acquisition
without it counts the mean over its truth targets), the largest at any truth target, and how
many truth targets lie inside the predicted radius95. Untrusted acquisitions are listed with their
figures and reason, never averaged in: the twin shows nothing for them. Each acquisition is
set beside the virtual-patient study's tumour TRE at the nearest studied anterior coverage
and noise (log-ratio distance), saying whether it lies inside the studied grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from surgplan.credibility.user_validation import MODES, AcquisitionScore

__all__ = ["NONE_SUPPLIED", "UserValidation", "nearest_protocol", "summarise_user_data"]

NONE_SUPPLIED = (
    "No user validation data (a real acquisition with a known answer, e.g. fiducial truth) "
    "was supplied (--validation-data): the validation rests on the virtual patients alone."
)


@dataclass(frozen=True)
class UserValidation:
    """The user-data subsection (``validation.user_data`` of ``credibility.json``).

    Attributes
    ----------
    given : bool
        Any acquisition was supplied.
    n_acquisitions : int
        How many.
    quantity : str
        The question's target (the context's ``quantity``).
    statement : str
        What the figures are, in words.
    summary : dict
        Per mode: ``trusted`` (names), ``untrusted`` (name, reason), ``tre_mm_each`` (name ->
        headline TRE: at the question's target, else the mean over the truth targets; all
        acquisitions), ``tre_mm_trusted`` and ``max_headline_tre_mm_trusted`` (mean and
        largest headline TRE over the trusted, mm, or None), ``max_tre_mm_trusted`` (at any
        truth target), ``inside`` and ``n_targets`` (truth targets of the trusted
        acquisitions inside radius95, and their number).
    acquisitions : list of dict
        Each :class:`~surgplan.credibility.user_validation.AcquisitionScore` with its
        ``virtual_patients`` comparison.
    """

    given: bool
    n_acquisitions: int
    quantity: str
    statement: str
    summary: dict[str, Any]
    acquisitions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def nearest_protocol(
    by_protocol: list[dict[str, Any]], anterior_coverage: float, noise_mm: float
) -> dict[str, Any] | None:
    """The study's (coverage, noise) cell nearest this acquisition, and whether it is inside.

    Parameters
    ----------
    by_protocol : list of dict
        :attr:`surgplan.credibility.validation.Validation.by_protocol`.
    anterior_coverage : float
        The acquisition's anterior coverage (0-1).
    noise_mm : float
        Its noise, mm.
    """
    if not by_protocol:
        return None

    def dist(row: dict[str, Any]) -> float:
        c = max(anterior_coverage, 1e-6) / row["anterior_coverage"]
        return abs(math.log(c)) + abs(math.log(noise_mm / row["noise_mm"]))

    row = min(by_protocol, key=dist)
    covs = [r["anterior_coverage"] for r in by_protocol]
    noises = [r["noise_mm"] for r in by_protocol]
    inside = min(covs) <= anterior_coverage <= max(covs) and min(noises) <= noise_mm <= max(noises)
    out: dict[str, Any] = {"anterior_coverage": row["anterior_coverage"], "n": row["n"],
                           "noise_mm": row["noise_mm"], "inside_grid": inside}  # fmt: skip
    for mode in MODES:
        out[mode] = {"tre_mm": row[f"tre_{mode}_mm"],
                     "tre_mm_trusted": row[f"tre_{mode}_trusted_mm"]}  # fmt: skip
    return out


def _mode_summary(scores: tuple[AcquisitionScore, ...], mode: str, quantity: str) -> dict:
    trusted = [s for s in scores if s.modes[mode].trustworthy]
    each = {s.name: s.modes[mode].headline(quantity)[0] for s in scores}
    targets = [t for s in trusted for t in s.modes[mode].targets]
    return {
        "trusted": [s.name for s in trusted],
        "untrusted": [
            {"name": s.name, "reason": s.modes[mode].reason}
            for s in scores
            if not s.modes[mode].trustworthy
        ],  # fmt: skip
        "tre_mm_each": each,
        "tre_mm_trusted": float(np.mean([each[s.name] for s in trusted])) if trusted else None,
        "max_headline_tre_mm_trusted": max((each[s.name] for s in trusted), default=None),
        "max_tre_mm_trusted": max((t.tre_mm for t in targets), default=None),
        "inside": sum(t.inside for t in targets),
        "n_targets": len(targets),
    }


def _comparison(acqs: list[dict[str, Any]], summary: dict) -> str:
    """Deformable TRE on each acquisition against the study's at its nearest cell."""
    parts = []
    for a in acqs:
        vp, tre = a["virtual_patients"], summary["deformable"]["tre_mm_each"][a["name"]]
        if vp is None or vp["deformable"]["tre_mm_trusted"] is None:
            parts.append(f"{a['name']} {tre:.2f} mm vs none (no trusted virtual-patient trial)")
            continue
        where = f"coverage {vp['anterior_coverage']:g}, noise {vp['noise_mm']:g} mm" + (
            "" if vp["inside_grid"] else "; the acquisition lies outside the studied grid"
        )
        parts.append(f"{a['name']} {tre:.2f} mm vs {vp['deformable']['tre_mm_trusted']:.2f} mm"
                     f" ({where})")  # fmt: skip
    head = ("Deformable twin, your data against this report's virtual patients (tumour, "
            "trusted trials) at the nearest studied coverage and noise: ")  # fmt: skip
    return head + "; ".join(parts) + "."


def _statement(acqs: list[dict[str, Any]], summary: dict, quantity: str) -> str:
    d = summary["deformable"]
    n = len(acqs)
    text = (
        f"{n} real acquisition{'s' if n != 1 else ''} with a known answer supplied by the "
        f"user ({', '.join(a['name'] for a in acqs)}): the user's own data, not virtual "
        f"patients. The twin ran on each as surgplan register --case does, rigid and "
        f"deformable. Deformable twin trusted on {len(d['trusted'])} of {n}"
    )
    if d["tre_mm_trusted"] is not None:
        text += (f"; mean {quantity} TRE over those {d['tre_mm_trusted']:.2f} mm, "
                 f"{d['inside']}/{d['n_targets']} truth targets inside radius95")  # fmt: skip
    text += "."
    if d["untrusted"]:
        text += " Not trusted (reported, not averaged in): " + "; ".join(
            f"{u['name']}: {u['reason']}" for u in d["untrusted"]) + "."  # fmt: skip
    return f"{text} {_comparison(acqs, summary)}"


def summarise_user_data(
    scores: tuple[AcquisitionScore, ...] | list[AcquisitionScore],
    by_protocol: list[dict[str, Any]], quantity: str,
) -> UserValidation:  # fmt: skip
    """The subsection from the scored acquisitions (module docstring); none: the statement."""
    scores = tuple(scores)
    if not scores:
        return UserValidation(False, 0, quantity, NONE_SUPPLIED, {}, [])
    summary = {m: _mode_summary(scores, m, quantity) for m in MODES}
    acqs = []
    for s in scores:
        d = s.to_dict()
        d["headline_target"] = s.modes["deformable"].headline(quantity)[1]
        d["virtual_patients"] = nearest_protocol(by_protocol, s.coverage.anterior, s.noise_mm)
        acqs.append(d)
    return UserValidation(True, len(scores), quantity, _statement(acqs, summary, quantity),
                          summary, acqs)  # fmt: skip
