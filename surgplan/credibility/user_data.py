"""The user's validation data: real acquisitions with a known answer, one manifest each.

A manifest (TOML, or JSON with the same fields) describes one intraoperative acquisition and
its fiducial truth; paths are relative to the manifest, geometry is LPS mm::

    description = "Phantom P3, optical tracker, pointer swabs over the anterior lobe"
    points = "swabs.csv"        # tracker space: csv / txt / xyz / ply / .mrk.json / mesh
    noise_mm = 0.8              # optional: the sensor's noise (default: the context's plan)

    [targets.tumour_centroid]   # a target of the case's twin: its model position is the twin's
    tracker_mm = [12.0, -40.5, 88.1]

    [targets.fiducial_3]        # any other point: its model (case CT) position is needed
    model_mm = [-61.2, 10.4, 140.0]
    tracker_mm = [3.3, -52.0, 101.9]

Instead of each target's ``tracker_mm``, a ground-truth ``T_tracker_model`` (4 x 4, rows)
gives the truth ``T_tracker_model @ model_mm`` (a rigid truth: an undeformed phantom).

:func:`load_acquisition` checks everything before the twin runs, and each error is one line
naming the manifest and the field: schema errors (pydantic, ``extra="forbid"``), a missing or
unreadable points file, non-finite points, points or targets whose size says they are not in
mm, a target name the twin does not know without its ``model_mm``, a ``model_mm`` that is not
the twin's target of that name.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from registration.study.spec import describe_error, field_path
from surgplan.credibility.errors import CredibilityError

__all__ = [
    "MAX_POINTS",
    "MIN_POINTS",
    "Acquisition",
    "TruthTarget",
    "UserDataError",
    "load_acquisition",
    "load_acquisitions",
]

#: Fewest finite points of an acquisition (the twin's first update needs 6).
MIN_POINTS = 6
#: Most points read from an acquisition's file (as ``surgplan register``).
MAX_POINTS = 1_000_000
#: Largest distance between a ``model_mm`` and the twin's target of the same name, mm.
SAME_TARGET_MM = 2.0
#: Model-space targets must lie within the organ's bounding box grown by this, mm.
ORGAN_MARGIN_MM = 30.0
#: Pairwise tracker / model distances of the targets must lie within this factor of 1.
DISTANCE_RATIO = 2.0

_F = Annotated[float, Field(allow_inf_nan=False)]
_Vec3 = Annotated[list[_F], Field(min_length=3, max_length=3)]
_Row4 = Annotated[list[_F], Field(min_length=4, max_length=4)]


class UserDataError(CredibilityError):
    """A validation-data manifest, its points or its truth is unusable (one line, file, field)."""


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Target(_Schema):
    tracker_mm: _Vec3 | None = None
    model_mm: _Vec3 | None = None


class _Manifest(_Schema):
    description: Annotated[str, Field(min_length=1)]
    points: Annotated[str, Field(min_length=1)]
    noise_mm: Annotated[float, Field(gt=0.0, le=20.0, allow_inf_nan=False)] | None = None
    T_tracker_model: Annotated[list[_Row4], Field(min_length=4, max_length=4)] | None = None
    targets: Annotated[dict[Annotated[str, Field(min_length=1)], _Target], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_truth(self) -> _Manifest:
        given = [n for n, t in self.targets.items() if t.tracker_mm is not None]
        if self.T_tracker_model is not None and given:
            raise ValueError(
                f"give either T_tracker_model or each target's tracker_mm, not both (targets "
                f"with tracker_mm: {', '.join(given)})"
            )
        if self.T_tracker_model is None:
            for name, t in self.targets.items():
                if t.tracker_mm is None:
                    raise ValueError(f"target {name!r} has no tracker_mm (and no T_tracker_model)")
        return self


@dataclass(frozen=True)
class TruthTarget:
    """One target with a known answer (LPS mm).

    Attributes
    ----------
    name : str
        The target's name.
    model_mm : numpy.ndarray, shape (3,)
        Undeformed position in model (case CT) space, mm.
    tracker_mm : numpy.ndarray, shape (3,)
        True position in tracker space at the acquisition, mm.
    twin_target : bool
        One of the case twin's own targets (else added to the twin's targets for scoring).
    """

    name: str
    model_mm: NDArray[np.float64]
    tracker_mm: NDArray[np.float64]
    twin_target: bool


@dataclass(frozen=True)
class Acquisition:
    """One real acquisition with a known answer, checked (module docstring).

    Attributes
    ----------
    name : str
        The manifest's file name without its suffix.
    source : str
        The manifest's path.
    description : str
        The user's free text.
    points_file : str
        The points file read.
    points_tracker_mm : numpy.ndarray, shape (N, 3)
        The acquired points, tracker space, mm (all finite).
    noise_mm : float or None
        The sensor noise the manifest gives (per-axis standard deviation), mm.
    truth : tuple of TruthTarget
        The targets with their known answer.
    truth_kind : str
        ``"tracker_mm"`` (each target's tracker position) or ``"T_tracker_model"`` (a rigid
        ground-truth pose applied to the model positions).
    """

    name: str
    source: str
    description: str
    points_file: str
    points_tracker_mm: NDArray[np.float64]
    noise_mm: float | None
    truth: tuple[TruthTarget, ...]
    truth_kind: str

    def extra_targets_mm(self) -> dict[str, NDArray[np.float64]]:
        """Truth targets that are not the twin's own: name -> model position, mm."""
        return {t.name: t.model_mm for t in self.truth if not t.twin_target}


def _fail(path: Path, field: str, what: str) -> UserDataError:
    return UserDataError(f"{path}: field '{field}': {what}")


def _read_manifest(path: Path) -> _Manifest:
    """Parse and validate the manifest file (TOML, or JSON by its suffix)."""
    if not path.is_file():
        raise UserDataError(f"validation-data manifest not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        one_line = " ".join(str(exc).split())
        raise UserDataError(f"{path}: not a valid {kind} file: {one_line}") from None
    if not isinstance(data, dict):
        raise UserDataError(f"{path}: expected a table at the top level")
    try:
        return _Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"]) if first["loc"] else "(top level)"
        what = describe_error(first, file_kind="validation-data", detailed=False)
        raise _fail(path, where, " ".join(what.split())) from None


def _read_acquired(path: Path, raw: _Manifest, extent_mm: float) -> tuple[Path, NDArray]:
    """The acquired points: readable, finite, enough of them, in mm."""
    from imaging.errors import MeshingError
    from imaging.mesh_io import probe_mesh_file
    from registration.io import PointFileError, read_points
    from surgplan.twin.errors import WrongUnitsError
    from surgplan.twin.units import check_point_units

    file = (path.parent / raw.points).resolve()
    try:
        probe_mesh_file(file)  # a legacy .vtk is read in a child first: VTK can crash on it
    except MeshingError as exc:
        raise _fail(path, "points", " ".join(str(exc).split())) from None
    try:
        pts = np.asarray(read_points(file, max_points=MAX_POINTS), np.float64)
    except PointFileError as exc:
        raise _fail(path, "points", " ".join(str(exc).split())) from None
    bad = np.flatnonzero(~np.all(np.isfinite(pts), axis=1))
    if len(bad):
        rows = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise _fail(path, "points", f"{file}: {len(bad)} of {len(pts)} points are NaN or "
                    f"infinite (rows {rows}); a validation acquisition must be finite")  # fmt: skip
    if len(pts) < MIN_POINTS:
        raise _fail(path, "points", f"{file}: {len(pts)} points; at least {MIN_POINTS} needed")
    try:
        check_point_units(pts, extent_mm)
    except WrongUnitsError as exc:
        raise _fail(path, "points", f"{file}: {exc}") from None
    return file, pts


def _ground_truth_pose(path: Path, raw: _Manifest) -> NDArray[np.float64] | None:
    from registration.errors import RegistrationError
    from registration.io import check_rigid

    if raw.T_tracker_model is None:
        return None
    try:
        return check_rigid(np.asarray(raw.T_tracker_model, np.float64), name="T_tracker_model")
    except RegistrationError as exc:
        raise _fail(path, "T_tracker_model", " ".join(str(exc).split())) from None


def _model_position(path: Path, name: str, given: list[float] | None, model: Any) -> NDArray:
    """A target's model position: the twin's, or the manifest's inside the organ."""
    field = f"targets.{name}.model_mm"
    known = model.targets_mm.get(name)
    if given is None:
        if known is None:
            have = ", ".join(model.targets_mm) or "none"
            raise _fail(path, f"targets.{name}", f"{name!r} is not a target of the case's twin "
                        f"(targets: {have}); give its model_mm (case CT, LPS mm) to validate "
                        "another point")  # fmt: skip
        return np.asarray(known, np.float64).copy()
    p = np.asarray(given, np.float64)
    lo, hi = model.vertices_mm.min(axis=0), model.vertices_mm.max(axis=0)
    if np.any(p < lo - ORGAN_MARGIN_MM) or np.any(p > hi + ORGAN_MARGIN_MM):
        raise _fail(path, field, f"{p.tolist()} lies outside the organ (bounding box "
                    f"{np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm, "
                    f"+/- {ORGAN_MARGIN_MM:g} mm): not case CT LPS mm?")  # fmt: skip
    if known is not None and np.linalg.norm(p - known) > SAME_TARGET_MM:
        d = float(np.linalg.norm(p - known))
        raise _fail(path, field, f"{d:.1f} mm from the twin's target {name!r} "
                    f"{np.round(known, 2).tolist()} (at most {SAME_TARGET_MM:g} mm): not the same "
                    "point; rename it to validate another point")  # fmt: skip
    return p


def _check_truth_units(path: Path, truth: list[TruthTarget], pts: NDArray, extent: float) -> None:
    """Tracker truths near the acquired organ; pairwise distances of the same scale as in CT."""
    centre = pts.mean(axis=0)
    for t in truth:
        d = float(np.linalg.norm(t.tracker_mm - centre))
        if d > 2.0 * extent:
            raise _fail(path, f"targets.{t.name}.tracker_mm", f"{d:.0f} mm from the acquired "
                        f"points' centre, more than twice the organ's size ({extent:.0f} mm): "
                        "not the same tracker space, or not mm?")  # fmt: skip
    if len(truth) < 2:
        return
    m = np.array([t.model_mm for t in truth])
    k = np.array([t.tracker_mm for t in truth])
    i, j = np.triu_indices(len(truth), 1)
    dm, dk = np.linalg.norm(m[i] - m[j], axis=1), np.linalg.norm(k[i] - k[j], axis=1)
    keep = dm > 5.0
    if keep.any():
        ratio = float(np.median(dk[keep] / dm[keep]))
        if not 1.0 / DISTANCE_RATIO <= ratio <= DISTANCE_RATIO:
            raise _fail(path, "targets", f"distances between the targets in tracker space are "
                        f"{ratio:.3g} x those in model space (expected about 1): tracker_mm not "
                        "in mm?")  # fmt: skip


def load_acquisition(path: str | Path, model: Any) -> Acquisition:
    """Read and check one validation-data manifest against the case's twin (module docstring).

    Parameters
    ----------
    path : path
        The manifest (``.toml``, or ``.json``).
    model : surgplan.twin.case_twin.CaseModel
        The case's twin model (its targets, surface and extent).

    Returns
    -------
    Acquisition

    Raises
    ------
    UserDataError
        Any problem, as one line ``"<manifest>: field '<field>': <what was expected>"``.
    """
    p = Path(path)
    raw = _read_manifest(p)
    extent = float(np.ptp(model.vertices_mm, axis=0).max())
    file, pts = _read_acquired(p, raw, extent)
    T = _ground_truth_pose(p, raw)
    truth = []
    for name, t in raw.targets.items():
        m = _model_position(p, name, t.model_mm, model)
        k = T[:3, :3] @ m + T[:3, 3] if T is not None else np.asarray(t.tracker_mm, np.float64)
        truth.append(TruthTarget(name, m, k, name in model.targets_mm))
    _check_truth_units(p, truth, pts, extent)
    return Acquisition(
        name=p.name.rsplit(".", 1)[0], source=str(p), description=raw.description,
        points_file=str(file), points_tracker_mm=pts, noise_mm=raw.noise_mm, truth=tuple(truth),
        truth_kind="tracker_mm" if T is None else "T_tracker_model",
    )  # fmt: skip


def load_acquisitions(paths: list[str | Path] | tuple[str | Path, ...], model: Any) -> tuple:
    """:func:`load_acquisition` of each manifest; their names made unique (``name_2``...)."""
    out: list[Acquisition] = []
    seen: set[str] = set()
    for path in paths:
        acq = load_acquisition(path, model)
        name, i = acq.name, 2
        while name in seen:
            name, i = f"{acq.name}_{i}", i + 1
        seen.add(name)
        out.append(acq if name == acq.name else _renamed(acq, name))
    return tuple(out)


def _renamed(acq: Acquisition, name: str) -> Acquisition:
    from dataclasses import replace

    return replace(acq, name=name)
