"""Validation on the user's data: the case's twin on real acquisitions with a known answer.

Each acquisition (:mod:`surgplan.credibility.user_data`) is given to a fresh twin of the case
in rigid and in deformable mode, as ``surgplan register --case`` and the live session build it
(:func:`surgplan.twin.case_twin.twin_from_case`: the case's basis and prepared surface, the
acquisition's noise or the context's planned one, global-search seed :data:`TWIN_SEED`, one
update with every point). Truth targets that are not the twin's own are added to its targets
(as a ``targets/*.mrk.json`` markup would be; targets do not change the fit). The
recommendation is not computed (it does not change the estimate either). Per acquisition and
mode: the TRE at each truth target (distance of the twin's tracker-space target to the true
one, mm), whether it lies inside the predicted radius95, the verdict and its reason, the
points and the surface coverage (:mod:`surgplan.credibility.coverage`, on the deformable
twin's registered surface); and the virtual-patient study's tumour TRE at the nearest studied
coverage and noise (:mod:`surgplan.credibility.user_summary` sums them up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from surgplan.credibility.coverage import Coverage, acquired_coverage
from surgplan.credibility.user_data import Acquisition

__all__ = [
    "MODES",
    "TWIN_SEED",
    "AcquisitionScore",
    "ModeScore",
    "TargetScore",
    "score_acquisition",
    "score_acquisitions",
]

#: The twin's global-search seed (``surgplan register --seed`` and the live session's default).
TWIN_SEED = 0
MODES = ("rigid", "deformable")


@dataclass(frozen=True)
class TargetScore:
    """The twin's error at one truth target (tracker space, mm).

    Attributes
    ----------
    name : str
        Target name.
    twin_target : bool
        One of the case twin's own targets.
    truth_tracker_mm, predicted_tracker_mm : list of float
        True and predicted positions, tracker space, mm.
    tre_mm : float
        Distance between them, mm.
    radius95_mm : float
        The twin's predicted 95 % radius, mm.
    inside : bool
        ``tre_mm <= radius95_mm``.
    """

    name: str
    twin_target: bool
    truth_tracker_mm: list[float]
    predicted_tracker_mm: list[float]
    tre_mm: float
    radius95_mm: float
    inside: bool


@dataclass(frozen=True)
class ModeScore:
    """One mode's run on an acquisition.

    Attributes
    ----------
    mode : str
        ``"rigid"`` or ``"deformable"``.
    trustworthy : bool
        The twin's reliability verdict.
    reason : str
        Its reason (``"ok"`` when trusted).
    n_points_used, n_points_dropped : int
        Points the twin assimilated and dropped.
    time_ms : float
        The update's wall time, ms.
    targets : tuple of TargetScore
        Every truth target, in the manifest's order.
    """

    mode: str
    trustworthy: bool
    reason: str
    n_points_used: int
    n_points_dropped: int
    time_ms: float
    targets: tuple[TargetScore, ...]

    def headline(self, quantity: str) -> tuple[float, str]:
        """TRE at ``quantity`` if it is a truth target, else the mean over the truth, mm."""
        for t in self.targets:
            if t.name == quantity:
                return t.tre_mm, quantity
        return float(np.mean([t.tre_mm for t in self.targets])), "mean of the truth targets"


@dataclass(frozen=True)
class AcquisitionScore:
    """An acquisition's description and the twin's figures on it in each mode.

    Attributes
    ----------
    name, source, description, points_file : str
        As :class:`~surgplan.credibility.user_data.Acquisition`.
    n_points : int
        Points in the file.
    noise_mm : float
        The noise the twin was given, mm.
    noise_source : str
        ``"manifest"`` or ``"context plan (not given)"``.
    truth_kind : str
        ``"tracker_mm"`` or ``"T_tracker_model"``.
    coverage : Coverage
        Surface and anterior coverage of the points.
    modes : dict of str to ModeScore
        Per mode.
    """

    name: str
    source: str
    description: str
    points_file: str
    n_points: int
    noise_mm: float
    noise_source: str
    truth_kind: str
    coverage: Coverage
    modes: dict[str, ModeScore]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _twin(model: Any, acq: Acquisition, mode: str, noise_mm: float) -> Any:
    """A fresh twin of the case as :func:`twin_from_case` builds it, with the truth's targets."""
    from surgplan.twin import Twin

    basis = model.basis(dict(model.targets_mm) | acq.extra_targets_mm())
    return Twin(basis, mode=mode, noise_mm=noise_mm, surface=model.surface_model,
                seed=TWIN_SEED, recommend=False)  # fmt: skip


def _mode_score(state: Any, acq: Acquisition) -> ModeScore:
    targets = []
    for truth in acq.truth:
        est = state.target(truth.name)
        tre = float(np.linalg.norm(est.position_tracker_mm - truth.tracker_mm))
        targets.append(TargetScore(
            truth.name, truth.twin_target, truth.tracker_mm.tolist(),
            np.asarray(est.position_tracker_mm).tolist(), tre, float(est.radius95_mm),
            bool(tre <= est.radius95_mm),
        ))  # fmt: skip
    return ModeScore(state.mode, bool(state.trustworthy), str(state.verdict.reason),
                     int(state.n_points), int(state.n_points_dropped), float(state.time_ms),
                     tuple(targets))  # fmt: skip


def _coverage(twin: Any, points_tracker_mm: np.ndarray) -> Coverage:
    """Coverage on the twin's registered, deformed surface, in model space."""
    T_mt = np.linalg.inv(twin.state.T_tracker_model)
    u = twin.basis.surface_displacement_mm(twin.state.amplitudes)
    q = points_tracker_mm @ T_mt[:3, :3].T + T_mt[:3, 3]
    return acquired_coverage(twin.basis.vertices_mm + u, twin.basis.faces, q)


def score_acquisition(model: Any, acq: Acquisition, default_noise_mm: float) -> AcquisitionScore:
    """Run the rigid and the deformable twin on one acquisition (module docstring).

    Parameters
    ----------
    model : surgplan.twin.case_twin.CaseModel
        The case's twin model.
    acq : Acquisition
        A checked acquisition.
    default_noise_mm : float
        Sensor noise when the manifest gives none (the context's plan), mm.
    """
    noise = acq.noise_mm if acq.noise_mm is not None else float(default_noise_mm)
    modes, coverage = {}, None
    for mode in MODES:
        twin = _twin(model, acq, mode, noise)
        modes[mode] = _mode_score(twin.update(acq.points_tracker_mm), acq)
        if mode == "deformable" or coverage is None:
            coverage = _coverage(twin, acq.points_tracker_mm)
    assert coverage is not None
    return AcquisitionScore(
        name=acq.name, source=acq.source, description=acq.description,
        points_file=acq.points_file, n_points=len(acq.points_tracker_mm), noise_mm=noise,
        noise_source="manifest" if acq.noise_mm is not None else "context plan (not given)",
        truth_kind=acq.truth_kind, coverage=coverage, modes=modes,
    )  # fmt: skip


def score_acquisitions(
    case_dir: str | Path, manifests: list[str | Path] | tuple[str | Path, ...],
    default_noise_mm: float, progress: Callable[[str], None] | None = None,
) -> tuple[AcquisitionScore, ...]:  # fmt: skip
    """Check every manifest, then score each acquisition (raises before any twin runs)."""
    from surgplan.credibility.user_data import load_acquisitions
    from surgplan.twin.case_twin import load_case_model

    model = load_case_model(case_dir)
    acquisitions = load_acquisitions(list(manifests), model)
    out = []
    for i, acq in enumerate(acquisitions):
        if progress is not None:
            progress(f"validation on your data {i + 1}/{len(acquisitions)}")
        out.append(score_acquisition(model, acq, default_noise_mm))
    return tuple(out)
