"""The crash-safe session log: one SQLite database (WAL) per session in the case.

``CASE/sessions/<session id>.sqlite`` holds, for one live session:

- ``session``: one row, the session's id, creation time, surgplan version and its
  :class:`~surgplan.live.session.SessionConfig` (JSON), and when it ended cleanly (NULL while
  it runs or after a crash);
- ``messages``: every accepted message, its raw bytes (header and body, exactly as received),
  receive time (s since 1970), client address, type and device name; appended and committed
  *before* the message is acknowledged or processed;
- ``updates``: every batch the twin processed: the message ``seq``s it took, the pointer
  messages coalesced away before it (``dropped``), its status, and the resulting
  :class:`~surgplan.twin.TwinState` (``to_dict`` JSON, lossless); appended after the update,
  before its state is published;
- ``events``: connections, refusals and client errors.

The journal is WAL with ``synchronous=NORMAL`` by default: every commit survives the process
being killed (SIGKILL); ``synchronous="FULL"`` also survives a power cut (an fsync per commit).
SQLite's automatic checkpoint (copying the WAL into the database, with an fsync) would run
inside whichever commit crosses 1,000 WAL pages: every ~60th 5,000-point scan took 15-21 ms
longer to log, the live session's worst latencies. It is off on the writing connection; a
background thread with its own connection checkpoints every :data:`CHECKPOINT_INTERVAL_S`
(``PRAGMA wal_checkpoint(PASSIVE)``, which never blocks a writer), and closing the log
checkpoints what is left. Durability is unchanged: a commit is safe once it is in the WAL.
Nothing of the patient is written: the case's manifest is not copied, and the messages carry
geometry and the device labels the sender chose.

Recovery (:func:`open_session` with ``resume``) rebuilds the twin by replaying the recorded
batches, then processes the accepted messages no batch took; :func:`replay_session` recomputes
every recorded state from the messages and compares it with the logged one.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surgplan.live.codec import Header, Message, decode_message
from surgplan.live.errors import LiveError, SessionLogError
from surgplan.live.session import SessionConfig, SessionCore, UpdateOutcome, state_difference

__all__ = [
    "LOG_SCHEMA_VERSION",
    "SESSIONS_DIR",
    "SessionLog",
    "LiveSession",
    "ReplayedUpdate",
    "new_session_id",
    "session_path",
    "list_sessions",
    "open_session",
    "replay_session",
]

logger = logging.getLogger(__name__)
LOG_SCHEMA_VERSION = 1
#: Seconds between the background WAL checkpoints (module docstring).
CHECKPOINT_INTERVAL_S = 1.0
SESSIONS_DIR = "sessions"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session (
    id TEXT PRIMARY KEY, schema_version INTEGER NOT NULL, created_at REAL NOT NULL,
    surgplan_version TEXT, config TEXT NOT NULL, ended_at REAL);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY, received_at REAL NOT NULL, client TEXT NOT NULL,
    type TEXT NOT NULL, device TEXT NOT NULL, raw BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    n INTEGER PRIMARY KEY, seqs TEXT NOT NULL, dropped TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, state TEXT, created_at REAL NOT NULL, recovered INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, client TEXT, detail TEXT);
"""


def new_session_id() -> str:
    """A new session id: UTC time and a random suffix (``20260514T101500Z-3fa2c1``)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def session_path(case_dir: str | os.PathLike[str], session_id: str) -> Path:
    """Where session ``session_id`` of the case is logged."""
    if not session_id or any(c in session_id for c in "/\\") or session_id.startswith("."):
        raise SessionLogError(f"invalid session id {session_id!r}")
    return Path(case_dir) / SESSIONS_DIR / f"{session_id}.sqlite"


class _WalCheckpointer:
    """Checkpoints a WAL database from its own thread and connection (module docstring)."""

    def __init__(self, path: Path, interval_s: float | None = None) -> None:
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=10.0
        )
        self._interval_s = CHECKPOINT_INTERVAL_S if interval_s is None else interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"wal-checkpoint-{path.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the next one retries; the WAL stays valid
                logger.warning("session log checkpoint failed: %s", exc)

    def stop(self) -> None:
        """Stop the thread and close its connection (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self._conn.close()


class SessionLog:
    """Append-only access to one session's database (thread-safe: one lock, short commits).

    Use :meth:`create` for a new session, :meth:`open` to append to or read an existing one.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()
        self._checkpointer = _WalCheckpointer(path)

    @staticmethod
    def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise SessionLogError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise SessionLogError(f"{path}: cannot use the WAL journal (got {mode!r})")
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in _WalCheckpointer
        return conn

    @classmethod
    def create(
        cls, path: Path, session_id: str, config: SessionConfig, *, synchronous: str = "NORMAL"
    ) -> SessionLog:
        """A new session database at ``path`` (which must not exist)."""
        from surgplan.manifest import surgplan_version

        if path.exists():
            raise SessionLogError(f"session log {path} already exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = cls._connect(path, synchronous)
        with conn:
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT INTO session VALUES (?, ?, ?, ?, ?, NULL)",
                (
                    session_id,
                    LOG_SCHEMA_VERSION,
                    time.time(),
                    surgplan_version(),
                    json.dumps(config.to_dict()),
                ),
            )
        return cls(path, conn)

    @classmethod
    def open(cls, path: Path, *, synchronous: str = "NORMAL") -> SessionLog:
        """An existing session database."""
        if not path.is_file():
            raise SessionLogError(f"no session log {path}")
        try:
            conn = cls._connect(path, synchronous)
            row = conn.execute("SELECT schema_version FROM session").fetchone()
        except sqlite3.DatabaseError as exc:
            raise SessionLogError(f"{path} is not a session log: {exc}") from None
        if row is None or row[0] != LOG_SCHEMA_VERSION:
            raise SessionLogError(
                f"{path}: log schema {row and row[0]!r}, expected {LOG_SCHEMA_VERSION}"
            )
        return cls(path, conn)

    # --- writing (each call one committed transaction) --------------------------------------

    def append_message(self, received_at: float, client: str, header: Header, raw: bytes) -> int:
        """Append one accepted message; returns its ``seq`` once committed."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO messages (received_at, client, type, device, raw) VALUES (?,?,?,?,?)",
                (received_at, client, header.type_name, header.device_name, raw),
            )
            return int(cur.lastrowid)

    def append_update(
        self,
        seqs: list[int],
        dropped: list[int],
        outcome: UpdateOutcome,
        *,
        recovered: bool = False,
    ) -> int:
        """Append one processed batch and its outcome; returns its number."""
        state = None if outcome.state is None else json.dumps(outcome.state.to_dict())
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO updates (seqs, dropped, status, error, state, created_at, recovered)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    json.dumps(seqs),
                    json.dumps(dropped),
                    outcome.status,
                    outcome.error,
                    state,
                    time.time(),
                    int(recovered),
                ),
            )
            return int(cur.lastrowid)

    def append_event(self, kind: str, client: str | None, detail: dict[str, Any]) -> None:
        """Append a connection or error event."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO events (at, kind, client, detail) VALUES (?,?,?,?)",
                (time.time(), kind, client, json.dumps(detail)),
            )

    def end(self) -> None:
        """Mark the session as ended cleanly and close the database."""
        self._checkpointer.stop()
        with self._lock:
            self._conn.execute("UPDATE session SET ended_at = ?", (time.time(),))
            self._conn.close()  # the last connection to close checkpoints the WAL

    def close(self) -> None:
        """Close without marking the end (the session may be resumed)."""
        self._checkpointer.stop()
        with self._lock:
            self._conn.close()

    # --- reading ----------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def info(self) -> dict[str, Any]:
        """Session id, times, version, config and counts."""
        sid, ver, created, sv, cfg, ended = self._query("SELECT * FROM session")[0]
        counts = {
            t: self._query(f"SELECT COUNT(*) FROM {t}")[0][0]
            for t in ("messages", "updates", "events")
        }
        states = self._query("SELECT COUNT(*) FROM updates WHERE status = 'state'")[0][0]
        return {
            "session": sid,
            "schema_version": ver,
            "created_at": created,
            "ended_at": ended,
            "ended_cleanly": ended is not None,
            "surgplan_version": sv,
            "config": json.loads(cfg),
            "n_messages": counts["messages"],
            "n_updates": counts["updates"],
            "n_states": states,
            "n_events": counts["events"],
        }

    def config(self) -> SessionConfig:
        """The session's configuration."""
        return SessionConfig.from_dict(json.loads(self._query("SELECT config FROM session")[0][0]))

    def message_seqs(self) -> list[int]:
        """Every accepted message's ``seq``, in order."""
        return [r[0] for r in self._query("SELECT seq FROM messages ORDER BY seq")]

    def raw_messages(self, seqs: list[int] | None = None) -> dict[int, bytes]:
        """Raw bytes of the messages ``seqs`` (default all), by ``seq``."""
        if seqs is None:
            rows = self._query("SELECT seq, raw FROM messages ORDER BY seq")
        else:
            rows = []
            for i in range(0, len(seqs), 500):
                chunk = seqs[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows += self._query(
                    f"SELECT seq, raw FROM messages WHERE seq IN ({marks})", tuple(chunk)
                )
        return {int(s): bytes(r) for s, r in rows}

    def updates(self) -> Iterator[dict[str, Any]]:
        """Every recorded update, in order."""
        rows = self._query(
            "SELECT n, seqs, dropped, status, error, state, recovered FROM updates ORDER BY n"
        )
        for n, seqs, dropped, status, error, state, recovered in rows:
            yield {
                "n": n,
                "seqs": json.loads(seqs),
                "dropped": json.loads(dropped),
                "status": status,
                "error": error,
                "state": None if state is None else json.loads(state),
                "recovered": bool(recovered),
            }

    def events(self) -> list[dict[str, Any]]:
        """Every event, in order."""
        rows = self._query("SELECT at, kind, client, detail FROM events ORDER BY id")
        return [{"at": a, "kind": k, "client": c, "detail": json.loads(d)} for a, k, c, d in rows]


def _decode_logged(raw: bytes, seq: int) -> Message:
    try:
        return decode_message(raw, max_body_bytes=len(raw))[1]
    except LiveError as exc:
        raise SessionLogError(f"logged message {seq} does not decode: {exc}") from None


@dataclass
class LiveSession:
    """A session being run: its case, log and core (server side).

    Attributes
    ----------
    case_dir : Path
        The case.
    session_id : str
        The session.
    log : SessionLog
        Its database.
    core : SessionCore
        Its twin and batching rules.
    n_updates : int
        Updates recorded so far.
    """

    case_dir: Path
    session_id: str
    log: SessionLog
    core: SessionCore
    n_updates: int = 0

    def process(
        self,
        seqs: list[int],
        messages: list[Message],
        dropped: list[int],
        *,
        recovered: bool = False,
    ) -> tuple[int, UpdateOutcome]:
        """Apply one batch and record it; returns (update number, outcome)."""
        outcome = self.core.apply(messages)
        n = self.log.append_update(seqs, dropped, outcome, recovered=recovered)
        self.n_updates = n
        return n, outcome


def _record_artifact(case_dir: Path, session_id: str, config: SessionConfig) -> None:
    from surgplan.case import Case

    case = Case.open(case_dir)
    with case.transaction() as tx:
        tx.record_artifact(
            "session",
            session_id,
            f"{SESSIONS_DIR}/{session_id}.sqlite",
            {"twin": config.twin.to_dict(), "log": "sqlite-wal"},
        )


def open_session(
    case_dir: str | os.PathLike[str],
    config: SessionConfig | None = None,
    *,
    resume: str | None = None,
    session_id: str | None = None,
    synchronous: str = "NORMAL",
    record_in_manifest: bool = True,
) -> tuple[LiveSession, list[tuple[int, UpdateOutcome]]]:
    """Start a new session, or resume (recover) one after a crash or a clean end.

    Parameters
    ----------
    case_dir : path
        The case (its ``case.json`` must exist).
    config : SessionConfig
        A new session's configuration (ignored when resuming: the log's is used).
    resume : str, optional
        The session to resume: its recorded batches are replayed into a fresh twin, then the
        accepted messages no batch took are processed as one batch (recorded ``recovered``).
    session_id : str, optional
        The new session's id (default :func:`new_session_id`).
    synchronous : {"NORMAL", "FULL"}
        SQLite's synchronous level (module docstring).
    record_in_manifest : bool
        Record a new session as the case artifact ``session/<id>``.

    Returns
    -------
    (LiveSession, list of (update number, UpdateOutcome))
        The session, and the outcomes of the recovery batch (empty for a new session).
    """
    case_dir = Path(case_dir)
    if not (case_dir / "case.json").is_file():
        raise LiveError(f"{case_dir} is not a surgplan case (no case.json)")
    if resume is None:
        if config is None:
            raise LiveError("a new session needs a SessionConfig")
        sid = session_id or new_session_id()
        from surgplan.twin.warmup import warm_up_twin

        core = SessionCore(config.twin.build(case_dir), config)
        # kernels loaded and search grids built now, not at the first acquisition (which
        # would otherwise reach the clients more than a second late)
        warm_up_twin(core.twin)
        log = SessionLog.create(session_path(case_dir, sid), sid, config, synchronous=synchronous)
        if record_in_manifest:
            _record_artifact(case_dir, sid, config)
        return LiveSession(case_dir, sid, log, core), []
    log = SessionLog.open(session_path(case_dir, resume), synchronous=synchronous)
    cfg = log.config()
    core = SessionCore(cfg.twin.build(case_dir), cfg)
    taken: set[int] = set()
    n = 0
    for up in log.updates():
        raws = log.raw_messages(up["seqs"])
        core.apply([_decode_logged(raws[s], s) for s in up["seqs"]])
        taken.update(up["seqs"])
        taken.update(up["dropped"])
        n = up["n"]
    session = LiveSession(case_dir, resume, log, core, n)
    left = [s for s in log.message_seqs() if s not in taken]
    outcomes = []
    if left:
        raws = log.raw_messages(left)
        msgs = [_decode_logged(raws[s], s) for s in left]
        outcomes.append(session.process(left, msgs, [], recovered=True))
    log.append_event("recovered", None, {"replayed_updates": n, "unprocessed_messages": len(left)})
    return session, outcomes


@dataclass(frozen=True)
class ReplayedUpdate:
    """One recorded update recomputed from the log.

    Attributes
    ----------
    n : int
        Update number.
    seqs : list of int
        Messages of the batch.
    status : str
        The recomputed status (``"state"``, ``"pending"``, ``"error"``).
    logged_status : str
        The status the log recorded.
    state, logged_state : TwinState or None
        Recomputed and logged states.
    difference : float
        :func:`~surgplan.live.session.state_difference` between them (0 when neither has a
        state, ``inf`` when their kinds differ).
    """

    n: int
    seqs: list[int]
    status: str
    logged_status: str
    state: Any
    logged_state: Any
    difference: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the recomputed state's ``to_dict``)."""
        return {
            "update": self.n,
            "seqs": self.seqs,
            "status": self.status,
            "logged_status": self.logged_status,
            "difference": self.difference,
            "state": None if self.state is None else self.state.to_dict(),
        }


def replay_session(case_dir: str | os.PathLike[str], session_id: str) -> Iterator[ReplayedUpdate]:
    """Recompute every recorded update of a session from its logged messages.

    Raises
    ------
    SessionLogError
        No such session, or a logged message that does not decode.
    """
    from surgplan.twin import TwinState

    log = SessionLog.open(session_path(case_dir, session_id))
    try:
        cfg = log.config()
        core = SessionCore(cfg.twin.build(case_dir), cfg)
        for up in log.updates():
            raws = log.raw_messages(up["seqs"])
            out = core.apply([_decode_logged(raws[s], s) for s in up["seqs"]])
            logged = None if up["state"] is None else TwinState.from_dict(up["state"])
            diff = state_difference(out.state, logged)
            if out.status != up["status"]:
                diff = float("inf")
            yield ReplayedUpdate(
                up["n"], up["seqs"], out.status, up["status"], out.state, logged, diff
            )
    finally:
        log.close()


def list_sessions(case_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every session logged in the case (:meth:`SessionLog.info`, config left out), by id."""
    folder = Path(case_dir) / SESSIONS_DIR
    out = []
    for path in sorted(folder.glob("*.sqlite")) if folder.is_dir() else []:
        log = SessionLog.open(path)
        try:
            info = log.info()
        finally:
            log.close()
        info["twin"] = info.pop("config")["twin"]
        info["path"] = str(path.relative_to(case_dir))
        out.append(info)
    return out
