"""The demo's registration step as a typed result whose ``to_dict()`` is the demo's JSON."""

import json

import pytest
import pyvista as pv

from registration import InitMethod, VerdictCheck
from surgplan.registration_demo import RegistrationDemoResult, registration_demo

#: The keys of the demo's ``registration`` JSON section before it became a dataclass.
KEYS = {
    "points": None,
    "coverage": None,
    "noise_mm": None,
    "global": {
        "tre_tumour_mm",
        "inlier_fraction",
        "inlier_rms_mm",
        "trustworthy",
        "reason",
        "init",
        "time_s",
    },
    "tracking": {
        "updates",
        "motion_per_update",
        "first_update_ms",
        "median_update_ms",
        "max_update_ms",
        "max_tre_tumour_mm",
        "mean_tre_tumour_mm",
        "trusted",
        "not_trusted_reasons",
    },
    "outliers": {"fraction", "trustworthy", "reason"},
    "markups": None,
    "transform": None,
    "picture": None,
}


@pytest.fixture(scope="module")
def result(liver_models_dir, tmp_path_factory) -> RegistrationDemoResult:
    surfaces = {
        "liver": pv.read(liver_models_dir / "liver.vtk"),
        "tumour": pv.read(liver_models_dir / "liver_tumours.vtk"),
    }
    return registration_demo(surfaces, tmp_path_factory.mktemp("registration"))


def test_to_dict_keeps_the_demo_json_keys(result):
    d = json.loads(json.dumps(result.to_dict()))  # JSON-ready as it is
    assert set(d) == set(KEYS)
    for key, sub in KEYS.items():
        if sub is not None:
            assert set(d[key]) == sub, key
    assert d["global"]["init"] in {m.value for m in InitMethod}
    assert d["global"]["reason"] == result.global_fit.verdict.reason
    assert d["tracking"]["updates"] == len(result.tracking.verdicts) == 30
    assert d["outliers"] == {
        "fraction": 0.3,
        "trustworthy": False,
        "reason": result.outliers.reason,
    }


def test_demo_registration_finds_the_tumour_and_flags_the_outliers(result):
    assert result.global_fit.verdict.trustworthy, result.global_fit.verdict.reason
    assert result.global_fit.tre_tumour_mm < 2.0
    assert result.tracking.trusted == 30 and max(result.tracking.tre_tumour_mm) < 2.0
    assert VerdictCheck.LOW_INLIER_FRACTION in result.outliers.checks
    assert result.markups.is_file() and result.transform.is_file() and result.picture.is_file()
