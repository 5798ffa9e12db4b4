"""The case manifest (``case.json``): a versioned, validated record of everything in a case.

Paths in the manifest are relative to the case folder and use forward slashes. Geometry is in
patient LPS millimetres. No patient identifier is ever stored here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Version of the manifest schema written by this code.
SCHEMA_VERSION = 1


def utc_now() -> str:
    """Current UTC time as an ISO 8601 string (seconds precision)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageEntry(_Strict):
    """The case's scan, stored de-identified as NRRD."""

    path: str
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
    """One segmented structure: a binary label map on the scan's grid."""

    name: str
    label_path: str
    method: str
    seed_lps_mm: list[tuple[float, float, float]] | None = None
    source_label_value: int | None = None
    n_voxels: int
    volume_ml: float
    parameters: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=utc_now)


class SurfaceEntry(_Strict):
    """A closed surface mesh of one structure (VTP, LPS mm)."""

    name: str
    path: str
    volume_ml: float
    area_mm2: float
    n_points: int
    n_triangles: int
    is_closed: bool
    is_manifold: bool
    label_volume_ml: float


class VolumeMeshEntry(_Strict):
    """The tetrahedral finite-element mesh with one cell region per structure."""

    path: str
    msh_path: str | None = None
    boundary_path: str | None = None
    regions: dict[str, int]
    quality: dict[str, Any]


class Artifact(_Strict):
    """Any other product stored in the case (FE results, reduced models, sessions...)."""

    kind: str
    name: str
    path: str
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=utc_now)


class Manifest(_Strict):
    """Root of ``case.json``."""

    format: Literal["surgplan-case"] = "surgplan-case"
    schema_version: Literal[1] = SCHEMA_VERSION
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    image: ImageEntry | None = None
    structures: dict[str, StructureEntry] = Field(default_factory=dict)
    surfaces: dict[str, SurfaceEntry] = Field(default_factory=dict)
    volume_mesh: VolumeMeshEntry | None = None
    artifacts: dict[str, Artifact] = Field(default_factory=dict)
