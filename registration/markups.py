"""3D Slicer markups files (``.mrk.json``): control points and their orientations, LPS mm inside.

Format: 3D Slicer's markups JSON schema v1.0.3 (``Modules/Loadable/Markups/Resources/Schema/
markups-schema-v1.0.3.json`` in Slicer's source; the tests keep a copy in
``tests/data/slicer_markups_schema/``). A file holds one or more markups (the ``"markups"``
array). Each has ``coordinateSystem`` ``"LPS"`` (the default) or ``"RAS"``, and
``coordinateUnits`` as a string (``"mm"``, ``"um"``) or as a coded entry ``[code, "UCUM",
meaning]``. No control point field is required: a point without ``position``, or with
``positionStatus`` ``"undefined"``, is not placed and is skipped on read.

Positions: ``(x, y, z)_RAS = (-x, -y, z)_LPS``.

Orientations: a control point may carry a 3x3 ``orientation`` stored row-major, whose columns
are the point's own x, y, z axes in the file's coordinate system (the schema: ``[o[0], o[3],
o[6]]`` is the x axis). 3D Slicer converts between its internal RAS and an LPS file by negating
the first six values, i.e. the first two rows (``vtkMRMLMarkupsJsonStorageNode::
WriteControlPoints`` and ``ReadControlPoints``)::

    R_LPS = F @ R_RAS,   F = diag(-1, -1, 1)

The point's own axes keep their names, so the change of space multiplies on the left only (not
``F @ R @ F``). A point without ``orientation`` has Slicer's default, the identity in RAS, which
is ``F`` in LPS (:data:`DEFAULT_ORIENTATION_LPS`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration._atomic import write_text_atomic
from registration._io_errors import PointFileError
from registration._points import as_points

__all__ = [
    "DEFAULT_ORIENTATION_LPS",
    "FLIP_LPS_RAS",
    "MARKUPS_SCHEMA",
    "MM_PER_UNIT",
    "MarkupsNode",
    "lps_to_ras",
    "orientation_lps_to_ras",
    "orientation_ras_to_lps",
    "read_slicer_markups",
    "read_slicer_markups_nodes",
    "write_slicer_markups",
]

#: The ``@schema`` 3D Slicer itself writes (its regex accepts any v1.x.y markups schema URL).
MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/"
    "Schema/markups-schema-v1.0.3.json#"
)
#: LPS <-> RAS change of space, ``diag(-1, -1, 1)`` (its own inverse).
FLIP_LPS_RAS = np.diag([-1.0, -1.0, 1.0])
#: Orientation of a control point stored without one: Slicer's identity in RAS, seen in LPS.
DEFAULT_ORIENTATION_LPS = FLIP_LPS_RAS
#: Millimetres per UCUM length unit accepted in ``coordinateUnits`` (the schema lists mm, um).
MM_PER_UNIT = {"mm": 1.0, "um": 1.0e-3, "cm": 10.0, "m": 1000.0}
#: Values of a control point's ``positionStatus`` (the schema's enum).
POSITION_STATUSES = ("undefined", "preview", "defined")


@dataclass(frozen=True, eq=False)
class MarkupsNode:
    """One markups node of a 3D Slicer markups file, in LPS mm.

    Attributes
    ----------
    name : str
        Node name (``""`` when the file gives none).
    type : str
        Markups type (``"Fiducial"``, ``"Curve"``, ...).
    points_lps_mm : numpy.ndarray, shape (N, 3)
        Placed control points (``defined`` or ``preview``), LPS mm.
    labels : tuple of str
        One label per point.
    orientations_lps : numpy.ndarray, shape (N, 3, 3)
        Orientation of each point in LPS, columns = the point's x, y, z axes;
        :data:`DEFAULT_ORIENTATION_LPS` where the file gives none.
    has_orientation : numpy.ndarray of bool, shape (N,)
        Whether the file gave the point an orientation.
    """

    name: str
    type: str
    points_lps_mm: NDArray[np.float64]
    labels: tuple[str, ...]
    orientations_lps: NDArray[np.float64]
    has_orientation: NDArray[np.bool_]


def lps_to_ras(points: ArrayLike) -> NDArray[np.float64]:
    """Convert LPS to RAS positions (or back: the map is its own inverse), mm.

    Parameters
    ----------
    points : array_like, shape (..., 3)
        Positions, mm.

    Returns
    -------
    numpy.ndarray, shape (..., 3)
        ``(-x, -y, z)``.
    """
    p = np.array(points, dtype=np.float64)
    p[..., :2] *= -1.0
    return p


def orientation_lps_to_ras(orientation: ArrayLike) -> NDArray[np.float64]:
    """Convert control point orientations from LPS to RAS: ``R_RAS = F @ R_LPS``.

    ``F = diag(-1, -1, 1)``; the map is its own inverse (see the module docstring for Slicer's
    convention).

    Parameters
    ----------
    orientation : array_like, shape (..., 3, 3)
        Orientation matrices, columns = the point's axes.

    Returns
    -------
    numpy.ndarray, shape (..., 3, 3)
    """
    return FLIP_LPS_RAS @ np.asarray(orientation, dtype=np.float64)


def orientation_ras_to_lps(orientation: ArrayLike) -> NDArray[np.float64]:
    """Convert control point orientations from RAS to LPS: ``R_LPS = F @ R_RAS``.

    Parameters
    ----------
    orientation : array_like, shape (..., 3, 3)
        Orientation matrices, columns = the point's axes.

    Returns
    -------
    numpy.ndarray, shape (..., 3, 3)
    """
    return orientation_lps_to_ras(orientation)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _load_markups_list(p: Path) -> list[dict[str, Any]]:
    """The file's ``markups`` array, each entry checked to be an object."""
    if not p.is_file():
        raise PointFileError(f"markups file not found: {p}")
    raw = p.read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise PointFileError(
            f"{p}: not a text file (byte {exc.start} is not UTF-8); expected 3D Slicer markups JSON"
        ) from exc
    except json.JSONDecodeError as exc:
        raise PointFileError(
            f"{p}: not a 3D Slicer markups file (invalid JSON: {exc.msg} at line {exc.lineno})"
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("markups"), list):
        raise PointFileError(f"{p}: not a 3D Slicer markups file (expected a 'markups' array)")
    for i, node in enumerate(doc["markups"]):
        if not isinstance(node, dict):
            raise PointFileError(f"{p}: markups[{i}] must be an object, got {_short(node)}")
    return doc["markups"]


def _mm_per_unit(units: Any, where: str) -> float:
    """Millimetres per file unit of ``coordinateUnits`` (string or UCUM coded entry)."""
    if isinstance(units, str):
        code = units
    elif isinstance(units, list) and len(units) == 3 and all(isinstance(u, str) for u in units):
        code, scheme, _meaning = units
        if scheme != "UCUM":
            raise PointFileError(f"{where}: coding scheme must be 'UCUM', got {scheme!r}")
    else:
        raise PointFileError(
            f"{where} must be a unit string or [code, 'UCUM', meaning], got {_short(units)}"
        )
    if code not in MM_PER_UNIT:
        raise PointFileError(f"{where}: unit {code!r} is not one of {sorted(MM_PER_UNIT)}")
    return MM_PER_UNIT[code]


def _numbers(value: Any, n: int, where: str) -> list[float]:
    ok = isinstance(value, list) and len(value) == n
    if ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    raise PointFileError(f"{where} must be a list of {n} numbers, got {_short(value)}")


def _control_point(
    cp: Any, where: str, default_label: str
) -> tuple[list[float], str, NDArray[np.float64] | None] | None:
    """(position, label, orientation or None) in the file's space, or None if not placed."""
    if not isinstance(cp, dict):
        raise PointFileError(f"{where} must be an object, got {_short(cp)}")
    status = cp.get("positionStatus", "defined")
    if status not in POSITION_STATUSES:
        raise PointFileError(
            f"{where}.positionStatus must be one of {POSITION_STATUSES}, got {status!r}"
        )
    if status == "undefined" or "position" not in cp:
        return None  # Slicer writes "position": "" for an undefined point
    position = _numbers(cp["position"], 3, f"{where}.position")
    orientation = None
    if "orientation" in cp:
        orientation = np.reshape(_numbers(cp["orientation"], 9, f"{where}.orientation"), (3, 3))
    return position, str(cp.get("label", default_label)), orientation


def _parse_node(node: dict[str, Any], where: str) -> MarkupsNode:
    system = node.get("coordinateSystem", "LPS")
    if system not in ("LPS", "RAS"):
        raise PointFileError(
            f"{where}.coordinateSystem must be 'LPS' or 'RAS', got {_short(system)}"
        )
    scale = _mm_per_unit(node.get("coordinateUnits", "mm"), f"{where}.coordinateUnits")
    cps = node.get("controlPoints", [])
    if not isinstance(cps, list):
        raise PointFileError(f"{where}.controlPoints must be a list, got {_short(cps)}")
    rows = [
        _control_point(cp, f"{where}.controlPoints[{j}]", f"F-{j + 1}") for j, cp in enumerate(cps)
    ]
    rows = [r for r in rows if r is not None]
    points = np.array([r[0] for r in rows], dtype=np.float64).reshape(-1, 3) * scale
    orientations = np.array(
        [FLIP_LPS_RAS if r[2] is None else r[2] for r in rows], dtype=np.float64
    ).reshape(-1, 3, 3)
    given = np.array([r[2] is not None for r in rows], dtype=bool)
    if system == "RAS":
        points = lps_to_ras(points)
        orientations[given] = orientation_ras_to_lps(orientations[given])
    return MarkupsNode(
        name=str(node.get("name", "")),
        type=str(node.get("type", "")),
        points_lps_mm=points,
        labels=tuple(r[1] for r in rows),
        orientations_lps=orientations,
        has_orientation=given,
    )


def read_slicer_markups_nodes(path: str | Path) -> list[MarkupsNode]:
    """Read every markups node of a 3D Slicer markups file (any schema-valid form).

    Parameters
    ----------
    path : str or pathlib.Path
        Markups file (``.mrk.json``; any markups type; LPS or RAS; mm, um or a UCUM coded
        length unit).

    Returns
    -------
    list of MarkupsNode
        In file order; positions in LPS mm, orientations in LPS.

    Raises
    ------
    PointFileError
        Missing or binary file, invalid JSON, a non-object entry, a position that is not three
        numbers, an orientation that is not nine numbers, or an unknown unit, system or status.
    """
    p = Path(path)
    return [_parse_node(node, f"{p}: markups[{i}]") for i, node in enumerate(_load_markups_list(p))]


def read_slicer_markups(path: str | Path) -> tuple[NDArray[np.float64], list[str]]:
    """Read the placed control points of all markups nodes of a 3D Slicer ``.mrk.json`` file.

    Parameters
    ----------
    path : str or pathlib.Path
        Markups file (see :func:`read_slicer_markups_nodes`).

    Returns
    -------
    points : numpy.ndarray, shape (N, 3)
        Positions in LPS mm, nodes in file order (undefined control points skipped).
    labels : list of str
        Control point labels.

    Raises
    ------
    PointFileError
        As :func:`read_slicer_markups_nodes`.
    """
    nodes = read_slicer_markups_nodes(path)
    points = np.concatenate([n.points_lps_mm for n in nodes]) if nodes else np.empty((0, 3))
    return points, [label for n in nodes for label in n.labels]


def _orientations_lps(orientations: ArrayLike | None, n: int) -> NDArray[np.float64]:
    if orientations is None:
        return np.broadcast_to(DEFAULT_ORIENTATION_LPS, (n, 3, 3))
    try:
        arr = np.broadcast_to(np.asarray(orientations, dtype=np.float64), (n, 3, 3))
    except (TypeError, ValueError) as exc:
        shape = np.shape(orientations)
        raise PointFileError(
            f"orientations must have shape ({n}, 3, 3) or (3, 3), got {shape}"
        ) from exc
    if not np.all(np.isfinite(arr)):
        raise PointFileError("orientations must be finite")
    return arr


def _control_point_document(
    index: int, label: str, position: NDArray[np.float64], orientation: NDArray[np.float64]
) -> dict[str, Any]:
    placed = bool(np.all(np.isfinite(position)))
    cp: dict[str, Any] = {
        "id": str(index + 1),
        "label": label,
        "description": "",
        "associatedNodeID": "",
    }
    if placed:
        cp["position"] = [float(v) + 0.0 for v in position]  # + 0.0: no "-0.0" in the file
    cp["orientation"] = [float(v) + 0.0 for v in orientation.ravel()]  # row-major, as Slicer
    cp.update(selected=True, locked=False, visibility=True)
    cp["positionStatus"] = "defined" if placed else "undefined"
    return cp


def write_slicer_markups(
    path: str | Path,
    points: ArrayLike,
    labels: list[str] | None = None,
    *,
    orientations: ArrayLike | None = None,
    coordinate_system: str = "LPS",
    name: str = "F",
) -> Path:
    """Write LPS points as a 3D Slicer fiducial markups file (``.mrk.json``), atomically.

    The file validates against Slicer's markups schema v1.0.3. A point with a NaN or infinite
    coordinate is written as an undefined (unplaced) control point, without ``position``.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file (should end in ``.mrk.json``).
    points : array_like, shape (N, 3)
        Positions in LPS mm.
    labels : list of str, optional
        One label per point (default ``<name>-1``, ``<name>-2``, ...).
    orientations : array_like, shape (N, 3, 3) or (3, 3), optional, keyword-only
        Orientation of each point in LPS (columns = the point's axes); default Slicer's
        (:data:`DEFAULT_ORIENTATION_LPS`).
    coordinate_system : {"LPS", "RAS"}, keyword-only
        Space written in the file: in ``"RAS"`` positions become ``(-x, -y, z)`` and
        orientations ``F @ R`` (:func:`orientation_lps_to_ras`).
    name : str, keyword-only
        Node name.

    Returns
    -------
    pathlib.Path
    """
    pts = as_points(points, name="points")
    if coordinate_system not in ("LPS", "RAS"):
        raise PointFileError(f"coordinate_system must be 'LPS' or 'RAS', got {coordinate_system!r}")
    if labels is None:
        labels = [f"{name}-{i + 1}" for i in range(len(pts))]
    if len(labels) != len(pts):
        raise PointFileError(f"{len(labels)} labels for {len(pts)} points")
    rot = _orientations_lps(orientations, len(pts))
    if coordinate_system == "RAS":
        pts, rot = lps_to_ras(pts), orientation_lps_to_ras(rot)
    node = {
        "type": "Fiducial",
        "name": name,
        "coordinateSystem": coordinate_system,
        "coordinateUnits": "mm",
        "locked": False,
        "fixedNumberOfControlPoints": False,
        "labelFormat": "%N-%d",
        "lastUsedControlPointNumber": len(pts),
        "controlPoints": [
            _control_point_document(i, str(labels[i]), pts[i], rot[i]) for i in range(len(pts))
        ],
        "measurements": [],
    }
    p = Path(path)
    write_text_atomic(p, json.dumps({"@schema": MARKUPS_SCHEMA, "markups": [node]}, indent=2))
    return p
