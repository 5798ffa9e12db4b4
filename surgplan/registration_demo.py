"""A simulated intraoperative registration on a case's liver: the demo's navigation step.

A tracked pointer swabs the visible side of the liver (simulated, 1 mm noise) in tracker space,
whose pose relative to the patient is unknown. The points are registered to the case's liver
surface with no prior pose, then followed by warm-started updates while the liver moves a
little between acquisitions; one acquisition spoiled by 30 % gross outliers must be flagged.
The true poses are known, so each figure is an error against the truth: TRE at the tumour
centroid. Writes the points as a 3D Slicer markups file, the registration as an ITK transform
file and a picture.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from registration import apply_transform
from registration.io import write_itk_transform, write_slicer_markups
from registration.model import prepare_surface
from registration.realtime import RealTimeRegistrar
from registration.sensors import add_noise, add_outliers, simulate_swabs
from registration.surface import register_surface
from surgplan.render import render_structures

#: Tracked-pointer acquisition of the demo.
SWAB_POINTS = 500
SWAB_COVERAGE = 0.3
NOISE_MM = 1.0
#: Warm-started updates, and the liver's motion between two of them (degrees, mm).
TRACKING_UPDATES = 30
MOTION_DEG = 1.0
MOTION_MM = 1.0


def _random_pose(rng: np.random.Generator, spread_mm: float) -> NDArray[np.float64]:
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T[:3, 3] = rng.normal(scale=spread_mm, size=3)
    return T


def _small_motion(rng: np.random.Generator, centre: NDArray[np.float64]) -> NDArray[np.float64]:
    axis = rng.normal(size=3)
    R = Rotation.from_rotvec(np.deg2rad(MOTION_DEG) * axis / np.linalg.norm(axis)).as_matrix()
    step = rng.normal(size=3)
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = centre - R @ centre + MOTION_MM * step / np.linalg.norm(step)
    return T


def _tre(T_model_tracker: NDArray, T_tracker_model: NDArray, target: NDArray) -> float:
    placed = apply_transform(T_model_tracker @ T_tracker_model, target[None])[0]
    return float(np.linalg.norm(placed - target))


def registration_demo(
    surfaces: Mapping[str, pv.PolyData],
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Register simulated pointer swabs to ``surfaces["liver"]``; targets the tumour centroid.

    Parameters
    ----------
    surfaces
        At least ``"liver"`` and ``"tumour"`` closed surfaces, LPS mm.
    out_dir
        Where ``swabs.mrk.json``, ``T_model_tracker.tfm`` and ``registration.png`` go.
    seed
        Seed of the simulated acquisitions and tracker pose.

    Returns
    -------
    dict
        ``global`` (TRE at the tumour, mm; inlier RMS; verdict; time), ``tracking`` (updates,
        first, median and maximum update time in ms, mean and maximum TRE, how many were
        trusted), ``outliers``
        (the spoiled acquisition's verdict and reason), and the written file paths.
    """
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = prepare_surface(surfaces["liver"], name="liver")
    target = np.asarray(surfaces["tumour"].center_of_mass(), dtype=float)

    def acquire(T_tracker_model: NDArray) -> NDArray:
        swabs = simulate_swabs(model, n_points=SWAB_POINTS, coverage=SWAB_COVERAGE, seed=rng)
        return apply_transform(T_tracker_model, add_noise(swabs, noise_mm=NOISE_MM, seed=rng))

    T_tracker_model = _random_pose(rng, spread_mm=300.0)
    first = acquire(T_tracker_model)
    start = time.perf_counter()
    res = register_surface(first, model, seed=seed, noise_mm=NOISE_MM)
    global_s = time.perf_counter() - start
    global_fig = {
        "tre_tumour_mm": _tre(res.T_model_points, T_tracker_model, target),
        "inlier_fraction": res.inlier_fraction,
        "inlier_rms_mm": res.inlier_rms_mm,
        "trustworthy": res.trustworthy,
        "reason": res.reason,
        "init": res.extra.get("init", ""),
        "time_s": global_s,
    }

    model.prepare_realtime()
    tracker = RealTimeRegistrar(model, res.T_model_points, noise_mm=NOISE_MM)
    times, errors, trusted, doubts = [], [], 0, []
    T_now = T_tracker_model
    for _ in range(TRACKING_UPDATES):
        # The liver moves a little (in model space) between acquisitions.
        T_now = T_now @ np.linalg.inv(_small_motion(rng, model.centroid_mm))
        update = tracker.update(acquire(T_now))
        times.append(update.time_ms)
        errors.append(_tre(update.T_model_points, T_now, target))
        trusted += bool(update.trustworthy)
        if not update.trustworthy:
            doubts.append(update.reason)
    spoiled, _ = add_outliers(acquire(T_now), fraction=0.3, seed=rng)
    bad = register_surface(spoiled, model, T_init=tracker.T_model_points, noise_mm=NOISE_MM)

    markups = write_slicer_markups(out / "swabs.mrk.json", first, name="swabs")
    transform = write_itk_transform(out / "T_model_tracker.tfm", res.T_model_points)
    picture = render_structures(
        {"liver": surfaces["liver"], "tumour": surfaces["tumour"]},
        out / "registration.png",
        points={"registered swabs": apply_transform(res.T_model_points, first)},
    )
    return {
        "points": SWAB_POINTS,
        "coverage": SWAB_COVERAGE,
        "noise_mm": NOISE_MM,
        "global": global_fig,
        "tracking": {
            "updates": TRACKING_UPDATES,
            "motion_per_update": f"{MOTION_DEG:g} deg about the liver centroid + {MOTION_MM:g} mm",
            # The first update also loads the compiled kernels: reported on its own.
            "first_update_ms": float(times[0]),
            "median_update_ms": float(np.median(times[1:])),
            "max_update_ms": float(np.max(times[1:])),
            "max_tre_tumour_mm": float(np.max(errors)),
            "mean_tre_tumour_mm": float(np.mean(errors)),
            "trusted": trusted,
            "not_trusted_reasons": doubts,
        },
        "outliers": {
            "fraction": 0.3,
            "trustworthy": bad.trustworthy,
            "reason": bad.reason,
        },
        "markups": str(markups),
        "transform": str(transform),
        "picture": str(picture),
    }
