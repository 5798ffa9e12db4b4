"""Solve time against degrees of freedom: linear and neo-Hookean tissue, 1 and 2 MPI ranks.

Usage: python benchmarks/biomech_solve.py [--sizes 8,6,4] [--ranks 1,2] [--out FILE.json]
Each configuration runs in a fresh ``mpiexec -n R`` process (this file with ``--worker``);
the result is one JSON object with a row per (model, ranks, mesh size).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def worker(size: float, model: str) -> None:
    from mpi4py import MPI

    from biomech import geometry
    from biomech.loads import FixedSupport, Gravity, LoadCase, Pressure, TaggedFacets
    from biomech.materials import LIVER_FIBROTIC
    from biomech.tissue import solve_tissue

    comm = MPI.COMM_WORLD
    t0 = time.perf_counter()
    fe = geometry.box(60.0, 40.0, 30.0, mesh_size_mm=size)
    t_mesh = time.perf_counter() - t0
    loads = LoadCase(
        supports=[FixedSupport(TaggedFacets("x0"))],
        pressures=[Pressure(TaggedFacets("z1"), 0.5)],
        gravity=Gravity((0.0, 0.0, -1.0)),
    )
    # warm-up on a tiny mesh so that form compilation (JIT, cached) is not timed
    solve_tissue(geometry.box(6, 4, 3, mesh_size_mm=3.0), LIVER_FIBROTIC, loads, model=model)
    comm.barrier()
    t0 = time.perf_counter()
    res = solve_tissue(fe, LIVER_FIBROTIC, loads, model=model, degree=2, load_steps=2)
    comm.barrier()
    t_solve = time.perf_counter() - t0
    norm = res.displacement_norm_mm()
    if comm.rank == 0:
        row = {
            "model": model,
            "ranks": comm.size,
            "mesh_size_mm": size,
            "cells": fe.num_cells_global(),
            "dofs": res.info.num_dofs,
            "mesh_s": t_mesh,
            "solve_s": t_solve,
            "newton_iterations": res.info.newton_iterations,
            "displacement_norm_mm": norm,
        }
        print("ROW " + json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--size", type=float)
    ap.add_argument("--model")
    ap.add_argument("--sizes", default="8,6,4")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--models", default="linear,neohookean")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        worker(args.size, args.model)
        return
    mpiexec = Path(sys.executable).parent / "mpiexec"
    rows = []
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for model in args.models.split(","):
        for size in (float(s) for s in args.sizes.split(",")):
            for ranks in (int(r) for r in args.ranks.split(",")):
                cmd = [str(mpiexec), "-n", str(ranks), sys.executable, __file__, "--worker"]
                cmd += ["--size", str(size), "--model", model]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
                if proc.returncode != 0 or not lines:
                    rows.append(
                        {
                            "model": model,
                            "ranks": ranks,
                            "mesh_size_mm": size,
                            "error": proc.stderr[-500:],
                        }
                    )
                else:
                    rows.append(json.loads(lines[0][4:]))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    text = json.dumps({"benchmark": "biomech_solve", "rows": rows}, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
