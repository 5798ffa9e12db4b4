"""Which supports make the real liver move as a surgeon sees it: a 20 mm lobe lift, three ways.

The liver (``liver.vtk`` with ``liver_tumours.vtk`` inside, shared data) is tetrahedralised and a
retractor (20 mm patch) lifts the edge of the inferior lobe, at the most inferior boundary
point, by ``--lift-mm`` anterior-superior (LPS (0, -1, 1)/sqrt 2: towards the abdominal wall and
cranially, as a surgeon lifts the liver edge off the hilum of a supine patient):

- ``before: veins fixed, bump retractor`` (the demo before issue 15): every boundary facet
  within 5 mm of any point of ``hepatic_veins.vtk`` fixed and a Dirichlet "bump" retractor.
  The bump prescribes w(r) d on every facet of the patch, so its rim (w -> 0) is *clamped*: a
  ring of fixed tissue around the retractor, which is what made the local dent;
- ``veins fixed, rigid blade``: the same supports, the patch moved uniformly (a rigid blade
  holding the tissue it touches): the lobe swings freely, with nothing under the organ;
- ``liver defaults, rigid blade`` (:func:`surgplan.liver_defaults.default_liver_supports`):
  the extrahepatic hepatic-vein trunks fixed, a sliding bed (normal springs 0.05 kPa/mm) and weak
  ligament springs (0.005 kPa/mm) on the posterior/diaphragmatic surface.

Reported per case: the displacement of the boundary vertices at 30, 60 and 90 mm (+-4 mm) from
the retractor centre (median |u| and median component along the lift), the fraction of the
surface that moves more than 5 mm, the largest displacement, the tumour centroid's
displacement, the solve time; and a picture ``retraction_support_study.png`` (the deformed
livers coloured by |u|, pyvista offscreen).

Usage: nice python benchmarks/biomech_liver_supports.py [--edge-mm 6] [--out DIR]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyvista as pv
from scipy.spatial import cKDTree

from biomech.loads import FixedSupport, LoadCase, NearPoints, PrescribedDisplacement, SphereRegion
from biomech.materials import LIVER_HEALTHY, TUMOUR
from biomech.mesh import from_unstructured_grid
from biomech.tissue import solve_tissue
from imaging.volume_mesh import tetrahedralize
from surgplan.liver_defaults import default_liver_supports

LIVER_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "liver_models"
DISTANCES_MM = (30.0, 60.0, 90.0)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def profile(
    grid: pv.UnstructuredGrid, centre: np.ndarray, lift_dir: np.ndarray
) -> dict[str, object]:
    """Displacement of boundary vertices at DISTANCES_MM from the retractor centre."""
    surf = grid.extract_surface(algorithm="dataset_surface")
    x = np.asarray(surf.points)
    u = np.asarray(surf.point_data["displacement_mm"])
    r = np.linalg.norm(x - centre, axis=1)
    out: dict[str, object] = {}
    for d in DISTANCES_MM:
        ring = np.abs(r - d) <= 4.0
        out[f"{d:.0f}mm"] = {
            "vertices": int(ring.sum()),
            "median_abs_u_mm": float(np.median(np.linalg.norm(u[ring], axis=1))),
            "median_u_along_lift_mm": float(np.median(u[ring] @ lift_dir)),
        }
    mag = np.linalg.norm(u, axis=1)
    out["surface_fraction_over_5mm"] = float((mag > 5.0).mean())
    out["max_displacement_mm"] = float(mag.max())
    return out


def picture(grids: dict[str, pv.UnstructuredGrid], centre: np.ndarray, path: Path) -> None:
    """Side-by-side deformed livers coloured by |u| (mm) over their undeformed wireframes."""
    p = pv.Plotter(off_screen=True, shape=(1, len(grids)), window_size=(800 * len(grids), 700))
    for i, (name, g) in enumerate(grids.items()):
        g = g.copy()
        g.point_data["|u| mm"] = np.linalg.norm(g.point_data["displacement_mm"], axis=1)
        p.subplot(0, i)
        p.add_mesh(g.extract_surface(algorithm="dataset_surface"), style="wireframe",
                   color="grey", opacity=0.12)  # fmt: skip
        p.add_mesh(
            g.warp_by_vector("displacement_mm").extract_surface(algorithm="dataset_surface"),
            scalars="|u| mm", cmap="viridis", clim=(0.0, 20.0),
            scalar_bar_args={"title": f"|u| mm ({name})"},
        )  # fmt: skip
        p.add_mesh(pv.Sphere(radius=4.0, center=centre), color="red")
        p.add_text(name, font_size=14)
        p.view_vector((0.3, -1.0, -0.6), viewup=(0.0, 0.0, 1.0))
    p.screenshot(str(path))
    p.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edge-mm", type=float, default=6.0)
    ap.add_argument("--lift-mm", type=float, default=20.0)
    ap.add_argument("--radius-mm", type=float, default=20.0)
    ap.add_argument("--lift-dir", default="0,-1,1", help="LPS direction (anterior-superior)")
    ap.add_argument("--bed-kpa-per-mm", type=float, default=None)
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    surfaces = {
        "liver": pv.read(LIVER_MODELS / "liver.vtk"),
        "tumour": pv.read(LIVER_MODELS / "liver_tumours.vtk"),
    }
    veins = pv.read(LIVER_MODELS / "hepatic_veins.vtk")
    vm = tetrahedralize(surfaces, outer="liver", inner=["tumour"], target_edge_mm=args.edge_mm)
    fe = from_unstructured_grid(vm.grid, region_names=vm.regions)
    mats = {vm.regions["liver"]: LIVER_HEALTHY, vm.regions["tumour"]: TUMOUR}
    log(f"meshed {fe.num_cells_global()} tetrahedra in {time.perf_counter() - t0:.1f} s")
    b = np.asarray(vm.boundary.points)
    centre = b[np.argmin(b[:, 2])]
    lift_dir = np.array([float(v) for v in args.lift_dir.split(",")])
    lift = args.lift_mm * lift_dir / np.linalg.norm(lift_dir)
    retractor = PrescribedDisplacement(
        SphereRegion(tuple(centre), args.radius_mm), tuple(lift), profile="uniform"
    )
    kw = {}
    if args.bed_kpa_per_mm is not None:
        kw = {"bed_normal_kpa_per_mm": args.bed_kpa_per_mm,
              "bed_tangential_kpa_per_mm": args.bed_kpa_per_mm / 10}  # fmt: skip
    defaults, choice = default_liver_supports(fe, {"hepatic_veins": veins}, **kw)
    log(choice.text)
    veins_fixed = (FixedSupport(NearPoints(np.asarray(veins.points), 5.0), name="hepatic veins"),)
    bump = PrescribedDisplacement(retractor.region, tuple(lift), profile="bump")
    sets = {  # name -> (supports, retractor)
        "before: veins fixed, bump retractor": (veins_fixed, bump),
        "veins fixed, rigid blade": (veins_fixed, retractor),
        "liver defaults, rigid blade": (defaults, retractor),
    }
    report: dict[str, object] = {
        "mesh": {"tetrahedra": fe.num_cells_global(), "edge_mm": args.edge_mm},
        "retractor": {
            "centre_mm": centre.tolist(),
            "radius_mm": args.radius_mm,
            "lift_mm": lift.tolist(),
            "profile": "uniform (a rigid blade holding the tissue it touches)",
        },
        "defaults": choice.to_dict(),
        "cases": {},
    }
    grids = {}
    for name, (supports, blade) in sets.items():
        t = time.perf_counter()
        res = solve_tissue(fe, mats, LoadCase(supports=supports, displacements=[blade]),
                           degree=1)  # fmt: skip
        dt = time.perf_counter() - t
        grid = res.to_pyvista()
        grids[name] = grid
        row = profile(grid, centre, lift / np.linalg.norm(lift))
        row["solve_s"] = dt
        tum = grid.extract_cells(np.flatnonzero(grid.cell_data["region"] == vm.regions["tumour"]))
        row["tumour_centroid_displacement_mm"] = float(
            np.linalg.norm(np.asarray(tum.point_data["displacement_mm"]).mean(axis=0))
        )
        report["cases"][name] = row  # type: ignore[index]
        log(f"{name}: {json.dumps(row)}")
    # the anchor is where it should be: the extrahepatic trunks meet the surface there
    bpts = np.asarray(vm.boundary.points)
    report["boundary_vertices_within_5mm_of_any_vein_point"] = int(
        (cKDTree(np.asarray(veins.points)).query(bpts)[0] <= 5.0).sum()
    )
    png = out_dir / "retraction_support_study.png"
    picture(grids, centre, png)
    report["picture"] = str(png)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
