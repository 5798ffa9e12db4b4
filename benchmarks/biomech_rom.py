"""Reduced-model benchmark: update rate on a 20,000-vertex surface (one core) and held-out error.

Usage: OMP_NUM_THREADS=1 python benchmarks/biomech_rom.py [--out FILE.json]
Prints one JSON object: per number of modes, updates per second and the max vertex error of
held-out load cases against the full FE solve (linear model).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyvista as pv  # noqa: E402

from biomech import geometry  # noqa: E402
from biomech.loads import FixedSupport, SphereRegion  # noqa: E402
from biomech.materials import LIVER_HEALTHY  # noqa: E402
from biomech.rom import (  # noqa: E402
    BasisConfig,
    RomParameters,
    TrainingSet,
    build_linear_rom,
    load_case_for,
)
from biomech.tissue import solve_tissue  # noqa: E402
from registration import farthest_point_sample  # noqa: E402

RADII = (30.0, 22.0, 15.0)
RADIUS = 15.0


def surface_20k() -> np.ndarray:
    """About 20,000 vertices on the ellipsoid surface (slightly inside it)."""
    s = pv.Sphere(radius=1.0, theta_resolution=200, phi_resolution=102)
    pts = np.asarray(s.points) * np.asarray(RADII) * 0.999
    return pts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--modes", default="20,30,40,60,0")
    args = ap.parse_args()
    fe = geometry.ellipsoid(RADII, mesh_size_mm=3.0)
    fe_surf = geometry.boundary_points_mm(fe)
    surf = surface_20k()
    supports = [FixedSupport(SphereRegion((0.0, 0.0, -15.0), 10.0), name="ligament")]
    pressure = SphereRegion((0.0, 0.0, 15.0), 22.0)
    near = fe_surf[(fe_surf[:, 2] > 0) & (np.linalg.norm(fe_surf[:, :2], axis=1) <= 12.0)]
    site = np.array([0.0, 0.0, 15.0])
    sel = farthest_point_sample(near, 30, start=site)
    centres = near[sel]
    rng = np.random.default_rng(11)
    inner = near[np.linalg.norm(near[:, :2], axis=1) <= 8.0]
    inner = inner[np.linalg.norm(inner[:, None] - centres[None], axis=2).min(axis=1) > 1.0]
    held = []
    for _ in range(5):
        d, g = rng.normal(size=3), rng.normal(size=3)
        prm = RomParameters(
            tuple(inner[rng.integers(len(inner))]),
            tuple(8.0 * d / np.linalg.norm(d)),
            tuple(g / np.linalg.norm(g)),
            float(rng.uniform(0, 1.6)),
        )
        full = solve_tissue(
            fe, LIVER_HEALTHY, load_case_for(prm, supports, RADIUS, pressure), degree=1
        )
        held.append((prm, full.evaluate_displacement_mm(surf)))
    out = {"n_surface_vertices": int(surf.shape[0]), "fe_cells": fe.num_cells_global(), "rows": []}
    t0 = time.perf_counter()
    rom_full = build_linear_rom(
        fe,
        LIVER_HEALTHY,
        TrainingSet(
            supports=supports,
            patch_centres_mm=centres,
            patch_radius_mm=RADIUS,
            surface_points_mm=surf,
            pressure_region=pressure,
        ),
        BasisConfig(pod_tolerance=1e-12),
    )
    out["build_s"] = time.perf_counter() - t0
    for k in [int(v) for v in args.modes.split(",")]:
        rom = rom_full.truncated(k) if k else rom_full
        errs = [float(np.linalg.norm(rom.evaluate(p) - u, axis=1).max()) for p, u in held]
        prm = held[0][0]
        n = 2000
        t = time.perf_counter()
        for _ in range(n):
            rom.evaluate(prm)
        rate = n / (time.perf_counter() - t)
        out["rows"].append(
            {
                "modes": rom.n_modes,
                "updates_per_s": rate,
                "max_vertex_error_mm": max(errs),
                "errors_mm": errs,
            }
        )
        print(json.dumps(out["rows"][-1]), flush=True)
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
