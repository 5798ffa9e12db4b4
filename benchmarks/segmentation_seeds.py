"""Per-seed Dice of seeded organ segmentation on the real CT (issue 13), printed as JSON.

For each of liver, spleen, right and left kidney: 20 seeds spread through the
TotalSegmentator reference (>= 9 mm inside it, farthest-point sampling from a seeded random
start, :func:`imaging.segmentation.metrics.spread_seeds`), each segmented by
:func:`imaging.segmentation.segment_organ_checked`; the Dice against the reference, the
parameter set that passed the checks, or the refusal. Targets: liver >= 0.92, others >= 0.88.

Usage: ``.venv/bin/python benchmarks/segmentation_seeds.py [DATA_DIR] [--seeds N]``
(``DATA_DIR`` defaults to ``../shared/data/totalseg_ct``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import SimpleITK as sitk

from imaging.errors import SegmentationError
from imaging.segmentation import dice, segment_organ_checked
from imaging.segmentation.metrics import spread_seeds

#: (name, TotalSegmentator label value, organ model, target Dice).
ORGANS = (
    ("liver", 5, "liver", 0.92),
    ("spleen", 1, "spleen", 0.88),
    ("kidney_right", 2, "kidney", 0.88),
    ("kidney_left", 3, "kidney", 0.88),
)


def run(data: Path, n_seeds: int) -> dict:
    """Segment every organ from ``n_seeds`` seeds; the per-seed table and summary."""
    ct = sitk.ReadImage(str(data / "example_ct_sm.nii.gz"))
    labels = sitk.ReadImage(str(data / "example_seg.nii.gz"))
    out: dict = {"image": "example_ct_sm.nii.gz", "n_seeds": n_seeds, "organs": {}}
    for name, value, organ, target in ORGANS:
        ref = sitk.Cast(sitk.Equal(labels, value), sitk.sitkUInt8)
        rows = []
        start = time.perf_counter()
        for seed in spread_seeds(ref, n_seeds, min_depth_mm=9.0, rng_seed=0):
            row: dict = {"seed_lps_mm": [round(c, 1) for c in seed]}
            try:
                checked = segment_organ_checked(ct, seed, organ=organ)
                row["dice"] = round(dice(checked.mask, ref), 4)
                row["parameters"] = checked.parameters
            except SegmentationError as exc:
                row["dice"] = None
                row["refused"] = str(exc)
            rows.append(row)
        scores = [r["dice"] if r["dice"] is not None else 0.0 for r in rows]
        out["organs"][name] = {
            "target": target,
            "min": min(scores),
            "median": statistics.median(scores),
            "n_below_target": sum(s < target for s in scores),
            "n_refused": sum(r["dice"] is None for r in rows),
            "seconds": round(time.perf_counter() - start, 1),
            "seeds": rows,
        }
    return out


def main() -> None:
    """Parse the arguments, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "totalseg_ct"
    parser.add_argument("data", nargs="?", type=Path, default=default)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(run(args.data, args.seeds), indent=1))


if __name__ == "__main__":
    main()
