"""Credibility of the twin for one case, in the manner of ASME V&V 40.

:func:`build_credibility` gathers, for a twin-ready case and a context of use
(:func:`load_context`, a small TOML with a liver-resection default):

- **code verification** (:mod:`~surgplan.credibility.code_verification`): ``surgplan verify``'s
  table against the expected convergence orders;
- **calculation verification** (:mod:`~surgplan.credibility.calculation`): the default load on
  the case mesh and two refinements, Richardson discretisation errors, mesh quality;
- **validation** (:mod:`~surgplan.credibility.validation`): a virtual-patient study of the
  case's twin, rigid and deformable, by coverage and noise, with the literature anchor;
- **uncertainty quantification** (:mod:`~surgplan.credibility.uq`): radius95 calibration with
  confidence intervals, and the shares of state, measurement and model doubt;
- **applicability** (:mod:`~surgplan.credibility.applicability`) and the **verdict**
  (:mod:`~surgplan.credibility.verdict`) against what the model risk requires;

and writes ``credibility.html`` (pictures embedded and beside it) and ``credibility.json``.
"""

from surgplan.credibility.context import ContextOfUse, Requirements, load_context
from surgplan.credibility.errors import ContextError, CredibilityError
from surgplan.credibility.run import DEFAULT_TRIALS, CredibilityReport, build_credibility
from surgplan.credibility.sections import credibility_sections

__all__ = [
    "DEFAULT_TRIALS",
    "ContextError",
    "ContextOfUse",
    "CredibilityError",
    "CredibilityReport",
    "Requirements",
    "build_credibility",
    "credibility_sections",
    "load_context",
]
