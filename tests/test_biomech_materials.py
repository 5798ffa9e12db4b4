import pytest

from biomech.materials import (
    ARTERY_WALL,
    KIDNEY,
    LIVER_FIBROTIC,
    LIVER_HEALTHY,
    TUMOUR,
    VEIN_WALL,
    Material,
    MaterialError,
    get_material,
)


def test_presets_have_literature_ranges_and_sources():
    assert 2.0 <= LIVER_HEALTHY.youngs_modulus_kpa <= 6.0
    assert LIVER_FIBROTIC.youngs_modulus_kpa > LIVER_HEALTHY.youngs_modulus_kpa
    assert TUMOUR.youngs_modulus_kpa > LIVER_HEALTHY.youngs_modulus_kpa
    assert ARTERY_WALL.youngs_modulus_kpa > VEIN_WALL.youngs_modulus_kpa > KIDNEY.youngs_modulus_kpa
    for m in (LIVER_HEALTHY, LIVER_FIBROTIC, TUMOUR, KIDNEY, ARTERY_WALL, VEIN_WALL):
        assert m.source and "20" in m.source  # a dated citation
        assert get_material(m.name) is m


def test_moduli_relations():
    m = Material("m", 3.0, 0.25)
    assert m.shear_modulus_kpa == pytest.approx(1.2)
    assert m.bulk_modulus_kpa == pytest.approx(2.0)
    assert m.lame_lambda_kpa == pytest.approx(1.2)
    cook = Material.from_shear_bulk("cook", 80.194, 400889.8)
    assert cook.poisson_ratio == pytest.approx(0.4999, abs=1e-6)
    assert cook.shear_modulus_kpa == pytest.approx(80.194)
    assert cook.bulk_modulus_kpa == pytest.approx(400889.8)


@pytest.mark.parametrize(
    ("e", "nu", "match"),
    [
        (0.0, 0.3, "Young's modulus"),
        (-2.0, 0.3, "Young's modulus"),
        (float("nan"), 0.3, "Young's modulus"),
        (4.0, 0.5, "Poisson's ratio"),
        (4.0, 0.7, "Poisson's ratio"),
        (4.0, -1.0, "Poisson's ratio"),
    ],
)
def test_impossible_parameters_are_rejected(e, nu, match):
    with pytest.raises(MaterialError, match=match):
        Material("bad", e, nu)


def test_unknown_preset_lists_known_names():
    with pytest.raises(MaterialError, match="liver_healthy"):
        get_material("granite")
