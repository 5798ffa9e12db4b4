"""The twin's state after an update, and its lossless serialisation.

``TwinState.from_dict(json.loads(json.dumps(state.to_dict())))`` equals ``state`` exactly:
floats go through ``repr`` (exact in JSON), non-finite ones as ``"nan"``/``"inf"`` strings.
Equality compares arrays elementwise (NaN equal to NaN).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from surgplan.twin.serial import dec_array, dec_float, enc_array, enc_float, same
from surgplan.twin.verdict import TwinCheck, TwinFailedCheck, TwinVerdict

__all__ = ["TargetEstimate", "Recommendation", "TwinState", "SCHEMA_VERSION"]

#: Version of :meth:`TwinState.to_dict`'s layout.
SCHEMA_VERSION = 1


class _ExactEq:
    """Field-by-field exact equality for frozen dataclasses holding arrays."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            same(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class TargetEstimate(_ExactEq):
    """One target's position and predicted error.

    Attributes
    ----------
    name : str
        Target name.
    position_tracker_mm : numpy.ndarray, shape (3,)
        Estimated position in tracker space, mm.
    radius95_mm : float
        Radius of the sphere about it holding the true position with 95 % probability, mm.
    posterior_mm : float
        The same radius from the state's posterior alone (pose, deformation and measurement
        noise propagated), mm.
    discrepancy_mm : float
        The radius from the model's discrepancy alone, mm.
    stiffness_mm : float
        The radius from the stiffness spread alone, mm. (Radii do not add: the total comes
        from the summed covariances.)
    covariance_tracker_mm2 : numpy.ndarray, shape (3, 3)
        Total error covariance in tracker axes, mm^2.
    """

    name: str
    position_tracker_mm: NDArray[np.float64]
    radius95_mm: float
    posterior_mm: float
    discrepancy_mm: float
    stiffness_mm: float
    covariance_tracker_mm2: NDArray[np.float64]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (exact floats)."""
        return {
            "name": self.name,
            "position_tracker_mm": enc_array(self.position_tracker_mm),
            "radius95_mm": enc_float(self.radius95_mm),
            "posterior_mm": enc_float(self.posterior_mm),
            "discrepancy_mm": enc_float(self.discrepancy_mm),
            "stiffness_mm": enc_float(self.stiffness_mm),
            "covariance_tracker_mm2": enc_array(self.covariance_tracker_mm2),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetEstimate:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(d["name"]),
            position_tracker_mm=dec_array(d["position_tracker_mm"], (3,)),
            radius95_mm=dec_float(d["radius95_mm"]),
            posterior_mm=dec_float(d["posterior_mm"]),
            discrepancy_mm=dec_float(d["discrepancy_mm"]),
            stiffness_mm=dec_float(d["stiffness_mm"]),
            covariance_tracker_mm2=dec_array(d["covariance_tracker_mm2"], (3, 3)),
        )


@dataclass(frozen=True, eq=False)
class Recommendation(_ExactEq):
    """Where to acquire points next (a surface patch the viewer can highlight).

    Attributes
    ----------
    target : str
        The target whose error the recommendation shrinks.
    patch_centre_model_mm, patch_centre_tracker_mm : numpy.ndarray, shape (3,)
        Patch centre on the undeformed model and on the posed, deformed twin, mm.
    vertex_indices : numpy.ndarray of int, shape (M,)
        Surface vertices of the patch.
    current_radius95_mm : float
        The target's radius95 now, mm.
    expected_radius95_mm : float
        Its expected radius95 after acquiring ``n_points`` there, mm.
    n_points : int
        Points the expectation assumes.
    """

    target: str
    patch_centre_model_mm: NDArray[np.float64]
    patch_centre_tracker_mm: NDArray[np.float64]
    vertex_indices: NDArray[np.int64]
    current_radius95_mm: float
    expected_radius95_mm: float
    n_points: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (exact floats)."""
        return {
            "target": self.target,
            "patch_centre_model_mm": enc_array(self.patch_centre_model_mm),
            "patch_centre_tracker_mm": enc_array(self.patch_centre_tracker_mm),
            "vertex_indices": [int(i) for i in self.vertex_indices],
            "current_radius95_mm": enc_float(self.current_radius95_mm),
            "expected_radius95_mm": enc_float(self.expected_radius95_mm),
            "n_points": int(self.n_points),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recommendation:
        """Inverse of :meth:`to_dict`."""
        return cls(
            target=str(d["target"]),
            patch_centre_model_mm=dec_array(d["patch_centre_model_mm"], (3,)),
            patch_centre_tracker_mm=dec_array(d["patch_centre_tracker_mm"], (3,)),
            vertex_indices=np.array(d["vertex_indices"], dtype=np.int64),
            current_radius95_mm=dec_float(d["current_radius95_mm"]),
            expected_radius95_mm=dec_float(d["expected_radius95_mm"]),
            n_points=int(d["n_points"]),
        )


def _verdict_to_dict(v: TwinVerdict) -> dict[str, Any]:
    return {
        "trustworthy": v.trustworthy,
        "reason": v.reason,
        "failed_checks": [
            {
                "check": f.check.value,
                "value": enc_float(f.value),
                "threshold": enc_float(f.threshold),
                "noise_mm": enc_float(f.noise_mm),
                "stage": f.stage,
            }
            for f in v.failed_checks
        ],
    }


def _verdict_from_dict(d: dict[str, Any]) -> TwinVerdict:
    return TwinVerdict(
        tuple(
            TwinFailedCheck(
                TwinCheck(f["check"]),
                dec_float(f["value"]),
                dec_float(f["threshold"]),
                dec_float(f["noise_mm"]),
                str(f["stage"]),
            )
            for f in d["failed_checks"]
        )
    )


@dataclass(frozen=True, eq=False)
class TwinState(_ExactEq):
    """The twin after an update.

    Attributes
    ----------
    T_tracker_model : numpy.ndarray, shape (4, 4)
        Pose of the organ model in tracker space (translation mm).
    amplitudes : numpy.ndarray, shape (k,)
        Modal amplitudes (``k = 0`` in rigid mode).
    covariance : numpy.ndarray, shape (6 + k, 6 + k)
        Joint posterior covariance of ``[w (rad), t (mm), a]``: a left perturbation of
        ``T_model_tracker`` in model space, rotation vector ``w`` about
        ``rotation_centre_mm``, then translation ``t``, then the amplitudes.
    rotation_centre_mm : numpy.ndarray, shape (3,)
        Centre of the perturbation's rotation (the organ's vertex centroid), model space, mm.
    mode : {"rigid", "deformable"}
        Assimilation mode.
    n_points : int
        Points assimilated over all batches.
    n_points_dropped : int
        NaN/infinite rows dropped from the last batch.
    iterations : int
        Gauss-Newton iterations of the last update.
    targets : tuple of TargetEstimate
        Every target's position and predicted error.
    verdict : TwinVerdict
        Whether the overlay may be shown, and why not.
    recommendation : Recommendation or None
        Where to acquire next (``None`` without targets or when not computed).
    time_ms : float
        Duration of the update, ms.
    """

    T_tracker_model: NDArray[np.float64]
    amplitudes: NDArray[np.float64]
    covariance: NDArray[np.float64]
    rotation_centre_mm: NDArray[np.float64]
    mode: Literal["rigid", "deformable"]
    n_points: int
    n_points_dropped: int
    iterations: int
    targets: tuple[TargetEstimate, ...]
    verdict: TwinVerdict
    recommendation: Recommendation | None = None
    time_ms: float = float("nan")

    @property
    def trustworthy(self) -> bool:
        """Whether the verdict allows the overlay."""
        return self.verdict.trustworthy

    def target(self, name: str) -> TargetEstimate:
        """The estimate of target ``name`` (``KeyError`` naming the known ones)."""
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(f"no target {name!r}; targets: {[t.name for t in self.targets]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; lossless (see the module docstring)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "T_tracker_model": enc_array(self.T_tracker_model),
            "amplitudes": enc_array(self.amplitudes),
            "covariance": enc_array(self.covariance),
            "rotation_centre_mm": enc_array(self.rotation_centre_mm),
            "mode": self.mode,
            "n_points": int(self.n_points),
            "n_points_dropped": int(self.n_points_dropped),
            "iterations": int(self.iterations),
            "targets": [t.to_dict() for t in self.targets],
            "verdict": _verdict_to_dict(self.verdict),
            "recommendation": None
            if self.recommendation is None
            else self.recommendation.to_dict(),
            "time_ms": enc_float(self.time_ms),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TwinState:
        """Inverse of :meth:`to_dict`."""
        if d.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"TwinState schema_version {d.get('schema_version')!r}, expected {SCHEMA_VERSION}"
            )
        k = len(d["amplitudes"])
        rec = d["recommendation"]
        return cls(
            T_tracker_model=dec_array(d["T_tracker_model"], (4, 4)),
            amplitudes=dec_array(d["amplitudes"], (k,)),
            covariance=dec_array(d["covariance"], (6 + k, 6 + k)),
            rotation_centre_mm=dec_array(d["rotation_centre_mm"], (3,)),
            mode=d["mode"],
            n_points=int(d["n_points"]),
            n_points_dropped=int(d["n_points_dropped"]),
            iterations=int(d["iterations"]),
            targets=tuple(TargetEstimate.from_dict(t) for t in d["targets"]),
            verdict=_verdict_from_dict(d["verdict"]),
            recommendation=None if rec is None else Recommendation.from_dict(rec),
            time_ms=dec_float(d["time_ms"]),
        )
