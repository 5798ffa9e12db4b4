"""DICOM series import: geometry identical to SimpleITK's reader, and every bad folder named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from imaging.dicom import list_series, read_dicom_series
from imaging.errors import DicomSeriesError, ImageReadError
from imaging.image_io import load_scan


@pytest.fixture(scope="module")
def real_dicom(totalseg_dir: Path) -> Path:
    return totalseg_dir / "example_ct_dicom"


def _sitk_reference(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_real_series_matches_simpleitk_geometry_and_voxels(real_dicom: Path) -> None:
    volume = read_dicom_series(real_dicom)
    reference = _sitk_reference(real_dicom)
    assert volume.image.GetSize() == reference.GetSize() == (512, 512, 20)
    assert volume.image.GetSpacing() == reference.GetSpacing()
    assert volume.image.GetOrigin() == reference.GetOrigin()
    assert volume.image.GetDirection() == reference.GetDirection()
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(volume.image), sitk.GetArrayViewFromImage(reference)
    )
    assert volume.slice_spacing_mm == pytest.approx(2.0)
    assert volume.modality == "CT"


def test_shuffled_file_names_are_sorted_by_position(real_dicom: Path, tmp_path: Path) -> None:
    files = sorted(real_dicom.iterdir())
    rng = np.random.default_rng(3)
    for i, j in enumerate(rng.permutation(len(files))):
        shutil.copy(files[j], tmp_path / f"img{i:03d}.dcm")
    volume = read_dicom_series(tmp_path)
    assert volume.image.GetOrigin() == _sitk_reference(real_dicom).GetOrigin()


def test_loaded_scan_carries_no_metadata(real_dicom: Path) -> None:
    scan = load_scan(real_dicom)
    assert scan.image.GetMetaDataKeys() == ()
    assert scan.source_kind == "dicom"


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DicomSeriesError, match="is empty"):
        read_dicom_series(tmp_path)


def test_folder_of_non_dicom_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "scan.bin").write_bytes(bytes(range(256)) * 10)
    with pytest.raises(DicomSeriesError, match="holds 2 file.* but no DICOM image"):
        read_dicom_series(tmp_path)


def test_truncated_file_is_named(real_dicom: Path, tmp_path: Path) -> None:
    files = sorted(real_dicom.iterdir())
    for f in files:
        shutil.copy(f, tmp_path / f.name)
    victim = tmp_path / files[7].name
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="file 8 of 20 is truncated") as caught:
        read_dicom_series(tmp_path)
    assert files[7].name not in str(caught.value)  # names of real exports carry identities


def test_two_series_need_a_choice(real_dicom: Path, tmp_path: Path) -> None:
    files = sorted(real_dicom.iterdir())
    for f in files:
        shutil.copy(f, tmp_path / f.name)
    new_uid = pydicom.uid.generate_uid(entropy_srcs=["second series"])
    for f in files[:5]:
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = new_uid
        ds.save_as(tmp_path / f"second_{f.name}")
    with pytest.raises(DicomSeriesError, match="holds 2 DICOM series; choose one with --series"):
        read_dicom_series(tmp_path)
    summaries = list_series(tmp_path)
    assert [s.n_files for s in summaries] == [20, 5]
    chosen = read_dicom_series(tmp_path, series_uid=new_uid)
    assert chosen.image.GetSize() == (512, 512, 5)


def test_missing_slice_is_reported(real_dicom: Path, tmp_path: Path) -> None:
    volume_files = sorted(
        real_dicom.iterdir(),
        key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]),
    )
    for i, f in enumerate(volume_files):
        if i != 9:
            shutil.copy(f, tmp_path / f.name)
    with pytest.raises(DicomSeriesError, match=r"missing 1 slice\(s\) between positions"):
        read_dicom_series(tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="does not exist"):
        read_dicom_series(tmp_path / "nope")
