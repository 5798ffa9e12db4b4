"""The case's twin as a :class:`vr.scene.VrScene`: surfaces, colours, layers, rehearsal placement.

The surfaces and their display colours come from :func:`surgplan.viewer.scene.build_scene`
(``meshes/<name>.vtp`` in LPS mm, the segment colours of the case). Each structure goes to a
``vr`` layer by its name (vessels: ``*vein*``, ``*arter*``, ``*vessel*``, ``*portal*``,
``*hepatic*``, ``*cava*``; tumour: ``*tumo*``, ``*lesion*``; anything else: organ).

Rehearsal placement (no live session): the twin floats in front of the user, 600 mm ahead of
the XR world origin, seen from the patient's front: XR +x is patient left (LPS +x), XR +y is
superior (LPS +z), XR +z (towards the viewer) is anterior (LPS -y).
"""

from __future__ import annotations

import os

import numpy as np
import pyvista as pv

from vr.scene import SceneMesh, VrScene

__all__ = ["REHEARSAL_DISTANCE_MM", "R_XR_LPS", "layer_of", "case_vr_scene", "rehearsal_pose"]

#: Distance of the rehearsal twin's centre ahead of the XR world origin, mm.
REHEARSAL_DISTANCE_MM = 600.0
#: Rotation from patient LPS into the XR world of rehearsal (viewer facing the patient's front).
R_XR_LPS = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

_VESSEL_WORDS = ("vein", "arter", "vessel", "portal", "hepatic", "cava")
_TUMOUR_WORDS = ("tumo", "lesion")


def layer_of(name: str) -> str:
    """The ``vr`` layer of a structure name."""
    lowered = name.lower()
    if any(word in lowered for word in _TUMOUR_WORDS):
        return "tumour"
    if any(word in lowered for word in _VESSEL_WORDS):
        return "vessels"
    return "organ"


def rehearsal_pose(centre_lps_mm: np.ndarray) -> np.ndarray:
    """``T_world_twin``: the twin's ``centre_lps_mm`` at ``(0, 0, -600)`` mm in the XR world."""
    T = np.eye(4)
    T[:3, :3] = R_XR_LPS
    T[:3, 3] = np.array([0.0, 0.0, -REHEARSAL_DISTANCE_MM]) - R_XR_LPS @ centre_lps_mm
    return T


def _in_case_space(mesh: pv.PolyData, T_world_structure: np.ndarray) -> pv.PolyData:
    """The surface moved by its pose in the case's space (a copy unless the pose is identity)."""
    if np.allclose(T_world_structure, np.eye(4)):
        return mesh
    return mesh.transform(np.asarray(T_world_structure, float), inplace=False)


def case_vr_scene(case_dir: str | os.PathLike[str], text: str = "rehearsal") -> VrScene:
    """The rehearsal scene of a case: every surface in its colour and layer, placed ahead.

    Parameters
    ----------
    case_dir : str or os.PathLike
        The case folder.
    text : str
        Status text for the overlay's quad layer.

    Raises
    ------
    surgplan.errors.CaseError
        Not a case, no surfaces, a missing or unreadable surface.
    """
    from surgplan.viewer.scene import build_scene

    scene = build_scene(case_dir, with_image=False)
    meshes = tuple(
        SceneMesh(s.name, _in_case_space(s.mesh, s.T_world_structure), tuple(s.colour),
                  s.opacity, layer_of(s.name))
        for s in scene.structures
    )  # fmt: skip
    lows = np.array([m.mesh.bounds[0::2] for m in meshes])
    highs = np.array([m.mesh.bounds[1::2] for m in meshes])
    centre = (lows.min(axis=0) + highs.max(axis=0)) / 2
    return VrScene(meshes, T_world_twin=rehearsal_pose(centre), text=text)
