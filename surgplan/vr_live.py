"""The live twin in the headset: each update of a ``surgplan live`` session as a :class:`VrScene`.

:class:`LiveVrScenes` follows the session as an OpenIGTLink client
(:class:`surgplan.viewer.live_client.LiveClient`, the desktop viewer's) and turns its newest
:class:`~surgplan.viewer.live_frame.LiveFrame` into the scene the frame loop draws:

- **Where.** The scene is drawn in model space (the case's CT LPS frame, mm) and placed in the
  headset's world by ``T_world_twin = T_xr_tracker @ T_tracker_model``: the headset-to-tracker
  calibration stored in the case (:mod:`surgplan.vr_calibration`) after the live registration.
- **What.** The published organ brought back to model space (it deforms with the twin); the
  case's other structures (vessels, tumour) following the organ's deformation by
  :class:`surgplan.viewer.structure_follow.StructureFollower`; a predicted-error sphere of each
  target's 95 % radius (layer ``error_spheres``); the recommended acquisition region, the
  organ's triangles whose three vertices are in the published patch, lifted 1 mm off the
  organ along its normals (layer ``recommended_region``). Colours are the desktop overlay's.
- **Trust.** An untrusted update, a pending session (no state yet), a refused update or a
  dropped connection hides the twin: the scene is untrusted and its warning says why.

A scene is built once per update (in the frame loop's thread, when the loop asks for it after
the update arrived) and reused by the frames until the next update. Its ``state_received_s`` is
when the update's last message arrived, so the loop's ``update_to_submit_s`` is the overlay's
motion-to-photon budget up to the submitted frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyvista as pv

from surgplan.errors import SurgplanError
from vr.scene import SceneMesh, VrScene

__all__ = ["LiveVrScenes", "parse_address", "REGION_LIFT_MM"]

#: The recommended region is drawn this far outside the organ (no z-fighting), mm.
REGION_LIFT_MM = 1.0


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``.

    Raises
    ------
    SurgplanError
        Not ``HOST:PORT`` with a port in 1..65535.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SurgplanError(f"--live must be HOST:PORT with a port in 1..65535, got {text!r}")
    return host.strip("[]"), int(port)


class _Holder:
    """A mesh in the shape :class:`StructureFollower` follows (an actor's mapper and matrix)."""

    def __init__(self, mesh: pv.PolyData) -> None:
        self.mapper = type("Mapper", (), {})()
        self.mapper.dataset = mesh
        self.user_matrix = np.eye(4)


def _case_structures(case_dir: Path) -> tuple[SceneMesh, ...]:
    """The case's surfaces as scene meshes (none for a case without surfaces)."""
    from surgplan.case import Case

    if not Case.open(case_dir).manifest.surfaces:
        return ()
    from surgplan.vr_scene import case_vr_scene

    return case_vr_scene(case_dir).meshes


def _faces(faces: np.ndarray) -> np.ndarray:
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    return np.column_stack([np.full(len(f), 3), f]).ravel()


class LiveVrScenes:
    """Scenes of a live session for the frame loop (``scene_source(display_time_s)``).

    Parameters
    ----------
    case_dir : str or os.PathLike
        The session's case (its structures follow the organ, when it has surfaces).
    host, port : str, int
        The ``surgplan live`` server.
    T_xr_tracker : numpy.ndarray
        4x4 headset-world-from-tracker calibration, mm.
    organ : str
        The twin's organ structure (its rest surface drives the following).
    """

    def __init__(
        self,
        case_dir: str | os.PathLike[str],
        host: str,
        port: int,
        T_xr_tracker: np.ndarray,
        *,
        organ: str = "liver",
    ) -> None:
        from surgplan.viewer.live_client import LiveClient
        from surgplan.viewer.structure_follow import StructureFollower, rest_organ_from_case

        self.T_xr_tracker = np.asarray(T_xr_tracker, float)
        self.address = f"{host}:{port}"
        structures = _case_structures(Path(case_dir))
        self._organ_colour = next((m.colour for m in structures if m.name == organ), None)
        self._others = [m for m in structures if m.name != organ]
        self._holders = {m.name: _Holder(m.mesh) for m in self._others}
        rest = rest_organ_from_case(case_dir, organ) if structures else None
        self._follower = (
            StructureFollower(rest, lambda: self._holders) if rest is not None else None
        )
        self._scene = self._waiting(f"waiting for the live session at {self.address}")
        self.frames_seen = 0
        self.note = ""
        self._client = LiveClient(host, port).start()

    @staticmethod
    def _waiting(reason: str) -> VrScene:
        return VrScene((), trusted=False, warning=f"TWIN HIDDEN: {reason}")

    def __call__(self, display_time_s: float) -> VrScene:
        """The newest update's scene (built when a new update has arrived)."""
        frame = self._client.take()
        if frame is not None:
            self.frames_seen += 1
            self._scene = self._build(frame)
        elif self._client.state.state == "reconnecting":
            self._scene = self._waiting(f"connection to {self.address} lost, reconnecting")
        return self._scene

    def _build(self, frame) -> VrScene:
        if frame.status != "state" or not frame.has_geometry or frame.T_tracker_model is None:
            return VrScene((), trusted=False, warning=frame.verdict_text())
        T = np.asarray(frame.T_tracker_model, float)
        T_model_tracker = np.linalg.inv(T)
        organ_model = frame.organ_points_mm @ T_model_tracker[:3, :3].T + T_model_tracker[:3, 3]
        meshes = [self._organ(organ_model, frame.organ_faces)]
        meshes += self._followed(frame, T_model_tracker)
        meshes += self._spheres(frame, T_model_tracker)
        region = self._region(frame, organ_model)
        if region is not None:
            meshes.append(region)
        return VrScene(
            tuple(meshes),
            T_world_twin=self.T_xr_tracker @ T,
            trusted=bool(frame.trustworthy),
            warning="" if frame.trustworthy else f"TWIN HIDDEN: {frame.verdict_text()}",
            text=frame.verdict_text() + (f" | {self.note}" if self.note else ""),
            state_received_s=frame.received_s,
        )

    def _organ(self, points: np.ndarray, faces: np.ndarray) -> SceneMesh:
        from surgplan.viewer.twin_overlay import ORGAN_RGB

        mesh = pv.PolyData(np.asarray(points, float), _faces(faces))
        return SceneMesh("organ", mesh, self._organ_colour or ORGAN_RGB, 1.0, "organ")

    def _followed(self, frame, T_model_tracker: np.ndarray) -> list[SceneMesh]:
        if self._follower is None:
            return [m for m in self._others]
        from surgplan.viewer.structure_follow import organ_displacement_mm

        try:
            u = organ_displacement_mm(
                frame.organ_points_mm, frame.T_tracker_model, self._follower.rest
            )
        except SurgplanError as error:
            self.note = f"structures at rest: {error}"
            return list(self._others)
        targets = {
            t.name: t.position_mm @ T_model_tracker[:3, :3].T + T_model_tracker[:3, 3]
            for t in frame.targets
        }
        self._follower.apply(u, targets)
        self.note = self._follower.note
        out = []
        for m in self._others:
            moved = self._holders[m.name].mapper.dataset
            mesh = pv.PolyData(np.asarray(moved.points, float).copy(), moved.faces)
            out.append(SceneMesh(m.name, mesh, m.colour, m.opacity, m.layer))
        return out

    @staticmethod
    def _spheres(frame, T_model_tracker: np.ndarray) -> list[SceneMesh]:
        from surgplan.viewer.twin_overlay import SPHERE_OPACITY, TARGET_RGB, sphere_mesh

        out = []
        for target in frame.targets:
            if not np.isfinite(target.radius95_mm) or target.radius95_mm <= 0:
                continue
            centre = target.position_mm @ T_model_tracker[:3, :3].T + T_model_tracker[:3, 3]
            mesh = sphere_mesh(centre, float(target.radius95_mm), resolution=24)
            out.append(
                SceneMesh(f"error_{target.name}", mesh, TARGET_RGB, SPHERE_OPACITY, "error_spheres")
            )
        return out

    @staticmethod
    def _region(frame, organ_model: np.ndarray) -> SceneMesh | None:
        from surgplan.viewer.twin_overlay import REGION_OPACITY, REGION_RGB

        ids = frame.region_vertex_ids()
        faces = np.asarray(frame.organ_faces, np.int64).reshape(-1, 3)
        inside = faces[np.isin(faces, ids).all(axis=1)]
        if not len(inside):
            return None
        organ = pv.PolyData(organ_model, _faces(faces)).compute_normals(
            cell_normals=False, auto_orient_normals=False, consistent_normals=False
        )
        lifted = organ_model + REGION_LIFT_MM * np.asarray(organ.point_data["Normals"])
        mesh = pv.PolyData(lifted, _faces(inside))
        return SceneMesh(
            "recommended_region", mesh, REGION_RGB, REGION_OPACITY, "recommended_region"
        )

    def close(self) -> None:
        """Stop following the session."""
        self._client.close()
