"""Benchmark: gmsh against fTetWild on every real organ surface, quality and time side by side.

Surfaces: the real liver model (``liver.vtk`` with ``liver_tumours.vtk`` inside), the real CT's
liver, spleen and kidneys (TotalSegmentator reference labels through
:func:`imaging.surface.label_to_surface`, 20,000 triangles) and the phantom liver envelope
with its tumour (committed sample data). Each is meshed at ``--edge-mm`` (default 6) by each
mesher alone (``mesher="gmsh"`` on one thread, ``mesher="ftetwild"`` on every core), and the FE
standard's figures are reported: minimum dihedral angle, fraction of tetrahedra with gamma < 0.1,
inverted elements, volume error per region, tetrahedra, seconds, and whether the standard is
met. A mesher that cannot meet it is reported with its refusal message. The machine's load
averages are recorded. Prints one JSON object.

Run: ``nice .venv/bin/python benchmarks/volume_mesh_quality.py [--meshers gmsh ftetwild]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import pyvista as pv
import SimpleITK as sitk

from imaging.errors import MeshingError
from imaging.mesh_quality import FEStandard, standard_failures
from imaging.surface import label_to_surface
from imaging.volume_mesh import tetrahedralize

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CT_ORGANS = {"ct_liver": 5, "ct_spleen": 1, "ct_kidney_right": 2, "ct_kidney_left": 3}
#: A standard nobody fails, so that each mesher's own mesh is measured, not refused.
_MEASURE_ONLY = FEStandard(min_dihedral_deg=0.0, max_sliver_fraction=2.0, max_volume_error_pct=1e9)


def organ_surfaces() -> dict[str, dict[str, pv.PolyData]]:
    """Case name -> surfaces (the outer one first, named as the case)."""
    labels = sitk.ReadImage(str(DATA / "totalseg_ct" / "example_seg.nii.gz"))
    cases = {
        name: {name: label_to_surface(labels, label=value, target_triangles=20_000)}
        for name, value in CT_ORGANS.items()
    }
    models = DATA / "liver_models"
    cases["liver_model+tumour"] = {
        "liver_model+tumour": pv.read(models / "liver.vtk"),
        "tumour": pv.read(models / "liver_tumours.vtk"),
    }
    envelope = sitk.ReadImage(str(REPO / "sample_data" / "phantom_liver_envelope.nrrd"))
    phantom = sitk.ReadImage(str(REPO / "sample_data" / "phantom_labels.nrrd"))
    cases["phantom_liver+tumour"] = {
        "phantom_liver+tumour": label_to_surface(envelope, target_triangles=20_000),
        "tumour": label_to_surface(phantom, label=2, target_triangles=20_000),
    }
    return cases


def measure(surfaces: dict[str, pv.PolyData], mesher: str, edge_mm: float) -> dict[str, Any]:
    """One mesher on one organ: the standard's figures, or why it could not mesh."""
    outer = next(iter(surfaces))
    start = time.perf_counter()
    try:
        mesh = tetrahedralize(
            surfaces, outer=outer, target_edge_mm=edge_mm, mesher=mesher, standard=_MEASURE_ONLY
        )
    except MeshingError as exc:
        return {"error": str(exc), "seconds": round(time.perf_counter() - start, 2)}
    q = mesh.quality
    failures = standard_failures(q)
    return {
        "min_dihedral_deg": round(q.min_dihedral_deg, 2),
        "pct_gamma_below_0_1": round(100.0 * q.fraction_gamma_below_0_1, 4),
        "gamma_min": round(q.gamma_min, 4),
        "n_inverted": q.n_inverted,
        "volume_error_pct": {k: round(v, 2) for k, v in q.volume_error_pct.items()},
        "n_tets": q.n_tets,
        "seconds": round(q.seconds, 2),
        "regions": dict(mesh.regions),
        "meets_standard": not failures,
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshers", nargs="+", default=["gmsh", "ftetwild"])
    parser.add_argument("--edge-mm", type=float, default=6.0)
    parser.add_argument("--organs", nargs="*", default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    table: dict[str, dict[str, Any]] = {}
    for name, surfaces in organ_surfaces().items():
        if args.organs and name not in args.organs:
            continue
        table[name] = {m: measure(surfaces, m, args.edge_mm) for m in args.meshers}
    print(
        json.dumps(
            {
                "edge_mm": args.edge_mm,
                "organs": table,
                "load_average_1_5_15": {
                    "before": [round(v, 2) for v in load_before],
                    "after": [round(v, 2) for v in os.getloadavg()],
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
