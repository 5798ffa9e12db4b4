"""Virtual patients: the real liver deformed by full FE solves under intraoperative loads.

The ground truth of the twin's evaluation. :func:`make_virtual_patients` meshes the real liver
(``liver.vtk``, its largest component, with ``liver_tumours.vtk`` inside), holds it with the
documented supports of :mod:`surgplan.liver_defaults` and solves, in full (linear elasticity,
P1, DOLFINx; not the reduced model), load cases that the reduced model of
``surgplan rom CASE`` was *not* built from:

- ``lobe lift``: a rigid retractor blade (uniform Dirichlet patch, 15-25 mm) lifts the edge of
  a lobe (an inferior- or anterior-facing surface point at least 60 mm from the vena-cava
  anchor) by 15-25 mm anteriorly and cranially (within 25 degrees of LPS (0, -1, 1)/sqrt 2);
  the reduced model only knows a spring retractor;
- ``packing``: a blade pushes the surface inward (along the inward normal) by 10-20 mm;
- ``tilt``: the gravity change of repositioning, head-up 10-30 degrees and left/right down up to
  30 degrees (:func:`biomech.rom.gravity_change_lps`);
- ``insufflation``: 1.2-2.0 kPa (9-15 mmHg) on the exposed surface;
- ``ligaments released``: the isotropic ligament springs removed and the sliding bed at half
  stiffness (supports the reduced model was not built with);

and combinations of them (see :data:`KINDS`, cycled in order). Every patient also has its own
Young's modulus, 0.8-1.25 x the healthy liver's. Linear elasticity makes the displacement
proportional to the load: when a patient's largest surface displacement falls outside
``[MIN_MAX_MM, MAX_MAX_MM]`` = 10-40 mm, all its loads are scaled so that it lands inside, and
the description says so.

Targets (undeformed and deformed, mm): the tumour centroid (volume centroid of the FE tumour
region) and :data:`N_VESSEL_POINTS` named points on the portal vein and on the hepatic veins,
inside the liver and at least :data:`TARGET_DEPTH_MM` from its surface (farthest-point
samples). The deformed liver surface is given on the vertices of ``liver.vtk``'s largest
component in their original order (P1 interpolation of the FE field, nearest cell just
outside). Everything is deterministic per seed; :func:`save_virtual_patients` /
:func:`load_virtual_patients` keep them as one ``.npz``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv

from surgplan.atomic import atomic_path
from surgplan.errors import SurgplanError

__all__ = [
    "KINDS",
    "VirtualPatient",
    "VirtualPatientError",
    "load_virtual_patients",
    "make_virtual_patients",
    "save_virtual_patients",
]

#: Load kinds, cycled in this order over the patients.
KINDS: tuple[tuple[str, ...], ...] = (
    ("lobe lift", "tilt"),
    ("ligaments released", "tilt"),
    ("insufflation", "packing"),
    ("tilt",),
    ("lobe lift",),
    ("packing", "tilt", "insufflation"),
    ("ligaments released", "lobe lift"),
)
#: Range of the largest surface displacement of a virtual patient, mm.
MIN_MAX_MM, MAX_MAX_MM = 10.0, 40.0
#: Named points per vessel tree, and their smallest depth below the liver surface, mm.
N_VESSEL_POINTS = 4
TARGET_DEPTH_MM = 5.0
#: Smallest distance of a retractor site from the vena-cava anchor, mm.
SITE_FROM_ANCHOR_MM = 60.0


class VirtualPatientError(SurgplanError):
    """Virtual patients cannot be made or read (missing data, bad file, bad argument)."""


@dataclass(frozen=True)
class VirtualPatient:
    """One virtual patient: loads, deformed liver surface and deformed targets (mm).

    Attributes
    ----------
    name : str
        ``vp000``, ``vp001``...
    load : str
        The loads in words (kinds, magnitudes, scaling).
    load_parameters : Mapping[str, Any]
        The same as JSON-ready numbers: kinds, retractor ``patch_centre_mm`` /
        ``patch_radius_mm`` / ``displacement_mm``, ``gravity_change_g``, ``pressure_kpa``,
        ``youngs_modulus_factor``, ``load_scale``.
    surface_mm : numpy.ndarray
        (V, 3) deformed vertices of ``liver.vtk``'s largest component (original order).
    faces : numpy.ndarray
        (F, 3) its triangles.
    targets_undeformed_mm, targets_mm : Mapping[str, numpy.ndarray]
        Target name -> (3,) position before and after the deformation.
    max_displacement_mm : float
        Largest surface displacement.
    solve_s : float
        Wall time of the FE solve, s.
    """

    name: str
    load: str
    load_parameters: Mapping[str, Any]
    surface_mm: np.ndarray
    faces: np.ndarray
    targets_undeformed_mm: Mapping[str, np.ndarray]
    targets_mm: Mapping[str, np.ndarray]
    max_displacement_mm: float
    solve_s: float = field(default=0.0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Headline numbers (the benchmark's JSON row)."""
        return {
            "name": self.name,
            "load": self.load,
            "max_displacement_mm": self.max_displacement_mm,
            "target_displacement_mm": {
                k: float(np.linalg.norm(self.targets_mm[k] - self.targets_undeformed_mm[k]))
                for k in self.targets_mm
            },
            "solve_s": self.solve_s,
        }


@dataclass(frozen=True)
class _Liver:
    """The meshed liver and everything the load cases and targets need (mm)."""

    fe: Any
    grid: pv.UnstructuredGrid
    regions: dict[str, int]
    supports: tuple[Any, ...]
    released: tuple[Any, ...]
    surface_ids: np.ndarray
    surface: pv.PolyData
    faces: np.ndarray
    sites: np.ndarray
    site_normals: np.ndarray
    exposed: Any
    targets: dict[str, np.ndarray]


def _largest_component(liver: pv.PolyData) -> tuple[np.ndarray, np.ndarray]:
    """Point ids (original order) and remapped triangles of the largest connected piece.

    Connected components of the triangle graph (scipy), so the input's point order is kept.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    tri = np.asarray(liver.triangulate().faces).reshape(-1, 4)[:, 1:]
    e = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    n = liver.n_points
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    used = np.zeros(n, bool)
    used[tri.ravel()] = True
    big = np.bincount(label[used]).argmax()
    ids = np.flatnonzero((label == big) & used)
    inv = np.full(n, -1)
    inv[ids] = np.arange(ids.size)
    keep = label[tri[:, 0]] == big
    return ids, inv[tri[keep]]


def _vessel_targets(
    name: str, vessel: pv.PolyData, fe: Any, boundary: np.ndarray
) -> dict[str, np.ndarray]:
    from scipy.spatial import cKDTree

    from biomech.geometry import inside_mesh
    from registration import farthest_point_sample

    pts = np.asarray(vessel.points, float)
    depth, _ = cKDTree(boundary).query(pts)
    ok = pts[inside_mesh(fe, pts) & (depth >= TARGET_DEPTH_MM)]
    if len(ok) < N_VESSEL_POINTS:
        raise VirtualPatientError(f"{name}: fewer than {N_VESSEL_POINTS} points inside the liver")
    idx = farthest_point_sample(ok, N_VESSEL_POINTS, start=ok.mean(axis=0))
    return {f"{name}_{i + 1}": ok[j] for i, j in enumerate(idx)}


def _mesh_liver(src: Path, edge_mm: float) -> _Liver:
    from scipy.spatial import cKDTree

    from biomech.geometry import boundary_facets_mm
    from biomech.loads import NearPoints, selector_mask
    from biomech.mesh import from_unstructured_grid
    from imaging.mesh_io import read_surface
    from imaging.volume_mesh import tetrahedralize
    from surgplan.liver_defaults import (
        BED_NORMAL_KPA_PER_MM,
        default_liver_supports,
    )

    for f in ("liver.vtk", "liver_tumours.vtk", "portal_vein.vtk", "hepatic_veins.vtk"):
        if not (src / f).is_file():
            raise VirtualPatientError(f"liver model file missing: {src / f}")
    liver = read_surface(src / "liver.vtk")
    ids, faces = _largest_component(liver)
    surfaces = {"liver": liver, "tumour": read_surface(src / "liver_tumours.vtk")}
    vm = tetrahedralize(surfaces, outer="liver", inner=["tumour"], target_edge_mm=edge_mm)
    fe = from_unstructured_grid(vm.grid, region_names=vm.regions)
    veins = read_surface(src / "hepatic_veins.vtk")
    supports, _ = default_liver_supports(fe, {"hepatic_veins": veins})
    released, _ = default_liver_supports(
        fe, {"hepatic_veins": veins}, bed_normal_kpa_per_mm=BED_NORMAL_KPA_PER_MM / 2,
        bed_tangential_kpa_per_mm=0.0,
    )  # fmt: skip
    _, mid, nrm = boundary_facets_mm(fe)
    held = np.zeros(len(mid), bool)
    for sp in supports:
        held |= selector_mask(sp.region, mid)
    anchor = np.asarray(supports[0].region.points_mm)
    d_anchor, _ = cKDTree(anchor).query(mid)
    site = ((nrm[:, 2] < -0.3) | (nrm[:, 1] < -0.5)) & ~held & (d_anchor >= SITE_FROM_ANCHOR_MM)
    if not site.any():
        raise VirtualPatientError("no exposed inferior/anterior surface for a retractor")
    grid = vm.grid
    tum = grid.extract_cells(np.flatnonzero(grid.cell_data["region"] == vm.regions["tumour"]))
    vol = tum.compute_cell_sizes(length=False, area=False)["Volume"]
    targets = {"tumour_centroid": (tum.cell_centers().points * vol[:, None]).sum(0) / vol.sum()}
    boundary = np.asarray(vm.boundary.points, float)
    targets |= _vessel_targets("portal_vein", read_surface(src / "portal_vein.vtk"), fe, boundary)
    targets |= _vessel_targets("hepatic_vein", veins, fe, boundary)
    return _Liver(
        fe=fe, grid=grid, regions=dict(vm.regions), supports=supports, released=released,
        surface_ids=ids, surface=liver, faces=faces, sites=mid[site],
        site_normals=nrm[site], exposed=NearPoints(mid[~held], 1e-3), targets=targets,
    )  # fmt: skip


def _rotate_within(rng: np.random.Generator, axis: np.ndarray, max_deg: float) -> np.ndarray:
    """A unit vector within ``max_deg`` of ``axis`` (uniform angle, random azimuth)."""
    a = axis / np.linalg.norm(axis)
    t = np.cross(a, rng.normal(size=3))
    t /= np.linalg.norm(t)
    ang = np.radians(rng.uniform(0.0, max_deg))
    return np.cos(ang) * a + np.sin(ang) * t


def _load_case(
    liver: _Liver, kinds: Sequence[str], rng: np.random.Generator
) -> tuple[Any, dict[str, Any], list[str]]:
    """The FE load case of one patient, its numbers and its words."""
    from biomech.loads import Gravity, LoadCase, PrescribedDisplacement, Pressure, SphereRegion
    from biomech.rom import GRAVITY_M_S2, gravity_change_lps

    prm: dict[str, Any] = {"kinds": list(kinds)}
    words: list[str] = []
    disp, pressures, gravity = [], [], None
    if "lobe lift" in kinds or "packing" in kinds:
        i = int(rng.integers(len(liver.sites)))
        c, n = liver.sites[i], liver.site_normals[i]
        radius = float(rng.uniform(15.0, 25.0))
        if "lobe lift" in kinds:
            mag = float(rng.uniform(15.0, 25.0))
            d = mag * _rotate_within(rng, np.array([0.0, -1.0, 1.0]), 25.0)
            words.append(f"lobe lifted {mag:.0f} mm anterior-superior by a {radius:.0f} mm blade")
        else:
            mag = float(rng.uniform(10.0, 20.0))
            d = -mag * _rotate_within(rng, n, 20.0)
            words.append(f"surface packed {mag:.0f} mm inward by a {radius:.0f} mm blade")
        region = SphereRegion(tuple(float(v) for v in c), radius)
        disp.append(PrescribedDisplacement(region, tuple(d), profile="uniform", name="retractor"))
        prm |= {"patch_centre_mm": c.tolist(), "patch_radius_mm": radius,
                "displacement_mm": d.tolist()}  # fmt: skip
    if "tilt" in kinds:
        up, left = float(rng.uniform(10.0, 30.0)), float(rng.uniform(-30.0, 30.0))
        g = gravity_change_lps(up, left)
        gn = float(np.linalg.norm(g))
        gravity = Gravity(tuple(g / gn), GRAVITY_M_S2 * gn)
        prm["gravity_change_g"] = g.tolist()
        words.append(f"tilted {up:.0f} deg head-up, {left:+.0f} deg left-down")
    if "insufflation" in kinds:
        p = float(rng.uniform(1.2, 2.0))
        pressures.append(Pressure(liver.exposed, p, name="insufflation"))
        prm["pressure_kpa"] = p
        words.append(f"insufflation {p:.2f} kPa on the exposed surface")
    supports = liver.supports
    if "ligaments released" in kinds:
        supports = liver.released
        words.append("ligaments released (no ligament springs, bed at half stiffness)")
    return LoadCase(supports=supports, displacements=disp, pressures=pressures,
                    gravity=gravity), prm, words  # fmt: skip


def _solve(liver: _Liver, loads: Any, e_factor: float) -> tuple[pv.UnstructuredGrid, float]:
    from biomech.materials import LIVER_HEALTHY, TUMOUR
    from biomech.tissue import solve_tissue

    mats = {
        liver.regions["liver"]: replace(
            LIVER_HEALTHY, youngs_modulus_kpa=LIVER_HEALTHY.youngs_modulus_kpa * e_factor
        ),
        liver.regions["tumour"]: TUMOUR,
    }
    t = time.perf_counter()
    res = solve_tissue(liver.fe, mats, loads, degree=1)
    return res.to_pyvista(), time.perf_counter() - t


def _displacement_at(grid: pv.UnstructuredGrid, points: np.ndarray) -> np.ndarray:
    """P1 interpolation of the grid's ``displacement_mm`` at points (nearest cell outside)."""
    from biomech.rom import locate_p1

    tets = np.asarray(grid.cells_dict[pv.CellType.TETRA])
    loc = locate_p1(np.asarray(grid.points), tets, points)
    u = np.asarray(grid.point_data["displacement_mm"], float)
    return np.einsum("nj,njc->nc", loc.weights, u[tets[loc.cells]])


def make_virtual_patients(
    liver_models_dir: str | os.PathLike[str], n: int = 10, seed: int = 0, *,
    edge_mm: float = 6.0,
) -> list[VirtualPatient]:  # fmt: skip
    """Make ``n`` virtual patients from the real liver by full FE solves (module docstring).

    Parameters
    ----------
    liver_models_dir : path
        Folder with ``liver.vtk``, ``liver_tumours.vtk``, ``portal_vein.vtk``,
        ``hepatic_veins.vtk`` (mm).
    n : int
        Number of patients (>= 1); kinds cycle through :data:`KINDS`.
    seed : int
        Seed of every random choice (same seed, same patients).
    edge_mm : float
        Tetrahedron edge length of the FE mesh, mm.

    Raises
    ------
    VirtualPatientError
        A file is missing, ``n < 1``, or no target or retractor site can be placed.
    """
    if int(n) < 1:
        raise VirtualPatientError(f"n must be >= 1, got {n}")
    liver = _mesh_liver(Path(liver_models_dir), float(edge_mm))
    rng = np.random.default_rng(seed)
    x0 = np.asarray(liver.surface.points, float)[liver.surface_ids]
    names = list(liver.targets)
    t0 = np.array([liver.targets[k] for k in names])
    out = []
    for i in range(int(n)):
        kinds = KINDS[i % len(KINDS)]
        loads, prm, words = _load_case(liver, kinds, rng)
        e_factor = float(rng.uniform(0.8, 1.25))
        grid, dt = _solve(liver, loads, e_factor)
        u_s = _displacement_at(grid, x0)
        u_t = _displacement_at(grid, t0)
        peak = float(np.linalg.norm(u_s, axis=1).max())
        scale = 1.0
        if not MIN_MAX_MM <= peak <= MAX_MAX_MM:  # linear: u scales with every load
            scale = float(np.clip(peak, MIN_MAX_MM * 1.05, MAX_MAX_MM * 0.95) / peak)
            words.append(f"all loads scaled x{scale:.2f} to bring the peak into 10-40 mm")
        words.append(f"E x{e_factor:.2f}")
        prm |= {"youngs_modulus_factor": e_factor, "load_scale": scale}
        if "displacement_mm" in prm:
            prm["displacement_mm"] = (np.asarray(prm["displacement_mm"]) * scale).tolist()
        out.append(
            VirtualPatient(
                name=f"vp{i:03d}",
                load="; ".join(words),
                load_parameters=prm,
                surface_mm=x0 + scale * u_s,
                faces=liver.faces,
                targets_undeformed_mm={k: t0[j].copy() for j, k in enumerate(names)},
                targets_mm={k: t0[j] + scale * u_t[j] for j, k in enumerate(names)},
                max_displacement_mm=peak * scale,
                solve_s=dt,
            )
        )
    return out


def save_virtual_patients(patients: Sequence[VirtualPatient], path: str | os.PathLike[str]) -> Path:
    """Write patients to one ``.npz`` (atomic: temporary name, then rename)."""
    arrays: dict[str, np.ndarray] = {}
    index = []
    for i, p in enumerate(patients):
        arrays[f"p{i}_surface_mm"] = np.asarray(p.surface_mm, float)
        arrays[f"p{i}_targets_mm"] = np.array([p.targets_mm[k] for k in p.targets_mm])
        arrays[f"p{i}_targets_undeformed_mm"] = np.array(
            [p.targets_undeformed_mm[k] for k in p.targets_mm]
        )
        index.append({
            "name": p.name, "load": p.load, "load_parameters": dict(p.load_parameters),
            "targets": list(p.targets_mm), "max_displacement_mm": p.max_displacement_mm,
            "solve_s": p.solve_s,
        })  # fmt: skip
    if patients:
        arrays["faces"] = np.asarray(patients[0].faces, np.int64)
    arrays["index"] = np.array(json.dumps({"format": 1, "patients": index}))
    final = Path(path)
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return final


def load_virtual_patients(path: str | os.PathLike[str]) -> list[VirtualPatient]:
    """Read patients written by :func:`save_virtual_patients`.

    Raises
    ------
    VirtualPatientError
        The file is missing or not a virtual-patient file.
    """
    path = Path(path)
    if not path.is_file():
        raise VirtualPatientError(f"virtual-patient file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            index = json.loads(str(z["index"]))
            faces = z["faces"] if "faces" in z else np.zeros((0, 3), np.int64)
            out = []
            for i, row in enumerate(index["patients"]):
                t, t0 = z[f"p{i}_targets_mm"], z[f"p{i}_targets_undeformed_mm"]
                out.append(
                    VirtualPatient(
                        name=row["name"],
                        load=row["load"],
                        load_parameters=row["load_parameters"],
                        surface_mm=z[f"p{i}_surface_mm"],
                        faces=faces,
                        targets_undeformed_mm={k: t0[j] for j, k in enumerate(row["targets"])},
                        targets_mm={k: t[j] for j, k in enumerate(row["targets"])},
                        max_displacement_mm=float(row["max_displacement_mm"]),
                        solve_s=float(row["solve_s"]),
                    )  # fmt: skip
                )
            return out
    except (KeyError, ValueError, OSError) as exc:
        raise VirtualPatientError(f"{path} is not a virtual-patient file: {exc}") from None
