"""The deformed, registered twin at one moment of a recorded live session, as binary glTF.

``surgplan export CASE --gltf OUT.glb --session ID --at SECONDS`` (:func:`export_session_gltf`)
reads the session's log (``CASE/sessions/<ID>.sqlite``, :mod:`surgplan.live.log`) and:

1. **Time.** ``SECONDS`` counts from the session's start, the receive time of its first logged
   message. A state's time is when its update was logged (``updates.created_at``), on the same
   clock. The state taken is the last one logged at or before ``SECONDS``
   (:func:`state_at`); a time before the first state is refused, naming that state's time.
2. **Basis.** The twin's basis is rebuilt from the session's recorded
   :class:`~surgplan.live.session.TwinSpec`: the synthetic organ (``source="synthetic"``) or
   the case's reduced model on its organ surface (``source="case"``,
   :func:`~surgplan.twin.case_twin.load_case_model`: the case as it is now, checked against
   the state's number of amplitudes). A rigid session's states have no amplitudes.
3. **Organ.** Its surface deformed by the state's amplitudes
   (``vertices + DeformationBasis.surface_displacement_mm(a)``) and posed by the state's
   ``T_tracker_model``: exactly :meth:`surgplan.twin.Twin.deformed_surface` of that state.
4. **Other structures** (case twins only): the case's other surfaces (tumour, vessels...) moved
   by the same deformation field, ``p + sum_m a_m phi_m(p)`` with the modes at their vertices
   from :func:`biomech.rom.modes_at` (exact P1 inside the organ, the nearest cell just outside
   it), then posed (:meth:`surgplan.twin.Twin.deform_points`). A rigid session needs no modes.
   Where the modes cannot be evaluated at a structure's vertices (a reduced model without
   volume cells, or points it refuses: a :class:`~biomech.errors.BiomechError`), a structure
   named with ``--structure`` is refused with that reason, and without ``--structure`` the
   structure is left out, listed in the JSON ``left_out`` with the reason. (A case twin is
   itself built from the model's volume cells, so a session whose twin was built has them.)
   A synthetic twin's organ is not the case's anatomy, so its export holds the organ alone
   (named :data:`SYNTHETIC_ORGAN`) and refuses ``--structure``.

Everything is in tracker space (the JSON ``frame`` is ``"tracker"``), millimetres with LPS-signed
axes as the session takes its points, and is converted to glTF metres and axes by
:func:`surgplan.gltf_export.lps_mm_to_gltf_m` (the JSON ``axes``).
"""

from __future__ import annotations

import bisect
import math
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from surgplan.export import ExportError

if TYPE_CHECKING:
    import pyvista as pv

    from surgplan.gltf_export import GltfExport
    from surgplan.live.session import TwinSpec
    from surgplan.twin import TwinState
    from surgplan.twin.basis import DeformationBasis

__all__ = [
    "SYNTHETIC_ORGAN",
    "LoggedState",
    "SessionGltfError",
    "SessionGltfExport",
    "SessionStates",
    "export_session_gltf",
    "posed_deformed_points",
    "session_basis",
    "session_states",
    "state_at",
]

#: Structure name of a synthetic twin's organ in the glTF.
SYNTHETIC_ORGAN = "synthetic_organ"


class SessionGltfError(ExportError):
    """A session glTF request names a bad time, a session without states or a mismatched twin."""


@dataclass(frozen=True)
class LoggedState:
    """One twin state of a session log.

    Attributes
    ----------
    index : int
        Its position among the session's states (0 = the first state).
    update : int
        The log's update number that produced it.
    time_s : float
        When it was logged, s since the session's start.
    state : dict
        The state (:meth:`surgplan.twin.TwinState.to_dict`, lossless).
    """

    index: int
    update: int
    time_s: float
    state: dict[str, Any]


@dataclass(frozen=True)
class SessionStates:
    """A session's twin spec, start and states, in log order.

    Attributes
    ----------
    session : str
        The session id.
    twin : TwinSpec
        How the session's twin was built.
    start : float
        Receive time of its first message, s since 1970.
    states : tuple of LoggedState
        Its states, in log (and time) order.
    """

    session: str
    twin: TwinSpec
    start: float
    states: tuple[LoggedState, ...]


def session_states(case_dir: str | os.PathLike[str], session_id: str) -> SessionStates:
    """Read a session's twin spec and its logged states with their times (module docstring).

    Raises
    ------
    SessionLogError
        An invalid id, no such session, or not a session log.
    SessionGltfError
        A session without messages.
    """
    from surgplan.live.log import SessionLog, session_path

    path = session_path(case_dir, session_id)
    log = SessionLog.open(path)  # checks it is a session log of the known schema
    try:
        spec = log.config().twin
        updates = [u for u in log.updates() if u["status"] == "state" and u["state"] is not None]
    finally:
        log.close()
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        start = conn.execute("SELECT MIN(received_at) FROM messages").fetchone()[0]
        logged = dict(conn.execute("SELECT n, created_at FROM updates").fetchall())
    finally:
        conn.close()
    if start is None:
        raise SessionGltfError(f"session {session_id} logged no message, hence no twin state")
    states = tuple(
        LoggedState(i, int(u["n"]), float(logged[u["n"]]) - float(start), u["state"])
        for i, u in enumerate(updates)
    )
    return SessionStates(session_id, spec, float(start), states)


def state_at(states: SessionStates, at_s: float) -> LoggedState:
    """The last state logged at or before ``at_s`` s since the session's start.

    Raises
    ------
    SessionGltfError
        A negative or non-finite time, a session without states, a time before the first.
    """
    at = float(at_s)
    if not (math.isfinite(at) and at >= 0.0):
        raise SessionGltfError(
            f"--at must be a time in seconds >= 0 since the session's start, got {at_s!r}"
        )
    if not states.states:
        raise SessionGltfError(f"session {states.session} logged no twin state")
    times = [s.time_s for s in states.states]
    i = bisect.bisect_right(times, at) - 1
    if i < 0:
        raise SessionGltfError(
            f"--at {at:g} s is before session {states.session}'s first twin state, logged at "
            f"{times[0]:.3f} s since its start"
        )
    return states.states[i]


def session_basis(case_dir: str | os.PathLike[str], spec: TwinSpec) -> DeformationBasis:
    """The deformation basis of the session's twin, rebuilt from its recorded spec.

    The full basis (with its modes) even for a rigid session; a rigid state has no amplitudes.
    """
    if spec.source == "synthetic":
        from surgplan.twin.synthetic import synthetic_basis, synthetic_organ

        return synthetic_basis(synthetic_organ(spec.subdivisions))
    from surgplan.twin.case_twin import case_basis

    return case_basis(case_dir, structure=spec.structure)


def posed_deformed_points(
    points_mm: NDArray[np.float64],
    amplitudes: NDArray[np.float64],
    modes: NDArray[np.float64] | None,
    T_tracker_model: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``T_tracker_model`` applied to ``points + sum_m a_m modes[m]`` (no modes when ``k = 0``)."""
    p = np.asarray(points_mm, np.float64)
    a = np.asarray(amplitudes, np.float64)
    if len(a):
        p = p + np.tensordot(a, np.asarray(modes, np.float64), axes=(0, 0))
    T = np.asarray(T_tracker_model, np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


def _amplitudes(state: TwinState, basis: DeformationBasis, session: str) -> NDArray[np.float64]:
    a = np.asarray(state.amplitudes, np.float64)
    if len(a) not in (0, basis.n_modes):
        raise SessionGltfError(
            f"session {session}'s states have {len(a)} amplitudes but the twin rebuilt from "
            f"its spec has {basis.n_modes} modes: the case's model changed since the session"
        )
    return a


def _organ_mesh(basis: DeformationBasis, state: TwinState, a: NDArray) -> pv.PolyData:
    import pyvista as pv

    v = posed_deformed_points(basis.vertices_mm, a, basis.surface_modes, state.T_tracker_model)
    faces = np.hstack([np.full((len(basis.faces), 1), 3), basis.faces]).ravel()
    return pv.PolyData(v, faces)


@dataclass(frozen=True)
class SessionGltfExport:
    """What :func:`export_session_gltf` wrote.

    Attributes
    ----------
    gltf : GltfExport
        The file and its structures.
    session : str
        The session.
    at_s : float
        The time asked for, s since the session's start.
    state : LoggedState
        The state exported (its index, update number and time).
    twin : TwinSpec
        The session's twin.
    left_out : dict of str to str
        Structures not written and why.
    """

    gltf: GltfExport
    session: str
    at_s: float
    state: LoggedState
    twin: TwinSpec
    left_out: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan export --gltf ... --session ID --at S --json``."""
        out = self.gltf.to_dict()
        axes = out.pop("frame")
        return {
            **out,
            "session": self.session,
            "at_s": self.at_s,
            "state_index": self.state.index,
            "state_time_s": self.state.time_s,
            "update": self.state.update,
            "frame": "tracker",
            "axes": f"{axes} (tracker mm, LPS-signed axes, converted)",
            "twin": self.twin.to_dict(),
            "left_out": dict(self.left_out),
        }


def export_session_gltf(
    case_folder: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    session: str,
    at_s: float,
    structures: Sequence[str] = (),
) -> SessionGltfExport:
    """Write the deformed, registered twin at ``at_s`` of session ``session`` as ``.glb``.

    Parameters
    ----------
    case_folder
        The case holding the session.
    out_path
        Destination ``.glb`` outside the case; its folder must exist.
    session
        The session id (``surgplan sessions CASE``).
    at_s
        Seconds since the session's start (its first message); the last state logged at or
        before is exported.
    structures
        Case twins: only these of the case's surfaces (default all of them); the organ is the
        session's twin structure. Not for synthetic twins.

    Returns
    -------
    SessionGltfExport

    Raises
    ------
    SessionGltfError
        A bad time, no state by then, ``structures`` for a synthetic twin, a twin that no longer
        matches the states, a named structure the model's modes cannot reach.
    SessionLogError
        No such session.
    ExportError, GltfExportError, CaseError, TwinError
        As :func:`~surgplan.case_scene_export.export_case_gltf`; a case that no longer builds
        the session's twin.
    """
    from surgplan.case import Case
    from surgplan.case_scene_export import write_case_gltf
    from surgplan.export import require_outside_case
    from surgplan.twin import TwinState

    out = Path(out_path)
    case = Case.open(case_folder)
    require_outside_case(case, out)
    if not (math.isfinite(float(at_s)) and float(at_s) >= 0.0):
        raise SessionGltfError(
            f"--at must be a time in seconds >= 0 since the session's start, got {at_s!r}"
        )
    states = session_states(case.root, session)
    logged = state_at(states, at_s)
    spec = states.twin
    if spec.source == "synthetic" and structures:
        raise SessionGltfError(
            f"session {session}'s twin is synthetic: its organ is not the case's anatomy, so "
            "--structure does not apply (the export holds the synthetic organ only)"
        )
    state = TwinState.from_dict(logged.state)
    basis = session_basis(case.root, spec)
    a = _amplitudes(state, basis, session)
    left_out: dict[str, str] = {}
    if spec.source == "synthetic":
        meshes = {SYNTHETIC_ORGAN: _organ_mesh(basis, state, a)}
    else:
        meshes, left_out = _case_meshes(case, spec.structure, structures, basis, state, a)
    gltf = write_case_gltf(case, out, meshes)
    return SessionGltfExport(gltf, session, float(at_s), logged, spec, left_out)


def _modes_at(model: Any, points: NDArray[np.float64]) -> NDArray[np.float64]:
    """(k, N, 3) modes of the case's reduced model at ``points`` (:func:`biomech.rom.modes_at`)."""
    return model.modes_at(points)


def _case_meshes(
    case: Any,
    organ: str,
    structures: Sequence[str],
    basis: DeformationBasis,
    state: TwinState,
    a: NDArray,
) -> tuple[dict[str, pv.PolyData], dict[str, str]]:
    """The case's surfaces posed and deformed: the organ from the basis, others by modes_at."""
    from biomech.errors import BiomechError
    from surgplan.case_scene_export import case_surfaces

    others = {n: m for n, m in case_surfaces(case, structures).items() if n != organ}
    names = list(structures) or list(case.manifest.surfaces)
    meshes: dict[str, pv.PolyData] = {}
    left_out: dict[str, str] = {}
    model = None
    if len(a) and others:
        from surgplan.twin.case_twin import load_case_model

        model = load_case_model(case.root, structure=organ)
    for name in dict.fromkeys(names):
        if name == organ:
            meshes[name] = _organ_mesh(basis, state, a)
            continue
        surface = others[name].copy()
        points = np.asarray(surface.points, np.float64)
        modes = None
        if model is not None:
            try:
                modes = _modes_at(model, points)
            except BiomechError as exc:
                reason = f"its deformation is unknown: {exc}"
                if structures:
                    raise SessionGltfError(f"structure {name!r}: {reason}") from None
                left_out[name] = reason
                continue
        surface.points = posed_deformed_points(points, a, modes, state.T_tracker_model)
        meshes[name] = surface
    return meshes, left_out
