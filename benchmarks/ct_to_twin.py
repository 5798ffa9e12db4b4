"""Benchmark: from a CT file to a twin-ready case, timed by stage, on the phantom and the real CT.

Each scan goes through the library functions the CLI calls, in a fresh case folder:

1. ``import``: :func:`surgplan.scan_import.import_scan` of a NIfTI file;
2. ``segment``: :func:`surgplan.segment.segment_structure` for the liver, the tumour and the
   vessels, from seed points only (no other manual step);
3. ``surfaces`` and ``fe_mesh``: :func:`surgplan.meshing.build_meshes` (closed surfaces of every
   structure, then the tetrahedral mesh of the liver with the tumour as a region), split at
   its "tetrahedral mesh" step;
4. ``reduced_model``: :func:`surgplan.case_rom.build_default_case_rom` (the twin's reduced
   deformation model).

Scans:

- ``phantom``: :func:`surgplan.phantom.generate_phantom` (seed 0) written as NIfTI; seeds are
  the phantom's own (liver, tumour, portal and hepatic veins).
- ``real_ct``: ``../shared/data/totalseg_ct/example_ct_sm.nii.gz`` (3 mm abdominal CT); seeds
  are computed from the TotalSegmentator reference label map ``example_seg.nii.gz``: the
  liver's deepest voxel (largest distance to its boundary) and the deepest voxels of the
  portal/splenic vein and the inferior vena cava. This scan has no tumour (its reference has
  no lesion label), so its case has no tumour; that is reported, not invented. It is a
  non-contrast scan (portal vein, vena cava and aorta at 38-43 HU median, the liver at 46), so
  the vessel segmentation refuses it (seeds not brighter than the background): a refused
  structure other than the liver is recorded under ``"refused"`` with its message, and the
  case goes on without it.

The machine is shared: the 1, 5 and 15-minute load averages are recorded before and after
each scan with the stage times, and each stage's CPU time of this process (all its threads,
``time.process_time``) next to its wall time: on a loaded machine the wall time is inflated,
the CPU time much less so. Prints one JSON object (and writes it to ``--out`` if given);
exits 1 if a stage of any scan failed (the error is in the JSON).

Run: ``nice .venv/bin/python benchmarks/ct_to_twin.py [--scans phantom real_ct] [--out F]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "totalseg_ct"
#: TotalSegmentator "total" label values of the structures seeded on the real CT.
REAL_CT_LABELS = {"liver": 5, "portal_vein": 64, "ivc": 63}


def deepest_point_lps(labels: sitk.Image, value: int) -> tuple[float, float, float]:
    """Physical (LPS mm) centre of the voxel of ``value`` farthest from the label's boundary."""
    mask = sitk.Cast(labels == value, sitk.sitkUInt8)
    if not sitk.GetArrayViewFromImage(mask).any():
        raise SystemExit(f"label {value} absent from the reference label map")
    distance = sitk.SignedMaurerDistanceMap(
        mask, insideIsPositive=True, squaredDistance=False, useImageSpacing=True
    )
    z, y, x = np.unravel_index(
        np.argmax(sitk.GetArrayViewFromImage(distance)), mask.GetSize()[::-1]
    )
    point = labels.TransformIndexToPhysicalPoint((int(x), int(y), int(z)))
    return (float(point[0]), float(point[1]), float(point[2]))


def phantom_input(work: Path) -> tuple[Path, dict[str, list[tuple[float, ...]]], list[str]]:
    """The phantom CT as NIfTI and its seed plan."""
    from surgplan.phantom import generate_phantom

    phantom = generate_phantom(seed=0)
    path = work / "phantom_ct.nii.gz"
    sitk.WriteImage(phantom.ct, str(path))
    seeds = phantom.seeds_lps_mm
    plan = {
        "liver": [seeds["liver"]],
        "tumour": [seeds["tumour"]],
        "vessels": [seeds["portal_vein"], seeds["hepatic_veins"]],
    }
    return path, plan, []


def real_ct_input(work: Path) -> tuple[Path, dict[str, list[tuple[float, ...]]], list[str]]:
    """The real CT file and seeds from its reference label map (no tumour in this scan)."""
    del work
    labels = sitk.ReadImage(str(SHARED / "example_seg.nii.gz"))
    seeds = {name: deepest_point_lps(labels, value) for name, value in REAL_CT_LABELS.items()}
    plan = {"liver": [seeds["liver"]], "vessels": [seeds["portal_vein"], seeds["ivc"]]}
    return SHARED / "example_ct_sm.nii.gz", plan, ["no tumour in this scan's reference labels"]


def run_case(
    ct_path: Path, plan: dict[str, list[tuple[float, ...]]], case_dir: Path
) -> dict[str, Any]:
    """Run the stages on one scan; stage times in s and what each built."""
    from imaging.errors import ImagingError
    from surgplan.case_rom import build_default_case_rom
    from surgplan.errors import SurgplanError
    from surgplan.meshing import build_meshes
    from surgplan.scan_import import import_scan
    from surgplan.segment import segment_structure

    stages: dict[str, float] = {}
    cpu: dict[str, float] = {}
    built: dict[str, Any] = {}
    start, cpu_start = time.perf_counter(), time.process_time()
    imported = import_scan(ct_path, case_dir)
    stages["import"] = time.perf_counter() - start
    cpu["import"] = time.process_time() - cpu_start
    built["scan_size"] = list(imported.size)
    built["spacing_mm"] = list(imported.spacing_mm)

    start, cpu_start = time.perf_counter(), time.process_time()
    volumes, refused = {}, {}
    for name, seeds in plan.items():
        try:
            volumes[name] = round(segment_structure(case_dir, name, seeds).volume_ml, 2)
        except (ImagingError, SurgplanError) as exc:
            if name == "liver":
                raise
            refused[name] = str(exc)  # e.g. vessels on a scan without contrast
    stages["segment"] = time.perf_counter() - start
    cpu["segment"] = time.process_time() - cpu_start
    built["segmented_ml"] = volumes
    built["refused"] = refused

    marks: dict[str, tuple[float, float]] = {}
    step: Callable[[str], None] = lambda text: marks.setdefault(  # noqa: E731
        text, (time.perf_counter(), time.process_time())
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    meshes = build_meshes(case_dir, on_step=step)
    end, cpu_end = time.perf_counter(), time.process_time()
    tet_start, tet_cpu = next(
        (t for text, t in marks.items() if text.startswith("tetrahedral")), (end, cpu_end)
    )
    stages["surfaces"] = tet_start - start
    stages["fe_mesh"] = end - tet_start
    cpu["surfaces"] = tet_cpu - cpu_start
    cpu["fe_mesh"] = cpu_end - tet_cpu
    built["surfaces"] = {
        n: {"volume_ml": round(s.volume_ml, 2), "triangles": s.n_triangles}
        for n, s in meshes.surfaces.items()
    }
    if meshes.volume_mesh is not None:
        q = meshes.volume_mesh.quality
        built["fe_mesh"] = {
            "tets": q.n_tets,
            "mesher": q.mesher,
            "min_dihedral_deg": round(q.min_dihedral_deg, 2),
            "fraction_gamma_below_0_1": q.fraction_gamma_below_0_1,
            "regions": dict(meshes.volume_mesh.regions),
            "notes": list(meshes.volume_mesh.notes),
        }

    start, cpu_start = time.perf_counter(), time.process_time()
    rom = build_default_case_rom(case_dir)
    stages["reduced_model"] = time.perf_counter() - start
    cpu["reduced_model"] = time.process_time() - cpu_start
    built["reduced_model"] = {
        "n_modes": rom.n_modes,
        "validation_max_vertex_error_mm": list(rom.validation_max_vertex_error_mm),
    }
    return {
        "stages_s": stages,
        "stages_total_s": sum(stages.values()),
        "stages_cpu_s": cpu,
        "stages_cpu_total_s": sum(cpu.values()),
        "built": built,
    }


def benchmark(name: str, work: Path) -> dict[str, Any]:
    """One scan end to end, with load averages; a failing stage is recorded, not raised."""
    inputs = {"phantom": phantom_input, "real_ct": real_ct_input}[name]
    load_before = os.getloadavg()
    start = time.perf_counter()
    ct_path, plan, remarks = inputs(work)
    prepare_s = time.perf_counter() - start
    out: dict[str, Any] = {"ct": ct_path.name, "seeds_lps_mm": plan, "remarks": remarks}
    start = time.perf_counter()
    try:
        out.update(run_case(ct_path, plan, work / f"{name}_case"))
    except Exception as exc:  # a benchmark reports the failing stage instead of a traceback
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["total_s"] = time.perf_counter() - start
    out["input_preparation_s"] = prepare_s
    out["load_average_1_5_15"] = {
        "before": [round(v, 2) for v in load_before],
        "after": [round(v, 2) for v in os.getloadavg()],
    }
    return _rounded(out)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", nargs="+", default=["phantom", "real_ct"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result: dict[str, Any] = {"cpu_count": os.cpu_count(), "goal_s": 120.0, "scans": {}}
    with tempfile.TemporaryDirectory(prefix="ct_to_twin_") as tmp:
        for name in args.scans:
            result["scans"][name] = benchmark(name, Path(tmp))
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 1 if any("error" in s for s in result["scans"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
