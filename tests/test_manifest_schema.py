"""``case.json``: the shipped JSON Schema, the software version, migration of older versions."""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from surgplan.case import Case
from surgplan.errors import CaseError
from surgplan.manifest import (
    MIGRATIONS,
    SCHEMA_ID,
    SCHEMA_VERSION,
    manifest_json_schema,
    schema_path,
)
from surgplan.sample_data import ensure_sample_data
from surgplan.scan_import import import_scan
from surgplan.segment import import_label_map

REPO_ROOT = Path(__file__).resolve().parents[1]
VERSION = importlib.metadata.version("surgplan")

#: A schema-version-1 ``case.json`` exactly as surgplan 0.1.0 before schema 2 wrote it (no
#: ``$schema``, no software version, no segmentation), for an imported scan with one structure.
V1_MANIFEST = {
    "format": "surgplan-case",
    "schema_version": 1,
    "created_at": "2026-05-01T10:00:00+00:00",
    "updated_at": "2026-05-01T10:05:00+00:00",
    "image": {
        "path": "images/scan.nrrd",
        "size": [200, 168, 90],
        "spacing_mm": [1.5, 1.5, 2.0],
        "origin_mm": [-150.0, -126.0, -900.0],
        "direction": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "pixel_type": "16-bit signed integer",
        "source_kind": "nifti",
        "modality": None,
        "deidentified": True,
        "imported_at": "2026-05-01T10:00:00+00:00",
    },
    "structures": {
        "liver": {
            "name": "liver",
            "label_path": "labels/liver.nrrd",
            "method": "imported",
            "seed_lps_mm": None,
            "source_label_value": 1,
            "n_voxels": 262110,
            "volume_ml": 1179.495,
            "parameters": {},
            "created_at": "2026-05-01T10:05:00+00:00",
        }
    },
    "surfaces": {},
    "volume_mesh": None,
    "artifacts": {
        "fe_result/retraction": {
            "kind": "fe_result",
            "name": "retraction",
            "path": "fe/retraction.vtu",
            "meta": {"max_displacement_mm": 4.2},
            "created_at": "2026-05-01T10:06:00+00:00",
        }
    },
}


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real case: the phantom scan and its ten labelled structures."""
    data = ensure_sample_data().folder
    case = tmp_path_factory.mktemp("schema") / "case"
    import_scan(data / "phantom_ct.nii.gz", case)
    import_label_map(case, data / "phantom_labels.nrrd", data / "phantom_labels.json")
    return case


def test_shipped_schema_is_the_generated_one() -> None:
    shipped = schema_path()
    assert shipped == REPO_ROOT / "surgplan" / "schemas" / "case.schema.json"
    assert json.loads(shipped.read_text(encoding="utf-8")) == manifest_json_schema(), (
        "surgplan/schemas/case.schema.json is out of date: regenerate it with\n"
        '  python -c "from surgplan.manifest import schema_path, schema_text; '
        'schema_path().write_text(schema_text())"'
    )
    schema = manifest_json_schema()
    assert schema["$id"] == SCHEMA_ID
    assert schema["properties"]["$schema"]["const"] == SCHEMA_ID
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION == 3


def test_schema_is_shipped_as_package_data() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "schemas/*.json" in config["tool"]["setuptools"]["package-data"]["surgplan"]


def test_written_case_json_validates_and_records_the_version(phantom_case: Path) -> None:
    data = json.loads((phantom_case / "case.json").read_text(encoding="utf-8"))
    assert list(data)[:4] == ["$schema", "format", "schema_version", "surgplan_version"]
    assert data["$schema"] == SCHEMA_ID
    assert data["surgplan_version"] == VERSION
    assert data["segmentation"]["path"] == "labels/segmentation.seg.nrrd"
    assert len(data["structures"]) == 10
    _validator().validate(data)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update({"$schema": "urn:surgplan:schema:case:1"}),
        lambda d: d["segmentation"]["segments"]["liver"].update({"label_value": 0}),
        lambda d: d["structures"]["liver"].update({"colour": [1, 0, 0]}),
        lambda d: d.pop("format") and d.update({"format": "other"}),
    ],
    ids=["wrong-schema-id", "label-value-0", "unknown-field", "wrong-format"],
)
def test_schema_refuses_what_the_model_refuses(phantom_case: Path, damage) -> None:
    data = json.loads((phantom_case / "case.json").read_text(encoding="utf-8"))
    damage(data)
    assert not _validator().is_valid(data)
    (phantom_case.parent / "bad").mkdir(exist_ok=True)
    (phantom_case.parent / "bad" / "case.json").write_text(json.dumps(data))
    with pytest.raises(CaseError, match="invalid manifest"):
        Case.open(phantom_case.parent / "bad")


def test_every_older_version_has_a_migration() -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))


def test_version_1_manifest_is_migrated_on_load_and_saved_as_version_3(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    text = json.dumps(V1_MANIFEST, indent=2) + "\n"
    (folder / "case.json").write_text(text)
    case = Case.open(folder)
    assert (folder / "case.json").read_text() == text  # opening changes nothing on disk
    manifest = case.manifest
    assert (manifest.schema_version, manifest.schema_id) == (3, SCHEMA_ID)
    assert manifest.surgplan_version is None and manifest.segmentation is None
    assert manifest.created_at == "2026-05-01T10:00:00+00:00"
    assert manifest.structures["liver"].n_voxels == 262110
    assert manifest.structures["liver"].source_label_value == 1
    assert manifest.image is not None and manifest.image.spacing_mm == (1.5, 1.5, 2.0)
    assert manifest.artifacts["fe_result/retraction"].meta == {"max_displacement_mm": 4.2}
    with case.transaction() as tx:
        tx.path("notes.txt").write_text("x")
    saved = json.loads((folder / "case.json").read_text())
    assert saved["schema_version"] == 3 and saved["$schema"] == SCHEMA_ID
    assert saved["surgplan_version"] == VERSION
    assert saved["structures"]["liver"] == {
        **V1_MANIFEST["structures"]["liver"],
        "source_name": None,
        "colour_rgb": None,
        "terminology": None,
    }
    _validator().validate(saved)


def test_current_manifest_loads_unchanged(phantom_case: Path) -> None:
    data = json.loads((phantom_case / "case.json").read_text(encoding="utf-8"))
    assert Case.open(phantom_case).manifest.to_json_dict() == data


def test_newer_version_is_refused_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "case.json").write_text(json.dumps({**V1_MANIFEST, "schema_version": 4}))
    with pytest.raises(CaseError, match="schema_version 4 was written by a newer surgplan"):
        Case.open(tmp_path)
