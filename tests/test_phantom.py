"""Tests of the synthetic CT phantom (surgplan.phantom) and of the committed sample data."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy import ndimage

from surgplan.phantom import (
    GENERATOR_VERSION,
    HU,
    LABEL_NAMES,
    SAMPLE_FILES,
    Phantom,
    PhantomError,
    generate_phantom,
    write_sample_data,
)
from surgplan.phantom.dicom_writer import (
    FAKE_IDENTITY,
    PRIVATE_CREATOR,
    phantom_uid,
    write_dicom_series,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO_ROOT / "sample_data"
VALUE_OF = {name: value for value, name in LABEL_NAMES.items()}


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return generate_phantom(seed=0)


@pytest.fixture(scope="module")
def ct(phantom: Phantom) -> np.ndarray:
    return sitk.GetArrayFromImage(phantom.ct)


@pytest.fixture(scope="module")
def labels(phantom: Phantom) -> np.ndarray:
    return sitk.GetArrayFromImage(phantom.labels)


@pytest.fixture(scope="module")
def written(phantom: Phantom, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample_data(phantom, tmp_path_factory.mktemp("sample") / "out")


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


# --- determinism ----------
def test_same_seed_gives_bit_identical_arrays() -> None:
    kwargs = {"spacing_mm": (3.0, 3.0, 3.0)}
    a, b = generate_phantom(seed=0, **kwargs), generate_phantom(seed=0, **kwargs)
    c = generate_phantom(seed=1, **kwargs)
    assert np.array_equal(sitk.GetArrayFromImage(a.ct), sitk.GetArrayFromImage(b.ct))
    assert np.array_equal(sitk.GetArrayFromImage(a.labels), sitk.GetArrayFromImage(b.labels))
    assert a.seeds_lps_mm == b.seeds_lps_mm
    for name in a.masks:
        assert np.array_equal(a.masks[name], b.masks[name]), name
    assert not np.array_equal(sitk.GetArrayFromImage(a.ct), sitk.GetArrayFromImage(c.ct))
    assert not np.array_equal(a.masks["liver"], c.masks["liver"])


def test_writing_twice_gives_identical_bytes(phantom: Phantom, tmp_path: Path) -> None:
    write_sample_data(phantom, tmp_path / "one")
    write_sample_data(phantom, tmp_path / "two")
    write_sample_data(phantom, tmp_path / "two")  # overwriting replaces, never mixes
    one, two = _digests(tmp_path / "one"), _digests(tmp_path / "two")
    assert one == two
    assert len([k for k in one if k.startswith("phantom_dicom/")]) == phantom.ct.GetSize()[2]
    assert not [p for p in (tmp_path / "two").iterdir() if p.name.startswith(".")]


# --- geometry, values, labels ----------
def test_grid_is_lps_with_documented_geometry(phantom: Phantom) -> None:
    assert phantom.ct.GetSize() == (200, 168, 90)
    assert phantom.ct.GetSpacing() == (1.5, 1.5, 2.0)
    assert phantom.ct.GetOrigin() == (-150.0, -126.0, -900.0)
    assert phantom.ct.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert phantom.ct.GetPixelID() == sitk.sitkInt16
    assert phantom.labels.GetPixelID() == sitk.sitkUInt8
    for attr in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(phantom.labels, attr)() == getattr(phantom.ct, attr)()


def test_liver_is_on_the_patients_right_and_anterior(phantom: Phantom) -> None:
    centre = ndimage.center_of_mass(phantom.masks["liver"])
    x, y, _ = phantom.ct.TransformContinuousIndexToPhysicalPoint(centre[::-1])
    assert x < -20.0  # LPS: negative x is the patient's right
    assert y < 10.0  # anterior half (the body is centred on y = 0)


def test_label_values_match_names(phantom: Phantom, labels: np.ndarray) -> None:
    assert phantom.label_names == LABEL_NAMES
    assert set(np.unique(labels).tolist()) == {0, *LABEL_NAMES}
    for value, name in LABEL_NAMES.items():
        if name == "liver":
            assert np.array_equal(labels == value, phantom.masks["liver_parenchyma"])
        else:
            # every labelled voxel belongs to the named mask
            assert np.all(phantom.masks[name][labels == value]), name


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("liver", HU["liver"] - 10, HU["liver"] + 10),
        ("tumour", HU["tumour"] - 15, HU["liver"] - 25),
        ("portal_vein", 150, 260),
        ("hepatic_veins", 150, 260),
        ("ivc", 150, 260),
        ("aorta", 150, 260),
        ("bone", 250, 800),
        ("kidney_right", 140, 200),
        ("spleen", 95, 130),
    ],
)
def test_median_hu_per_structure(
    ct: np.ndarray, labels: np.ndarray, name: str, low: float, high: float
) -> None:
    median = float(np.median(ct[labels == VALUE_OF[name]]))
    assert low <= median <= high, f"{name}: median {median} HU not in [{low}, {high}]"


def test_air_fat_and_noise(phantom: Phantom, ct: np.ndarray) -> None:
    outside = ~ndimage.binary_dilation(phantom.masks["body"], iterations=4)
    assert abs(float(np.median(ct[outside])) + 1000.0) <= 5.0
    assert 10.0 <= float(np.std(ct[outside].astype(float))) <= 15.0  # PSF-free air: pure noise
    assert ct.min() >= -1024 and ct.max() <= 3071


def test_liver_volume_in_documented_range(phantom: Phantom) -> None:
    assert 1200.0 <= phantom.volume_ml("liver") <= 1800.0


def test_tumour_inside_liver_with_documented_size(phantom: Phantom) -> None:
    tumour, liver = phantom.masks["tumour"], phantom.masks["liver"]
    assert not np.any(tumour & ~liver)
    # and with at least 3 mm of parenchyma around it
    grown = ndimage.binary_dilation(tumour, iterations=2)
    assert not np.any(grown & ~liver)
    diameter_mm = (6.0 * phantom.volume_ml("tumour") * 1000.0 / np.pi) ** (1.0 / 3.0)
    assert 30.0 <= diameter_mm <= 45.0
    assert phantom.tumour_radius_mm == pytest.approx(diameter_mm / 2.0, abs=2.0)
    centre = phantom.ct.TransformPhysicalPointToIndex(phantom.tumour_centre_lps_mm)
    assert tumour[centre[::-1]]


def test_seeds_lie_in_their_structure(phantom: Phantom, labels: np.ndarray) -> None:
    assert set(phantom.seeds_lps_mm) == set(LABEL_NAMES.values()) - {"bone"}
    for name, point in phantom.seeds_lps_mm.items():
        index = phantom.ct.TransformPhysicalPointToIndex(point)
        assert labels[index[::-1]] == VALUE_OF[name], name


@pytest.mark.parametrize("other", ["kidney_right", "spleen", "ivc", "aorta", "bone"])
def test_liver_is_separated_from_neighbours(phantom: Phantom, other: str) -> None:
    # at least 2 voxels (3 mm in-plane) of something else between liver and its neighbours
    grown = ndimage.binary_dilation(phantom.masks["liver"], iterations=2)
    assert not np.any(grown & phantom.masks[other])


def test_vessel_trees_branch_taper_and_never_touch(phantom: Phantom) -> None:
    for tree in (phantom.vessels.portal, phantom.vessels.hepatic):
        assert len(tree) >= 20
        assert max(s.generation for s in tree) >= 4
        assert max(s.radius_start_mm for s in tree) <= 7.0
        assert min(s.radius_end_mm for s in tree) < 2.5
    assert phantom.vessels.portal[0].radius_start_mm == 7.0
    portal, hepatic = phantom.masks["portal_vein"], phantom.masks["hepatic_veins"]
    assert not np.any(ndimage.binary_dilation(portal, iterations=1) & hepatic)
    # mostly intrahepatic
    assert np.count_nonzero(portal & phantom.masks["liver"]) > 0.6 * np.count_nonzero(portal)
    assert np.count_nonzero(hepatic & phantom.masks["liver"]) > 0.6 * np.count_nonzero(hepatic)


# --- files ----------
def test_written_files_read_back(phantom: Phantom, written: dict[str, Path]) -> None:
    assert set(written) == set(SAMPLE_FILES)
    ct = sitk.ReadImage(str(written["ct"]))
    assert ct.GetPixelID() == sitk.sitkInt16
    assert np.array_equal(sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(phantom.ct))
    assert np.allclose(ct.GetOrigin(), phantom.ct.GetOrigin())
    assert np.allclose(ct.GetDirection(), phantom.ct.GetDirection())
    labels = sitk.ReadImage(str(written["labels"]))
    assert labels.GetPixelID() == sitk.sitkUInt8
    assert np.array_equal(sitk.GetArrayFromImage(labels), sitk.GetArrayFromImage(phantom.labels))
    names = json.loads(written["label_names"].read_text())
    assert names == {str(k): v for k, v in LABEL_NAMES.items()}
    meta = json.loads(written["metadata"].read_text())
    assert meta["generator_version"] == GENERATOR_VERSION
    assert meta["seed"] == 0
    assert meta["coordinate_system"] == "LPS"
    assert meta["tumour"]["centre_lps_mm"] == pytest.approx(list(phantom.tumour_centre_lps_mm))
    assert set(meta["seeds_lps_mm"]) >= {"liver", "tumour", "portal_vein", "hepatic_veins"}
    for name, point in meta["seeds_lps_mm"].items():
        assert point == pytest.approx(list(phantom.seeds_lps_mm[name]), abs=1e-3)


def test_dicom_series_round_trips_to_the_nifti(written: dict[str, Path]) -> None:
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(written["dicom"]))
    assert len(series) == 1
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(written["dicom"]), series[0]))
    dicom = reader.Execute()
    nifti = sitk.ReadImage(str(written["ct"]))
    assert dicom.GetSize() == nifti.GetSize()
    assert np.allclose(dicom.GetOrigin(), nifti.GetOrigin(), atol=1e-3)
    assert np.allclose(dicom.GetSpacing(), nifti.GetSpacing(), atol=1e-4)
    assert np.allclose(dicom.GetDirection(), nifti.GetDirection(), atol=1e-6)
    assert np.array_equal(
        sitk.GetArrayFromImage(dicom).astype(np.int32),
        sitk.GetArrayFromImage(nifti).astype(np.int32),
    )


def test_dicom_carries_the_fake_identity(phantom: Phantom, written: dict[str, Path]) -> None:
    files = sorted(written["dicom"].glob("*.dcm"))
    assert len(files) == phantom.ct.GetSize()[2]
    datasets = [pydicom.dcmread(f) for f in files]
    for k, ds in enumerate(datasets):
        for keyword, value in FAKE_IDENTITY.items():
            assert str(getattr(ds, keyword)) == value, keyword
        assert ds.private_block(0x0011, PRIVATE_CREATOR)[0x01].value == "PHANTOM^JANE"
        assert ds.Modality == "CT"
        assert ds.StudyInstanceUID == phantom_uid(0, "study")
        assert ds.SeriesInstanceUID == phantom_uid(0, "series")
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx(
            phantom.ct.TransformIndexToPhysicalPoint((0, 0, k))
        )
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == [1.5, 1.5]
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 2.0
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
    assert all(uid.startswith("2.25.") and len(uid) <= 64 for uid in (ds.SOPInstanceUID,))


# --- committed sample data ----------
def test_committed_sample_data_is_current_and_small(phantom: Phantom, ct: np.ndarray) -> None:
    for name in SAMPLE_FILES.values():
        assert (SAMPLE_DATA / name).exists(), f"run scripts/generate_sample_data.py ({name})"
    total_mb = sum(f.stat().st_size for f in SAMPLE_DATA.rglob("*") if f.is_file()) / 1e6
    assert total_mb <= 20.0
    meta = json.loads((SAMPLE_DATA / SAMPLE_FILES["metadata"]).read_text())
    assert meta["generator_version"] == GENERATOR_VERSION
    committed = sitk.GetArrayFromImage(sitk.ReadImage(str(SAMPLE_DATA / SAMPLE_FILES["ct"])))
    # Bit-identical on the machine that generated it; allow last-bit float differences elsewhere.
    assert committed.shape == ct.shape
    assert np.max(np.abs(committed.astype(np.int32) - ct)) <= 1
    assert np.mean(committed != ct) < 1e-4
    committed_labels = sitk.ReadImage(str(SAMPLE_DATA / SAMPLE_FILES["labels"]))
    same = sitk.GetArrayFromImage(committed_labels) == sitk.GetArrayFromImage(phantom.labels)
    assert np.mean(~same) < 1e-4


# --- bad input ----------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
        ({"seed": 1.5}, "seed must be a non-negative integer"),
        ({"spacing_mm": (1.5, 1.5)}, r"spacing_mm must be 3 finite values .* got \(1.5, 1.5\)"),
        ({"spacing_mm": (1.5, 0.0, 2.0)}, "spacing_mm must be 3 finite values"),
        ({"spacing_mm": "abc"}, "spacing_mm must be 3"),
        ({"noise_hu": -1.0}, r"noise_hu must be a number in \[0, 200.0\], got -1.0"),
        ({"psf_sigma_mm": float("nan")}, "psf_sigma_mm must be a number"),
        ({"modality": "pet"}, "modality must be 'ct' or 'mr', got 'pet'"),
    ],
)
def test_bad_parameters_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(PhantomError, match=match):
        generate_phantom(**kwargs)


def test_write_into_a_file_path_raises(phantom: Phantom, tmp_path: Path) -> None:
    target = tmp_path / "not_a_folder"
    target.write_text("x")
    with pytest.raises(PhantomError, match="not_a_folder exists and is not a folder"):
        write_sample_data(phantom, target)


def test_dicom_series_replaces_a_folder_with_the_usual_modes(tmp_path: Path) -> None:
    """The series folder is swapped whole; files 0o666 and folder 0o777 less the umask."""
    ct = sitk.GetImageFromArray(np.full((3, 4, 5), 40, dtype=np.int16))
    folder = tmp_path / "dicom"
    folder.mkdir()
    (folder / "stale.dcm").write_bytes(b"old series")
    previous = os.umask(0o027)
    try:
        files = write_dicom_series(ct, folder, seed=0)
    finally:
        os.umask(previous)
    assert [f.name for f in files] == ["CT0001.dcm", "CT0002.dcm", "CT0003.dcm"]
    assert sorted(p.name for p in folder.iterdir()) == [f.name for f in files]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o640}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dicom"]  # nothing temporary left
    first = pydicom.dcmread(files[0])
    hu = first.pixel_array.astype(float) * float(first.RescaleSlope) + float(first.RescaleIntercept)
    np.testing.assert_array_equal(hu, np.full((4, 5), 40.0))


def test_mr_rendering_is_t1_like_with_bias_and_rician_noise(phantom: Phantom) -> None:
    mr = generate_phantom(seed=0, spacing_mm=(3.0, 3.0, 3.0), modality="mr")
    assert mr.ct.GetPixelID() == sitk.sitkUInt16 and mr.parameters["modality"] == "mr"
    assert mr.parameters["hu"] is None and "t1" in mr.parameters
    signal = sitk.GetArrayFromImage(mr.ct).astype(float)
    masks = mr.masks
    med = {name: float(np.median(signal[masks[name]])) for name in ("liver_parenchyma", "spleen")}
    # T1-weighted: liver brighter than spleen (the reverse of the CT), fat brightest
    assert med["liver_parenchyma"] > 1.25 * med["spleen"]
    fat = masks["body"] & (signal > 0.8 * signal[masks["body"]].max())
    assert fat.sum() > 0 and np.median(signal[fat]) > med["liver_parenchyma"]
    # Rician noise: outside the body the magnitude of complex noise, mean sigma * sqrt(pi / 2)
    air = signal[ndimage.binary_erosion(~masks["body"], iterations=4)]  # 12 mm off the skin
    assert air.min() >= 0 and np.mean(air) == pytest.approx(12.0 * np.sqrt(np.pi / 2), rel=0.1)
    # bias field: the liver parenchyma is brighter on the patient's left than on the right
    x = np.broadcast_to(np.arange(signal.shape[2]), signal.shape)
    liver = masks["liver_parenchyma"]
    centre = np.median(x[liver])
    left = np.median(signal[liver & (x > centre + 10)])
    right = np.median(signal[liver & (x < centre - 10)])
    assert left > 1.04 * right
    # same anatomy as the CT: the label maps agree
    ct3 = generate_phantom(seed=0, spacing_mm=(3.0, 3.0, 3.0))
    assert np.array_equal(sitk.GetArrayFromImage(mr.labels), sitk.GetArrayFromImage(ct3.labels))
