"""Study specification: parsing and validation of the TOML/YAML study file.

Example (TOML)::

    name = "liver swabs"
    seed = 1234
    repeats = 10

    [[models]]
    name = "liver"
    surface = "liver.vtk"                  # relative to the spec file
    decoy_surface = "gallbladder.vtk"      # optional: the "wrong organ" case
    targets = [ { name = "tumour", surface = "liver_tumours.vtk" },   # centroid of a surface
                { name = "p1", point_mm = [0.0, -200.0, -280.0] } ]

    [protocol]                             # every combination is run `repeats` times
    sensor = ["swabs"]                     # swabs | scan
    n_points = [250, 1000]
    coverage = [0.1, 0.3]
    noise_mm = [1.0]
    outlier_fraction = [0.0]
    rotation_deg = [180.0]                 # start-pose orientation error; 180: unknown pose
    translation_mm = [50.0]                # start-pose translation error (std per axis)
    case = ["good"]                        # good | wrong_organ | mirrored | too_few | planar
                                           # | outliers30 | wrong_minimum
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
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

from registration.errors import RegistrationError

__all__ = [
    "StudySpecError",
    "TargetSpec",
    "ModelSpec",
    "StudySpec",
    "load_spec",
    "expand_trials",
    "read_study_file",
    "field_path",
    "describe_error",
]

SENSORS = ("swabs", "scan")
CASES = ("good", "wrong_organ", "mirrored", "too_few", "planar", "outliers30", "wrong_minimum")
PROTOCOL_DEFAULTS: dict[str, list[Any]] = {
    "sensor": ["swabs"],
    "n_points": [500],
    "coverage": [0.3],
    "noise_mm": [1.0],
    "outlier_fraction": [0.0],
    "rotation_deg": [180.0],
    "translation_mm": [50.0],
    "case": ["good"],
}
#: Physical ranges of the protocol values (beyond them no acquisition is plausible).
MAX_POINTS = 1_000_000
MAX_NOISE_MM = 20.0
MAX_TRANSLATION_MM = 1000.0
#: Most trials a study may expand to (each is one registration; the table holds one row each).
MAX_TRIALS = 200_000
#: Most simulated points summed over all trials (the work of the whole study): 1e8 points is
#: about an hour of registration on a few workers. (A trial's memory is bounded by
#: :data:`MAX_POINTS`: a worker peaked at about 400 bytes per point, 0.4 GB for 1e6 points.)
MAX_TOTAL_POINTS = 100_000_000


class StudySpecError(RegistrationError):
    """The study file is missing, unparsable, or a field has an invalid value."""


@dataclass(frozen=True)
class TargetSpec:
    """A target: a point (mm, model space) or the centroid of a surface file."""

    name: str
    point_mm: tuple[float, float, float] | None = None
    surface: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A model surface with its targets and an optional decoy (wrong-organ) surface."""

    name: str
    surface: str
    targets: tuple[TargetSpec, ...]
    decoy_surface: str | None = None


@dataclass(frozen=True)
class StudySpec:
    """A validated study: models, protocol grid, repeats and seed."""

    name: str
    seed: int
    repeats: int
    models: tuple[ModelSpec, ...]
    protocol: dict[str, tuple]
    source: str = ""

    def fingerprint(self) -> str:
        """Hash of everything that determines the table (not the file path)."""
        d = asdict(self)
        d.pop("source")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# -- The file's schema (pydantic): what a study file may say, with types and ranges. -----------


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _existing_file(value: str, info: ValidationInfo) -> str:
    """A path relative to the spec file's folder (``context["base_dir"]``), resolved."""
    if not value:
        raise ValueError("expected a file path, got ''")
    p = Path(value)
    p = p if p.is_absolute() else Path(info.context["base_dir"]) / p
    if not p.is_file():
        raise ValueError(f"file not found: {p}")
    return str(p.resolve())


class _Target(_Schema):
    name: str
    point_mm: Annotated[list[float], Field(min_length=3, max_length=3)] | None = None
    surface: str | None = None

    _surface = field_validator("surface")(_existing_file)

    @model_validator(mode="after")
    def _one_position(self) -> _Target:
        if (self.point_mm is None) == (self.surface is None):
            raise ValueError("give exactly one of 'point_mm' or 'surface'")
        return self


class _Model(_Schema):
    name: str | None = None
    surface: str
    decoy_surface: str | None = None
    targets: list[_Target] = []

    _surfaces = field_validator("surface", "decoy_surface")(_existing_file)

    @model_validator(mode="after")
    def _unique_targets(self) -> _Model:
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique, got {names}")
        return self


def _values(default: list[Any]) -> Any:
    """A non-empty list of protocol values, ``default`` when the key is absent."""
    return Field(default_factory=lambda: list(default), min_length=1)


class _Protocol(_Schema):
    """Every combination of these values is run ``repeats`` times (a scalar is one value)."""

    sensor: list[Literal[SENSORS]] = _values(PROTOCOL_DEFAULTS["sensor"])
    n_points: list[Annotated[int, Field(ge=6, le=MAX_POINTS)]] = _values(
        PROTOCOL_DEFAULTS["n_points"]
    )
    coverage: list[Annotated[float, Field(gt=0.0, le=1.0)]] = _values(PROTOCOL_DEFAULTS["coverage"])
    noise_mm: list[Annotated[float, Field(gt=0.0, le=MAX_NOISE_MM)]] = _values(
        PROTOCOL_DEFAULTS["noise_mm"]
    )
    outlier_fraction: list[Annotated[float, Field(ge=0.0, lt=1.0)]] = _values(
        PROTOCOL_DEFAULTS["outlier_fraction"]
    )
    rotation_deg: list[Annotated[float, Field(ge=0.0, le=180.0)]] = _values(
        PROTOCOL_DEFAULTS["rotation_deg"]
    )
    translation_mm: list[Annotated[float, Field(ge=0.0, le=MAX_TRANSLATION_MM)]] = _values(
        PROTOCOL_DEFAULTS["translation_mm"]
    )
    case: list[Literal[CASES]] = _values(PROTOCOL_DEFAULTS["case"])

    @field_validator("*", mode="before")
    @classmethod
    def _scalar_is_one_value(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]


class _StudyFile(_Schema):
    name: str = "study"
    seed: Annotated[int, Field(ge=0)] = 0
    repeats: Annotated[int, Field(ge=1)] = 1
    models: Annotated[list[_Model], Field(min_length=1)]
    protocol: _Protocol = _Protocol()

    @model_validator(mode="after")
    def _bounded_work(self) -> _StudyFile:
        combos = len(self.models) * self.repeats
        for key in PROTOCOL_DEFAULTS:
            combos *= len(getattr(self.protocol, key))
        if combos > MAX_TRIALS:
            raise ValueError(
                f"the study expands to {combos:,} trials (models x protocol values x repeats); "
                f"at most {MAX_TRIALS:,} are run in one study"
            )
        total = combos // len(self.protocol.n_points) * sum(self.protocol.n_points)
        if total > MAX_TOTAL_POINTS:
            raise ValueError(
                f"the study simulates {total:,} points in all (trials x n_points); at most "
                f"{MAX_TOTAL_POINTS:,} (fewer repeats or points: a few hundred points per trial "
                "measure accuracy)"
            )
        return self


#: Keys of the protocol grid, in the order trials are expanded.
PROTOCOL_KEYS = tuple(_Protocol.model_fields)

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted field path (``models[0].surface``)."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<top level>"


def describe_error(error: Any, *, file_kind: str = "study", detailed: bool = True) -> str:
    """One pydantic error as ``what was expected, got what``.

    ``file_kind`` names the file in the unknown-field message (``"not part of a <file_kind>
    file"``); ``detailed=False`` reports every other error as pydantic's message and the input.
    """
    kind, value = error["type"], error.get("input")
    msg = error["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return f"unknown field (a typo?); not part of a {file_kind} file"
    if kind == "missing":
        return "required field missing"
    if not detailed:
        return f"{msg}, got {value!r}"
    if kind in _RANGE_ERRORS:
        return f"value {value!r} out of range: {msg[0].lower()}{msg[1:]}"
    if kind == "value_error":
        return msg
    if kind == "value_error" and not error["loc"]:
        return msg
    if kind in ("model_type", "dict_type"):
        return f"expected a table (mapping), got {value!r}"
    return f"{msg[0].lower()}{msg[1:]}, got {value!r}"


def _err(src: str, field: str, msg: str) -> StudySpecError:
    return StudySpecError(f"{src}: field '{field}': {msg}")


def parse_spec(data: Any, *, base_dir: Path, source: str = "<spec>") -> StudySpec:
    """Validate a study dictionary (as read from TOML/YAML); paths are relative to ``base_dir``.

    Parameters
    ----------
    data : dict
        The study, as parsed from its file.
    base_dir : pathlib.Path, keyword-only
        Folder that relative surface paths start from (the spec file's folder).
    source : str, keyword-only
        Name of the file for error messages.

    Returns
    -------
    StudySpec

    Raises
    ------
    StudySpecError
        The first invalid field, as ``"<source>: field '<path>': <what was expected>"``.
    """
    if not isinstance(data, dict):
        raise StudySpecError(f"{source}: expected a table/mapping at the top level")
    try:
        raw = _StudyFile.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _err(source, field_path(first["loc"]), describe_error(first)) from None
    if "wrong_organ" in raw.protocol.case and any(m.decoy_surface is None for m in raw.models):
        raise _err(source, "models.decoy_surface", "required by case 'wrong_organ'")
    models = tuple(
        ModelSpec(
            name=m.name if m.name is not None else Path(m.surface).stem,
            surface=m.surface,
            targets=tuple(
                TargetSpec(t.name, point_mm=None if t.point_mm is None else tuple(t.point_mm))
                if t.surface is None
                else TargetSpec(t.name, surface=t.surface)
                for t in m.targets
            ),
            decoy_surface=m.decoy_surface,
        )
        for m in raw.models
    )
    return StudySpec(
        name=raw.name,
        seed=raw.seed,
        repeats=raw.repeats,
        models=models,
        protocol={k: tuple(getattr(raw.protocol, k)) for k in PROTOCOL_KEYS},
        source=source,
    )


def load_spec(path: str | Path) -> StudySpec:
    """Read a study file (``.toml``, ``.yaml``/``.yml`` or ``.json``).

    Raises
    ------
    StudySpecError
        Missing file, parse error or invalid field (the message names the field).
    """
    p = Path(path)
    return parse_spec(read_study_file(p), base_dir=p.parent, source=str(p))


def read_study_file(path: str | Path, *, error: type[Exception] = StudySpecError) -> Any:
    """Parse a study file (``.toml``, ``.yaml``/``.yml`` or ``.json``) into plain data.

    Raises
    ------
    Exception
        ``error`` (:class:`StudySpecError` by default): missing file or parse error.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise error(f"study file not found: {p}")
    if p.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise error(f"{p}: expected a .toml, .yaml, .yml or .json study file")
    raw = p.read_bytes()
    if b"\x00" in raw:
        raise error(f"{p}: binary content (NUL byte at offset {raw.index(b'\x00')}); expected text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not a text file (byte {exc.start} is not UTF-8)") from exc
    try:
        if p.suffix == ".toml":
            return tomllib.loads(text)
        if p.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise error(f"{p}: cannot parse YAML{line}: {problem}") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{p}: cannot parse: {' '.join(str(exc).split())}") from exc


def expand_trials(spec: StudySpec) -> list[dict]:
    """All trials in a fixed order; ``trial_id`` is the position, the seed derives from it."""
    keys = list(PROTOCOL_KEYS)
    trials = []
    for mi, model in enumerate(spec.models):
        for combo in itertools.product(*(spec.protocol[k] for k in keys)):
            for rep in range(spec.repeats):
                trials.append(
                    {
                        "trial_id": len(trials),
                        "model_index": mi,
                        "model": model.name,
                        **dict(zip(keys, combo, strict=True)),
                        "repeat": rep,
                    }
                )
    return trials
