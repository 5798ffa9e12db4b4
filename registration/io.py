"""Files in and out: point lists, 3D Slicer markups (``.mrk.json``) and ITK transform files.

Coordinates inside the package are LPS mm. 3D Slicer markups may be stored in RAS or LPS (the
``coordinateSystem`` field); they are converted on read, and written in LPS unless asked otherwise
(``(x, y, z)_RAS = (-x, -y, z)_LPS``).

ITK transform files hold the *resampling* transform, which maps points of the fixed space into
the moving space, in LPS. :func:`write_itk_transform` therefore writes ``T_points_model =
inverse(T_model_points)``: loaded into 3D Slicer (which converts LPS to RAS and treats the file as
the transform *from parent*), the transform node, applied to the points/markups node, moves the
points onto the model. :func:`read_itk_transform` undoes exactly this and returns
``T_model_points``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration._atomic import write_atomic, write_text_atomic
from registration._points import as_points, as_transform
from registration.errors import RegistrationError

__all__ = [
    "PointFileError",
    "read_points",
    "read_slicer_markups",
    "write_slicer_markups",
    "write_itk_transform",
    "read_itk_transform",
    "read_transform_txt",
    "lps_to_ras",
]

MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/"
    "Schema/markups-schema-v1.0.3.json#"
)


class PointFileError(RegistrationError):
    """A point, markups or transform file is missing, malformed or has unexpected content."""


def lps_to_ras(points: ArrayLike) -> NDArray[np.float64]:
    """Convert LPS to RAS coordinates (or back: the map is its own inverse), mm."""
    p = np.array(points, dtype=np.float64)
    p[..., :2] *= -1.0
    return p


def read_slicer_markups(path: str | Path) -> tuple[NDArray[np.float64], list[str]]:
    """Read control points of the first markups node of a 3D Slicer ``.mrk.json`` file.

    Parameters
    ----------
    path : str or pathlib.Path
        Markups file (any markups type; RAS or LPS).

    Returns
    -------
    points : numpy.ndarray, shape (N, 3)
        Positions in LPS mm (undefined/missing control points are skipped).
    labels : list of str
        Control point labels.

    Raises
    ------
    PointFileError
        Missing file, invalid JSON, no markups, or units other than mm.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        node = doc["markups"][0]
    except FileNotFoundError as exc:
        raise PointFileError(f"markups file not found: {p}") from exc
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise PointFileError(f"{p}: not a 3D Slicer markups file ({exc!r})") from exc
    units = node.get("coordinateUnits", "mm")
    if units != "mm":
        raise PointFileError(f"{p}: coordinateUnits must be 'mm', got {units!r}")
    system = node.get("coordinateSystem", "LPS")
    if system not in ("LPS", "RAS"):
        raise PointFileError(f"{p}: coordinateSystem must be 'LPS' or 'RAS', got {system!r}")
    pts, labels = [], []
    for i, cp in enumerate(node.get("controlPoints", [])):
        if cp.get("positionStatus", "defined") not in ("defined", "preview"):
            continue
        pos = cp.get("position")
        if not (isinstance(pos, list) and len(pos) == 3):
            raise PointFileError(f"{p}: control point {i} has no 3-value position: {pos!r}")
        pts.append([float(v) for v in pos])
        labels.append(str(cp.get("label", f"F-{i + 1}")))
    arr = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
    return (lps_to_ras(arr) if system == "RAS" else arr), labels


def write_slicer_markups(
    path: str | Path,
    points: ArrayLike,
    labels: list[str] | None = None,
    *,
    coordinate_system: str = "LPS",
    name: str = "F",
) -> Path:
    """Write LPS points as a 3D Slicer fiducial markups file (``.mrk.json``), atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file (should end in ``.mrk.json``).
    points : array_like, shape (N, 3)
        Positions in LPS mm.
    labels : list of str, optional
        One label per point (default ``F-1``, ``F-2``, ...).
    coordinate_system : {"LPS", "RAS"}, keyword-only
        Space written in the file (points are converted when ``"RAS"``).
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
    out = lps_to_ras(pts) if coordinate_system == "RAS" else pts
    doc = {
        "@schema": MARKUPS_SCHEMA,
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": coordinate_system,
                "coordinateUnits": "mm",
                "locked": False,
                "fixedNumberOfControlPoints": False,
                "labelFormat": "%N-%d",
                "lastUsedControlPointNumber": len(pts),
                "controlPoints": [
                    {
                        "id": str(i + 1),
                        "label": labels[i],
                        "description": "",
                        "associatedNodeID": "",
                        "position": [float(v) for v in out[i]],
                        "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
                        "selected": True,
                        "locked": False,
                        "visibility": True,
                        "positionStatus": "defined",
                    }
                    for i in range(len(pts))
                ],
                "measurements": [],
            }
        ],
    }
    p = Path(path)
    write_text_atomic(p, json.dumps(doc, indent=2))
    return p


def read_points(path: str | Path) -> NDArray[np.float64]:
    """Read points (LPS mm) from CSV, XYZ/TXT, PLY or 3D Slicer ``.mrk.json``.

    CSV: comma-separated, an optional header line, the first three columns are x, y, z. XYZ/TXT:
    whitespace-separated x y z per line. NaN/infinite values are kept (registration drops and
    counts them).

    Raises
    ------
    PointFileError
        Missing file, unknown extension or unparsable content.
    """
    p = Path(path)
    if not p.is_file():
        raise PointFileError(f"points file not found: {p}")
    name = p.name.lower()
    if name.endswith(".mrk.json") or name.endswith(".json"):
        return read_slicer_markups(p)[0]
    if name.endswith(".ply"):
        import open3d as o3d

        pcd = o3d.io.read_point_cloud(str(p), remove_nan_points=False, remove_infinite_points=False)
        pts = np.asarray(pcd.points, dtype=np.float64)
        if len(pts) == 0:
            raise PointFileError(f"{p}: no points read from PLY")
        return pts
    if name.endswith((".csv", ".xyz", ".txt")):
        delim = "," if name.endswith(".csv") else None
        rows = []
        with p.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                s = line.strip()
                if not s or s.startswith("#"):
                    continue
                parts = s.split(delim)
                try:
                    rows.append([float(v) for v in parts[:3]])
                except ValueError as exc:
                    if not rows and lineno == 1:
                        continue  # header line
                    raise PointFileError(f"{p}:{lineno}: expected numbers x, y, z: {s!r}") from exc
                if len(rows[-1]) != 3:
                    raise PointFileError(f"{p}:{lineno}: expected 3 values, got {s!r}")
        if not rows:
            raise PointFileError(f"{p}: no points")
        return np.asarray(rows, dtype=np.float64)
    raise PointFileError(f"{p}: unknown points format (expected .csv, .xyz, .txt, .ply, .mrk.json)")


def write_itk_transform(path: str | Path, T_model_points: ArrayLike) -> Path:
    """Write a registration as an ITK transform file that 3D Slicer loads (``.tfm``/``.txt``).

    The file holds ``T_points_model = inverse(T_model_points)`` as an ``AffineTransform_double_3_3``
    in LPS: ITK's resampling convention (fixed = model space, moving = points space). In 3D
    Slicer, put the points node under the loaded transform to see them on the model.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file, ``.tfm`` or ``.txt``.
    T_model_points : array_like, shape (4, 4)
        Registration result, LPS mm.

    Returns
    -------
    pathlib.Path
    """
    import SimpleITK as sitk

    T = as_transform(T_model_points, name="T_model_points")
    inv = np.linalg.inv(T)
    p = Path(path)
    if p.suffix not in (".tfm", ".txt"):
        raise PointFileError(f"{p}: ITK transform files end in .tfm or .txt")
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(inv[:3, :3].ravel().tolist())
    tx.SetTranslation(inv[:3, 3].tolist())
    tx.SetCenter((0.0, 0.0, 0.0))
    return write_atomic(p, lambda tmp: sitk.WriteTransform(tx, str(tmp)))


def read_itk_transform(path: str | Path) -> NDArray[np.float64]:
    """Read an ITK transform file written by :func:`write_itk_transform`; return ``T_model_points``.

    Any ITK linear 3-D transform (affine, Euler, versor) is accepted; the file's resampling
    transform is inverted.

    Raises
    ------
    PointFileError
        Missing file or a non-linear transform.
    """
    import SimpleITK as sitk

    p = Path(path)
    if not p.is_file():
        raise PointFileError(f"transform file not found: {p}")
    try:
        tx = sitk.ReadTransform(str(p))
        if tx.GetName() == "CompositeTransform":
            tx = sitk.CompositeTransform(tx)
            if tx.GetNumberOfTransforms() != 1:
                raise PointFileError(f"{p}: expected one linear transform")
            tx = tx.GetNthTransform(0)
        aff = sitk.AffineTransform(tx)
    except (RuntimeError, TypeError) as exc:
        raise PointFileError(f"{p}: not a linear ITK transform ({exc})") from exc
    A = np.array(aff.GetMatrix(), dtype=np.float64).reshape(3, 3)
    c = np.array(aff.GetCenter())
    t = np.array(aff.GetTranslation())
    M = np.eye(4)
    M[:3, :3] = A
    M[:3, 3] = t + c - A @ c  # ITK: y = A (x - c) + c + t
    return np.linalg.inv(M)


def read_transform_txt(path: str | Path) -> NDArray[np.float64]:
    """Read a 4x4 matrix (whitespace/comma separated text, 4 rows) or an ITK transform file.

    A plain 4x4 text matrix is taken as ``T_model_points`` as is; ``.tfm`` files go through
    :func:`read_itk_transform`.
    """
    p = Path(path)
    if not p.is_file():
        raise PointFileError(f"transform file not found: {p}")
    text = p.read_text(encoding="utf-8")
    if text.lstrip().startswith("#Insight Transform File") or p.suffix == ".tfm":
        return read_itk_transform(p)
    try:
        vals = [float(v) for v in text.replace(",", " ").split()]
    except ValueError as exc:
        raise PointFileError(f"{p}: expected 16 numbers of a 4x4 matrix ({exc})") from exc
    if len(vals) != 16:
        raise PointFileError(f"{p}: expected 16 numbers of a 4x4 matrix, got {len(vals)}")
    try:
        return as_transform(np.asarray(vals).reshape(4, 4), name=str(p))
    except RegistrationError as exc:
        raise PointFileError(str(exc)) from exc
