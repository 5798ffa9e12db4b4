"""Virtual patients of this case: its own mesh deformed by full FE under held-out loads.

The validation truth of :mod:`surgplan.credibility.validation`. The loads are those of
:mod:`surgplan.virtual_patients` (lobe lift and packing by a rigid blade, tilt, insufflation,
ligaments released, and their combinations, cycled through
:data:`surgplan.virtual_patients.KINDS`; Young's modulus 0.8-1.25 x; peak surface displacement
scaled into 10-40 mm): physics the case's reduced model was not built from (it knows a spring
retractor, the nominal stiffness and the nominal supports). They are solved in full (linear
elasticity, P1) on the case's volume mesh, and the deformed organ surface is given on the
twin's own surface vertices (:func:`surgplan.twin.case_twin.load_case_model`), its targets
those of the twin, so :func:`surgplan.twin_study.run_twin_trial` can score the twin on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from surgplan.case_files import read_case_surface, read_case_volume_mesh
from surgplan.credibility.errors import CredibilityError

__all__ = ["case_virtual_patients"]

#: Blade sites: at least this far from the vascular anchor (as :mod:`surgplan.virtual_patients`),
#: else the farthest :data:`FALLBACK_SITE_SHARE` of the free surface.
SITE_FROM_ANCHOR_MM = 60.0
FALLBACK_SITE_SHARE = 0.3


@dataclass(frozen=True)
class _Organ:
    """What :func:`surgplan.virtual_patients._load_case` reads: sites, supports, exposed surface."""

    supports: tuple[Any, ...]
    released: tuple[Any, ...]
    sites: np.ndarray
    site_normals: np.ndarray
    exposed: Any


def _organ(fe: Any, case_surfaces: dict[str, Any]) -> _Organ:
    from scipy.spatial import cKDTree

    from biomech.geometry import boundary_facets_mm
    from biomech.loads import NearPoints, selector_mask
    from surgplan.liver_defaults import BED_NORMAL_KPA_PER_MM, default_liver_supports

    supports, _ = default_liver_supports(fe, case_surfaces)
    released, _ = default_liver_supports(
        fe, case_surfaces, bed_normal_kpa_per_mm=BED_NORMAL_KPA_PER_MM / 2,
        bed_tangential_kpa_per_mm=0.0,
    )  # fmt: skip
    _, mid, nrm = boundary_facets_mm(fe)
    held = np.zeros(len(mid), bool)
    for sp in supports:
        held |= selector_mask(sp.region, mid)
    if held.all():
        raise CredibilityError("the liver supports cover the whole surface: no retractor site")
    d_anchor, _ = cKDTree(np.asarray(supports[0].region.points_mm)).query(mid)
    facing = (nrm[:, 2] < -0.3) | (nrm[:, 1] < -0.5)
    site = facing & ~held & (d_anchor >= SITE_FROM_ANCHOR_MM)
    if not site.any():
        free = np.flatnonzero(~held)
        far = free[d_anchor[free] >= np.quantile(d_anchor[free], 1.0 - FALLBACK_SITE_SHARE)]
        site = np.zeros(len(mid), bool)
        site[far] = True
    return _Organ(supports, released, mid[site], nrm[site], NearPoints(mid[~held], 1e-3))


def _materials(regions: dict[str, int], e_factor: float) -> dict[int, Any]:
    from biomech.materials import LIVER_HEALTHY, TUMOUR

    lesion = ("tumour", "tumor", "lesion", "metastasis")
    liver = replace(LIVER_HEALTHY, youngs_modulus_kpa=LIVER_HEALTHY.youngs_modulus_kpa * e_factor)
    return {r: TUMOUR if any(w in n.lower() for w in lesion) else liver
            for n, r in regions.items()}  # fmt: skip


def case_virtual_patients(
    case_dir: str | Path, n: int, seed: int = 0, *, structure: str = "liver"
) -> list[Any]:
    """``n`` virtual patients on the case's mesh, surface and targets (module docstring).

    Parameters
    ----------
    case_dir : path
        A twin-ready case (``surgplan rom CASE`` without a scenario).
    n : int
        Number of patients (>= 1).
    seed : int
        Seed of every random choice.
    structure : str
        The organ.

    Returns
    -------
    list of surgplan.virtual_patients.VirtualPatient

    Raises
    ------
    CredibilityError
        ``n < 1`` or no retractor site.
    surgplan.twin.TwinError, surgplan.errors.CaseError
        The case has no (matching) reduced model, surface or volume mesh.
    """
    from biomech.mesh import from_unstructured_grid
    from biomech.tissue import solve_tissue
    from surgplan.case import Case
    from surgplan.twin.case_twin import load_case_model
    from surgplan.virtual_patients import KINDS, MAX_MAX_MM, MIN_MAX_MM, VirtualPatient, _load_case

    if int(n) < 1:
        raise CredibilityError(f"the number of validation patients must be >= 1, got {n}")
    model = load_case_model(case_dir, structure=structure)
    case = Case.open(case_dir)
    grid = read_case_volume_mesh(case)
    regions = dict(case.manifest.volume_mesh.regions)  # type: ignore[union-attr]
    fe = from_unstructured_grid(grid, region_names=regions)
    surfaces = {m: np.asarray(read_case_surface(case, m).points, float)
                for m in case.manifest.surfaces}  # fmt: skip
    organ = _organ(fe, surfaces)
    names = list(model.targets_mm)
    x0 = np.asarray(model.vertices_mm, float)
    t0 = np.array([model.targets_mm[k] for k in names]).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(int(n)):
        kinds = KINDS[i % len(KINDS)]
        loads, prm, words = _load_case(organ, kinds, rng)  # type: ignore[arg-type]
        e_factor = float(rng.uniform(0.8, 1.25))
        t = time.perf_counter()
        res = solve_tissue(fe, _materials(regions, e_factor), loads, degree=1)
        u = np.asarray(res.evaluate_displacement_mm(np.vstack([x0, t0])), float)
        solve_s = time.perf_counter() - t
        u_s, u_t = u[: len(x0)], u[len(x0) :]
        peak = float(np.linalg.norm(u_s, axis=1).max())
        scale = 1.0
        if not MIN_MAX_MM <= peak <= MAX_MAX_MM:  # linear: u scales with every load
            scale = float(np.clip(peak, MIN_MAX_MM * 1.05, MAX_MAX_MM * 0.95) / peak)
            words.append(f"all loads scaled x{scale:.2f} to bring the peak into 10-40 mm")
        words.append(f"E x{e_factor:.2f}")
        prm |= {"youngs_modulus_factor": e_factor, "load_scale": scale}
        out.append(VirtualPatient(
            name=f"vp{i:03d}", load="; ".join(words), load_parameters=prm,
            surface_mm=x0 + scale * u_s, faces=np.asarray(model.faces, np.int64),
            targets_undeformed_mm={k: t0[j].copy() for j, k in enumerate(names)},
            targets_mm={k: t0[j] + scale * u_t[j] for j, k in enumerate(names)},
            max_displacement_mm=peak * scale, solve_s=solve_s,
        ))  # fmt: skip
    return out
