"""Calculation verification on this case's mesh: the default load on coarser and finer meshes.

The twin's quantities are the organ-surface displacement (what the sensor points see; here at
the case mesh's boundary vertices, which lie on every level's domain) and the tumour
displacement (what the surgeon is shown). Both come from linear P1 solves on the case's
volume mesh. Here the default load (:func:`default_load`: the reduced model's spring retractor
at the organ's most inferior point pushing :data:`~surgplan.case_rom.DEFAULT_PUSH_MM`
anterior-superior, a 15 degree head-up tilt and the default insufflation pressure, under the
documented liver supports) is solved on

- the case's own mesh (size ``h``: the mesh the twin is built on),
- two refined meshes (about ``h / 1.4`` and ``h / 2``, milder under a cap on the tetrahedra)
  of the same domain: the case mesh's
  boundary and tumour interface re-meshed by gmsh (:func:`imaging.tetrahedralize`), so only
  the discretisation changes.

The discretisation error of the case mesh's values follows from Richardson extrapolation
(:mod:`surgplan.credibility.gci`: the observed order of the three meshes, or the formal order 2
when convergence is not monotone). Vector fields (the displacement at each surface vertex and
at the tumour) take the order of their scalar series (tumour displacement magnitude; RMS
surface displacement), and the error at a point is ``|u_case - u_extrapolated|``. Each level's
element quality (:class:`imaging.mesh_quality.MeshQuality`) forms the mesh quality table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv
from numpy.typing import NDArray

from surgplan.case_files import read_case_surface, read_case_volume_mesh
from surgplan.credibility.gci import coarse_error

__all__ = ["CalculationVerification", "calculation_verification", "default_load"]

#: gmsh target sizes (MeshSizeMax) of the two refined meshes, as multiples of the case mesh's
#: mean edge over the refinement ratio ``r`` (fine) and its square root (medium): gmsh's mean edge
#: exceeds its target by 15-45 % on these organs, so ``r = 2`` gives about 1/2 and 1/1.4 of
#: the case mesh's size.
FINE_FACTOR, MEDIUM_FACTOR = 0.7, 0.78
#: Default refinement ratio of the finest mesh, and the smallest one allowed under a cap.
REFINEMENT, MIN_REFINEMENT = 2.0, 1.2
#: Head-up tilt of the default load, degrees.
TILT_DEG = 15.0
_LIFT = np.array([0.0, -1.0, 1.0]) / np.sqrt(2.0)


@dataclass(frozen=True)
class CalculationVerification:
    """Discretisation error of the twin's quantities on the case's mesh (mm).

    Attributes
    ----------
    levels : list of dict
        Per mesh (``case``, ``medium``, ``fine``): mean edge and representative size
        ``(V/N)^(1/3)`` (mm), tets, nodes, dofs, solve time (s), tumour displacement and RMS /
        max surface displacement (mm), and its element quality.
    tumour : dict
        The order used, whether observed, the extrapolated magnitude and the error of the
        case mesh's tumour displacement vector (mm).
    surface : dict
        The order used and the RMS and max over the surface of the case mesh's displacement
        error (mm).
    load : str
        The default load in words.
    notes : list of str
        What was assumed or could not be built.
    """

    levels: list[dict[str, Any]]
    tumour: dict[str, Any]
    surface: dict[str, Any]
    load: str
    notes: list[str]

    @property
    def tumour_error_mm(self) -> float:
        """Estimated discretisation error of the tumour displacement on the case mesh, mm."""
        return float(self.tumour["error_mm"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _mean_edge(grid: pv.UnstructuredGrid) -> float:
    tets = np.asarray(grid.cells_dict[pv.CellType.TETRA])
    p = np.asarray(grid.points, float)
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    return float(np.mean([np.linalg.norm(p[tets[:, i]] - p[tets[:, j]], axis=1) for i, j in pairs]))


def _size(grid: pv.UnstructuredGrid) -> float:
    """Representative size ``(V / N)^(1/3)``, mm (Celik et al. 2008)."""
    return float((grid.volume / grid.n_cells) ** (1.0 / 3.0))


def _domain_surfaces(grid: pv.UnstructuredGrid, regions: Mapping[str, int]) -> dict[str, Any]:
    """The case mesh's outer boundary and each inner region's interface, closed triangles."""
    outer = next(n for n, r in regions.items() if r == 1)
    surfaces = {outer: grid.extract_surface(algorithm="dataset_surface").triangulate().clean()}
    region = np.asarray(grid.cell_data["region"])
    for name, rid in regions.items():
        if rid != 1 and (region == rid).any():
            sub = grid.extract_cells(np.flatnonzero(region == rid))
            surfaces[name] = sub.extract_surface(algorithm="dataset_surface").triangulate().clean()
    return surfaces


def _materials(regions: Mapping[str, int]) -> dict[int, Any]:
    from biomech.materials import LIVER_HEALTHY, TUMOUR

    lesion = ("tumour", "tumor", "lesion", "metastasis")
    return {r: TUMOUR if any(w in n.lower() for w in lesion) else LIVER_HEALTHY
            for n, r in regions.items()}  # fmt: skip


def default_load(fe: Any, case_surfaces: Mapping[str, Any]) -> tuple[Any, str]:
    """The default load case on one FE mesh (module docstring) and its words."""
    from biomech.geometry import boundary_facets_mm
    from biomech.loads import NearPoints, selector_mask
    from biomech.rom import RomParameters, gravity_change_lps, load_case_for
    from surgplan.case_rom import DEFAULT_PATCH_RADIUS_MM, DEFAULT_PRESSURE_KPA, DEFAULT_PUSH_MM
    from surgplan.liver_defaults import default_liver_supports

    supports, choice = default_liver_supports(fe, case_surfaces)
    _, mid, _ = boundary_facets_mm(fe)
    held = np.zeros(len(mid), bool)
    for sp in supports:
        held |= selector_mask(sp.region, mid)
    centre = mid[np.argmin(mid[:, 2])]
    prm = RomParameters(
        tuple(float(c) for c in centre),
        tuple(float(c) for c in DEFAULT_PUSH_MM * _LIFT),
        tuple(float(c) for c in gravity_change_lps(TILT_DEG, 0.0)),
        DEFAULT_PRESSURE_KPA,
    )
    pressure = NearPoints(mid[~held], 1e-3) if (~held).any() else None
    loads = load_case_for(prm, supports, DEFAULT_PATCH_RADIUS_MM, pressure)
    words = (
        f"spring retractor ({DEFAULT_PATCH_RADIUS_MM:g} mm patch) at the most inferior boundary "
        f"point pushing {DEFAULT_PUSH_MM:g} mm anterior-superior, {TILT_DEG:g} deg head-up tilt, "
        f"{DEFAULT_PRESSURE_KPA:g} kPa insufflation on the exposed surface; {choice.text}"
    )
    return loads, words


def _solve_level(
    grid: pv.UnstructuredGrid, regions: Mapping[str, int], case_surfaces: Mapping[str, Any],
    points_mm: NDArray[np.float64],
) -> tuple[NDArray[np.float64], int, float, str]:  # fmt: skip
    from biomech.mesh import from_unstructured_grid
    from biomech.tissue import solve_tissue

    fe = from_unstructured_grid(grid, region_names=dict(regions))
    loads, words = default_load(fe, case_surfaces)
    t = time.perf_counter()
    res = solve_tissue(fe, _materials(regions), loads, degree=1)
    u = np.asarray(res.evaluate_displacement_mm(points_mm), float)
    return u, int(res.info.num_dofs), time.perf_counter() - t, words


def _remesh(
    surfaces: dict[str, Any], regions: Mapping[str, int], target_mm: float
) -> tuple[pv.UnstructuredGrid, dict[str, Any]]:
    from imaging import tetrahedralize

    outer = next(n for n, r in regions.items() if r == 1)
    inner = [n for n in surfaces if n != outer]
    vm = tetrahedralize(surfaces, outer=outer, inner=inner, target_edge_mm=target_mm)
    return vm.grid, asdict(vm.quality)


def _case_inputs(
    case_dir: Path,
) -> tuple[pv.UnstructuredGrid, dict[str, int], dict[str, Any], dict[str, Any]]:
    """The case's volume mesh, its regions, its surfaces' points and its stored mesh quality."""
    from surgplan.case import Case

    case = Case.open(case_dir)
    grid = read_case_volume_mesh(case)
    entry = case.manifest.volume_mesh
    regions = dict(entry.regions) if entry is not None else {}
    surfaces = {
        n: np.asarray(read_case_surface(case, n).points, float) for n in case.manifest.surfaces
    }
    quality = dict(entry.quality) if entry is not None else {}
    return grid, regions or {"liver": 1}, surfaces, quality


def refinement_ratio(n_tets: int, max_tets: int | None) -> float:
    """The finest mesh's size ratio: :data:`REFINEMENT`, less when ``max_tets`` caps it.

    Tetrahedra grow as ``r^3`` (gmsh meets the cap only roughly); the ratio never falls below
    :data:`MIN_REFINEMENT`, even when that exceeds the cap.
    """
    if max_tets is None:
        return REFINEMENT
    r = (max_tets / max(n_tets, 1)) ** (1.0 / 3.0)
    return float(min(REFINEMENT, max(MIN_REFINEMENT, r)))


def calculation_verification(
    case_dir: str | Path,
    tumour_mm: NDArray[np.float64],
    *,
    max_tets: int | None = None,
) -> CalculationVerification:
    """Solve the default load on the case mesh and two refinements of it (module docstring).

    Parameters
    ----------
    case_dir : path
        The case (with a volume mesh).
    tumour_mm : numpy.ndarray, shape (3,)
        The tumour target, mm.
    max_tets : int, optional, keyword-only
        Cap on the finest mesh's tetrahedra (a milder refinement than ``h / 2``, said).

    Raises
    ------
    surgplan.errors.CaseError
        The case or its volume mesh is missing.
    """
    grid, regions, case_surfaces, case_quality = _case_inputs(Path(case_dir))
    surface = grid.extract_surface(algorithm="dataset_surface")
    pts = np.vstack([np.asarray(surface.points, float), np.asarray(tumour_mm, float)[None]])
    edge = _mean_edge(grid)
    domain = _domain_surfaces(grid, regions)
    r = refinement_ratio(grid.n_cells, max_tets)
    meshes = {
        "case": (grid, case_quality),
        "medium": _remesh(domain, regions, MEDIUM_FACTOR * edge / np.sqrt(r)),
        "fine": _remesh(domain, regions, FINE_FACTOR * edge / r),
    }
    levels, fields, words = [], {}, ""
    for name, (g, quality) in meshes.items():
        u, dofs, solve_s, words = _solve_level(g, regions, case_surfaces, pts)
        fields[name] = u
        mag = np.linalg.norm(u[:-1], axis=1)
        levels.append({
            "level": name, "mean_edge_mm": _mean_edge(g), "h_mm": _size(g),
            "n_tets": int(g.n_cells), "n_nodes": int(g.n_points), "dofs": dofs,
            "solve_s": solve_s, "tumour_displacement_mm": float(np.linalg.norm(u[-1])),
            "surface_rms_displacement_mm": float(np.sqrt(np.mean(mag**2))),
            "surface_max_displacement_mm": float(mag.max()), "quality": quality,
        })  # fmt: skip
    tumour, surface = _estimates(levels, fields)
    notes = [f"{k} displacement: {d['note']}" for k, d in (("tumour", tumour),
             ("surface", surface)) if d["note"]]  # fmt: skip
    if r < REFINEMENT:
        notes.append(f"refinement capped near {max_tets} tetrahedra: finest mesh about h / {r:.2f}")
    return CalculationVerification(levels, tumour, surface, words, notes)


def _estimates(
    levels: list[dict[str, Any]], fields: dict[str, NDArray[np.float64]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Richardson error of the case mesh's tumour and surface displacements (mm)."""
    by = {lv["level"]: lv for lv in levels}
    order = ("fine", "medium", "case")
    sizes = tuple(by[k]["h_mm"] for k in order)

    def series(key: str) -> tuple[float, float, float]:
        return tuple(float(by[k][key]) for k in order)  # type: ignore[return-value]

    rt = coarse_error(tuple(fields[k][-1] for k in order), sizes,
                      series("tumour_displacement_mm"))  # fmt: skip
    rs = coarse_error(tuple(fields[k][:-1] for k in order), sizes,
                      series("surface_rms_displacement_mm"))  # fmt: skip
    e_s = np.linalg.norm(rs.error, axis=1)
    tumour = {
        "order": rt.order, "order_observed": rt.observed,
        "extrapolated_mm": float(np.linalg.norm(rt.extrapolated)),
        "error_mm": float(np.linalg.norm(rt.error)),
        "case_minus_fine_mm": float(np.linalg.norm(fields["case"][-1] - fields["fine"][-1])),
        "note": rt.note,
    }  # fmt: skip
    surface = {
        "order": rs.order, "order_observed": rs.observed,
        "error_rms_mm": float(np.sqrt(np.mean(e_s**2))), "error_max_mm": float(e_s.max()),
        "case_minus_fine_rms_mm": float(np.sqrt(np.mean(
            np.sum((fields["case"][:-1] - fields["fine"][:-1]) ** 2, axis=1)))),
        "note": rs.note,
    }  # fmt: skip
    return tumour, surface
