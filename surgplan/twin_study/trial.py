"""One virtual-patient trial: acquire points on the deformed organ, run the twin, score it.

A trial draws its own random stream from ``(spec seed, trial_id)`` (independent of the
scheduling), a true pose ``T_tracker_model`` (orientation within ``rotation_deg`` about the
organ centroid, translation ``translation_mm`` per axis) and an acquisition on the virtual
patient's FE-deformed liver (:class:`~surgplan.virtual_patients.VirtualPatient`):

- ``swabs``: :func:`registration.simulate_swabs` strokes; ``scan``: a surface-scan patch
  (:func:`registration.simulate_scan`, ray-cast visibility). Coverage is given as a fraction of
  the *anterior* surface (faces whose outward normal faces the surgeon, LPS ``(0, -1, 0)``):
  the simulators take a fraction of the whole surface, so it is multiplied by the anterior
  share of the deformed surface's area. Noise: isotropic Gaussian, ``noise_mm`` per axis.
- cases: ``good``; ``wrong_organ`` (points on the decoy surface); ``mirrored`` (the deformed
  liver mirrored left-right about its centroid); ``outliers30`` (30 % gross outliers,
  :func:`registration.add_outliers`); ``wrong_minimum`` (the twin is started from a pose
  90-180 degrees off the truth, skipping its global search); ``too_few`` (20 points).

Every mode of the spec (rigid, deformable) runs on the same points (a fresh twin per mode, its
targets the virtual patient's own: tumour centroid, portal and hepatic vein points). Per
target and mode the row holds the TRE (mm: distance of the twin's target to the true deformed
target in tracker space), the predicted radius95 (mm) and whether the TRE is inside it; per
mode the verdict.

The recommendation experiment (``good`` swab trials, deformable mode): the twin starts from a
small swab (``initial_points`` over ``initial_anterior_coverage`` of the anterior surface), then
takes batches of ``batch_points`` either on the recommended patch (uniform on its triangles) or
uniformly at random over the anterior surface, until the tumour TRE is below
``target_tre_mm``; the row holds the points each needed (NaN: not reached by ``max_points``).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from surgplan.twin.errors import PointsError
from surgplan.twin_study.spec import PatientsSpec, TwinStudySpec

__all__ = [
    "TOO_FEW_POINTS",
    "anterior_fraction",
    "patients_for",
    "run_twin_trial",
    "tumour_target",
]

#: Points of the ``too_few`` case.
TOO_FEW_POINTS = 20
#: Direction towards the surgeon (LPS anterior).
ANTERIOR = np.array([0.0, -1.0, 0.0])
#: Target that the recommendation experiment and the tumour figures use.
TUMOUR = "tumour_centroid"


@lru_cache(maxsize=4)
def patients_for(patients: PatientsSpec) -> tuple[Any, ...]:
    """The virtual patients of a spec, loaded (or made) once per worker process."""
    from surgplan.virtual_patients import load_virtual_patients, make_virtual_patients

    if patients.file is not None:
        return tuple(load_virtual_patients(patients.file))
    return tuple(
        make_virtual_patients(
            patients.liver_models, patients.n, patients.seed, edge_mm=patients.edge_mm
        )
    )


@lru_cache(maxsize=4)
def _prepared(case: str, structure: str) -> Any:
    """The case's model and its prepared registration surface, once per worker."""
    import registration as reg
    from surgplan.twin.case_twin import load_case_model

    model = load_case_model(case, structure=structure)
    return model, reg.prepare_surface((model.vertices_mm, model.faces), name=structure)


@lru_cache(maxsize=64)
def _basis(case: str, structure: str, patients: PatientsSpec, index: int) -> Any:
    model, _ = _prepared(case, structure)
    vp = patients_for(patients)[index]
    return model.basis({k: np.asarray(v) for k, v in vp.targets_undeformed_mm.items()})


@lru_cache(maxsize=4)
def _decoy(path: str) -> tuple[NDArray, NDArray]:
    import registration as reg

    m = reg.load_surface(path)
    return m.vertices, m.faces


def tumour_target(names: list[str] | tuple[str, ...]) -> str:
    """The tumour target's name (``tumour_centroid``, else the first target)."""
    return TUMOUR if TUMOUR in names else names[0]


def _face_geometry(v: NDArray, f: NDArray) -> tuple[NDArray, NDArray]:
    """Outward unit normals (F, 3) and areas (F,) of a closed triangle surface."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    if np.einsum("ij,ij->i", a, np.cross(b, c)).sum() < 0:  # inward winding
        n = -n
    area = 0.5 * np.linalg.norm(n, axis=1)
    return n / np.maximum(2.0 * area, 1e-300)[:, None], area


def anterior_fraction(v: NDArray, f: NDArray) -> float:
    """Share of the surface area whose outward normal faces anterior (LPS -y)."""
    n, area = _face_geometry(v, f)
    return float(area[n @ ANTERIOR > 0].sum() / area.sum())


def _sample_faces(
    v: NDArray, f: NDArray, faces: NDArray, n: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``n`` points uniform by area on the given faces."""
    _, area = _face_geometry(v, f[faces])
    pick = faces[rng.choice(len(faces), size=n, p=area / area.sum())]
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    return np.einsum("nj,njc->nc", w, v[f[pick]])


def _true_pose(centroid: NDArray, trial: dict, rng: np.random.Generator) -> tuple[NDArray, NDArray]:
    """Random ``T_tracker_model`` about the organ centroid and the unit axis drawn for it."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    if trial["rotation_deg"] >= 180.0:
        R = Rotation.random(random_state=rng).as_matrix()
    else:
        ang = np.deg2rad(trial["rotation_deg"]) * rng.random() ** (1.0 / 3.0)
        R = Rotation.from_rotvec(axis * ang).as_matrix()
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = rng.normal(scale=trial["translation_mm"], size=3) + centroid - R @ centroid
    return T, axis


def _posed(T: NDArray, p: NDArray) -> NDArray[np.float64]:
    return p @ T[:3, :3].T + T[:3, 3]


def _acquire(
    spec: TwinStudySpec, vp: Any, trial: dict, rng: np.random.Generator
) -> NDArray[np.float64]:
    """The trial's noisy points in model space, mm (the case decides what is sampled)."""
    import registration as reg

    case = trial["case"]
    v, f = np.asarray(vp.surface_mm, float), np.asarray(vp.faces, np.int64)
    if case == "wrong_organ":
        v, f = _decoy(spec.decoy_surface)
    elif case == "mirrored":
        v = v.copy()
        v[:, 0] = 2.0 * v[:, 0].mean() - v[:, 0]
        f = f[:, ::-1].copy()
    coverage = min(1.0, trial["anterior_coverage"] * anterior_fraction(v, f))
    n = TOO_FEW_POINTS if case == "too_few" else int(trial["n_points"])
    sim = reg.simulate_swabs if trial["sensor"] == "swabs" else reg.simulate_scan
    pts = sim((v, f), n_points=n, coverage=coverage, seed=rng)
    pts = reg.add_noise(pts, noise_mm=trial["noise_mm"], seed=rng)
    if case == "outliers30":
        pts, _ = reg.add_outliers(pts, fraction=0.3, seed=rng)
    return pts


def _wrong_start(T_true: NDArray, centroid: NDArray, axis: NDArray, rng: np.random.Generator):
    """A start pose 90-180 degrees off the truth about the organ centroid (a wrong minimum)."""
    R = Rotation.from_rotvec(axis * np.deg2rad(rng.uniform(90.0, 180.0))).as_matrix()
    E = np.eye(4)
    E[:3, :3] = R
    E[:3, 3] = centroid - R @ centroid
    return T_true @ E


def _twin(spec: TwinStudySpec, trial: dict, mode: str, seed: int, **kw: Any) -> Any:
    from surgplan.twin import Twin

    _, surface = _prepared(spec.case, spec.structure)
    basis = _basis(spec.case, spec.structure, spec.patients, trial["patient_index"])
    return Twin(basis, mode=mode, noise_mm=trial["noise_mm"], surface=surface, seed=seed, **kw)


def _score(state: Any, truth: dict[str, NDArray], mode: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        f"trustworthy_{mode}": bool(state.trustworthy),
        f"reason_{mode}": str(state.verdict.reason),
        f"time_ms_{mode}": float(state.time_ms),
        f"n_points_used_{mode}": int(state.n_points),
    }
    for t in state.targets:
        tre = float(np.linalg.norm(t.position_tracker_mm - truth[t.name]))
        row[f"tre_{mode}_{t.name}_mm"] = tre
        row[f"r95_{mode}_{t.name}_mm"] = float(t.radius95_mm)
        row[f"inside_{mode}_{t.name}"] = bool(tre <= t.radius95_mm)
    return row


def _recommendation_experiment(
    spec: TwinStudySpec, vp: Any, trial: dict, T: NDArray, truth: dict[str, NDArray],
    rng: np.random.Generator, seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Points to reach the tumour TRE goal: following the recommendation vs random swabbing."""
    import registration as reg

    rec = spec.recommendation
    v, f = np.asarray(vp.surface_mm, float), np.asarray(vp.faces, np.int64)
    n_t, _ = _face_geometry(v, f)
    anterior = np.flatnonzero(n_t @ ANTERIOR > 0)
    cov = min(1.0, rec.initial_anterior_coverage * anterior_fraction(v, f))
    initial = reg.simulate_swabs((v, f), n_points=rec.initial_points, coverage=cov, seed=rng)
    initial = reg.add_noise(initial, noise_mm=trial["noise_mm"], seed=rng)
    target = tumour_target(list(truth))
    out: dict[str, Any] = {}
    for strategy in ("recommended", "random"):
        srng = np.random.default_rng([seed, 1 if strategy == "recommended" else 2])
        twin = _twin(spec, trial, "deformable", seed, recommend=(strategy == "recommended"),
                     recommend_target=target, recommend_points=rec.batch_points)  # fmt: skip
        state = twin.update(_posed(T, initial))
        n = rec.initial_points
        tre = float(np.linalg.norm(state.target(target).position_tracker_mm - truth[target]))
        while tre >= rec.target_tre_mm and n + rec.batch_points <= rec.max_points:
            faces = anterior
            if strategy == "recommended" and state.recommendation is not None:
                members = np.zeros(len(v), bool)
                members[state.recommendation.vertex_indices] = True
                on = np.flatnonzero(members[f].all(axis=1))
                faces = on if len(on) else np.flatnonzero(members[f].any(axis=1))
            batch = _sample_faces(v, f, faces, rec.batch_points, srng)
            batch = reg.add_noise(batch, noise_mm=trial["noise_mm"], seed=srng)
            state = twin.update(_posed(T, batch))
            n += rec.batch_points
            tre = float(np.linalg.norm(state.target(target).position_tracker_mm - truth[target]))
        out[f"rec_points_{strategy}"] = float(n) if tre < rec.target_tre_mm else float("nan")
        out[f"rec_final_tre_{strategy}_mm"] = tre
    return out


def run_twin_trial(spec: TwinStudySpec, trial: dict) -> dict:
    """Run one trial (module docstring) and return its table row.

    Parameters
    ----------
    spec : TwinStudySpec
        The study.
    trial : dict
        One row of :func:`surgplan.twin_study.spec.expand_twin_trials`.

    Returns
    -------
    dict
        The row: the trial's parameters, the virtual patient's largest displacement (mm) and,
        per mode and target, ``tre_<mode>_<target>_mm``, ``r95_<mode>_<target>_mm``,
        ``inside_<mode>_<target>``; per mode ``trustworthy_<mode>``, ``reason_<mode>``,
        ``time_ms_<mode>``; the recommendation experiment's ``rec_points_recommended`` and
        ``rec_points_random`` (NaN where it does not run or does not reach the goal).
    """
    ss = np.random.SeedSequence([spec.seed, trial["trial_id"]])
    rng = np.random.default_rng(ss)
    seed = int(ss.generate_state(1)[0])
    vp = patients_for(spec.patients)[trial["patient_index"]]
    model, _ = _prepared(spec.case, spec.structure)
    if len(vp.surface_mm) != len(model.vertices_mm):
        from surgplan.twin.errors import TwinError

        raise TwinError(
            f"virtual patient {vp.name} has {len(vp.surface_mm)} surface vertices, the case's "
            f"{spec.structure!r} surface {len(model.vertices_mm)}: make the case from the same "
            "liver surface (surgplan import-model liver.vtk)"
        )
    centroid = model.vertices_mm.mean(axis=0)
    T, axis = _true_pose(centroid, trial, rng)
    pts = _posed(T, _acquire(spec, vp, trial, rng))
    truth = {k: _posed(T, np.asarray(p, float)[None])[0] for k, p in vp.targets_mm.items()}
    start = {}
    if trial["case"] == "wrong_minimum":
        start = {"T_tracker_model": _wrong_start(T, centroid, axis, rng)}
    row = dict(trial)
    row |= {"seed": seed, "max_displacement_mm": float(vp.max_displacement_mm),
            "n_points_acquired": int(len(pts))}  # fmt: skip
    t0 = time.perf_counter()
    for mode in spec.modes:
        twin = _twin(spec, trial, mode, seed, recommend=False, **start)
        try:
            row |= _score(twin.update(pts), truth, mode) | {f"refused_{mode}": False}
        except PointsError as exc:  # the twin refuses the points: flagged, nothing shown
            row |= {f"trustworthy_{mode}": False, f"reason_{mode}": f"refused: {exc}",
                    f"refused_{mode}": True, f"time_ms_{mode}": float("nan"),
                    f"n_points_used_{mode}": 0}  # fmt: skip
    row["rec_points_recommended"] = row["rec_points_random"] = float("nan")
    row["rec_final_tre_recommended_mm"] = row["rec_final_tre_random_mm"] = float("nan")
    run_rec = (
        spec.recommendation.enabled and trial["case"] == "good" and trial["sensor"] == "swabs"
        and "deformable" in spec.modes
    )  # fmt: skip
    if run_rec:
        row |= _recommendation_experiment(spec, vp, trial, T, truth, rng, seed)
    row["time_ms"] = (time.perf_counter() - t0) * 1e3
    return row
