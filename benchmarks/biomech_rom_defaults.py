"""The twin's reduced model of the real liver (``surgplan rom CASE`` without a scenario).

A case is made from ``liver.vtk`` with ``liver_tumours.vtk`` inside and ``hepatic_veins.vtk``
(shared data), tetrahedralised at ``--edge-mm``; :func:`surgplan.case_rom.build_case_rom` is run
without a scenario (liver defaults, ``--centres`` patch centres over the whole surface, every
volume vertex evaluated, ``--held-out`` held-out FE load cases). Prints one JSON object: mesh,
the supports chosen, modes, the model discrepancy (max / RMS ROM-vs-FE error at surface and
interior vertices per held-out case), the stiffness spread (E x0.7, x1.3) and the time.

Usage: nice python benchmarks/biomech_rom_defaults.py [--edge-mm 6] [--centres 30] [--held-out 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pyvista as pv

from biomech.rom import load_reduced_model
from imaging.volume_mesh import tetrahedralize
from surgplan.case import Case
from surgplan.case_rom import build_case_rom
from surgplan.manifest import SurfaceEntry, VolumeMeshEntry

LIVER_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "liver_models"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edge-mm", type=float, default=6.0)
    ap.add_argument("--centres", type=int, default=30)
    ap.add_argument("--held-out", type=int, default=4)
    ap.add_argument("--case", default=None, help="case folder to create (default: temporary)")
    args = ap.parse_args()
    folder = Path(args.case or tempfile.mkdtemp()) / "liver_case"
    surfaces = {
        "liver": pv.read(LIVER_MODELS / "liver.vtk"),
        "tumour": pv.read(LIVER_MODELS / "liver_tumours.vtk"),
    }
    vm = tetrahedralize(surfaces, outer="liver", inner=["tumour"], target_edge_mm=args.edge_mm)
    veins = pv.read(LIVER_MODELS / "hepatic_veins.vtk")
    case = Case.open_or_new(folder)
    with case.transaction() as tx:
        vm.grid.save(tx.path("meshes/volume.vtu"))
        veins.save(tx.path("meshes/hepatic_veins.vtp"))
        tx.manifest.volume_mesh = VolumeMeshEntry(
            path="meshes/volume.vtu", regions=vm.regions, quality={}
        )
        tx.manifest.surfaces["hepatic_veins"] = SurfaceEntry(
            name="hepatic_veins", path="meshes/hepatic_veins.vtp", volume_ml=0.0, area_mm2=0.0,
            n_points=veins.n_points, n_triangles=veins.n_cells, is_closed=True,
            is_manifold=True, label_volume_ml=0.0,
        )  # fmt: skip
    t = time.perf_counter()
    res = build_case_rom(
        folder, None, n_centres=args.centres, n_validation=args.held_out,
        progress=lambda i, n: print(f"centre {i}/{n}", file=sys.stderr) if i % 5 == 0 else None,
    )  # fmt: skip
    dt = time.perf_counter() - t
    rom = load_reduced_model(folder / res.path)
    out = {
        "mesh": {
            "edge_mm": args.edge_mm,
            "vertices": int(vm.grid.n_points),
            "tetrahedra": int(vm.grid.n_cells),
        },  # fmt: skip
        "summary": res.to_dict(),
        "model_discrepancy": rom.meta["model_discrepancy"],
        "stiffness_spread": rom.meta["stiffness_spread"],
        "discrepancy_mm_per_axis": rom.meta["discrepancy_mm"],
        "stiffness_spread_mm_per_axis": rom.meta["stiffness_spread_mm"],
        "amplitude_std_first5": rom.amplitude_std[:5].tolist(),
        "file_mb": (folder / res.path).stat().st_size / 1e6,
        "build_s": dt,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
