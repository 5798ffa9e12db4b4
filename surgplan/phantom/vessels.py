"""Hepatic vessel trees grown inside the liver from fixed roots and a seeded random generator.

The portal vein enters at the hilum (extrahepatic trunk, radius 7 mm) and splits into right and
left portal veins; three hepatic veins (right, middle, left) leave the vena cava just under the
diaphragm. From these roots both trees branch by asymmetric bifurcations until the radius falls
below ``radius_min_mm`` (2 mm by default). Children keep a rim of parenchyma to the liver surface,
stay clear of the tumour, and keep a gap to the other tree and to their own tree, so the two trees
never touch: a seeded region growing of one does not leak into the other.

References
----------
Murray's law for the radii, ``r0^3 = r1^3 + r2^3`` (C. D. Murray, PNAS 12:207, 1926), and the
optimal branching angles ``cos t1 = (r0^4 + r1^4 - r2^4) / (2 r0^2 r1^2)`` (Murray, J Gen Physiol
9:835, 1926; M. Zamir, J Gen Physiol 72:837, 1978).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgplan.phantom.anatomy import Anatomy
from surgplan.phantom.sdf import Segment

PORTAL_ROOTS = (
    # main portal vein from the confluence to the hilum, then right and left portal veins
    Segment((-12.0, -36.0, -858.0), (-40.0, -28.0, -814.0), 7.0, 6.5),
    Segment((-40.0, -28.0, -814.0), (-62.0, -10.0, -808.0), 5.8, 5.5),
    Segment((-40.0, -28.0, -814.0), (-24.0, -48.0, -798.0), 5.0, 4.7),
)
HEPATIC_ROOTS = (
    # right, middle and left hepatic veins from the vena cava (x = -25, y = -4) into the liver
    Segment((-25.0, -4.0, -747.0), (-60.0, -10.0, -768.0), 6.5, 6.0),
    Segment((-25.0, -4.0, -748.0), (-40.0, -36.0, -770.0), 5.5, 5.1),
    Segment((-22.0, -6.0, -747.0), (-2.0, -36.0, -760.0), 5.0, 4.7),
)
RIM_MM = 2.0
"""Minimum parenchyma between a grown branch and the liver surface, mm."""
TUMOUR_CLEARANCE_MM = 4.0
"""Minimum gap between a grown branch and the tumour, mm."""
OTHER_TREE_GAP_MM = 3.5
"""Minimum gap between the portal and hepatic trees, mm."""
OWN_TREE_GAP_MM = 1.5
"""Minimum gap between non-adjacent branches of one tree, mm."""
TAPER = 0.95
"""Radius ratio end/start of one segment."""


@dataclass(frozen=True)
class VesselTrees:
    """The two hepatic vessel trees as tube segments (LPS mm).

    Attributes
    ----------
    portal
        Portal vein segments; the first one is the extrahepatic trunk.
    hepatic
        Hepatic vein segments; the first three are the right, middle and left roots.
    """

    portal: list[Segment]
    hepatic: list[Segment]


class _Occupancy:
    """Sample points along accepted segments with their radius and tree index."""

    def __init__(self) -> None:
        self.points = np.zeros((0, 3))
        self.radii = np.zeros(0)
        self.tree = np.zeros(0, dtype=np.int64)

    def add(self, seg: Segment, tree: int) -> None:
        pts, radii = _samples(seg)
        self.points = np.vstack([self.points, pts])
        self.radii = np.concatenate([self.radii, radii])
        self.tree = np.concatenate([self.tree, np.full(len(radii), tree)])


def _samples(seg: Segment, step_mm: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Points along the segment axis (``(n, 3)``, mm) and the radius there (``(n,)``, mm)."""
    a, b = np.asarray(seg.start_mm), np.asarray(seg.end_mm)
    n = max(int(np.ceil(np.linalg.norm(b - a) / step_mm)) + 1, 2)
    t = np.linspace(0.0, 1.0, n)
    pts = a + t[:, None] * (b - a)
    radii = seg.radius_start_mm + t * (seg.radius_end_mm - seg.radius_start_mm)
    return pts, radii


def _murray_children(radius_mm: float, ratio: float) -> tuple[float, float, float, float]:
    """Child radii (larger first) and their optimal angles (rad) to the parent's direction."""
    r1 = radius_mm / (1.0 + ratio**3) ** (1.0 / 3.0)  # Murray: r0^3 = r1^3 + r2^3
    r2 = ratio * r1
    r0 = radius_mm

    def angle(ra: float, rb: float) -> float:
        cos_t = (r0**4 + ra**4 - rb**4) / (2.0 * r0**2 * ra**2)
        return float(np.arccos(np.clip(cos_t, -1.0, 1.0)))

    return r1, r2, angle(r1, r2), angle(r2, r1)


def _perpendicular(direction: np.ndarray, psi: float) -> np.ndarray:
    """Unit vector perpendicular to ``direction`` at azimuth ``psi`` (rad)."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(direction, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(direction, e1)
    return np.cos(psi) * e1 + np.sin(psi) * e2


def _choose(
    anatomy: Anatomy,
    occupancy: _Occupancy,
    tree: int,
    start: np.ndarray,
    directions: np.ndarray,
    length_mm: float,
    radius_mm: float,
    rng: np.random.Generator,
) -> Segment | None:
    """The best valid candidate segment among ``directions`` (``(k, 3)``), or ``None``."""
    radius_end = radius_mm * TAPER
    n = max(int(np.ceil(length_mm / 1.5)) + 1, 3)
    t = np.linspace(0.0, 1.0, n)
    pts = start + directions[:, None, :] * (t[None, :, None] * length_mm)  # (k, n, 3)
    radii = radius_mm + t * (radius_end - radius_mm)  # (n,)
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    depth = -anatomy.liver(x, y, z) - radii  # parenchyma between wall and surface
    tumour_gap = anatomy.tumour(x, y, z) - radii
    ok = (depth.min(axis=1) >= RIM_MM) & (tumour_gap.min(axis=1) >= TUMOUR_CLEARANCE_MM)
    from_start = np.linalg.norm(occupancy.points - start, axis=1)
    reach = length_mm + radius_mm + OTHER_TREE_GAP_MM + 8.0  # 8 mm: the thickest radius
    close = from_start < reach
    if close.any():
        q_pts, q_radii = occupancy.points[close], occupancy.radii[close]
        # Ignore the junction: samples closer to the start than the radius plus 6 mm.
        far = np.linalg.norm(pts - start, axis=-1) > radius_mm + 6.0  # (k, n)
        diff = pts[:, :, None, :] - q_pts[None, None, :, :]
        gap = np.linalg.norm(diff, axis=-1) - radii[None, :, None] - q_radii
        near_start = from_start[close] < radius_mm + 6.0
        own = occupancy.tree[close] == tree
        need = np.where(own, OWN_TREE_GAP_MM, OTHER_TREE_GAP_MM)
        clash_other = ((gap < need) & ~own).any(axis=2).any(axis=1)
        own_far = own & ~near_start
        clash_own = ((gap < need) & own_far & far[:, :, None]).any(axis=2).any(axis=1)
        ok &= ~clash_other & ~clash_own
    if not ok.any():
        return None
    score = np.minimum(depth.min(axis=1), 12.0) + rng.uniform(0.0, 6.0, size=len(directions))
    best = int(np.argmax(np.where(ok, score, -np.inf)))
    end = start + directions[best] * length_mm
    return Segment(tuple(start.tolist()), tuple(end.tolist()), float(radius_mm), float(radius_end))


def grow_vessel_trees(
    anatomy: Anatomy,
    *,
    seed: int,
    radius_min_mm: float = 2.0,
    max_segments_per_tree: int = 400,
) -> VesselTrees:
    """Grow the portal and hepatic vein trees from their fixed roots (deterministic per seed).

    Parameters
    ----------
    anatomy
        Liver and tumour shapes the trees must respect.
    seed
        Seed of the branching randomness.
    radius_min_mm
        Branches thinner than this (mm) are not grown.
    max_segments_per_tree
        Upper bound on the segments of each tree.

    Returns
    -------
    VesselTrees
        The segments of both trees.
    """
    rng = np.random.default_rng([seed, 2])
    occupancy = _Occupancy()
    trees: list[list[Segment]] = [list(PORTAL_ROOTS), list(HEPATIC_ROOTS)]
    # Each queue entry: (tree index, end point, direction, radius at the end, generation).
    queue: list[tuple[int, np.ndarray, np.ndarray, float, int]] = []
    for index, roots in enumerate(trees):
        for k, seg in enumerate(roots):
            occupancy.add(seg, index)
            if index == 0 and k == 0:
                continue  # the portal trunk divides into the two explicit roots after it
            a, b = np.asarray(seg.start_mm), np.asarray(seg.end_mm)
            queue.append((index, b, (b - a) / np.linalg.norm(b - a), seg.radius_end_mm, 1))
    while queue:
        tree, start, direction, radius, generation = queue.pop(0)
        if len(trees[tree]) >= max_segments_per_tree:
            continue
        ratio = float(rng.uniform(0.4, 0.95))
        r1, r2, t1, t2 = _murray_children(radius, ratio)
        psi0 = float(rng.uniform(0.0, 2.0 * np.pi))
        for child_radius, theta, sign in ((r1, t1, 1.0), (r2, t2, -1.0)):
            if child_radius < radius_min_mm:
                continue
            length = float(np.clip(rng.uniform(3.5, 6.0) * child_radius, 7.0, 25.0))
            psis = psi0 + np.deg2rad(rng.uniform(-90.0, 90.0, size=16))
            thetas = theta + np.deg2rad(rng.uniform(-12.0, 12.0, size=16))
            perps = np.array([_perpendicular(direction, p) for p in psis])
            dirs = np.cos(thetas)[:, None] * direction + sign * np.sin(thetas)[:, None] * perps
            # Fallback: any direction within 80 degrees of the parent's, where there is room.
            psis_wide = rng.uniform(0.0, 2.0 * np.pi, size=24)
            thetas_wide = np.deg2rad(rng.uniform(10.0, 80.0, size=24))
            perps_wide = np.array([_perpendicular(direction, p) for p in psis_wide])
            dirs_wide = (
                np.cos(thetas_wide)[:, None] * direction + np.sin(thetas_wide)[:, None] * perps_wide
            )
            seg = None
            for candidates, scale in ((dirs, 1.0), (dirs, 0.6), (dirs_wide, 0.8), (dirs_wide, 0.5)):
                seg = _choose(
                    anatomy, occupancy, tree, start, candidates, length * scale, child_radius, rng
                )
                if seg is not None:
                    break
            if seg is None:
                continue
            seg = Segment(
                seg.start_mm, seg.end_mm, seg.radius_start_mm, seg.radius_end_mm, generation
            )
            trees[tree].append(seg)
            occupancy.add(seg, tree)
            end = np.asarray(seg.end_mm)
            queue.append(
                (
                    tree,
                    end,
                    (end - start) / np.linalg.norm(end - start),
                    seg.radius_end_mm,
                    generation + 1,
                )
            )
    return VesselTrees(portal=trees[0], hepatic=trees[1])
