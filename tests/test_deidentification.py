"""No patient identifier survives import into a case, its outputs or the CLI's words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from click.testing import CliRunner

from surgplan.cli import cli
from surgplan.sample_data import ensure_sample_data


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_nrrd_header_tags_are_dropped(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray(np.zeros((4, 5, 6), dtype=np.int16))
    image.SetMetaData("PatientName", "DOE^JOHN")
    image.SetMetaData("0010|0020", "MRN-778899")
    source = tmp_path / "tagged.nrrd"
    sitk.WriteImage(image, str(source))
    assert b"MRN-778899" in source.read_bytes()  # the identifier really is in the input
    result = CliRunner().invoke(cli, ["import", str(source), str(tmp_path / "case"), "--json"])
    assert result.exit_code == 0, result.stderr
    data = _all_bytes(tmp_path / "case") + result.stdout.encode()
    assert b"MRN-778899" not in data and b"DOE^JOHN" not in data


def test_phantom_dicom_identity_never_reaches_the_case(tmp_path: Path) -> None:
    sample = ensure_sample_data()
    first = next(p for p in sorted(sample.dicom_dir.iterdir()) if p.is_file())
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    identifiers = [
        str(ds.PatientName),
        str(ds.PatientID),
        str(ds.PatientBirthDate),
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
    ]
    assert identifiers[0] == "PHANTOM^JANE"  # the fake identity is present in the input
    result = CliRunner().invoke(
        cli, ["import", str(sample.dicom_dir), str(tmp_path / "case"), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    everything = _all_bytes(tmp_path / "case") + result.stdout.encode() + result.stderr.encode()
    for identifier in identifiers:
        assert identifier.encode() not in everything, identifier
    manifest = json.loads((tmp_path / "case" / "case.json").read_text())
    assert manifest["image"]["deidentified"] is True
    assert manifest["image"]["source_kind"] == "dicom"
