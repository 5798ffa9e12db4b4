"""What the server publishes after each update (:mod:`surgplan.live.frames` has the table).

:func:`state_messages` encodes, in this order, ``ModelToTracker`` (TRANSFORM),
``OrganInTracker`` (POLYDATA), ``TargetsInTracker`` (POINT) and ``TwinStatus`` (STRING, last:
a client that has the status has the rest of that update). :func:`status_dict` is the status
JSON; the same dict is what ``--json`` prints for an update.

The recommendation's ``vertex_ids`` are the recommended patch's vertex ids on the published
``OrganInTracker`` surface (sorted; same ordering as its points), so that a client draws the
exact region; ``patch_centre_mm`` and ``n_vertices`` stay for clients that predate it. A status
that would not fit one STRING (64 KiB) drops the input timestamps first, then the ids.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from surgplan.live.codec import (
    PointMessage,
    PolyDataMessage,
    StringMessage,
    TransformMessage,
    encode_message,
)
from surgplan.live.frames import (
    ORGAN_DEVICE,
    REGISTRATION_DEVICE,
    STATUS_DEVICE,
    TARGETS_DEVICE,
    WireFrames,
    to_wire_points,
    to_wire_transform,
)
from surgplan.live.session import UpdateOutcome

__all__ = ["status_dict", "state_messages", "status_message", "MAX_LISTED_INPUTS"]

#: Input timestamps listed in a status (the rest are counted).
MAX_LISTED_INPUTS = 64
#: Colour of the targets in 3D Slicer (RGBA).
TARGET_RGBA = (255, 64, 64, 255)


def _r(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def status_dict(
    update: int, outcome: UpdateOutcome, frames: WireFrames, inputs: list[tuple[int, float]]
) -> dict[str, Any]:
    """The status JSON of an update.

    Parameters
    ----------
    update : int
        The update's number in the session log.
    outcome : UpdateOutcome
        The update.
    frames : WireFrames
        ``status_ras`` decides the frame of the coordinates.
    inputs : list of (seq, sender timestamp s)
        The batch's messages.
    """
    ras = frames.status_ras
    d: dict[str, Any] = {
        "update": update,
        "status": outcome.status,
        "frame": "tracker_RAS" if ras else "tracker_LPS",
        "inputs": {
            "count": len(inputs),
            "seqs": [inputs[0][0], inputs[-1][0]] if inputs else [],
            "timestamps": [t for _, t in inputs[-MAX_LISTED_INPUTS:]],
        },
        "n_points_batch": outcome.n_points,
    }
    if outcome.error is not None:
        d["error"] = outcome.error
    s = outcome.state
    if s is None:
        d["trustworthy"] = False
        d["reason"] = outcome.error or "waiting for enough points for the first registration"
        return d
    d.update(
        mode=s.mode,
        trustworthy=bool(s.trustworthy),
        reason=s.verdict.reason,
        failed_checks=[f.check.value for f in s.verdict.failed_checks],
        n_points=int(s.n_points),
        n_points_dropped=int(s.n_points_dropped),
        time_ms=_r(s.time_ms),
    )
    d["targets"] = [
        {
            "name": t.name,
            "position_mm": [_r(x) for x in to_wire_points(t.position_tracker_mm[None], ras)[0]],
            "radius95_mm": _r(t.radius95_mm),
        }
        for t in s.targets
    ]
    r = s.recommendation
    d["recommendation"] = (
        None
        if r is None
        else {
            "target": r.target,
            "patch_centre_mm": [
                _r(x) for x in to_wire_points(r.patch_centre_tracker_mm[None], ras)[0]
            ],
            "n_vertices": len(r.vertex_indices),
            "vertex_ids": [int(i) for i in np.sort(np.asarray(r.vertex_indices, np.int64))],
            "current_radius95_mm": _r(r.current_radius95_mm),
            "expected_radius95_mm": _r(r.expected_radius95_mm),
            "n_points": int(r.n_points),
        }
    )
    return d


def status_message(status: dict[str, Any], timestamp_s: float) -> bytes:
    """The encoded ``TwinStatus`` STRING (inputs' timestamps cut if it would not fit)."""
    text = json.dumps(status, separators=(",", ":"))
    if len(text) > 0xFFFF:
        status = {**status, "inputs": {**status["inputs"], "timestamps": []}}
        text = json.dumps(status, separators=(",", ":"))
    if len(text) > 0xFFFF and status.get("recommendation"):
        # the region's ids go last: a client falls back to the n_vertices nearest the centre
        rec = {k: v for k, v in status["recommendation"].items() if k != "vertex_ids"}
        text = json.dumps({**status, "recommendation": rec}, separators=(",", ":"))
    text = text[:0xFFFF]
    return encode_message(StringMessage(STATUS_DEVICE, text), timestamp_s=timestamp_s)


def state_messages(
    twin: Any, status: dict[str, Any], frames: WireFrames, timestamp_s: float
) -> list[bytes]:
    """The encoded messages of one update (the state's, then the status)."""
    out: list[bytes] = []
    state = twin.state if status.get("status") == "state" else None
    if state is not None:
        T = to_wire_transform(state.T_tracker_model, frames.registration_ras)
        out.append(
            encode_message(TransformMessage(REGISTRATION_DEVICE, T), timestamp_s=timestamp_s)
        )
        faces = np.asarray(twin.basis.faces)
        pts = to_wire_points(twin.deformed_vertices_mm(), frames.organ_ras)
        out.append(
            encode_message(
                PolyDataMessage.from_triangles(ORGAN_DEVICE, pts, faces), timestamp_s=timestamp_s
            )
        )
        if state.targets:
            pos = np.array([t.position_tracker_mm for t in state.targets])
            diam = np.array([2.0 * t.radius95_mm for t in state.targets])
            out.append(
                encode_message(
                    PointMessage(
                        TARGETS_DEVICE,
                        to_wire_points(pos, frames.targets_ras),
                        names=tuple(t.name[:64] for t in state.targets),
                        groups=("target",),
                        rgba=np.array(TARGET_RGBA, np.uint8),
                        diameters_mm=np.where(np.isfinite(diam), diam, 0.0),
                    ),
                    timestamp_s=timestamp_s,
                )
            )
    out.append(status_message(status, timestamp_s))
    return out
