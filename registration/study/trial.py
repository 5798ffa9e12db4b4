"""One study trial: simulate an acquisition, register it, measure TRE against the truth."""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from registration._points import apply_transform
from registration.icp import surface_residuals
from registration.metrics import target_registration_error
from registration.model import SurfaceModel, load_surface, prepare_surface
from registration.sensors import add_noise, add_outliers, simulate_scan, simulate_swabs
from registration.study.spec import ModelSpec, StudySpec
from registration.surface import register_surface

__all__ = ["run_trial", "trial_seed", "model_for", "targets_for"]

#: A trial counts as a successful registration when the largest target TRE is below this, mm.
SUCCESS_TRE_MM = 5.0
#: Points used by the "too_few" case (below the verdict's minimum).
TOO_FEW_POINTS = 20


def trial_seed(spec_seed: int, trial_id: int) -> np.random.SeedSequence:
    """Independent, reproducible random stream of a trial (independent of scheduling).

    Parameters
    ----------
    spec_seed : int
        The study's seed.
    trial_id : int
        The trial's position in :func:`registration.study.expand_trials`.

    Returns
    -------
    numpy.random.SeedSequence
    """
    return np.random.SeedSequence([spec_seed, trial_id])


@lru_cache(maxsize=8)
def _load(path: str) -> SurfaceModel:
    return load_surface(path)


@lru_cache(maxsize=8)
def _mirrored(path: str) -> SurfaceModel:
    m = _load(path)
    v = m.vertices.copy()
    v[:, 0] = 2.0 * m.centroid_mm[0] - v[:, 0]  # left-right mirror about the centroid
    return prepare_surface((v, m.faces[:, ::-1].copy()), name=m.name + "-mirrored")


def model_for(model: ModelSpec) -> SurfaceModel:
    """The prepared surface of a model, cached per worker process."""
    return _load(model.surface)


def targets_for(model: ModelSpec) -> tuple[list[str], NDArray[np.float64]]:
    """Target names and model-space positions (surface targets: area centroid), mm."""
    names, pts = [], []
    for t in model.targets:
        names.append(t.name)
        pts.append(t.point_mm if t.point_mm is not None else _load(t.surface).centroid_mm)
    return names, np.asarray(pts, dtype=np.float64).reshape(-1, 3)


def _flatten(points: NDArray, thickness_mm: float) -> NDArray:
    c = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - c, full_matrices=False)
    h = (points - c) @ vt[2]
    scale = thickness_mm / max(float(np.std(h)), 1e-9)
    return points - np.outer(h * (1.0 - min(scale, 1.0)), vt[2])


def run_trial(spec: StudySpec, trial: dict) -> dict:
    """Run one trial and return its table row.

    The true pose ``T_points_model`` is random (orientation within ``rotation_deg`` of the prior,
    translation ``translation_mm`` per axis); the registration gets the prior (identity) and the
    orientation bound, or no prior at all when ``rotation_deg`` is 180.

    Parameters
    ----------
    spec : StudySpec
        The study.
    trial : dict
        One row of :func:`registration.study.expand_trials` (noise and translations in mm,
        rotations in degrees).

    Returns
    -------
    dict
        The trial's table row: TRE per target and FRE in mm, rotation error in degrees, time
        in ms, the verdict and its reason.
    """
    ss = trial_seed(spec.seed, trial["trial_id"])
    rng = np.random.default_rng(ss)
    mspec = spec.models[trial["model_index"]]
    model = model_for(mspec)
    pts = _acquire(mspec, model, trial, rng)
    # Truth: T_points_model; the prior is the identity.
    T_pm, axis = _true_pose(model, trial, rng)
    measured = apply_transform(T_pm, pts)
    kwargs: dict = {}
    if trial["case"] == "wrong_minimum":
        # Warm start from a pose 90-180 degrees off the truth: a wrong local minimum.
        c = model.centroid_mm
        bad = Rotation.from_rotvec(axis * np.deg2rad(rng.uniform(90.0, 180.0))).as_matrix()
        T_bad = np.eye(4)
        T_bad[:3, :3] = bad
        T_bad[:3, 3] = c - bad @ c
        kwargs["T_init"] = T_bad @ np.linalg.inv(T_pm)
    elif trial["rotation_deg"] < 180.0:
        kwargs = {"T_init": np.eye(4), "max_rotation_deg": trial["rotation_deg"]}
    t0 = time.perf_counter()
    res = register_surface(
        measured, model, seed=int(ss.generate_state(1)[0]), noise_mm=trial["noise_mm"], **kwargs
    )
    elapsed = (time.perf_counter() - t0) * 1e3
    names, targets = targets_for(mspec)
    tre = target_registration_error(res.T_model_points, T_pm, targets)
    err_R = res.T_model_points[:3, :3] @ T_pm[:3, :3]
    # Surface FRE: RMS point-to-surface distance of all points after registration.
    _, dist, _ = surface_residuals(
        apply_transform(res.T_model_points, measured),
        model.vertices,
        model.normals,
        model.tree,
        model.spacing_mm,
    )
    row = dict(trial)
    row.update(
        {
            "seed": int(ss.generate_state(1)[0]),
            "fre_mm": float(np.sqrt(np.mean(dist**2))),
            "inlier_fraction": res.inlier_fraction,
            "inlier_rms_mm": res.inlier_rms_mm,
            "condition_number": res.condition_number,
            "weakest_constraint": res.weakest_constraint,
            "systematic_residual_mm": res.systematic_residual_mm,
            "rotation_error_deg": float(np.rad2deg(Rotation.from_matrix(err_R).magnitude())),
            "max_tre_mm": float(tre.max()) if len(tre) else float("nan"),
            "success": bool(len(tre) and tre.max() < SUCCESS_TRE_MM),
            "trustworthy": res.trustworthy,
            "reason": res.reason,
            "n_points_used": res.n_points_used,
            "time_ms": elapsed,
        }
    )
    for name, value in zip(names, tre, strict=True):
        row[f"tre_{name}_mm"] = float(value)
    return row


def _acquire(
    mspec: ModelSpec, model: SurfaceModel, trial: dict, rng: np.random.Generator
) -> NDArray[np.float64]:
    """The trial's simulated points in model space, mm (its case decides what is sampled)."""
    case = trial["case"]
    n_points = TOO_FEW_POINTS if case == "too_few" else trial["n_points"]
    coverage = trial["coverage"]
    source = model
    if case == "wrong_organ":
        source = _load(mspec.decoy_surface)
    elif case == "mirrored":
        source = _mirrored(mspec.surface)
    elif case == "planar":
        coverage = min(coverage, 0.05)
    sim = simulate_swabs if trial["sensor"] == "swabs" else simulate_scan
    pts = sim(source, n_points=n_points, coverage=coverage, seed=rng)
    if case == "planar":
        pts = _flatten(pts, 0.5)
    pts = add_noise(pts, noise_mm=trial["noise_mm"], seed=rng)
    outl = 0.3 if case == "outliers30" else trial["outlier_fraction"]
    if outl > 0:
        pts, _ = add_outliers(pts, fraction=outl, seed=rng)
    return pts


def _true_pose(
    model: SurfaceModel, trial: dict, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Random true ``T_points_model`` about the model centroid, and the unit axis drawn for it."""
    max_deg = trial["rotation_deg"]
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    if max_deg >= 180.0:
        R = Rotation.random(random_state=rng)
    else:
        R = Rotation.from_rotvec(axis * np.deg2rad(max_deg) * rng.random() ** (1.0 / 3.0))
    T_pm = np.eye(4)
    T_pm[:3, :3] = R.as_matrix()
    T_pm[:3, 3] = rng.normal(scale=trial["translation_mm"], size=3)
    # Rotate about the model centroid so translation_mm is the displacement of the organ.
    c = model.centroid_mm
    T_pm[:3, 3] += c - T_pm[:3, :3] @ c
    return T_pm, axis
