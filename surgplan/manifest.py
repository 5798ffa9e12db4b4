"""The case manifest (``case.json``): a versioned, validated record of everything in a case.

Paths in the manifest are relative to the case folder and use forward slashes. Geometry is in
patient LPS millimetres. No patient identifier is ever stored here.

The manifest's JSON Schema is generated from these pydantic models
(:func:`manifest_json_schema`) and shipped with the package as
``surgplan/schemas/case.schema.json`` (:func:`schema_path`); every ``case.json`` names it in its
``$schema`` key (:data:`SCHEMA_ID`, the schema's ``$id``). Manifests written by older versions
of the schema are migrated on load (:func:`migrate_manifest`), one version step at a time.

Every path the manifest holds is a :data:`CasePath`: relative, forward slashes, no ``..``, no
empty or hidden (``.``) component, not ``case.json`` itself. A manifest naming a file outside
the case (``../../victim.txt``, ``/etc/passwd``) is refused when it is read, so no command ever
writes or deletes a file outside the case because of it. Schema 3 adds ``revision`` (the
commit counter), ``files`` (the sha256 and size of every file a step wrote, recorded by the
same atomic commit, see :mod:`surgplan.case`) and an artifact's further ``files``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

#: Version of the manifest schema written by this code.
SCHEMA_VERSION = 3
#: Identifier of the manifest's JSON Schema: its ``$id``, and ``case.json``'s ``$schema``.
SCHEMA_ID = "urn:surgplan:schema:case:3"
#: Name of the manifest file inside a case folder.
MANIFEST_NAME = "case.json"
#: The JSON Schema dialect the generated schema is written in.
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def utc_now() -> str:
    """Current UTC time as an ISO 8601 string (seconds precision)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@functools.cache
def surgplan_version() -> str:
    """Version of the installed ``surgplan`` distribution (``"unknown"`` if not installed)."""
    try:
        return importlib.metadata.version("surgplan")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check_case_path(value: str) -> str:
    """Return ``value`` if it is a safe path relative to the case folder, else raise.

    Parameters
    ----------
    value
        A path as the manifest holds it, e.g. ``"labels/liver.nrrd"``.

    Returns
    -------
    str
        ``value`` unchanged.

    Raises
    ------
    ValueError
        For an absolute path, a backslash, ``..``, an empty or hidden component, or
        ``case.json`` itself (the message names the path and the rule).
    """
    parts = value.split("/")
    if value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        reason = "is absolute"
    elif "\\" in value or "\x00" in value:
        reason = "holds a backslash or NUL"
    elif any(part in ("", ".", "..") for part in parts):
        reason = "has an empty, '.' or '..' component"
    elif any(part.startswith(".") for part in parts):
        reason = "has a hidden ('.') component, reserved for the case's own bookkeeping"
    elif value == MANIFEST_NAME:
        reason = "names the manifest itself"
    else:
        return value
    raise ValueError(f"path {value!r} {reason}; it must be relative and stay inside the case")


#: A path relative to the case folder that stays inside it (see :func:`check_case_path`).
CasePath = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(check_case_path)]


class FileEntry(_Strict):
    """Checksum of one file of the case, recorded by the commit that wrote it."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)


class ImageEntry(_Strict):
    """The case's scan, stored de-identified as NRRD."""

    path: CasePath
    size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...] = Field(min_length=9, max_length=9)
    pixel_type: str
    source_kind: Literal["dicom", "nifti", "nrrd", "mha", "image"]
    modality: str | None = None
    deidentified: bool = True
    imported_at: str = Field(default_factory=utc_now)


class StructureEntry(_Strict):
    """One segmented structure: a binary label map on the scan's grid.

    ``colour_rgb`` and ``terminology`` are those of the imported segment (Slicer segmentation,
    NIfTI label table), where the source had them.
    """

    name: str
    label_path: CasePath
    method: str
    seed_lps_mm: list[tuple[float, float, float]] | None = None
    source_label_value: int | None = None
    source_name: str | None = None
    colour_rgb: tuple[float, float, float] | None = None
    terminology: str | None = None
    n_voxels: int
    volume_ml: float
    parameters: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=utc_now)


class SegmentEntry(_Strict):
    """One segment of the case's Slicer segmentation: its label value, layer and colour."""

    label_value: int = Field(ge=1, le=65535)
    layer: int = Field(ge=0)
    colour_rgb: tuple[float, float, float]


class SegmentationEntry(_Strict):
    """The case's 3D Slicer segmentation (``.seg.nrrd``), one segment per structure."""

    path: CasePath
    n_layers: int = Field(ge=1)
    segments: dict[str, SegmentEntry]


class SurfaceEntry(_Strict):
    """A closed surface mesh of one structure (VTP, LPS mm)."""

    name: str
    path: CasePath
    volume_ml: float
    area_mm2: float
    n_points: int
    n_triangles: int
    is_closed: bool
    is_manifold: bool
    label_volume_ml: float


class VolumeMeshEntry(_Strict):
    """The tetrahedral finite-element mesh with one cell region per structure."""

    path: CasePath
    msh_path: CasePath | None = None
    boundary_path: CasePath | None = None
    regions: dict[str, int]
    quality: dict[str, Any]


#: A DICOM UID: digits and dots, no leading zeros in a component (DICOM PS3.5 9.1).
_UID_PATTERN = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$"


def _uid_field(description: str) -> Any:
    return Field(max_length=64, pattern=_UID_PATTERN, description=description)


class DicomUidsEntry(_Strict):
    """The UIDs of the case's exported DICOM objects (series, DICOM-SEG, RTSTRUCT).

    Generated once, on the case's first DICOM export (``surgplan export --dicom``,
    ``--dicom-seg`` or ``--rtstruct``), so that later exports reference the same study, series
    and frame of reference. New random UIDs, never the original ones.
    """

    study: str = _uid_field("Study Instance UID of every exported object")
    series: str = _uid_field("Series Instance UID of the de-identified scan (CT series)")
    frame_of_reference: str = _uid_field("Frame of Reference UID of the scan's LPS space")
    seg_series: str = _uid_field("Series Instance UID of the DICOM-SEG")
    rtstruct_series: str = _uid_field("Series Instance UID of the RT Structure Set")


class Artifact(_Strict):
    """Any other product stored in the case (FE results, reduced models, sessions...).

    ``files`` lists the artifact's further files besides ``path`` (an FE result's XDMF and
    HDF5), removed with it.
    """

    kind: str
    name: str
    path: CasePath
    files: list[CasePath] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=utc_now)


class Manifest(_Strict):
    """Root of ``case.json``.

    ``surgplan_version`` is the version of the software that last wrote the file (null in a
    manifest migrated from schema version 1, which did not record it, until it is next saved).
    ``dicom_uids`` is absent (null) until the case's first DICOM export. ``revision`` counts
    the commits; ``files`` holds the checksum of every file a commit wrote (files written in
    place, such as a live session's SQLite log, have none).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_id: Literal["urn:surgplan:schema:case:3"] = Field(SCHEMA_ID, alias="$schema")
    format: Literal["surgplan-case"] = "surgplan-case"
    schema_version: Literal[3] = SCHEMA_VERSION
    surgplan_version: str | None = Field(default_factory=surgplan_version)
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    image: ImageEntry | None = None
    structures: dict[str, StructureEntry] = Field(default_factory=dict)
    segmentation: SegmentationEntry | None = None
    surfaces: dict[str, SurfaceEntry] = Field(default_factory=dict)
    volume_mesh: VolumeMeshEntry | None = None
    artifacts: dict[str, Artifact] = Field(default_factory=dict)
    dicom_uids: DicomUidsEntry | None = None
    revision: int = Field(0, ge=0)
    files: dict[CasePath, FileEntry] = Field(default_factory=dict)

    def referenced_paths(self) -> list[str]:
        """Every path an entry names (scan, label maps, segmentation, meshes, artifacts)."""
        paths = [] if self.image is None else [self.image.path]
        paths += [s.label_path for s in self.structures.values()]
        if self.segmentation is not None:
            paths.append(self.segmentation.path)
        paths += [s.path for s in self.surfaces.values()]
        if self.volume_mesh is not None:
            vm = self.volume_mesh
            paths += [p for p in (vm.path, vm.msh_path, vm.boundary_path) if p is not None]
        for artifact in self.artifacts.values():
            paths += [artifact.path, *artifact.files]
        return list(dict.fromkeys(paths))

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON-ready dict written to ``case.json`` (``$schema`` first)."""
        return self.model_dump(mode="json", by_alias=True)


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``case.json``, generated from :class:`Manifest`.

    Returns
    -------
    dict
        Draft 2020-12 schema with ``$id`` :data:`SCHEMA_ID`; equal to the shipped
        ``surgplan/schemas/case.schema.json``.
    """
    generated = Manifest.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": SCHEMA_ID, **generated}


def schema_path() -> Path:
    """Path of the JSON Schema shipped with the package (``surgplan/schemas/case.schema.json``)."""
    return Path(str(importlib.resources.files("surgplan") / "schemas" / "case.schema.json"))


def schema_text() -> str:
    """The text of the shipped schema file as :func:`manifest_json_schema` generates it."""
    return json.dumps(manifest_json_schema(), indent=2) + "\n"


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2: adds ``$schema``, ``surgplan_version`` (unknown) and ``segmentation``."""
    migrated = {"$schema": "urn:surgplan:schema:case:2", **data, "schema_version": 2}
    migrated.setdefault("surgplan_version", None)
    migrated.setdefault("segmentation", None)
    return migrated


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 -> 3: adds ``revision`` (0) and ``files`` (none recorded yet)."""
    migrated = {**data, "schema_version": 3}
    if migrated.get("$schema") == "urn:surgplan:schema:case:2":
        migrated["$schema"] = SCHEMA_ID  # any other value stays, for validation to refuse
    migrated.setdefault("revision", 0)
    migrated.setdefault("files", {})
    artifacts = migrated.get("artifacts")
    if isinstance(artifacts, dict):
        migrated["artifacts"] = {k: _v3_artifact(a) for k, a in artifacts.items()}
    return migrated


def _v3_artifact(artifact: Any) -> Any:
    """An FE result's XDMF and its HDF5 become the artifact's further ``files``."""
    if not isinstance(artifact, dict) or "files" in artifact:
        return artifact
    xdmf = artifact.get("meta", {}).get("xdmf") if isinstance(artifact.get("meta"), dict) else None
    if artifact.get("kind") != "fe_result" or not isinstance(xdmf, str):
        return artifact
    return {**artifact, "files": [xdmf, str(Path(xdmf).with_suffix(".h5").as_posix())]}


#: Migration from each older schema version to the next one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}


def migrate_manifest(data: Any) -> Any:
    """Bring a ``case.json`` object written by an older schema version up to :data:`SCHEMA_VERSION`.

    Parameters
    ----------
    data
        The parsed JSON. Anything that is not an object of a known older version is returned
        unchanged, for validation to report.

    Returns
    -------
    Any
        The migrated object (a new dict), or ``data`` itself.
    """
    while isinstance(data, dict) and type(data.get("schema_version")) is int:
        step = MIGRATIONS.get(data["schema_version"])
        if step is None:
            break
        data = step(data)
    return data
