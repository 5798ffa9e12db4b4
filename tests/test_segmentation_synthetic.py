"""Seeded vessel, lesion and organ segmentation on a small synthetic contrast CT with known truth:
a 60 HU liver ellipsoid in fat, a 200 HU vessel tree (radii 4, 2.5, 1.5 mm), a 30 HU lesion,
1 mm Gaussian blur and 12 HU noise on a 1 mm grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from imaging.errors import SegmentationError
from imaging.segmentation import dice, segment_organ, segment_tumour, segment_vessels

ORIGIN = np.array([-40.0, -40.0, -30.0])
VESSELS_VOX = [  # (start, end, radius) in voxel (x, y, z) units = mm from the origin
    ((10, 40, 30), (40, 40, 30), 4.0),
    ((40, 40, 30), (62, 58, 38), 2.5),
    ((40, 40, 30), (60, 22, 24), 2.5),
    ((52, 49, 34), (50, 66, 20), 1.5),
]
TUMOUR_VOX, TUMOUR_R = (30, 56, 34), 11.0


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


@pytest.fixture(scope="module")
def phantom() -> dict[str, sitk.Image]:
    rng = np.random.default_rng(7)
    nx, ny, nz = 80, 80, 60
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    p = np.stack([x, y, z], axis=-1).astype(float)
    liver = ((x - 40) / 35) ** 2 + ((y - 40) / 33) ** 2 + ((z - 30) / 26) ** 2 <= 1
    vessels = np.zeros(liver.shape, bool)
    for a, b, r in VESSELS_VOX:
        vessels |= _segment_distance(p, np.array(a, float), np.array(b, float)) <= r
    vessels &= liver
    tumour = np.linalg.norm(p - np.array(TUMOUR_VOX, float), axis=-1) <= TUMOUR_R
    hu = np.full(liver.shape, -100.0)
    hu[liver] = 60.0
    hu[tumour] = 30.0
    hu[vessels] = 200.0
    hu = ndi.gaussian_filter(hu, 1.0) + rng.normal(0.0, 12.0, hu.shape)
    ct = sitk.GetImageFromArray(np.rint(hu).astype(np.int16))
    ct.SetOrigin(tuple(ORIGIN))
    out = {"ct": ct}
    for name, arr in (("liver", liver), ("vessels", vessels), ("tumour", tumour)):
        m = sitk.GetImageFromArray(arr.astype(np.uint8))
        m.CopyInformation(ct)
        out[name] = m
    return out


def _lps(vox: tuple[float, float, float]) -> tuple[float, float, float]:
    return tuple(float(v) for v in ORIGIN + np.array(vox, float))


def test_vessels_from_one_seed(phantom: dict[str, sitk.Image]) -> None:
    mask = segment_vessels(phantom["ct"], [_lps((20, 40, 30))], within=phantom["liver"])
    assert mask.GetPixelID() == sitk.sitkUInt8
    assert dice(mask, phantom["vessels"]) >= 0.85


def test_vessels_without_restriction(phantom: dict[str, sitk.Image]) -> None:
    mask = segment_vessels(phantom["ct"], np.array([_lps((20, 40, 30)), _lps((55, 52, 36))]))
    assert dice(mask, phantom["vessels"]) >= 0.85


def test_vessel_seed_in_parenchyma_raises(phantom: dict[str, sitk.Image]) -> None:
    with pytest.raises(SegmentationError, match=r"above the background .*expected contrast"):
        segment_vessels(phantom["ct"], [_lps((50, 30, 40))], within=phantom["liver"])


def test_vessel_bad_radii_and_seed_shape(phantom: dict[str, sitk.Image]) -> None:
    with pytest.raises(SegmentationError, match="min_radius_mm=3.0, max_radius_mm=1.0"):
        segment_vessels(phantom["ct"], [_lps((20, 40, 30))], min_radius_mm=3.0, max_radius_mm=1.0)
    with pytest.raises(SegmentationError, match=r"\(N, 3\) array"):
        segment_vessels(phantom["ct"], np.zeros((2, 2)))
    for margin in (-1.0, float("nan"), 80.0):
        with pytest.raises(SegmentationError, match=r"margin_mm must lie in \[0, 50\] mm"):
            segment_vessels(phantom["ct"], [_lps((20, 40, 30))], margin_mm=margin)


@pytest.mark.parametrize("within", [True, False])
def test_tumour_from_seed(phantom: dict[str, sitk.Image], within: bool) -> None:
    mask = segment_tumour(
        phantom["ct"], _lps(TUMOUR_VOX), within=phantom["liver"] if within else None
    )
    assert dice(mask, phantom["tumour"]) >= 0.85


def test_tumour_seed_outside_within_raises(phantom: dict[str, sitk.Image]) -> None:
    with pytest.raises(SegmentationError, match="outside the within mask"):
        segment_tumour(phantom["ct"], _lps((2, 2, 30)), within=phantom["liver"])


def test_tumour_within_on_other_grid_raises(phantom: dict[str, sitk.Image]) -> None:
    other = sitk.Image([10, 10, 10], sitk.sitkUInt8)
    with pytest.raises(SegmentationError, match=r"image and within are on different grids"):
        segment_tumour(phantom["ct"], _lps(TUMOUR_VOX), within=other)


def test_liver_envelope_includes_vessels_and_tumour(phantom: dict[str, sitk.Image]) -> None:
    mask = segment_organ(phantom["ct"], _lps((50, 40, 30)), organ="liver")
    assert dice(mask, phantom["liver"]) >= 0.90
    inside = sitk.GetArrayViewFromImage(mask) > 0
    vessels = sitk.GetArrayViewFromImage(phantom["vessels"]) > 0
    assert inside[vessels].mean() >= 0.9
