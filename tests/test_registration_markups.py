"""3D Slicer markups: every schema-valid form is read; LPS and RAS files agree, orientations too."""

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from registration.io import (
    PointFileError,
    read_points,
    read_slicer_markups,
    read_slicer_markups_nodes,
    write_slicer_markups,
)
from registration.markups import FLIP_LPS_RAS, orientation_lps_to_ras

SCHEMA_FILE = (
    Path(__file__).parent / "data" / "slicer_markups_schema" / "markups-schema-v1.0.3.json"
)
F = np.diag([-1.0, -1.0, 1.0])
POINTS = np.array([[10.0, -20.5, 30.0], [-4.0, 5.5, -6.25], [0.0, 0.0, 100.0]])


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _schema_errors(validator, doc) -> list[str]:
    return [e.message for e in validator.iter_errors(doc)]


def _rotations() -> np.ndarray:
    return Rotation.from_euler("xyz", [[10, -20, 30], [90, 0, 0], [0, 45, -120]], degrees=True)


def test_the_schema_copy_is_draft7_and_rejects_what_slicer_rejects(validator) -> None:
    assert validator.schema["$schema"] == "http://json-schema.org/draft-07/schema"
    bad = {"@schema": "x", "markups": [{"type": "Fiducial", "coordinateSystem": "XYZ"}]}
    assert _schema_errors(validator, bad)
    assert _schema_errors(validator, {"@schema": "x", "markups": [{"name": "no type"}]})


@pytest.mark.parametrize("system", ["LPS", "RAS"])
def test_written_markups_validate_against_slicer_schema(tmp_path, validator, system) -> None:
    pts = POINTS.copy()
    pts[1, 2] = np.nan  # written as an undefined (unplaced) control point
    path = write_slicer_markups(
        tmp_path / f"{system}.mrk.json",
        pts,
        orientations=_rotations().as_matrix(),
        coordinate_system=system,
        name="swabs",
    )
    doc = json.loads(path.read_text())
    assert _schema_errors(validator, doc) == []
    cps = doc["markups"][0]["controlPoints"]
    assert [cp["positionStatus"] for cp in cps] == ["defined", "undefined", "defined"]
    assert "position" not in cps[1]
    back, labels = read_slicer_markups(path)
    np.testing.assert_allclose(back, POINTS[[0, 2]], atol=1e-12)
    assert labels == ["swabs-1", "swabs-3"]


def test_lps_and_ras_files_give_the_same_lps_points_and_orientations(tmp_path, validator) -> None:
    R = _rotations().as_matrix()
    lps = write_slicer_markups(tmp_path / "lps.mrk.json", POINTS, orientations=R)
    ras = write_slicer_markups(
        tmp_path / "ras.mrk.json", POINTS, orientations=R, coordinate_system="RAS"
    )
    for path in (lps, ras):
        assert _schema_errors(validator, json.loads(path.read_text())) == []
        (node,) = read_slicer_markups_nodes(path)
        np.testing.assert_allclose(node.points_lps_mm, POINTS, atol=1e-12)
        np.testing.assert_allclose(node.orientations_lps, R, atol=1e-12)
        assert node.has_orientation.tolist() == [True, True, True]
        assert node.name == "F" and node.type == "Fiducial"
    cp_lps = json.loads(lps.read_text())["markups"][0]["controlPoints"][1]
    cp_ras = json.loads(ras.read_text())["markups"][0]["controlPoints"][1]
    # Positions: RAS = (-x, -y, z). Orientation (90 deg about x; columns = the point's axes,
    # stored row-major): the LPS axes x=(1,0,0), y=(0,0,1), z=(0,-1,0) become in RAS
    # x=(-1,0,0), y=(0,0,1), z=(0,1,0): rows 0 and 1 negated (Slicer: values 0..5 negated).
    assert cp_lps["position"] == [-4.0, 5.5, -6.25]
    assert cp_ras["position"] == [4.0, -5.5, -6.25]
    np.testing.assert_allclose(cp_lps["orientation"], [1, 0, 0, 0, 0, -1, 0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(cp_ras["orientation"], [-1, 0, 0, 0, 0, 1, 0, 1, 0], atol=1e-15)
    x_axis_ras = np.array(cp_ras["orientation"])[[0, 3, 6]]  # the schema's x-vector rule
    np.testing.assert_allclose(x_axis_ras, [-1.0, 0.0, 0.0], atol=1e-15)


def test_orientation_conversion_is_slicers_left_flip(tmp_path) -> None:
    R_ras = Rotation.from_euler("zyx", [33, -12, 71], degrees=True).as_matrix()
    # vtkMRMLMarkupsJsonStorageNode::WriteControlPoints writes LPS by negating values 0..5 of
    # its (row-major, RAS) orientation; the reader must recover F @ R_ras in LPS.
    slicer_lps = R_ras.ravel().copy()
    slicer_lps[:6] *= -1.0
    doc = {
        "@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/"
        "Markups/Resources/Schema/markups-schema-v1.0.3.json#",
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": "LPS",
                "controlPoints": [
                    {"position": [1.0, 2.0, 3.0], "orientation": slicer_lps.tolist()}
                ],
            }
        ],
    }
    (tmp_path / "s.mrk.json").write_text(json.dumps(doc))
    (node,) = read_slicer_markups_nodes(tmp_path / "s.mrk.json")
    np.testing.assert_allclose(node.orientations_lps[0], F @ R_ras, atol=1e-15)
    np.testing.assert_allclose(orientation_lps_to_ras(node.orientations_lps[0]), R_ras, atol=1e-15)
    assert not np.allclose(F @ R_ras @ F, F @ R_ras)  # the two conventions differ here


def test_default_orientation_is_slicers_identity_in_ras(tmp_path) -> None:
    lps = write_slicer_markups(tmp_path / "a.mrk.json", POINTS[:1])
    ras = write_slicer_markups(tmp_path / "b.mrk.json", POINTS[:1], coordinate_system="RAS")
    o_lps = json.loads(lps.read_text())["markups"][0]["controlPoints"][0]["orientation"]
    o_ras = json.loads(ras.read_text())["markups"][0]["controlPoints"][0]["orientation"]
    assert o_lps == [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0]
    assert o_ras == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    for path in (lps, ras):
        np.testing.assert_array_equal(read_slicer_markups_nodes(path)[0].orientations_lps[0], F)
    np.testing.assert_array_equal(FLIP_LPS_RAS, F)


def _many_forms_document() -> dict:
    rot = Rotation.from_euler("z", 90, degrees=True).as_matrix()  # x axis -> +y
    return {
        "@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/"
        "Markups/Resources/Schema/markups-schema-v1.0.3.json#",
        "markups": [
            {
                "type": "Fiducial",
                "name": "pointer",
                "coordinateSystem": "RAS",
                "coordinateUnits": ["mm", "UCUM", "millimeter"],
                "controlPoints": [
                    {
                        "label": "p1",
                        "position": [1.0, 2.0, 3.0],
                        "orientation": rot.ravel().tolist(),
                    },
                    {"position": [4, 5, 6]},  # no label, status, orientation: all optional
                    {"label": "not placed", "positionStatus": "undefined"},
                    {"label": "no position"},
                    {"label": "p5", "position": [7.0, 8.0, 9.0], "positionStatus": "preview"},
                ],
            },
            {
                "type": "Curve",
                "coordinateUnits": "um",
                "controlPoints": [{"position": [1500, 0, -250]}],
            },
            {"type": "Line"},
            {
                "type": "ROI",
                "coordinateSystem": "LPS",
                "coordinateUnits": "mm",
                "center": [0.0, 0.0, 0.0],
                "orientation": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                "size": [5.0, 5.0, 4.0],
                "controlPoints": [],
                "measurements": [{"name": "volume", "units": ["cm3", "UCUM", "cubic centimeter"]}],
                "display": {"color": [0.4, 1.0, 1.0]},
            },
        ],
    }


def test_reader_accepts_the_schema_valid_forms(tmp_path, validator) -> None:
    doc = _many_forms_document()
    assert _schema_errors(validator, doc) == []
    (tmp_path / "m.mrk.json").write_text(json.dumps(doc))
    nodes = read_slicer_markups_nodes(tmp_path / "m.mrk.json")
    assert [n.type for n in nodes] == ["Fiducial", "Curve", "Line", "ROI"]
    pointer, curve, line, roi = nodes
    assert pointer.name == "pointer" and pointer.labels == ("p1", "F-2", "p5")
    np.testing.assert_array_equal(pointer.points_lps_mm, [[-1, -2, 3], [-4, -5, 6], [-7, -8, 9]])
    assert pointer.has_orientation.tolist() == [True, False, False]
    # RAS x axis +y (0, 1, 0) is LPS (0, -1, 0); unset orientations are Slicer's default.
    np.testing.assert_allclose(pointer.orientations_lps[0][:, 0], [0.0, -1.0, 0.0], atol=1e-15)
    np.testing.assert_array_equal(pointer.orientations_lps[1], F)
    np.testing.assert_allclose(curve.points_lps_mm, [[1.5, 0.0, -0.25]])  # um -> mm
    assert line.points_lps_mm.shape == (0, 3) and roi.points_lps_mm.shape == (0, 3)
    points, labels = read_slicer_markups(tmp_path / "m.mrk.json")
    assert points.shape == (4, 3) and labels == ["p1", "F-2", "p5", "F-1"]
    np.testing.assert_allclose(read_points(tmp_path / "m.mrk.json"), points)


def test_slicers_own_undefined_point_with_an_empty_position_is_skipped(tmp_path) -> None:
    # Slicer writes "position": "" for an undefined control point (WriteControlPoints).
    doc = {
        "@schema": "markups-schema-v1.0.3.json#",
        "markups": [
            {
                "type": "Fiducial",
                "controlPoints": [
                    {"label": "a", "position": "", "positionStatus": "undefined"},
                    {"label": "b", "position": [1.0, 2.0, 3.0], "positionStatus": "defined"},
                ],
            }
        ],
    }
    (tmp_path / "u.mrk.json").write_text(json.dumps(doc))
    points, labels = read_slicer_markups(tmp_path / "u.mrk.json")
    np.testing.assert_array_equal(points, [[1.0, 2.0, 3.0]])
    assert labels == ["b"]


def _doc(node: object) -> dict:
    return {"@schema": "markups-schema-v1.0.3.json#", "markups": [node]}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (_doc("Fiducial"), r"markups\[0\] must be an object, got 'Fiducial'"),
        (_doc({"type": "Fiducial", "controlPoints": [3]}), r"controlPoints\[0\] must be an object"),
        (
            _doc({"type": "Fiducial", "controlPoints": [{"position": "1, 2, 3"}]}),
            r"controlPoints\[0\]\.position must be a list of 3 numbers, got '1, 2, 3'",
        ),
        (
            _doc({"type": "Fiducial", "controlPoints": [{"position": [1, True, 3]}]}),
            r"position must be a list of 3 numbers",
        ),
        (
            _doc({"controlPoints": [{"position": [1, 2, 3], "orientation": [1, 0, 0, 0, 1, 0]}]}),
            r"orientation must be a list of 9 numbers",
        ),
        (_doc({"coordinateUnits": "in"}), r"coordinateUnits: unit 'in' is not one of"),
        (_doc({"coordinateUnits": ["mm", "DCM", "millimeter"]}), r"coding scheme must be 'UCUM'"),
        (_doc({"coordinateUnits": 1}), r"must be a unit string or \[code, 'UCUM', meaning\]"),
        (_doc({"coordinateSystem": "XYZ"}), r"coordinateSystem must be 'LPS' or 'RAS'"),
        (
            _doc({"controlPoints": [{"position": [1, 2, 3], "positionStatus": "maybe"}]}),
            r"positionStatus must be one of",
        ),
        ({"markups": {"type": "Fiducial"}}, r"expected a 'markups' array"),
        ([1, 2, 3], r"expected a 'markups' array"),
    ],
)
def test_bad_markups_name_the_field(tmp_path, content, match) -> None:
    path = tmp_path / "bad.mrk.json"
    path.write_text(json.dumps(content))
    with pytest.raises(PointFileError, match=match) as info:
        read_points(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_binary_or_broken_markups_files(tmp_path) -> None:
    (tmp_path / "bin.mrk.json").write_bytes(bytes(range(256)))
    with pytest.raises(PointFileError, match=r"bin.mrk.json: not a text file \(byte 128"):
        read_points(tmp_path / "bin.mrk.json")
    (tmp_path / "cut.mrk.json").write_text('{"markups": [')
    with pytest.raises(PointFileError, match=r"invalid JSON: Expecting value at line 1"):
        read_points(tmp_path / "cut.mrk.json")
    (tmp_path / "empty.mrk.json").write_text(json.dumps(_doc({"type": "Fiducial"})))
    with pytest.raises(PointFileError, match="no placed control points"):
        read_points(tmp_path / "empty.mrk.json")


def test_writer_refuses_bad_orientations(tmp_path) -> None:
    with pytest.raises(PointFileError, match=r"orientations must have shape \(3, 3, 3\)"):
        write_slicer_markups(tmp_path / "o.mrk.json", POINTS, orientations=np.eye(4))
    bad = np.broadcast_to(np.eye(3), (3, 3, 3)).copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(PointFileError, match="orientations must be finite"):
        write_slicer_markups(tmp_path / "o.mrk.json", POINTS, orientations=bad)
    assert not (tmp_path / "o.mrk.json").exists()
