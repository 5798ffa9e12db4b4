"""Seeded organ segmentation checks its result before returning it (issue 13): the seed on
the scanner table, a seed in the wrong structure and a leak into a neighbour are refused with
the failed check and its value; a good result carries every check's value, in Python and in
``surgplan segment --json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner
from scipy import ndimage as ndi

from imaging.segmentation import (
    SegmentationCheckError,
    dice,
    segment_organ,
    segment_organ_checked,
)
from imaging.segmentation._body import find_body
from imaging.segmentation.checks import Check, sphericity
from surgplan.cli import cli

LIVER, AUTOCHTHON_RIGHT = 5, 87
CHECK_NAMES = {
    "seed_neighbourhood_inside",
    "seed_in_body",
    "volume_ml",
    "body_fraction",
    "outside_body_fraction",
    "border_fraction",
    "components",
    "compactness",
    "lateral_position",
    "ap_position",
    "growth_jump",
}


@pytest.fixture(scope="module")
def ct(totalseg_dir: Path) -> sitk.Image:
    return sitk.ReadImage(str(totalseg_dir / "example_ct_sm.nii.gz"))


@pytest.fixture(scope="module")
def labels(totalseg_dir: Path) -> sitk.Image:
    return sitk.ReadImage(str(totalseg_dir / "example_seg.nii.gz"))


@pytest.fixture(scope="module")
def contrast_ct(totalseg_dir: Path) -> sitk.Image:
    """The 512 x 512 x 20 contrast CT (another patient) with the scanner table in view."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(totalseg_dir / "example_ct_dicom")))
    return reader.Execute()


def _deepest(image: sitk.Image, mask: np.ndarray) -> tuple[float, float, float]:
    depth = ndi.distance_transform_edt(mask)
    k, j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return image.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))


def test_check_range_and_text() -> None:
    assert Check("v", 5.0, lower=1.0, upper=5.0).passed
    assert not Check("v", 5.01, lower=1.0, upper=5.0).passed
    assert not Check("v", float("nan"), lower=0.0).passed
    assert Check("volume_ml", 9981.0, 97.4, 4544.0, "mL").describe() == (
        "volume_ml = 9981 mL (expected 97.4..4544 mL)"
    )


def test_sphericity_of_a_ball_and_a_plate() -> None:
    z, y, x = np.mgrid[:41, :41, :41] - 20
    ball = x**2 + y**2 + z**2 <= 15**2
    assert sphericity(ball, (1.0, 1.0, 1.0)) == pytest.approx(1.0, abs=0.05)
    plate = np.zeros((41, 41, 41), bool)
    plate[18:21, 2:39, 2:39] = True  # 3 x 37 x 37 voxels: sphericity 0.39
    assert 0.3 < sphericity(plate, (1.0, 1.0, 1.0)) < 0.45


def test_body_of_the_real_ct(ct: sitk.Image, labels: sitk.Image) -> None:
    body = find_body(ct)
    lab = sitk.GetArrayViewFromImage(labels)
    assert body.mask[lab > 0].mean() > 0.99  # every labelled organ is inside the body
    hu = sitk.GetArrayViewFromImage(ct)
    assert (hu[~body.mask] < -500).mean() > 0.95  # outside it: air (and the thin table)
    assert 500 < body.area_cm2 < 1000  # an adult abdomen


def test_table_seed_refused(contrast_ct: sitk.Image) -> None:
    # on the table's upper plate, 2 cm behind the patient's back: 10,000 mL "liver" before
    seed = contrast_ct.TransformIndexToPhysicalPoint((250, 453, 10))
    with pytest.raises(SegmentationCheckError, match=r"seed_in_body = 0 .*volume_ml = ") as err:
        segment_organ(contrast_ct, seed, organ="liver")
    assert "\n" not in str(err.value)
    assert [a.parameters for a in err.value.attempts] == [
        "default",
        "narrow_start",
        "narrow_window",
        "narrow_window_fine_split",
        "wide_window",
    ]
    volume = next(c for c in err.value.attempts[0].failed if c.name == "volume_ml")
    assert volume.value > 5000.0


def test_seed_in_the_back_muscle_refused_as_liver(ct: sitk.Image, labels: sitk.Image) -> None:
    # the right paraspinal muscle has liver-like HU on this non-contrast CT and a plausible
    # volume: it is refused for lying at the back of the body
    seed = _deepest(ct, sitk.GetArrayViewFromImage(labels) == AUTOCHTHON_RIGHT)
    with pytest.raises(
        SegmentationCheckError, match=r"ap_position = 0\.8\d* \(expected 0\.1\.\.0\.7"
    ):
        segment_organ(ct, seed, organ="liver")


def _leaky_phantom() -> sitk.Image:
    """A body wider than the field of view, a liver fused with a 30 mm plate of its HU (a
    neighbour it leaks into) that runs across the body out of the image's sides."""
    rng = np.random.default_rng(3)
    z, y, x = np.mgrid[:40, :80, :100].astype(float)
    px, py, pz = 2.0 * x - 99.0, 2.0 * y - 79.0, 2.0 * z - 39.0  # mm, LPS, centred
    body = (px / 120.0) ** 2 + (py / 75.0) ** 2 <= 1.0
    liver = ((px + 40.0) / 50.0) ** 2 + (py / 40.0) ** 2 + (pz / 30.0) ** 2 <= 1.0
    plate = (py >= 10.0) & (py <= 40.0)
    hu = np.where(body, -100.0, -1000.0)
    hu[(liver | plate) & body] = 60.0
    hu = ndi.gaussian_filter(hu, 0.5) + rng.normal(0.0, 10.0, hu.shape)
    image = sitk.GetImageFromArray(np.rint(hu).astype(np.int16))
    image.SetSpacing((2.0, 2.0, 2.0))
    image.SetOrigin((-99.0, -79.0, -39.0))
    return image


def test_leak_into_a_neighbour_refused() -> None:
    image = _leaky_phantom()
    with pytest.raises(SegmentationCheckError, match=r"border_fraction = 0\.0\d+ ") as err:
        segment_organ(image, (-40.0, 0.0, 0.0), organ="liver")
    assert all("border_fraction" in {c.name for c in a.failed} for a in err.value.attempts)


def test_checks_reported_with_their_values(ct: sitk.Image, labels: sitk.Image) -> None:
    ref = sitk.GetArrayViewFromImage(labels) == LIVER
    checked = segment_organ_checked(ct, _deepest(ct, ref), organ="liver")
    assert checked.parameters == "default" and checked.rejected == ()
    by_name = {c.name: c for c in checked.checks}
    assert set(by_name) == CHECK_NAMES and all(c.passed for c in checked.checks)
    mask = sitk.GetArrayViewFromImage(checked.mask) > 0
    assert by_name["volume_ml"].value == pytest.approx(mask.sum() * 27.0 / 1000.0)
    assert by_name["components"].value == 1.0 and by_name["border_fraction"].value == 0.0
    assert by_name["lateral_position"].value < 0.5  # the liver is on the patient's right
    report = checked.to_dict()
    assert report["passed"] is True
    assert {c["name"] for c in report["checks"]} == CHECK_NAMES
    json.dumps(report)  # JSON-ready
    ref_img = sitk.GetImageFromArray(ref.astype(np.uint8))
    ref_img.CopyInformation(ct)
    assert dice(checked.mask, ref_img) > 0.9


def test_cli_json_reports_checks_and_refuses_wrong_seed(
    tmp_path: Path, totalseg_dir: Path, ct: sitk.Image, labels: sitk.Image
) -> None:
    runner = CliRunner()
    case = tmp_path / "case"
    result = runner.invoke(cli, ["import", str(totalseg_dir / "example_ct_sm.nii.gz"), str(case)])
    assert result.exit_code == 0, result.stderr
    lab = sitk.GetArrayViewFromImage(labels)
    seed = [f"{c:.1f}" for c in _deepest(ct, lab == LIVER)]
    args = ["segment", str(case), "--structure", "liver", "--seed", *seed, "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    checks = json.loads(result.stdout)["checks"]
    assert checks["parameters"] == "default"
    assert {c["name"] for c in checks["checks"]} == CHECK_NAMES
    manifest = (case / "case.json").read_bytes()
    muscle = [f"{c:.1f}" for c in _deepest(ct, lab == AUTOCHTHON_RIGHT)]
    args = ["segment", str(case), "--structure", "liver", "--seed", *muscle]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert "refused: " in result.stderr and "ap_position" in result.stderr
    assert result.stderr.count("\n") == 1
    assert (case / "case.json").read_bytes() == manifest  # the first liver is kept
