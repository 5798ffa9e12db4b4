"""The live server on real loopback sockets: pyigtl as a peer, robustness, queues, allow-list.

One server (synthetic rigid twin, body cap 1 MiB) serves the module. Each robustness test does
one bad thing from one client while a healthy probe client keeps working, then checks that the
offender got a logged error, the server is up, and the log holds exactly what was accepted.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time

import numpy as np
import pyigtl
import pytest

from surgplan.live import LiveServerThread, ServerLimits, open_session
from surgplan.live.codec import crc64
from surgplan.live.frames import F_LPS_RAS
from tests.test_live_helpers import (
    RawClient,
    config,
    make_case,
    point_msg,
    pointer_msg,
    scan_msg,
    scan_points,
)

CAP = 1 << 20


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    case = make_case(tmp_path_factory.mktemp("live") / "case")
    session, _ = open_session(case, config())
    events: list[dict] = []
    srv = LiveServerThread(
        session, port=0, limits=ServerLimits(max_body_bytes=CAP), on_event=events.append
    )
    srv.start()
    probe = RawClient(srv.address)
    probe.send(scan_msg(scan_points(300, seed=1)))  # first registration
    probe.ack()
    probe.until("TwinStatus", lambda m: json.loads(m.text)["status"] == "state")
    yield srv, session, events, probe
    probe.close()
    srv.stop()
    session.log.close()


def _healthy(live) -> None:
    """The probe still gets an ack and a state for a new acquisition."""
    srv, session, _, probe = live
    pts = scan_points(5, seed=int(time.time() * 1e3) % 10_000)
    probe.send(point_msg(pts))
    seq = probe.ack()["seq"]
    probe.until("TwinStatus", lambda m: json.loads(m.text)["inputs"]["seqs"][-1] >= seq)


def _errors(events, problem):
    return [e for e in list(events) if e["event"] == "client_error" and e["problem"] == problem]


def _log_consistent(session) -> None:
    """Every accepted message decodes and no rejected one is in the log."""
    from surgplan.live.codec import decode_message

    for raw in session.log.raw_messages().values():
        decode_message(raw)


def test_pyigtl_client_receives_the_published_state(live, monkeypatch) -> None:
    srv, session, _, _ = live
    seen_polydata: list[bytes] = []

    class PolyData(pyigtl.PolyDataMessage):  # pyigtl 0.3.4 neither registers nor parses it
        def _unpack_content(self, content):
            seen_polydata.append(bytes(content))

    monkeypatch.setitem(pyigtl.messages.message_type_to_class_constructor, "POLYDATA", PolyData)
    client = pyigtl.OpenIGTLinkClient(*srv.address)
    try:
        deadline = time.monotonic() + 10
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)
        pts = scan_points(20, seed=5)
        client.send_message(pyigtl.PointMessage(pts, device_name="PointsInTracker"), wait=True)
        status = None
        while time.monotonic() < deadline:
            msg = client.wait_for_message("TwinStatus", timeout=5)
            if msg is not None and json.loads(msg.string)["inputs"]["count"] >= 1:
                status = json.loads(msg.string)
                if status["n_points_batch"] == 20:
                    break
        assert status is not None and status["status"] == "state"
        srv.wait_idle()
        state = session.core.state
        reg = client.wait_for_message("ModelToTracker", timeout=5)
        # published in RAS: F T F, float32 on the wire
        np.testing.assert_allclose(
            reg.matrix, F_LPS_RAS @ state.T_tracker_model @ F_LPS_RAS, atol=1e-4
        )
        targets = client.wait_for_message("TargetsInTracker", timeout=5)
        for t, name, pos, d in zip(
            state.targets, targets.names, targets.positions, targets.diameters, strict=True
        ):
            assert name == t.name
            np.testing.assert_allclose(pos, t.position_tracker_mm * [-1, -1, 1], atol=1e-4)
            assert d == pytest.approx(2 * t.radius95_mm, rel=1e-6)
            st = next(s for s in status["targets"] if s["name"] == t.name)
            assert st["radius95_mm"] == pytest.approx(t.radius95_mm)
        assert status["trustworthy"] == state.trustworthy
        assert status["reason"] == state.verdict.reason
        assert status["frame"] == "tracker_RAS"
        while not seen_polydata and time.monotonic() < deadline:
            time.sleep(0.01)
        body = seen_polydata[-1]
        counts = struct.unpack(">10I", body[:40])
        n = counts[0]
        pts_ras = np.frombuffer(body, ">f4", 3 * n, 40).reshape(n, 3)
        organ = session.core.twin.deformed_surface()
        np.testing.assert_allclose(pts_ras, np.asarray(organ.points) * [-1, -1, 1], atol=1e-4)
        assert counts[5] == organ.n_cells
    finally:
        client.stop()


def test_truncated_body_layout_is_rejected_and_client_kept(live) -> None:
    srv, session, events, _ = live
    n0 = len(session.log.message_seqs())
    body = b"\0" * 100  # a POINT body must be a multiple of 136 bytes
    head = struct.pack(">H12s20sQQQ", 1, b"POINT", b"PointsInTracker", 0, len(body), crc64(body))
    bad = RawClient(srv.address)
    bad.send(head + body)
    err = json.loads(bad.until("LiveError").text)
    assert err["problem"] == "layout" and not err["closing"]
    bad.send(point_msg(scan_points(3, seed=9)))  # still connected, still served
    assert bad.ack()["seq"] > n0
    bad.close()
    _healthy(live)
    assert _errors(events, "layout")


def test_disconnect_mid_message(live) -> None:
    srv, session, events, _ = live
    n0 = len(session.log.message_seqs())
    msg = point_msg(scan_points(10, seed=3))
    bad = RawClient(srv.address)
    bad.send(msg[: len(msg) // 2])
    bad.close()
    _healthy(live)
    assert any("mid-message" in e["message"] for e in _errors(events, "truncated"))
    assert len(session.log.message_seqs()) == n0 + 1  # only the probe's


@pytest.mark.parametrize("case_", ["short", "extended"])
def test_wrong_header_sizes(live, case_) -> None:
    srv, session, events, _ = live
    bad = RawClient(srv.address)
    if case_ == "short":  # 30 of 58 header bytes, then gone
        bad.send(point_msg(scan_points(1, seed=1))[:30])
        bad.close()
        _healthy(live)
        assert any("mid-header" in e["message"] for e in _errors(events, "truncated"))
    else:  # version 2 header whose extended header claims 4 bytes
        body = struct.pack(">HHII", 4, 0, 0, 0) + b"\0" * 136
        head = struct.pack(">H12s20sQQQ", 2, b"POINT", b"P", 0, len(body), crc64(body))
        bad.send(head + body)
        err = json.loads(bad.until("LiveError").text)
        assert err["problem"] == "layout" and "extended header" in err["message"]
        bad.close()
        _healthy(live)


def test_bad_crc_closes_only_that_client(live) -> None:
    srv, session, events, _ = live
    n0 = len(session.log.message_seqs())
    msg = bytearray(point_msg(scan_points(4, seed=4)))
    msg[-1] ^= 0xFF
    bad = RawClient(srv.address)
    bad.send(bytes(msg))
    err = json.loads(bad.until("LiveError").text)
    assert err["problem"] == "crc" and err["closing"]
    assert bad.closed()
    bad.close()
    _healthy(live)
    assert len(session.log.message_seqs()) == n0 + 1


def test_unknown_type_is_rejected(live) -> None:
    srv, session, events, _ = live
    body = b"hello"
    head = struct.pack(">H12s20sQQQ", 1, b"FOOBAR", b"X", 0, len(body), crc64(body))
    bad = RawClient(srv.address)
    bad.send(head + body)
    err = json.loads(bad.until("LiveError").text)
    assert err["problem"] == "type" and "FOOBAR" in err["message"]
    bad.close()
    _healthy(live)


def test_oversized_body_is_refused_before_reading_it(live) -> None:
    srv, session, events, _ = live
    head = struct.pack(">H12s20sQQQ", 1, b"POLYDATA", b"Scan", 0, CAP + 1, 0)
    bad = RawClient(srv.address)
    bad.send(head)  # no body sent: the server must not wait for 1 MiB
    err = json.loads(bad.until("LiveError").text)
    assert err["problem"] == "body_size" and str(CAP) in err["message"] and err["closing"]
    assert bad.closed()
    bad.close()
    _healthy(live)


def test_nan_coordinates_are_rejected(live) -> None:
    srv, session, events, _ = live
    pts = scan_points(5, seed=6)
    pts[2, 1] = np.nan
    bad = RawClient(srv.address)
    n0 = len(session.log.message_seqs())
    bad.send(pyigtl.PointMessage(pts, device_name="PointsInTracker").pack())  # pyigtl sends NaN
    err = json.loads(bad.until("LiveError").text)
    assert err["problem"] == "nan"
    assert len(session.log.message_seqs()) == n0
    bad.close()
    _healthy(live)


def test_random_bytes_for_one_second(live) -> None:
    srv, session, events, _ = live
    n0 = len(session.log.message_seqs())
    rng = np.random.default_rng(7)
    end = time.monotonic() + 1.0
    connections = 0
    while time.monotonic() < end:
        s = socket.create_connection(srv.address, timeout=5)
        connections += 1
        try:
            for _ in range(20):
                s.sendall(rng.integers(0, 256, int(rng.integers(1, 4096)), np.uint8).tobytes())
        except OSError:
            pass  # closed by the server: expected
        s.close()
    _healthy(live)
    assert connections > 5
    assert len(session.log.message_seqs()) == n0 + 1  # the probe's only
    _log_consistent(session)


def test_twenty_concurrent_clients(live) -> None:
    srv, session, events, _ = live
    n0 = len(session.log.message_seqs())
    acks: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            c = RawClient(srv.address)
            got = []
            for k in range(5):
                c.send(point_msg(scan_points(3, seed=100 * i + k)))
                got.append(c.ack()["seq"])
            c.until("TwinStatus", lambda m: json.loads(m.text)["inputs"]["seqs"][-1] >= got[-1])
            acks[i] = got
            c.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    seqs = sorted(s for v in acks.values() for s in v)
    assert len(seqs) == 100 == len(set(seqs))
    assert set(seqs) <= set(session.log.message_seqs())
    assert len(session.log.message_seqs()) == n0 + 100
    srv.wait_idle()
    taken = {s for u in session.log.updates() for s in u["seqs"]}
    assert set(seqs) <= taken  # acquisitions are never dropped


def test_client_not_on_the_allow_list_is_refused(tmp_path) -> None:
    case = make_case(tmp_path / "case")
    session, _ = open_session(case, config())
    events: list[dict] = []
    with LiveServerThread(
        session, port=0, allow=("10.9.9.9",), allow_loopback=False, on_event=events.append
    ) as srv:
        c = RawClient(srv.address)
        c.send(point_msg(scan_points(8, seed=1)))
        assert c.closed()
        c.close()
        time.sleep(0.05)
    refused = [e for e in events if e["event"] == "client_refused"]
    assert refused and refused[0]["reason"] == "address not allowed"
    assert session.log.message_seqs() == []
    assert any(e["kind"] == "client_refused" for e in session.log.events())
    session.log.close()


def test_pointer_coalesced_acquisitions_held_back(tmp_path) -> None:
    """Under load: pointer poses beyond the bound are coalesced (logged, marked dropped);
    acquisitions beyond theirs wait (TCP backpressure) and are all assimilated."""
    case = make_case(tmp_path / "case")
    session, _ = open_session(case, config())
    limits = ServerLimits(max_pending_pointer=2, max_pending_acquisitions=2)
    with LiveServerThread(session, port=0, limits=limits) as srv:
        c = RawClient(srv.address)
        c.send(scan_msg(scan_points(200, seed=2)))
        pts = scan_points(60, seed=3)
        blob = b"".join(pointer_msg(p) for p in pts[:40])
        blob += b"".join(point_msg(p[None]) for p in pts[40:])
        c.send(blob)
        acked = [c.ack()["seq"] for _ in range(61)]
        srv.wait_idle()
        c.close()
    ups = list(session.log.updates())
    taken = {s for u in ups for s in u["seqs"]}
    dropped = {s for u in ups for s in u["dropped"]}
    assert set(acked) == set(session.log.message_seqs()) == taken | dropped
    assert not taken & dropped
    point_seqs = set(acked[41:])  # the POINT messages
    assert point_seqs <= taken
    assert dropped  # the twin was busy with the scan: pointer poses were coalesced
    session.log.close()


def test_loopback_is_the_default_bind(tmp_path) -> None:
    case = make_case(tmp_path / "case")
    session, _ = open_session(case, config(), record_in_manifest=False)
    with LiveServerThread(session, port=0) as srv:
        assert srv.address[0] == "127.0.0.1"
    session.log.close()
    assert os.path.exists(session.log.path)
