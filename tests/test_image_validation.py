"""Issue 16 reproducers for image files: non-finite voxels, truncated NIfTI, sheared grids."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from imaging.errors import ImageReadError, LabelMapError
from imaging.image_io import load_scan, read_image_file
from imaging.labels import read_label_image
from surgplan.cli import cli


def _scan(dtype: type = np.float32) -> sitk.Image:
    array = (np.arange(16 * 14 * 12).reshape(12, 14, 16) % 700 - 300).astype(dtype)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.9, 0.8, 2.5))
    image.SetOrigin((-7.0, 3.0, 11.0))
    return image


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stderr


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_are_refused_with_their_count(tmp_path: Path, bad: float) -> None:
    image = _scan()
    array = sitk.GetArrayFromImage(image)
    array[3, 4, 5:12] = bad
    broken = sitk.GetImageFromArray(array)
    broken.CopyInformation(image)
    source = tmp_path / "nan_scan.nrrd"
    sitk.WriteImage(broken, str(source))
    code, stderr = _cli("import", str(source), str(tmp_path / "case"))
    assert code == 2
    assert stderr.strip() == (
        "error: image nan_scan.nrrd holds 7 NaN or infinite voxel value(s) of 2688; "
        "every voxel must be a finite number"
    )
    assert not (tmp_path / "case" / "case.json").exists()


def test_all_nan_scan_is_refused(tmp_path: Path) -> None:
    image = sitk.Image([8, 8, 4], sitk.sitkFloat64) + float("nan")
    source = tmp_path / "allnan.mha"
    sitk.WriteImage(image, str(source))
    with pytest.raises(ImageReadError, match="holds 256 NaN or infinite voxel value"):
        load_scan(source)


def test_finite_float_scan_still_imports(tmp_path: Path) -> None:
    source = tmp_path / "fine.nrrd"
    sitk.WriteImage(_scan(), str(source))
    assert load_scan(source).image.GetSize() == (16, 14, 12)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_truncated_nifti_is_refused_not_zero_filled(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / f"scan{suffix}"
    sitk.WriteImage(_scan(np.int16), str(source), True)
    data = source.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    zeros = int(np.count_nonzero(sitk.GetArrayFromImage(sitk.ReadImage(str(cut))) == 0))
    assert zeros > 500  # SimpleITK itself reads it, silently zero-filled (the bug)
    with pytest.raises(ImageReadError, match="cut.nii.* truncated") as caught:
        read_image_file(cut)
    if suffix == ".nii":
        assert "voxel data, the header's 16x14x12 voxels of 16 bits need 5376" in str(caught.value)
    code, stderr = _cli("import", str(cut), str(tmp_path / "case"))
    assert code == 2 and stderr.count("\n") == 1 and "truncated" in stderr


def test_corrupt_gzip_stream_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "scan.nii.gz"
    sitk.WriteImage(_scan(np.int16), str(source), True)
    data = bytearray(source.read_bytes())
    data[-6] ^= 0xFF  # the CRC-32 / length trailer no longer matches
    source.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match="scan.nii.gz is a corrupt gzip file"):
        read_image_file(source)


def test_complete_nifti_still_reads_identically(tmp_path: Path) -> None:
    source = tmp_path / "scan.nii.gz"
    sitk.WriteImage(_scan(np.int16), str(source), True)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(read_image_file(source)),
        sitk.GetArrayFromImage(_scan(np.int16)),
    )


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_non_orthonormal_direction_is_refused(tmp_path: Path, suffix: str) -> None:
    image = _scan()
    image.SetDirection((1.0, 0.3, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    source = tmp_path / f"skew{suffix}"
    sitk.WriteImage(image, str(source))
    with pytest.raises(ImageReadError, match=f"skew{suffix} has a direction matrix that is not"):
        read_image_file(source)


def test_sheared_nifti_sform_is_refused_not_coerced(tmp_path: Path) -> None:
    plain = tmp_path / "plain.nii"
    sitk.WriteImage(_scan(), str(plain))  # ITK's writer itself coerces directions: patch bytes
    header = bytearray(plain.read_bytes())
    assert struct.unpack("<h", header[254:256])[0] > 0  # sform_code: the sform is used
    srow = list(struct.unpack("<12f", header[280:328]))
    srow[1] = 0.3 * srow[5]  # x gains a y component: the second axis is sheared
    header[280:328] = struct.pack("<12f", *srow)
    source = tmp_path / "skew.nii.gz"
    source.write_bytes(gzip.compress(bytes(header)))
    coerced = sitk.ReadImage(str(source))  # what ITK makes of it (the bug): an orthogonal grid
    assert abs(np.linalg.det(np.reshape(coerced.GetDirection(), (3, 3)))) == pytest.approx(1)
    with pytest.raises(ImageReadError, match="skew.nii.gz: NIfTI sform axes are not orthogonal"):
        read_image_file(source)


def test_rotated_nifti_is_accepted(tmp_path: Path) -> None:
    image = _scan()
    c, s = np.cos(0.4), np.sin(0.4)
    image.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    source = tmp_path / "rotated.nii.gz"
    sitk.WriteImage(image, str(source))
    np.testing.assert_allclose(read_image_file(source).GetDirection(), image.GetDirection(), 1e-6)


def test_nan_label_map_is_one_line_without_numpy_warning(tmp_path: Path) -> None:
    array = np.zeros((6, 7, 8), np.float32)
    array[2:4, 2:4, 2:4] = 1
    array[0, 0, :3] = np.nan
    source = tmp_path / "labels.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(source))
    # pytest turns any RuntimeWarning ("invalid value encountered") into an error here
    with pytest.raises(LabelMapError) as caught:
        read_label_image(source)
    assert str(caught.value) == (
        "label map labels.nrrd holds 3 NaN or infinite value(s) of 336; expected integer labels"
    )


def test_truncated_mha_message_says_what_is_wrong(tmp_path: Path) -> None:
    source = tmp_path / "scan.mha"
    sitk.WriteImage(_scan(np.int16), str(source), True)
    source.write_bytes(source.read_bytes()[:-300])
    with pytest.raises(ImageReadError) as caught:
        read_image_file(source)
    assert str(caught.value) == (
        f"cannot read image {source}: the file is corrupt or truncated (its voxel data could "
        "not be read)"
    )
