"""Registration: paired-point and surface registration, accuracy metrics, sensor simulation.

Geometry only: numpy arrays (``(N, 3)`` float64, LPS mm) and meshes in, small dataclasses out.
This package never imports ``surgplan``, ``imaging``, ``biomech`` or ``vr``.

Public API
----------
Paired points: :func:`register_paired_points`, :func:`predicted_tre` (Fitzpatrick 1998 eq. 46),
:func:`expected_fre`, :class:`DegenerateConfigurationError`.
Surface: :func:`prepare_surface`, :func:`load_surface`, :class:`SurfaceModel`,
:func:`register_surface` (:class:`GlobalSearchConfig`), :class:`RealTimeRegistrar`
(:func:`warm_icp`, :class:`WarmIcpSchedule`), :class:`SurfaceRegistrationResult`
(:class:`InitMethod`, :class:`InitAttempt`).
Verdict: :func:`assess_fit` -> :class:`FitAssessment`; :class:`ReliabilityCriteria`,
:class:`Verdict` of :class:`FailedCheck` records, each naming a :class:`VerdictCheck`;
:func:`parse_reason` recovers the checks from a reason string.
Sensors: :func:`simulate_swabs`, :func:`simulate_scan`, :func:`add_noise`, :func:`add_outliers`.
Transforms: :func:`apply_transform` (4x4 ``T_to_from`` on ``(N, 3)`` points).
Metrics and sampling: :func:`target_registration_error`, :func:`farthest_point_sample`.
Files: :mod:`registration.io` (points, 3D Slicer markups, ITK transforms).
Studies: :mod:`registration.study`.
"""

from registration._points import InsufficientPointsError, apply_transform
from registration.errors import RegistrationError
from registration.fit import FitAssessment, assess_fit
from registration.metrics import target_registration_error
from registration.model import MeshError, SurfaceModel, load_surface, prepare_surface
from registration.paired import (
    DegenerateConfigurationError,
    PairedPointResult,
    expected_fre,
    fiducial_registration_error,
    predicted_tre,
    register_paired_points,
)
from registration.realtime import RealTimeRegistrar, WarmIcpSchedule, warm_icp
from registration.reliability import ReliabilityCriteria
from registration.result import InitAttempt, InitMethod, SurfaceRegistrationResult
from registration.sampling import farthest_point_sample
from registration.sensors import add_noise, add_outliers, simulate_scan, simulate_swabs
from registration.surface import GlobalSearchConfig, register_surface
from registration.verdict import FailedCheck, Verdict, VerdictCheck, parse_reason

__all__ = [
    "DegenerateConfigurationError",
    "FailedCheck",
    "FitAssessment",
    "GlobalSearchConfig",
    "InitAttempt",
    "InitMethod",
    "InsufficientPointsError",
    "MeshError",
    "PairedPointResult",
    "RealTimeRegistrar",
    "RegistrationError",
    "ReliabilityCriteria",
    "SurfaceModel",
    "SurfaceRegistrationResult",
    "Verdict",
    "VerdictCheck",
    "WarmIcpSchedule",
    "add_noise",
    "add_outliers",
    "apply_transform",
    "assess_fit",
    "expected_fre",
    "farthest_point_sample",
    "fiducial_registration_error",
    "load_surface",
    "parse_reason",
    "predicted_tre",
    "prepare_surface",
    "register_paired_points",
    "register_surface",
    "simulate_scan",
    "simulate_swabs",
    "target_registration_error",
    "warm_icp",
]
