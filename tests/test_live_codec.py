"""OpenIGTLink codec: CRC-64 against known vectors, messages byte for byte against pyigtl,
strict checks naming the problem, and the LPS <-> RAS conversion at the wire."""

from __future__ import annotations

import struct

import numpy as np
import pyigtl
import pytest

from surgplan.live import (
    MessageError,
    PointMessage,
    PolyDataMessage,
    StringMessage,
    TransformMessage,
    crc64,
    decode_message,
    encode_message,
    parse_header,
    points_lps_to_ras,
    transform_lps_to_ras,
)
from surgplan.live.codec import igtl_to_timestamp, timestamp_to_igtl

TS = 1_700_000_000.123456
RNG = np.random.default_rng(0)
PTS = RNG.normal(size=(7, 3)) * 50.0


def test_crc64_known_vectors() -> None:
    assert crc64(b"") == 0
    assert crc64(b"123456789") == 0x6C40DF5F0B497347  # CRC-64/ECMA-182 check value
    assert crc64(b"\x01") == 0x42F0E1EBA9EA3693  # one byte 1: the polynomial itself
    data = RNG.integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    assert crc64(data) == pyigtl.messages.CRC64(data)
    assert crc64(data[5000:], crc64(data[:5000])) == crc64(data)  # continues


def test_crc64_eight_bytes_a_step_equals_pyigtl_at_every_length_and_split() -> None:
    # slicing-by-8 over whole words, then byte steps for the tail: every tail length and a
    # continuation that starts mid-word agree with pyigtl's byte-at-a-time reference
    data = RNG.integers(0, 256, 1_000, dtype=np.uint8).tobytes()
    for n in (*range(0, 20), 63, 64, 65, 999, 1000):
        assert crc64(data[:n]) == pyigtl.messages.CRC64(data[:n]), n
        if n >= 3:
            assert crc64(data[3:n], crc64(data[:3])) == pyigtl.messages.CRC64(data[:n]), n


def test_timestamp_round_trip() -> None:
    assert timestamp_to_igtl(0.5) == (0 << 32) | 0x80000000
    assert abs(igtl_to_timestamp(timestamp_to_igtl(TS)) - TS) < 2e-9


def _transform() -> np.ndarray:
    c, s = np.cos(0.3), np.sin(0.3)
    return np.array([[c, -s, 0, 10.5], [s, c, 0, -3.25], [0, 0, 1, 7.0], [0, 0, 0, 1]])


def test_transform_byte_for_byte_with_pyigtl() -> None:
    T = _transform()
    ours = encode_message(TransformMessage("ModelToTracker", T), timestamp_s=TS)
    assert ours == pyigtl.TransformMessage(T, timestamp=TS, device_name="ModelToTracker").pack()
    h, m = decode_message(ours)
    assert (h.version, h.type_name, h.device_name, h.body_size) == (
        1,
        "TRANSFORM",
        "ModelToTracker",
        48,
    )
    np.testing.assert_allclose(m.matrix, T, atol=1e-6)
    assert abs(m.timestamp_s - TS) < 1e-6


def test_point_byte_for_byte_with_pyigtl() -> None:
    names = [f"t{i}" for i in range(len(PTS))]
    diam = list(np.arange(len(PTS), dtype=float))
    ours = encode_message(
        PointMessage("TargetsInTracker", PTS, names=tuple(names), diameters_mm=np.array(diam)),
        timestamp_s=TS,
    )
    theirs = pyigtl.PointMessage(
        PTS, names=names, diameters=diam, timestamp=TS, device_name="TargetsInTracker"
    ).pack()
    assert ours == theirs
    _, m = decode_message(theirs)
    np.testing.assert_allclose(m.positions, PTS, atol=1e-4)
    assert m.names == tuple(names) and m.diameters_mm.tolist() == diam


def test_polydata_byte_for_byte_with_pyigtl() -> None:
    tri = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    ours = encode_message(
        PolyDataMessage.from_triangles("OrganInTracker", PTS, tri), timestamp_s=TS
    )
    polys = np.hstack([np.full((3, 1), 3), tri]).ravel()
    theirs = pyigtl.PolyDataMessage(
        points=PTS, polygons=polys, timestamp=TS, device_name="OrganInTracker"
    ).pack()
    assert ours == theirs
    _, m = decode_message(theirs)
    np.testing.assert_array_equal(m.triangles, tri)
    np.testing.assert_allclose(m.points, PTS, atol=1e-4)


def test_string_byte_for_byte_with_pyigtl_and_v2_header() -> None:
    text = '{"trustworthy": true}'
    ours = encode_message(StringMessage("TwinStatus", text), timestamp_s=TS)
    assert ours == pyigtl.StringMessage(text, timestamp=TS, device_name="TwinStatus").pack()
    v3 = pyigtl.StringMessage(text, timestamp=TS, device_name="TwinStatus")
    v3.header_version = 2
    v3.metadata = {"Frame": "RAS"}
    h, m = decode_message(v3.pack())  # extended header and metadata stripped
    assert h.version == 2 and m.text == text


def _raw(type_name: bytes, body: bytes, *, version: int = 1, crc: int | None = None) -> bytes:
    c = crc64(body) if crc is None else crc
    return struct.pack(">H12s20sQQQ", version, type_name, b"Dev", 0, len(body), c) + body


@pytest.mark.parametrize(
    ("data", "problem", "fatal", "match"),
    [
        (b"\0" * 30, "truncated", True, "shorter than the 58-byte header"),
        (_raw(b"POINT", b"", version=7), "version", True, "got 7"),
        (_raw(b"POINT", b"\0" * 136, crc=1), "crc", True, "header says 0x0000000000000001"),
        (_raw(b"FOOBAR", b"x"), "type", False, "'FOOBAR'"),
        (_raw(b"TRANSFORM", b"\0" * 40), "layout", False, "48 bytes, got 40"),
        (_raw(b"POINT", b"\0" * 100), "layout", False, "multiple of 136"),
        (_raw(b"STRING", struct.pack(">HH", 3, 10) + b"abc"), "layout", False, "declares 10"),
        (_raw(b"STRING", struct.pack(">HH", 99, 1) + b"a"), "encoding", False, "99"),
        (
            _raw(b"POLYDATA", struct.pack(">10I", 5, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
            "layout",
            False,
            "declares 5 points",
        ),
        (
            _raw(
                b"POLYDATA",
                struct.pack(">10I", 3, 0, 0, 0, 0, 1, 16, 0, 0, 0)
                + b"\0" * 36
                + struct.pack(">4I", 3, 0, 1, 9),
            ),
            "layout",
            False,
            "out of range",
        ),
        (_raw(b"TRANSFORM", struct.pack(">12f", *[np.nan] + [0.0] * 11)), "nan", False, "NaN"),
    ],
)
def test_strict_checks_name_the_problem(data, problem, fatal, match) -> None:
    with pytest.raises(MessageError, match=match) as info:
        decode_message(data)
    assert info.value.problem == problem and info.value.fatal is fatal


def test_body_size_cap_is_checked_on_the_header() -> None:
    head = struct.pack(">H12s20sQQQ", 1, b"POLYDATA", b"Scan", 0, 1025, 0)
    parse_header(head, max_body_bytes=1025)
    with pytest.raises(MessageError, match="exceeds the cap of 1024 bytes") as info:
        parse_header(head, max_body_bytes=1024)
    assert info.value.fatal and info.value.problem == "body_size"


def test_encoder_refuses_what_it_cannot_send() -> None:
    with pytest.raises(MessageError, match="device_name must be ASCII of at most 20"):
        encode_message(StringMessage("x" * 21, "a"))
    with pytest.raises(MessageError, match="NaN"):
        encode_message(PointMessage("P", np.array([[np.nan, 0, 0]])))
    with pytest.raises(MessageError, match="65535"):
        encode_message(StringMessage("S", "a" * 70_000))


def test_lps_to_ras_known_point_and_transform() -> None:
    # LPS (10, 20, 30): 10 mm left, 20 mm posterior -> RAS (-10, -20, 30)
    np.testing.assert_array_equal(points_lps_to_ras([[10.0, 20.0, 30.0]]), [[-10, -20, 30]])
    # a translation of +5 mm along L (towards the left) is -5 mm along R
    T = np.eye(4)
    T[:3, 3] = (5.0, 0.0, 0.0)
    np.testing.assert_array_equal(transform_lps_to_ras(T)[:3, 3], [-5.0, 0.0, 0.0])
    # a rotation of +90 deg about z (L -> P) stays +90 deg about z (R -> A) in RAS
    Rz = np.array([[0, -1, 0, 1.0], [1, 0, 0, 2.0], [0, 0, 1, 3.0], [0, 0, 0, 1]])
    T_ras = transform_lps_to_ras(Rz)
    np.testing.assert_array_equal(T_ras[:3, :3], Rz[:3, :3])
    np.testing.assert_array_equal(T_ras[:3, 3], [-1.0, -2.0, 3.0])
    # consistency: mapping a RAS point with T_ras = flipping the LPS image of it
    p = np.array([7.0, -4.0, 9.0])
    lhs = T_ras[:3, :3] @ points_lps_to_ras(p[None])[0] + T_ras[:3, 3]
    np.testing.assert_allclose(lhs, points_lps_to_ras((Rz[:3, :3] @ p + Rz[:3, 3])[None])[0])
