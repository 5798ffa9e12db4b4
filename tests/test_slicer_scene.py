"""The 3D Slicer scene (.mrb / .mrml): parsed as MRML XML, every referenced file read back."""

from __future__ import annotations

import json
import os
import warnings
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv
import SimpleITK as sitk
import slicerio

from imaging.mesh_io import write_surface
from registration.io import read_itk_transform, write_itk_transform, write_slicer_markups
from surgplan.sample_data import ensure_sample_data
from surgplan.slicer_scene import SceneExportError, write_slicer_scene

#: data node tag -> (its storage node tag, its display node tag or None)
EXPECTED = {
    "Volume": ("VolumeArchetypeStorage", "VolumeDisplay"),
    "Segmentation": ("SegmentationStorage", "SegmentationDisplay"),
    "Model": ("ModelStorage", "ModelDisplay"),
    "MarkupsFiducial": ("MarkupsJsonStorage", "MarkupsDisplay"),
    "LinearTransform": ("TransformStorage", None),
}
LIVER_RGB = (1.0, 0.666, 0.5)
BALL_RGB = (0.2, 0.4, 0.9)
T_MODEL_TRACKER = np.array(
    [[0.0, -1.0, 0.0, 12.5], [1.0, 0.0, 0.0, -3.0], [0.0, 0.0, 1.0, 40.0], [0.0, 0.0, 0.0, 1.0]]
)
POINTS = np.array([[1.0, 2.0, 3.0], [-10.0, 5.5, 80.0], [0.25, -7.0, 12.0]])


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_seg_nrrd(label_path: Path, names: dict[int, str], out: Path) -> None:
    """A real Slicer .seg.nrrd (slicerio) from the phantom's label map and names."""
    image = sitk.ReadImage(str(label_path))
    labels = sitk.GetArrayFromImage(image).transpose(2, 1, 0)  # (k, j, i) -> (i, j, k)
    ijk_to_lps = np.eye(4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    ijk_to_lps[:3, :3] = direction * np.array(image.GetSpacing())
    ijk_to_lps[:3, 3] = image.GetOrigin()
    seg = slicerio.create_segmentation(labels.shape, ijk_to_lps)
    for value, name in names.items():
        slicerio.add_segment(seg, labels == value, {"id": name, "name": name})
    with warnings.catch_warnings():  # pynrrd 1.x calls datetime.utcnow() (deprecated in 3.12)
        warnings.filterwarnings("ignore", "datetime.datetime.utcnow", DeprecationWarning)
        slicerio.write_segmentation(str(out), seg)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, liver_models_dir) -> dict:
    sample = ensure_sample_data()
    folder = tmp_path_factory.mktemp("inputs")
    seg = folder / "labels.seg.nrrd"
    _write_seg_nrrd(sample.folder / "phantom_labels.nrrd", {1: "liver", 2: "tumour"}, seg)
    ball = pv.Sphere(radius=20.0, center=(10.0, -40.0, 25.0))
    write_surface(ball, folder / "ball.vtp")
    write_slicer_markups(folder / "swabs.mrk.json", POINTS, name="swabs")
    write_itk_transform(folder / "T_model_tracker.tfm", T_MODEL_TRACKER)
    return {
        "scan_path": sample.folder / "phantom_ct.nii.gz",
        "segmentation_path": seg,
        "models": {
            "liver": (liver_models_dir / "liver.vtk", LIVER_RGB, 1.0),
            "ball": (folder / "ball.vtp", BALL_RGB, 0.35),
        },
        "markups": {"swabs": folder / "swabs.mrk.json"},
        "transforms": {"T_model_tracker": folder / "T_model_tracker.tfm"},
        "markups_parent": {"swabs": "T_model_tracker"},
    }


def _check_scene(root: ET.Element, exists) -> dict[str, ET.Element]:
    """Check MRML structure; return data nodes by name. ``exists(file)`` says if a file is there."""
    assert root.tag == "MRML" and root.get("version") == "Slicer4.4.0"
    by_id = {e.get("id"): e for e in root}
    assert len(by_id) == len(root), "node IDs must be unique"
    data = {}
    for element in root:
        if element.tag not in EXPECTED:
            continue
        storage_tag, display_tag = EXPECTED[element.tag]
        storage = by_id[element.get("storageNodeRef")]
        assert storage.tag == storage_tag
        assert f"storage:{storage.get('id')};" in element.get("references")
        assert exists(storage.get("fileName")), storage.get("fileName")
        if display_tag is not None:
            display = by_id[element.get("displayNodeRef")]
            assert display.tag == display_tag
            assert f"display:{display.get('id')};" in element.get("references")
        data[element.get("name")] = element
    return data


def _storage(root: ET.Element, node: ET.Element) -> ET.Element:
    return next(e for e in root if e.get("id") == node.get("storageNodeRef"))


def _display(root: ET.Element, node: ET.Element) -> ET.Element:
    return next(e for e in root if e.get("id") == node.get("displayNodeRef"))


def _check_files_read_back(root: ET.Element, data: dict, base: Path, inputs: dict) -> None:
    """Every referenced file, read from ``base`` (the .mrml's folder), equals its source."""
    scan = sitk.ReadImage(str(base / _storage(root, data["scan"]).get("fileName")))
    source = sitk.ReadImage(str(inputs["scan_path"]))
    assert np.array_equal(sitk.GetArrayViewFromImage(scan), sitk.GetArrayViewFromImage(source))
    assert scan.GetOrigin() == source.GetOrigin() and scan.GetSpacing() == source.GetSpacing()

    seg = slicerio.read_segmentation(
        str(base / _storage(root, data["segmentation"]).get("fileName"))
    )
    assert [s["name"] for s in seg["segments"]] == ["liver", "tumour"]

    for name, (path, _, _) in inputs["models"].items():
        back = pv.read(base / _storage(root, data[name]).get("fileName"))
        assert np.array_equal(back.points, pv.read(path).points)

    doc = json.loads((base / _storage(root, data["swabs"]).get("fileName")).read_text())
    positions = [p["position"] for p in doc["markups"][0]["controlPoints"]]
    assert np.allclose(positions, POINTS, atol=0, rtol=0)

    tfm = base / _storage(root, data["T_model_tracker"]).get("fileName")
    assert np.allclose(read_itk_transform(tfm), T_MODEL_TRACKER, atol=1e-12)


def _check_display_and_hierarchy(root: ET.Element, data: dict, inputs: dict) -> None:
    for name, (_, rgb, opacity) in inputs["models"].items():
        display = _display(root, data[name])
        assert tuple(float(v) for v in display.get("color").split()) == rgb
        assert float(display.get("opacity")) == opacity
        assert _storage(root, data[name]).get("coordinateSystem") == "LPS"
    transform = data["T_model_tracker"]
    assert transform.tag == "LinearTransform"
    swabs = data["swabs"]
    assert swabs.get("transformNodeRef") == transform.get("id")
    assert f"transform:{transform.get('id')};" in swabs.get("references")
    for other in ("scan", "segmentation", "liver", "ball", "T_model_tracker"):
        assert data[other].get("transformNodeRef") is None
    views = {
        e.get("singletonTag"): e.get("backgroundVolumeID") for e in root.iter("SliceComposite")
    }
    assert views == dict.fromkeys(("Red", "Yellow", "Green"), data["scan"].get("id"))


def test_mrb_bundle_holds_every_node_with_its_readable_file(tmp_path, inputs):
    out = tmp_path / "case.mrb"
    result = write_slicer_scene(out, **inputs)
    assert result.kind == "mrb" and result.scene_file == "case/case.mrml"

    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert [n for n in names if n.endswith(".mrml")] == ["case/case.mrml"]
        assert all(n.startswith(("case/Data/", "case/case.mrml")) for n in names)
        assert {(i.external_attr >> 16) & 0o777 for i in zf.infolist()} == {0o644}
        root = ET.fromstring(zf.read("case/case.mrml"))
        data = _check_scene(root, lambda file: f"case/{file}" in names)
        zf.extractall(tmp_path / "unpacked")
    assert sorted(data) == ["T_model_tracker", "ball", "liver", "scan", "segmentation", "swabs"]
    assert len(names) == 1 + 6
    _check_files_read_back(root, data, tmp_path / "unpacked" / "case", inputs)
    _check_display_and_hierarchy(root, data, inputs)
    assert [n.name for n in result.nodes] == [
        "T_model_tracker",
        "scan",
        "segmentation",
        "liver",
        "ball",
        "swabs",
    ]
    assert result.to_dict()["nodes"][-1]["parent_transform"] == "T_model_tracker"


def test_mrml_beside_its_data_folder_with_relative_paths(tmp_path, inputs):
    out = tmp_path / "scene.mrml"
    result = write_slicer_scene(out, **inputs)
    assert result.data_folder == "scene_data"
    root = ET.parse(out).getroot()
    files = [e.get("fileName") for e in root if e.get("fileName")]
    assert len(files) == 6 and all(f.startswith("scene_data/") for f in files)
    assert not any(Path(f).is_absolute() for f in files)
    data = _check_scene(root, lambda file: (tmp_path / file).is_file())
    _check_files_read_back(root, data, tmp_path, inputs)
    _check_display_and_hierarchy(root, data, inputs)
    expected_mode = 0o666 & ~_umask()
    for path in [out, *(tmp_path / f for f in files)]:
        assert path.stat().st_mode & 0o777 == expected_mode, path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.mrml", "scene_data"]


def test_rewriting_a_mrml_replaces_its_data_folder(tmp_path, inputs):
    out = tmp_path / "scene.mrml"
    write_slicer_scene(out, **inputs)
    write_slicer_scene(out, scan_path=inputs["scan_path"])
    assert sorted(p.name for p in (tmp_path / "scene_data").iterdir()) == ["scan.nii.gz"]
    assert [e.tag for e in ET.parse(out).getroot() if e.get("fileName")] == [
        "VolumeArchetypeStorage"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.mrml", "scene_data"]


def test_node_names_become_distinct_portable_file_names(tmp_path, inputs):
    liver = inputs["models"]["liver"]
    models = {"Liver left": liver, "liver/left": liver, "liver left": liver}
    result = write_slicer_scene(tmp_path / "s.mrb", models=models)
    assert [n.file for n in result.nodes] == [
        "Data/Liver_left.vtk",
        "Data/liver_left_2.vtk",
        "Data/liver_left_3.vtk",
    ]
    assert [n.name for n in result.nodes] == list(models)


def _ball(inputs: dict) -> Path:
    return inputs["models"]["ball"][0]


BAD_REQUESTS = {
    "suffix": (lambda i: ("case.zip", i), r"must end in \.mrb or \.mrml, got '\.zip'"),
    "folder": (lambda i: ("missing/case.mrb", i), r"folder .*missing does not exist"),
    "scan": (
        lambda i: ("case.mrb", {**i, "scan_path": "nowhere.nii.gz"}),
        r"scan: file nowhere\.nii\.gz does not exist",
    ),
    "transform format": (
        lambda i: ("case.mrb", {"transforms": {"T": i["markups"]["swabs"]}}),
        r"transform T: .*swabs\.mrk\.json is not one of \.tfm, \.txt, \.h5",
    ),
    "colour": (
        lambda i: ("case.mrb", {"models": {"m": (_ball(i), (1.0, 2.0, 0.0), 1.0)}}),
        r"model 'm': colour must be 3 values in 0\.\.1, got \(1\.0, 2\.0, 0\.0\)",
    ),
    "opacity": (
        lambda i: ("case.mrb", {"models": {"m": (_ball(i), (1.0, 0.0, 0.0), 1.5)}}),
        r"model 'm': opacity must be in 0\.\.1, got 1\.5",
    ),
    "model spec": (
        lambda i: ("case.mrb", {"models": {"m": (_ball(i), (1.0, 0.0))}}),
        r"model 'm': expected \(file, \(r, g, b\), opacity\)",
    ),
    "unknown transform": (
        lambda i: ("case.mrb", {**i, "markups_parent": {"swabs": "T_tracker"}}),
        r"markups 'swabs' is to go under transform 'T_tracker', which is not among",
    ),
    "unknown markups": (
        lambda i: ("case.mrb", {**i, "markups_parent": {"other": "T_model_tracker"}}),
        r"markups_parent names markups 'other', which is not among the markups \['swabs'\]",
    ),
    "empty": (lambda i: ("case.mrb", {}), r"a scene needs at least one file"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_are_one_line_errors_and_write_nothing(tmp_path, inputs, case):
    make, match = BAD_REQUESTS[case]
    name, kwargs = make(inputs)
    with pytest.raises(SceneExportError, match=match) as info:
        write_slicer_scene(tmp_path / name, **kwargs)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_folder_in_the_way_is_left_alone(tmp_path, inputs):
    (tmp_path / "scene_data").mkdir()
    (tmp_path / "scene_data" / "mine.txt").write_text("not an export")
    with pytest.raises(SceneExportError, match=r"scene_data exists and is not the data folder"):
        write_slicer_scene(tmp_path / "scene.mrml", scan_path=inputs["scan_path"])
    assert (tmp_path / "scene_data" / "mine.txt").read_text() == "not an export"
    assert not (tmp_path / "scene.mrml").exists()
