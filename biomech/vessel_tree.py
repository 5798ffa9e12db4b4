"""Blood flow through a vessel tree (a 1-D network of straight segments).

Flow through a tree of straight segments is Hagen-Poiseuille in each segment,

    Q = (p_in - p_out) / R,   R = 8 mu L / (pi r^4)               (Hagen-Poiseuille)

with mass conservation at every junction (Kirchhoff's current law) and a terminal resistance
to the outlet (venous) pressure at every outlet. Clamping a segment removes it (R -> inf).
Units: mm, kPa, mL/s; viscosity in Pa s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from biomech.errors import BiomechError

BLOOD_VISCOSITY_PA_S = 3.5e-3
"""Dynamic viscosity of whole blood at high shear rate, 3.5 mPa s (Pedley 1980)."""

_MM3_PER_ML = 1.0e3


class VesselTreeError(BiomechError):
    """A vessel tree is malformed (bad radii, unknown nodes, no outlet)."""


@dataclass
class VesselTree:
    """A tree (or any network) of straight centreline segments.

    Parameters
    ----------
    nodes_mm : numpy.ndarray
        (N, 3) centreline node positions in mm.
    segments : numpy.ndarray
        (M, 2) node indices of each segment (flow is positive from column 0 to column 1).
    radii_mm : numpy.ndarray
        (M,) lumen radius of each segment in mm.
    inlet : int
        Node index of the inlet.
    outlets : dict[int, float]
        Outlet node -> terminal resistance in kPa s / mL.
    """

    nodes_mm: np.ndarray
    segments: np.ndarray
    radii_mm: np.ndarray
    inlet: int
    outlets: dict[int, float]
    lengths_mm: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.nodes_mm = np.asarray(self.nodes_mm, dtype=float)
        self.segments = np.asarray(self.segments, dtype=np.int64)
        self.radii_mm = np.asarray(self.radii_mm, dtype=float)
        n = self.nodes_mm.shape[0]
        if self.segments.ndim != 2 or self.segments.shape[1] != 2:
            raise VesselTreeError(f"segments must be (M, 2), got {self.segments.shape}")
        if self.segments.size and (self.segments.min() < 0 or self.segments.max() >= n):
            raise VesselTreeError(f"segment node index outside 0..{n - 1}")
        if self.radii_mm.shape != (self.segments.shape[0],) or np.any(~(self.radii_mm > 0)):
            raise VesselTreeError(f"radii_mm must be {self.segments.shape[0]} values > 0 mm")
        if not 0 <= self.inlet < n:
            raise VesselTreeError(f"inlet node {self.inlet} outside 0..{n - 1}")
        if not self.outlets:
            raise VesselTreeError("vessel tree has no outlet")
        for node, r in self.outlets.items():
            if not 0 <= node < n or not r > 0:
                raise VesselTreeError(f"outlet {node}: node must exist and resistance be > 0")
        if self.lengths_mm is None:
            d = self.nodes_mm[self.segments[:, 1]] - self.nodes_mm[self.segments[:, 0]]
            self.lengths_mm = np.linalg.norm(d, axis=1)
        self.lengths_mm = np.asarray(self.lengths_mm, dtype=float)
        if np.any(~(self.lengths_mm > 0)):
            raise VesselTreeError("every segment must have a length > 0 mm")

    def resistances_kpa_s_ml(self, viscosity_pa_s: float = BLOOD_VISCOSITY_PA_S) -> np.ndarray:
        """Hagen-Poiseuille resistance R = 8 mu L / (pi r^4) of every segment, kPa s / mL."""
        mu_kpa_s = viscosity_pa_s * 1e-3
        r_mm3 = 8.0 * mu_kpa_s * self.lengths_mm / (np.pi * self.radii_mm**4)  # kPa s / mm^3
        return r_mm3 * _MM3_PER_ML


@dataclass
class FlowResult:
    """Pressures and flows in a vessel tree.

    Attributes
    ----------
    pressure_kpa : numpy.ndarray
        (N,) node pressures in kPa (NaN for nodes cut off from inlet and outlets).
    flow_ml_s : numpy.ndarray
        (M,) segment flow in mL/s, positive from ``segments[:, 0]`` to ``segments[:, 1]``.
    wall_shear_stress_pa : numpy.ndarray
        (M,) Poiseuille wall shear stress tau = 4 mu Q / (pi r^3) in Pa.
    inlet_flow_ml_s : float
        Total flow entering at the inlet, mL/s.
    outlet_flow_ml_s : dict[int, float]
        Flow leaving through each outlet, mL/s.
    """

    pressure_kpa: np.ndarray
    flow_ml_s: np.ndarray
    wall_shear_stress_pa: np.ndarray
    inlet_flow_ml_s: float
    outlet_flow_ml_s: dict[int, float] = field(default_factory=dict)


def _network_laplacian(tree: VesselTree, conductance: np.ndarray) -> sp.csr_matrix:
    """Weighted graph Laplacian (Kirchhoff's current law) of the tree plus a ground node.

    Node ``n`` (one past the tree's nodes) is the ground every outlet's terminal resistance
    drains to; ``conductance`` (mL / (s kPa), zero for a clamped segment) weights the segments.
    """
    n = tree.nodes_mm.shape[0]
    i = [*tree.segments[:, 0].tolist(), *tree.outlets.keys()]
    j = [*tree.segments[:, 1].tolist(), *([n] * len(tree.outlets))]
    gv = np.concatenate([conductance, [1.0 / r for r in tree.outlets.values()]])
    keep = gv > 0
    i, j, gv = np.asarray(i)[keep], np.asarray(j)[keep], gv[keep]
    lap = sp.coo_matrix((gv, (i, j)), shape=(n + 1, n + 1)).tocsr()
    lap = lap + lap.T
    return (sp.diags(np.asarray(lap.sum(axis=1)).ravel()) - lap).tocsr()


def _node_pressures(lap: sp.csr_matrix, fixed: dict[int, float]) -> np.ndarray:
    """Pressures (kPa) of every node given the pressure-fixed ones; NaN where cut off.

    Nodes in a connected component without a pressure-fixed node (behind a clamp) have no
    defined pressure and get NaN.
    """
    size = lap.shape[0]
    _, labels = csgraph.connected_components(abs(lap) > 0, directed=False)
    live_labels = {labels[k] for k in fixed}
    live = np.array([labels[k] in live_labels for k in range(size)])
    p = np.full(size, np.nan)
    for k, val in fixed.items():
        p[k] = val
    free = np.array([live[k] and k not in fixed for k in range(size)])
    if np.any(free):
        fix_idx = np.array(list(fixed))
        a = lap[free][:, free].tocsc()
        b = -lap[free][:, fix_idx] @ np.array([fixed[k] for k in fix_idx])
        p[free] = spla.spsolve(a, b)
    return p


def solve_flow(
    tree: VesselTree,
    *,
    inlet_pressure_kpa: float,
    outlet_pressure_kpa: float = 0.0,
    viscosity_pa_s: float = BLOOD_VISCOSITY_PA_S,
    clamped: Iterable[int] = (),
) -> FlowResult:
    """Steady flows and pressures in a vessel tree (Kirchhoff + Hagen-Poiseuille).

    Parameters
    ----------
    tree : VesselTree
        The network.
    inlet_pressure_kpa : float
        Pressure at the inlet node (kPa); 13.3 kPa is about 100 mmHg.
    outlet_pressure_kpa : float
        Pressure downstream of every terminal resistance (kPa).
    viscosity_pa_s : float
        Blood viscosity in Pa s.
    clamped : Iterable[int]
        Indices of clamped segments (no flow).

    Returns
    -------
    FlowResult
        Node pressures, segment flows and wall shear stresses.
    """
    if not viscosity_pa_s > 0:
        raise VesselTreeError(f"viscosity must be > 0 Pa s, got {viscosity_pa_s}")
    n = tree.nodes_mm.shape[0]
    m = tree.segments.shape[0]
    clamped_set = {int(c) for c in clamped}
    bad = [c for c in clamped_set if not 0 <= c < m]
    if bad:
        raise VesselTreeError(f"clamped segment(s) {bad} outside 0..{m - 1}")
    res = tree.resistances_kpa_s_ml(viscosity_pa_s)
    open_ = np.array([k not in clamped_set for k in range(m)])
    g = np.where(open_, 1.0 / res, 0.0)  # conductance, mL / (s kPa)
    lap = _network_laplacian(tree, g)
    ground = n  # the extra node of the outlet pressure
    p = _node_pressures(lap, {tree.inlet: inlet_pressure_kpa, ground: outlet_pressure_kpa})
    s0, s1 = tree.segments[:, 0], tree.segments[:, 1]
    flow = np.where(open_, (p[s0] - p[s1]) * g, 0.0)
    flow = np.nan_to_num(flow)
    mu = viscosity_pa_s
    r_m = tree.radii_mm * 1e-3
    wss = 4.0 * mu * (flow * 1e-6) / (np.pi * r_m**3)  # tau_w = 4 mu Q / (pi r^3)
    outlet_flow = {
        k: float(np.nan_to_num((p[k] - outlet_pressure_kpa) / r)) for k, r in tree.outlets.items()
    }
    return FlowResult(
        pressure_kpa=p[:n],
        flow_ml_s=flow,
        wall_shear_stress_pa=wss,
        inlet_flow_ml_s=float(sum(outlet_flow.values())),
        outlet_flow_ml_s=outlet_flow,
    )


def bifurcation_tree(
    *,
    parent_radius_mm: float = 3.0,
    daughter_radii_mm: Sequence[float] = (2.4, 2.0),
    lengths_mm: Sequence[float] = (40.0, 30.0, 25.0),
    outlet_resistances_kpa_s_ml: Sequence[float] = (2.0, 3.0),
) -> VesselTree:
    """A parent segment splitting into two daughters, each ending in a terminal resistance.

    Node 0 is the inlet, node 1 the bifurcation, nodes 2 and 3 the outlets; segment 0 is the
    parent, segments 1 and 2 the daughters.

    Parameters
    ----------
    parent_radius_mm : float
        Parent segment radius, mm.
    daughter_radii_mm : sequence of 2 floats
        Daughter radii, mm.
    lengths_mm : sequence of 3 floats
        Parent and daughter lengths, mm.
    outlet_resistances_kpa_s_ml : sequence of 2 floats
        Terminal resistances, kPa s / mL.
    """
    lp, l1, l2 = lengths_mm
    nodes = np.array(
        [[0.0, 0, 0], [lp, 0, 0], [lp + l1 * 0.8, l1 * 0.6, 0], [lp + l2 * 0.8, -l2 * 0.6, 0]]
    )
    return VesselTree(
        nodes_mm=nodes,
        segments=np.array([[0, 1], [1, 2], [1, 3]]),
        radii_mm=np.array([parent_radius_mm, *daughter_radii_mm]),
        inlet=0,
        outlets={2: outlet_resistances_kpa_s_ml[0], 3: outlet_resistances_kpa_s_ml[1]},
    )


def poiseuille_flow_rate_ml_s(
    radius_mm: float, pressure_gradient_kpa_per_mm: float, viscosity_pa_s: float
) -> float:
    """Hagen-Poiseuille flow rate Q = pi R^4 G / (8 mu) in mL/s (G = -dp/dz).

    Parameters
    ----------
    radius_mm : float
        Lumen radius R, mm.
    pressure_gradient_kpa_per_mm : float
        G = -dp/dz, kPa/mm.
    viscosity_pa_s : float
        Dynamic viscosity mu, Pa s.
    """
    g_pa_m = pressure_gradient_kpa_per_mm * 1e6
    r_m = radius_mm * 1e-3
    return np.pi * r_m**4 * g_pa_m / (8.0 * viscosity_pa_s) * 1e6


def poiseuille_wall_shear_stress_pa(radius_mm: float, pressure_gradient_kpa_per_mm: float) -> float:
    """Wall shear stress of Poiseuille flow, tau_w = G R / 2, in Pa.

    Parameters
    ----------
    radius_mm : float
        Lumen radius R, mm.
    pressure_gradient_kpa_per_mm : float
        G = -dp/dz, kPa/mm.
    """
    return pressure_gradient_kpa_per_mm * 1e6 * radius_mm * 1e-3 / 2.0
