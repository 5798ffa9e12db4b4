"""One warm twin update (1,000 new points, 100 modes) on the real liver, beside the rigid update.

Usage: ``python benchmarks/twin_update.py [--updates 200] [--modes 100] [--out FILE]``.
The liver (``../shared/data/liver_models/liver.vtk``) carries a synthetic smooth basis
(:func:`surgplan.twin.synthetic.smooth_random_modes`): the timing does not depend on where the
modes come from. Each timed iteration feeds the same 1,000 noisy swab points to
``Twin.update`` (assimilation, targets, verdict on the last 2,000 points; recommendation off)
and to ``registration.RealTimeRegistrar.update``, interleaved in one loop so both see the same
machine. The recommendation is timed on its own (``Twin.recommendation()``, what
``recommend_every`` spaces out) and inside the update (``recommend_every=1``). One BLAS thread,
as the live loop runs (threadpoolctl when installed, else the BLAS environment variables set
before NumPy is imported). Prints JSON.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import registration as reg  # noqa: E402
from surgplan.twin import DeformationBasis, Twin  # noqa: E402
from surgplan.twin.synthetic import posed_swabs, random_pose, smooth_random_modes  # noqa: E402

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
    results: dict[str, dict] = {}
    twin = Twin(basis, surface=model, noise_mm=1.0, T_tracker_model=T, recommend=False)
    rt = reg.RealTimeRegistrar(model, np.linalg.inv(T), noise_mm=1.0)
    for b in batches[:3]:  # warm: state, caches, compiled kernels
        twin.update(b)
        rt.update(b)
    t_twin, t_rigid, t_rec, iters = [], [], [], []
    for i in range(args.updates):
        b = batches[i % len(batches)]
        t0 = time.perf_counter()
        s = twin.update(b)
        t1 = time.perf_counter()
        rt.update(b)
        t2 = time.perf_counter()
        t_twin.append((t1 - t0) * 1e3)
        t_rigid.append((t2 - t1) * 1e3)
        iters.append(s.iterations)
        if i % 4 == 0:  # the recommendation alone, on request, at this state
            t3 = time.perf_counter()
            twin.recommendation()
            t_rec.append((time.perf_counter() - t3) * 1e3)
    results["twin_update"] = {**_stats(t_twin), "mean_iterations": float(np.mean(iters)),
                              "max_iterations": int(np.max(iters)),
                              "trustworthy": s.trustworthy}  # fmt: skip
    results["rigid_realtime_update"] = _stats(t_rigid)
    results["recommendation_alone"] = _stats(t_rec)
    twin_r = Twin(basis, surface=model, noise_mm=1.0, T_tracker_model=T, recommend_every=1)
    for b in batches[:3]:
        twin_r.update(b)
    times = []
    for i in range(max(args.updates // 2, 1)):
        t0 = time.perf_counter()
        twin_r.update(batches[i % len(batches)])
        times.append((time.perf_counter() - t0) * 1e3)
    results["twin_update_with_recommendation"] = _stats(times)
    try:
        from threadpoolctl import threadpool_info

        blas = [{k: d.get(k) for k in ("internal_api", "num_threads")} for d in threadpool_info()]
    except ImportError:
        blas = {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    out = {
        "benchmark": "twin_update",
        "surface_vertices": len(model.vertices),
        "modes": args.modes,
        "points_per_update": args.points,
        "updates": args.updates,
        "goal_p99_ms": 5.0,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "blas_threads": blas,
        "results": results,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
