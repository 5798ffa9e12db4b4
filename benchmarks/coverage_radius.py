"""``coverage_radius_mm`` (95 % radius of ``N(0, S)``) beside the previous implementation.

Usage: ``python benchmarks/coverage_radius.py [--seconds 2] [--seed 0] [--out FILE]``.

The peer is the implementation this one replaced, copied here: ``np.linalg.eigvalsh`` on the
batch, then Newton's method on ``log s`` from the isotropic guess (up to 8 steps, stopping at
a step below 1e-12) with ``P(s)`` averaged over a 512-direction Fibonacci hemisphere, in
Numba. For each batch size (1, 10, 100, 1,000 random SPD covariances: ``A A^T / 3`` with
``A`` standard normal, mm^2) both are called alternately in one loop for ``--seconds`` each,
so they see the same machine; per-call p50 / p99 (microseconds) and the largest relative
difference of the radii are reported. One BLAS thread (set before NumPy is imported), one
Numba thread. Prints JSON.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from surgplan.twin.radius import coverage_radius_mm  # noqa: E402

BATCHES = (1, 10, 100, 1000)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


# --- the peer: the previous surgplan.twin.radius / _radius_kernel, verbatim in substance ---
def _hemisphere(n: int) -> np.ndarray:
    """Fibonacci lattice of ``n`` unit vectors on the upper hemisphere (equal areas)."""
    i = np.arange(n) + 0.5
    z = i / n
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


_U2 = _hemisphere(512) ** 2


@njit(nogil=True)
def _peer_log_s(lam, u2, probability, max_steps, out):  # noqa: ANN001, ANN202
    n_dir = u2.shape[0]
    for i in range(lam.shape[0]):
        l0, l1, l2 = lam[i, 0], lam[i, 1], lam[i, 2]
        y = math.log(7.814727903251178 * (l0 + l1 + l2) / 3.0)
        for _ in range(max_steps):
            s = math.exp(y)
            p = 0.0
            dp = 0.0
            for j in range(n_dir):
                qq = max(u2[j, 0] * l0 + u2[j, 1] * l1 + u2[j, 2] * l2, 1e-300)
                x = s / qq
                rx = math.sqrt(x)
                e = math.exp(-0.5 * x)
                p += math.erf(rx / math.sqrt(2.0)) - rx * e * math.sqrt(2.0 / math.pi)
                dp += rx * e * x / _SQRT_2PI
            p /= n_dir
            dp /= n_dir
            d = (p - probability) / max(dp, 1e-300)
            d = min(max(d, -2.0), 2.0)
            y -= d
            if abs(d) < 1e-12:
                break
        out[i] = y


def peer_coverage_radius_mm(covariances_mm2: np.ndarray, probability: float = 0.95) -> np.ndarray:
    """The previous ``coverage_radius_mm`` (512-direction Fibonacci hemisphere)."""
    S = np.asarray(covariances_mm2, dtype=np.float64)
    lam = np.clip(np.linalg.eigvalsh(S.reshape(-1, 3, 3)), 0.0, None)
    out = np.zeros(len(lam))
    ok = lam.max(axis=1) > 0
    y = np.empty(int(ok.sum()))
    _peer_log_s(np.ascontiguousarray(lam[ok]), _U2, float(probability), 8, y)
    out[ok] = np.sqrt(np.exp(y))
    return out.reshape(S.shape[:-2])


# --- timing ---
def _stats_us(t: list[float]) -> dict[str, float]:
    a = np.asarray(t) * 1e6
    return {"p50_us": float(np.percentile(a, 50)), "p99_us": float(np.percentile(a, 99))}


def _random_spd(rng: np.random.Generator, n: int) -> np.ndarray:
    A = rng.normal(size=(n, 3, 3))
    return A @ A.transpose(0, 2, 1) / 3.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0, help="per implementation and batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    warm = _random_spd(rng, 4)
    coverage_radius_mm(warm), peer_coverage_radius_mm(warm)  # compile / load caches
    rows = []
    for n in BATCHES:
        S = _random_spd(rng, n)
        new = coverage_radius_mm(S)
        old = peer_coverage_radius_mm(S)
        t_new: list[float] = []
        t_old: list[float] = []
        deadline = time.perf_counter() + 2.0 * args.seconds
        while time.perf_counter() < deadline or len(t_new) < 20:
            t0 = time.perf_counter()
            coverage_radius_mm(S)
            t1 = time.perf_counter()
            peer_coverage_radius_mm(S)
            t2 = time.perf_counter()
            t_new.append(t1 - t0)
            t_old.append(t2 - t1)
        a, b = _stats_us(t_new), _stats_us(t_old)
        rows.append({
            "covariances": n,
            "calls": len(t_new),
            "new": a,
            "peer_512_fibonacci": b,
            "speedup_p50": b["p50_us"] / a["p50_us"],
            "max_rel_diff_radius": float(np.max(np.abs(new / old - 1.0))),
        })  # fmt: skip
    out = {
        "benchmark": "coverage_radius",
        "probability": 0.95,
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    "cpus": os.cpu_count()},
        "seconds_per_batch": 2.0 * args.seconds,
        "batches": rows,
    }  # fmt: skip
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
