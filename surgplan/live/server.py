"""The OpenIGTLink server of a live session (asyncio for the sockets, one thread for the twin).

Per client (one asyncio task each, so a client's fault is its own):

1. read the 58-byte header; check it (:func:`~surgplan.live.codec.parse_header`: version, type
   and device names, body size under ``max_body_bytes``);
2. read the body (within ``body_timeout_s`` of the header), check its CRC-64;
3. decode it and check the session takes it (:meth:`SessionCore.check`);
4. append the raw message to the session log and commit; send ``LiveAck`` to the sender;
5. queue it for the twin.

A fatal problem in 1-2 (bad header, oversized body, bad CRC, the client disconnecting
mid-message, a stalled body) closes that client after a ``LiveError`` STRING and a logged
error; a problem in 3 (unknown type, NaN coordinates, bad layout, a TRANSFORM that is not the
pointer's) rejects that one message with a ``LiveError`` and a logged error, and the client
stays connected. Other clients never notice.

Queues are bounded. Acquisitions (POINT, POLYDATA) are never dropped: when
``max_pending_acquisitions`` wait, the server stops reading from their senders (TCP flow
control holds them back). Pointer TRANSFORMs beyond ``max_pending_pointer`` are coalesced: the
oldest are dropped from the queue (they stay in the log, and the next update records them as
``dropped``). The twin thread takes everything waiting as one batch, records the update, then
publishes its messages to every connected client; a client that does not keep up (more than
``client_buffer_bytes`` unsent) misses publications (each one supersedes the last) but never
slows the others.

Addresses: the server binds ``127.0.0.1`` unless told otherwise; it accepts loopback clients
and the addresses or networks in ``allow``; anyone else is refused and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from surgplan.live.codec import (
    DEFAULT_MAX_BODY_BYTES,
    HEADER_SIZE,
    Message,
    StringMessage,
    TransformMessage,
    check_crc,
    decode_body,
    encode_message,
    parse_header,
)
from surgplan.live.errors import LiveError, MessageError
from surgplan.live.frames import ACK_DEVICE, ERROR_DEVICE
from surgplan.live.log import LiveSession
from surgplan.live.publish import state_messages, status_dict
from surgplan.live.session import UpdateOutcome

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerLimits", "LiveServer", "LiveServerThread"]

logger = logging.getLogger("surgplan.live")

DEFAULT_HOST = "127.0.0.1"
#: The OpenIGTLink port 3D Slicer and PLUS use by default.
DEFAULT_PORT = 18944


@dataclass(frozen=True)
class ServerLimits:
    """Every bound of the server in one place.

    Attributes
    ----------
    max_body_bytes : int
        Largest message body accepted (a 5,000-point POLYDATA scan is ~60 kB).
    body_timeout_s : float
        Longest wait for a body once its header arrived, s.
    max_clients : int
        Connected clients at most; more are refused.
    max_pending_acquisitions : int
        POINT/POLYDATA messages waiting for the twin before their senders are held back.
    max_pending_pointer : int
        Pointer TRANSFORMs waiting for the twin before the oldest are coalesced away.
    client_buffer_bytes : int
        Unsent bytes to one client beyond which it misses publications.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout_s: float = 10.0
    max_clients: int = 64
    max_pending_acquisitions: int = 64
    max_pending_pointer: int = 64
    client_buffer_bytes: int = 16 * 2**20


@dataclass
class _Client:
    cid: str
    writer: asyncio.StreamWriter
    missed: int = 0

    def send(self, data: bytes, limit: int) -> bool:
        if self.writer.is_closing():
            return False
        if self.writer.transport.get_write_buffer_size() > limit:
            self.missed += 1
            return False
        self.writer.write(data)
        return True


@dataclass
class _Queues:
    """What waits for the twin (guarded by ``cond``)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    acquisitions: deque = field(default_factory=deque)
    pointer: deque = field(default_factory=deque)
    dropped: list[int] = field(default_factory=list)
    busy: bool = False
    stop: bool = False


def ignore_sigpipe() -> None:
    """Ignore SIGPIPE again (from the main thread; elsewhere a no-op).

    Python ignores SIGPIPE, so a write to a socket its peer closed raises ``BrokenPipeError``;
    but PETSc (imported with DOLFINx by the mechanics) installs a handler that aborts the whole
    process on SIGPIPE: one client leaving mid-write would kill the session. The server calls
    this when it is created and started.
    """
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def _allowed_networks(allow: Sequence[str]) -> list[Any]:
    nets = []
    for a in allow:
        try:
            nets.append(ipaddress.ip_network(a, strict=False))
        except ValueError:
            raise LiveError(f"--allow {a!r} is not an IP address or network") from None
    return nets


class LiveServer:
    """The live session's OpenIGTLink server (module docstring).

    Parameters
    ----------
    session : LiveSession
        The session (log and twin); see :func:`surgplan.live.log.open_session`.
    host : str, keyword-only
        Address to bind (default loopback only).
    port : int, keyword-only
        Port (0: any free port; :attr:`address` tells which).
    allow : sequence of str, keyword-only
        Client addresses or networks (``"10.0.0.7"``, ``"192.168.1.0/24"``) accepted besides
        loopback.
    allow_loopback : bool, keyword-only
        Accept loopback clients (default yes).
    limits : ServerLimits, keyword-only
        Sizes, timeouts and queue bounds.
    on_event : callable, optional
        Called in the server's thread with each event dict (``{"event": "client_connected",
        ...}``); keep it fast.
    """

    def __init__(
        self,
        session: LiveSession,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        allow: Sequence[str] = (),
        allow_loopback: bool = True,
        limits: ServerLimits | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.session = session
        self.host, self.port = host, int(port)
        self._nets = _allowed_networks(allow)
        self._loopback = allow_loopback
        self.limits = limits or ServerLimits()
        self.on_event = on_event
        self._clients: dict[str, _Client] = {}
        self._q = _Queues()
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._worker: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()
        self.address: tuple[str, int] | None = None
        self.n_accepted = 0
        ignore_sigpipe()
        self.n_published = 0

    # --- events -----------------------------------------------------------------------------

    def _event(
        self,
        kind: str,
        client: str | None = None,
        *,
        log: bool = True,
        level: int = logging.INFO,
        **detail: Any,
    ) -> None:
        ev = {"event": kind, **({"client": client} if client else {}), **detail}
        logger.log(level, "%s", json.dumps(ev))
        if log:
            with contextlib.suppress(Exception):  # a closed log must not take the server down
                self.session.log.append_event(kind, client, detail)
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:  # noqa: BLE001 - a faulty observer must not stop the session
                logger.exception("on_event callback failed")

    def _allowed(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.split("%")[0])
        except ValueError:
            return False
        if self._loopback and ip.is_loopback:
            return True
        return any(ip in n for n in self._nets)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Bind, start the twin thread; returns the (host, port) listened on."""
        ignore_sigpipe()
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.limits.max_pending_acquisitions)
        try:
            self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        except OSError as exc:
            raise LiveError(f"cannot listen on {self.host}:{self.port}: {exc}") from None
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], int(sock[1]))
        self._worker = threading.Thread(target=self._twin_loop, name="surgplan-twin", daemon=True)
        self._worker.start()
        self._event(
            "listening", host=self.address[0], port=self.address[1], session=self.session.session_id
        )
        return self.address

    async def close(self) -> None:
        """Stop accepting, close clients, let the twin finish what is queued, stop it."""
        if self._server is not None:
            self._server.close()
        for c in list(self._clients.values()):
            c.writer.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        with self._q.cond:
            self._q.stop = True
            self._q.cond.notify_all()
        if self._worker is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._worker.join)
        self._event("stopped", accepted=self.n_accepted, updates=self.session.n_updates)

    def idle(self) -> bool:
        """Whether nothing waits for (or is in) the twin."""
        with self._q.cond:
            return not (self._q.acquisitions or self._q.pointer or self._q.busy)

    # --- clients ----------------------------------------------------------------------------

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername") or ("?", 0)
        cid = f"{peer[0]}:{peer[1]}"
        try:
            if not self._allowed(str(peer[0])):
                self._event(
                    "client_refused", cid, level=logging.WARNING, reason="address not allowed"
                )
                return
            if len(self._clients) >= self.limits.max_clients:
                self._event(
                    "client_refused",
                    cid,
                    level=logging.WARNING,
                    reason=f"more than {self.limits.max_clients} clients",
                )
                return
            client = _Client(cid, writer)
            self._clients[cid] = client
            self._event("client_connected", cid)
            reason = await self._serve(client, reader)
            self._event("client_closed", cid, reason=reason, missed_publications=client.missed)
        except asyncio.CancelledError:
            pass
        finally:
            self._clients.pop(cid, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    def _reject(self, client: _Client, exc: MessageError, closing: bool) -> None:
        self._event(
            "client_error",
            client.cid,
            level=logging.ERROR,
            problem=exc.problem,
            message=str(exc),
            closing=closing,
        )
        text = json.dumps({"problem": exc.problem, "message": str(exc), "closing": closing})
        with contextlib.suppress(Exception):
            client.send(encode_message(StringMessage(ERROR_DEVICE, text[:0xFFFF])), 2**30)

    async def _serve(self, client: _Client, reader: asyncio.StreamReader) -> str:
        """Read messages until the client leaves or errs; returns why it ended."""
        lim = self.limits
        while True:
            try:
                head = await reader.readexactly(HEADER_SIZE)
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    return "disconnected"
                self._reject(
                    client,
                    MessageError(
                        "truncated",
                        f"disconnected mid-header: {len(exc.partial)} of {HEADER_SIZE} "
                        "header bytes",
                        fatal=True,
                    ),
                    True,
                )
                return "truncated header"
            except ConnectionError:
                return "connection reset"
            t_recv = time.perf_counter()
            try:
                header = parse_header(head, max_body_bytes=lim.max_body_bytes)
                try:
                    body = await asyncio.wait_for(
                        reader.readexactly(header.body_size), lim.body_timeout_s
                    )
                except asyncio.IncompleteReadError as exc:
                    raise MessageError(
                        "truncated",
                        f"disconnected mid-message: "
                        f"{len(exc.partial)} of {header.body_size} body bytes of "
                        f"{header.type_name} {header.device_name!r}",
                        fatal=True,
                    ) from None
                except TimeoutError:
                    raise MessageError(
                        "truncated",
                        f"body of {header.type_name} stalled: not "
                        f"complete {lim.body_timeout_s:g} s after its header",
                        fatal=True,
                    ) from None
                check_crc(header, body)
            except MessageError as exc:
                self._reject(client, exc, True)
                return exc.problem
            except ConnectionError:
                return "connection reset mid-message"
            try:
                msg = decode_body(header, body)
                self.session.core.check(msg)
            except MessageError as exc:
                self._reject(client, exc, False)
                continue
            seq = self.session.log.append_message(time.time(), client.cid, header, head + body)
            self.n_accepted += 1
            ack = json.dumps(
                {
                    "seq": seq,
                    "type": header.type_name,
                    "device": header.device_name,
                    "timestamp": header.timestamp_s,
                }
            )
            client.send(encode_message(StringMessage(ACK_DEVICE, ack)), lim.client_buffer_bytes)
            await self._enqueue(seq, msg, header.timestamp_s, t_recv)

    async def _enqueue(self, seq: int, msg: Message, sent_ts: float, t_recv: float) -> None:
        item = (seq, msg, sent_ts, t_recv)
        q = self._q
        if isinstance(msg, TransformMessage):
            with q.cond:
                q.pointer.append(item)
                while len(q.pointer) > self.limits.max_pending_pointer:
                    q.dropped.append(q.pointer.popleft()[0])
                q.cond.notify()
            return
        assert self._slots is not None
        await self._slots.acquire()  # held back here while the twin is behind: never dropped
        with q.cond:
            q.acquisitions.append(item)
            q.cond.notify()

    # --- the twin thread --------------------------------------------------------------------

    def _twin_loop(self) -> None:
        q = self._q
        while True:
            with q.cond:
                while not (q.acquisitions or q.pointer or q.stop):
                    q.cond.wait()
                if q.stop and not (q.acquisitions or q.pointer):
                    return
                items = list(q.acquisitions) + list(q.pointer)
                n_acq = len(q.acquisitions)
                q.acquisitions.clear()
                q.pointer.clear()
                dropped, q.dropped = q.dropped, []
                q.busy = True
            assert self._loop is not None and self._slots is not None
            for _ in range(n_acq):
                self._loop.call_soon_threadsafe(self._slots.release)
            items.sort(key=lambda it: it[0])
            try:
                self._update(items, dropped)
            except Exception as exc:  # noqa: BLE001 - keep serving; the error is logged
                logger.exception("twin update failed")
                self._loop.call_soon_threadsafe(
                    lambda e=exc: self._event(
                        "update_failed", level=logging.ERROR, message=f"{type(e).__name__}: {e}"
                    )
                )
            finally:
                with q.cond:
                    q.busy = False

    def _update(self, items: list[tuple], dropped: list[int]) -> None:
        seqs = [it[0] for it in items]
        n, outcome = self.session.process(seqs, [it[1] for it in items], dropped)
        status = status_dict(
            n, outcome, self.session.core.config.frames, [(it[0], it[2]) for it in items]
        )
        payload = state_messages(
            self.session.core.twin, status, self.session.core.config.frames, time.time()
        )
        t_first = min(it[3] for it in items)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._publish, payload, outcome, status, dropped, t_first)

    def _publish(
        self,
        payload: list[bytes],
        outcome: UpdateOutcome,
        status: dict[str, Any],
        dropped: list[int],
        t_first: float,
    ) -> None:
        data = b"".join(payload)
        for c in list(self._clients.values()):
            c.send(data, self.limits.client_buffer_bytes)
        self.n_published += 1
        self._event(
            "update",
            log=False,
            update=status["update"],
            status=outcome.status,
            trustworthy=status.get("trustworthy", False),
            reason=status.get("reason"),
            inputs=status["inputs"]["count"],
            coalesced=len(dropped),
            latency_ms=(time.perf_counter() - t_first) * 1e3,
            clients=len(self._clients),
        )


class LiveServerThread:
    """A :class:`LiveServer` running its own event loop in a background thread.

    For tests, benchmarks and embedding: ``with LiveServerThread(session, port=0) as srv:``
    then ``srv.address``. Parameters are those of :class:`LiveServer`.
    """

    def __init__(self, session: LiveSession, **kwargs: Any) -> None:
        self.server = LiveServer(session, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="surgplan-live", daemon=True
        )
        self.address: tuple[str, int] | None = None

    def start(self) -> tuple[str, int]:
        """Start the loop and the server; returns the address."""
        ignore_sigpipe()
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self.server.start(), self._loop)
        self.address = fut.result(timeout=30)
        return self.address

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Block until the twin has processed everything queued (``TimeoutError`` otherwise)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.server.idle():
                # one more loop turn so that a publication scheduled by the twin has gone out
                asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self._loop).result(5)
                if self.server.idle():
                    return
            time.sleep(0.005)
        raise TimeoutError(f"the live server was still busy after {timeout_s} s")

    def stop(self) -> None:
        """Close the server and stop the loop."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(timeout=60)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> LiveServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
