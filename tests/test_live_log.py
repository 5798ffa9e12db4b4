"""Session log and replay: every state recomputed from the log (< 1e-9), resume, the
``sessions``/``replay``/``pivot`` commands, and the pivot calibration's closed-form answer."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from surgplan.cli import cli
from surgplan.live import (
    LiveServerThread,
    PivotError,
    list_sessions,
    load_pivot,
    open_session,
    pivot_calibration,
    replay_session,
    state_difference,
)
from tests.test_live_helpers import (
    RawClient,
    config,
    make_case,
    point_msg,
    pointer_msg,
    scan_msg,
    scan_points,
)


@pytest.fixture(scope="module", params=["rigid", "deformable"])
def recorded(request, tmp_path_factory):
    """A case with one recorded session: a pending pointer start, a scan, points, pointer."""
    case = make_case(tmp_path_factory.mktemp(f"log_{request.param}") / "case")
    session, _ = open_session(case, config(request.param))
    with LiveServerThread(session, port=0) as srv:
        c = RawClient(srv.address)
        pts = scan_points(80, seed=11)
        c.send(pointer_msg(pts[0]))  # one point: held until the first registration
        c.ack()
        srv.wait_idle()
        c.send(scan_msg(pts[1:61]))
        c.ack()
        srv.wait_idle()
        for p in pts[61:71]:
            c.send(point_msg(p[None]))
            c.ack()
        srv.wait_idle()  # the pointer stream starts a batch of its own: >= 3 states
        for p in pts[71:]:
            c.send(pointer_msg(p))
            c.ack()
        srv.wait_idle()
        c.close()
    session.log.end()
    return case, session.session_id, request.param


def test_replay_recomputes_every_state(recorded) -> None:
    case, sid, mode = recorded
    ups = list(replay_session(case, sid))
    assert ups[0].status == "pending" and ups[1].status == "state"
    states = [u for u in ups if u.status == "state"]
    assert len(states) >= 3
    assert all(u.status == u.logged_status for u in ups)
    assert max(u.difference for u in ups) < 1e-9
    assert states[-1].state.mode == mode
    assert states[-1].state.n_points == 80  # nothing accepted was lost


def test_resume_recovers_the_logged_state(recorded) -> None:
    case, sid, _ = recorded
    last = [u for u in replay_session(case, sid) if u.status == "state"][-1]
    session, outcomes = open_session(case, resume=sid)
    assert outcomes == []  # every accepted message was processed before the clean end
    assert state_difference(session.core.state, last.logged_state) < 1e-9
    session.log.close()


def test_sessions_and_replay_commands(recorded) -> None:
    case, sid, mode = recorded
    runner = CliRunner()
    res = runner.invoke(cli, ["sessions", str(case), "--json"])
    assert res.exit_code == 0, res.output
    listed = {s["session"]: s for s in json.loads(res.output)}
    s = listed[sid]
    assert s["n_messages"] == 1 + 1 + 10 + 9  # pointer, scan, points, pointer
    assert s["ended_cleanly"] and s["twin"]["mode"] == mode
    res = runner.invoke(cli, ["replay", str(case), sid, "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines()]
    assert len(lines) == s["n_updates"]
    assert all(x["difference"] < 1e-9 for x in lines)
    assert lines[-1]["state"]["n_points"] == 80
    res = runner.invoke(cli, ["replay", str(case), "nope"])
    assert res.exit_code == 2 and "no session log" in res.output


def test_log_is_wal_and_holds_no_patient_data(recorded) -> None:
    case, sid, _ = recorded
    path = case / "sessions" / f"{sid}.sqlite"
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cfg = json.loads(con.execute("SELECT config FROM session").fetchone()[0])
    assert set(cfg) == {"twin", "frames", "tip_offset_mm"}
    manifest = json.loads((case / "case.json").read_text())
    assert f"session/{sid}" in manifest["artifacts"]
    con.close()


def _pivot_poses(tip, pivot, n=30, noise_mm=0.0, seed=0, axes="xyz"):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        angles = np.zeros(3)
        for i, a in enumerate("xyz"):
            if a in axes:
                angles[i] = rng.uniform(-0.6, 0.6)
        R = Rotation.from_euler("xyz", angles).as_matrix()
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = np.asarray(pivot) - R @ np.asarray(tip) + rng.normal(size=3) * noise_mm
        out.append(T)
    return np.array(out)


def test_pivot_calibration_closed_form_and_command(tmp_path) -> None:
    tip, pivot = (1.5, -2.0, 160.0), (100.0, 50.0, -20.0)
    exact = pivot_calibration(_pivot_poses(tip, pivot))
    np.testing.assert_allclose(exact.tip_offset_mm, tip, atol=1e-9)
    np.testing.assert_allclose(exact.pivot_tracker_mm, pivot, atol=1e-9)
    assert exact.rms_mm < 1e-9
    noisy = pivot_calibration(_pivot_poses(tip, pivot, n=200, noise_mm=0.2, seed=1))
    # E[RMS^2] = 3 sigma^2 (3n - 6) / (3n): 6 unknowns fitted to 3n equations
    assert noisy.rms_mm == pytest.approx(0.2 * np.sqrt(3 * (600 - 6) / 600), rel=0.05)
    np.testing.assert_allclose(noisy.tip_offset_mm, tip, atol=0.3)
    with pytest.raises(PivotError, match="two axes"):
        pivot_calibration(_pivot_poses(tip, pivot, axes="z"))
    case = make_case(tmp_path / "case")
    rec = tmp_path / "pivot.txt"
    np.savetxt(rec, _pivot_poses(tip, pivot).reshape(-1, 4))
    res = CliRunner().invoke(cli, ["pivot", str(case), str(rec), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    np.testing.assert_allclose(out["tip_offset_mm"], tip, atol=1e-6)
    assert load_pivot(case).tip_offset_mm == pytest.approx(tip, abs=1e-6)
    assert json.loads((case / "case.json").read_text())["artifacts"]["pointer/pivot"]


def test_list_sessions_of_a_case_without_any(tmp_path) -> None:
    assert list_sessions(make_case(tmp_path / "case")) == []


def test_wal_is_checkpointed_off_the_writers_path(tmp_path, monkeypatch) -> None:
    """No commit runs SQLite's automatic checkpoint; the background thread moves the WAL."""
    import time

    import surgplan.live.log as log_module
    from surgplan.live.codec import parse_header
    from surgplan.live.log import SessionLog

    monkeypatch.setattr(log_module, "CHECKPOINT_INTERVAL_S", 0.2)
    path = tmp_path / "s.sqlite"
    log = SessionLog.create(path, "s1", config("rigid"))
    assert log._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    raw = scan_msg(scan_points(5000, seed=3))
    header = parse_header(raw[:58])
    for _ in range(100):  # ~8 MB, about 2,000 WAL pages: twice SQLite's automatic threshold
        log.append_message(time.time(), "c", header, raw)
    end = time.monotonic() + 10.0
    while path.stat().st_size < 100 * len(raw) and time.monotonic() < end:
        time.sleep(0.05)
    assert path.stat().st_size >= 100 * len(raw)  # the messages reached the database file
    thread = log._checkpointer._thread
    log.close()
    assert not thread.is_alive()
    reopened = SessionLog.open(path)
    assert len(reopened.message_seqs()) == 100
    reopened.close()
