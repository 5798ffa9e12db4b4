"""Mesh independence of the real liver's retraction: the same problem on two meshes.

The retraction of :mod:`surgplan.retraction_demo` (``liver.vtk`` with its tumour, the
documented liver supports, a rigid 20 mm blade lifting the inferior edge by 15 mm) is meshed
at ``--coarse-mm`` (the demo's 6 mm) and at half that edge, and solved with linear elasticity
at the given polynomial degrees. Both displacement fields are sampled at the same points (the
vertices of ``liver.vtk``'s largest piece and the tumour centroid) and compared: relative L2
difference over all points and over the points more than 30 mm from the blade, and the
relative change of the tumour's displacement. Goal (issue 13): < 2 %.

Usage: ``nice python benchmarks/biomech_mesh_independence.py [--coarse-mm 6]
[--runs 6:1,6:2,3:1]`` (``edge:degree`` pairs; the last run is the reference). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyvista as pv

LIVER = Path(__file__).resolve().parents[2] / "shared" / "data" / "liver_models"


def _probe_points() -> tuple[pv.PolyData, np.ndarray]:
    from imaging.mesh_io import read_surface

    liver = read_surface(LIVER / "liver.vtk").connectivity("largest")
    tumour = np.asarray(read_surface(LIVER / "liver_tumours.vtk").points).mean(axis=0)
    pts = np.vstack([np.asarray(liver.points), tumour[None]])
    return pv.PolyData(pts), np.asarray(liver.points)


def _solve(edge_mm: float, degree: int, probe: pv.PolyData) -> dict:
    from biomech.tissue import solve_tissue
    from surgplan.retraction_demo import _retraction_problem

    t0 = time.perf_counter()
    _, fe, mats, loads = _retraction_problem(LIVER, edge_mm, 15.0)
    t_mesh = time.perf_counter() - t0
    res = solve_tissue(fe, mats, loads, model="linear", degree=degree, load_steps=1)
    sampled = probe.sample(res.to_pyvista(), tolerance=2.0)
    u = np.asarray(sampled.point_data["displacement_mm"], np.float64)
    ok = np.asarray(sampled.point_data["vtkValidPointMask"]).astype(bool)
    return {
        "edge_mm": edge_mm, "degree": degree, "cells": int(fe.num_cells_global()),
        "dofs": int(res.info.num_dofs), "mesh_s": round(t_mesh, 1),
        "solve_s": round(time.perf_counter() - t0 - t_mesh, 1), "sampled": float(ok.mean()),
        "tumour_displacement_mm": float(np.linalg.norm(u[-1])), "_u": u, "_ok": ok,
    }  # fmt: skip


def _compare(a: dict, b: dict, far: np.ndarray) -> dict:
    ok = a["_ok"] & b["_ok"]

    def rel(mask: np.ndarray) -> float:
        return float(np.linalg.norm(a["_u"][mask] - b["_u"][mask]) / np.linalg.norm(b["_u"][mask]))

    ta, tb = a["tumour_displacement_mm"], b["tumour_displacement_mm"]
    return {
        "run": f"{a['edge_mm']:g} mm P{a['degree']}",
        "reference": f"{b['edge_mm']:g} mm P{b['degree']}",
        "rel_l2_all": rel(ok), "rel_l2_away_from_blade": rel(ok & far),
        "tumour_rel_change": abs(ta - tb) / tb,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="6:1,6:2,3:1")
    args = ap.parse_args()
    from surgplan.retraction_demo import RETRACTOR_RADIUS_MM, _lowest_point

    probe, liver_pts = _probe_points()
    blade = _lowest_point(pv.PolyData(liver_pts))
    far = np.linalg.norm(np.asarray(probe.points) - blade, axis=1) > RETRACTOR_RADIUS_MM + 10.0
    runs = [(float(e), int(d)) for e, d in (r.split(":") for r in args.runs.split(","))]
    solved = [_solve(e, d, probe) for e, d in runs]
    ref = solved[-1]
    report = {
        "benchmark": "biomech_mesh_independence",
        "goal_rel_change": 0.02,
        "runs": [{k: v for k, v in s.items() if not k.startswith("_")} for s in solved],
        "against_reference": [_compare(s, ref, far) for s in solved[:-1]],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
