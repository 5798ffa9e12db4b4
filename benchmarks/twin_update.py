"""One warm twin update (1,000 new points, 100 modes) on the real liver, beside the rigid update.

Usage: ``python benchmarks/twin_update.py [--updates 200] [--modes 100] [--out FILE]``.
The liver (``../shared/data/liver_models/liver.vtk``) carries a synthetic smooth basis
(:func:`surgplan.twin.synthetic.smooth_random_modes`): the timing does not depend on where the
modes come from. Each timed iteration feeds the same 1,000 noisy swab points to
``Twin.update`` (assimilation, targets, verdict on the last 2,000 points; with and without the
recommendation) and to ``registration.RealTimeRegistrar.update``. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import registration as reg
from surgplan.twin import DeformationBasis, Twin
from surgplan.twin.synthetic import posed_swabs, random_pose, smooth_random_modes

LIVER = Path(__file__).resolve().parents[2] / "shared" / "data" / "liver_models"


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--modes", type=int, default=100)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import pyvista as pv

    model = reg.load_surface(LIVER / "liver.vtk")
    tumour = pv.read(LIVER / "liver_tumours.vtk").points.mean(axis=0)
    pts = np.vstack([model.vertices, tumour[None]])
    modes = smooth_random_modes(pts, args.modes, seed=1)
    basis = DeformationBasis(model.vertices, model.faces, modes[:, :-1],
                             np.full(args.modes, 1.0), ("tumour",), tumour[None],
                             modes[:, -1:])  # fmt: skip
    rng = np.random.default_rng(0)
    a = rng.normal(size=args.modes) * 0.5
    T = random_pose(rng)
    u = basis.surface_displacement_mm(a)
    batches = [posed_swabs(model, u, T, n_points=args.points, noise_mm=1.0, seed=s)
               for s in range(10)]  # fmt: skip
    results = {}
    for label, recommend in (("twin_update", False), ("twin_update_with_recommendation", True)):
        twin = Twin(basis, surface=model, noise_mm=1.0, T_tracker_model=T, recommend=recommend)
        for b in batches[:3]:  # warm: state, caches, compiled kernels
            twin.update(b)
        times, iters = [], []
        for i in range(args.updates):
            t0 = time.perf_counter()
            s = twin.update(batches[i % len(batches)])
            times.append((time.perf_counter() - t0) * 1e3)
            iters.append(s.iterations)
        results[label] = {**_stats(times), "mean_iterations": float(np.mean(iters)),
                          "trustworthy": s.trustworthy}  # fmt: skip
    rt = reg.RealTimeRegistrar(model, np.linalg.inv(T), noise_mm=1.0)
    for b in batches[:3]:
        rt.update(b)
    times = []
    for i in range(args.updates):
        t0 = time.perf_counter()
        rt.update(batches[i % len(batches)])
        times.append((time.perf_counter() - t0) * 1e3)
    results["rigid_realtime_update"] = _stats(times)
    out = {
        "benchmark": "twin_update",
        "surface_vertices": len(model.vertices),
        "modes": args.modes,
        "points_per_update": args.points,
        "updates": args.updates,
        "goal_p99_ms": 5.0,
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
