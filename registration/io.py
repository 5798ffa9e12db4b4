"""Files in and out: point lists, meshes as points, 3D Slicer markups and ITK transform files.

Coordinates inside the package are LPS mm. 3D Slicer markups (:mod:`registration.markups`) may be
stored in RAS or LPS; they are converted on read, and written in LPS unless asked otherwise.
Meshes given as points (:mod:`registration.mesh_points`) contribute their vertices.

Transform files and their direction
-----------------------------------
The registration result is ``T_model_points``: it maps measured points (tracker space) into model
space, as in ``surgplan register --json``. ITK transform files hold the *resampling* transform,
which maps points of the fixed space into the moving space, in LPS. :func:`write_itk_transform`
therefore writes ``T_points_model = inverse(T_model_points)`` (``T_tracker_model`` when the points
are tracker points): loaded into 3D Slicer (which converts LPS to RAS and treats the file as the
transform *from parent*), the transform node, applied to the points/markups node, moves the
points onto the model. :func:`read_itk_transform` undoes exactly this and returns
``T_model_points``. A plain 4x4 text matrix (:func:`read_transform_txt`) is ``T_model_points`` as
is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration._atomic import write_atomic
from registration._io_errors import PointFileError
from registration._points import as_transform
from registration.errors import RegistrationError
from registration.markups import (
    MARKUPS_SCHEMA,
    MarkupsNode,
    lps_to_ras,
    orientation_lps_to_ras,
    orientation_ras_to_lps,
    read_slicer_markups,
    read_slicer_markups_nodes,
    write_slicer_markups,
)
from registration.mesh_points import MESH_SUFFIXES, read_mesh_vertices

__all__ = [
    "MARKUPS_SCHEMA",
    "MESH_SUFFIXES",
    "POINT_FILE_SUFFIXES",
    "MarkupsNode",
    "PointFileError",
    "read_points",
    "read_mesh_vertices",
    "read_slicer_markups",
    "read_slicer_markups_nodes",
    "write_slicer_markups",
    "write_itk_transform",
    "read_itk_transform",
    "read_transform_txt",
    "check_transform_destination",
    "check_rigid",
    "lps_to_ras",
    "orientation_lps_to_ras",
    "orientation_ras_to_lps",
]

#: Suffixes :func:`read_points` reads as point lists (besides :data:`MESH_SUFFIXES`).
POINT_FILE_SUFFIXES = (".csv", ".xyz", ".txt", ".ply", ".mrk.json", ".json")
#: Largest coordinate magnitude accepted from a points file, mm (100 m: no patient, no room).
MAX_COORDINATE_MM = 1.0e5
#: Suffixes of ITK transform files :func:`write_itk_transform` writes.
TRANSFORM_SUFFIXES = (".tfm", ".txt")
#: Tolerance on the singular values of a rigid transform's 3x3 part (``|s - 1|``).
RIGID_TOLERANCE = 1.0e-3


def _read_text(p: Path, expected: str) -> str:
    """The UTF-8 text of ``p``; a binary file is a :class:`PointFileError` naming ``expected``."""
    raw = p.read_bytes()
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise PointFileError(f"{p}: binary content (NUL byte at offset {nul}); expected {expected}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PointFileError(
            f"{p}: not a text file (byte {exc.start} is not UTF-8); expected {expected}"
        ) from exc


def _read_text_points(p: Path) -> NDArray[np.float64]:
    """CSV (comma) or XYZ/TXT (whitespace) rows of x, y, z; an optional header line."""
    delim = "," if p.name.lower().endswith(".csv") else None
    rows: list[list[float]] = []
    lines = _read_text(p, "text with x, y, z per line").splitlines()
    for lineno, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split(delim)
        try:
            rows.append([float(v) for v in parts[:3]])
        except ValueError as exc:
            if not rows and lineno == 1:
                continue  # header line
            raise PointFileError(f"{p}:{lineno}: expected numbers x, y, z: {s[:60]!r}") from exc
        if len(rows[-1]) != 3:
            raise PointFileError(f"{p}:{lineno}: expected 3 values, got {s[:60]!r}")
    if not rows:
        raise PointFileError(f"{p}: no points")
    return np.asarray(rows, dtype=np.float64)


def _read_ply_points(p: Path) -> NDArray[np.float64]:
    import open3d as o3d

    pcd = o3d.io.read_point_cloud(str(p), remove_nan_points=False, remove_infinite_points=False)
    pts = np.asarray(pcd.points, dtype=np.float64)
    if len(pts) == 0:
        raise PointFileError(f"{p}: no points read from PLY")
    return pts


def read_points(path: str | Path, *, max_points: int | None = None) -> NDArray[np.float64]:
    """Read points (LPS mm) from a point list, a 3D Slicer markups file or a mesh's vertices.

    CSV: comma-separated, an optional header line, the first three columns are x, y, z. XYZ/TXT:
    whitespace-separated x y z per line. PLY: a point cloud (or a mesh's vertices). NaN/infinite
    values of these are kept (registration drops and counts them). ``.mrk.json``/``.json``: the
    placed control points of every markups node (:func:`read_slicer_markups`). ``.vtk``,
    ``.vtp``, ``.stl``, ``.obj``: the mesh's vertices, which must be finite
    (:func:`read_mesh_vertices`).

    Parameters
    ----------
    path : str or pathlib.Path
        Points file.
    max_points : int, optional, keyword-only
        Refuse a file with more points than this; a text file is refused from its line
        count, before it is parsed.

    Returns
    -------
    numpy.ndarray, shape (N, 3)
        Points, LPS mm.

    Raises
    ------
    PointFileError
        Missing or binary file, unknown extension, unparsable content, no points, more than
        ``max_points`` points, or finite coordinates beyond :data:`MAX_COORDINATE_MM`.
    """
    p = Path(path)
    if not p.is_file():
        raise PointFileError(f"points file not found: {p}")
    if max_points is not None and p.name.lower().endswith((".csv", ".xyz", ".txt")):
        with p.open("rb") as fh:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 24), b""))
        _check_count(p, lines, max_points, "lines")
    pts = _read_any_points(p)
    if max_points is not None:
        _check_count(p, len(pts), max_points, "points")
    return _plausible_coordinates(p, pts)


def _check_count(p: Path, n: int, max_points: int, what: str) -> None:
    if n > max_points:
        raise PointFileError(
            f"{p}: {n:,} {what}; at most {max_points:,} points are accepted (subsample the "
            "points: a few thousand constrain a registration fully)"
        )


def _read_any_points(p: Path) -> NDArray[np.float64]:
    """The points of ``p`` by its format (see :func:`read_points`)."""
    name = p.name.lower()
    if name.endswith(".json"):
        pts = read_slicer_markups(p)[0]
        if len(pts) == 0:
            raise PointFileError(f"{p}: no placed control points")
        return pts
    if name.endswith(".ply"):
        return _read_ply_points(p)
    if name.endswith(MESH_SUFFIXES):
        return read_mesh_vertices(p)
    if name.endswith((".csv", ".xyz", ".txt")):
        return _read_text_points(p)
    known = ", ".join(POINT_FILE_SUFFIXES + MESH_SUFFIXES)
    raise PointFileError(f"{p}: unknown points format (expected one of {known})")


def _plausible_coordinates(p: Path, pts: NDArray[np.float64]) -> NDArray[np.float64]:
    """``pts`` if every finite coordinate is within :data:`MAX_COORDINATE_MM`, else an error."""
    with np.errstate(invalid="ignore"):
        huge = np.isfinite(pts) & (np.abs(pts) > MAX_COORDINATE_MM)
    if huge.any():
        row = int(np.flatnonzero(huge.any(axis=1))[0])
        raise PointFileError(
            f"{p}: {int(huge.any(axis=1).sum())} point(s) have coordinates beyond "
            f"{MAX_COORDINATE_MM:g} mm (first: point {row}, {pts[row].tolist()}); expected "
            "patient coordinates in mm"
        )
    return pts


def check_transform_destination(path: str | Path) -> Path:
    """Check, before any work, that an ITK transform file can be written at ``path``.

    The suffix must be one of :data:`TRANSFORM_SUFFIXES`, ``path`` must not be a folder, and
    the folder it goes into (or, when missing, its nearest existing parent, where the folders
    will be created) must accept a new file: a temporary file is created there and removed.

    Parameters
    ----------
    path : str or pathlib.Path
        The file ``--write-transform`` names.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    PointFileError
        Wrong suffix, a folder, or a location where no file can be created.
    """
    import tempfile

    p = Path(path)
    if p.suffix.lower() not in TRANSFORM_SUFFIXES:
        raise PointFileError(f"{p}: ITK transform files end in .tfm or .txt")
    if p.is_dir():
        raise PointFileError(f"{p}: is a folder; expected a transform file name")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise PointFileError(f"{p}: cannot write here ({parent} is a file, not a folder)")
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=".surgplan-write-check."):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PointFileError(f"{p}: cannot write in {parent} ({reason})") from exc
    return p


def check_rigid(T: ArrayLike, *, name: str) -> NDArray[np.float64]:
    """``T`` as a 4x4 rigid transform (rotation + translation in mm), or a :class:`PointFileError`.

    Parameters
    ----------
    T : array_like, shape (4, 4)
        Candidate transform.
    name : str
        Where it came from (the file), for the message.

    Returns
    -------
    numpy.ndarray, shape (4, 4)

    Raises
    ------
    PointFileError
        Not finite, a wrong last row, a singular, scaled, sheared or mirrored 3x3 part
        (singular values not within :data:`RIGID_TOLERANCE` of 1, or a negative determinant).
    """
    try:
        M = as_transform(T, name=name)
    except RegistrationError as exc:
        raise PointFileError(str(exc)) from exc
    sv = np.linalg.svd(M[:3, :3], compute_uv=False)
    if np.any(np.abs(sv - 1.0) > RIGID_TOLERANCE):
        what = (
            "singular"
            if sv[-1] < 1e-9
            else f"scaled or sheared (scale {sv[0]:.6g} to {sv[-1]:.6g})"
        )
        raise PointFileError(
            f"{name}: not a rigid transform: its 3x3 part is {what}; expected a rotation and a "
            "translation in mm (check the file's units and that it is a registration)"
        )
    if np.linalg.det(M[:3, :3]) < 0:
        raise PointFileError(f"{name}: not a rigid transform: it mirrors (determinant < 0)")
    return M


def write_itk_transform(path: str | Path, T_model_points: ArrayLike) -> Path:
    """Write a registration as an ITK transform file that 3D Slicer loads (``.tfm``/``.txt``).

    The file holds ``T_points_model = inverse(T_model_points)`` (``T_tracker_model`` for tracker
    points) as an ``AffineTransform_double_3_3`` in LPS: ITK's resampling direction (fixed =
    model space, moving = points space), which 3D Slicer reads as the transform *from parent*.
    In 3D Slicer, put the points node under the loaded transform to see them on the model.

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
    p = Path(path)
    if p.suffix not in TRANSFORM_SUFFIXES:
        raise PointFileError(f"{p}: ITK transform files end in .tfm or .txt")
    if abs(np.linalg.det(T[:3, :3])) < 1e-12:
        raise PointFileError(f"{p}: T_model_points is singular; nothing written")
    inv = np.linalg.inv(T)
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(inv[:3, :3].ravel().tolist())
    tx.SetTranslation(inv[:3, 3].tolist())
    tx.SetCenter((0.0, 0.0, 0.0))
    return write_atomic(p, lambda tmp: sitk.WriteTransform(tx, str(tmp)))


def read_itk_transform(path: str | Path) -> NDArray[np.float64]:
    """Read an ITK transform file written by :func:`write_itk_transform`; return ``T_model_points``.

    Any ITK linear 3-D transform (affine, Euler, versor) is accepted; the file's resampling
    transform (``T_points_model``, i.e. ``T_tracker_model``) is inverted.

    Raises
    ------
    PointFileError
        Missing file, a non-linear or singular transform.
    """
    import SimpleITK as sitk

    p = Path(path)
    if not p.is_file():
        raise PointFileError(f"transform file not found: {p}")
    _read_text(p, "an ITK transform file (text)")
    try:
        tx = sitk.ReadTransform(str(p))
        if tx.GetName() == "CompositeTransform":
            tx = sitk.CompositeTransform(tx)
            if tx.GetNumberOfTransforms() != 1:
                raise PointFileError(f"{p}: expected one linear transform")
            tx = tx.GetNthTransform(0)
        aff = sitk.AffineTransform(tx)
    except (RuntimeError, TypeError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise PointFileError(f"{p}: not a linear ITK transform ({detail})") from exc
    A = np.array(aff.GetMatrix(), dtype=np.float64).reshape(3, 3)
    c = np.array(aff.GetCenter())
    t = np.array(aff.GetTranslation())
    M = np.eye(4)
    M[:3, :3] = A
    M[:3, 3] = t + c - A @ c  # ITK: y = A (x - c) + c + t
    if not np.all(np.isfinite(M)) or abs(np.linalg.det(A)) < 1e-12:
        raise PointFileError(f"{p}: the transform is singular or not finite: {A.tolist()}")
    return np.linalg.inv(M)


def read_transform_txt(path: str | Path) -> NDArray[np.float64]:
    """Read a 4x4 matrix (whitespace/comma separated text, 4 rows) or an ITK transform file.

    A plain 4x4 text matrix is taken as ``T_model_points`` as is; ``.tfm`` files go through
    :func:`read_itk_transform`.
    """
    p = Path(path)
    if not p.is_file():
        raise PointFileError(f"transform file not found: {p}")
    if p.suffix == ".tfm":
        return read_itk_transform(p)
    text = _read_text(p, "a 4x4 text matrix or an ITK transform file")
    if text.lstrip().startswith("#Insight Transform File"):
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
