"""OpenIGTLink v2 wire format: the 58-byte header with its CRC-64, and four message bodies.

Header (big endian, http://openigtlink.org/protocols/v2_header.html)::

    offset  size  field
    0       2     V            header version: 1 (protocol v1/v2) or 2 (v3, extended header)
    2       12    TYPE         "TRANSFORM", "POINT", "POLYDATA", "STRING" (NUL padded)
    14      20    DEVICE_NAME  ASCII, NUL padded
    34      8     TIME_STAMP   seconds << 32 | fraction (igtl_nanosec_to_frac), 0 if unused
    42      8     BODY_SIZE    bytes of body
    50      8     CRC64        of the body, ECMA-182 (:mod:`surgplan.live._crc`)

Bodies (the OpenIGTLink ``Documents/protocols/*.md`` of the reference library):

- TRANSFORM: 12 float32, the 3x4 upper part of the 4x4 matrix column by column
  (R11 R21 R31 R12 R22 R32 R13 R23 R33 TX TY TZ), mm.
- POINT: N elements of 136 bytes: name char[64], group char[32], RGBA uint8[4], X Y Z float32
  (mm), diameter float32 (mm), owner char[20].
- POLYDATA: ten uint32 counts (NPOINTS, NVERTICES, SIZE_VERTICES, NLINES, SIZE_LINES,
  NPOLYGONS, SIZE_POLYGONS, NTRIANGLE_STRIPS, SIZE_TRIANGLE_STRIPS, NATTRIBUTES), the points
  (float32 x 3N), the four cell arrays (uint32, each cell its point count then its indices),
  then the attributes (uint16 type and uint32 count each, NUL-terminated names padded to an
  even length, float32 data).
- STRING: encoding uint16 (IANA MIBenum: 3 US-ASCII, 106 UTF-8), length uint16, bytes.

A header version 2 body (OpenIGTLink v3) starts with a 12-byte extended header (its size
uint16, metadata header size uint16, metadata size uint32, message id uint32) and ends with
the metadata; decoding accepts it and returns the content, encoding writes version 1.

Every check raises :class:`~surgplan.live.errors.MessageError` naming the problem; checks on
the framing (header, size cap, CRC) are *fatal* (the stream cannot be trusted after them),
checks on a body whose framing is intact are not. This module checks the encoder against
pyigtl's message classes byte for byte in ``tests/test_live_codec.py``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from surgplan.live._crc import crc64
from surgplan.live.errors import MessageError

__all__ = [
    "HEADER_SIZE",
    "DEFAULT_MAX_BODY_BYTES",
    "KNOWN_TYPES",
    "Header",
    "TransformMessage",
    "PointMessage",
    "PolyDataMessage",
    "StringMessage",
    "Message",
    "crc64",
    "parse_header",
    "check_crc",
    "decode_body",
    "decode_message",
    "encode_message",
    "timestamp_to_igtl",
    "igtl_to_timestamp",
]

HEADER_SIZE = 58
_HEADER = struct.Struct(">H12s20sQQQ")
#: Largest body accepted by default, bytes (a 5,000-point scan is about 60 kB).
DEFAULT_MAX_BODY_BYTES = 64 * 2**20
#: Header versions understood (1: OpenIGTLink v1/v2; 2: v3 with the extended header).
HEADER_VERSIONS = (1, 2)
_EXT_HEADER = struct.Struct(">HHII")
#: IANA MIBenum of the STRING encodings understood.
ENCODING_ASCII = 3
ENCODING_UTF8 = 106
_TRANSFORM = struct.Struct(">12f")
_POLY_COUNTS = struct.Struct(">10I")
_POINT_DTYPE = np.dtype(
    [
        ("name", "S64"),
        ("group", "S32"),
        ("rgba", "u1", (4,)),
        ("xyz", ">f4", (3,)),
        ("diameter", ">f4"),
        ("owner", "S20"),
    ]
)
assert _POINT_DTYPE.itemsize == 136


# --- timestamps (igtl_util.c: igtl_nanosec_to_frac / igtl_frac_to_nanosec) -------------------


def _nanosec_to_frac(nanosec: int) -> int:
    base, mask, r = 1_000_000_000, 0x80000000, 0
    while mask:
        base = (base + 1) >> 1
        if nanosec >= base:
            r |= mask
            nanosec -= base
        mask >>= 1
    return r


def _frac_to_nanosec(frac: int) -> int:
    base, mask, r = 1_000_000_000, 0x80000000, 0
    while mask:
        base = (base + 1) >> 1
        if frac & mask:
            r += base
        mask >>= 1
    return r


def timestamp_to_igtl(timestamp_s: float) -> int:
    """Seconds since 1970 as the header's 64-bit field (seconds << 32 | fraction)."""
    if not math.isfinite(timestamp_s) or timestamp_s < 0 or timestamp_s >= 2**32:
        raise MessageError("timestamp", f"timestamp must be in [0, 2^32) s, got {timestamp_s!r}")
    sec = int(timestamp_s)
    return (sec << 32) | _nanosec_to_frac(int((timestamp_s - sec) * 1e9))


def igtl_to_timestamp(value: int) -> float:
    """Inverse of :func:`timestamp_to_igtl` (to the nanosecond)."""
    return float(value >> 32) + _frac_to_nanosec(value & 0xFFFFFFFF) * 1e-9


# --- header -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """A parsed OpenIGTLink header.

    Attributes
    ----------
    version : int
        Header version (1 or 2).
    type_name : str
        Message type, e.g. ``"TRANSFORM"``.
    device_name : str
        Device name (says the message's frames, :mod:`surgplan.live.frames`).
    timestamp : int
        The raw 64-bit timestamp field (:func:`igtl_to_timestamp` gives seconds).
    body_size : int
        Body length, bytes.
    crc : int
        CRC-64 of the body the sender computed.
    """

    version: int
    type_name: str
    device_name: str
    timestamp: int
    body_size: int
    crc: int

    @property
    def timestamp_s(self) -> float:
        """The timestamp in seconds since 1970."""
        return igtl_to_timestamp(self.timestamp)


def _ascii_field(raw: bytes, what: str) -> str:
    text = raw.split(b"\0", 1)[0]
    if not all(32 <= b < 127 for b in text):
        raise MessageError(what, f"header {what} must be printable ASCII, got {text!r}", fatal=True)
    return text.decode("ascii")


def parse_header(data: bytes, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Header:
    """Parse and check a 58-byte header (fatal :class:`MessageError` on any problem).

    Parameters
    ----------
    data : bytes
        Exactly :data:`HEADER_SIZE` bytes.
    max_body_bytes : int, keyword-only
        Largest body size accepted, bytes.
    """
    if len(data) != HEADER_SIZE:
        raise MessageError(
            "header_size",
            f"an OpenIGTLink header has {HEADER_SIZE} bytes, got {len(data)}",
            fatal=True,
        )
    version, type_raw, device_raw, timestamp, body_size, crc = _HEADER.unpack(data)
    if version not in HEADER_VERSIONS:
        raise MessageError(
            "version", f"header version must be one of {HEADER_VERSIONS}, got {version}", fatal=True
        )
    type_name = _ascii_field(type_raw, "type")
    if not type_name:
        raise MessageError("type", "header type name is empty", fatal=True)
    device_name = _ascii_field(device_raw, "device_name")
    if body_size > max_body_bytes:
        raise MessageError(
            "body_size",
            f"{type_name} body of {body_size} bytes exceeds the cap of {max_body_bytes} bytes",
            fatal=True,
        )
    return Header(version, type_name, device_name, timestamp, body_size, crc)


def check_crc(header: Header, body: bytes) -> None:
    """Fatal :class:`MessageError` unless ``body`` has the header's size and CRC-64."""
    if len(body) != header.body_size:
        raise MessageError(
            "truncated",
            f"{header.type_name} body has {len(body)} of {header.body_size} bytes",
            fatal=True,
        )
    got = crc64(body)
    if got != header.crc:
        raise MessageError(
            "crc",
            f"{header.type_name} from {header.device_name!r}: body CRC-64 "
            f"is {got:#018x}, header says {header.crc:#018x}",
            fatal=True,
        )


# --- messages -----------------------------------------------------------------------------------


def _finite(arr: NDArray, what: str, device: str) -> None:
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise MessageError("nan", f"{what} from {device!r} has {bad} NaN or infinite values")


@dataclass(frozen=True, eq=False)
class TransformMessage:
    """TRANSFORM: a 4x4 homogeneous matrix (translation mm), float32 on the wire."""

    TYPE: ClassVar[str] = "TRANSFORM"
    device_name: str
    matrix: NDArray[np.float64]
    timestamp_s: float = 0.0


@dataclass(frozen=True, eq=False)
class PointMessage:
    """POINT: named points (mm) with group, RGBA colour, diameter (mm) and owner."""

    TYPE: ClassVar[str] = "POINT"
    device_name: str
    positions: NDArray[np.float64]
    names: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    rgba: NDArray[np.uint8] | None = None
    diameters_mm: NDArray[np.float64] | None = None
    owners: tuple[str, ...] = ()
    timestamp_s: float = 0.0


@dataclass(frozen=True, eq=False)
class PolyDataMessage:
    """POLYDATA: points (mm) and cells; ``polygons`` is the flat VTK-style cell array.

    ``vertices``, ``lines`` and ``strips`` are flat cell arrays too (empty when absent);
    ``attributes`` maps attribute names to ``(type, values)`` (decoded, never encoded).
    """

    TYPE: ClassVar[str] = "POLYDATA"
    device_name: str
    points: NDArray[np.float64]
    polygons: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    vertices: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    lines: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    strips: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    attributes: dict[str, tuple[int, NDArray[np.float64]]] = field(default_factory=dict)
    timestamp_s: float = 0.0

    @classmethod
    def from_triangles(
        cls, device_name: str, points: ArrayLike, triangles: ArrayLike, *, timestamp_s: float = 0.0
    ) -> PolyDataMessage:
        """A surface from points (N, 3) and triangles (M, 3) of point indices."""
        tri = np.asarray(triangles, np.int64).reshape(-1, 3)
        polys = np.hstack([np.full((len(tri), 1), 3, np.int64), tri]).ravel()
        return cls(device_name, np.asarray(points, np.float64), polys, timestamp_s=timestamp_s)

    @property
    def triangles(self) -> NDArray[np.int64]:
        """The polygons as (M, 3) indices (``MessageError`` if any polygon is not a triangle)."""
        p = self.polygons
        if len(p) % 4 == 0 and np.all(p.reshape(-1, 4)[:, 0] == 3):
            return p.reshape(-1, 4)[:, 1:].copy()
        raise MessageError("layout", f"POLYDATA {self.device_name!r} has non-triangle polygons")


@dataclass(frozen=True, eq=False)
class StringMessage:
    """STRING: text (US-ASCII when possible, else UTF-8), at most 65,535 bytes."""

    TYPE: ClassVar[str] = "STRING"
    device_name: str
    text: str
    timestamp_s: float = 0.0


Message = TransformMessage | PointMessage | PolyDataMessage | StringMessage
_CLASSES: dict[str, type] = {
    c.TYPE: c for c in (TransformMessage, PointMessage, PolyDataMessage, StringMessage)
}
#: Message types this codec decodes and encodes.
KNOWN_TYPES = tuple(_CLASSES)


# --- encoding ---------------------------------------------------------------------------------


def _name_field(text: str, size: int, what: str) -> bytes:
    raw = text.encode("ascii", errors="strict") if text.isascii() else None
    if raw is None or len(raw) > size:
        raise MessageError(what, f"{what} must be ASCII of at most {size} bytes, got {text!r}")
    return raw


def _pack_transform(m: TransformMessage) -> bytes:
    T = np.asarray(m.matrix, np.float64)
    if T.shape != (4, 4):
        raise MessageError("layout", f"TRANSFORM matrix must be 4x4, got {T.shape}")
    _finite(T, "TRANSFORM", m.device_name)
    return _TRANSFORM.pack(*T[:3, :].T.ravel().astype(np.float32))


def _strings(values: tuple[str, ...], n: int, what: str, size: int) -> NDArray:
    if not values:
        return np.zeros(n, dtype=f"S{size}")
    if len(values) == 1 and n != 1:
        values = values * n
    if len(values) != n:
        raise MessageError("layout", f"POINT {what}: {len(values)} values for {n} points")
    out = np.array([v.encode("utf-8") for v in values], dtype=object)
    if any(len(v) > size for v in out):
        raise MessageError("layout", f"POINT {what} longer than {size} bytes")
    return out.astype(f"S{size}")


def _pack_point(m: PointMessage) -> bytes:
    p = np.asarray(m.positions, np.float64).reshape(-1, 3)
    _finite(p, "POINT", m.device_name)
    n = len(p)
    arr = np.zeros(n, dtype=_POINT_DTYPE)
    arr["name"] = _strings(m.names, n, "names", 64)
    arr["group"] = _strings(m.groups, n, "groups", 32)
    arr["owner"] = _strings(m.owners, n, "owners", 20)
    arr["rgba"] = (255, 255, 0, 255) if m.rgba is None else np.asarray(m.rgba, np.uint8)
    arr["xyz"] = p
    arr["diameter"] = 0.0 if m.diameters_mm is None else np.asarray(m.diameters_mm, np.float64)
    return arr.tobytes()


def _cell_count(cells: NDArray[np.int64], n_points: int, what: str) -> int:
    """Number of cells of a flat cell array (``MessageError`` if inconsistent)."""
    if len(cells) == 0:
        return 0
    if len(cells) % 4 == 0:
        c = cells.reshape(-1, 4)
        if np.all(c[:, 0] == 3):  # triangles: the common case, vectorised
            if c[:, 1:].size and (c[:, 1:].min() < 0 or c[:, 1:].max() >= n_points):
                raise MessageError("layout", f"POLYDATA {what} index out of range [0, {n_points})")
            return len(c)
    count, i = 0, 0
    while i < len(cells):
        k = int(cells[i])
        idx = cells[i + 1 : i + 1 + k]
        if k < 1 or len(idx) != k:
            raise MessageError(
                "layout",
                f"POLYDATA {what} cell {count} at offset {i} declares "
                f"{k} points, {len(idx)} remain",
            )
        if idx.min() < 0 or idx.max() >= n_points:
            raise MessageError("layout", f"POLYDATA {what} index out of range [0, {n_points})")
        count += 1
        i += k + 1
    return count


def _pack_polydata(m: PolyDataMessage) -> bytes:
    p = np.asarray(m.points, np.float64).reshape(-1, 3)
    _finite(p, "POLYDATA points", m.device_name)
    if m.attributes:
        raise MessageError("layout", "encoding POLYDATA attributes is not supported")
    arrays = [np.asarray(a, np.int64).ravel() for a in (m.vertices, m.lines, m.polygons, m.strips)]
    names = ("vertices", "lines", "polygons", "triangle strips")
    counts = [len(p)]
    for a, name in zip(arrays, names, strict=True):
        counts += [_cell_count(a, len(p), name), 4 * len(a)]
    counts.append(0)
    parts = [_POLY_COUNTS.pack(*counts), p.astype(">f4").tobytes()]
    parts += [a.astype(">u4").tobytes() for a in arrays]
    return b"".join(parts)


def _pack_string(m: StringMessage) -> bytes:
    try:
        raw, enc = m.text.encode("ascii"), ENCODING_ASCII
    except UnicodeEncodeError:
        raw, enc = m.text.encode("utf-8"), ENCODING_UTF8
    if len(raw) > 0xFFFF:
        raise MessageError("layout", f"STRING {m.device_name!r} of {len(raw)} bytes exceeds 65535")
    return struct.pack(">HH", enc, len(raw)) + raw


_PACKERS = {
    "TRANSFORM": _pack_transform,
    "POINT": _pack_point,
    "POLYDATA": _pack_polydata,
    "STRING": _pack_string,
}


def encode_message(message: Message, *, timestamp_s: float | None = None) -> bytes:
    """The full message (header version 1 and body) as bytes.

    Parameters
    ----------
    message : Message
        A :class:`TransformMessage`, :class:`PointMessage`, :class:`PolyDataMessage` or
        :class:`StringMessage`.
    timestamp_s : float, optional
        Overrides ``message.timestamp_s`` (seconds since 1970; 0: unused).
    """
    body = _PACKERS[message.TYPE](message)
    ts = message.timestamp_s if timestamp_s is None else timestamp_s
    head = _HEADER.pack(
        1,
        message.TYPE.encode("ascii"),
        _name_field(message.device_name, 20, "device_name"),
        timestamp_to_igtl(ts) if ts else 0,
        len(body),
        crc64(body),
    )
    return head + body


# --- decoding ---------------------------------------------------------------------------------


def _content(header: Header, body: bytes) -> bytes:
    """The content of a body (the extended header and metadata of version 2 removed)."""
    if header.version == 1:
        return body
    if len(body) < _EXT_HEADER.size:
        raise MessageError(
            "layout",
            f"version 2 {header.type_name} body of {len(body)} bytes has no extended header",
        )
    ext_size, meta_head, meta_size, _ = _EXT_HEADER.unpack_from(body)
    end = len(body) - meta_head - meta_size
    if ext_size < _EXT_HEADER.size or end < ext_size:
        raise MessageError(
            "layout",
            f"version 2 {header.type_name}: extended header "
            f"{ext_size} + metadata {meta_head + meta_size} bytes do not fit in "
            f"{len(body)}",
        )
    return body[ext_size:end]


def _decode_transform(h: Header, c: bytes) -> TransformMessage:
    if len(c) != _TRANSFORM.size:
        raise MessageError(
            "layout", f"TRANSFORM body must have {_TRANSFORM.size} bytes, got {len(c)}"
        )
    v = np.array(_TRANSFORM.unpack(c), np.float64)
    _finite(v, "TRANSFORM", h.device_name)
    T = np.eye(4)
    T[:3, :] = v.reshape(4, 3).T
    return TransformMessage(h.device_name, T, h.timestamp_s)


def _text(raw: NDArray, what: str) -> tuple[str, ...]:
    if not np.ascontiguousarray(raw).view(np.uint8).any():  # all empty: the common case
        return ("",) * len(raw)
    try:
        return tuple(s.decode("utf-8") for s in raw.tolist())
    except UnicodeDecodeError as exc:
        raise MessageError("encoding", f"POINT {what} is not UTF-8: {exc}") from None


def _decode_point(h: Header, c: bytes) -> PointMessage:
    if len(c) == 0 or len(c) % _POINT_DTYPE.itemsize:
        raise MessageError(
            "layout",
            f"POINT body must be a positive multiple of "
            f"{_POINT_DTYPE.itemsize} bytes, got {len(c)}",
        )
    arr = np.frombuffer(c, dtype=_POINT_DTYPE)
    xyz = arr["xyz"].astype(np.float64)
    _finite(xyz, "POINT", h.device_name)
    return PointMessage(
        h.device_name,
        xyz,
        _text(arr["name"], "name"),
        _text(arr["group"], "group"),
        arr["rgba"].copy(),
        arr["diameter"].astype(np.float64),
        _text(arr["owner"], "owner"),
        h.timestamp_s,
    )


_ATTRIBUTE_COMPONENTS = {1: 3, 2: 3, 3: 9, 4: 4}  # vectors, normals, tensors, RGBA


def _decode_attributes(c: bytes, at: int, n: int) -> tuple[dict, int]:
    heads = []
    for _ in range(n):
        if at + 6 > len(c):
            raise MessageError("layout", "POLYDATA attribute headers run past the body")
        heads.append(struct.unpack_from(">HI", c, at))
        at += 6
    names = []
    start = at
    for _ in range(n):
        end = c.find(b"\0", at)
        if end < 0:
            raise MessageError("layout", "POLYDATA attribute name is not NUL-terminated")
        names.append(c[at:end].decode("ascii", errors="replace"))
        at = end + 1
    if (at - start) % 2:
        at += 1
    out = {}
    for (kind, count), name in zip(heads, names, strict=True):
        base = kind & 0x0F
        comps = _ATTRIBUTE_COMPONENTS.get(base, max(kind >> 8, 1))
        size = 4 * count * comps
        if at + size > len(c):
            raise MessageError("layout", f"POLYDATA attribute {name!r} runs past the body")
        vals = np.frombuffer(c, ">f4", count * comps, at).astype(np.float64).reshape(count, comps)
        out[name] = (int(kind), vals)
        at += size
    return out, at


def _decode_polydata(h: Header, c: bytes) -> PolyDataMessage:
    if len(c) < _POLY_COUNTS.size:
        raise MessageError(
            "layout",
            f"POLYDATA body of {len(c)} bytes is shorter than its {_POLY_COUNTS.size}-byte counts",
        )
    counts = _POLY_COUNTS.unpack_from(c)
    n_pts, n_attr = counts[0], counts[9]
    at = _POLY_COUNTS.size
    if at + 12 * n_pts > len(c):
        raise MessageError(
            "layout",
            f"POLYDATA declares {n_pts} points, the body has room for {(len(c) - at) // 12}",
        )
    pts = np.frombuffer(c, ">f4", 3 * n_pts, at).astype(np.float64).reshape(n_pts, 3)
    _finite(pts, "POLYDATA points", h.device_name)
    at += 12 * n_pts
    cells = []
    for i, name in enumerate(("vertices", "lines", "polygons", "triangle strips")):
        n_cells, size = counts[1 + 2 * i], counts[2 + 2 * i]
        if size % 4 or at + size > len(c):
            raise MessageError("layout", f"POLYDATA {name} of {size} bytes do not fit")
        arr = np.frombuffer(c, ">u4", size // 4, at).astype(np.int64)
        at += size
        if _cell_count(arr, n_pts, name) != n_cells:
            raise MessageError(
                "layout",
                f"POLYDATA declares {n_cells} {name}, the array holds "
                f"{_cell_count(arr, n_pts, name)}",
            )
        cells.append(arr)
    attributes, at = _decode_attributes(c, at, n_attr)
    if at != len(c):
        raise MessageError("layout", f"POLYDATA body has {len(c) - at} bytes after its content")
    v, ln, poly, strips = cells
    return PolyDataMessage(h.device_name, pts, poly, v, ln, strips, attributes, h.timestamp_s)


def _decode_string(h: Header, c: bytes) -> StringMessage:
    if len(c) < 4:
        raise MessageError("layout", f"STRING body of {len(c)} bytes is shorter than 4")
    enc, n = struct.unpack_from(">HH", c)
    if len(c) != 4 + n:
        raise MessageError("layout", f"STRING declares {n} bytes, body holds {len(c) - 4}")
    codec = {ENCODING_ASCII: "ascii", ENCODING_UTF8: "utf-8"}.get(enc)
    if codec is None:
        raise MessageError("encoding", f"STRING encoding {enc} is not 3 (US-ASCII) or 106 (UTF-8)")
    try:
        text = c[4:].decode(codec)
    except UnicodeDecodeError as exc:
        raise MessageError("encoding", f"STRING is not {codec}: {exc}") from None
    return StringMessage(h.device_name, text, h.timestamp_s)


_DECODERS = {
    "TRANSFORM": _decode_transform,
    "POINT": _decode_point,
    "POLYDATA": _decode_polydata,
    "STRING": _decode_string,
}


def decode_body(header: Header, body: bytes) -> Message:
    """Decode a body whose CRC was checked (non-fatal :class:`MessageError` on bad content)."""
    decoder = _DECODERS.get(header.type_name)
    if decoder is None:
        raise MessageError(
            "type",
            f"message type {header.type_name!r} from "
            f"{header.device_name!r} is not one of {KNOWN_TYPES}",
        )
    return decoder(header, _content(header, body))


def decode_message(
    data: bytes, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> tuple[Header, Message]:
    """Parse, check and decode one complete message (header and body, nothing more)."""
    if len(data) < HEADER_SIZE:
        raise MessageError(
            "truncated",
            f"message of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header",
            fatal=True,
        )
    header = parse_header(data[:HEADER_SIZE], max_body_bytes=max_body_bytes)
    body = data[HEADER_SIZE:]
    check_crc(header, body)
    return header, decode_body(header, body)
