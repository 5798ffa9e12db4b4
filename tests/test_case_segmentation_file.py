"""Every case carries a 3D Slicer segmentation; Slicer and TotalSegmentator files import by name.

``labels/segmentation.seg.nrrd`` is read back with ``slicerio`` (the reference reader of the
format) and compared with the per-structure label maps voxel for voxel. The Slicer-written files
are those shipped with ``slicerio`` (``slicerio/data``: ``CTChest4.nrrd`` and the segmentations
Slicer made on it); the TotalSegmentator file is the real ``example_seg.nii.gz``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
from click.testing import CliRunner

from imaging.seg_nrrd import Segment, read_slicer_segmentation, write_slicer_segmentation
from surgplan.case import Case
from surgplan.cli import cli
from surgplan.render import STYLE
from surgplan.sample_data import ensure_sample_data

SEG_RELPATH = "labels/segmentation.seg.nrrd"
PHANTOM_NAMES = [
    "liver",
    "tumour",
    "portal_vein",
    "hepatic_veins",
    "ivc",
    "aorta",
    "bone",
    "kidney_right",
    "kidney_left",
    "spleen",
]
CHEST_NAMES = [
    "ribs",
    "cervical_vertebral_column",
    "thoracic_vertebral_column",
    "lumbar_vertebral_column",
    "right_lung",
    "left_lung",
    "tissue",
]
GREY = (0.7, 0.7, 0.7)


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: object) -> dict:
    code, out, err = run(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def refused(case: Path, *args: object, message: str) -> str:
    """Run a command that must fail with exit code 2, one line naming ``message``, case intact."""
    before = snapshot(case)
    code, out, err = run(*args)
    assert code == 2 and out == "", err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert snapshot(case) == before
    return err


def label_array(case: Path, name: str) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(case / "labels" / f"{name}.nrrd")))


def slicer_mask(segmentation: dict, name: str) -> np.ndarray:
    """slicerio's mask of a segment, in SimpleITK's (k, j, i) order."""
    return slicerio.segment_mask(segmentation, name).transpose(2, 1, 0).astype(np.uint8)


def check_segmentation_matches_label_maps(case: Path) -> dict:
    """slicerio reads one segment per structure, with its name, colour and exact voxels."""
    manifest = Case.open(case).manifest
    segmentation = slicerio.read_segmentation(str(case / SEG_RELPATH))
    segments = {s["name"]: s for s in segmentation["segments"]}
    assert list(segments) == list(manifest.structures)
    assert manifest.segmentation is not None and manifest.segmentation.path == SEG_RELPATH
    for name, fields in segments.items():
        recorded = manifest.segmentation.segments[name]
        assert fields["labelValue"] == recorded.label_value
        assert fields["layer"] == recorded.layer
        assert tuple(fields["color"]) == pytest.approx(recorded.colour_rgb)
        np.testing.assert_array_equal(slicer_mask(segmentation, name), label_array(case, name))
    return segments


@pytest.fixture(scope="module")
def phantom_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = ensure_sample_data().folder
    case = tmp_path_factory.mktemp("seg") / "phantom"
    run_json("import", data / "phantom_ct.nii.gz", case)
    report = run_json(
        "segment",
        case,
        "--labels",
        data / "phantom_labels.nrrd",
        "--names",
        data / "phantom_labels.json",
    )
    assert list(report["structures"]) == PHANTOM_NAMES
    return case


@pytest.fixture()
def phantom_case(phantom_base: Path, tmp_path: Path) -> Path:
    shutil.copytree(phantom_base, tmp_path / "phantom")
    return tmp_path / "phantom"


@pytest.fixture(scope="module")
def chest_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A case of Slicer's own CTChest4 scan, on which slicerio's segmentations were made."""
    case = tmp_path_factory.mktemp("seg") / "chest"
    run_json("import", slicerio.get_testdata_file("CTChest4.nrrd"), case)
    return case


@pytest.fixture()
def chest_case(chest_base: Path, tmp_path: Path) -> Path:
    shutil.copytree(chest_base, tmp_path / "chest")
    return tmp_path / "chest"


@pytest.fixture(scope="module")
def totalseg_base(tmp_path_factory: pytest.TempPathFactory, totalseg_dir: Path) -> Path:
    case = tmp_path_factory.mktemp("seg") / "totalseg"
    run_json("import", totalseg_dir / "example_ct_sm.nii.gz", case)
    return case


@pytest.fixture()
def totalseg_case(totalseg_base: Path, tmp_path: Path) -> Path:
    shutil.copytree(totalseg_base, tmp_path / "totalseg")
    return tmp_path / "totalseg"


# --- the case's segmentation, kept in step --------------------------------------------------


def test_imported_labels_are_in_the_case_segmentation(phantom_base: Path) -> None:
    segments = check_segmentation_matches_label_maps(phantom_base)
    reference = sitk.GetArrayFromImage(
        sitk.ReadImage(str(ensure_sample_data().folder / "phantom_labels.nrrd"))
    )
    for value, name in enumerate(PHANTOM_NAMES, start=1):
        assert segments[name]["labelValue"] == value  # the imported map's values
        assert int((slicer_mask_of(phantom_base, name)).sum()) == int((reference == value).sum())
    assert tuple(segments["liver"]["color"]) == STYLE["liver"][0]
    assert tuple(segments["aorta"]["color"]) == GREY  # no project colour, none in the source
    assert "SCT^10200004^Liver" in slicerio.segmentation.terminology_entry_to_string(
        segments["liver"]["terminology"]
    )
    assert {s["layer"] for s in segments.values()} == {0}  # a label map never overlaps
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE((phantom_base / SEG_RELPATH).stat().st_mode)
    assert mode == 0o666 & ~umask


def slicer_mask_of(case: Path, name: str) -> np.ndarray:
    return slicer_mask(slicerio.read_segmentation(str(case / SEG_RELPATH)), name)


def test_liver_envelope_goes_into_a_second_layer_and_values_stay(phantom_case: Path) -> None:
    """The liver replaced by its envelope (holding tumour and vessels): two layers."""
    data = ensure_sample_data().folder
    names = phantom_case.parent / "envelope.json"
    names.write_text(json.dumps({"1": "liver"}))
    run_json(
        "segment", phantom_case, "--labels", data / "phantom_liver_envelope.nrrd", "--names", names
    )
    segments = check_segmentation_matches_label_maps(phantom_case)
    assert [segments[n]["labelValue"] for n in PHANTOM_NAMES] == list(range(1, 11))
    manifest = Case.open(phantom_case).manifest
    assert manifest.segmentation is not None and manifest.segmentation.n_layers == 2
    assert nrrd.read_header(str(phantom_case / SEG_RELPATH))["sizes"].tolist() == [2, 200, 168, 90]
    envelope, tumour = label_array(phantom_case, "liver"), label_array(phantom_case, "tumour")
    assert (envelope & tumour).sum() == tumour.sum() == 6187  # the tumour lies inside the liver


def test_segmenting_a_structure_rewrites_its_segment(phantom_case: Path) -> None:
    before = label_array(phantom_case, "bone")
    run_json("segment", phantom_case, "--structure", "bone")
    after = label_array(phantom_case, "bone")
    assert not np.array_equal(before, after)  # the HU preset differs from the drawn truth
    segments = check_segmentation_matches_label_maps(phantom_case)
    assert segments["bone"]["labelValue"] == 7  # kept its value
    assert tuple(segments["bone"]["color"]) == STYLE["bone"][0]


def test_new_grid_drops_the_segmentation(phantom_case: Path, totalseg_dir: Path) -> None:
    report = run_json("import", totalseg_dir / "example_ct_sm.nii.gz", phantom_case)
    assert report["dropped_structures"] == sorted(PHANTOM_NAMES)
    manifest = Case.open(phantom_case).manifest
    assert manifest.segmentation is None and not manifest.structures
    assert not (phantom_case / "labels").exists() or not any((phantom_case / "labels").iterdir())


def test_export_label_seg_nrrd(phantom_case: Path, tmp_path: Path) -> None:
    out = tmp_path / "tumour.seg.nrrd"
    report = run_json("export", phantom_case, "--structure", "tumour", "--label", out)
    assert report == {
        "action": "export",
        "structure": "tumour",
        "kind": "label",
        "output": str(out),
        "time_s": report["time_s"],
    }
    segmentation = slicerio.read_segmentation(str(out))
    assert [s["name"] for s in segmentation["segments"]] == ["tumour"]
    fields = segmentation["segments"][0]
    assert (fields["labelValue"], tuple(fields["color"])) == (2, STYLE["tumour"][0])
    np.testing.assert_array_equal(
        slicer_mask(segmentation, "tumour"), label_array(phantom_case, "tumour")
    )
    assert segmentation["ijkToLPS"][:3, 3].tolist() == [-150.0, -126.0, -900.0]


# --- importing 3D Slicer segmentations --------------------------------------------------------


def test_layered_slicer_segmentation_imports_with_its_names(chest_case: Path) -> None:
    source = slicerio.get_testdata_file("SegmentationOverlapping.seg.nrrd")
    report = run_json("segment", chest_case, "--labels", source)
    assert list(report["structures"]) == [*CHEST_NAMES, "overlapping_sphere"]
    slicer = slicerio.read_segmentation(source)
    for fields, name in zip(slicer["segments"], report["structures"], strict=True):
        expected = slicer_mask(slicer, fields["name"])
        assert report["structures"][name]["n_voxels"] == int(expected.sum())
        np.testing.assert_array_equal(label_array(chest_case, name), expected)
    assert report["structures"]["overlapping_sphere"]["n_voxels"] == 19139
    segments = check_segmentation_matches_label_maps(chest_case)
    # names the project has no colour for keep Slicer's colours
    assert segments["overlapping_sphere"]["color"] == pytest.approx([0.862745, 0.960784, 0.0784314])
    assert segments["overlapping_sphere"]["layer"] == 1  # overlaps "tissue"
    entry = Case.open(chest_case).manifest.structures["right_lung"]
    assert entry.source_name == "right lung"
    assert "SCT^39607008^Lung~SCT^24028007^Right" in (entry.terminology or "")


def test_3d_slicer_segmentation_with_a_names_mapping(chest_case: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"right lung": "lung_right", "6": "lung_left"}))
    report = run_json(
        "segment",
        chest_case,
        "--labels",
        slicerio.get_testdata_file("Segmentation.seg.nrrd"),
        "--names",
        names,
        "--structure",
        "lung_right",
        "--structure",
        "lung_left",
    )
    assert {n: s["value"] for n, s in report["structures"].items()} == {
        "lung_right": 5,
        "lung_left": 6,
    }
    check_segmentation_matches_label_maps(chest_case)


def test_layered_segmentation_without_seg_in_its_name(chest_case: Path, tmp_path: Path) -> None:
    """A layered Slicer file named ``*.nrrd`` is recognised by its header, not cast by SimpleITK."""
    plain = tmp_path / "overlapping.nrrd"
    shutil.copy(slicerio.get_testdata_file("SegmentationOverlapping.seg.nrrd"), plain)
    report = run_json("segment", chest_case, "--labels", plain, "--structure", "overlapping_sphere")
    assert report["structures"]["overlapping_sphere"]["n_voxels"] == 19139


def test_cropped_slicer_segmentation_is_padded_to_the_scan(
    phantom_case: Path, tmp_path: Path
) -> None:
    """Slicer may save a segmentation cropped to its extent: padded back, voxel for voxel."""
    tumour = sitk.ReadImage(str(phantom_case / "labels" / "tumour.nrrd"))
    cropped = sitk.RegionOfInterest(tumour, [32, 34, 30], [28, 78, 50])  # size, index
    assert int(sitk.GetArrayViewFromImage(cropped).sum()) == 6187  # the whole tumour
    source = write_slicer_segmentation(
        tmp_path / "cropped.seg.nrrd", [Segment("Lesion 1", cropped, (1.0, 0.0, 0.0))]
    )
    report = run_json("segment", phantom_case, "--labels", source)
    assert report["structures"]["lesion_1"]["n_voxels"] == 6187
    np.testing.assert_array_equal(
        label_array(phantom_case, "lesion_1"), label_array(phantom_case, "tumour")
    )
    segments = check_segmentation_matches_label_maps(phantom_case)
    assert segments["lesion_1"]["color"] == [1.0, 0.0, 0.0]
    assert segments["lesion_1"]["labelValue"] == 11  # value 1 is the liver's


# --- importing TotalSegmentator's multi-label NIfTI ----------------------------------------


def test_totalsegmentator_output_imports_with_the_names_in_its_header(
    totalseg_case: Path, totalseg_dir: Path
) -> None:
    report = run_json("segment", totalseg_case, "--labels", totalseg_dir / "example_seg.nii.gz")
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(totalseg_dir / "example_seg.nii.gz")))
    names = {int(k): v for k, v in json.loads((totalseg_dir / "labels.json").read_text()).items()}
    present = sorted(int(v) for v in np.unique(reference) if v)
    assert len(present) == 41
    assert list(report["structures"]) == [names[v] for v in present]
    liver = report["structures"]["liver"]
    assert liver["value"] == 5
    assert liver["volume_ml"] == pytest.approx(np.count_nonzero(reference == 5) * 27.0 / 1000.0)
    segments = check_segmentation_matches_label_maps(totalseg_case)
    assert {n: s["labelValue"] for n, s in segments.items()} == {names[v]: v for v in present}
    assert tuple(segments["liver"]["color"]) == STYLE["liver"][0]
    # no project colour: the colour of TotalSegmentator's label table (label % 12 cycle)
    assert segments["aorta"]["color"] == pytest.approx([1.0, 0.0, 1.0])


# --- bad inputs: one line, exit code 2, case unchanged ---------------------------------------


def test_segmentation_with_no_segments(phantom_case: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.seg.nrrd"
    header = {"space": "left-posterior-superior", "space directions": np.eye(3) * 1.5}
    with warnings.catch_warnings():  # pynrrd 1.1 calls datetime.utcnow(), deprecated in 3.12
        warnings.filterwarnings("ignore", "datetime.datetime.utcnow", DeprecationWarning)
        nrrd.write(str(empty), np.zeros((200, 168, 90), dtype=np.uint8), header)
    refused(phantom_case, "segment", phantom_case, "--labels", empty, message="holds no segments")


def test_segmentation_on_another_grid(phantom_case: Path, tmp_path: Path) -> None:
    source = slicerio.get_testdata_file("Segmentation.seg.nrrd")
    refused(
        phantom_case, "segment", phantom_case, "--labels", source, message="not on the scan's grid"
    )
    # half a voxel off the scan's lattice: not a cropped sub-grid either
    tumour = sitk.ReadImage(str(phantom_case / "labels" / "tumour.nrrd"))
    shifted = sitk.RegionOfInterest(tumour, [32, 34, 30], [28, 78, 50])  # size, index
    shifted.SetOrigin(tuple(o + 0.75 for o in shifted.GetOrigin()))
    path = write_slicer_segmentation(tmp_path / "off.seg.nrrd", [Segment("x", shifted, GREY)])
    refused(
        phantom_case, "segment", phantom_case, "--labels", path, message="not on the scan's grid"
    )


def test_segments_sharing_a_layer_and_label_value(chest_case: Path, tmp_path: Path) -> None:
    source = slicerio.get_testdata_file("SegmentationOverlapping.seg.nrrd")
    voxels, header = nrrd.read(source)
    header["Segment7_Layer"] = "0"  # the sphere claims value 1 of layer 0, the ribs' value
    bad = tmp_path / "clash.seg.nrrd"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "datetime.datetime.utcnow", DeprecationWarning)
        nrrd.write(str(bad), voxels, header)
    refused(chest_case, "segment", chest_case, "--labels", bad, message="both use label value 1")


def test_nifti_without_label_names_needs_names(totalseg_case: Path, totalseg_dir: Path) -> None:
    source = totalseg_dir / "example_ct_sm.nii.gz"
    err = refused(
        totalseg_case, "segment", totalseg_case, "--labels", source, message="pass --names"
    )
    assert "example_ct_sm.nii.gz has no label-name extension" in err


def test_names_that_clash_or_are_reserved(chest_case: Path, tmp_path: Path) -> None:
    source = slicerio.get_testdata_file("Segmentation.seg.nrrd")
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"ribs": "bone", "tissue": "bone"}))
    refused(
        chest_case, "segment", chest_case, "--labels", source, "--names", names, message="'bone'"
    )
    names.write_text(json.dumps({"ribs": "segmentation.seg"}))
    refused(
        chest_case, "segment", chest_case, "--labels", source, "--names", names, message="reserved"
    )


def test_names_without_labels(chest_case: Path, tmp_path: Path) -> None:
    refused(chest_case, "segment", chest_case, "--names", tmp_path / "n.json", message="--labels")


def test_round_trip_through_the_reader_keeps_the_case_files(phantom_base: Path) -> None:
    """The case file reads back through the project's own reader with the manifest's values."""
    segments = read_slicer_segmentation(phantom_base / SEG_RELPATH)
    assert [s.name for s in segments] == PHANTOM_NAMES
    assert [s.label_value for s in segments] == list(range(1, 11))
    for segment in segments:
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(segment.mask), label_array(phantom_base, segment.name)
        )
