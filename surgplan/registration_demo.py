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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from registration import (
    InitMethod,
    Verdict,
    apply_transform,
    target_registration_error,
)
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
#: Fraction of gross outliers in the spoiled acquisition that the verdict must flag.
OUTLIER_FRACTION = 0.3


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


@dataclass(frozen=True)
class GlobalFit:
    """The first registration, with no prior pose.

    Attributes
    ----------
    tre_tumour_mm : float
        TRE at the tumour centroid against the simulated truth, mm.
    inlier_fraction : float
        Fraction of the swabs on the surface after the fit.
    inlier_rms_mm : float
        RMS point-to-surface distance of the inliers, mm.
    verdict : Verdict
        Reliability verdict.
    init : InitMethod
        Which initialisation gave the pose.
    time_s : float
        Wall time of the registration, s.
    """

    tre_tumour_mm: float
    inlier_fraction: float
    inlier_rms_mm: float
    verdict: Verdict
    init: InitMethod
    time_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the demo's ``registration.global``)."""
        return {
            "tre_tumour_mm": self.tre_tumour_mm,
            "inlier_fraction": self.inlier_fraction,
            "inlier_rms_mm": self.inlier_rms_mm,
            "trustworthy": self.verdict.trustworthy,
            "reason": self.verdict.reason,
            "init": self.init.value,
            "time_s": self.time_s,
        }


@dataclass(frozen=True)
class TrackingRun:
    """The warm-started updates while the liver moves.

    Attributes
    ----------
    times_ms : tuple of float
        Wall time of each update, ms (the first also loads the compiled kernels).
    tre_tumour_mm : tuple of float
        TRE at the tumour centroid after each update, mm.
    verdicts : tuple of Verdict
        Verdict of each update.
    """

    times_ms: tuple[float, ...]
    tre_tumour_mm: tuple[float, ...]
    verdicts: tuple[Verdict, ...]

    @property
    def trusted(self) -> int:
        """Updates whose verdict trusted the fit."""
        return sum(v.trustworthy for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the demo's ``registration.tracking``)."""
        return {
            "updates": len(self.verdicts),
            "motion_per_update": f"{MOTION_DEG:g} deg about the liver centroid + {MOTION_MM:g} mm",
            # The first update also loads the compiled kernels: reported on its own.
            "first_update_ms": float(self.times_ms[0]),
            "median_update_ms": float(np.median(self.times_ms[1:])),
            "max_update_ms": float(np.max(self.times_ms[1:])),
            "max_tre_tumour_mm": float(np.max(self.tre_tumour_mm)),
            "mean_tre_tumour_mm": float(np.mean(self.tre_tumour_mm)),
            "trusted": self.trusted,
            "not_trusted_reasons": [v.reason for v in self.verdicts if not v.trustworthy],
        }


@dataclass(frozen=True)
class RegistrationDemoResult:
    """Everything :func:`registration_demo` measured and wrote.

    Attributes
    ----------
    global_fit : GlobalFit
        The first registration, no prior pose.
    tracking : TrackingRun
        The warm-started updates.
    outliers : Verdict
        Verdict on the acquisition spoiled by :data:`OUTLIER_FRACTION` gross outliers.
    markups, transform, picture : pathlib.Path
        The swabs (3D Slicer markups), the registration (ITK transform) and the picture.
    """

    global_fit: GlobalFit
    tracking: TrackingRun
    outliers: Verdict
    markups: Path
    transform: Path
    picture: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: the ``registration`` section of the demo's JSON output."""
        return {
            "points": SWAB_POINTS,
            "coverage": SWAB_COVERAGE,
            "noise_mm": NOISE_MM,
            "global": self.global_fit.to_dict(),
            "tracking": self.tracking.to_dict(),
            "outliers": {
                "fraction": OUTLIER_FRACTION,
                "trustworthy": self.outliers.trustworthy,
                "reason": self.outliers.reason,
            },
            "markups": str(self.markups),
            "transform": str(self.transform),
            "picture": str(self.picture),
        }


def registration_demo(
    surfaces: Mapping[str, pv.PolyData],
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
) -> RegistrationDemoResult:
    """Register simulated pointer swabs to ``surfaces["liver"]``; targets the tumour centroid.

    Parameters
    ----------
    surfaces : mapping of str to pyvista.PolyData
        At least ``"liver"`` and ``"tumour"`` closed surfaces, LPS mm.
    out_dir : str or os.PathLike
        Where ``swabs.mrk.json``, ``T_model_tracker.tfm`` and ``registration.png`` go.
    seed : int, keyword-only
        Seed of the simulated acquisitions and tracker pose.

    Returns
    -------
    RegistrationDemoResult
        The global fit (TRE at the tumour, mm; inlier RMS; verdict; time), the tracking run
        (update times in ms, TRE, verdicts), the spoiled acquisition's verdict and the written
        file paths; ``to_dict()`` gives the demo's JSON section.
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
    global_fit = GlobalFit(
        tre_tumour_mm=float(
            target_registration_error(res.T_model_points, T_tracker_model, target)[0]
        ),
        inlier_fraction=res.inlier_fraction,
        inlier_rms_mm=res.inlier_rms_mm,
        verdict=res.verdict,
        init=res.init,
        time_s=global_s,
    )
    model.prepare_realtime()
    tracker = RealTimeRegistrar(model, res.T_model_points, noise_mm=NOISE_MM)
    times, errors, verdicts = [], [], []
    T_now = T_tracker_model
    for _ in range(TRACKING_UPDATES):
        # The liver moves a little (in model space) between acquisitions.
        T_now = T_now @ np.linalg.inv(_small_motion(rng, model.centroid_mm))
        update = tracker.update(acquire(T_now))
        times.append(update.time_ms)
        errors.append(float(target_registration_error(update.T_model_points, T_now, target)[0]))
        verdicts.append(update.verdict)
    spoiled, _ = add_outliers(acquire(T_now), fraction=OUTLIER_FRACTION, seed=rng)
    bad = register_surface(spoiled, model, T_init=tracker.T_model_points, noise_mm=NOISE_MM)

    markups = write_slicer_markups(out / "swabs.mrk.json", first, name="swabs")
    transform = write_itk_transform(out / "T_model_tracker.tfm", res.T_model_points)
    picture = render_structures(
        {"liver": surfaces["liver"], "tumour": surfaces["tumour"]},
        out / "registration.png",
        points={"registered swabs": apply_transform(res.T_model_points, first)},
    )
    return RegistrationDemoResult(
        global_fit=global_fit,
        tracking=TrackingRun(tuple(times), tuple(errors), tuple(verdicts)),
        outliers=bad.verdict,
        markups=Path(markups),
        transform=Path(transform),
        picture=Path(picture),
    )
