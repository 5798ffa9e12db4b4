"""TwinState serialises losslessly; bad input gives one-line errors naming the value."""

from __future__ import annotations

import json

import numpy as np
import pytest

import registration as reg
from surgplan.errors import SurgplanError
from surgplan.twin import (
    BasisMismatchError,
    PointsError,
    Twin,
    TwinCheck,
    TwinFailedCheck,
    TwinState,
    TwinVerdict,
    WrongUnitsError,
)
from surgplan.twin.synthetic import posed_swabs, random_pose, synthetic_basis, synthetic_organ


@pytest.fixture(scope="module")
def organ():  # noqa: ANN201
    return synthetic_organ()


@pytest.fixture(scope="module")
def basis(organ):  # noqa: ANN001, ANN201
    return synthetic_basis(organ, discrepancy_mm=0.4, stiffness_spread_mm=0.3)


@pytest.fixture(scope="module")
def state_and_points(organ, basis):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(0)
    a = rng.normal(size=6) * basis.prior_std
    T = random_pose(rng)
    pts = posed_swabs(organ, basis.surface_displacement_mm(a), T, n_points=400, noise_mm=1.0,
                      seed=0)  # fmt: skip
    return Twin(basis, noise_mm=1.0, T_tracker_model=T).update(pts), pts, T


def test_round_trip_is_exact(state_and_points) -> None:  # noqa: ANN001
    s = state_and_points[0]
    assert s.recommendation is not None and len(s.targets) == 2
    back = TwinState.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s
    for name in ("T_tracker_model", "amplitudes", "covariance", "rotation_centre_mm"):
        assert np.array_equal(getattr(back, name), getattr(s, name))  # bit for bit
    for t, u in zip(back.targets, s.targets, strict=True):
        assert t.radius95_mm == u.radius95_mm and np.array_equal(
            t.covariance_tracker_mm2, u.covariance_tracker_mm2
        )
    assert back.recommendation == s.recommendation


def test_round_trip_with_failed_checks_and_nan(state_and_points) -> None:  # noqa: ANN001
    import dataclasses

    s = state_and_points[0]
    v = TwinVerdict(
        (
            TwinFailedCheck(TwinCheck.TOO_FEW_POINTS, 80.0, 200.0),
            TwinFailedCheck(TwinCheck.SYSTEMATIC_RESIDUAL, 1.25, 0.47, 1.0, "rigid"),
            TwinFailedCheck(TwinCheck.IMPLAUSIBLE_DEFORMATION, 40.1, 22.46),
        )
    )
    s2 = dataclasses.replace(s, verdict=v, recommendation=None, time_ms=float("nan"))
    text = json.dumps(s2.to_dict(), allow_nan=False)  # strict JSON: no NaN literals
    back = TwinState.from_dict(json.loads(text))
    assert back == s2 and back.verdict.checks == v.checks
    assert back.verdict.reason.startswith("too few points to tell (80 < 200)")
    assert "rigid fit: systematic residual" in back.verdict.reason


def test_nan_points_are_dropped_and_counted(basis, state_and_points) -> None:  # noqa: ANN001
    _, pts, T = state_and_points
    p = pts.copy()
    p[::10] = np.nan
    s = Twin(basis, noise_mm=1.0, T_tracker_model=T).update(p)
    assert s.n_points_dropped == 40 and s.n_points == 360
    with pytest.raises(PointsError, match="all 5 points are NaN"):
        Twin(basis, T_tracker_model=T).update(np.full((5, 3), np.nan))


@pytest.mark.parametrize(
    ("scale", "unit"),
    [(1e-3, "metres"), (0.1, "centimetres or inches"), (1 / 25.4, "centimetres or inches")],
)
def test_points_in_wrong_units(basis, state_and_points, scale: float, unit: str) -> None:  # noqa: ANN001
    pts = state_and_points[1]
    with pytest.raises(WrongUnitsError, match=f"probably in {unit}, not mm") as info:
        Twin(basis).update(pts * scale)
    assert "\n" not in str(info.value) and isinstance(info.value, SurgplanError)
    with pytest.raises(WrongUnitsError, match="micrometres"):
        Twin(basis).update(pts * 1000.0)


def test_bad_shapes(basis) -> None:  # noqa: ANN001
    with pytest.raises(PointsError, match=r"shape \(N, 3\), got \(10, 2\)"):
        Twin(basis).update(np.zeros((10, 2)))
    with pytest.raises(PointsError, match="noise_mm"):
        Twin(basis, noise_mm=-1.0)


def test_basis_for_another_mesh(basis) -> None:  # noqa: ANN001
    other = synthetic_organ(3)
    with pytest.raises(BasisMismatchError, match="2562 vertices, the surface 642"):
        Twin(basis, surface=other)
    assert issubclass(BasisMismatchError, SurgplanError)


def test_first_rigid_fit_verdict_is_inherited(basis) -> None:  # noqa: ANN001
    # Swabs of the wrong organ through the full path: rigid global search, then deformation.
    import pyvista as pv

    other = reg.prepare_surface(pv.Cube(x_length=70, y_length=50, z_length=40).triangulate()
                                .subdivide(4))  # fmt: skip
    pts = reg.add_noise(reg.simulate_swabs(other, n_points=500, coverage=0.3, seed=1),
                        noise_mm=1.0, seed=2)  # fmt: skip
    s = Twin(basis).update(pts)
    assert not s.trustworthy
