"""The deformable digital twin: data assimilation with honest error and where to measure next.

Public API
----------
:class:`Twin` (``Twin(basis, mode=..., noise_mm=...)``, :meth:`Twin.update` ->
:class:`TwinState`); :class:`DeformationBasis` (``DeformationBasis.from_reduced_model``);
:class:`TwinState` with :class:`TargetEstimate`, :class:`Recommendation` and the
:class:`TwinVerdict` of :class:`TwinFailedCheck` records naming a :class:`TwinCheck`;
:class:`ProcessNoise`; :func:`coverage_radius_mm` / :func:`radius95_mm` (exact 95 % radius of a
3-D Gaussian); :func:`transfer_modes`; errors :class:`TwinError`, :class:`BasisError`,
:class:`BasisMismatchError`, :class:`PointsError`, :class:`WrongUnitsError`.

Conventions: model space is the CT's LPS mm; ``T_tracker_model`` maps model points into
tracker space; the covariance is over ``[rotation vector (rad), translation (mm), amplitudes]``
of a left perturbation of ``T_model_tracker`` about the organ centroid.
"""

from surgplan.twin.basis import DeformationBasis
from surgplan.twin.errors import (
    BasisError,
    BasisMismatchError,
    PointsError,
    TwinError,
    WrongUnitsError,
)
from surgplan.twin.noise import ProcessNoise
from surgplan.twin.radius import coverage_radius_mm, radius95_mm
from surgplan.twin.rom_basis import basis_from_reduced_model, transfer_modes
from surgplan.twin.state import Recommendation, TargetEstimate, TwinState
from surgplan.twin.twin import Twin
from surgplan.twin.verdict import TwinCheck, TwinFailedCheck, TwinVerdict

__all__ = [
    "BasisError",
    "BasisMismatchError",
    "DeformationBasis",
    "PointsError",
    "ProcessNoise",
    "Recommendation",
    "TargetEstimate",
    "Twin",
    "TwinCheck",
    "TwinError",
    "TwinFailedCheck",
    "TwinState",
    "TwinVerdict",
    "WrongUnitsError",
    "basis_from_reduced_model",
    "coverage_radius_mm",
    "radius95_mm",
    "transfer_modes",
]
