"""The result of a surface registration: the pose, its fit, its verdict and how it was found."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration._points import apply_transform
from registration.fit import FitAssessment
from registration.verdict import FailedCheck, Verdict

__all__ = ["InitMethod", "InitAttempt", "SurfaceRegistrationResult"]


class InitMethod(enum.StrEnum):
    """Where the starting pose of the final refinement came from."""

    #: FPFH features + RANSAC (:func:`registration.surface.feature_initialise`).
    FEATURES = "features"
    #: The caller's prior pose, refined by robust ICP (a prior with ``max_rotation_deg``).
    PRIOR = "prior"
    #: The seeded multi-start global search (:func:`registration.surface.global_initialise`).
    MULTI_START = "multi_start"
    #: A warm start from a given pose (a prior alone, or a real-time update).
    WARM = "warm"


@dataclass(frozen=True)
class InitAttempt:
    """A cheap initialisation tried before the final one.

    Attributes
    ----------
    method : InitMethod
        ``FEATURES`` or ``PRIOR``.
    verdict : Verdict or None
        Verdict of the fit refined from it; ``None`` when the method found no pose (too few
        points to describe by features).
    feature_fitness : float
        RANSAC fitness of a feature pose, in [0, 1] (``nan`` for other methods).
    """

    method: InitMethod
    verdict: Verdict | None
    feature_fitness: float = math.nan

    @property
    def accepted(self) -> bool:
        """Whether the fit from this start passed the verdict (and was returned)."""
        return self.verdict is not None and self.verdict.trustworthy


@dataclass(frozen=True)
class SurfaceRegistrationResult:
    """Result of registering points to a surface.

    Attributes
    ----------
    T_model_points : numpy.ndarray, shape (4, 4)
        Maps the input points (e.g. tracker space) into model space; translation in mm.
    inlier_fraction : float
        Fraction of used points within ``inlier_threshold_mm`` of the surface.
    inlier_rms_mm : float
        RMS point-to-surface distance of the inliers, mm.
    inlier_threshold_mm : float
        Distance defining an inlier, mm.
    condition_number : float
        ``sqrt(lambda_max / lambda_min)`` of the 6x6 point-to-plane information matrix (rotations
        scaled by the point spread): large means some motion is barely constrained.
    weakest_constraint : float
        ``lambda_min / n_inliers`` of the same matrix, in [0, 1]: the share of points that
        constrain the least constrained motion (0: a free slide, e.g. on a plane or a sphere).
    weakest_motion : numpy.ndarray, shape (6,)
        Unit eigenvector of that motion, ``(rotation (scaled), translation)``.
    verdict : Verdict
        Reliability verdict: the failed checks with their values (:attr:`trustworthy` and
        :attr:`reason` derive from it).
    n_points_used : int
        Finite points used.
    n_points_dropped : int
        NaN or infinite input rows dropped.
    time_ms : float
        Wall time of the call, ms.
    iterations : int
        ICP iterations of the final refinement.
    global_search : bool
        Whether the pose came from the global search (no prior pose given).
    runner_up_separation_mm : float
        For a global search: RMS distance between the points placed by the best and by the best
        distinct competing pose of nearly equal score (``inf`` when no competitor); small values
        are not a problem, a large one with a near-equal score means an ambiguous fit.
    systematic_residual_mm : float
        RMS of the inlier residuals averaged over nearest neighbours, mm: about
        ``noise / 3`` for a correct fit, larger for a shape mismatch.
    init : InitMethod
        Which initialisation gave the starting pose of the returned fit.
    attempts : tuple of InitAttempt
        Cheap initialisations tried first (features or prior), accepted or rejected.
    candidate_poses : tuple of numpy.ndarray (4, 4)
        When the multi-start search ran: its distinct refined poses, best score first (the
        start of the returned fit among them), for a caller that ranks them by another model
        (the deformable twin); empty otherwise.
    """

    T_model_points: NDArray[np.float64]
    inlier_fraction: float
    inlier_rms_mm: float
    inlier_threshold_mm: float
    condition_number: float
    weakest_constraint: float
    weakest_motion: NDArray[np.float64]
    verdict: Verdict
    n_points_used: int
    n_points_dropped: int
    time_ms: float
    iterations: int
    global_search: bool = False
    runner_up_separation_mm: float = float("inf")
    systematic_residual_mm: float = float("nan")
    init: InitMethod = InitMethod.WARM
    attempts: tuple[InitAttempt, ...] = ()
    candidate_poses: tuple[NDArray[np.float64], ...] = ()

    @classmethod
    def from_fit(
        cls,
        fit: FitAssessment,
        T_model_points: NDArray[np.float64],
        *,
        n_points_used: int,
        n_points_dropped: int,
        time_ms: float,
        iterations: int,
        global_search: bool,
        init: InitMethod,
        attempts: tuple[InitAttempt, ...] = (),
    ) -> SurfaceRegistrationResult:
        """Combine a :class:`FitAssessment` with how the pose was found.

        Parameters
        ----------
        fit : FitAssessment
            Fit statistics and verdict at ``T_model_points``.
        T_model_points : numpy.ndarray, shape (4, 4)
            The pose; translation in mm.
        n_points_used, n_points_dropped : int, keyword-only
            Finite points used, and non-finite input rows dropped.
        time_ms : float, keyword-only
            Wall time of the registration, ms.
        iterations : int, keyword-only
            ICP iterations of the final refinement.
        global_search : bool, keyword-only
            Whether a global search ran.
        init : InitMethod, keyword-only
            Source of the starting pose.
        attempts : tuple of InitAttempt, keyword-only
            Cheap initialisations tried first.

        Returns
        -------
        SurfaceRegistrationResult
        """
        return cls(
            T_model_points=T_model_points,
            inlier_fraction=fit.inlier_fraction,
            inlier_rms_mm=fit.inlier_rms_mm,
            inlier_threshold_mm=fit.inlier_threshold_mm,
            condition_number=fit.condition_number,
            weakest_constraint=fit.weakest_constraint,
            weakest_motion=fit.weakest_motion,
            verdict=fit.verdict,
            n_points_used=n_points_used,
            n_points_dropped=n_points_dropped,
            time_ms=time_ms,
            iterations=iterations,
            global_search=global_search,
            runner_up_separation_mm=fit.runner_up_separation_mm,
            systematic_residual_mm=fit.systematic_residual_mm,
            init=init,
            attempts=attempts,
        )

    @property
    def trustworthy(self) -> bool:
        """Reliability verdict: whether every check passed."""
        return self.verdict.trustworthy

    @property
    def reason(self) -> str:
        """Why (``"ok"`` when trustworthy): the failed checks' messages, ``"; "``-joined."""
        return self.verdict.reason

    @property
    def failed_checks(self) -> tuple[FailedCheck, ...]:
        """The verdict's failed checks with their measured values and thresholds."""
        return self.verdict.failed_checks

    def transform_points(self, points: ArrayLike) -> NDArray[np.float64]:
        """Map points from the input space into model space, mm."""
        return apply_transform(self.T_model_points, np.atleast_2d(np.asarray(points, float)))

    def to_dict(self) -> dict:
        """JSON-serialisable summary (the CLI contract fields first)."""
        return {
            "T_model_points": self.T_model_points.tolist(),
            "inlier_fraction": self.inlier_fraction,
            "inlier_rms_mm": self.inlier_rms_mm,
            "trustworthy": self.trustworthy,
            "reason": self.reason,
            "n_points_used": self.n_points_used,
            "n_points_dropped": self.n_points_dropped,
            "time_ms": self.time_ms,
            "condition_number": self.condition_number,
            "weakest_constraint": self.weakest_constraint,
            "inlier_threshold_mm": self.inlier_threshold_mm,
            "iterations": self.iterations,
            "global_search": self.global_search,
            "systematic_residual_mm": self.systematic_residual_mm,
        }
