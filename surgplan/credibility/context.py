"""The question of interest and context of use (ASME V&V 40), read from a small TOML file.

The file says what the twin predicts, how the prediction is used, the model risk that sets
how much evidence is required, and how the surgeon plans to acquire surface points::

    question = "Where is the tumour during surgery, after retraction and repositioning?"
    quantity = "tumour_centroid"            # the twin's target the question is about
    use = "Guides the resection plane; the surgeon confirms the margin by ultrasound."
    decision = "where to cut"

    [risk]                                  # V&V 40: model influence x decision consequence
    model_influence = "medium"              # low | medium | high
    decision_consequence = "medium"         # low | medium | high

    [plan]                                  # the acquisition the surgeon plans
    sensor = "swabs"                        # swabs | scan
    anterior_coverage = 0.25                # fraction of the anterior surface acquired
    noise_mm = 1.0                          # tracked-pointer noise, per axis, mm
    n_points = 300
    expected_max_displacement_mm = 20.0     # largest organ motion expected, mm

    [validation]                            # the virtual-patient study's grid
    anterior_coverage = [0.2, 0.3]
    noise_mm = [1.0, 2.0]
    patients = 3

    [requirements]                          # optional: override the level's requirements
    tre_mm = 5.0

Every field is checked (pydantic, ``extra="forbid"``); an error names the field and what was
expected. The model risk level is ``1 + influence + consequence`` (each 0, 1, 2 for low,
medium, high): V&V 40's 3 x 3 matrix with five risk levels along its diagonals.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from registration.study.spec import describe_error, field_path
from surgplan.credibility.errors import ContextError

__all__ = [
    "DEFAULT_CONTEXT_TOML",
    "LEVELS",
    "ContextOfUse",
    "Requirements",
    "load_context",
    "parse_context",
]

Level = Literal["low", "medium", "high"]
_INDEX = {"low": 0, "medium": 1, "high": 2}

#: The shipped default: guidance of a liver resection.
DEFAULT_CONTEXT_TOML = """\
question = "Where is the tumour during surgery, once the liver has been retracted and the \
table tilted?"
quantity = "tumour_centroid"
use = "The twin's tumour position and its 95 % radius are overlaid on the laparoscopic view \
to plan the resection plane; the surgeon confirms the margin by intraoperative ultrasound \
before cutting."
decision = "where to place the resection plane around the tumour"

[risk]
model_influence = "medium"
decision_consequence = "medium"

[plan]
sensor = "swabs"
anterior_coverage = 0.25
noise_mm = 1.0
n_points = 300
expected_max_displacement_mm = 20.0

[validation]
anterior_coverage = [0.2, 0.3]
noise_mm = [1.0, 2.0]
patients = 3
"""


@dataclass(frozen=True)
class Requirements:
    """Evidence a model risk level requires (lengths mm, fractions 0-1).

    Attributes
    ----------
    code_verification_orders : bool
        Observed convergence orders must reach the expected ones (not only small errors).
    discretisation_error_mm : float
        Largest discretisation error of the tumour displacement on the case mesh, mm.
    tre_mm : float
        Largest mean tumour TRE of the deformable twin over the trusted validation trials.
    calibration_lower : float
        Smallest lower 95 % confidence bound of the fraction of tumour errors inside radius95.
    min_trials : int
        Fewest validation trials.
    applicability : bool
        The case must lie inside the validated range (otherwise a warning only).
    real_data : bool
        Validation on real data with a known answer is required.
    """

    code_verification_orders: bool
    discretisation_error_mm: float
    tre_mm: float
    calibration_lower: float
    min_trials: int
    applicability: bool
    real_data: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


#: Requirements of each model risk level, 1 (lowest) to 5.
LEVELS: dict[int, Requirements] = {
    1: Requirements(False, 3.0, 10.0, 0.50, 5, False, False),
    2: Requirements(False, 2.0, 7.5, 0.70, 10, True, False),
    3: Requirements(True, 1.0, 5.0, 0.75, 20, True, False),
    4: Requirements(True, 0.5, 4.0, 0.85, 40, True, False),
    5: Requirements(True, 0.5, 3.0, 0.90, 80, True, True),
}


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Risk(_Schema):
    model_influence: Level = "medium"
    decision_consequence: Level = "medium"


class _Plan(_Schema):
    sensor: Literal["swabs", "scan"] = "swabs"
    anterior_coverage: Annotated[float, Field(gt=0.0, le=1.0)] = 0.25
    noise_mm: Annotated[float, Field(gt=0.0, le=20.0)] = 1.0
    n_points: Annotated[int, Field(ge=6, le=100_000)] = 300
    expected_max_displacement_mm: Annotated[float, Field(ge=0.0, le=200.0)] = 20.0


class _Validation(_Schema):
    anterior_coverage: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        default_factory=lambda: [0.2, 0.3], min_length=1
    )
    noise_mm: list[Annotated[float, Field(gt=0.0, le=20.0)]] = Field(
        default_factory=lambda: [1.0, 2.0], min_length=1
    )
    patients: Annotated[int, Field(ge=1, le=50)] = 3
    rotation_deg: Annotated[float, Field(ge=0.0, le=180.0)] = 180.0
    translation_mm: Annotated[float, Field(ge=0.0, le=1000.0)] = 50.0
    seed: Annotated[int, Field(ge=0)] = 0


class _Overrides(_Schema):
    code_verification_orders: bool | None = None
    discretisation_error_mm: Annotated[float, Field(gt=0.0)] | None = None
    tre_mm: Annotated[float, Field(gt=0.0)] | None = None
    calibration_lower: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    min_trials: Annotated[int, Field(ge=1)] | None = None
    applicability: bool | None = None
    real_data: bool | None = None


class _File(_Schema):
    question: Annotated[str, Field(min_length=1)]
    quantity: Annotated[str, Field(min_length=1)] = "tumour_centroid"
    use: Annotated[str, Field(min_length=1)]
    decision: Annotated[str, Field(min_length=1)]
    risk: _Risk = _Risk()
    plan: _Plan = _Plan()
    validation: _Validation = _Validation()
    requirements: _Overrides = _Overrides()

    @model_validator(mode="after")
    def _grid_sorted(self) -> _File:
        for name in ("anterior_coverage", "noise_mm"):
            values = getattr(self.validation, name)
            if len(set(values)) != len(values):
                raise ValueError(f"validation.{name} has repeated values {values}")
        return self


@dataclass(frozen=True)
class ContextOfUse:
    """A validated context of use (module docstring); lengths mm.

    Attributes
    ----------
    question, quantity, use, decision : str
        The question of interest, the twin target it concerns, how the prediction is used and
        the decision it informs.
    model_influence, decision_consequence : str
        ``"low"``, ``"medium"`` or ``"high"``.
    plan : dict
        The planned acquisition: sensor, anterior coverage, noise (mm), points, expected
        largest displacement (mm).
    validation : dict
        The study grid: anterior coverages, noises (mm), patients, pose range, seed.
    requirements : Requirements
        What the risk level requires, with the file's overrides applied.
    source : str
        The file read, or ``"default (liver resection guidance)"``.
    """

    question: str
    quantity: str
    use: str
    decision: str
    model_influence: str
    decision_consequence: str
    plan: dict[str, Any]
    validation: dict[str, Any]
    requirements: Requirements
    source: str

    @property
    def risk_level(self) -> int:
        """Model risk, 1 (lowest) to 5: ``1 + influence + consequence``."""
        return 1 + _INDEX[self.model_influence] + _INDEX[self.decision_consequence]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with the risk level)."""
        out = asdict(self)
        out["risk_level"] = self.risk_level
        return out


def parse_context(data: Any, *, source: str) -> ContextOfUse:
    """Validate a context-of-use mapping (module docstring).

    Raises
    ------
    ContextError
        The first invalid field, as ``"<source>: field '<path>': <what was expected>"``.
    """
    if not isinstance(data, dict):
        raise ContextError(f"{source}: expected a table at the top level")
    try:
        raw = _File.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"]) or "(top level)"
        what = describe_error(first, file_kind="context of use", detailed=False)
        raise ContextError(f"{source}: field '{where}': {what}") from None
    level = 1 + _INDEX[raw.risk.model_influence] + _INDEX[raw.risk.decision_consequence]
    overrides = {k: v for k, v in raw.requirements.model_dump().items() if v is not None}
    required = Requirements(**(asdict(LEVELS[level]) | overrides))
    return ContextOfUse(
        question=raw.question,
        quantity=raw.quantity,
        use=raw.use,
        decision=raw.decision,
        model_influence=raw.risk.model_influence,
        decision_consequence=raw.risk.decision_consequence,
        plan=raw.plan.model_dump(),
        validation=raw.validation.model_dump(),
        requirements=required,
        source=source,
    )


def load_context(path: str | Path | None = None) -> ContextOfUse:
    """Read a context-of-use TOML file, or the shipped default when ``path`` is ``None``.

    Raises
    ------
    ContextError
        Missing file, TOML syntax error, or an invalid or unknown field.
    """
    if path is None:
        return parse_context(
            tomllib.loads(DEFAULT_CONTEXT_TOML), source="default (liver resection guidance)"
        )
    p = Path(path)
    if not p.is_file():
        raise ContextError(f"context-of-use file not found: {p}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ContextError(f"{p}: not a valid TOML file: {exc}") from None
    return parse_context(data, source=str(p))
