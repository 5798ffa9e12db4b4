"""A Qt-free OpenIGTLink client that follows a ``surgplan live`` server: :class:`LiveClient`.

One background thread, plain blocking sockets and the project's codec
(:mod:`surgplan.live.codec`):

- **Updates.** Messages are gathered by device name until the ``TwinStatus`` STRING that
  closes an update; the update becomes a :class:`~surgplan.viewer.live_frame.LiveFrame`
  (:func:`~surgplan.viewer.live_frame.frame_from_messages`).
- **Coalescing.** The newest frame waits in a one-slot mailbox (:meth:`LiveClient.take`):
  a frame not taken before the next one arrives is superseded (counted in
  :attr:`ClientStats.superseded`), so a slow GUI draws only the newest state. ``on_frame`` is
  called in the client's thread after each frame is posted (a Qt signal emit belongs there).
- **Reconnection.** When the connection cannot be made or drops (TCP keepalive notices a
  server host that vanished without closing, in about 10 s), the client reports
  ``"reconnecting"`` with the reason and retries with exponential backoff (``backoff_s`` up to
  ``max_backoff_s``); the partial update of a dropped connection is discarded.
- **Malformed input.** A message whose framing is broken (bad header, body over the cap, bad
  CRC) means the byte stream cannot be trusted: the connection is closed and re-made. A
  message whose body does not decode, an update that does not make a consistent frame, or
  an unknown type is skipped. Every one is counted (:attr:`ClientStats.malformed`) and its
  reason kept (:attr:`ClientStats.last_problem`); none stops the client.

Connection states (:class:`ConnectionState`): ``"connecting"``, ``"connected"``,
``"reconnecting"`` (with the reason the last connection ended or failed) and ``"stopped"``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from surgplan.live.codec import (
    HEADER_SIZE,
    Message,
    StringMessage,
    check_crc,
    decode_body,
    parse_header,
)
from surgplan.live.errors import LiveError, MessageError
from surgplan.live.frames import ACK_DEVICE, ERROR_DEVICE, STATUS_DEVICE
from surgplan.viewer.live_frame import LiveFrame, frame_from_messages

__all__ = ["ClientStats", "ConnectionState", "LiveClient", "DEFAULT_MAX_BODY_BYTES"]

logger = logging.getLogger("surgplan.viewer.live")

#: Largest body the client accepts, bytes (a 20,000-vertex organ is about 0.5 MB).
DEFAULT_MAX_BODY_BYTES = 64 * 2**20

State = Literal["connecting", "connected", "reconnecting", "stopped"]


@dataclass(frozen=True)
class ConnectionState:
    """Where the client stands.

    Attributes
    ----------
    state : {"connecting", "connected", "reconnecting", "stopped"}
        The connection's state.
    address : str
        ``host:port`` followed.
    reason : str
        Why the last connection ended, or why the first attempt failed (empty while none did).
    attempt : int
        Failed attempts since the last successful connection.
    error : str
        Why the latest attempt failed (empty: none failed since the connection ended).
    retry_in_s : float
        Wait before the next attempt (``"reconnecting"``), s.
    """

    state: State
    address: str
    reason: str = ""
    attempt: int = 0
    retry_in_s: float = 0.0
    error: str = ""

    def text(self) -> str:
        """One line for a status bar."""
        if self.state == "connected":
            return f"live: connected to {self.address}"
        if self.state == "reconnecting":
            why = f": {self.error}" if self.error and self.error != self.reason else ""
            return (
                f"live: session at {self.address} dropped ({self.reason}); reconnecting in "
                f"{self.retry_in_s:.1f} s (attempt {self.attempt}{why})"
            )
        if self.state == "stopped":
            return f"live: stopped following {self.address}"
        return f"live: connecting to {self.address}"


@dataclass(frozen=True)
class ClientStats:
    """Counters of a :class:`LiveClient`.

    Attributes
    ----------
    messages : int
        Messages received and decoded.
    frames : int
        Updates assembled into frames.
    superseded : int
        Frames replaced by a newer one before being taken.
    malformed : int
        Messages or updates refused (module docstring).
    connections : int
        Successful connections.
    last_problem : str
        The last refusal's reason.
    server_errors : int
        ``LiveError`` STRINGs the server sent this client.
    """

    messages: int = 0
    frames: int = 0
    superseded: int = 0
    malformed: int = 0
    connections: int = 0
    last_problem: str = ""
    server_errors: int = 0


def _keepalive(sock: socket.socket) -> None:
    """TCP keepalive: a server host that vanishes without closing is noticed in about 10 s."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):  # Linux; elsewhere the system's defaults apply
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class _Dropped(Exception):
    """The connection ended (the reason is the message)."""


class LiveClient:
    """Follow a live session's publications from a background thread (module docstring).

    Parameters
    ----------
    host, port
        The server.
    on_frame : callable, optional
        Called in the client's thread after a new frame is posted (then :meth:`take` it).
    on_state : callable, optional
        Called in the client's thread with each new :class:`ConnectionState`.
    backoff_s, max_backoff_s : float, keyword-only
        First and longest wait between connection attempts, s.
    connect_timeout_s : float, keyword-only
        Timeout of one connection attempt, s.
    max_body_bytes : int, keyword-only
        Largest message body accepted.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        on_frame: Callable[[], None] | None = None,
        on_state: Callable[[ConnectionState], None] | None = None,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if not (0 < int(port) < 65536):
            raise LiveError(f"live port must be in 1..65535, got {port!r}")
        if not (backoff_s > 0 and max_backoff_s >= backoff_s):
            raise LiveError(
                f"backoff must satisfy 0 < backoff_s <= max_backoff_s, got {backoff_s!r}, "
                f"{max_backoff_s!r}"
            )
        self.host, self.port = host, int(port)
        self.on_frame, self.on_state = on_frame, on_state
        self.backoff_s, self.max_backoff_s = float(backoff_s), float(max_backoff_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.max_body_bytes = int(max_body_bytes)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._slot: LiveFrame | None = None
        self._stats = ClientStats()
        self._state = ConnectionState("connecting", self.address_text)
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="surgplan-live-client", daemon=True)

    @property
    def address_text(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    # --- public API -------------------------------------------------------------------------

    def start(self) -> LiveClient:
        """Start following (returns ``self``)."""
        self._thread.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the connection (idempotent)."""
        self._stop.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)
        self._set_state(ConnectionState("stopped", self.address_text, self._state.reason))

    def take(self) -> LiveFrame | None:
        """The newest frame not yet taken (``None`` if none arrived since the last call)."""
        with self._lock:
            frame, self._slot = self._slot, None
        return frame

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        with self._lock:
            return self._state

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._stats

    def __enter__(self) -> LiveClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals --------------------------------------------------------------------------

    def _count(self, **changes: Any) -> None:
        with self._lock:
            s = self._stats
            inc = {k: getattr(s, k) + v for k, v in changes.items() if k != "last_problem"}
            if "last_problem" in changes:
                inc["last_problem"] = changes["last_problem"]
            self._stats = replace(s, **inc)

    def _problem(self, reason: str) -> None:
        logger.warning("live client %s: %s", self.address_text, reason)
        self._count(malformed=1, last_problem=reason)

    def _set_state(self, state: ConnectionState) -> None:
        with self._lock:
            if state == self._state:
                return
            self._state = state
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:  # noqa: BLE001 - a faulty observer must not stop the client
                logger.exception("on_state callback failed")

    def _post(self, frame: LiveFrame) -> None:
        with self._lock:
            superseded = self._slot is not None
            self._slot = frame
            s = self._stats
            self._stats = replace(s, frames=s.frames + 1, superseded=s.superseded + superseded)
        if self.on_frame is not None:
            try:
                self.on_frame()
            except Exception:  # noqa: BLE001
                logger.exception("on_frame callback failed")

    def _run(self) -> None:
        attempt, dropped, error = 0, "", ""
        while not self._stop.is_set():
            failed = self._follow_once()
            if self._stop.is_set():
                break
            if failed is None:  # connected, then dropped: start the backoff afresh
                attempt, dropped, error = 0, self._state.reason, ""
            else:
                dropped, error = dropped or failed, failed
            attempt += 1
            wait = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
            self._set_state(
                ConnectionState("reconnecting", self.address_text, dropped, attempt, wait, error)
            )
            self._stop.wait(wait)

    def _follow_once(self) -> str | None:
        """Connect and read until the connection ends.

        Returns the reason a connection attempt failed, or ``None`` once a connection was made
        (the reason it ended is then in the state).
        """
        try:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout_s)
        except OSError as exc:
            return f"cannot connect: {exc.strerror or exc}"
        sock.settimeout(None)
        _keepalive(sock)
        with self._lock:
            self._sock = sock
        self._count(connections=1)
        self._set_state(ConnectionState("connected", self.address_text))
        try:
            self._read_loop(sock)
            reason = "stopped"
        except _Dropped as exc:
            reason = str(exc)
        finally:
            with self._lock:
                self._sock = None
            sock.close()
        with self._lock:
            self._state = replace(self._state, reason=reason)
        return None

    def _recv_exactly(self, sock: socket.socket, n: int, what: str) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = sock.recv(min(n - len(buf), 1 << 20))
            except OSError as exc:
                raise _Dropped(f"connection lost: {exc.strerror or exc}") from None
            if not chunk:
                if self._stop.is_set():
                    raise _Dropped("stopped")
                if not buf and what == "header":
                    raise _Dropped("the server closed the connection")
                raise _Dropped(f"the server closed the connection mid-{what}")
            buf += chunk
        return bytes(buf)

    def _read_loop(self, sock: socket.socket) -> None:
        parts: dict[str, Message] = {}
        while not self._stop.is_set():
            head = self._recv_exactly(sock, HEADER_SIZE, "header")
            try:
                header = parse_header(head, max_body_bytes=self.max_body_bytes)
                body = self._recv_exactly(sock, header.body_size, "message")
                check_crc(header, body)
            except MessageError as exc:  # framing broken: the stream cannot be trusted
                self._problem(f"[{exc.problem}] {exc}")
                raise _Dropped(f"corrupt stream ({exc.problem}): {exc}") from None
            try:
                msg = decode_body(header, body)
            except MessageError as exc:
                self._problem(f"[{exc.problem}] {exc}")
                continue
            self._count(messages=1)
            self._dispatch(msg, parts)

    def _dispatch(self, msg: Message, parts: dict[str, Message]) -> None:
        name = msg.device_name
        if name == STATUS_DEVICE and isinstance(msg, StringMessage):
            got, parts_now = time.perf_counter(), dict(parts)
            parts.clear()
            try:
                frame = frame_from_messages(msg, parts_now, received_s=got)
            except LiveError as exc:
                self._problem(f"update refused: {exc}")
                return
            self._post(frame)
        elif name == ERROR_DEVICE:
            self._count(server_errors=1)
            text = msg.text if isinstance(msg, StringMessage) else ""
            logger.warning("live server %s reported: %s", self.address_text, text)
        elif name != ACK_DEVICE:
            parts[name] = msg
