"""Crash safety: ``surgplan live`` in a subprocess, SIGKILLed at random moments of a streamed
session, restarted with ``--resume``: nothing acknowledged is missing from the log, every
accepted message is assimilated after recovery, and the recovered state equals the replayed
state (< 1e-9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from surgplan.live import SessionLog, replay_session, state_difference
from surgplan.live.log import session_path
from surgplan.twin import TwinState
from tests.test_live_helpers import RawClient, make_case, point_msg, scan_msg, scan_points

KILLS = 3


def _start(case, resume=None):
    cmd = [
        sys.executable,
        "-c",
        "from surgplan.cli import main; main()",
        "live",
        str(case),
        "--port",
        "0",
        "--json",
        "--twin-source",
        "synthetic",
    ]
    if resume:
        cmd += ["--resume", resume]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    events = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"live exited: {proc.wait()} {proc.stderr.read()}")
        ev = json.loads(line)
        events.append(ev)
        if ev["event"] == "listening":
            return proc, (ev["host"], ev["port"]), ev["session"], events


def _check_log(case, sid, sent: dict[int, bytes]) -> TwinState:
    log = SessionLog.open(session_path(case, sid))
    try:
        raws = log.raw_messages()
        assert all(raws.get(seq) == raw for seq, raw in sent.items())  # acked => logged, intact
        ups = list(log.updates())
        taken = {s for u in ups for s in u["seqs"]}
        assert set(raws) == taken  # every accepted message assimilated (recovered if need be)
        last = [u for u in ups if u["status"] == "state"][-1]
        return TwinState.from_dict(last["state"])
    finally:
        log.close()


def test_sigkill_and_recover(tmp_path) -> None:
    case = make_case(tmp_path / "case")
    rng = np.random.default_rng(2024)
    proc, addr, sid, _ = _start(case)
    sent: dict[int, bytes] = {}
    n_sent = 0
    kills = 0
    try:
        while True:
            c = RawClient(addr)
            first = not sent
            k_kill = int(rng.integers(3, 12))
            for k in range(40):
                pts = scan_points(
                    300 if first and k == 0 else int(rng.integers(5, 40)),
                    seed=int(rng.integers(1 << 30)),
                )
                msg = scan_msg(pts) if k % 3 == 0 else point_msg(pts)
                c.send(msg)
                n_sent += 1
                try:
                    sent[c.ack()["seq"]] = msg
                except (EOFError, OSError):
                    break
                if kills < KILLS and k == k_kill:
                    for _ in range(3):  # in flight when killed: logged or not, never half
                        c.send(point_msg(scan_points(10, seed=int(rng.integers(1 << 30)))))
                        n_sent += 1
                    time.sleep(float(rng.uniform(0, 0.02)))  # mid-update, mid-commit...
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    break
            c.close()
            if proc.poll() is None:  # the last round: stop cleanly
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(30) == 0
                break
            proc.stdout.close()
            proc.stderr.close()
            proc, addr, sid2, events = _start(case, resume=sid)
            assert sid2 == sid
            recovered = _check_log(case, sid, sent)
            replayed = [u for u in replay_session(case, sid) if u.status == "state"][-1]
            assert replayed.difference < 1e-9
            assert state_difference(recovered, replayed.state) < 1e-9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    final = _check_log(case, sid, sent)
    assert kills == KILLS
    assert final.n_points == sum(len(_points(m)) for m in _logged(case, sid))
    ups = list(replay_session(case, sid))
    assert max(u.difference for u in ups) < 1e-9
    logged = len(_logged(case, sid))
    assert len(sent) <= logged <= n_sent
    print(json.dumps({"kills": kills, "sent": n_sent, "acked": len(sent), "logged": logged}))


def _logged(case, sid):  # noqa: N802
    log = SessionLog.open(session_path(case, sid))
    try:
        return list(log.raw_messages().values())
    finally:
        log.close()


def _points(raw: bytes) -> np.ndarray:
    from surgplan.live import decode_message

    m = decode_message(raw)[1]
    return m.positions if hasattr(m, "positions") else m.points
