"""Shared helpers of the live-session tests (no tests here): a case, a synthetic stream, a raw
OpenIGTLink client on a real loopback socket."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np

from surgplan.case import Case
from surgplan.live import (
    HEADER_SIZE,
    PointMessage,
    PolyDataMessage,
    SessionConfig,
    TransformMessage,
    TwinSpec,
    decode_message,
    encode_message,
    parse_header,
)
from surgplan.twin.synthetic import posed_swabs, synthetic_organ

#: The pose of the synthetic organ in tracker space (rotation about z by 20 deg, translation).
_c, _s = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))
T_TRACKER_MODEL = np.array([[_c, -_s, 0, 30.0], [_s, _c, 0, -40.0], [0, 0, 1, 120.0], [0, 0, 0, 1]])
TIP_MM = (0.0, 0.0, 150.0)


def make_case(folder: Path) -> Path:
    """An empty case (manifest only)."""
    case = Case.open_or_new(folder)
    with case.transaction():
        pass
    return folder


def config(mode: str = "rigid", tip=TIP_MM) -> SessionConfig:
    return SessionConfig(
        twin=TwinSpec(source="synthetic", mode=mode, noise_mm=0.5), tip_offset_mm=tip
    )


def scan_points(n: int, seed: int) -> np.ndarray:
    """Noisy surface points of the synthetic organ in tracker space (LPS), mm."""
    m = synthetic_organ(3)
    return posed_swabs(
        m, np.zeros((len(m.vertices), 3)), T_TRACKER_MODEL, n_points=n, noise_mm=0.3, seed=seed
    )


def point_msg(points: np.ndarray, device: str = "PointsInTracker", ts: float = 0.0) -> bytes:
    return encode_message(PointMessage(device, points), timestamp_s=ts)


def scan_msg(points: np.ndarray, device: str = "ScanInTracker", ts: float = 0.0) -> bytes:
    return encode_message(PolyDataMessage(device, points), timestamp_s=ts)


def pointer_msg(tip_tracker: np.ndarray, ts: float = 0.0) -> bytes:
    """A pointer pose whose calibrated tip lies at ``tip_tracker``."""
    T = np.eye(4)
    T[:3, 3] = np.asarray(tip_tracker) - np.asarray(TIP_MM)
    return encode_message(TransformMessage("PointerToTracker", T), timestamp_s=ts)


class RawClient:
    """A blocking OpenIGTLink client on a plain socket."""

    def __init__(self, address: tuple[str, int], timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout_s)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next (header, message), or None at EOF."""
        head = self._read(HEADER_SIZE)
        if head is None:
            return None
        h = parse_header(head)
        body = self._read(h.body_size)
        if body is None:
            return None
        return decode_message(head + body)

    def until(self, device: str, pred=lambda m: True, timeout_s: float = 20.0):
        """Read until a message from ``device`` satisfying ``pred`` (its decoded message)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            got = self.recv()
            if got is None:
                raise EOFError(f"connection closed while waiting for {device}")
            if got[0].device_name == device and pred(got[1]):
                return got[1]
        raise TimeoutError(device)

    def ack(self) -> dict:
        return json.loads(self.until("LiveAck").text)

    def closed(self, timeout_s: float = 10.0) -> bool:
        """Whether the server closes the connection (reading what it still sends)."""
        self.sock.settimeout(timeout_s)
        try:
            while self.sock.recv(1 << 16):
                pass
            return True
        except TimeoutError:
            return False
        except (ConnectionError, OSError):
            return True

    def close(self) -> None:
        self.sock.close()
