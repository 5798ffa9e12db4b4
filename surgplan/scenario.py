"""Scenario files: the loads and materials of one tissue simulation, validated.

A scenario is a TOML file (all lengths mm, pressures kPa)::

    name = "retraction"                       # artifact name (default: file stem)
    [model]
    type = "linear"                            # or "neohookean"
    degree = 1
    load_steps = 4
    [materials]                                # region name -> preset name or table
    default = "liver_healthy"
    tumour = "tumour"
    # tumour = { youngs_modulus_kpa = 20.0, poisson_ratio = 0.45 }
    [[supports]]                               # fixed regions
    region = { type = "sphere", centre_mm = [0, 0, -20], radius_mm = 12 }
    # region = { type = "near_surface", surface = "hepatic_veins", distance_mm = 3 }
    [[retractors]]
    region = { type = "sphere", centre_mm = [0, 0, 20], radius_mm = 10 }
    displacement_mm = [0, 0, 8]
    profile = "bump"                           # "uniform", "bump" or "spring"
    [[pressures]]
    region = { type = "all" }
    pressure_kpa = 1.6
    [gravity]
    direction = [0, 0, -1]

Region types: ``sphere``, ``plane`` (``point_mm``, ``normal``, ``tolerance_mm``), ``all``,
``near_surface`` (a surface of the case, by name), ``points`` (``points_mm``, ``distance_mm``).

Every table is a pydantic model with ``extra="forbid"``: an unknown key (``[[retractor]]`` for
``[[retractors]]``) is refused, as is a string where a table is expected, and at least one
``[[supports]]`` table is required. Physical ranges are
checked here, before any mesh is read (:data:`MAX_DISPLACEMENT_MM`, :data:`MAX_PRESSURE_KPA`,
:data:`MAX_REGION_RADIUS_MM`); materials are checked by :class:`biomech.materials.Material`.
Every problem is reported by :func:`read_scenario` as one :class:`ScenarioError` that names the
file, the field and what was expected.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from biomech.loads import (
    AllBoundary,
    FixedSupport,
    Gravity,
    LoadCase,
    NearPoints,
    PlaneRegion,
    PrescribedDisplacement,
    Pressure,
    Selector,
    SphereRegion,
)
from biomech.materials import Material, MaterialError, get_material
from surgplan.errors import SurgplanError

MAX_DISPLACEMENT_MM = 100.0
"""Largest retractor displacement accepted, mm per component. Retraction of the liver lifts a
lobe by 10-40 mm; 100 mm is more than the organ's half-width, beyond any surgical push."""

MAX_PRESSURE_KPA = 50.0
"""Largest surface pressure magnitude accepted, kPa (about 375 mmHg). Pneumoperitoneum is
1.6-2 kPa (12-15 mmHg), arterial lumen pressure up to about 27 kPa (200 mmHg) in a crisis."""

MAX_REGION_RADIUS_MM = 500.0
"""Largest region radius or distance accepted, mm (larger than any abdominal organ)."""


class ScenarioError(SurgplanError):
    """A scenario file is missing, not TOML, or names an unknown field or impossible value."""


Finite = Annotated[float, Field(allow_inf_nan=False)]
Vec3 = tuple[Finite, Finite, Finite]
Length = Annotated[float, Field(gt=0.0, le=MAX_REGION_RADIUS_MM, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _nonzero(v: Vec3) -> Vec3:
    if not np.linalg.norm(v) > 0:
        raise ValueError(f"must be a non-zero vector, got {list(v)}")
    return v


class SphereSpec(_Strict):
    """Boundary facets within ``radius_mm`` of ``centre_mm``."""

    type: Literal["sphere"]
    centre_mm: Vec3
    radius_mm: Length


class PlaneSpec(_Strict):
    """Boundary facets within ``tolerance_mm`` of a plane."""

    type: Literal["plane"]
    point_mm: Vec3
    normal: Vec3
    tolerance_mm: Length = 1e-3

    _check_normal = field_validator("normal")(_nonzero)


class AllSpec(_Strict):
    """Every boundary facet."""

    type: Literal["all"]


class PointsSpec(_Strict):
    """Boundary facets within ``distance_mm`` of given points."""

    type: Literal["points"]
    points_mm: list[Vec3] = Field(min_length=1)
    distance_mm: Length = 2.0


class NearSurfaceSpec(_Strict):
    """Boundary facets within ``distance_mm`` of a surface of the case (by name)."""

    type: Literal["near_surface"]
    surface: str
    distance_mm: Length = 2.0


RegionSpec = Annotated[
    SphereSpec | PlaneSpec | AllSpec | PointsSpec | NearSurfaceSpec, Field(discriminator="type")
]


class ModelSpec(_Strict):
    """Constitutive model and discretisation."""

    type: Literal["linear", "neohookean"] = "linear"
    degree: int = Field(1, ge=1, le=3)
    load_steps: int = Field(1, ge=1, le=100)

    @model_validator(mode="after")
    def _mixed_form_degree(self) -> ModelSpec:
        if self.type == "neohookean" and self.degree < 2:
            raise ValueError(
                f'degree = {self.degree} with type = "neohookean": the neo-Hookean model is '
                "solved in the mixed displacement-pressure form, whose pressure is one degree "
                "lower, so it needs degree = 2 or 3"
            )
        return self


class MaterialSpec(_Strict):
    """A material given by its moduli (kPa) rather than a preset name."""

    youngs_modulus_kpa: Finite
    poisson_ratio: Finite
    density_kg_m3: Finite = 1060.0


class SupportSpec(_Strict):
    """A fixed region (zero displacement)."""

    region: RegionSpec


class RetractorSpec(_Strict):
    """A prescribed-displacement patch."""

    region: RegionSpec
    displacement_mm: Vec3
    profile: Literal["uniform", "bump", "spring"] = "bump"

    @field_validator("displacement_mm")
    @classmethod
    def _reachable(cls, v: Vec3) -> Vec3:
        if max(abs(c) for c in v) > MAX_DISPLACEMENT_MM:
            raise ValueError(
                f"each component must lie within +-{MAX_DISPLACEMENT_MM:g} mm (no retractor "
                f"moves tissue further), got {list(v)}"
            )
        return v


class PressureSpec(_Strict):
    """A normal pressure (positive pushes into the body)."""

    region: RegionSpec
    pressure_kpa: Annotated[
        float, Field(ge=-MAX_PRESSURE_KPA, le=MAX_PRESSURE_KPA, allow_inf_nan=False)
    ]


class GravitySpec(_Strict):
    """Self-weight along ``direction``."""

    direction: Vec3

    _check_direction = field_validator("direction")(_nonzero)


class Scenario(_Strict):
    """A whole scenario file (see the module docstring)."""

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    model: ModelSpec = ModelSpec()
    materials: dict[str, str | MaterialSpec] = Field(
        default_factory=lambda: {"default": "liver_healthy"}
    )
    supports: list[SupportSpec] = Field(default_factory=list)
    retractors: list[RetractorSpec] = Field(default_factory=list)
    pressures: list[PressureSpec] = Field(default_factory=list)
    gravity: GravitySpec | None = None

    @model_validator(mode="after")
    def _held(self) -> Scenario:
        if not self.supports:
            raise ValueError(
                "at least one [[supports]] table (a fixed region) is required: without one "
                "the organ is free to move and the deformation is meaningless"
            )
        return self

    @field_validator("materials")
    @classmethod
    def _known_materials(cls, table: dict[str, str | MaterialSpec]) -> dict[str, Any]:
        for name, spec in table.items():
            _material(spec, name)  # raises ValueError naming the problem
        return table


def _material(spec: str | MaterialSpec, name: str) -> Material:
    try:
        if isinstance(spec, str):
            return get_material(spec)
        return Material(name, spec.youngs_modulus_kpa, spec.poisson_ratio, spec.density_kg_m3)
    except MaterialError as exc:
        raise ValueError(str(exc)) from None


_REGION_TAGS = ("sphere", "plane", "all", "points", "near_surface")


def _field_path(loc: tuple[int | str, ...]) -> str:
    """``supports[0].region.radius_mm`` from a pydantic location, without union branch tags."""
    keep: list[int | str] = []
    for i, part in enumerate(loc):
        if i >= 1 and loc[i - 1] == "region" and part in _REGION_TAGS:
            continue  # the discriminated union's branch
        if i >= 2 and loc[i - 2] == "materials" and part in ("str", "MaterialSpec"):
            continue  # the preset-name-or-table union's branch
        keep.append(part)
    out = ""
    for part in keep:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(path: Path, error: ValidationError) -> str:
    parts = []
    for e in error.errors():
        msg = e["msg"].removeprefix("Value error, ")
        shown = repr(e["input"])
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        got = "" if e["type"] == "missing" or not e["loc"] else f" (got {shown})"
        parts.append(f"{_field_path(e['loc'])}: {msg}{got}")
    return f"invalid scenario {path}: " + "; ".join(parts)


def parse_scenario(data: Any, source: str | Path = "<scenario>") -> Scenario:
    """Validate a scenario given as plain data (a dict as TOML gives it).

    Parameters
    ----------
    data : Any
        The parsed TOML document.
    source : str or Path
        Where it came from, for the error message.

    Raises
    ------
    ScenarioError
        Naming ``source``, each offending field and what was expected.
    """
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(_describe(Path(source), error)) from None


def read_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file.

    Raises
    ------
    ScenarioError
        If the file does not exist, is not valid TOML, or a field is unknown, of the wrong
        type or outside its physical range (the message names the file and the field).
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"scenario file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"scenario {path} is not valid TOML: {exc}") from None
    return parse_scenario(data, path)


def region_selector(spec: RegionSpec, field: str, surfaces: Any = None) -> Selector:
    """The :mod:`biomech.loads` selector of a region.

    Parameters
    ----------
    spec : RegionSpec
        A validated region table.
    field : str
        Where it sits in the scenario, for error messages.
    surfaces : callable, optional
        ``surfaces(name) -> (N, 3) points in mm`` for ``near_surface`` regions (the case's
        surfaces); it raises :class:`ScenarioError` for an unknown name.
    """
    if isinstance(spec, SphereSpec):
        return SphereRegion(spec.centre_mm, spec.radius_mm)
    if isinstance(spec, PlaneSpec):
        return PlaneRegion(spec.point_mm, spec.normal, spec.tolerance_mm)
    if isinstance(spec, AllSpec):
        return AllBoundary()
    if isinstance(spec, PointsSpec):
        return NearPoints(np.asarray(spec.points_mm, dtype=float), spec.distance_mm)
    if surfaces is None:
        raise ScenarioError(f"{field}: near_surface needs a case")
    return NearPoints(np.asarray(surfaces(spec.surface), dtype=float), spec.distance_mm)


def scenario_loads(scn: Scenario, surfaces: Any = None) -> LoadCase:
    """The :class:`~biomech.loads.LoadCase` of a scenario (see :func:`region_selector`).

    Parameters
    ----------
    scn : Scenario
        The validated scenario.
    surfaces : callable, optional
        ``surfaces(name) -> (N, 3)`` points in mm for ``near_surface`` regions.
    """
    supports = [
        FixedSupport(
            region_selector(s.region, f"supports[{i}].region", surfaces), name=f"support {i}"
        )
        for i, s in enumerate(scn.supports)
    ]
    retractors = [
        PrescribedDisplacement(
            region_selector(r.region, f"retractors[{i}].region", surfaces),
            r.displacement_mm,
            profile=r.profile,
            name=f"retractor {i}",
        )
        for i, r in enumerate(scn.retractors)
    ]
    pressures = [
        Pressure(
            region_selector(p.region, f"pressures[{i}].region", surfaces),
            p.pressure_kpa,
            name=f"pressure {i}",
        )
        for i, p in enumerate(scn.pressures)
    ]
    gravity = Gravity(scn.gravity.direction) if scn.gravity is not None else None
    return LoadCase(
        supports=supports, displacements=retractors, pressures=pressures, gravity=gravity
    )


def scenario_materials(scn: Scenario, regions: dict[str, int]) -> dict[int, Material]:
    """Region id -> material from the scenario's ``[materials]`` table.

    Parameters
    ----------
    scn : Scenario
        The validated scenario.
    regions : dict[str, int]
        Region name -> cell region id of the volume mesh.

    Raises
    ------
    ScenarioError
        If the table names a region the mesh does not have.
    """
    table = scn.materials
    default = table.get("default", "liver_healthy")
    unknown = [k for k in table if k != "default" and k not in regions]
    if unknown:
        raise ScenarioError(
            f"materials for unknown region(s) {unknown}; regions: {sorted(regions)}"
        )
    return {
        int(rid): _material(table.get(name, default), f"materials.{name}")
        for name, rid in regions.items()
    }
