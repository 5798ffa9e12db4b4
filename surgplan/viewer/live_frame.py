"""One update of a live session as the viewer draws it: :class:`LiveFrame`.

A ``surgplan live`` server publishes each update as ``ModelToTracker`` (TRANSFORM),
``OrganInTracker`` (POLYDATA), ``TargetsInTracker`` (POINT) and, last, ``TwinStatus`` (STRING,
JSON; :mod:`surgplan.live.publish`). :func:`frame_from_messages` turns those messages into a
:class:`LiveFrame`; :func:`frame_from_state` builds the same frame from a state recorded in a
session log (replay, snapshots).

Everything in a frame is in tracker space with LPS-signed axes, mm (the project's
convention): the server publishes RAS for 3D Slicer by default, and the status JSON names the
frame of the update (``"frame": "tracker_RAS"`` or ``"tracker_LPS"``, the ``--lps-out`` switch
applies to every message of the update); RAS coordinates are flipped back (``x, y`` negated,
exact in floating point). The published target positions are checked against the status
JSON's: a disagreement means the messages are not in the frame the status names, and the
frame is refused (:class:`LiveFrameError`).

The recommended acquisition region is the patch's exact vertex ids on the published organ:
the status' ``recommendation.vertex_ids`` (checked: integers, each a vertex of the published
``OrganInTracker``), or the logged state's. Only a status without them (a server that predates
them, or a status too large for one STRING) falls back to the ``n_vertices`` vertices nearest
the published patch centre (:meth:`LiveFrame.region_vertex_ids`,
:attr:`AcquisitionRegion.exact` says which).

A frame is kept as published (tracker space); the overlay draws it in model space
(:mod:`surgplan.viewer.twin_overlay`). A frame from a logged state also carries the twin's rest
surface (``organ_rest_mm``, model space), from which the case's structures follow the organ's
deformation (:mod:`surgplan.viewer.structure_follow`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surgplan.errors import SurgplanError
from surgplan.live.codec import (
    Message,
    PointMessage,
    PolyDataMessage,
    StringMessage,
    TransformMessage,
)
from surgplan.live.errors import LiveError
from surgplan.live.frames import (
    ORGAN_DEVICE,
    REGISTRATION_DEVICE,
    STATUS_DEVICE,
    TARGETS_DEVICE,
    points_ras_to_lps,
    transform_ras_to_lps,
)

__all__ = [
    "AcquisitionRegion",
    "LiveFrame",
    "LiveFrameError",
    "TargetView",
    "TARGET_CHECK_TOLERANCE_MM",
    "frame_from_messages",
    "frame_from_state",
]

#: Largest distance between a target's POINT position (float32) and its status position, mm.
TARGET_CHECK_TOLERANCE_MM = 1e-2


class LiveFrameError(LiveError):
    """The messages of an update do not make a consistent frame (the reason says why)."""


@dataclass(frozen=True, eq=False)
class TargetView:
    """A target as published: name, position (tracker LPS, mm) and its 95 % radius (mm).

    ``radius95_mm`` is NaN when the server could not compute it.
    """

    name: str
    position_mm: NDArray[np.float64]
    radius95_mm: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        r = self.radius95_mm
        return {
            "name": self.name,
            "position_mm": [float(x) for x in self.position_mm],
            "radius95_mm": float(r) if math.isfinite(r) else None,
        }


@dataclass(frozen=True, eq=False)
class AcquisitionRegion:
    """Where the twin recommends acquiring points next.

    Attributes
    ----------
    target : str
        The target whose radius the acquisition shrinks most.
    centre_mm : numpy.ndarray, shape (3,)
        Patch centre on the posed, deformed organ (tracker LPS), mm.
    n_vertices : int
        Organ vertices in the patch.
    vertex_ids : numpy.ndarray of int or None
        The patch's vertex ids (published or logged); ``None`` when the status had none.
    current_radius95_mm, expected_radius95_mm : float
        The target's radius now and expected after ``n_points`` acquired there, mm.
    n_points : int
        Points the expectation assumes.
    """

    target: str
    centre_mm: NDArray[np.float64]
    n_vertices: int
    vertex_ids: NDArray[np.int64] | None
    current_radius95_mm: float
    expected_radius95_mm: float
    n_points: int

    @property
    def exact(self) -> bool:
        """Whether the region is the patch's own vertex ids (not the nearest-vertex fallback)."""
        return self.vertex_ids is not None


@dataclass(frozen=True, eq=False)
class LiveFrame:
    """One update of the twin, ready to draw (tracker space, LPS-signed axes, mm).

    Attributes
    ----------
    update : int
        The update's number in the session log.
    time_s : float
        Live: the update's timestamp (s since 1970, the server's clock); replay: when the
        update was logged, s since the session's start.
    status : str
        ``"state"`` (a new state), ``"pending"`` (waiting for the first points) or ``"error"``.
    trustworthy : bool
        The twin's verdict.
    reason : str
        Why (``"ok"`` when trusted).
    failed_checks : tuple of str
        The verdict's failed checks.
    mode : str or None
        ``"rigid"`` or ``"deformable"`` (``None`` before the first state).
    T_tracker_model : numpy.ndarray (4, 4) or None
        The registration.
    organ_points_mm : numpy.ndarray (N, 3) or None
        The posed, deformed organ surface's vertices.
    organ_faces : numpy.ndarray (M, 3) of int or None
        Its triangles.
    targets : tuple of TargetView
        Targets with their 95 % radii.
    region : AcquisitionRegion or None
        The recommended acquisition region.
    n_points : int
        Points assimilated so far.
    received_s : float
        ``time.perf_counter()`` when the frame was assembled (latency measurements).
    organ_rest_mm : numpy.ndarray (N, 3) or None
        The twin's undeformed surface in model space, same vertex order (logged states; a live
        frame leaves it to the viewer, :func:`surgplan.viewer.structure_follow.
        rest_organ_from_case`).
    """

    update: int
    time_s: float
    status: str
    trustworthy: bool
    reason: str
    failed_checks: tuple[str, ...] = ()
    mode: str | None = None
    T_tracker_model: NDArray[np.float64] | None = None
    organ_points_mm: NDArray[np.float64] | None = None
    organ_faces: NDArray[np.int64] | None = None
    targets: tuple[TargetView, ...] = ()
    region: AcquisitionRegion | None = None
    n_points: int = 0
    received_s: float = field(default=0.0, compare=False)
    organ_rest_mm: NDArray[np.float64] | None = None

    @property
    def has_geometry(self) -> bool:
        """Whether the frame carries an organ surface."""
        return self.organ_points_mm is not None and self.organ_faces is not None

    def region_vertex_ids(self) -> NDArray[np.int64]:
        """Organ vertex ids of the recommended region (empty without region or organ).

        The patch's own ids when known, else the ``n_vertices`` vertices nearest its centre.
        """
        if self.region is None or self.organ_points_mm is None:
            return np.zeros(0, np.int64)
        if self.region.vertex_ids is not None:
            return np.asarray(self.region.vertex_ids, np.int64)
        d = np.linalg.norm(self.organ_points_mm - self.region.centre_mm, axis=1)
        k = min(max(int(self.region.n_vertices), 0), len(d))
        return np.sort(np.argsort(d, kind="stable")[:k]).astype(np.int64)

    def verdict_text(self) -> str:
        """One line: trusted or not, why, and the targets' radii."""
        if self.status == "pending":
            head = "WAITING"
        elif self.status == "error":
            head = "UPDATE REFUSED"
        else:
            head = "TRUSTED" if self.trustworthy else "UNTRUSTED"
        text = f"{head} (update {self.update})"
        if not self.trustworthy or self.status != "state":
            text += f": {self.reason}"
        radii = [
            f"{t.name} r95 {t.radius95_mm:.1f} mm" if math.isfinite(t.radius95_mm) else t.name
            for t in self.targets
        ]
        return text + (" | " + ", ".join(radii) if radii else "")


def _vec(v: Any, what: str) -> NDArray[np.float64]:
    a = np.array([np.nan if x is None else float(x) for x in v], np.float64)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise LiveFrameError(f"status {what} must be 3 finite numbers, got {v!r}")
    return a


def _float(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _status_json(text: str) -> dict[str, Any]:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LiveFrameError(f"{STATUS_DEVICE} is not JSON: {exc}") from None
    if not isinstance(d, dict) or not isinstance(d.get("update"), int):
        raise LiveFrameError(f"{STATUS_DEVICE} JSON has no integer 'update': {text[:80]!r}")
    if d.get("frame") not in ("tracker_RAS", "tracker_LPS"):
        raise LiveFrameError(
            f"{STATUS_DEVICE} 'frame' must be 'tracker_RAS' or 'tracker_LPS', got "
            f"{d.get('frame')!r}"
        )
    return d


def _targets(d: dict[str, Any], ras: bool) -> tuple[TargetView, ...]:
    out = []
    for t in d.get("targets") or ():
        p = _vec(t.get("position_mm", ()), f"target {t.get('name')!r} position_mm")
        out.append(
            TargetView(
                str(t.get("name", "")),
                points_ras_to_lps(p[None])[0] if ras else p,
                _float(t.get("radius95_mm")),
            )
        )
    return tuple(out)


def _vertex_ids(r: dict[str, Any], n_organ: int | None) -> NDArray[np.int64] | None:
    raw = r.get("vertex_ids")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(i, int) for i in raw):
        raise LiveFrameError(f"{STATUS_DEVICE} recommendation vertex_ids must be a list of ints")
    ids = np.asarray(raw, np.int64).reshape(-1)
    if n_organ is not None and len(ids) and (ids.min() < 0 or ids.max() >= n_organ):
        raise LiveFrameError(
            f"{STATUS_DEVICE} recommendation vertex_ids must lie in 0..{n_organ - 1} (the "
            f"published organ's vertices), got {int(ids.min())}..{int(ids.max())}"
        )
    return ids


def _region(d: dict[str, Any], ras: bool, n_organ: int | None) -> AcquisitionRegion | None:
    r = d.get("recommendation")
    if not r:
        return None
    c = _vec(r.get("patch_centre_mm", ()), "recommendation patch_centre_mm")
    return AcquisitionRegion(
        target=str(r.get("target", "")),
        centre_mm=points_ras_to_lps(c[None])[0] if ras else c,
        n_vertices=int(r.get("n_vertices", 0)),
        vertex_ids=_vertex_ids(r, n_organ),
        current_radius95_mm=_float(r.get("current_radius95_mm")),
        expected_radius95_mm=_float(r.get("expected_radius95_mm")),
        n_points=int(r.get("n_points", 0)),
    )


def _check_targets(targets: tuple[TargetView, ...], msg: PointMessage, ras: bool) -> None:
    pos = points_ras_to_lps(msg.positions) if ras else np.asarray(msg.positions, np.float64)
    if len(pos) != len(targets):
        raise LiveFrameError(
            f"{TARGETS_DEVICE} has {len(pos)} points, the status {len(targets)} targets"
        )
    for t, p in zip(targets, pos, strict=True):
        gap = float(np.linalg.norm(p - t.position_mm))
        if gap > TARGET_CHECK_TOLERANCE_MM:
            raise LiveFrameError(
                f"target {t.name!r}: {TARGETS_DEVICE} position is {gap:.3g} mm from the status "
                "position: the messages are not in the status' frame"
            )


def frame_from_messages(
    status: StringMessage, parts: dict[str, Message], *, received_s: float = 0.0
) -> LiveFrame:
    """The frame of one update: its ``TwinStatus`` and the update's other messages by device.

    Parameters
    ----------
    status : StringMessage
        The update's ``TwinStatus``.
    parts : dict of str to Message
        The update's ``ModelToTracker``, ``OrganInTracker`` and ``TargetsInTracker`` messages
        (those received since the previous status); other devices are ignored.
    received_s : float, keyword-only
        ``time.perf_counter()`` when the status arrived.

    Raises
    ------
    LiveFrameError
        A status that is not the expected JSON, geometry of the wrong type, targets that
        disagree with the status, or a state without its organ.
    """
    try:
        return _frame(status, parts, received_s)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # JSON of the wrong shape
        raise LiveFrameError(
            f"{STATUS_DEVICE} JSON of the wrong shape: {type(exc).__name__}: {exc}"
        ) from None


def _frame(status: StringMessage, parts: dict[str, Message], received_s: float) -> LiveFrame:
    d = _status_json(status.text)
    ras = d["frame"] == "tracker_RAS"
    T = organ_pts = faces = None
    if d.get("status") == "state":
        reg, organ = parts.get(REGISTRATION_DEVICE), parts.get(ORGAN_DEVICE)
        if not isinstance(reg, TransformMessage) or not isinstance(organ, PolyDataMessage):
            raise LiveFrameError(
                f"update {d['update']} is a state but its {REGISTRATION_DEVICE} TRANSFORM or "
                f"{ORGAN_DEVICE} POLYDATA did not arrive before its status"
            )
        T = transform_ras_to_lps(reg.matrix) if ras else np.asarray(reg.matrix, np.float64)
        organ_pts = points_ras_to_lps(organ.points) if ras else np.asarray(organ.points)
        try:
            faces = organ.triangles
        except SurgplanError as exc:
            raise LiveFrameError(str(exc)) from None
    targets = _targets(d, ras)
    tmsg = parts.get(TARGETS_DEVICE)
    if isinstance(tmsg, PointMessage) and targets:
        _check_targets(targets, tmsg, ras)
    return LiveFrame(
        update=int(d["update"]),
        time_s=float(status.timestamp_s),
        status=str(d.get("status", "")),
        trustworthy=bool(d.get("trustworthy", False)),
        reason=str(d.get("reason", "")),
        failed_checks=tuple(str(c) for c in d.get("failed_checks") or ()),
        mode=d.get("mode"),
        T_tracker_model=T,
        organ_points_mm=organ_pts,
        organ_faces=faces,
        targets=targets,
        region=_region(d, ras, None if organ_pts is None else len(organ_pts)),
        n_points=int(d.get("n_points", 0)),
        received_s=received_s,
    )


def frame_from_state(
    state: Any,
    organ_points_mm: NDArray[np.float64],
    organ_faces: NDArray[np.int64],
    *,
    update: int,
    time_s: float,
    rest_mm: NDArray[np.float64] | None = None,
) -> LiveFrame:
    """The frame of a logged :class:`~surgplan.twin.TwinState` and its posed, deformed organ.

    Parameters
    ----------
    state : TwinState
        The state (tracker LPS).
    organ_points_mm, organ_faces
        The organ surface of that state (:meth:`surgplan.twin.Twin.deformed_surface`).
    update : int, keyword-only
        Its update number.
    time_s : float, keyword-only
        When it was logged, s since the session's start.
    rest_mm : numpy.ndarray (N, 3), keyword-only, optional
        The twin's undeformed surface (model space, the same vertices), mm.
    """
    r = state.recommendation
    region = None
    if r is not None:
        region = AcquisitionRegion(
            target=r.target,
            centre_mm=np.asarray(r.patch_centre_tracker_mm, np.float64),
            n_vertices=len(r.vertex_indices),
            vertex_ids=np.asarray(r.vertex_indices, np.int64),
            current_radius95_mm=float(r.current_radius95_mm),
            expected_radius95_mm=float(r.expected_radius95_mm),
            n_points=int(r.n_points),
        )
    return LiveFrame(
        update=int(update),
        time_s=float(time_s),
        status="state",
        trustworthy=bool(state.trustworthy),
        reason=str(state.verdict.reason),
        failed_checks=tuple(f.check.value for f in state.verdict.failed_checks),
        mode=str(state.mode),
        T_tracker_model=np.asarray(state.T_tracker_model, np.float64),
        organ_points_mm=np.asarray(organ_points_mm, np.float64),
        organ_faces=np.asarray(organ_faces, np.int64),
        targets=tuple(
            TargetView(t.name, np.asarray(t.position_tracker_mm, np.float64), t.radius95_mm)
            for t in state.targets
        ),
        region=region,
        n_points=int(state.n_points),
        organ_rest_mm=None if rest_mm is None else np.asarray(rest_mm, np.float64),
    )
