"""Uncertainty quantification: is the predicted 95 % radius calibrated, and where does it come from.

**Calibration.** Over the validation trials (good acquisitions), the share of tumour errors
inside the predicted radius95, with its exact (Clopper-Pearson) and Wilson 95 % confidence
intervals (:func:`scipy.stats.binomtest`); over the trials the verdict trusts (the radius is
shown only then) and over all of them, per mode.

**Sources of doubt.** The twin's target covariance (deformable mode) is
``S = J P J^T + (d^2 + s^2) I`` (:mod:`surgplan.twin.targets`: ``P`` the posterior over pose and
amplitudes, ``d`` the model discrepancy and ``s`` the stiffness spread). After one update from
the prior ``P0`` (:class:`~surgplan.twin.Twin`'s first-update prior: ``initial_rotation_deg``,
``initial_translation_mm`` and the amplitude prior), ``P = (P0^-1 + H^T W H)^-1`` splits exactly
(Joseph form) into the prior's doubt the data leave, ``P P0^-1 P`` (**state**), and the
propagated observation noise, ``P H^T W H P = P - P P0^-1 P`` (**measurement**). The
observation noise is the sensor's ``sigma^2`` plus the reduced model's surface discrepancy
``m^2`` (:mod:`surgplan.twin.noise`), so the measurement part divides in the ratio
``sigma^2 : m^2`` (sensor / surface model). The shares are those of the trace of ``S`` (mean
squared error, mm^2), on one acquisition of the planned protocol per validation patient.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Calibration", "DoubtSources", "calibration", "doubt_sources"]

#: The first-update prior of the decomposition's twins (Twin's defaults), degrees and mm.
INITIAL_ROTATION_DEG = 5.0
INITIAL_TRANSLATION_MM = 10.0


@dataclass(frozen=True)
class Calibration:
    """Fraction of errors inside radius95 with its 95 % confidence intervals.

    Attributes
    ----------
    mode, target : str
        Twin mode and target.
    trusted_only : bool
        Only trials the verdict trusts.
    n, inside : int
        Trials counted and those whose TRE is inside radius95.
    fraction : float or None
        ``inside / n``.
    clopper_pearson, wilson : tuple of float or None
        95 % confidence intervals.
    """

    mode: str
    target: str
    trusted_only: bool
    n: int
    inside: int
    fraction: float | None
    clopper_pearson: tuple[float, float] | None
    wilson: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def calibration(
    table: dict[str, np.ndarray], mode: str, target: str, *, trusted_only: bool
) -> Calibration:
    """Calibration of radius95 at ``target`` over the good trials of the study table."""
    from scipy.stats import binomtest

    good = np.asarray(table["case"]).astype(str) == "good"
    tre = np.asarray(table[f"tre_{mode}_{target}_mm"], float)
    sel = good & np.isfinite(tre)
    if trusted_only:
        sel &= np.asarray(table[f"trustworthy_{mode}"]).astype(bool)
    inside = np.asarray(table[f"inside_{mode}_{target}"]).astype(bool)[sel]
    n, k = int(sel.sum()), int(inside.sum())
    if n == 0:
        return Calibration(mode, target, trusted_only, 0, 0, None, None, None)
    test = binomtest(k, n)
    cp, wi = test.proportion_ci(0.95, "exact"), test.proportion_ci(0.95, "wilson")
    return Calibration(mode, target, trusted_only, n, k, k / n, (float(cp.low), float(cp.high)),
                       (float(wi.low), float(wi.high)))  # fmt: skip


@dataclass(frozen=True)
class DoubtSources:
    """Mean squared target error (mm^2) of each source of doubt and its share.

    Attributes
    ----------
    target : str
        The target.
    variance_mm2 : dict of str to float
        ``state``, ``measurement_sensor``, ``measurement_surface_model``,
        ``model_discrepancy``, ``stiffness_spread`` (mean over the acquisitions).
    share : dict of str to float
        Each over their sum.
    total_check_mm2 : float
        Mean trace of the twin's own total covariance (equals the sum: a check).
    radius95_mm : dict of str to float
        Mean radius95 and its components as the twin reports them.
    n_acquisitions : int
        Acquisitions averaged.
    trusted : int
        How many of them the verdict trusted.
    """

    target: str
    variance_mm2: dict[str, float]
    share: dict[str, float]
    total_check_mm2: float
    radius95_mm: dict[str, float]
    n_acquisitions: int
    trusted: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _pose(centroid: NDArray, rotation_deg: float, translation_mm: float,
          rng: np.random.Generator) -> NDArray[np.float64]:  # fmt: skip
    """A random ``T_tracker_model`` about the organ centroid (as the study's trials)."""
    from scipy.spatial.transform import Rotation

    if rotation_deg >= 180.0:
        R = Rotation.random(random_state=rng).as_matrix()
    else:
        axis = rng.normal(size=3)
        angle = math.radians(rotation_deg) * rng.random() ** (1.0 / 3.0)
        R = Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = rng.normal(scale=translation_mm, size=3) + centroid - R @ centroid
    return T


def _split(state: Any, twin: Any, target: str, sensor_var: float) -> dict[str, float]:
    """Trace of each source's covariance at ``target`` (module docstring), mm^2."""
    from surgplan.twin.targets import target_jacobians

    basis = twin.basis
    P = np.asarray(state.covariance, float)
    p0 = np.concatenate([
        np.full(3, math.radians(INITIAL_ROTATION_DEG) ** 2),
        np.full(3, INITIAL_TRANSLATION_MM**2), np.asarray(basis.prior_std, float) ** 2,
    ])  # fmt: skip
    prior_part = P @ (P / p0[:, None])
    i = basis.target_names.index(target)
    _, J = target_jacobians(basis, state.amplitudes, state.rotation_centre_mm)
    Jt = J[i]
    state_var = float(np.trace(Jt @ prior_part @ Jt.T))
    meas = float(np.trace(Jt @ (P - prior_part) @ Jt.T))
    m2 = float(twin.model_noise_mm) ** 2
    return {
        "state": state_var,
        "measurement_sensor": meas * sensor_var / (sensor_var + m2),
        "measurement_surface_model": meas * m2 / (sensor_var + m2),
        "model_discrepancy": 3.0 * float(basis.discrepancy_mm[i]) ** 2,
        "stiffness_spread": 3.0 * float(basis.stiffness_spread_mm[i]) ** 2,
    }


def doubt_sources(
    case_dir: Any, patients: list[Any], plan: dict[str, Any], pose: dict[str, float],
    target: str, seed: int = 0,
) -> DoubtSources:  # fmt: skip
    """Split the deformable twin's tumour covariance into its sources (module docstring).

    Parameters
    ----------
    case_dir : path
        The twin-ready case.
    patients : list of VirtualPatient
        The validation patients (one acquisition each).
    plan : dict
        The planned acquisition (sensor, anterior_coverage, noise_mm, n_points).
    pose : dict
        ``rotation_deg`` and ``translation_mm`` of the unknown tracker pose.
    target : str
        The target (the tumour).
    seed : int
        Seed of the acquisitions.
    """
    import registration as reg
    from surgplan.twin import Twin
    from surgplan.twin.case_twin import load_case_model
    from surgplan.twin_study.trial import anterior_fraction

    model = load_case_model(case_dir)
    rng = np.random.default_rng([seed, 4242])
    rows, totals, radii, trusted = [], [], [], 0
    for vp in patients:
        basis = model.basis({k: np.asarray(v) for k, v in vp.targets_undeformed_mm.items()})
        twin = Twin(basis, mode="deformable", noise_mm=plan["noise_mm"],
                    surface=model.surface_model, recommend=False, seed=int(rng.integers(2**31)),
                    initial_rotation_deg=INITIAL_ROTATION_DEG,
                    initial_translation_mm=INITIAL_TRANSLATION_MM)  # fmt: skip
        v, f = np.asarray(vp.surface_mm, float), np.asarray(vp.faces, np.int64)
        cov = min(1.0, plan["anterior_coverage"] * anterior_fraction(v, f))
        sim = reg.simulate_swabs if plan["sensor"] == "swabs" else reg.simulate_scan
        pts = reg.add_noise(sim((v, f), n_points=plan["n_points"], coverage=cov, seed=rng),
                            noise_mm=plan["noise_mm"], seed=rng)  # fmt: skip
        T = _pose(v.mean(axis=0), pose["rotation_deg"], pose["translation_mm"], rng)
        state = twin.update(pts @ T[:3, :3].T + T[:3, 3])
        trusted += bool(state.trustworthy)
        rows.append(_split(state, twin, target, float(plan["noise_mm"]) ** 2))
        est = state.target(target)
        totals.append(float(np.trace(est.covariance_tracker_mm2)))
        radii.append([est.radius95_mm, est.posterior_mm, est.discrepancy_mm, est.stiffness_mm])
    var = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    total = sum(var.values())
    r = np.mean(radii, axis=0)
    return DoubtSources(
        target=target, variance_mm2=var, share={k: x / total for k, x in var.items()},
        total_check_mm2=float(np.mean(totals)),
        radius95_mm={"total": float(r[0]), "posterior": float(r[1]),
                     "discrepancy": float(r[2]), "stiffness": float(r[3])},
        n_acquisitions=len(rows), trusted=trusted,
    )  # fmt: skip
