"""DeformationBasis validation and its construction from a reduced model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from surgplan.errors import SurgplanError
from surgplan.twin import BasisError, BasisMismatchError, DeformationBasis
from surgplan.twin.synthetic import polynomial_modes, synthetic_basis, synthetic_organ


@pytest.fixture(scope="module")
def organ():  # noqa: ANN201
    return synthetic_organ()


def test_valid_basis(organ) -> None:  # noqa: ANN001
    b = synthetic_basis(organ, discrepancy_mm=0.5)
    assert b.n_modes == 6 and b.n_vertices == len(organ.vertices)
    assert b.discrepancy_mm.tolist() == [0.5, 0.5]
    assert 75.0 < b.extent_mm < 90.0
    assert b.rigid().n_modes == 0
    assert not b.vertices_mm.flags.writeable


def test_wrong_units_refused(organ) -> None:  # noqa: ANN001
    b = synthetic_basis(organ)
    with pytest.raises(BasisError, match="not in millimetres"):
        DeformationBasis(b.vertices_mm / 1000.0, b.faces, b.surface_modes / 1000.0, b.prior_std)
    with pytest.raises(BasisError, match="wrong units"):
        DeformationBasis(b.vertices_mm, b.faces, b.surface_modes * 1000.0, b.prior_std)


def test_shapes_and_values_refused(organ) -> None:  # noqa: ANN001
    b = synthetic_basis(organ)
    with pytest.raises(BasisError, match=r"surface_modes must have shape"):
        DeformationBasis(b.vertices_mm, b.faces, b.surface_modes[:, :-1], b.prior_std)
    bad = b.surface_modes.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(BasisError, match="non-finite"):
        DeformationBasis(b.vertices_mm, b.faces, bad, b.prior_std)
    with pytest.raises(BasisError, match="prior_std must be positive"):
        DeformationBasis(b.vertices_mm, b.faces, b.surface_modes, np.zeros(6))
    with pytest.raises(SurgplanError, match="faces must index"):
        DeformationBasis(b.vertices_mm, b.faces + 10**6, b.surface_modes, b.prior_std)


def _rom_from(model, targets: np.ndarray) -> SimpleNamespace:  # noqa: ANN001
    pts = np.vstack([model.vertices, targets])
    return SimpleNamespace(
        kind="linear",
        points_mm=pts,
        n_surface=len(model.vertices),
        modes=polynomial_modes(pts).astype(np.float32),
        mode_bounds=np.array([[-3.0, 5.0]] * 6),
        meta={"discrepancy_mm": 0.7},
    )


def test_from_reduced_model_same_mesh_is_exact(organ) -> None:  # noqa: ANN001
    t = np.array([[10.0, -5.0, 3.0]])
    rom = _rom_from(organ, t)
    b = DeformationBasis.from_reduced_model(rom, organ.vertices, organ.faces, {"tumour": t[0]})
    np.testing.assert_array_equal(b.surface_modes, rom.modes[:, : rom.n_surface])
    np.testing.assert_array_equal(b.target_modes[:, 0], rom.modes[:, -1])
    np.testing.assert_array_equal(b.prior_std, np.full(6, 2.5))  # max(|-3|, |5|) / 2
    assert b.discrepancy_mm.tolist() == [0.7]


def test_from_reduced_model_interpolates_a_smooth_field(organ) -> None:  # noqa: ANN001
    coarse = synthetic_organ(3)  # another sampling of the same organ (~650 vertices)
    t = np.array([[10.0, -5.0, 3.0], [-15.0, 8.0, -5.0]])
    rom = _rom_from(coarse, t)
    # An interior target off the model points: extrapolated from the surface (3 % of range).
    query_t = {"off_node": np.array([0.0, 4.0, -2.0])}
    b = DeformationBasis.from_reduced_model(rom, organ.vertices, organ.faces, query_t)
    truth = polynomial_modes(organ.vertices)
    err = np.abs(b.surface_modes - truth).max()
    assert err < 0.01 * np.abs(truth).max()  # < 1 % of the field's range
    np.testing.assert_allclose(
        b.target_modes[:, 0], polynomial_modes(query_t["off_node"][None])[:, 0], atol=0.03
    )


def test_from_reduced_model_for_another_mesh(organ) -> None:  # noqa: ANN001
    rom = _rom_from(organ, np.zeros((1, 3)))
    other = organ.vertices * 1.5
    with pytest.raises(BasisMismatchError, match="built for another mesh"):
        DeformationBasis.from_reduced_model(rom, other, organ.faces, {})
