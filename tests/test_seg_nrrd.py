"""3D Slicer ``.seg.nrrd`` files and TotalSegmentator's NIfTI label-table extension.

Round trips go through ``slicerio`` (the reference reader of the format) and ``pynrrd``; the
Slicer-written files are those shipped with ``slicerio`` (``slicerio/data``, written by 3D Slicer).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import warnings
from pathlib import Path

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from imaging.errors import ImagingError
from imaging.labels import read_label_image, structure_name_from_label, validate_structure_name
from imaging.nifti_labels import (
    NiftiLabelTableError,
    read_label_names_from_nifti,
    read_label_table_from_nifti,
)
from imaging.seg_nrrd import (
    Segment,
    SlicerSegmentationError,
    ijk_to_lps_matrix,
    is_slicer_segmentation,
    mask_on_grid,
    read_slicer_segmentation,
    reference_geometry_string_ras,
    segments_from_label_map,
    terminology_for,
    write_slicer_segmentation,
)
from surgplan.sample_data import ensure_sample_data

#: Colours as surgplan/render.py's STYLE gives them (imaging takes colours as input).
COLOURS = {
    "liver": (0.80, 0.45, 0.35),
    "tumour": (1.00, 0.85, 0.10),
    "portal_vein": (0.55, 0.30, 0.90),
    "hepatic_veins": (0.25, 0.45, 0.95),
    "bone": (0.92, 0.90, 0.82),
    "spleen": (0.60, 0.25, 0.45),
}
GREY = (0.7, 0.7, 0.7)
#: Voxel counts of the phantom's labels 1..10 (sample_data/phantom_labels.nrrd).
PHANTOM_COUNTS = {1: 262110, 2: 6187, 3: 5378, 4: 6285, 5: 14760}


@pytest.fixture(scope="module")
def phantom() -> tuple[sitk.Image, dict[int, str]]:
    folder = ensure_sample_data().folder
    labels = sitk.ReadImage(str(folder / "phantom_labels.nrrd"))
    raw = json.loads((folder / "phantom_labels.json").read_text(encoding="utf-8"))
    return labels, {int(k): v for k, v in raw.items()}


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _slicerio_mask_kji(segmentation: dict, name: str) -> np.ndarray:
    """slicerio's mask of a segment, (i, j, k) -> SimpleITK's (k, j, i) order."""
    return slicerio.segment_mask(segmentation, name).transpose(2, 1, 0)


def _nrrd_write(path: Path, voxels: np.ndarray, header: dict) -> None:
    with warnings.catch_warnings():  # pynrrd 1.1 calls datetime.utcnow(), deprecated in 3.12
        warnings.filterwarnings("ignore", "datetime.datetime.utcnow", DeprecationWarning)
        nrrd.write(str(path), voxels, header)


def _one_line_naming(error: pytest.ExceptionInfo, path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert path.name in message


# --- writing: names, colours, voxels back through slicerio ------------------------------------


def test_phantom_labels_read_back_by_slicerio_with_names_colours_and_voxels(phantom, tmp_path):
    labels, names = phantom
    path = write_slicer_segmentation(
        tmp_path / "segmentation.seg.nrrd", segments_from_label_map(labels, names, COLOURS)
    )
    segmentation = slicerio.read_segmentation(str(path))
    assert segmentation["voxels"].ndim == 3  # no overlap: one layer
    assert slicerio.segment_names(segmentation) == [names[v] for v in range(1, 11)]
    array = _array(labels)
    for segment in segmentation["segments"]:
        value = segment["labelValue"]
        assert names[value] == segment["name"]
        assert segment["layer"] == 0
        assert tuple(segment["color"]) == COLOURS.get(segment["name"], GREY)
        expected = array == value
        assert np.array_equal(_slicerio_mask_kji(segmentation, segment["name"]), expected)
        if value in PHANTOM_COUNTS:
            assert int(expected.sum()) == PHANTOM_COUNTS[value]
    liver = slicerio.segment_from_name(segmentation, "liver")
    assert liver["terminology"]["type"] == ["SCT", "10200004", "Liver"]
    kidney = slicerio.segment_from_name(segmentation, "kidney_left")
    assert kidney["terminology"]["typeModifier"] == ["SCT", "7771000", "Left"]
    header = nrrd.read_header(str(path))
    assert header["space"] == "left-posterior-superior"
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"


def test_read_slicer_segmentation_returns_the_written_segments(phantom, tmp_path):
    labels, names = phantom
    written = segments_from_label_map(labels, names, COLOURS)
    path = write_slicer_segmentation(tmp_path / "s.seg.nrrd", written, reference=labels)
    back = read_slicer_segmentation(path)
    assert [s.name for s in back] == [s.name for s in written]
    for before, after in zip(written, back, strict=True):
        assert after.label_value == before.label_value
        assert after.colour_rgb == before.colour_rgb
        assert after.terminology == before.terminology
        assert np.array_equal(_array(after.mask), _array(before.mask))
        assert after.mask.GetOrigin() == labels.GetOrigin() == (-150.0, -126.0, -900.0)
        assert after.mask.GetSpacing() == labels.GetSpacing() == (1.5, 1.5, 2.0)
    assert back[1].terminology == terminology_for("tumour")
    assert "SCT^108369006^Neoplasm" in back[1].terminology


def test_overlapping_liver_and_tumour_go_into_two_layers(phantom, tmp_path):
    labels, _ = phantom
    array = _array(labels)
    liver_with_tumour = sitk.Cast((labels == 1) | (labels == 2), sitk.sitkUInt8)
    tumour = sitk.Cast(labels == 2, sitk.sitkUInt8)
    segments = [
        Segment("liver", liver_with_tumour, COLOURS["liver"], 1, terminology_for("liver")),
        Segment("tumour", tumour, COLOURS["tumour"], 2, terminology_for("tumour")),
    ]
    path = write_slicer_segmentation(tmp_path / "layered.seg.nrrd", segments)
    header = nrrd.read_header(str(path))
    assert header["dimension"] == 4
    assert header["kinds"] == ["list", "domain", "domain", "domain"]
    assert list(header["sizes"]) == [2, 200, 168, 90]
    segmentation = slicerio.read_segmentation(str(path))
    layers = {s["name"]: s["layer"] for s in segmentation["segments"]}
    assert layers == {"liver": 0, "tumour": 1}
    liver = _slicerio_mask_kji(segmentation, "liver")
    assert np.array_equal(liver, (array == 1) | (array == 2))
    assert int(liver.sum()) == 262110 + 6187
    assert np.array_equal(_slicerio_mask_kji(segmentation, "tumour"), array == 2)
    back = {s.name: s for s in read_slicer_segmentation(path)}
    assert int(_array(back["liver"].mask).sum()) == 268297
    assert np.array_equal(_array(back["tumour"].mask), array == 2)


def test_real_ct_grid_round_trips_with_its_lps_direction(totalseg_dir, tmp_path):
    ct = sitk.ReadImage(str(totalseg_dir / "example_ct_sm.nii.gz"))
    labels = sitk.ReadImage(str(totalseg_dir / "example_seg.nii.gz"))
    assert ct.GetDirection() == (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    names = read_label_names_from_nifti(totalseg_dir / "example_seg.nii.gz")
    segments = segments_from_label_map(labels, names, COLOURS)
    assert len(segments) == 41  # labels present in the real TotalSegmentator output
    path = write_slicer_segmentation(tmp_path / "ts.seg.nrrd", segments, reference=ct)
    header = nrrd.read_header(str(path))
    assert header["space"] == "left-posterior-superior"
    np.testing.assert_allclose(header["space directions"], np.diag([-3.0, -3.0, 3.0]))
    np.testing.assert_allclose(header["space origin"], ct.GetOrigin(), atol=1e-9)
    segmentation = slicerio.read_segmentation(str(path))
    corner = np.array([121, 100, 29, 1.0])
    lps = segmentation["ijkToLPS"] @ corner
    np.testing.assert_allclose(lps[:3], ct.TransformIndexToPhysicalPoint((121, 100, 29)))
    np.testing.assert_allclose(lps[:3], (177.9563293 - 363.0, -11.319 - 300.0, 94.3017578 + 87))
    back = {s.name: s for s in read_slicer_segmentation(path)}
    liver = back["liver"].mask
    assert liver.GetOrigin() == ct.GetOrigin()
    assert liver.GetSpacing() == ct.GetSpacing() == (3.0, 3.0, 3.0)
    assert liver.GetDirection() == ct.GetDirection()
    assert int(_array(liver).sum()) == 38634
    assert np.array_equal(_array(liver), _array(labels) == 5)


def test_reference_geometry_string_ras_matches_slicers_own_file():
    source = slicerio.get_testdata_file("Segmentation.seg.nrrd")
    slicer_value = next(
        p["value"]
        for p in slicerio.read_segmentation(source, skip_voxels=True)["conversionParameters"]
        if p["name"] == "Reference image geometry"
    )
    grid = read_slicer_segmentation(source)[0].mask
    ours = reference_geometry_string_ras(grid)
    np.testing.assert_allclose(
        [float(v) for v in ours.split(";")[:-1]],
        [float(v) for v in slicer_value.split(";")[:-1]],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        ijk_to_lps_matrix(grid)[:3, 3], (193.09599304199222, 216.39599609374994, -340.25)
    )


# --- reading files written by 3D Slicer --------------------------------------------------------


def test_reads_slicer_written_3d_segmentation_with_names_and_colours():
    segments = read_slicer_segmentation(slicerio.get_testdata_file("Segmentation.seg.nrrd"))
    assert [s.name for s in segments] == [
        "ribs",
        "cervical vertebral column",
        "thoracic vertebral column",
        "lumbar vertebral column",
        "right lung",
        "left lung",
        "tissue",
    ]
    assert [s.label_value for s in segments] == [1, 2, 3, 4, 5, 6, 7]
    assert segments[0].colour_rgb == (0.992157, 0.909804, 0.619608)
    assert [int(_array(s.mask).sum()) for s in segments[:2]] == [8487, 1216]
    assert "SCT^113197003^Rib" in segments[0].terminology
    assert segments[0].mask.GetSize() == (128, 128, 34)
    assert segments[0].mask.GetSpacing() == pytest.approx((3.04687595367432,) * 2 + (10.0,))
    assert segments[0].mask.GetDirection() == (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def test_reads_slicer_written_layered_segmentation_and_writes_it_back(tmp_path):
    source = slicerio.get_testdata_file("SegmentationOverlapping.seg.nrrd")
    segments = read_slicer_segmentation(source)
    assert len(segments) == 8
    sphere = segments[7]
    assert (sphere.name, sphere.label_value) == ("overlapping sphere", 1)
    assert int(_array(sphere.mask).sum()) == 19139
    assert int(_array(segments[6].mask).sum()) == 154589  # "tissue", overlapped by the sphere
    assert (_array(sphere.mask) & _array(segments[6].mask)).any()
    path = write_slicer_segmentation(tmp_path / "again.seg.nrrd", segments)
    assert nrrd.read_header(str(path))["sizes"][0] == 2
    again = read_slicer_segmentation(path)
    for before, after in zip(segments, again, strict=True):
        assert (after.name, after.colour_rgb) == (before.name, before.colour_rgb)
        assert np.array_equal(_array(after.mask), _array(before.mask))


def test_written_file_has_normal_permissions_and_no_temporary_left(phantom, tmp_path):
    labels, names = phantom
    segments = segments_from_label_map(labels, {1: names[1]}, COLOURS)
    path = write_slicer_segmentation(tmp_path / "m.seg.nrrd", segments)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.seg.nrrd"]


# --- TotalSegmentator's NIfTI label-table extension -------------------------------------------


def test_real_totalsegmentator_output_names_parse(totalseg_dir):
    names = read_label_names_from_nifti(totalseg_dir / "example_seg.nii.gz")
    expected = json.loads((totalseg_dir / "labels.json").read_text(encoding="utf-8"))
    assert names == {int(k): v for k, v in expected.items()}
    assert len(names) == 117 and names[5] == "liver"
    table = read_label_table_from_nifti(totalseg_dir / "example_seg.nii.gz")
    # add_label_map_to_nifti colours: a 12-colour cycle indexed by label % 12, divided by 255.
    assert table[1].colour_rgb == (0.0, 1.0, 0.0)
    assert table[6].colour_rgb == (1.0, 128 / 255, 0.0)
    assert read_label_names_from_nifti(totalseg_dir / "example_ct_sm.nii.gz") is None


def _caret_xml(names: dict[int, str]) -> bytes:
    """The label table exactly as TotalSegmentator's add_label_map_to_nifti writes it."""
    colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]]
    body = "".join(
        f'<Label Key="{k}" Red="{colours[k % 4][0] / 255}" Green="{colours[k % 4][1] / 255}" '
        f'Blue="{colours[k % 4][2] / 255}" Alpha="1"><![CDATA[{v}]]></Label>\n'
        for k, v in names.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?> <CaretExtension>  <Date><![CDATA['
        '2013-07-14T05:45:09]]></Date>   <VolumeInformation Index="0">   <LabelTable>\n'
        + body
        + "\n  </LabelTable>  <StudyMetaDataLinkSet>  </StudyMetaDataLinkSet>  <VolumeType>"
        "<![CDATA[Label]]></VolumeType>   </VolumeInformation></CaretExtension>\n              "
    ).encode()


def _with_extension(nii: bytes, ecode: int, content: bytes) -> bytes:
    """A NIfTI-1 file with one header extension (esize padded to 16, as nibabel writes it)."""
    esize = 8 + len(content)
    esize += -esize % 16
    block = struct.pack("<ii", esize, ecode) + content.ljust(esize - 8, b"\x00")
    header = bytearray(nii[:348])
    header[108:112] = struct.pack("<f", 352 + esize)
    old_offset = int(struct.unpack("<f", nii[108:112])[0])
    return bytes(header) + b"\x01\x00\x00\x00" + block + nii[old_offset:]


@pytest.fixture
def tiny_label_nii(tmp_path) -> tuple[bytes, np.ndarray]:
    array = np.zeros((4, 5, 6), dtype=np.uint8)
    array[1:3, 1:4, 1:5] = 1
    array[0, 0, :] = 3
    image = sitk.GetImageFromArray(array)
    sitk.WriteImage(image, str(tmp_path / "plain.nii"))
    return (tmp_path / "plain.nii").read_bytes(), array


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_constructed_totalsegmentator_extension_parses(tiny_label_nii, tmp_path, suffix):
    plain, array = tiny_label_nii
    assert plain[348] == 0 and read_label_names_from_nifti(tmp_path / "plain.nii") is None
    data = _with_extension(plain, 0, _caret_xml({1: "liver", 2: "spleen", 3: "aorta"}))
    path = tmp_path / f"ml{suffix}"
    path.write_bytes(gzip.compress(data) if suffix == ".nii.gz" else data)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), array)
    assert read_label_names_from_nifti(path) == {1: "liver", 2: "spleen", 3: "aorta"}
    assert read_label_table_from_nifti(path)[2].colour_rgb == (0.0, 0.0, 1.0)


def test_other_extensions_are_not_label_tables(tiny_label_nii, tmp_path):
    plain, _ = tiny_label_nii
    comment = tmp_path / "comment.nii"
    comment.write_bytes(_with_extension(plain, 6, b"just a comment"))
    assert read_label_names_from_nifti(comment) is None


@pytest.mark.parametrize("endian", ["<", ">"])
def test_nifti2_header_in_either_byte_order(tmp_path, endian):
    header = bytearray(540)
    header[0:4] = struct.pack(f"{endian}i", 540)
    header[4:12] = b"n+2\x00\r\n\x1a\n"
    xml = _caret_xml({7: "kidney_left"})
    esize = 8 + len(xml) + (-(8 + len(xml)) % 16)
    header[168:176] = struct.pack(f"{endian}q", 544 + esize)
    block = struct.pack(f"{endian}ii", esize, 0) + xml.ljust(esize - 8, b"\x00")
    nifti2 = tmp_path / "two.nii"
    nifti2.write_bytes(bytes(header) + b"\x01\x00\x00\x00" + block)
    assert read_label_names_from_nifti(nifti2) == {7: "kidney_left"}


# --- bad input: one-line errors naming the file ------------------------------------------------


def test_no_segments_to_write(tmp_path):
    path = tmp_path / "empty.seg.nrrd"
    with pytest.raises(SlicerSegmentationError, match="no segments to write") as error:
        write_slicer_segmentation(path, [])
    _one_line_naming(error, path)
    assert not path.exists()


def test_masks_on_different_grids(phantom, tmp_path):
    labels, _ = phantom
    liver = sitk.Cast(labels == 1, sitk.sitkUInt8)
    shifted = sitk.Image(liver)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    path = tmp_path / "grids.seg.nrrd"
    segments = [Segment("liver", liver, GREY, 1), Segment("moved", shifted, GREY, 2)]
    with pytest.raises(SlicerSegmentationError, match="'moved' is on another grid") as error:
        write_slicer_segmentation(path, segments)
    _one_line_naming(error, path)
    with pytest.raises(SlicerSegmentationError, match="'liver' is on another grid"):
        write_slicer_segmentation(path, segments[:1], reference=shifted)
    assert not path.exists()


def test_non_binary_mask_and_repeated_names(phantom, tmp_path):
    labels, _ = phantom
    path = tmp_path / "bad.seg.nrrd"
    with pytest.raises(SlicerSegmentationError, match=r"'all' is not binary .*expected 0 and 1"):
        write_slicer_segmentation(path, [Segment("all", labels, GREY, 1)])
    mask = sitk.Cast(labels == 1, sitk.sitkUInt8)
    with pytest.raises(SlicerSegmentationError, match=r"\['liver'\] are repeated") as error:
        write_slicer_segmentation(
            path, [Segment("liver", mask, GREY), Segment("liver", mask, GREY)]
        )
    _one_line_naming(error, path)


@pytest.mark.parametrize(
    ("field", "kwargs", "match"),
    [
        ("colour", {"colour_rgb": (1.2, 0.0, 0.0)}, "colour_rgb .* 3 values in 0..1"),
        ("label", {"label_value": 0}, "label_value 0 must be an integer in 1..65535"),
        ("term", {"terminology": "SCT^10200004^Liver"}, "seven '~'-separated parts"),
        ("name", {"name": "two\nlines"}, "one non-empty line"),
    ],
)
def test_segment_fields_are_checked(phantom, field, kwargs, match):
    mask = sitk.Cast(phantom[0] == 1, sitk.sitkUInt8)
    fields = {"name": "liver", "mask": mask, "colour_rgb": GREY, "label_value": 1} | kwargs
    with pytest.raises(SlicerSegmentationError, match=match):
        Segment(**fields)


def test_file_with_no_segments(tmp_path):
    path = tmp_path / "plain.seg.nrrd"
    _nrrd_write(path, np.zeros((3, 4, 5), dtype=np.uint8), {"space": "left-posterior-superior"})
    with pytest.raises(SlicerSegmentationError, match="holds no segments") as error:
        read_slicer_segmentation(path)
    _one_line_naming(error, path)


def _rewrite_header(source: str, path: Path, **fields: str) -> Path:
    voxels, header = nrrd.read(source)
    header.update(fields)
    _nrrd_write(path, voxels, header)
    return path


def test_segments_pointing_at_a_missing_or_shared_layer(tmp_path):
    source = slicerio.get_testdata_file("SegmentationOverlapping.seg.nrrd")
    missing = _rewrite_header(source, tmp_path / "layer.seg.nrrd", Segment7_Layer="5")
    with pytest.raises(SlicerSegmentationError, match="in layer 5, but the file has 2") as error:
        read_slicer_segmentation(missing)
    _one_line_naming(error, missing)
    shared = _rewrite_header(source, tmp_path / "shared.seg.nrrd", Segment7_Layer="0")
    with pytest.raises(SlicerSegmentationError, match="'ribs' and 'overlapping sphere' both"):
        read_slicer_segmentation(shared)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "bad_gzip", "not_there"])
def test_corrupt_or_missing_files(tmp_path, damage):
    good = Path(slicerio.get_testdata_file("Segmentation.seg.nrrd")).read_bytes()
    half = len(good) // 2
    contents = {
        "truncated": good[:half],
        "garbage": b"not a nrrd file\n" * 8,
        "bad_gzip": good[:half] + bytes(500) + good[half + 500 :],
    }
    path = tmp_path / f"{damage}.seg.nrrd"
    if damage in contents:
        path.write_bytes(contents[damage])
    with pytest.raises(SlicerSegmentationError) as error:
        read_slicer_segmentation(path)
    _one_line_naming(error, path)
    assert isinstance(error.value, ImagingError)


def test_nifti_given_as_segmentation(totalseg_dir):
    path = totalseg_dir / "example_seg.nii.gz"
    with pytest.raises(SlicerSegmentationError, match="is a NIfTI file") as error:
        read_slicer_segmentation(path)
    _one_line_naming(error, path)


def test_broken_nifti_headers(tiny_label_nii, tmp_path):
    plain, _ = tiny_label_nii
    cases = {
        "short.nii": plain[:200],
        "notnifti.nii": b"\x00" * 400,
        "cut.nii": _with_extension(plain, 0, _caret_xml({1: "liver"}))[:400],
        "badxml.nii": _with_extension(plain, 0, b"<CaretExtension><Label Key='1'>"),
        "badkey.nii": _with_extension(plain, 0, _caret_xml({1: "liver"}).replace(b'"1"', b'"x"')),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(NiftiLabelTableError) as error:
            read_label_names_from_nifti(path)
        _one_line_naming(error, path)


# --- recognising Slicer files, cropped grids, structure names ----------------------------------


def test_slicer_segmentation_recognised_by_name_or_header(phantom, tmp_path):
    labels, _ = phantom
    assert is_slicer_segmentation(tmp_path / "not-yet-written.seg.nrrd")
    plain = tmp_path / "layered.nrrd"
    plain.write_bytes(
        Path(slicerio.get_testdata_file("SegmentationOverlapping.seg.nrrd")).read_bytes()
    )
    assert is_slicer_segmentation(plain)
    label_map = tmp_path / "labels.nrrd"
    sitk.WriteImage(labels, str(label_map))
    assert not is_slicer_segmentation(label_map)
    (tmp_path / "junk.nrrd").write_bytes(b"not a nrrd")
    assert not is_slicer_segmentation(tmp_path / "junk.nrrd")
    assert not is_slicer_segmentation(tmp_path / "x.nii.gz")


def test_layered_file_read_as_a_label_map_is_one_line_error(tmp_path):
    plain = tmp_path / "layered.nrrd"
    plain.write_bytes(
        Path(slicerio.get_testdata_file("SegmentationOverlapping.seg.nrrd")).read_bytes()
    )
    with pytest.raises(ImagingError, match="2 value.s. per voxel") as error:
        read_label_image(plain)
    _one_line_naming(error, plain)


def test_cropped_mask_is_padded_onto_the_scan_grid(phantom):
    labels, _ = phantom
    tumour = sitk.Cast(labels == 2, sitk.sitkUInt8)
    cropped = sitk.RegionOfInterest(tumour, [32, 34, 30], [28, 78, 50])  # size, index
    assert cropped.GetOrigin() == (-150.0 + 28 * 1.5, -126.0 + 78 * 1.5, -900.0 + 50 * 2.0)
    padded = mask_on_grid(cropped, labels, "cropped.seg.nrrd")
    assert padded.GetSize() == labels.GetSize() and padded.GetOrigin() == labels.GetOrigin()
    np.testing.assert_array_equal(_array(padded), _array(tumour))
    assert int(_array(padded).sum()) == 6187
    assert mask_on_grid(tumour, labels, "same") is tumour
    off = sitk.Image(cropped)
    off.SetOrigin(tuple(o + 0.75 for o in cropped.GetOrigin()))  # half a voxel off the lattice
    with pytest.raises(ImagingError, match="off.seg.nrrd is not on the scan's grid"):
        mask_on_grid(off, labels, "off.seg.nrrd")
    outside = sitk.Image(cropped)
    outside.SetOrigin((-150.0 - 1.5, -126.0, -900.0))  # starts one voxel before the scan
    with pytest.raises(ImagingError, match="not on the scan's grid"):
        mask_on_grid(outside, labels, "outside")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("liver", "liver"),
        ("vertebrae_L2", "vertebrae_L2"),
        ("right lung", "right_lung"),
        ("Left Kidney (cyst)", "left_kidney_cyst"),
        ("  .hidden / part  ", "hidden_part"),
    ],
)
def test_structure_names_from_label_names(text, name):
    assert structure_name_from_label(text) == name
    assert validate_structure_name(name) == name


def test_unusable_label_name():
    with pytest.raises(ImagingError, match="gives no usable structure name"):
        structure_name_from_label(" ()/ ")
