"""The live session: an OpenIGTLink server feeding the twin, with a crash-safe log and replay.

Public API
----------
Wire format (:mod:`~surgplan.live.codec`): :class:`TransformMessage`, :class:`PointMessage`,
:class:`PolyDataMessage`, :class:`StringMessage`, :func:`encode_message`,
:func:`decode_message`, :func:`parse_header`, :func:`crc64`, :class:`MessageError`.
Frames (:mod:`~surgplan.live.frames`, whose docstring lists every message, its device name
and frames): :class:`WireFrames`, :func:`points_lps_to_ras`, :func:`transform_lps_to_ras`.
Session (:mod:`~surgplan.live.session`, :mod:`~surgplan.live.log`): :class:`TwinSpec`,
:class:`SessionConfig`, :class:`SessionCore`, :func:`open_session`, :func:`replay_session`,
:func:`list_sessions`, :class:`SessionLog`, :func:`state_difference`.
Server (:mod:`~surgplan.live.server`): :class:`LiveServer`, :class:`LiveServerThread`,
:class:`ServerLimits`. Pointer (:mod:`~surgplan.live.pivot`): :func:`pivot_calibration`,
:func:`store_pivot`, :func:`load_pivot`.
"""

from surgplan.live.codec import (
    DEFAULT_MAX_BODY_BYTES,
    HEADER_SIZE,
    Header,
    PointMessage,
    PolyDataMessage,
    StringMessage,
    TransformMessage,
    crc64,
    decode_message,
    encode_message,
    parse_header,
)
from surgplan.live.errors import LiveError, MessageError, PivotError, SessionLogError
from surgplan.live.frames import WireFrames, points_lps_to_ras, transform_lps_to_ras
from surgplan.live.log import (
    LiveSession,
    SessionLog,
    list_sessions,
    open_session,
    replay_session,
)
from surgplan.live.pivot import PivotResult, load_pivot, pivot_calibration, store_pivot
from surgplan.live.server import LiveServer, LiveServerThread, ServerLimits
from surgplan.live.session import SessionConfig, SessionCore, TwinSpec, state_difference

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "HEADER_SIZE",
    "Header",
    "LiveError",
    "LiveServer",
    "LiveServerThread",
    "LiveSession",
    "MessageError",
    "PivotError",
    "PivotResult",
    "PointMessage",
    "PolyDataMessage",
    "ServerLimits",
    "SessionConfig",
    "SessionCore",
    "SessionLog",
    "SessionLogError",
    "StringMessage",
    "TransformMessage",
    "TwinSpec",
    "WireFrames",
    "crc64",
    "decode_message",
    "encode_message",
    "list_sessions",
    "load_pivot",
    "open_session",
    "parse_header",
    "pivot_calibration",
    "points_lps_to_ras",
    "replay_session",
    "state_difference",
    "store_pivot",
    "transform_lps_to_ras",
]
