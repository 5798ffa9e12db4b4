"""The demo end to end on the phantom: Dice targets, closed surfaces, picture, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from surgplan.cli import cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(
        cli, ["demo", "--out", str(out), "--no-liver-models", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("structure", "target"), [("liver", 0.95), ("tumour", 0.85), ("vessels", 0.75)]
)
def test_phantom_dice(demo: dict, structure: str, target: float) -> None:
    assert demo["dice"][structure] >= target


def test_surfaces_closed_manifold_and_volume_faithful(demo: dict) -> None:
    case = json.loads((Path(demo["case"]) / "case.json").read_text())
    assert set(case["surfaces"]) == {"liver", "tumour", "vessels", "bone"}
    for name, surface in case["surfaces"].items():
        assert surface["is_closed"] and surface["is_manifold"], name
        error = abs(surface["volume_ml"] - surface["label_volume_ml"]) / surface["label_volume_ml"]
        assert error <= 0.03, (name, error)


def test_volume_mesh_has_liver_and_tumour_regions(demo: dict) -> None:
    volume = demo["volume_mesh"]
    assert set(volume["regions"]) == {"liver", "tumour"}
    assert Path(volume["path"]).is_file() and Path(volume["msh_path"]).is_file()


def test_picture_shows_the_twin(demo: dict) -> None:
    pixels = np.asarray(Image.open(demo["picture"]).convert("RGB"), dtype=float)
    assert pixels.shape[0] >= 500 and pixels.shape[1] >= 500
    not_white = np.any(pixels < 240, axis=2).mean()
    assert 0.05 < not_white < 0.9  # something drawn, not an empty or solid frame
    yellow = (pixels[..., 0] > 200) & (pixels[..., 1] > 170) & (pixels[..., 2] < 90)
    assert yellow.sum() > 200  # the tumour is visible through the translucent liver


def test_report_lists_volumes_and_dice(demo: dict) -> None:
    html = Path(demo["report"]).read_text()
    assert '<img src="data:image/png;base64,' in html
    for name, score in demo["dice"].items():
        assert name in html and f"{score:.3f}" in html
    assert "PHANTOM" not in html and "SP-000123" not in html


def test_retraction_moves_the_liver_by_the_retractor_lift(demo: dict) -> None:
    retraction = demo["retraction"]
    # the retractor patch prescribes a 15 mm lift at its centre; elsewhere the liver follows less
    assert 14.9 <= retraction["max_displacement_mm"] <= 16.0
    assert retraction["max_von_mises_kpa"] > 0.1
    case = Path(demo["case"])
    assert (case / retraction["path"]).is_file()
    assert "fe_result/retraction" in json.loads((case / "case.json").read_text())["artifacts"]
    assert Path(retraction["picture"]).stat().st_size > 20_000


def test_simulated_registration_finds_the_tumour_and_flags_outliers(demo: dict) -> None:
    from registration import VerdictCheck, parse_reason
    from registration.io import read_itk_transform, read_slicer_markups

    reg = demo["registration"]
    assert reg["global"]["trustworthy"], reg["global"]["reason"]
    assert reg["global"]["tre_tumour_mm"] < 2.0
    assert reg["tracking"]["trusted"] == reg["tracking"]["updates"] == 30
    assert reg["tracking"]["max_tre_tumour_mm"] < 2.0
    assert not reg["outliers"]["trustworthy"]
    assert VerdictCheck.LOW_INLIER_FRACTION in parse_reason(reg["outliers"]["reason"])
    points, _ = read_slicer_markups(reg["markups"])
    assert points.shape == (reg["points"], 3)
    T = read_itk_transform(reg["transform"])
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9)
    html = Path(demo["report"]).read_text()
    assert "Intraoperative registration (simulated)" in html and "T_model_tracker.tfm" in html
