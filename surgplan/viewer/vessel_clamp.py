"""Clamping a vessel branch: predicted pressure in the other branches (no Qt).

The vessel's label map is thinned to its centreline (:func:`skimage.morphology.skeletonize`,
Lee et al. 1994, 3-D); centreline voxels are joined to their 26 neighbours; the voxels with
one neighbour (ends) or more than two (junctions) are the tree's nodes and the chains between
them its branches, each with its centreline length and its median lumen radius (the Euclidean
distance from the centreline to the background, :func:`scipy.ndimage.distance_transform_edt`).
The result is a :class:`biomech.vessel_tree.VesselTree`; :func:`biomech.vessel_tree.solve_flow`
solves Hagen-Poiseuille flow with Kirchhoff's law, a clamped branch carrying no flow.

Assumptions (stated, not measured for the patient): the inlet is the end of the widest
branch; every other end is an outlet draining through a terminal resistance to the outflow
pressure; the terminal resistances share :data:`TOTAL_FLOW_ML_S` (portal flow about 1 L/min)
in proportion to r^3 of their branch (Murray's law) at the pressures :data:`INLET_KPA` (portal
pressure about 10 mmHg) and :data:`OUTLET_KPA` (about 3 mmHg). Branches cut off by a clamp
fall to the outflow pressure (no flow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgplan.viewer.scene import SceneImage, ViewerError

__all__ = ["Branch", "ClampModel", "INLET_KPA", "OUTLET_KPA", "TOTAL_FLOW_ML_S"]

INLET_KPA = 1.33
OUTLET_KPA = 0.40
TOTAL_FLOW_ML_S = 16.7

_OFFSETS = np.array(
    [
        (a, b, c)
        for a in (-1, 0, 1)
        for b in (-1, 0, 1)
        for c in (-1, 0, 1)
        if (a, b, c) != (0, 0, 0)
    ]
)


@dataclass(frozen=True)
class Branch:
    """One branch: its end nodes, centreline points (LPS mm), length and radius (mm)."""

    nodes: tuple[int, int]
    points_mm: np.ndarray
    length_mm: float
    radius_mm: float


def _neighbours(vox: np.ndarray) -> list[list[int]]:
    """26-neighbour adjacency lists of skeleton voxels (indices into ``vox``)."""
    index = {tuple(v): n for n, v in enumerate(vox.tolist())}
    return [[index[t] for t in map(tuple, (v + _OFFSETS).tolist()) if t in index] for v in vox]


def _clusters(adj: list[list[int]], key: np.ndarray) -> np.ndarray:
    """Node id of every key voxel: touching key voxels (a junction's clump) share one; -1 else."""
    node = np.full(len(adj), -1)
    n = 0
    for v in np.flatnonzero(key):
        if node[v] >= 0:
            continue
        stack, node[v] = [v], n
        while stack:
            for w in adj[stack.pop()]:
                if key[w] and node[w] < 0:
                    node[w] = n
                    stack.append(w)
        n += 1
    return node


def _trace(adj: list[list[int]], node: np.ndarray) -> list[list[int]]:
    """Voxel chains between different nodes (ends, junction clumps), each listed once."""
    chains, used = [], set()
    for start in np.flatnonzero(node >= 0):
        for nxt in adj[start]:
            if node[nxt] == node[start] or (start, nxt) in used:
                continue
            chain, prev, cur = [start], start, nxt
            while node[cur] < 0:
                chain.append(cur)
                step = [w for w in adj[cur] if w != prev and w not in chain[-3:]]
                if not step:
                    break
                prev, cur = cur, step[0]
            chain.append(cur)
            used.update({(start, nxt), (chain[-1], chain[-2])})
            if node[cur] >= 0 and node[cur] != node[start]:
                chains.append(chain)
    return chains


class ClampModel:
    """A vessel's centreline tree with its flow model, built from its label map.

    Parameters
    ----------
    image : SceneImage
        The scan's label maps.
    vessel : str
        The vessel structure (it needs a label map).

    Raises
    ------
    ViewerError
        No label map for ``vessel``, or fewer than two branches found.
    """

    def __init__(self, image: SceneImage, vessel: str) -> None:
        from scipy.ndimage import distance_transform_edt
        from skimage.morphology import skeletonize

        from biomech.vessel_tree import VesselTree

        if vessel not in image.label_names:
            raise ViewerError(f"vessel clamp needs the label map of {vessel!r} (a CT case)")
        mask = image.labels == image.label_names.index(vessel) + 1
        sp = image.spacing_mm[::-1]  # (z, y, x)
        radius = distance_transform_edt(mask, sampling=sp)
        vox = np.argwhere(skeletonize(mask))  # (n, 3) k, j, i
        adj = _neighbours(vox)
        node = _clusters(adj, np.array([len(a) != 2 for a in adj]))
        chains = _trace(adj, node)
        if len(chains) < 2:
            raise ViewerError(f"{vessel!r}: fewer than two branches in its centreline")
        used = sorted({int(node[c[0]]) for c in chains} | {int(node[c[-1]]) for c in chains})
        node_of = {n: i for i, n in enumerate(used)}
        xyz = image.origin_mm + vox[:, ::-1] * image.spacing_mm  # LPS of each voxel
        centre = np.array([xyz[node == n].mean(axis=0) for n in used])
        self.branches = []
        for c in chains:
            pts = xyz[c]
            self.branches.append(Branch(
                (node_of[int(node[c[0]])], node_of[int(node[c[-1]])]), pts,
                float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()),
                float(max(np.median(radius[tuple(vox[c].T)]), 0.5 * float(sp.min()))),
            ))  # fmt: skip
        node_degree = np.bincount(np.array([b.nodes for b in self.branches]).ravel(),
                                  minlength=len(used))  # fmt: skip
        leaves = [n for n in range(len(used)) if node_degree[n] == 1]
        leaf_branch = {n: next(b for b in self.branches if n in b.nodes) for n in leaves}
        inlet = max(leaves, key=lambda n: leaf_branch[n].radius_mm)
        outlets = [n for n in leaves if n != inlet]
        r3 = np.array([leaf_branch[n].radius_mm ** 3 for n in outlets])
        share = TOTAL_FLOW_ML_S * r3 / r3.sum()
        self.vessel = vessel
        self.tree = VesselTree(
            nodes_mm=centre,
            segments=np.array([b.nodes for b in self.branches]),
            radii_mm=np.array([b.radius_mm for b in self.branches]),
            inlet=inlet,
            outlets={n: (INLET_KPA - OUTLET_KPA) / q for n, q in zip(outlets, share, strict=True)},
            lengths_mm=np.array([b.length_mm for b in self.branches]),
        )
        self._centre_points = np.concatenate([b.points_mm for b in self.branches])
        self._centre_branch = np.concatenate(
            [np.full(len(b.points_mm), i) for i, b in enumerate(self.branches)]
        )

    def branch_pressures_kpa(self, clamped: int | None = None) -> np.ndarray:
        """Mean pressure (kPa) of each branch's end nodes with ``clamped`` closed (or none).

        The clamped branch itself reports NaN.
        """
        from biomech.vessel_tree import solve_flow

        cl = () if clamped is None else (int(clamped),)
        flow = solve_flow(self.tree, inlet_pressure_kpa=INLET_KPA,
                          outlet_pressure_kpa=OUTLET_KPA, clamped=cl)  # fmt: skip
        p = np.nan_to_num(flow.pressure_kpa, nan=OUTLET_KPA)[self.tree.segments].mean(axis=1)
        if clamped is not None:
            p[int(clamped)] = np.nan
        return p

    def vertex_branches(self, points_mm: np.ndarray) -> np.ndarray:
        """Branch of each surface vertex (nearest centreline point)."""
        from scipy.spatial import cKDTree

        _, j = cKDTree(self._centre_points).query(np.asarray(points_mm, float))
        return self._centre_branch[j]
