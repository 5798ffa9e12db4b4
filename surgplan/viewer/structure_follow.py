"""The case's structures following the twin's organ deformation (model / CT space).

The live and replay overlays draw everything in **model space** (the case's CT LPS frame, mm):
the twin's surface is the published organ brought back with ``T_model_tracker``, which leaves
its deformation and removes the pose (see :mod:`surgplan.viewer.twin_overlay` for why).

The organ's displacement at its vertices is ``u = T_model_tracker p_published - p_rest``: the
twin publishes its registration surface's vertices in their own order (``basis.vertices_mm``,
the case surface prepared by :func:`registration.prepare_surface` in
:func:`surgplan.twin.case_twin.load_case_model`), so ``p_rest`` is that surface. The other
structures (vessels, tumour, the case's own organ mesh) follow by **inverse-distance weighting**
over their :data:`K_NEAREST` nearest organ vertices (weights ``1 / d^2``, normalised):
:class:`DisplacementTransfer` builds the sparse ``(N, V)`` weight matrix once, and each frame
costs one sparse product ``W @ u``. A convex combination of the organ's displacements: for a
field with Lipschitz constant ``L`` (mm/mm) its error at a point is at most ``L d_k``, with
``d_k`` the distance to the farthest of the ``k`` organ vertices used
(:attr:`DisplacementTransfer.reach_mm`).

The tumour is then translated by the residual that puts its volume centroid on the twin's own
``tumour_centroid`` prediction (modes interpolated in the volume mesh, more exact than surface
interpolation deep inside the organ). That target *is* the tumour mesh's rest volume centroid,
moved by the true field ``u``; the interpolated centroid moved by a convex combination of the
organ's displacements, so for the right mesh the residual is at most ``2 max |u|`` plus the
mesh's discretisation: a residual above ``TUMOUR_SNAP_LIMIT_MM + 2 max |u|`` means the mesh is
not the target's and is reported, never hidden (:attr:`StructureFollower.note`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from surgplan.viewer.scene import ViewerError

__all__ = [
    "DisplacementTransfer",
    "K_NEAREST",
    "MAX_DISPLACEMENT_MM",
    "StructureFollower",
    "TUMOUR_SNAP_LIMIT_MM",
    "organ_displacement_mm",
    "rest_organ_from_case",
    "structure_actors",
    "volume_centroid",
]

#: Organ vertices each structure point is interpolated from.
K_NEAREST = 8
#: Largest organ displacement believed, mm (more: the rest surface is not the twin's).
MAX_DISPLACEMENT_MM = 80.0
#: Residual allowed between the interpolated tumour centroid and the twin's prediction on top
#: of twice the largest organ displacement, mm (module docstring).
TUMOUR_SNAP_LIMIT_MM = 2.0
#: Words naming a lesion (as :data:`surgplan.twin.case_twin.LESION_WORDS`).
LESION_WORDS = ("tumour", "tumor", "lesion", "metastasis")


class DisplacementTransfer:
    """Inverse-distance weights from organ vertices to other points, built once.

    Parameters
    ----------
    organ_rest_mm : array_like, shape (V, 3)
        The organ's rest vertices, model space, mm.
    points_mm : array_like, shape (N, 3)
        Where the displacement is wanted, model space, mm.
    k : int, keyword-only
        Nearest organ vertices per point.

    Attributes
    ----------
    weights : scipy.sparse.csr_matrix, shape (N, V)
        Rows sum to 1.
    reach_mm : numpy.ndarray, shape (N,)
        Distance from each point to the farthest vertex of its row, mm (error bound factor).
    """

    def __init__(self, organ_rest_mm: ArrayLike, points_mm: ArrayLike, *, k: int = K_NEAREST):
        v = np.asarray(organ_rest_mm, np.float64)
        p = np.asarray(points_mm, np.float64).reshape(-1, 3)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
            raise ViewerError(f"organ rest vertices must be (V, 3) with V > 0, got {v.shape}")
        k = max(1, min(int(k), len(v)))
        d, idx = cKDTree(v).query(p, k=k)
        d, idx = d.reshape(len(p), k), idx.reshape(len(p), k)
        w = 1.0 / np.maximum(d, 1e-6) ** 2
        w /= w.sum(axis=1, keepdims=True)
        rows = np.repeat(np.arange(len(p)), k)
        self.weights = sp.csr_matrix((w.ravel(), (rows, idx.ravel())), shape=(len(p), len(v)))
        self.reach_mm = d.max(axis=1)
        self.n_organ = len(v)

    def __call__(self, organ_displacement_mm: NDArray[np.float64]) -> NDArray[np.float64]:
        """Displacement at the points, ``(N, 3)`` mm, from the organ's ``(V, 3)``."""
        return np.asarray(self.weights @ organ_displacement_mm, np.float64)


def organ_displacement_mm(
    organ_points_tracker_mm: ArrayLike, T_tracker_model: ArrayLike, rest_mm: ArrayLike
) -> NDArray[np.float64]:
    """The organ's deformation at its vertices in model space: ``T^-1 p - rest``, mm.

    Raises
    ------
    ViewerError
        A vertex count that is not the rest surface's, or an implausible displacement
        (> :data:`MAX_DISPLACEMENT_MM`): the rest surface is not the twin's.
    """
    p = np.asarray(organ_points_tracker_mm, np.float64)
    rest = np.asarray(rest_mm, np.float64)
    if p.shape != rest.shape:
        raise ViewerError(
            f"published organ has {len(p)} vertices, the twin's rest surface {len(rest)}: "
            "not the same surface"
        )
    T_model_tracker = np.linalg.inv(np.asarray(T_tracker_model, np.float64))
    u = p @ T_model_tracker[:3, :3].T + T_model_tracker[:3, 3] - rest
    worst = float(np.linalg.norm(u, axis=1).max()) if len(u) else 0.0
    if not np.isfinite(worst) or worst > MAX_DISPLACEMENT_MM:
        raise ViewerError(
            f"organ displacement up to {worst:.1f} mm from the rest surface (at most "
            f"{MAX_DISPLACEMENT_MM:g} mm expected): the rest surface is not the twin's"
        )
    return u


def volume_centroid(points_mm: ArrayLike, faces: ArrayLike) -> NDArray[np.float64]:
    """Volume centroid of a closed triangle surface, mm (vertex mean for a flat one)."""
    p = np.asarray(points_mm, np.float64)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    a, b, c = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]
    vol = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0  # signed tetra volumes about 0
    total = vol.sum()
    if abs(total) < 1e-9 * max(float(np.ptp(p, axis=0).max()), 1.0) ** 3:
        return p.mean(axis=0)
    return (vol[:, None] * (a + b + c) / 4.0).sum(axis=0) / total


def rest_organ_from_case(
    case_dir: str | os.PathLike[str], structure: str = "liver"
) -> NDArray[np.float64] | None:
    """The twin's rest surface of a case: its ``structure`` surface as the twin prepares it.

    ``None`` when the case has no such surface (a synthetic session: nothing to follow).
    """
    from registration import prepare_surface
    from surgplan.case import Case
    from surgplan.case_files import read_case_surface

    case = Case.open(case_dir)
    surfaces = case.manifest.surfaces
    if structure not in surfaces:
        return None
    organ = prepare_surface(read_case_surface(case, structure), name=structure)
    return np.asarray(organ.vertices, np.float64)


def structure_actors(
    plotter: Any, case_dir: str | os.PathLike[str]
) -> Callable[[], dict[str, Any]]:
    """A provider of the plotter's actors named like the case's surfaces (model space)."""
    from surgplan.case import Case

    names = tuple(Case.open(case_dir).manifest.surfaces)

    def actors() -> dict[str, Any]:
        have = plotter.actors
        return {n: have[n] for n in names if n in have}

    return actors


class _Bound:
    """One structure actor deformed in place (a copy of its mesh, its weights)."""

    def __init__(self, actor: Any, rest_organ: NDArray[np.float64]) -> None:
        self.actor = actor
        self.original = actor.mapper.dataset
        self.mesh = self.original.copy(deep=True)
        self.rest = np.asarray(self.mesh.points, np.float64).copy()
        M = np.asarray(getattr(actor, "user_matrix", np.eye(4)), np.float64)
        self.M = M
        self.R_inv = np.linalg.inv(M[:3, :3])
        world = self.rest @ M[:3, :3].T + M[:3, 3]
        self.transfer = DisplacementTransfer(rest_organ, world)
        self.faces = None
        if self.mesh.n_cells and self.mesh.is_all_triangles:
            self.faces = np.asarray(self.mesh.faces).reshape(-1, 4)[:, 1:]
        actor.mapper.dataset = self.mesh

    def apply(self, u_organ: NDArray[np.float64], shift_world: NDArray | None = None) -> None:
        d = self.transfer(u_organ)
        if shift_world is not None:
            d = d + shift_world
        self.mesh.points = self.rest + d @ self.R_inv.T

    def world_centroid(self) -> NDArray[np.float64]:
        p = np.asarray(self.mesh.points, np.float64) @ self.M[:3, :3].T + self.M[:3, 3]
        return p.mean(axis=0) if self.faces is None else volume_centroid(p, self.faces)

    def release(self) -> None:
        self.actor.mapper.dataset = self.original


class StructureFollower:
    """Deform the plotter's structure actors with the twin's organ (module docstring).

    Parameters
    ----------
    rest_organ_mm : array_like, shape (V, 3)
        The twin's rest surface (its vertex order), model space, mm.
    structures : callable
        Returns the structure actors to follow, by name (called each frame: a window's
        structures may appear after the first frame). Their meshes are copied, never changed.
    tumour_target : str, keyword-only
        Name of the twin's target that is the tumour's centroid.

    Attributes
    ----------
    note : str
        Empty, or why a structure does not follow exactly (shown with the verdict).
    """

    def __init__(
        self,
        rest_organ_mm: ArrayLike,
        structures: Callable[[], Mapping[str, Any]],
        *,
        tumour_target: str = "tumour_centroid",
    ) -> None:
        self.rest = np.asarray(rest_organ_mm, np.float64)
        self.structures = structures
        self.tumour_target = tumour_target
        self.bound: dict[str, _Bound] = {}
        self.note = ""

    def _bind(self) -> None:
        for name, actor in dict(self.structures()).items():
            b = self.bound.get(name)
            if b is None or b.actor is not actor:
                if b is not None:
                    b.release()
                self.bound[name] = _Bound(actor, self.rest)

    def _tumour_target(self, targets: Mapping[str, NDArray]) -> NDArray | None:
        if self.tumour_target in targets:
            return targets[self.tumour_target]
        for name, p in targets.items():
            if any(w in name.lower() for w in LESION_WORDS):
                return p
        return None

    def apply(self, u_organ_mm: NDArray[np.float64], targets_model_mm: Mapping[str, NDArray]):
        """Move every structure by the organ's displacement ``(V, 3)`` mm (model space).

        ``targets_model_mm``: the twin's targets, model space, mm (the tumour snaps to its).
        """
        self._bind()
        notes = []
        tumour_p = self._tumour_target(targets_model_mm)
        u_max = float(np.linalg.norm(u_organ_mm, axis=1).max()) if len(u_organ_mm) else 0.0
        for name, b in self.bound.items():
            b.apply(u_organ_mm)
            if tumour_p is None or not any(w in name.lower() for w in LESION_WORDS):
                continue
            gap = np.asarray(tumour_p, np.float64) - b.world_centroid()
            if float(np.linalg.norm(gap)) <= TUMOUR_SNAP_LIMIT_MM + 2.0 * u_max:
                b.apply(u_organ_mm, gap)
            else:
                notes.append(
                    f"{name} centroid {np.linalg.norm(gap):.1f} mm from the twin's tumour "
                    "prediction (not snapped)"
                )
        self.note = "; ".join(notes)

    def at_rest(self) -> None:
        """Put every followed structure back at rest (its own shape, no deformation)."""
        for b in self.bound.values():
            b.mesh.points = b.rest.copy()
        self.note = ""

    def release(self) -> None:
        """Give every actor its own mesh back (at rest)."""
        for b in self.bound.values():
            b.release()
        self.bound.clear()
