"""Hyperelastic (neo-Hookean, mixed u-p) reduced model: held-out error against full solves.

Usage: python benchmarks/biomech_rom_hyperelastic.py [--samples 40] [--out FILE.json]
Parameters are sampled (Halton) over: patch centre within 10 mm of the nominal site, retractor
displacement in a 6 mm ball, gravity direction on the sphere, pressure 0-1.6 kPa.
"""

import argparse
import json
import time

import numpy as np
from scipy.stats import qmc

from biomech import geometry
from biomech.loads import FixedSupport, SphereRegion
from biomech.materials import LIVER_HEALTHY
from biomech.rom import RomParameters, build_hyperelastic_rom, load_case_for
from biomech.tissue import solve_tissue

RADIUS = 15.0


def params(u: np.ndarray, near: np.ndarray) -> RomParameters:
    site = np.array([0.0, 0.0, 15.0])
    target = site + np.array([(u[0] - 0.5) * 20.0, (u[1] - 0.5) * 20.0, 0.0])
    c = near[np.argmin(np.linalg.norm(near[:, :2] - target[:2], axis=1))]
    d = (u[2:5] - 0.5) * 12.0
    g = u[5:8] - 0.5
    g = g / np.linalg.norm(g)
    return RomParameters(tuple(c), tuple(d), tuple(g), float(u[8] * 1.6))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--held-out", type=int, default=4)
    ap.add_argument("--out")
    args = ap.parse_args()
    fe = geometry.ellipsoid((30.0, 22.0, 15.0), mesh_size_mm=5.0)
    surf = geometry.boundary_points_mm(fe)
    near = surf[(surf[:, 2] > 0) & (np.linalg.norm(surf[:, :2], axis=1) <= 12.0)]
    supports = [FixedSupport(SphereRegion((0.0, 0.0, -15.0), 10.0), name="ligament")]
    pressure = SphereRegion((0.0, 0.0, 15.0), 22.0)
    mat = LIVER_HEALTHY
    halton = qmc.Halton(d=9, seed=3)
    train = [params(u, near) for u in halton.random(args.samples)]
    t0 = time.perf_counter()
    rom = build_hyperelastic_rom(
        fe,
        mat,
        supports=supports,
        samples=train,
        patch_radius_mm=RADIUS,
        surface_points_mm=surf,
        pressure_region=pressure,
        degree=2,
        load_steps=2,
    )
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(5)
    errors, peaks, lin_err = [], [], []
    for _ in range(args.held_out):
        prm = params(rng.uniform(0.1, 0.9, size=9), near)
        lc = load_case_for(prm, supports, RADIUS, pressure)
        full = solve_tissue(fe, mat, lc, model="neohookean", degree=2, load_steps=2)
        ufe = full.evaluate_displacement_mm(surf)
        lin = solve_tissue(fe, mat, lc, model="linear", degree=2).evaluate_displacement_mm(surf)
        errors.append(float(np.linalg.norm(ufe - rom.evaluate(prm), axis=1).max()))
        lin_err.append(float(np.linalg.norm(ufe - lin, axis=1).max()))
        peaks.append(float(np.linalg.norm(ufe, axis=1).max()))
    out = {
        "benchmark": "biomech_rom_hyperelastic",
        "samples": args.samples,
        "modes": rom.n_modes,
        "build_s": build_s,
        "held_out_max_vertex_error_mm": errors,
        "held_out_peak_displacement_mm": peaks,
        "linear_vs_neohookean_max_difference_mm": lin_err,
    }
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
