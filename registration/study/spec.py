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
from typing import Any

from registration.errors import RegistrationError

__all__ = ["StudySpecError", "TargetSpec", "ModelSpec", "StudySpec", "load_spec", "expand_trials"]

SENSORS = ("swabs", "scan")
CASES = ("good", "wrong_organ", "mirrored", "too_few", "planar", "outliers30", "wrong_minimum")
PROTOCOL_KEYS = {
    "sensor": str,
    "n_points": int,
    "coverage": float,
    "noise_mm": float,
    "outlier_fraction": float,
    "rotation_deg": float,
    "translation_mm": float,
    "case": str,
}
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


def _err(src: str, field: str, msg: str) -> StudySpecError:
    return StudySpecError(f"{src}: field '{field}': {msg}")


def _resolve(base: Path, value: Any, src: str, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise _err(src, field, f"expected a file path, got {value!r}")
    p = Path(value)
    p = p if p.is_absolute() else (base / p)
    if not p.is_file():
        raise _err(src, field, f"file not found: {p}")
    return str(p.resolve())


def parse_spec(data: dict, *, base_dir: Path, source: str = "<spec>") -> StudySpec:
    """Validate a study dictionary (as read from TOML/YAML); paths are relative to ``base_dir``."""
    if not isinstance(data, dict):
        raise StudySpecError(f"{source}: expected a table/mapping at the top level")
    unknown = set(data) - {"name", "seed", "repeats", "models", "protocol"}
    if unknown:
        raise _err(source, sorted(unknown)[0], "unknown field")
    seed, repeats = data.get("seed", 0), data.get("repeats", 1)
    if not isinstance(seed, int) or seed < 0:
        raise _err(source, "seed", f"expected an integer >= 0, got {seed!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise _err(source, "repeats", f"expected an integer >= 1, got {repeats!r}")
    models_raw = data.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise _err(source, "models", "expected a non-empty list of models")
    models = []
    for i, m in enumerate(models_raw):
        f = f"models[{i}]"
        if not isinstance(m, dict):
            raise _err(source, f, "expected a table")
        surf = _resolve(base_dir, m.get("surface"), source, f + ".surface")
        decoy = m.get("decoy_surface")
        decoy = None if decoy is None else _resolve(base_dir, decoy, source, f + ".decoy_surface")
        targets = []
        for j, t in enumerate(m.get("targets", [])):
            ft = f"{f}.targets[{j}]"
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                raise _err(source, ft, "expected a table with a 'name'")
            if ("point_mm" in t) == ("surface" in t):
                raise _err(source, ft, "give exactly one of 'point_mm' or 'surface'")
            if "point_mm" in t:
                pt = t["point_mm"]
                if not (isinstance(pt, list) and len(pt) == 3):
                    raise _err(source, ft + ".point_mm", f"expected 3 numbers, got {pt!r}")
                targets.append(TargetSpec(t["name"], point_mm=tuple(float(v) for v in pt)))
            else:
                targets.append(
                    TargetSpec(t["name"], surface=_resolve(base_dir, t["surface"], source, ft))
                )
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise _err(source, f + ".targets", f"target names must be unique, got {names}")
        models.append(ModelSpec(str(m.get("name", Path(surf).stem)), surf, tuple(targets), decoy))
    proto_raw = data.get("protocol", {})
    if not isinstance(proto_raw, dict):
        raise _err(source, "protocol", "expected a table")
    bad = set(proto_raw) - set(PROTOCOL_KEYS)
    if bad:
        raise _err(source, "protocol." + sorted(bad)[0], f"unknown; known: {list(PROTOCOL_KEYS)}")
    proto: dict[str, tuple] = {}
    for key, typ in PROTOCOL_KEYS.items():
        vals = proto_raw.get(key, PROTOCOL_DEFAULTS[key])
        vals = vals if isinstance(vals, list) else [vals]
        if not vals:
            raise _err(source, f"protocol.{key}", "expected at least one value")
        try:
            vals = [typ(v) if not (typ is int and isinstance(v, float)) else None for v in vals]
        except (TypeError, ValueError) as exc:
            raise _err(source, f"protocol.{key}", f"expected {typ.__name__} ({exc})") from exc
        if any(v is None for v in vals):
            raise _err(source, f"protocol.{key}", "expected integers")
        proto[key] = tuple(vals)
    for s in proto["sensor"]:
        if s not in SENSORS:
            raise _err(source, "protocol.sensor", f"expected one of {SENSORS}, got {s!r}")
    for c in proto["case"]:
        if c not in CASES:
            raise _err(source, "protocol.case", f"expected one of {CASES}, got {c!r}")
        if c == "wrong_organ" and any(m.decoy_surface is None for m in models):
            raise _err(source, "models.decoy_surface", "required by case 'wrong_organ'")
    checks = {
        "n_points": lambda v: v >= 6,
        "coverage": lambda v: 0 < v <= 1,
        "noise_mm": lambda v: v > 0,
        "outlier_fraction": lambda v: 0 <= v < 1,
        "rotation_deg": lambda v: 0 <= v <= 180,
        "translation_mm": lambda v: v >= 0,
    }
    for key, ok in checks.items():
        for v in proto[key]:
            if not ok(v):
                raise _err(source, f"protocol.{key}", f"value {v!r} out of range")
    return StudySpec(
        name=str(data.get("name", "study")),
        seed=seed,
        repeats=repeats,
        models=tuple(models),
        protocol=proto,
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
    if not p.is_file():
        raise StudySpecError(f"study file not found: {p}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            raise StudySpecError(f"{p}: expected a .toml, .yaml, .yml or .json study file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise StudySpecError(f"{p}: cannot parse: {exc}") from exc
    return parse_spec(data, base_dir=p.parent, source=str(p))


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
