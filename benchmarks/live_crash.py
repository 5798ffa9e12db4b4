"""Crash safety of ``surgplan live`` at scale: N SIGKILLs at random moments of a streamed session.

Usage: ``python benchmarks/live_crash.py [--kills 25] [--seed 2024] [--out FILE]``.

The experiment of ``tests/test_live_crash.py``, scaled up. A case with a pivot calibration
(so pointer TRANSFORMs are accepted) is served by ``surgplan live`` in a subprocess (hidden
``--twin-source synthetic``: the synthetic organ, rigid twin). A client streams POINT
messages, pointer TRANSFORMs (single tips on the organ surface) and a few POLYDATA scans, in
bursts of 1-12 pipelined messages, reading every acknowledgement. In each round, at a random
(seeded) step, a burst is sent without waiting, the client sleeps 0-30 ms (mid-update,
mid-commit...), and the server is SIGKILLed; the acknowledgements that reached the socket
before the kill are read and count as acknowledged. The server is restarted with
``--resume`` and, after every restart, three properties are checked:

1. every acknowledged message is in the log, byte for byte;
2. every logged message was assimilated: taken by an update (its ``seqs``), or, for a pointer
   TRANSFORM, coalesced away before one (its ``dropped``), recovered updates included;
3. the recovered state (the last logged state) equals the state replayed from the log
   (:func:`surgplan.live.replay_session`), and every replayed state its logged one, < 1e-9.

A restart failing any of them is *inconsistent*. After the last kill a final round ends with
SIGTERM and the checks run once more. Prints one JSON object.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surgplan.live import (  # noqa: E402
    PivotResult,
    SessionLog,
    replay_session,
    state_difference,
    store_pivot,
)
from surgplan.live.log import session_path  # noqa: E402
from surgplan.twin import TwinState  # noqa: E402
from tests.test_live_helpers import (  # noqa: E402
    TIP_MM,
    RawClient,
    make_case,
    point_msg,
    pointer_msg,
    scan_msg,
    scan_points,
)

TOL = 1e-9
STEPS_PER_ROUND = 60


def _start(case: Path, resume: str | None = None):
    cmd = [sys.executable, "-c", "from surgplan.cli import main; main()", "live", str(case),
           "--port", "0", "--json", "--twin-source", "synthetic"]  # fmt: skip
    if resume:
        cmd += ["--resume", resume]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    events = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"live exited with {proc.wait()}")
        ev = json.loads(line)
        events.append(ev)
        if ev["event"] == "listening":
            return proc, (ev["host"], ev["port"]), ev["session"], events


def _stop(proc: subprocess.Popen, sig: int) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    rc = proc.wait(30)
    proc.stdout.close()
    return rc


def _message(rng: np.random.Generator, first: bool) -> bytes:
    seed = int(rng.integers(1 << 30))
    if first:
        return scan_msg(scan_points(300, seed=seed))
    u = rng.random()
    if u < 0.08:
        return scan_msg(scan_points(int(rng.integers(50, 200)), seed=seed))
    if u < 0.5:
        return point_msg(scan_points(int(rng.integers(5, 40)), seed=seed))
    return pointer_msg(scan_points(1, seed=seed)[0])


def _acks(c: RawClient, n: int | None) -> list[int]:
    """The seqs of the next ``n`` acknowledgements (``None``: all until EOF), in order."""
    seqs: list[int] = []
    while n is None or len(seqs) < n:
        try:
            got = c.recv()
        except OSError:
            break
        if got is None:
            break
        if got[0].device_name == "LiveAck":
            seqs.append(int(json.loads(got[1].text)["seq"]))
    return seqs


def _check(case: Path, sid: str, acked: dict[int, bytes]) -> dict:
    """The three properties of the session's log now (the server idle)."""
    log = SessionLog.open(session_path(case, sid))
    try:
        raws = log.raw_messages()
        ups = list(log.updates())
    finally:
        log.close()
    missing_acked = sum(1 for s, raw in acked.items() if raws.get(s) != raw)
    taken = {s for u in ups for s in u["seqs"]}
    coalesced = {s for u in ups for s in u["dropped"]}
    unassimilated = len(set(raws) - taken - coalesced)
    states = [u for u in ups if u["status"] == "state"]
    replayed = [r for r in replay_session(case, sid)]
    replay_diff = max((r.difference for r in replayed), default=0.0)
    rstates = [r for r in replayed if r.status == "state"]
    if states and rstates:
        rec_diff = state_difference(TwinState.from_dict(states[-1]["state"]), rstates[-1].state)
    else:
        rec_diff = 0.0 if not states and not rstates else float("inf")
    recovered_seqs = [s for u in ups if u["recovered"] for s in u["seqs"]]
    return {
        "logged": len(raws),
        "missing_acked": missing_acked,
        "unassimilated": unassimilated,
        "coalesced": len(coalesced),
        "recovered_seqs": recovered_seqs,
        "state_diff": max(rec_diff, replay_diff),
        "ok": missing_acked == 0
        and unassimilated == 0
        and rec_diff < TOL
        and replay_diff < TOL
        and len(taken | coalesced) == len(taken) + len(coalesced),
    }


def run(kills: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="surgplan-live-crash-") as tmp:
        case = make_case(Path(tmp) / "case")
        store_pivot(case, PivotResult(TIP_MM, (0.0, 0.0, 0.0), 0.0, 10, 1.0), source="bench")
        proc, addr, sid, _ = _start(case)
        acked: dict[int, bytes] = {}
        n_sent = n_kills = n_inconsistent = 0
        max_diff = 0.0
        max_missing = 0
        last: dict = {}
        try:
            while True:
                c = RawClient(addr)
                k_kill = int(rng.integers(2, STEPS_PER_ROUND - 10)) if n_kills < kills else -1
                for k in range(STEPS_PER_ROUND):
                    burst = [
                        _message(rng, not acked and k == 0 and i == 0)
                        for i in range(int(rng.integers(1, 13)))
                    ]
                    for m in burst:
                        c.send(m)
                    n_sent += len(burst)
                    if k == k_kill:  # in flight when killed: logged or not, never half
                        time.sleep(float(rng.uniform(0.0, 0.03)))
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        n_kills += 1
                        # acks that reached the socket before the kill: acknowledged
                        seqs = _acks(c, None)
                    else:
                        seqs = _acks(c, len(burst))
                    acked.update(zip(seqs, burst, strict=False))  # all valid: acks in order
                    if k == k_kill or len(seqs) < len(burst):
                        break
                c.close()
                if proc.poll() is None:  # the last round: stop cleanly
                    if _stop(proc, signal.SIGTERM) != 0:
                        n_inconsistent += 1
                    last = _check(case, sid, acked)
                    max_diff = max(max_diff, last["state_diff"])
                    max_missing = max(max_missing, last["missing_acked"] + last["unassimilated"])
                    n_inconsistent += not last["ok"]
                    break
                _stop(proc, signal.SIGKILL)
                proc, addr, sid2, _ = _start(case, resume=sid)
                last = _check(case, sid, acked)
                max_diff = max(max_diff, last["state_diff"])
                max_missing = max(max_missing, last["missing_acked"] + last["unassimilated"])
                n_inconsistent += not last["ok"] or sid2 != sid
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout and not proc.stdout.closed:
                proc.stdout.close()
    return {
        "kills": n_kills,
        "messages_sent": n_sent,
        "messages_acknowledged": len(acked),
        "messages_logged": last.get("logged", 0),
        "messages_recovered": len(last.get("recovered_seqs", [])),
        "messages_coalesced": last.get("coalesced", 0),
        "accepted_messages_missing": max_missing,
        "max_state_difference": max_diff,
        "inconsistent_restarts": n_inconsistent,
        "wall_time_s": round(time.perf_counter() - t0, 2),
        "seed": seed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=25)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    out = json.dumps(run(a.kills, a.seed), indent=2)
    print(out)
    if a.out:
        a.out.write_text(out + "\n")


if __name__ == "__main__":
    main()
