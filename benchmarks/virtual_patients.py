"""Virtual patients from the real liver: full FE solves under intraoperative loads.

Builds ``--n`` (default 10) virtual patients with :func:`surgplan.virtual_patients.
make_virtual_patients` (liver defaults supports; lobe lift, packing, tilt, insufflation,
ligaments released and combinations; see that module) and prints one JSON object: per patient
its load, largest surface displacement (mm), target displacements (mm) and solve time (s).
``--save FILE.npz`` keeps them (deterministic per ``--seed``).

Usage: nice python benchmarks/virtual_patients.py [--n 10] [--seed 0] [--edge-mm 6] [--save F]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from surgplan.virtual_patients import make_virtual_patients, save_virtual_patients

LIVER_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "liver_models"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--edge-mm", type=float, default=6.0)
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    t = time.perf_counter()
    patients = make_virtual_patients(LIVER_MODELS, args.n, args.seed, edge_mm=args.edge_mm)
    total = time.perf_counter() - t
    if args.save:
        save_virtual_patients(patients, args.save)
    print(json.dumps({
        "n": len(patients), "seed": args.seed, "edge_mm": args.edge_mm, "total_s": total,
        "patients": [p.to_dict() for p in patients],
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
