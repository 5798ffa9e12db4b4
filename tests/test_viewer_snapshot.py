"""``surgplan snapshot``: the viewer's scene offscreen (EGL), checked pixel by pixel.

Pictures are rendered by :func:`surgplan.viewer.snapshot.render_snapshot`; the command line
itself (``surgplan snapshot`` / ``surgplan view``) runs in real subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from surgplan.errors import CaseError
from tests.viewer_cases import hue_like, liver_like, phantom_viewer_case


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phantom_viewer_case(tmp_path_factory)


def snapshot(case: Path, out: Path, **options) -> dict:
    from surgplan.viewer.snapshot import render_snapshot

    return render_snapshot(case, out, **options).to_dict()


def surgplan(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", "from surgplan.cli import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_anterior_and_posterior_views_show_every_structure_where_expected(
    case: Path, tmp_path: Path
) -> None:
    from surgplan.case import Case
    from surgplan.export import display_style

    run = surgplan("snapshot", str(case), "--view", "anterior", "--out",
                   str(tmp_path / "front.png"), "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert set(report["structures"]) == {"liver", "tumour", "portal_vein", "bone"}
    front = pixels(tmp_path / "front.png")
    assert front.shape == (800, 1000, 3)
    c = Case.open(case)
    for name in ("tumour", "portal_vein", "bone"):
        assert hue_like(front, display_style(c, name)[0]).sum() > 100, name
    liver = liver_like(front)
    assert liver.sum() > 3000
    assert np.nonzero(liver)[1].mean() < 500  # patient's right (-x) on the viewer's left
    snapshot(case, tmp_path / "back.png", view="posterior")
    back = liver_like(pixels(tmp_path / "back.png"))
    assert np.nonzero(back)[1].mean() > 500  # seen from behind: on the right


def test_superior_view_and_structure_subset(case: Path, tmp_path: Path) -> None:
    from surgplan.case import Case
    from surgplan.export import display_style

    snapshot(case, tmp_path / "top.png", view="superior", structures=["tumour"])
    img = pixels(tmp_path / "top.png")
    tumour = hue_like(img, display_style(Case.open(case), "tumour")[0])
    assert tumour.sum() > 5000  # framed on the tumour alone
    drawn = ~np.all(img > 245, axis=-1)
    assert tumour.sum() > 0.9 * drawn.sum()  # nothing else drawn
    assert liver_like(img).sum() == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"structures": ["spleen"]}, "structure(s) spleen have no surface"),
        ({"session": "abc"}, "--session and --at go together"),
        ({"view": "sideways"}, "unknown view 'sideways'"),
    ],
)
def test_bad_requests_write_nothing(case: Path, tmp_path: Path, options, message) -> None:
    with pytest.raises(CaseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        snapshot(case, tmp_path / "x.png", **options)
    assert not (tmp_path / "x.png").exists()


def test_command_line_errors_are_one_line_exit_2(case: Path, tmp_path: Path) -> None:
    run = surgplan("snapshot", str(tmp_path / "none"), "--out", str(tmp_path / "x.png"))
    assert run.returncode == 2 and "not a surgplan case" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}  # fmt: skip
    run = surgplan("view", str(case), "--live", "localhost", env=env)
    assert run.returncode == 2 and "HOST:PORT" in run.stderr
    run = surgplan("view", str(case), env=env)
    assert run.returncode == 2 and "no display" in run.stderr


def test_session_state_at_a_time(tmp_path: Path) -> None:
    """A real live session (synthetic twin, points over a socket), drawn as it was at t."""
    from surgplan.live import LiveServerThread, open_session
    from tests.test_live_helpers import RawClient, config, make_case, scan_msg, scan_points

    case = make_case(tmp_path / "case")
    session, _ = open_session(case, config("rigid"))
    server = LiveServerThread(session, port=0)
    server.start()
    feeder = RawClient(server.address)
    try:
        feeder.send(scan_msg(scan_points(200, seed=1)))
        assert feeder.ack()["seq"] >= 1
    finally:
        feeder.close()
        server.stop()
        session.log.close()
    report = snapshot(case, tmp_path / "s.png", session=session.session_id, at_s=3600.0)
    assert report["session"] == session.session_id
    img = pixels(tmp_path / "s.png")
    drawn = ~np.all(img > 245, axis=-1)
    assert 0.01 < drawn.mean() < 0.9  # the twin of the session is in the picture
    from surgplan.errors import PROJECT_ERRORS

    with pytest.raises(PROJECT_ERRORS, match="nope"):
        snapshot(case, tmp_path / "t.png", session="nope", at_s=1.0)
    assert not (tmp_path / "t.png").exists()
