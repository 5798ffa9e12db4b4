"""The demo's intraoperative part: a recorded acquisition stream sent to the live server.

:func:`intraop_demo` takes the demo's phantom case and

1. **Twin-ready copy of the case** (``intraop/case``): the demo case's image, labels and meshes,
   with the liver surface replaced by its registration-ready version
   (:func:`registration.prepare_surface` splits the phantom surface's long edges; the geometry
   is unchanged) so that the twin's basis and its surface share their vertices.
2. **Reduced model**: :func:`surgplan.case_rom.build_default_case_rom` (what ``surgplan rom
   CASE`` builds without a scenario: the documented liver supports, a spring retractor patch
   over the whole surface, tilt and insufflation) with only :data:`N_CENTRES` patch centres and
   one held-out full solve, to keep the part short.
3. **One virtual patient** (full finite elements on the case's volume mesh, not the reduced
   model): a rigid 20 mm retractor blade (Dirichlet patch; the reduced model only knows a
   spring retractor) lifts an inferior/anterior lobe edge anteriorly and cranially, the table
   is tilted head-up and the liver is 10 % stiffer than the model's; the loads are scaled so
   that the largest surface displacement lies in :data:`PEAK_RANGE_MM`. The truth: the
   deformed liver surface and tumour centroid, in a tracker pose the twin does not know.
4. **A recorded acquisition stream** (``intraop/acquisition.igtl``): :data:`N_BATCHES` POINT
   messages (device ``PointsInTracker``) of :data:`BATCH_POINTS` tracked-pointer swab points
   each (:func:`registration.simulate_swabs`, every batch seen from its own direction around
   anterior) with :data:`NOISE_MM` mm noise per axis, in tracker coordinates, as the raw
   OpenIGTLink v2 bytes one after the other (any OpenIGTLink reader parses the file);
   ``intraop/acquisition_truth.json`` holds the pose and the deformed targets.
5. **Live sessions**: for each of :data:`MODES` a session (:func:`surgplan.live.open_session`,
   logged in ``intraop/case/sessions``) served by :class:`surgplan.live.LiveServerThread` on
   an ephemeral loopback port; a client sends the recording over a real TCP socket, one batch
   at a time, waits for its ``LiveAck`` and for the published ``TwinStatus`` of the update
   that took it, and keeps the ``ModelToTracker`` TRANSFORM and ``TargetsInTracker`` POINT
   messages published with it.
6. **Scores** after every batch: the tumour TRE (twin's estimate against the virtual
   patient's deformed tumour centroid, tracker space) and the predicted 95 % radius, rigid
   against deformable; the published TRANSFORM against the logged state; every state
   recomputed from the log (:func:`surgplan.live.replay_session`).
7. **Pictures**: ``intraop/convergence.png`` (matplotlib) and ``intraop/twin_overlay.png``
   (pyvista offscreen: the final rigid and deformable twins against the truth).

Everything is deterministic (seeded) except the wall-clock timings.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surgplan.atomic import atomic_path, write_text_atomic
from surgplan.case_files import read_case_surface, read_case_volume_mesh

__all__ = [
    "BATCH_POINTS",
    "MODES",
    "N_BATCHES",
    "N_CENTRES",
    "NOISE_MM",
    "IntraopDemoResult",
    "intraop_demo",
    "read_recording",
]

#: Patch centres of the demo's reduced model (``surgplan rom`` uses 30 by default).
N_CENTRES = 12
#: Batches of the acquisition stream, points per batch, sensor noise (mm per axis).
N_BATCHES = 8
BATCH_POINTS = 60
NOISE_MM = 1.0
#: The twin's modes, one live session each.
MODES = ("rigid", "deformable")
#: Largest surface displacement of the virtual patient, mm.
PEAK_RANGE_MM = (10.0, 30.0)
#: The virtual patient's loads: blade lift (mm), blade radius (mm), head-up and left-down tilt
#: (degrees), Young's modulus factor.
LIFT_MM = 20.0
BLADE_RADIUS_MM = 20.0
TILT_DEG = (20.0, 10.0)
E_FACTOR = 1.1
#: Smallest distance of the blade from the fixed anchor, mm.
SITE_FROM_ANCHOR_MM = 60.0
#: Device name of the acquired points on the wire.
POINTS_DEVICE = "PointsInTracker"
#: Seed of every random choice of the part.
SEED = 12
TUMOUR = "tumour_centroid"


@dataclass(frozen=True)
class IntraopDemoResult:
    """What :func:`intraop_demo` measured (all lengths mm, times s).

    Attributes
    ----------
    folder, case, recording, truth, convergence_picture, overlay_picture : pathlib.Path
        ``intraop/``, its twin-ready case, the recorded stream, its truth, the two pictures.
    patient : dict
        The virtual patient: loads in words, largest surface displacement, tumour displacement.
    rom : dict
        The reduced model: patch centres, modes, build time.
    points_per_batch : list of int
        Acquired points after each batch (cumulative).
    sessions : dict of mode to dict
        Per mode: ``session`` id, ``messages_sent``, ``acks``, ``logged``, ``updates``,
        ``tre_mm`` and ``radius95_mm`` (one per batch), ``trustworthy`` (one per batch),
        ``published_transform_max_error`` (largest entry difference between the published
        ``ModelToTracker``, back in LPS, and the logged state's ``T_tracker_model``),
        ``published_radius_max_error``, ``published_T_tracker_model`` (the last one, LPS),
        ``replay_max_difference``, ``stream_s``.
    deformable_beats_rigid : bool
        The deformable twin's final tumour TRE is below the rigid one's.
    timing_s : dict
        Wall time of each step and in all.
    """

    folder: Path
    case: Path
    recording: Path
    truth: Path
    convergence_picture: Path
    overlay_picture: Path
    patient: Mapping[str, Any]
    rom: Mapping[str, Any]
    points_per_batch: list[int]
    sessions: Mapping[str, Mapping[str, Any]]
    deformable_beats_rigid: bool
    timing_s: Mapping[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Every message acknowledged and logged, published = logged, replay reproduces."""
        n = N_BATCHES
        return all(
            s["messages_sent"] == s["acks"] == s["logged"] == n
            and len(s["tre_mm"]) == n
            and s["published_transform_max_error"] < 1e-3
            and s["replay_max_difference"] < 1e-9
            for s in self.sessions.values()
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the demo's ``"intraop"`` key)."""
        return {
            "folder": str(self.folder),
            "case": str(self.case),
            "recording": str(self.recording),
            "truth": str(self.truth),
            "convergence_picture": str(self.convergence_picture),
            "overlay_picture": str(self.overlay_picture),
            "batches": N_BATCHES,
            "batch_points": BATCH_POINTS,
            "noise_mm": NOISE_MM,
            "points_per_batch": list(self.points_per_batch),
            "patient": dict(self.patient),
            "rom": dict(self.rom),
            "sessions": {m: dict(s) for m, s in self.sessions.items()},
            "deformable_beats_rigid": self.deformable_beats_rigid,
            "timing_s": dict(self.timing_s),
            "passed": self.passed,
        }


# --- 1. the twin-ready case ----------------------------------------------------------------


def _twin_case(main_case: Path, folder: Path, structure: str = "liver") -> Path:
    """Copy the demo case (no sessions, no reduced model) with a registration-ready organ."""
    import pyvista as pv

    import registration as reg
    from imaging.mesh_io import write_surface
    from surgplan.case import Case

    case_dir = folder / "case"
    if case_dir.exists():
        shutil.rmtree(case_dir)
    shutil.copytree(main_case, case_dir, ignore=shutil.ignore_patterns("sessions", "rom", "*.lock"))
    case = Case.open(case_dir)
    entry = case.manifest.surfaces[structure]
    organ = read_case_surface(case, structure).triangulate()
    model = reg.prepare_surface(
        (np.asarray(organ.points, float), np.asarray(organ.regular_faces)), name=structure
    )
    v, f = np.asarray(model.vertices, float), np.asarray(model.faces, np.int64)
    poly = pv.PolyData(v, np.hstack([np.full((len(f), 1), 3), f]).ravel())
    with case.transaction() as tx:
        write_surface(poly, tx.path(entry.path))
        tx.manifest.surfaces[structure] = entry.model_copy(
            update={"n_points": int(len(v)), "n_triangles": int(len(f))}
        )
    return case_dir


# --- 3. the virtual patient ----------------------------------------------------------------


def _unit(v: Any) -> NDArray[np.float64]:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _virtual_patient(case_dir: Path, structure: str = "liver") -> dict[str, Any]:
    """Full FE solve of the demo's load case; the deformed organ surface and targets (model)."""
    import pyvista as pv
    from scipy.spatial import cKDTree

    from biomech.geometry import boundary_facets_mm
    from biomech.loads import Gravity, LoadCase, PrescribedDisplacement, SphereRegion, selector_mask
    from biomech.materials import LIVER_HEALTHY
    from biomech.materials import TUMOUR as TUMOUR_MATERIAL
    from biomech.mesh import from_unstructured_grid
    from biomech.rom import GRAVITY_M_S2, gravity_change_lps, locate_p1
    from biomech.tissue import solve_tissue
    from surgplan.case import Case
    from surgplan.liver_defaults import default_liver_supports
    from surgplan.twin.case_twin import load_case_model

    case = Case.open(case_dir)
    grid = read_case_volume_mesh(case)
    regions = dict(case.manifest.volume_mesh.regions)  # type: ignore[union-attr]
    fe = from_unstructured_grid(grid, region_names=regions)
    surfaces = {
        n: np.asarray(read_case_surface(case, n).points, float) for n in case.manifest.surfaces
    }
    supports, choice = default_liver_supports(fe, surfaces)
    _, mid, nrm = boundary_facets_mm(fe)
    held = np.zeros(len(mid), bool)
    for sp in supports:
        held |= selector_mask(sp.region, mid)
    d_anchor, _ = cKDTree(np.asarray(supports[0].region.points_mm)).query(mid)
    site = ((nrm[:, 2] < -0.3) | (nrm[:, 1] < -0.5)) & ~held & (d_anchor >= SITE_FROM_ANCHOR_MM)
    if not site.any():
        site = ~held
    cand = np.flatnonzero(site)
    model = load_case_model(case_dir, structure=structure)
    x0 = np.asarray(model.vertices_mm, float)
    names = list(model.targets_mm)
    t0 = np.array([model.targets_mm[k] for k in names])
    # the blade lifts the inferior/anterior surface nearest the tumour (exposing it)
    aim = model.targets_mm.get(TUMOUR, x0.mean(axis=0))
    centre = mid[cand[np.argmin(np.linalg.norm(mid[cand] - aim, axis=1))]]
    direction = _unit([0.0, -1.0, 1.0])
    g = gravity_change_lps(*TILT_DEG)
    gn = float(np.linalg.norm(g))

    def solve(scale: float) -> Any:
        loads = LoadCase(
            supports=supports,
            displacements=[
                PrescribedDisplacement(
                    SphereRegion(tuple(float(c) for c in centre), BLADE_RADIUS_MM),
                    tuple(float(x) for x in scale * LIFT_MM * direction),
                    profile="uniform",
                    name="retractor blade",
                )
            ],
            gravity=Gravity(tuple(g / gn), scale * GRAVITY_M_S2 * gn),
        )
        mats = {
            regions[structure]: replace(
                LIVER_HEALTHY, youngs_modulus_kpa=LIVER_HEALTHY.youngs_modulus_kpa * E_FACTOR
            )
        }
        if "tumour" in regions:
            mats[regions["tumour"]] = TUMOUR_MATERIAL
        return solve_tissue(fe, mats, loads, degree=1).to_pyvista()

    def field_at(res: Any, pts: NDArray) -> NDArray[np.float64]:
        tets = np.asarray(res.cells_dict[pv.CellType.TETRA])
        loc = locate_p1(np.asarray(res.points), tets, pts)
        u = np.asarray(res.point_data["displacement_mm"], float)
        return np.einsum("nj,njc->nc", loc.weights, u[tets[loc.cells]])

    t = time.perf_counter()
    res = solve(1.0)
    u_s, u_t = field_at(res, x0), field_at(res, t0)
    peak = float(np.linalg.norm(u_s, axis=1).max())
    scale = 1.0
    lo, hi = PEAK_RANGE_MM
    if not lo <= peak <= hi:  # linear elasticity: every displacement scales with the loads
        scale = float(np.clip(peak, lo * 1.05, hi * 0.95) / peak)
    solve_s = time.perf_counter() - t
    words = (
        f"a {BLADE_RADIUS_MM:g} mm rigid blade lifts the inferior/anterior surface nearest the "
        f"tumour "
        f"{LIFT_MM * scale:.1f} mm anterior-superior; {TILT_DEG[0] * 1:g} deg head-up and "
        f"{TILT_DEG[1]:g} deg left-down tilt (gravity x{scale:.2f}); liver E x{E_FACTOR:g}; "
        f"{choice.text}"
    )
    targets = {k: t0[j] + scale * u_t[j] for j, k in enumerate(names)}
    return {
        "vertices_mm": x0 + scale * u_s,
        "faces": np.asarray(model.faces, np.int64),
        "targets_undeformed_mm": {k: t0[j] for j, k in enumerate(names)},
        "targets_mm": targets,
        "summary": {
            "load": words,
            "load_scale": scale,
            "blade_centre_mm": centre.tolist(),
            "max_displacement_mm": peak * scale,
            "tumour_displacement_mm": float(np.linalg.norm(scale * u_t[names.index(TUMOUR)]))
            if TUMOUR in names
            else None,
            "solve_s": solve_s,
        },
    }


# --- 4. the recorded stream ----------------------------------------------------------------


def _true_pose(centroid: NDArray, rng: np.random.Generator) -> NDArray[np.float64]:
    """The unknown ``T_tracker_model``: 40 degrees about a random axis through the organ."""
    from scipy.spatial.transform import Rotation

    R = Rotation.from_rotvec(np.radians(40.0) * _unit(rng.normal(size=3))).as_matrix()
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = centroid - R @ centroid + np.array([60.0, -80.0, 150.0])
    return T


def _posed(T: NDArray, p: NDArray) -> NDArray[np.float64]:
    return np.asarray(p, float) @ T[:3, :3].T + T[:3, 3]


def _view_directions(n: int) -> list[NDArray[np.float64]]:
    """Anterior first, then ``n - 1`` directions 35 degrees off it, all around."""
    out = [np.array([0.0, -1.0, 0.0])]
    for i in range(n - 1):
        phi = 2 * np.pi * i / (n - 1)
        d = np.array([np.sin(np.radians(35)) * np.cos(phi), -np.cos(np.radians(35)),
                      np.sin(np.radians(35)) * np.sin(phi)])  # fmt: skip
        out.append(d)
    return out


def _record_stream(
    patient: dict[str, Any], T: NDArray, path: Path, seed: int
) -> list[NDArray[np.float64]]:
    """Simulate the batches, write them as raw OpenIGTLink POINT messages; the points (tracker)."""
    import registration as reg
    from surgplan.live import PointMessage, encode_message

    mesh = (patient["vertices_mm"], patient["faces"])
    batches = []
    raw = bytearray()
    for i, view in enumerate(_view_directions(N_BATCHES)):
        # each batch its own seeds: a tiny change of the FE field does not reshuffle the rest
        p = reg.simulate_swabs(
            mesh, n_points=BATCH_POINTS, coverage=0.06, seed=seed + 2 * i, view_direction=view,
            view_spread_deg=10.0, n_strokes=4,
        )  # fmt: skip
        p = _posed(T, reg.add_noise(p, noise_mm=NOISE_MM, seed=seed + 2 * i + 1))
        batches.append(p)
        names = tuple(f"swab{i + 1}_{j + 1}" for j in range(len(p)))
        raw += encode_message(
            PointMessage(POINTS_DEVICE, p, names=names), timestamp_s=1.0 + 2.0 * i
        )
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(bytes(raw))
    return batches


def read_recording(path: str | os.PathLike[str]) -> list[bytes]:
    """The messages of a recorded stream (concatenated OpenIGTLink messages), each complete."""
    from surgplan.live import HEADER_SIZE, parse_header

    data = Path(path).read_bytes()
    out, i = [], 0
    while i < len(data):
        h = parse_header(data[i : i + HEADER_SIZE])
        n = HEADER_SIZE + h.body_size
        out.append(data[i : i + n])
        i += n
    return out


# --- 5. the live sessions ------------------------------------------------------------------


class _Client:
    """A blocking OpenIGTLink client on a plain TCP socket (the project codec)."""

    def __init__(self, address: tuple[str, int], timeout_s: float = 60.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout_s)
        self.buf = bytearray()

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("the live server closed the connection")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv(self) -> Any:
        from surgplan.live import HEADER_SIZE, decode_message, parse_header

        head = self._read(HEADER_SIZE)
        body = self._read(parse_header(head).body_size)
        return decode_message(head + body, max_body_bytes=len(body) + 1)[1]

    def close(self) -> None:
        self.sock.close()


def _stream_session(
    case_dir: Path, mode: str, messages: list[bytes], timeout_s: float = 120.0
) -> dict[str, Any]:
    """Serve one session, send the recording batch by batch, collect what is published."""
    from surgplan.live import LiveServerThread, SessionConfig, TwinSpec, open_session
    from surgplan.live.frames import (
        ACK_DEVICE,
        ERROR_DEVICE,
        REGISTRATION_DEVICE,
        STATUS_DEVICE,
        TARGETS_DEVICE,
    )

    config = SessionConfig(twin=TwinSpec(source="case", mode=mode, noise_mm=NOISE_MM, seed=SEED))
    session, _ = open_session(case_dir, config)
    published: list[dict[str, Any]] = []
    acks = 0
    t0 = time.perf_counter()
    srv = LiveServerThread(session, port=0)
    try:
        srv.start()
        client = _Client(srv.address)  # type: ignore[arg-type]
        try:
            for raw in messages:
                client.sock.sendall(raw)
                seq = None
                got: dict[str, Any] = {}
                end = time.monotonic() + timeout_s
                while time.monotonic() < end:
                    msg = client.recv()
                    name = msg.device_name
                    if name == ERROR_DEVICE:
                        raise RuntimeError(f"the live server refused the stream: {msg.text}")
                    if name == ACK_DEVICE:
                        seq = int(json.loads(msg.text)["seq"])
                        acks += 1
                    elif name == REGISTRATION_DEVICE:
                        got["transform"] = np.asarray(msg.matrix, float)
                    elif name == TARGETS_DEVICE:
                        got["targets"] = msg
                    elif name == STATUS_DEVICE and seq is not None:
                        status = json.loads(msg.text)
                        seqs = status["inputs"]["seqs"]
                        if seqs and seqs[-1] >= seq:
                            got["status"] = status
                            break
                else:
                    raise TimeoutError(f"no published state within {timeout_s} s")
                published.append(got)
        finally:
            client.close()
        srv.wait_idle()
    finally:
        srv.stop()
        logged = len(session.log.message_seqs())
        updates = list(session.log.updates())
        session.log.end()
        session.log.close()
    return {
        "session": session.session_id,
        "config": config,
        "published": published,
        "acks": acks,
        "logged": logged,
        "updates": updates,
        "stream_s": time.perf_counter() - t0,
    }


def _score_session(
    case_dir: Path, run: dict[str, Any], truth_tracker: NDArray, cumulative: list[int]
) -> tuple[dict[str, Any], Any]:
    """TRE and radius95 per batch from the logged states; published vs logged; replay."""
    from surgplan.live import replay_session
    from surgplan.live.frames import from_wire_points, from_wire_transform
    from surgplan.twin import TwinState

    frames = run["config"].frames
    states = [TwinState.from_dict(u["state"]) if u.get("state") else None for u in run["updates"]]
    tre, r95, trusted, t_err, r_err = [], [], [], 0.0, 0.0
    T_last = None
    for state, pub in zip(states, run["published"], strict=False):
        if state is None:
            tre.append(float("nan"))
            r95.append(float("nan"))
            trusted.append(False)
            continue
        t = state.target(TUMOUR)
        tre.append(float(np.linalg.norm(t.position_tracker_mm - truth_tracker)))
        r95.append(float(t.radius95_mm))
        trusted.append(bool(state.trustworthy))
        T_pub = from_wire_transform(pub["transform"], frames.registration_ras)
        T_last = T_pub
        t_err = max(t_err, float(np.abs(T_pub - state.T_tracker_model).max()))
        msg = pub["targets"]
        i = list(msg.names).index(TUMOUR)
        pos = from_wire_points(msg.positions, frames.targets_ras)[i]
        t_err = max(t_err, float(np.abs(pos - t.position_tracker_mm).max()))
        r_err = max(r_err, abs(float(msg.diameters_mm[i]) / 2.0 - t.radius95_mm))
    replay = list(replay_session(case_dir, run["session"]))
    worst = max((u.difference for u in replay), default=float("inf"))
    if len(replay) != len(run["updates"]):
        worst = float("inf")
    summary = {
        "session": run["session"],
        "messages_sent": len(run["published"]),
        "acks": run["acks"],
        "logged": run["logged"],
        "updates": len(run["updates"]),
        "points": cumulative,
        "tre_mm": tre,
        "radius95_mm": r95,
        "inside_radius95": [bool(a <= b) for a, b in zip(tre, r95, strict=True)],
        "trustworthy": trusted,
        "reasons": [None if s is None else s.verdict.reason for s in states],
        "published_transform_max_error": t_err,
        "published_radius_max_error": r_err,
        "published_T_tracker_model": None if T_last is None else T_last.tolist(),
        "replay_max_difference": worst,
        "update_ms": [None if s is None else float(s.time_ms) for s in states],
        "stream_s": run["stream_s"],
    }
    return summary, (states[-1] if states else None)


# --- 7. pictures ---------------------------------------------------------------------------


def _plot_convergence(sessions: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"rigid": "tab:blue", "deformable": "tab:red"}
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for mode, s in sessions.items():
        c = colours.get(mode, "k")
        ax.plot(s["points"], s["tre_mm"], "o-", color=c, label=f"{mode}: tumour TRE")
        ax.plot(s["points"], s["radius95_mm"], "s--", color=c, alpha=0.7,
                label=f"{mode}: predicted 95% radius")  # fmt: skip
    ax.set_xlabel("acquired points (cumulative)")
    ax.set_ylabel("mm")
    ax.set_ylim(bottom=0)
    ax.set_title("Live twin converging on the deformed virtual patient")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _render_overlay(
    truth: Any, twins: Mapping[str, Any], targets: Mapping[str, tuple[NDArray, float]],
    truth_tumour: NDArray, points: NDArray, path: Path,
) -> Path:  # fmt: skip
    """Side by side per mode: the twin coloured by its distance to the truth (a wireframe).

    Everything in CT axes, seen from the front (anterior, head up), so that the picture reads
    like the preoperative twin's.
    """
    import pyvista as pv

    from surgplan.render import _place_camera

    modes = list(twins)
    plotter = pv.Plotter(off_screen=True, window_size=[1400, 700], shape=(1, len(modes)))
    plotter.set_background("white")
    for j, mode in enumerate(modes):
        plotter.subplot(0, j)
        twin = twins[mode].compute_implicit_distance(truth)
        twin.point_data["distance to truth (mm)"] = np.abs(twin.point_data["implicit_distance"])
        plotter.add_mesh(truth, color=(0.35, 0.35, 0.35), style="wireframe", opacity=0.12)
        plotter.add_mesh(
            twin, scalars="distance to truth (mm)", cmap="viridis", clim=[0.0, 8.0],
            opacity=0.55, smooth_shading=True,
            scalar_bar_args={"title": f"{mode}: distance to truth (mm)", "color": "black"},
        )  # fmt: skip
        plotter.add_mesh(pv.Sphere(radius=3.0, center=truth_tumour), color=(1.0, 0.85, 0.1))
        pos, r95 = targets[mode]
        plotter.add_mesh(
            pv.Sphere(radius=max(r95, 0.5), center=pos), color=(0.9, 0.1, 0.1), opacity=0.3
        )
        plotter.add_mesh(
            pv.PolyData(points), color=(0.05, 0.45, 0.2), point_size=4.0,
            render_points_as_spheres=True,
        )  # fmt: skip
        plotter.add_text(
            f"{mode} twin: tumour (yellow: truth) and its predicted 95% sphere (red)",
            font_size=10, color="black",
        )  # fmt: skip
        _place_camera(plotter, "anterior")
    with atomic_path(path) as tmp:
        plotter.screenshot(str(tmp))
    plotter.close()
    return path


# --- the part ------------------------------------------------------------------------------


def intraop_demo(
    case_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    on_step: Callable[[str], None] | None = None,
) -> IntraopDemoResult:
    """Run the intraoperative part (module docstring) on the demo case into ``out_dir``.

    Parameters
    ----------
    case_dir
        The demo's case (segmented, meshed); it is copied, never changed.
    out_dir
        The part's folder (``DEMO/intraop``); created, or updated in place.
    on_step
        Called with a description before each step.

    Returns
    -------
    IntraopDemoResult
    """
    from surgplan.case_rom import build_default_case_rom

    step = on_step or (lambda text: None)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    timing: dict[str, float] = {}
    t_all = time.perf_counter()

    step("intraoperative: reduced model of the twin")
    t = time.perf_counter()
    case = _twin_case(Path(case_dir), folder)
    rom = build_default_case_rom(case, n_centres=N_CENTRES, n_validation=1, seed=0)
    timing["reduced_model"] = time.perf_counter() - t

    step("intraoperative: finite-element virtual patient")
    t = time.perf_counter()
    patient = _virtual_patient(case)
    timing["virtual_patient"] = time.perf_counter() - t

    rng = np.random.default_rng(SEED)
    T = _true_pose(patient["vertices_mm"].mean(axis=0), rng)
    recording = folder / "acquisition.igtl"
    batches = _record_stream(patient, T, recording, SEED * 1000)
    truth_tracker = {k: _posed(T, p[None])[0] for k, p in patient["targets_mm"].items()}
    truth_path = folder / "acquisition_truth.json"
    write_text_atomic(
        truth_path,
        json.dumps(
            {
                "frame": "tracker, LPS-signed axes, mm",
                "T_tracker_model": T.tolist(),
                "targets_tracker_mm": {k: v.tolist() for k, v in truth_tracker.items()},
                "targets_model_mm": {k: v.tolist() for k, v in patient["targets_mm"].items()},
                "patient": patient["summary"],
                "batches": N_BATCHES,
                "batch_points": BATCH_POINTS,
                "noise_mm": NOISE_MM,
                "device": POINTS_DEVICE,
            },
            indent=2,
        )
        + "\n",
    )
    cumulative = list(np.cumsum([len(b) for b in batches]).astype(int).tolist())

    messages = read_recording(recording)
    sessions: dict[str, dict[str, Any]] = {}
    final: dict[str, Any] = {}
    for mode in MODES:
        step(f"intraoperative: streaming to the live server ({mode} twin)")
        t = time.perf_counter()
        run = _stream_session(case, mode, messages)
        timing[f"stream_{mode}"] = time.perf_counter() - t
        t = time.perf_counter()
        sessions[mode], final[mode] = _score_session(case, run, truth_tracker[TUMOUR], cumulative)
        timing[f"replay_{mode}"] = time.perf_counter() - t

    step("intraoperative: pictures")
    t = time.perf_counter()
    convergence = _plot_convergence(sessions, folder / "convergence.png")
    overlay = _overlay(case, patient, final, T, truth_tracker[TUMOUR], batches, folder)
    timing["pictures"] = time.perf_counter() - t
    timing["total"] = time.perf_counter() - t_all
    rigid, deform = sessions["rigid"]["tre_mm"][-1], sessions["deformable"]["tre_mm"][-1]
    return IntraopDemoResult(
        folder=folder,
        case=case,
        recording=recording,
        truth=truth_path,
        convergence_picture=convergence,
        overlay_picture=overlay,
        patient=patient["summary"],
        rom={
            "n_patch_centres": rom.n_patch_centres,
            "n_modes": rom.n_modes,
            "validation_max_vertex_error_mm": list(rom.validation_max_vertex_error_mm),
            "build_s": timing["reduced_model"],
        },
        points_per_batch=cumulative,
        sessions=sessions,
        deformable_beats_rigid=bool(np.isfinite(deform) and deform < rigid),
        timing_s=timing,
    )


def _overlay(
    case: Path, patient: dict[str, Any], final: Mapping[str, Any], T: NDArray,
    truth_tumour: NDArray, batches: list[NDArray], folder: Path,
) -> Path:  # fmt: skip
    """The final twin of each mode (rebuilt from its state) against the truth, tracker space."""
    import pyvista as pv

    from surgplan.twin.case_twin import load_case_model

    model = load_case_model(case)
    basis = model.basis()
    f = np.asarray(patient["faces"], np.int64)
    cells = np.hstack([np.full((len(f), 1), 3), f]).ravel()
    T_model_tracker = np.linalg.inv(T)  # the true pose: tracker -> CT axes
    truth = pv.PolyData(np.asarray(patient["vertices_mm"], float), cells)
    twins, targets = {}, {}
    for mode, state in final.items():
        if state is None:
            continue
        a = np.asarray(state.amplitudes, float)
        u = basis.surface_displacement_mm(a) if a.size else 0.0
        T_est = T_model_tracker @ state.T_tracker_model
        twins[mode] = pv.PolyData(_posed(T_est, basis.vertices_mm + u), cells)
        t = state.target(TUMOUR)
        targets[mode] = (_posed(T_model_tracker, t.position_tracker_mm[None])[0],
                         float(t.radius95_mm))  # fmt: skip
    return _render_overlay(
        truth, twins, targets, _posed(T_model_tracker, truth_tumour[None])[0],
        _posed(T_model_tracker, np.vstack(batches)), folder / "twin_overlay.png",
    )  # fmt: skip
