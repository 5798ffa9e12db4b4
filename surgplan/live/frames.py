"""Frames on the wire: device names that say their frames, and LPS <-> RAS at the wire.

The twin works in the case's convention: model space is the CT's LPS mm, tracker space is the
tracker's own frame taken with LPS-signed axes, and ``T_tracker_model`` maps model points into
tracker space. 3D Slicer's OpenIGTLink module works in RAS: it loads the case's LPS files as
RAS and reads every coordinate it receives as RAS. So the messages meant for Slicer are
converted at the wire, flipping both frames of a transform: ``p_RAS = F p_LPS`` and
``T_RAS = F T_LPS F`` with ``F = diag(-1, -1, 1, 1)`` (its own inverse). Each message kind has
its own flag in :class:`WireFrames`; incoming messages are LPS unless flagged RAS.

Messages of a live session (``surgplan live``)
------------------------------------------------

=========  =====  =======================  =============================================  ======
type       dir    device name              content and frames                             RAS?
=========  =====  =======================  =============================================  ======
TRANSFORM  in     ``PointerToTracker``     ``T_tracker_pointer`` of the tracked pointer;  no
                  (:attr:`WireFrames.      the acquired point is its tip,
                  pointer_device`)         ``T_tracker_pointer @ tip_offset`` (pivot
                                           calibration stored in the case, pointer frame)
POINT      in     any (``PointsInTracker`  acquired points, tracker frame, mm              no
                  suggested)
POLYDATA   in     any (``ScanInTracker``   surface scan: its points, tracker frame, mm     no
                  suggested)                (cells ignored)
TRANSFORM  out    ``ModelToTracker``       the registration ``T_tracker_model``: model     yes
                                           (CT) frame to tracker frame
POLYDATA   out    ``OrganInTracker``       the deformed, registered organ surface          yes
                                           (triangles), tracker frame, mm
POINT      out    ``TargetsInTracker``     targets, tracker frame, mm; name = target,      yes
                                           diameter = 2 x radius95 (mm)
STRING     out    ``TwinStatus``           status JSON: trustworthy, reason, failed        yes
                                           checks, targets (position, radius95), the      (targets,
                                           recommendation (patch centre and vertex ids    patch)
                                           on ``OrganInTracker``), the update's inputs
STRING     out    ``LiveAck``              to the sender only: ``{"seq", "type",           --
                                           "device", "timestamp"}`` once a message is
                                           committed to the session log
STRING     out    ``LiveError``            to the offending client only: ``{"problem",     --
                                           "message", "closing"}``
=========  =====  =======================  =============================================  ======

"RAS?" is the default of the kind's flag (:class:`WireFrames`): outgoing geometry is RAS for
Slicer by default, incoming geometry LPS (the tracker's frame); the status JSON names the frame
of its coordinates (``"frame": "tracker_RAS"`` or ``"tracker_LPS"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "F_LPS_RAS",
    "WireFrames",
    "points_lps_to_ras",
    "points_ras_to_lps",
    "transform_lps_to_ras",
    "transform_ras_to_lps",
    "POINTER_DEVICE",
    "REGISTRATION_DEVICE",
    "ORGAN_DEVICE",
    "TARGETS_DEVICE",
    "STATUS_DEVICE",
    "ACK_DEVICE",
    "ERROR_DEVICE",
]

#: ``diag(-1, -1, 1, 1)``: LPS to RAS (and back).
F_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_FLIP = np.array([-1.0, -1.0, 1.0])

POINTER_DEVICE = "PointerToTracker"
REGISTRATION_DEVICE = "ModelToTracker"
ORGAN_DEVICE = "OrganInTracker"
TARGETS_DEVICE = "TargetsInTracker"
STATUS_DEVICE = "TwinStatus"
ACK_DEVICE = "LiveAck"
ERROR_DEVICE = "LiveError"


def points_lps_to_ras(points_mm: ArrayLike) -> NDArray[np.float64]:
    """``(N, 3)`` LPS points as RAS (x and y negated)."""
    return np.asarray(points_mm, np.float64) * _FLIP


points_ras_to_lps = points_lps_to_ras  # the flip is its own inverse


def transform_lps_to_ras(T: ArrayLike) -> NDArray[np.float64]:
    """A 4x4 transform between two LPS frames as the same transform between their RAS frames.

    ``F T F``: maps ``F p`` to ``F (T p)`` for every point ``p``.
    """
    return F_LPS_RAS @ np.asarray(T, np.float64) @ F_LPS_RAS


transform_ras_to_lps = transform_lps_to_ras


@dataclass(frozen=True)
class WireFrames:
    """Which messages are RAS on the wire (the rest LPS), and the pointer's device name.

    Attributes
    ----------
    pointer_ras, points_ras, scan_ras : bool
        Incoming TRANSFORM of the pointer, POINT and POLYDATA are RAS (default LPS).
    registration_ras, organ_ras, targets_ras, status_ras : bool
        Outgoing ``ModelToTracker``, ``OrganInTracker``, ``TargetsInTracker`` and the
        coordinates in ``TwinStatus`` are RAS (default: yes, for 3D Slicer).
    pointer_device : str
        Device name of the pointer's TRANSFORM (PLUS names it e.g. ``StylusToTracker``).
    """

    pointer_ras: bool = False
    points_ras: bool = False
    scan_ras: bool = False
    registration_ras: bool = True
    organ_ras: bool = True
    targets_ras: bool = True
    status_ras: bool = True
    pointer_device: str = POINTER_DEVICE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WireFrames:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


def to_wire_points(points_mm: ArrayLike, ras: bool) -> NDArray[np.float64]:
    """LPS points as sent (RAS when ``ras``)."""
    return points_lps_to_ras(points_mm) if ras else np.asarray(points_mm, np.float64)


def from_wire_points(points_mm: ArrayLike, ras: bool) -> NDArray[np.float64]:
    """Received points as LPS (they were RAS when ``ras``)."""
    return points_ras_to_lps(points_mm) if ras else np.asarray(points_mm, np.float64)


def to_wire_transform(T: ArrayLike, ras: bool) -> NDArray[np.float64]:
    """An LPS transform as sent (RAS when ``ras``)."""
    return transform_lps_to_ras(T) if ras else np.asarray(T, np.float64)


def from_wire_transform(T: ArrayLike, ras: bool) -> NDArray[np.float64]:
    """A received transform as LPS (it was RAS when ``ras``)."""
    return transform_ras_to_lps(T) if ras else np.asarray(T, np.float64)
