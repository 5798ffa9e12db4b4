"""De-identification per attribute category of DICOM PS3.15 Annex E's Basic Profile.

One synthetic CT series carries an identifying value in every category at once (names, IDs,
demographics, dates and times, addresses and institutions, physicians and operators, free text,
coded values, UIDs, device identifiers, request identifiers, private tags, overlays and
curves, the burned-in annotation flag), in a folder
and files named after the patient. It goes through the whole pipeline (import, label import,
meshes, every export: label, surface, 3D Slicer scene, glTF, DICOM series, DICOM-SEG, RTSTRUCT,
each with ``--json``) and through failing imports; each test then checks that no value of its
category reaches the case, an export, the commands' output or an error message.
"""

from __future__ import annotations

import gzip
import shutil
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from click.testing import CliRunner
from pydicom.tag import Tag

from surgplan.cli import cli
from tests.dicom_factory import write_series

FOLDER_NAME = "ZZFOLDER^DOE^JANE 19121225"
FILE_PREFIX = "ZZFILE_DOE_JANE"

CATEGORIES: dict[str, dict[str, object]] = {
    "patient_names": {
        "PatientName": "ZZPATIENT^JANE",
        "OtherPatientNames": "ZZOTHERNAME^JANE",
        "PatientBirthName": "ZZBIRTHNAME^JANE",
        "PatientMotherBirthName": "ZZMOTHER^MARY",
        "ResponsiblePerson": "ZZRESPONSIBLE^PAUL",
    },
    "patient_ids": {
        "PatientID": "ZZPID-778899",
        "OtherPatientIDs": "ZZOTHERPID-4455",
        "IssuerOfPatientID": "ZZISSUER-HOSP",
        "MedicalRecordLocator": "ZZMRN-LOCATOR",
    },
    "demographics": {
        "PatientBirthDate": "19121225",
        "PatientBirthTime": "235911.987654",  # long: a short digit string occurs in floats
        "PatientSex": "F",
        "PatientAge": "093Y",
        "PatientSize": "1.87654321",
        "PatientWeight": "87.6543219",
        "EthnicGroup": "ZZETHNIC",
        "Occupation": "ZZOCCUPATION",
        "MilitaryRank": "ZZRANK",
        "BranchOfService": "ZZBRANCH",
        "PatientReligiousPreference": "ZZRELIGION",
        "PatientTelephoneNumbers": "ZZPHONE-5550123",
        "CountryOfResidence": "ZZCOUNTRY",
        "RegionOfResidence": "ZZREGION",
    },
    "dates_times": {
        "StudyDate": "19130117",
        "SeriesDate": "19130118",
        "AcquisitionDate": "19130119",
        "ContentDate": "19130120",
        "InstanceCreationDate": "19130121",
        "StudyTime": "101112.131415",
        "SeriesTime": "111213.141516",
        "AcquisitionTime": "121314.151617",
        "ContentTime": "131415.161718",
        "AcquisitionDateTime": "19130122141516.171819",
    },
    "addresses_institutions": {
        "PatientAddress": "ZZ 1 Secret Street, Hidden Town",
        "InstitutionName": "ZZ Saint Secret Hospital",
        "InstitutionAddress": "ZZ 2 Clinic Road, Hidden Town",
        "InstitutionalDepartmentName": "ZZ Department of Secrets",
    },
    "physicians_operators": {
        "ReferringPhysicianName": "ZZREFERRING^ANNA",
        "ReferringPhysicianAddress": "ZZ 3 Doctor Lane",
        "ReferringPhysicianTelephoneNumbers": "ZZDOCPHONE-555",
        "PerformingPhysicianName": "ZZPERFORMING^BOB",
        "NameOfPhysiciansReadingStudy": "ZZREADING^CARL",
        "PhysiciansOfRecord": "ZZRECORD^DORA",
        "OperatorsName": "ZZOPERATOR^EVE",
        "RequestingPhysician": "ZZREQUESTING^FRED",
    },
    "free_text": {
        "StudyDescription": "ZZ study of Jane Doe",
        "SeriesDescription": "ZZ series for Jane Doe",
        "ImageComments": "ZZ image comment Jane Doe",
        "PatientComments": "ZZ patient comment",
        "AdditionalPatientHistory": "ZZ history of Jane",
        "AdmittingDiagnosesDescription": "ZZ diagnosis of Jane",
        "RequestedProcedureDescription": "ZZ requested procedure",
        "PerformedProcedureStepDescription": "ZZ performed step",
        "ProtocolName": "ZZ protocol Jane",
        "DerivationDescription": "ZZ derivation",
    },
    "uids": {
        "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.77001",
        "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.77002",
        "FrameOfReferenceUID": "1.2.826.0.1.3680043.8.498.77003",
        "DeviceUID": "1.2.826.0.1.3680043.8.498.77004",
        "IrradiationEventUID": "1.2.826.0.1.3680043.8.498.77005",
    },
    "device_identifiers": {
        "DeviceSerialNumber": "ZZSERIAL-0099",
        "StationName": "ZZSTATION-7",
        "DetectorID": "ZZDETECTOR-3",
        "GantryID": "ZZGANTRY-2",
    },
    "coded_values": {  # copied only from the defined terms: anything else becomes "OT"
        "Modality": "ZZCODED^JANE",
        "BodyPartExamined": "ZZBODYPART",
        "PatientPosition": "ZZPOSITION",
    },
    "request_identifiers": {
        "AccessionNumber": "ZZACC-123456",
        "StudyID": "ZZSTUDYID-9",
        "RequestedProcedureID": "ZZREQPROC-8",
        "PerformedProcedureStepID": "ZZPPS-7",
        "ScheduledProcedureStepID": "ZZSPS-6",
    },
}
PRIVATE_VALUE = "ZZPRIVATE^JANE^DOE"
PRIVATE_CREATOR = "ZZ SECRET CREATOR"
OVERLAY_DATA = b"ZZOVERLAYBYTES!!"  # 16 bytes: 128 bits for a 12 x 10 overlay plane
OVERLAY_TEXT = ("ZZOVERLAYDESC", "ZZOVERLAYLABEL")
CURVE_DATA = b"ZZCURVEDATABYTES"
CURVE_TEXT = "ZZCURVEDESC"
#: Values whose exported element is checked by tag rather than by bytes (too short to search).
SHORT_DEMOGRAPHICS = ("PatientSex", "PatientAge", "PatientSize", "PatientWeight")


def _hu(points: np.ndarray) -> np.ndarray:
    inside = np.all(np.abs(points - np.array([0.0, 0.0, 12.0])) < 7.5, axis=-1)
    return np.where(inside, 300.0, -50.0)


def _seed_extras(path: Path) -> None:
    """Private block, an overlay plane and a (retired) curve on one written file."""
    ds = pydicom.dcmread(path)
    ds.private_block(0x0019, PRIVATE_CREATOR, create=True).add_new(0x01, "LO", PRIVATE_VALUE)
    ds.add_new(Tag(0x6000, 0x0010), "US", 12)
    ds.add_new(Tag(0x6000, 0x0011), "US", 10)
    ds.add_new(Tag(0x6000, 0x0040), "CS", "G")
    ds.add_new(Tag(0x6000, 0x0050), "SS", [1, 1])
    ds.add_new(Tag(0x6000, 0x0100), "US", 1)
    ds.add_new(Tag(0x6000, 0x0102), "US", 0)
    ds.add_new(Tag(0x6000, 0x0022), "LO", OVERLAY_TEXT[0])
    ds.add_new(Tag(0x6000, 0x1500), "LO", OVERLAY_TEXT[1])
    ds.add_new(Tag(0x6000, 0x3000), "OW", OVERLAY_DATA)
    ds.add_new(Tag(0x5000, 0x0022), "LO", CURVE_TEXT)
    ds.add_new(Tag(0x5000, 0x3000), "OB", CURVE_DATA)
    ds.save_as(path)


def _write_identified_series(folder: Path, n_slices: int = 12, **tags: object) -> list[Path]:
    all_tags = {k: v for values in CATEGORIES.values() for k, v in values.items()} | tags
    files = write_series(
        folder,
        n_slices=n_slices,
        rows=20,
        columns=20,
        pixel_spacing=(1.5, 1.5),
        step_mm=(0.0, 0.0, 2.0),
        origin=(-15.0, -15.0, 0.0),
        name=lambda k: f"{FILE_PREFIX}_{k:03d}.dcm",
        tags=all_tags,
        values=_hu,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for path in files:
            _seed_extras(path)
    return files


@dataclass(frozen=True)
class Pipeline:
    source_bytes: bytes
    everything: bytes
    messages: str
    exported_dicom: list[pydicom.Dataset]


def _bytes_of(path: Path) -> bytes:
    """A file's bytes, plus the members of a zip and the content of a gzip file."""
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            data += b"".join(archive.read(name) for name in archive.namelist())
    if data[:2] == b"\x1f\x8b":
        data += gzip.decompress(data)
    return data


def _tree_bytes(*roots: Path) -> bytes:
    files = [p for root in roots for p in ([root] if root.is_file() else sorted(root.rglob("*")))]
    names = "\n".join(str(p) for p in files if p.is_file()).encode()
    return names + b"".join(_bytes_of(p) for p in files if p.is_file())


def _run(runner: CliRunner, args: list[str], code: int = 0) -> str:
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("annex_e")
    source = root / FOLDER_NAME
    files = _write_identified_series(source)
    case, out = root / "case", root / "out"
    out.mkdir()
    runner = CliRunner()
    messages = _run(runner, ["import", str(source), str(case)])
    labels = sitk.Cast(sitk.ReadImage(str(case / "images" / "scan.nrrd")) > 100, sitk.sitkUInt8)
    sitk.WriteImage(labels, str(root / "labels.nrrd"))
    (root / "names.json").write_text('{"1": "liver"}')
    label_args = ["--labels", str(root / "labels.nrrd"), "--names", str(root / "names.json")]
    messages += _run(runner, ["segment", str(case), *label_args])
    messages += _run(runner, ["mesh", str(case), "--edge-mm", "4"])
    for option, name in [
        ("--scene", "scene.mrb"),
        ("--gltf", "case.glb"),
        ("--dicom", "dicom"),
        ("--dicom-seg", "seg.dcm"),
        ("--rtstruct", "rt.dcm"),
    ]:
        messages += _run(runner, ["export", str(case), option, str(out / name)])
    for option, name in [("--label", "liver.nii.gz"), ("--mesh", "liver.vtp")]:
        messages += _run(
            runner, ["export", str(case), "--structure", "liver", option, str(out / name)]
        )
    written = {p.name for p in out.iterdir()} | {p.name for p in (case / "meshes").iterdir()}
    assert {"scene.mrb", "case.glb", "seg.dcm", "rt.dcm", "liver.nii.gz", "liver.vtp"} <= written
    assert {"liver.vtp", "volume.vtu"} <= written  # the case's own meshes
    messages += _failing_imports(runner, root, files)
    exported = [
        pydicom.dcmread(p)
        for p in [*sorted((out / "dicom").iterdir()), out / "seg.dcm", out / "rt.dcm"]
    ]
    source_bytes = _tree_bytes(source)
    everything = _tree_bytes(case, out) + messages.encode()
    return Pipeline(source_bytes, everything, messages, exported)


def _failing_imports(runner: CliRunner, root: Path, files: list[Path]) -> str:
    """Error output of imports refused for a truncated slice and for two series."""
    broken = root / "broken" / FOLDER_NAME
    shutil.copytree(files[0].parent, broken)
    last = sorted(broken.iterdir())[-1]
    last.write_bytes(last.read_bytes()[:-100])
    text = _run(runner, ["import", str(broken), str(root / "case_broken")], code=2)
    two = root / "two" / FOLDER_NAME
    shutil.copytree(files[0].parent, two / "a")
    _write_identified_series(two / "b", n_slices=4, SeriesInstanceUID="1.2.826.0.1.3680043.8.498.7")
    text += _run(runner, ["import", str(two), str(root / "case_two")], code=2)
    assert "file 12 of 12 is truncated" in text and "choose one with --series" in text
    return text


def _absent(pipeline: Pipeline, values: list[str | bytes]) -> None:
    for value in values:
        needle = value if isinstance(value, bytes) else value.encode()
        assert needle in pipeline.source_bytes, value  # really seeded in the input
        assert needle not in pipeline.everything, value


def _category(name: str) -> list[str | bytes]:
    return [str(v) for k, v in CATEGORIES[name].items() if k not in SHORT_DEMOGRAPHICS]


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_category_never_leaves_the_source(pipeline: Pipeline, category: str) -> None:
    _absent(pipeline, _category(category))
    parts = [p for v in _category(category) for p in str(v).replace("^", " ").split()]
    for part in (p for p in parts if p.startswith("ZZ") and len(p) > 5):
        assert part.encode() not in pipeline.everything, part  # nor any piece of a name


def test_short_demographics_are_empty_or_absent_in_exports(pipeline: Pipeline) -> None:
    for ds in pipeline.exported_dicom:
        for keyword in SHORT_DEMOGRAPHICS:
            assert str(ds.get(keyword, "") or "") == "", (keyword, ds.get(keyword))


def test_private_tags_never_leave_the_source(pipeline: Pipeline) -> None:
    _absent(pipeline, [PRIVATE_VALUE, PRIVATE_CREATOR])
    for ds in pipeline.exported_dicom:
        assert not any(element.tag.is_private for element in ds.iterall())


def test_overlays_and_curves_never_leave_the_source(pipeline: Pipeline) -> None:
    _absent(pipeline, [OVERLAY_DATA, *OVERLAY_TEXT, CURVE_DATA, CURVE_TEXT])
    for ds in pipeline.exported_dicom:
        assert not any(element.tag.group in (0x5000, 0x6000) for element in ds.iterall())


def test_file_and_folder_names_appear_in_no_output_or_message(pipeline: Pipeline) -> None:
    _absent(pipeline, [])
    for needle in (FILE_PREFIX, "ZZFOLDER", "DOE^JANE", "DOE_JANE"):
        assert needle not in pipeline.messages, needle
        assert needle.encode() not in pipeline.everything, needle


def test_exports_carry_the_deidentification_attributes(pipeline: Pipeline) -> None:
    for ds in pipeline.exported_dicom:
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert str(ds.PatientName) == "ANONYMOUS^SURGPLAN"


def test_burned_in_annotation_is_refused_without_echoing_identity(tmp_path: Path) -> None:
    source = tmp_path / FOLDER_NAME
    _write_identified_series(source, n_slices=3, BurnedInAnnotation="YES")
    result = CliRunner().invoke(cli, ["import", str(source), str(tmp_path / "case"), "--json"])
    assert result.exit_code == 2
    assert "file 1 of 3 is marked BurnedInAnnotation YES" in result.stderr
    output = (result.stdout + result.stderr).encode()
    for value in [v for c in CATEGORIES for v in _category(c)] + [FILE_PREFIX, "ZZFOLDER"]:
        assert str(value).encode() not in output, value
    assert not (tmp_path / "case" / "case.json").exists()
