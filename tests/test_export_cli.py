"""``surgplan export CASE --scene/--gltf/--dicom/--dicom-seg/--rtstruct``: every export read back.

One real case is built from the bundled phantom (scan; liver and tumour imported from its label
map, bone thresholded, spleen grown from a seed; surfaces and the FE mesh at 10 mm) and shared
by the module. Each whole-case export goes through the CLI and is read back by an independent
reader: the ``.mrb``/``.mrml`` parsed as MRML XML with every referenced file present and read;
the ``.glb`` by pygltflib, its vertices decoded and compared, in metres, with the case's LPS mm
surfaces; the DICOM series by SimpleITK with the scan's voxels; the SEG by highdicom with the
label maps' voxels; the RTSTRUCT by pydicom with one ROI per structure. Bad requests end in one
line on stderr, exit code 2, and the case byte for byte as it was.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pygltflib
import pytest
import pyvista as pv
import SimpleITK as sitk
import slicerio
from click.testing import CliRunner

from registration.io import read_itk_transform, write_itk_transform, write_slicer_markups
from surgplan.case import Case
from surgplan.cli import cli
from surgplan.dicom_case_export import algorithm_type
from surgplan.dicom_identity import PLACEHOLDER_PATIENT_NAME
from surgplan.meshing import build_meshes
from surgplan.render import STYLE
from surgplan.sample_data import ensure_sample_data
from surgplan.scan_import import import_scan
from surgplan.segment import import_label_map, segment_structure

STRUCTURES = ["liver", "tumour", "bone", "spleen"]
#: How each structure of the shared case was made -> its DICOM Segment Algorithm Type.
ALGORITHMS = {"liver": "MANUAL", "tumour": "MANUAL", "bone": "AUTOMATIC", "spleen": "SEMIAUTOMATIC"}
T_MODEL_TRACKER = np.array(
    [[0.0, -1.0, 0.0, 12.5], [1.0, 0.0, 0.0, -3.0], [0.0, 0.0, 1.0, 40.0], [0.0, 0.0, 0.0, 1.0]]
)
SWABS = np.array([[-60.0, -10.0, -830.0], [-70.0, 5.0, -800.0], [-50.0, 0.0, -780.0]])


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: object) -> dict[str, Any]:
    code, out, err = run(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``case``: the phantom case with surfaces; ``bare``: the same before meshing."""
    sample = ensure_sample_data()
    root = tmp_path_factory.mktemp("export_cli")
    case = root / "case"
    import_scan(sample.folder / "phantom_ct.nii.gz", case)
    import_label_map(
        case,
        sample.folder / "phantom_labels.nrrd",
        sample.folder / "phantom_labels.json",
        structures=["liver", "tumour"],
    )
    segment_structure(case, "bone", [])
    segment_structure(case, "spleen", [sample.meta["seeds_lps_mm"]["spleen"]])
    shutil.copytree(case, root / "bare")
    build_meshes(case, edge_mm=10)
    assert list(Case.open(case).manifest.surfaces) == sorted(STRUCTURES)
    return {"case": case, "bare": root / "bare"}


@pytest.fixture()
def case_copy(cases: dict[str, Path], tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.copytree(cases["case"], target)
    return target


def _expected_style(case: Path, name: str) -> tuple[tuple[float, ...], float]:
    manifest = Case.open(case).manifest
    assert manifest.segmentation is not None
    return tuple(manifest.segmentation.segments[name].colour_rgb), STYLE[name][1]


# --- 3D Slicer scene ------------------------------------------------------------------------


def _scene_nodes(root: ET.Element, exists) -> dict[str, tuple[ET.Element, ET.Element]]:
    """Data nodes by name -> (node, its storage node); every storage file must exist."""
    assert root.tag == "MRML"
    by_id = {e.get("id"): e for e in root}
    assert len(by_id) == len(root)
    nodes = {}
    for element in root:
        if element.get("storageNodeRef") is None:
            continue
        storage = by_id[element.get("storageNodeRef")]
        assert exists(storage.get("fileName")), storage.get("fileName")
        nodes[element.get("name")] = (element, storage)
    return nodes


def _check_case_files(nodes: dict, base: Path, case: Path, structures: list[str]) -> None:
    """The scene's scan, segmentation and models (read from ``base``) are the case's."""
    scan = nodes["scan"][1].get("fileName")
    assert np.array_equal(_array(base / scan), _array(case / "images" / "scan.nrrd"))
    seg_file = base / nodes["segmentation"][1].get("fileName")
    seg = slicerio.read_segmentation(str(seg_file))
    assert [s["name"] for s in seg["segments"]] == structures
    for name in structures:
        back = pv.read(base / nodes[name][1].get("fileName"))
        assert np.array_equal(back.points, pv.read(case / "meshes" / f"{name}.vtp").points)
        labels = slicerio.extract_segments(seg, [(name, 1)])["voxels"]
        assert int(labels.sum()) == int(_array(case / "labels" / f"{name}.nrrd").sum()) > 1000


def test_scene_mrb_holds_the_case_and_leaves_it_unchanged(cases, tmp_path: Path) -> None:
    case = cases["case"]
    before = snapshot(case)
    report = run_json("export", case, "--scene", tmp_path / "plan.mrb")
    assert snapshot(case) == before
    assert (report["action"], report["kind"], report["format"]) == ("export", "scene", "mrb")
    assert report["output"] == str(tmp_path / "plan.mrb") and report["time_s"] > 0
    assert report["n_nodes"] == 2 + len(STRUCTURES) == len(report["nodes"])
    assert report["structures"] == STRUCTURES and sorted(report["models"]) == sorted(STRUCTURES)
    with zipfile.ZipFile(tmp_path / "plan.mrb") as zf:
        names = zf.namelist()
        root = ET.fromstring(zf.read("plan/plan.mrml"))
        nodes = _scene_nodes(root, lambda file: f"plan/{file}" in names)
        zf.extractall(tmp_path / "unpacked")
    assert sorted(nodes) == sorted(["scan", "segmentation", *STRUCTURES])
    assert len(names) == 1 + len(nodes)  # the .mrml and one file per node, nothing else
    assert not any(e.tag in ("MarkupsFiducial", "LinearTransform") for e in root)
    _check_case_files(nodes, tmp_path / "unpacked" / "plan", case, STRUCTURES)
    by_id = {e.get("id"): e for e in root}
    for name in STRUCTURES:
        display = by_id[nodes[name][0].get("displayNodeRef")]
        colour, opacity = _expected_style(case, name)
        assert tuple(float(v) for v in display.get("color").split()) == pytest.approx(colour)
        assert float(display.get("opacity")) == opacity
    assert float(by_id[nodes["liver"][0].get("displayNodeRef")].get("opacity")) == 0.35


def test_scene_mrml_with_registration_outputs_under_their_transform(
    case_copy: Path, tmp_path: Path
) -> None:
    case = Case.open(case_copy)
    with case.transaction() as tx:
        write_slicer_markups(tx.path("registration/swabs.mrk.json"), SWABS, name="swabs")
        write_itk_transform(tx.path("registration/T_model_tracker.tfm"), T_MODEL_TRACKER)
        tx.record_artifact(
            "markups",
            "swabs",
            "registration/swabs.mrk.json",
            {"parent_transform": "T_model_tracker"},
        )
        tx.record_artifact("transform", "T_model_tracker", "registration/T_model_tracker.tfm", {})
    out = tmp_path / "out" / "plan.mrml"
    out.parent.mkdir()
    report = run_json(
        "export", case_copy, "--scene", out, "--structure", "tumour", "--structure", "liver"
    )
    assert report["format"] == "mrml" and report["structures"] == ["tumour", "liver"]
    assert report["n_nodes"] == 2 + 2 + 2
    root = ET.parse(out).getroot()
    nodes = _scene_nodes(root, lambda file: (out.parent / file).is_file())
    assert sorted(nodes) == sorted(
        ["scan", "segmentation", "tumour", "liver", "swabs", "T_model_tracker"]
    )
    assert sorted(p.name for p in out.parent.iterdir()) == ["plan.mrml", "plan_data"]
    _check_case_files(nodes, out.parent, case_copy, ["tumour", "liver"])
    swabs, swabs_storage = nodes["swabs"]
    transform, transform_storage = nodes["T_model_tracker"]
    assert transform.tag == "LinearTransform" and swabs.tag == "MarkupsFiducial"
    assert swabs.get("transformNodeRef") == transform.get("id")
    assert nodes["liver"][0].get("transformNodeRef") is None
    tfm = out.parent / transform_storage.get("fileName")
    np.testing.assert_allclose(read_itk_transform(tfm), T_MODEL_TRACKER, atol=1e-12)
    markups = json.loads((out.parent / swabs_storage.get("fileName")).read_text())
    positions = [p["position"] for p in markups["markups"][0]["controlPoints"]]
    np.testing.assert_array_equal(positions, SWABS)
    parents = {n["name"]: n["parent_transform"] for n in report["nodes"]}
    assert parents["swabs"] == "T_model_tracker" and parents["liver"] is None


# --- glTF -----------------------------------------------------------------------------------


def _glb_positions(gltf: pygltflib.GLTF2, mesh_index: int) -> np.ndarray:
    """The POSITION vertices of a mesh's first primitive, decoded from the binary chunk."""
    accessor = gltf.accessors[gltf.meshes[mesh_index].primitives[0].attributes.POSITION]
    view = gltf.bufferViews[accessor.bufferView]
    start = view.byteOffset + (accessor.byteOffset or 0)
    data = gltf.binary_blob()[start : start + accessor.count * 12]
    return np.frombuffer(data, dtype="<f4").reshape(-1, 3)


def test_gltf_has_the_surfaces_in_metres_and_their_colours(cases, tmp_path: Path) -> None:
    case = cases["case"]
    before = snapshot(case)
    report = run_json("export", case, "--gltf", tmp_path / "twin.glb")
    assert snapshot(case) == before
    assert (report["kind"], report["output"]) == ("gltf", str(tmp_path / "twin.glb"))
    assert [s["name"] for s in report["structures"]] == sorted(STRUCTURES)
    gltf = pygltflib.GLTF2().load(str(tmp_path / "twin.glb"))
    assert [gltf.meshes[n.mesh].name for n in gltf.nodes] == sorted(STRUCTURES)
    for index, node in enumerate(gltf.nodes):
        lps_mm = pv.read(case / "meshes" / f"{node.name}.vtp").points.astype(float)
        # glTF axes: +X = left (L), +Y = superior (S), +Z = anterior (-P); metres
        expected = np.column_stack([lps_mm[:, 0], lps_mm[:, 2], -lps_mm[:, 1]]) / 1000.0
        accessor = gltf.accessors[gltf.meshes[node.mesh].primitives[0].attributes.POSITION]
        np.testing.assert_allclose(accessor.min, expected.min(axis=0), atol=1e-6)
        np.testing.assert_allclose(accessor.max, expected.max(axis=0), atol=1e-6)
        positions = _glb_positions(gltf, node.mesh)
        np.testing.assert_allclose(positions.min(axis=0), expected.min(axis=0), atol=1e-6)
        np.testing.assert_allclose(positions.max(axis=0), expected.max(axis=0), atol=1e-6)
        assert report["structures"][index]["bounds_min_m"] == pytest.approx(accessor.min)
        material = gltf.materials[gltf.meshes[node.mesh].primitives[0].material]
        _, opacity = _expected_style(case, node.name)
        assert material.pbrMetallicRoughness.baseColorFactor[3] == pytest.approx(opacity)
        assert material.alphaMode == ("BLEND" if opacity < 1 else "OPAQUE")
    # the phantom's tumour: a 19 mm ball centred at LPS (-85, 15, -770) mm
    tumour = report["structures"][sorted(STRUCTURES).index("tumour")]
    centre = (np.array(tumour["bounds_min_m"]) + tumour["bounds_max_m"]) / 2
    np.testing.assert_allclose(centre, [-0.085, -0.770, -0.015], atol=0.002)
    size = np.subtract(tumour["bounds_max_m"], tumour["bounds_min_m"])
    np.testing.assert_allclose(size, 0.038, atol=0.004)


# --- DICOM ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dicom(cases, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """On a copy of the case: SEG first (UIDs generated), then the series, RTSTRUCT, SEG again."""
    root = tmp_path_factory.mktemp("dicom_exports")
    case = root / "case"
    shutil.copytree(cases["case"], case)
    assert Case.open(case).manifest.dicom_uids is None
    out: dict[str, Any] = {"case": case, "root": root}
    out["seg"] = run_json("export", case, "--dicom-seg", root / "seg.dcm")
    out["uids_after_seg"] = Case.open(case).manifest.dicom_uids
    before = snapshot(case)
    out["series"] = run_json("export", case, "--dicom", root / "ct")
    out["rtstruct"] = run_json("export", case, "--rtstruct", root / "rt.dcm")
    out["seg_again"] = run_json("export", case, "--dicom-seg", root / "seg2.dcm")
    out["series_again"] = run_json("export", case, "--dicom", root / "ct")  # replaces its own
    out["unchanged_by_later_exports"] = snapshot(case) == before
    out["uids_after_all"] = Case.open(case).manifest.dicom_uids
    return out


def _series_files(folder: Path) -> list[Path]:
    reader = sitk.ImageSeriesReader()
    return [Path(p) for p in reader.GetGDCMSeriesFileNames(str(folder))]


def test_dicom_series_reads_back_with_the_scans_voxels(dicom) -> None:
    report = dicom["series"]
    assert (report["kind"], report["output"]) == ("dicom", str(dicom["root"] / "ct"))
    assert report["n_files"] == 90 and report["uids_recorded"] is False
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in _series_files(dicom["root"] / "ct")])
    back = reader.Execute()
    scan = sitk.ReadImage(str(dicom["case"] / "images" / "scan.nrrd"))
    assert back.GetSize() == scan.GetSize() == (200, 168, 90)
    np.testing.assert_allclose(back.GetOrigin(), scan.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(back.GetSpacing(), scan.GetSpacing(), atol=1e-9)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(scan))
    first = pydicom.dcmread(_series_files(dicom["root"] / "ct")[0])
    uids = dicom["uids_after_all"]
    assert (first.SeriesInstanceUID, first.StudyInstanceUID) == (uids.series, uids.study)
    assert (
        report["series_uid"] == uids.series and first.FrameOfReferenceUID == uids.frame_of_reference
    )
    assert (
        str(first.PatientName) == PLACEHOLDER_PATIENT_NAME and first.PatientIdentityRemoved == "YES"
    )


def test_uids_are_generated_once_recorded_and_reused(dicom) -> None:
    uids = dicom["uids_after_seg"]
    assert uids is not None and dicom["uids_after_all"] == uids
    assert dicom["seg"]["uids_recorded"] is True
    for key in ("series", "rtstruct", "seg_again", "series_again"):
        assert dicom[key]["uids_recorded"] is False, key
        assert dicom[key]["study_uid"] == uids.study, key
        assert dicom[key].get("referenced_series_uid", uids.series) == uids.series, key
    assert dicom["seg"]["series_uid"] == dicom["seg_again"]["series_uid"] == uids.seg_series
    assert dicom["series"]["series_uid"] == dicom["series_again"]["series_uid"] == uids.series
    assert dicom["rtstruct"]["series_uid"] == uids.rtstruct_series
    assert dicom["seg"]["referenced_series_uid"] == uids.series
    assert "referenced_series_uid" not in dicom["series"]
    assert dicom["unchanged_by_later_exports"]  # later exports do not touch the case
    data = json.loads((dicom["case"] / "case.json").read_text())
    assert data["dicom_uids"] == uids.model_dump() and data["schema_version"] == 3
    seg1 = pydicom.dcmread(dicom["root"] / "seg.dcm")
    seg2 = pydicom.dcmread(dicom["root"] / "seg2.dcm")
    assert seg1.SOPInstanceUID == seg2.SOPInstanceUID and seg1.StudyInstanceUID == uids.study


def test_seg_has_the_label_voxels_and_references_the_written_series(dicom) -> None:
    report = dicom["seg"]
    assert report["kind"] == "dicom-seg"
    assert [(s["name"], s["number"]) for s in report["segments"]] == [
        (name, i + 1) for i, name in enumerate(STRUCTURES)
    ]
    assert {s["name"]: s["algorithm_type"] for s in report["segments"]} == ALGORITHMS
    seg = hd.seg.segread(dicom["root"] / "seg.dcm")
    files = _series_files(dicom["root"] / "ct")  # written after the SEG, same derived UIDs
    source_uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files]
    (series,) = seg.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == dicom["uids_after_all"].series
    assert {i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence} == set(
        source_uids
    )
    numbers = list(range(1, len(STRUCTURES) + 1))
    pixels = seg.get_pixels_by_source_instance(source_uids, segment_numbers=numbers)
    for i, name in enumerate(STRUCTURES):
        description = seg.get_segment_description(i + 1)
        assert description.segment_label == name
        assert description.algorithm_type.value == ALGORITHMS[name]
        expected = _array(dicom["case"] / "labels" / f"{name}.nrrd")
        assert expected.sum() > 1000
        np.testing.assert_array_equal(pixels[..., i], expected)
    assert seg.get_segment_description(1).segmented_property_type.value == "10200004"  # liver


def test_rtstruct_has_one_roi_per_structure(dicom, tmp_path: Path) -> None:
    report = dicom["rtstruct"]
    assert [r["name"] for r in report["rois"]] == STRUCTURES
    assert all(r["contours"] > 0 for r in report["rois"])
    ds = pydicom.dcmread(dicom["root"] / "rt.dcm")
    assert ds.Modality == "RTSTRUCT"
    assert [r.ROIName for r in ds.StructureSetROISequence] == STRUCTURES
    assert len(ds.ROIContourSequence) == len(STRUCTURES)
    for roi, item in zip(report["rois"], ds.ROIContourSequence, strict=True):
        assert item.ReferencedROINumber == roi["number"]
        assert len(item.ContourSequence) == roi["contours"]
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == dicom["uids_after_all"].frame_of_reference
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == dicom["uids_after_all"].series
    assert str(ds.PatientName) == PLACEHOLDER_PATIENT_NAME
    # restricted by --structure: one ROI
    case = dicom["case"]
    one = run_json("export", case, "--rtstruct", tmp_path / "t.dcm", "--structure", "tumour")
    assert [r["name"] for r in one["rois"]] == ["tumour"]
    assert [r.ROIName for r in pydicom.dcmread(tmp_path / "t.dcm").StructureSetROISequence] == [
        "tumour"
    ]


def test_algorithm_type_follows_the_method() -> None:
    assert {m: algorithm_type(m) for m in ("organ", "tumour", "vessels", "bone", "air")} == {
        "organ": "SEMIAUTOMATIC",
        "tumour": "SEMIAUTOMATIC",
        "vessels": "SEMIAUTOMATIC",
        "bone": "AUTOMATIC",
        "air": "AUTOMATIC",
    }
    assert algorithm_type("imported") == "MANUAL"


# --- label / mesh keep working; bad requests --------------------------------------------------


def test_label_and_mesh_exports_keep_their_contract(cases, tmp_path: Path) -> None:
    case = cases["case"]
    report = run_json("export", case, "--structure", "tumour", "--label", tmp_path / "t.nii.gz")
    assert set(report) == {"action", "structure", "kind", "output", "time_s"}
    assert report["kind"] == "label"
    expected = _array(case / "labels" / "tumour.nrrd")
    np.testing.assert_array_equal(_array(tmp_path / "t.nii.gz"), expected)
    report = run_json("export", case, "--structure", "tumour", "--mesh", tmp_path / "t.stl")
    assert set(report) == {"action", "structure", "kind", "output", "time_s"}
    assert pv.read(tmp_path / "t.stl").n_points == pv.read(case / "meshes" / "tumour.vtp").n_points


def _foreign_folder(tmp: Path) -> Path:
    folder = tmp / "foreign"
    folder.mkdir()
    (folder / "notes.txt").write_text("someone else's files\n")
    return folder


BAD_REQUESTS = {
    "gltf-without-surfaces": (
        "bare",
        lambda case, tmp: ["--gltf", tmp / "x.glb"],
        "has no surfaces",
    ),
    "gltf-inside-case": ("case", lambda case, tmp: ["--gltf", case / "x.glb"], "inside the case"),
    "scene-inside-case": (
        "case",
        lambda case, tmp: ["--scene", case / "meshes" / "x.mrb"],
        "inside the case",
    ),
    "dicom-into-case": ("case", lambda case, tmp: ["--dicom", case], "inside the case"),
    "seg-inside-case": (
        "case",
        lambda case, tmp: ["--dicom-seg", case / "labels" / "s.dcm"],
        "inside the case",
    ),
    "label-inside-case": (
        "case",
        lambda case, tmp: ["--structure", "liver", "--label", case / "labels" / "liver.nrrd"],
        "inside the case",
    ),
    "dicom-into-foreign-folder": (
        "case",
        lambda case, tmp: ["--dicom", _foreign_folder(tmp)],
        "is not this case's DICOM series",
    ),
    "two-outputs": (
        "case",
        lambda case, tmp: ["--gltf", tmp / "x.glb", "--scene", tmp / "x.mrb"],
        "exactly one output option",
    ),
    "no-output": ("case", lambda case, tmp: ["--structure", "liver"], "exactly one output option"),
    "mesh-without-structure": (
        "case",
        lambda case, tmp: ["--mesh", tmp / "x.vtp"],
        "give one --structure NAME",
    ),
    "unknown-structure": (
        "case",
        lambda case, tmp: ["--rtstruct", tmp / "x.dcm", "--structure", "brain"],
        "no structure 'brain'",
    ),
    "rtstruct-not-dcm": ("case", lambda case, tmp: ["--rtstruct", tmp / "x.txt"], "end in .dcm"),
    "gltf-not-glb": ("case", lambda case, tmp: ["--gltf", tmp / "x.gltf"], "must end in .glb"),
    "scene-bad-suffix": ("case", lambda case, tmp: ["--scene", tmp / "x.zip"], ".mrb"),
}


@pytest.mark.parametrize("request_name", list(BAD_REQUESTS))
def test_bad_request_is_one_line_exit_2_and_the_case_unchanged(
    cases, tmp_path: Path, request_name: str
) -> None:
    which, arguments, message = BAD_REQUESTS[request_name]
    case = tmp_path / "case"
    shutil.copytree(cases[which], case)
    before = snapshot(case)
    code, out, err = run("export", case, *arguments(case, tmp_path), "--json")
    assert code == 2, (out, err)
    assert out == "" and err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert snapshot(case) == before
    assert Case.open(case).manifest.dicom_uids is None
