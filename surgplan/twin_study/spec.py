"""The virtual-patient study file: what is simulated, acquired and compared.

Example (TOML)::

    kind = "twin_virtual_patients"   # what `surgplan study` dispatches on
    name = "twin"
    seed = 0
    repeats = 5                      # acquisitions per patient, protocol value and case
    case = "liver_case"              # a case with `surgplan rom CASE` (no scenario) built
    structure = "liver"
    decoy_surface = "gallbladder.vtk"   # the "wrong_organ" case's organ
    modes = ["rigid", "deformable"]

    [patients]                       # either a saved file ...
    file = "patients.npz"            # (surgplan.virtual_patients.save_virtual_patients)
    # ... or made on the fly from the real liver models:
    # liver_models = "../shared/data/liver_models"
    # n = 10
    # seed = 0
    # edge_mm = 6.0

    [protocol]                       # every combination runs `repeats` times per patient
    sensor = ["swabs", "scan"]
    n_points = [500]
    anterior_coverage = [0.25]       # fraction of the ANTERIOR surface acquired (0.2-0.3)
    noise_mm = [1.0]
    rotation_deg = [180.0]           # true pose: orientation within this of the CT's
    translation_mm = [50.0]          # and this translation (std per axis), mm
    case = ["good", "wrong_organ", "mirrored", "outliers30", "wrong_minimum", "too_few"]

    [recommendation]                 # good swab trials: recommended vs random points
    enabled = true
    batch_points = 50
    initial_points = 100
    initial_anterior_coverage = 0.1
    max_points = 1000
    target_tre_mm = 3.0

Paths are relative to the spec file. Every field is checked (pydantic, ``extra="forbid"``):
errors name the field and what was expected.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from registration.study.spec import MAX_TRIALS, describe_error, field_path, read_study_file
from surgplan.errors import SurgplanError

__all__ = [
    "CASES",
    "KIND",
    "TwinStudySpec",
    "TwinStudySpecError",
    "expand_twin_trials",
    "load_twin_spec",
    "parse_twin_spec",
    "read_spec_data",
    "spec_kind",
]

#: The ``kind`` of a virtual-patient twin study file.
KIND = "twin_virtual_patients"
SENSORS = ("swabs", "scan")
CASES = ("good", "wrong_organ", "mirrored", "outliers30", "wrong_minimum", "too_few")
MODES = ("rigid", "deformable")
#: Keys of the protocol grid, in the order trials are expanded.
PROTOCOL_KEYS = (
    "sensor", "n_points", "anterior_coverage", "noise_mm", "rotation_deg", "translation_mm",
    "case",
)  # fmt: skip


class TwinStudySpecError(SurgplanError):
    """The twin study file is missing, unparsable, or a field has an invalid value."""


@dataclass(frozen=True)
class PatientsSpec:
    """Where the virtual patients come from: a saved ``.npz`` or the liver models."""

    file: str | None = None
    liver_models: str | None = None
    n: int = 10
    seed: int = 0
    edge_mm: float = 6.0


@dataclass(frozen=True)
class RecommendationSpec:
    """The recommendation experiment (good swab trials, deformable mode)."""

    enabled: bool = True
    batch_points: int = 50
    initial_points: int = 100
    initial_anterior_coverage: float = 0.1
    max_points: int = 1000
    target_tre_mm: float = 3.0


@dataclass(frozen=True)
class TwinStudySpec:
    """A validated virtual-patient twin study."""

    name: str
    seed: int
    repeats: int
    case: str
    structure: str
    decoy_surface: str | None
    modes: tuple[str, ...]
    patients: PatientsSpec
    protocol: dict[str, tuple]
    recommendation: RecommendationSpec
    kind: str = KIND
    source: str = ""

    def fingerprint(self) -> str:
        """Hash of everything that determines the table (not the file path)."""
        d = asdict(self)
        d.pop("source")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _resolve(value: str | None, info: ValidationInfo, *, folder: bool = False) -> str | None:
    if value is None:
        return None
    if not value:
        raise ValueError("expected a path, got ''")
    p = Path(value)
    p = p if p.is_absolute() else Path(info.context["base_dir"]) / p
    if not (p.is_dir() if folder else p.is_file()):
        raise ValueError(f"{'folder' if folder else 'file'} not found: {p}")
    return str(p.resolve())


class _Patients(_Schema):
    file: str | None = None
    liver_models: str | None = None
    n: Annotated[int, Field(ge=1, le=10_000)] = 10
    seed: Annotated[int, Field(ge=0)] = 0
    edge_mm: Annotated[float, Field(gt=1.0, le=30.0)] = 6.0

    @field_validator("file")
    @classmethod
    def _file(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _resolve(v, info)

    @field_validator("liver_models")
    @classmethod
    def _models(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _resolve(v, info, folder=True)

    @model_validator(mode="after")
    def _one_source(self) -> _Patients:
        if (self.file is None) == (self.liver_models is None):
            raise ValueError("give exactly one of 'file' (a saved .npz) or 'liver_models'")
        return self


def _values(default: list[Any]) -> Any:
    return Field(default_factory=lambda: list(default), min_length=1)


class _Protocol(_Schema):
    sensor: list[Literal[SENSORS]] = _values(["swabs"])
    n_points: list[Annotated[int, Field(ge=6, le=1_000_000)]] = _values([500])
    anterior_coverage: list[Annotated[float, Field(gt=0.0, le=1.0)]] = _values([0.25])
    noise_mm: list[Annotated[float, Field(gt=0.0, le=20.0)]] = _values([1.0])
    rotation_deg: list[Annotated[float, Field(ge=0.0, le=180.0)]] = _values([180.0])
    translation_mm: list[Annotated[float, Field(ge=0.0, le=1000.0)]] = _values([50.0])
    case: list[Literal[CASES]] = _values(["good"])

    @field_validator("*", mode="before")
    @classmethod
    def _scalar_is_one_value(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]


class _Recommendation(_Schema):
    enabled: bool = True
    batch_points: Annotated[int, Field(ge=6, le=10_000)] = 50
    initial_points: Annotated[int, Field(ge=6, le=100_000)] = 100
    initial_anterior_coverage: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    max_points: Annotated[int, Field(ge=6, le=1_000_000)] = 1000
    target_tre_mm: Annotated[float, Field(gt=0.0, le=100.0)] = 3.0


class _StudyFile(_Schema):
    kind: Literal[KIND]
    name: str = "twin"
    seed: Annotated[int, Field(ge=0)] = 0
    repeats: Annotated[int, Field(ge=1, le=MAX_TRIALS)] = 1
    case: str
    structure: str = "liver"
    decoy_surface: str | None = None
    modes: list[Literal[MODES]] = Field(default_factory=lambda: list(MODES), min_length=1)
    patients: _Patients
    protocol: _Protocol = _Protocol()
    recommendation: _Recommendation = _Recommendation()

    @field_validator("case")
    @classmethod
    def _case(cls, v: str, info: ValidationInfo) -> str:
        p = _resolve(v, info, folder=True)
        if not (Path(p) / "case.json").is_file():
            raise ValueError(f"not a surgplan case (no case.json): {p}")
        return p

    @field_validator("decoy_surface")
    @classmethod
    def _decoy(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _resolve(v, info)


def parse_twin_spec(data: Any, *, base_dir: Path, source: str = "<spec>") -> TwinStudySpec:
    """Validate a twin study dictionary; paths are relative to ``base_dir``.

    Raises
    ------
    TwinStudySpecError
        The first invalid field, as ``"<source>: field '<path>': <what was expected>"``.
    """
    if not isinstance(data, dict):
        raise TwinStudySpecError(f"{source}: expected a table/mapping at the top level")
    try:
        raw = _StudyFile.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TwinStudySpecError(
            f"{source}: field '{field_path(first['loc'])}': "
            f"{describe_error(first, file_kind='twin study', detailed=False)}"
        ) from None
    if "wrong_organ" in raw.protocol.case and raw.decoy_surface is None:
        raise TwinStudySpecError(f"{source}: field 'decoy_surface': required by case 'wrong_organ'")
    per_patient = raw.repeats * math.prod(len(getattr(raw.protocol, k)) for k in PROTOCOL_KEYS)
    n_patients = raw.patients.n if raw.patients.liver_models is not None else 1
    _require_trial_count(per_patient * n_patients, source)
    return TwinStudySpec(
        name=raw.name,
        seed=raw.seed,
        repeats=raw.repeats,
        case=raw.case,
        structure=raw.structure,
        decoy_surface=raw.decoy_surface,
        modes=tuple(dict.fromkeys(raw.modes)),
        patients=PatientsSpec(**raw.patients.model_dump()),
        protocol={k: tuple(getattr(raw.protocol, k)) for k in PROTOCOL_KEYS},
        recommendation=RecommendationSpec(**raw.recommendation.model_dump()),
        source=source,
    )


def _require_trial_count(n_trials: int, source: str) -> None:
    """Refuse, before any work, a study of more than :data:`MAX_TRIALS` trials."""
    if n_trials > MAX_TRIALS:
        raise TwinStudySpecError(
            f"{source}: field 'repeats': the study would run {n_trials:,} trials (patients x "
            f"protocol combinations x repeats); at most {MAX_TRIALS:,} are run in one study"
        )


def read_spec_data(path: str | Path) -> dict[str, Any]:
    """Parse a study file (``.toml``, ``.yaml``/``.yml``, ``.json``) into a dictionary.

    Raises
    ------
    TwinStudySpecError
        Missing file or parse error.
    """
    return read_study_file(path, error=TwinStudySpecError)


def spec_kind(path: str | Path) -> str:
    """The study kind of a file: its ``kind`` field, ``"registration"`` when absent."""
    data = read_spec_data(path)
    kind = data.get("kind", "registration") if isinstance(data, dict) else "registration"
    if kind not in ("registration", KIND):
        raise TwinStudySpecError(
            f"{path}: field 'kind': expected 'registration' or {KIND!r}, got {kind!r}"
        )
    return str(kind)


def load_twin_spec(path: str | Path) -> TwinStudySpec:
    """Read and validate a twin study file (module docstring)."""
    p = Path(path)
    return parse_twin_spec(read_spec_data(p), base_dir=p.parent, source=str(p))


def expand_twin_trials(spec: TwinStudySpec) -> list[dict]:
    """All trials in a fixed order: patients x protocol grid x repeats (``trial_id`` = index).

    The number of patients is that of the spec's source (``n``, or the saved file's count,
    read here).
    """
    from surgplan.twin_study.trial import patients_for

    names = [p.name for p in patients_for(spec.patients)]
    keys = list(PROTOCOL_KEYS)
    per_patient = spec.repeats * math.prod(len(spec.protocol[k]) for k in keys)
    _require_trial_count(per_patient * len(names), spec.source)
    trials = []
    for pi, name in enumerate(names):
        for combo in itertools.product(*(spec.protocol[k] for k in keys)):
            for rep in range(spec.repeats):
                trials.append({
                    "trial_id": len(trials), "patient_index": pi, "patient": name,
                    **dict(zip(keys, combo, strict=True)), "repeat": rep,
                })  # fmt: skip
    return trials
