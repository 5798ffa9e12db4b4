"""``surgplan export CASE --gltf OUT.glb --session ID --at SECONDS``: a recorded session's twin.

A session with a synthetic deformable (and a rigid) twin is recorded through the session log
as the live server does (each message appended, then processed). The glTF's organ at two times
(two different states) equals ``lps_mm_to_gltf_m`` of :meth:`Twin.deformed_surface` of a twin
fed the same batches up to that state (within 1e-6 m); bad inputs are one-line errors, exit 2,
nothing written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from click.testing import CliRunner

from surgplan.cli import cli
from surgplan.gltf_export import lps_mm_to_gltf_m
from surgplan.live import decode_message, open_session
from surgplan.session_gltf import (
    SYNTHETIC_ORGAN,
    SessionGltfError,
    export_session_gltf,
    session_states,
    state_at,
)
from surgplan.twin.synthetic import posed_swabs, synthetic_basis, synthetic_organ
from tests.test_live_helpers import T_TRACKER_MODEL, config, make_case, point_msg, scan_msg

#: The true deformation of the swabbed organ (amplitudes of the synthetic basis).
A_TRUE = np.array([3.0, -2.0, 1.5, 0.0, 2.0, -1.0])


def _swabs(n: int, seed: int) -> np.ndarray:
    m = synthetic_organ(3)
    u = synthetic_basis(m).surface_displacement_mm(A_TRUE)
    return posed_swabs(m, u, T_TRACKER_MODEL, n_points=n, noise_mm=0.3, seed=seed)


@pytest.fixture(scope="module", params=["deformable", "rigid"])
def recorded(request, tmp_path_factory):
    """A case, a session logged batch by batch (scan, then point batches), and its batches."""
    case = make_case(tmp_path_factory.mktemp(f"sgltf_{request.param}") / "case")
    session, _ = open_session(case, config(request.param))
    batches = [_swabs(40, seed=1), _swabs(15, seed=2), _swabs(15, seed=3), _swabs(15, seed=4)]
    for i, pts in enumerate(batches):
        raw = scan_msg(pts) if i == 0 else point_msg(pts)
        header, message = decode_message(raw)
        seq = session.log.append_message(time.time(), "test", header, raw)
        assert session.process([seq], [message], [])[1].status == "state"
        time.sleep(0.05)  # the states' times apart
    session.log.end()
    return case, session.session_id, request.param, batches


def _positions(path: Path, name: str) -> np.ndarray:
    """The POSITION data of mesh ``name`` in a .glb."""
    g = pygltflib.GLTF2().load(str(path))
    mesh = next(m for m in g.meshes if m.name == name)
    acc = g.accessors[mesh.primitives[0].attributes.POSITION]
    view = g.bufferViews[acc.bufferView]
    blob = g.binary_blob()
    start = view.byteOffset + (acc.byteOffset or 0)
    return np.frombuffer(blob, np.float32, acc.count * 3, start).reshape(-1, 3)


def _twin_surface(case: Path, mode: str, batches: list[np.ndarray], n_states: int) -> np.ndarray:
    """Vertices of Twin.deformed_surface() after the first ``n_states`` batches (tracker mm)."""
    twin = config(mode).twin.build(case)
    for pts in batches[:n_states]:
        twin.update(pts)
    return np.asarray(twin.deformed_surface().points, np.float64)


def test_organ_at_two_times_is_the_twin_of_that_state(recorded, tmp_path) -> None:
    case, sid, mode, batches = recorded
    states = session_states(case, sid).states
    assert [s.index for s in states] == [0, 1, 2, 3]
    times = [s.time_s for s in states]
    assert 0.0 < times[0] < times[1] < times[2] < times[3]
    runner = CliRunner()
    seen = []
    for at, index in (((times[0] + times[1]) / 2, 0), (times[3] + 10.0, 3)):
        out = tmp_path / f"twin_{index}.glb"
        res = runner.invoke(
            cli,
            ["export", str(case), "--gltf", str(out), "--session", sid, "--at", repr(at), "--json"],
        )
        assert res.exit_code == 0, res.output
        report = json.loads(res.output)
        assert report["session"] == sid and report["at_s"] == pytest.approx(at)
        assert report["state_index"] == index
        assert report["state_time_s"] == pytest.approx(times[index], abs=1e-9)
        assert report["frame"] == "tracker" and report["kind"] == "gltf"
        assert [s["name"] for s in report["structures"]] == [SYNTHETIC_ORGAN]
        got = _positions(out, SYNTHETIC_ORGAN)
        want = lps_mm_to_gltf_m(_twin_surface(case, mode, batches, index + 1))
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-6
        amplitudes = np.asarray(session_states(case, sid).states[index].state["amplitudes"])
        assert len(amplitudes) == (6 if mode == "deformable" else 0)
        seen.append(got)
    assert np.abs(seen[0] - seen[1]).max() > 1e-5  # two different states


def test_state_at_takes_the_last_state_at_or_before(recorded) -> None:
    case, sid, _, _ = recorded
    states = session_states(case, sid)
    t = [s.time_s for s in states.states]
    assert state_at(states, t[1]).index == 1  # at the state's own time: that state
    assert state_at(states, np.nextafter(t[2], 0)).index == 1
    assert state_at(states, 1e6).index == 3
    with pytest.raises(SessionGltfError, match=r"before session .* first twin state"):
        state_at(states, t[0] / 2)


def test_library_refuses_structures_for_a_synthetic_twin(recorded, tmp_path) -> None:
    case, sid, _, _ = recorded
    out = tmp_path / "x.glb"
    with pytest.raises(SessionGltfError, match="synthetic"):
        export_session_gltf(case, out, session=sid, at_s=100.0, structures=("liver",))
    assert not out.exists()


def test_bad_inputs_are_one_line_errors(recorded, tmp_path) -> None:
    case, sid, _, _ = recorded
    first = session_states(case, sid).states[0].time_s
    out = tmp_path / "bad.glb"
    mesh = tmp_path / "bad.vtp"
    c = str(case)
    cases = {
        "goes with --gltf": ["export", c, "--mesh", str(mesh), "--session", sid, "--at", "1"],
        "--at SECONDS goes with --session": ["export", c, "--gltf", str(out), "--at", "1"],
        "needs --at": ["export", c, "--gltf", str(out), "--session", sid],
        "no session log": ["export", c, "--gltf", str(out), "--session", "nope", "--at", "1"],
        "invalid session id": ["export", c, "--gltf", str(out), "--session", "../x", "--at", "1"],
        "seconds >= 0": ["export", c, "--gltf", str(out), "--session", sid, "--at", "-1"],
        "got nan": ["export", c, "--gltf", str(out), "--session", sid, "--at", "nan"],
        f"{first:.3f} s": ["export", c, "--gltf", str(out), "--session", sid, "--at", "0"],
        "synthetic": [
            "export",
            c,
            "--gltf",
            str(out),
            "--session",
            sid,
            "--at",
            "99",
            "--structure",
            "liver",
        ],  # fmt: skip
        "inside the case folder": [
            "export",
            c,
            "--gltf",
            str(case / "x.glb"),
            "--session",
            sid,
            "--at",
            "99",
        ],  # fmt: skip
    }
    for needle, args in cases.items():
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2, (needle, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (needle, res.output)
        assert needle in lines[0], (needle, lines[0])
        assert "Traceback" not in res.output
    assert not out.exists() and not mesh.exists() and not (case / "x.glb").exists()


@pytest.fixture(scope="module")
def case_session(tmp_path_factory, liver_models_dir):
    """The small twin-ready case of test_twin_case and a deformable case-twin session on it."""
    from surgplan.live import SessionConfig, TwinSpec
    from surgplan.twin.case_twin import load_case_model
    from tests.test_twin_case import small_twin_case

    case = small_twin_case(tmp_path_factory, liver_models_dir)
    model = load_case_model(case)
    a_true = 0.5 * model.prior_std
    v = model.vertices_mm + model.basis().surface_displacement_mm(a_true)
    rng = np.random.default_rng(5)
    cfg = SessionConfig(twin=TwinSpec(source="case", mode="deformable", noise_mm=0.5))
    session, _ = open_session(case, cfg)
    T = np.eye(4)
    T[:3, 3] = (5.0, -3.0, 2.0)  # near the identity: the twin's search starts from there
    batches = []
    for n in (120, 60):
        pts = v[rng.choice(len(v), n, replace=False)] + T[:3, 3] + rng.normal(0, 0.3, (n, 3))
        raw = scan_msg(pts)
        header, message = decode_message(raw)
        seq = session.log.append_message(time.time(), "test", header, raw)
        assert session.process([seq], [message], [])[1].status == "state"
        batches.append(pts)
        time.sleep(0.05)
    session.log.end()
    return case, session.session_id, batches, model


def test_case_twin_moves_every_structure_with_the_deformation(case_session, tmp_path) -> None:
    case, sid, batches, model = case_session
    from surgplan.case import Case

    twin = _spec_of(case, sid).build(case)
    for pts in batches:
        twin.update(pts)
    assert np.abs(twin.state.amplitudes).max() > 0
    out = tmp_path / "case_twin.glb"
    res = CliRunner().invoke(
        cli, ["export", str(case), "--gltf", str(out), "--session", sid, "--at", "1e6", "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["state_index"] == 1 and report["frame"] == "tracker"
    assert report["left_out"] == {}
    names = [s["name"] for s in report["structures"]]
    assert set(names) == {"liver", "tumour", "portal_vein"}
    got = _positions(out, "liver")
    assert np.abs(got - lps_mm_to_gltf_m(twin.deformed_surface().points)).max() < 1e-6
    surfaces = Case.open(case).manifest.surfaces
    import pyvista as pv

    for name in ("tumour", "portal_vein"):
        p = np.asarray(pv.read(case / surfaces[name].path).points, np.float64)
        want = twin.deform_points(p, model.modes_at(p))
        assert np.abs(_positions(out, name) - lps_mm_to_gltf_m(want)).max() < 1e-6
    res = CliRunner().invoke(
        cli,
        [
            "export",
            str(case),
            "--gltf",
            str(tmp_path / "t.glb"),
            "--session",
            sid,
            "--at",
            "1e6",
            "--structure",
            "tumour",
            "--json",
        ],  # fmt: skip
    )
    assert res.exit_code == 0, res.output
    assert [s["name"] for s in json.loads(res.output)["structures"]] == ["tumour"]


def _spec_of(case: Path, sid: str):
    return session_states(case, sid).twin


def test_structures_the_model_cannot_reach(case_session, tmp_path, monkeypatch) -> None:
    """A reduced model without volume cells: the organ only, or a named structure refused."""
    import surgplan.session_gltf as session_gltf
    from biomech.rom import ReducedModelError

    case, sid, _, _ = case_session

    def no_cells(model, points_mm):
        raise ReducedModelError("this reduced model has no volume cells")

    monkeypatch.setattr(session_gltf, "_modes_at", no_cells)
    out = tmp_path / "organ.glb"
    args = ["export", str(case), "--gltf", str(out), "--session", sid, "--at", "1e6"]
    res = CliRunner().invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert [s["name"] for s in report["structures"]] == ["liver"]
    assert set(report["left_out"]) == {"tumour", "portal_vein"}
    assert "no volume cells" in report["left_out"]["tumour"]
    refused = tmp_path / "refused.glb"
    args[3] = str(refused)
    res = CliRunner().invoke(cli, [*args, "--structure", "tumour"])
    assert (
        res.exit_code == 2 and "structure 'tumour'" in res.output and "volume cells" in res.output
    )
    assert not refused.exists()
