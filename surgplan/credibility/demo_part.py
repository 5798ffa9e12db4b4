"""The credibility part of ``surgplan demo``: a short report on the phantom's twin-ready case.

The demo's twin case (``intraop/case``, its reduced model already built) gets the default
liver-resection context with a smaller study so the part takes a few tens of seconds: two
virtual patients, one noise level, :data:`DEMO_TRIALS` trials, the quick verification levels and
a refined mesh capped at :data:`DEMO_MAX_TETS` tetrahedra. The verdict says what this small
study lacks (e.g. trials) for the default risk level.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from surgplan.credibility.context import load_context
from surgplan.credibility.run import CredibilityReport, build_credibility

__all__ = ["DEMO_MAX_TETS", "DEMO_TRIALS", "demo_credibility"]

DEMO_TRIALS = 4
DEMO_MAX_TETS = 60_000


def demo_credibility(
    case_dir: str | Path, out_dir: str | Path, step: Callable[[str], None] | None = None
) -> CredibilityReport:
    """The demo's credibility report of ``case_dir`` in ``out_dir`` (module docstring)."""
    ctx = load_context()
    ctx = dataclasses.replace(
        ctx, validation=ctx.validation | {"patients": 2, "noise_mm": [1.0]},
        source="default (liver resection guidance), demo study size",
    )  # fmt: skip
    say = step or (lambda text: None)
    return build_credibility(
        case_dir, out_dir, context=ctx, trials=DEMO_TRIALS, quick_verify=True,
        max_refined_tets=DEMO_MAX_TETS, step=lambda text: say(f"credibility: {text}"),
    )  # fmt: skip
