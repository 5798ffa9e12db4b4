"""glTF export: LPS mm -> glTF m, and real liver models read back (pygltflib, trimesh)."""

from __future__ import annotations

import os
import struct

import numpy as np
import pygltflib
import pytest
import pyvista as pv
import trimesh

from surgplan.gltf_export import (
    GLTF_FROM_LPS,
    GltfExportError,
    export_gltf,
    lps_mm_to_gltf_m,
    srgb_to_linear,
)

L, P, S = np.eye(3)  # LPS unit vectors
LIVER_RGB = (1.0, 0.666, 0.5)  # scikit-surgeryvtk's colours.txt
TUMOUR_RGB = (1.0, 1.0, 0.0)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _expected_bounds_m(mesh: pv.PolyData) -> tuple[np.ndarray, np.ndarray]:
    """Mesh bounds (LPS mm) remapped by hand: x = L, y = S, z = -P, then / 1000."""
    x0, x1, y0, y1, z0, z1 = mesh.bounds
    return np.array([x0, z0, -y1]) / 1000.0, np.array([x1, z1, -y0]) / 1000.0


def _accessor_array(gltf: pygltflib.GLTF2, index: int) -> np.ndarray:
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    blob = gltf.binary_blob()
    dtype = {5126: np.float32, 5125: np.uint32}[accessor.componentType]
    width = {"SCALAR": 1, "VEC3": 3}[accessor.type]
    start = view.byteOffset + (accessor.byteOffset or 0)
    flat = np.frombuffer(blob, dtype=dtype, count=accessor.count * width, offset=start)
    return flat.reshape(accessor.count, width) if width > 1 else flat


def test_the_axis_map_is_a_proper_rotation_with_right_handed_axes():
    assert np.linalg.det(GLTF_FROM_LPS) == pytest.approx(1.0, abs=1e-15)
    assert np.array_equal(GLTF_FROM_LPS @ GLTF_FROM_LPS.T, np.eye(3))
    x, y, z = GLTF_FROM_LPS  # glTF axes in LPS: X = L, Y = S, Z = A = -P
    assert np.array_equal(x, L) and np.array_equal(y, S) and np.array_equal(z, -P)
    assert np.array_equal(np.cross(x, y), z)  # L x S = A: right-handed, like glTF's X x Y = Z


@pytest.mark.parametrize(
    ("lps_mm", "gltf_m"),
    [
        ((10.0, 0.0, 0.0), (0.010, 0.0, 0.0)),  # 1 cm to the patient's left -> +X
        ((0.0, 10.0, 0.0), (0.0, 0.0, -0.010)),  # posterior -> -Z (away from the viewer)
        ((0.0, 0.0, 10.0), (0.0, 0.010, 0.0)),  # superior -> +Y, up
        ((-150.0, -126.0, -900.0), (-0.150, -0.900, 0.126)),  # the phantom's origin
    ],
)
def test_known_points_map_to_gltf_metres(lps_mm, gltf_m):
    assert lps_mm_to_gltf_m(lps_mm) == pytest.approx(np.array(gltf_m), abs=1e-15)


def test_the_conversion_keeps_the_array_shape():
    points = np.arange(24.0).reshape(2, 4, 3)
    out = lps_mm_to_gltf_m(points)
    assert out.shape == (2, 4, 3)
    assert np.array_equal(
        out[1, 2], np.array([points[1, 2, 0], points[1, 2, 2], -points[1, 2, 1]]) / 1000
    )


def test_srgb_is_linearised_with_the_iec_transfer_function():
    values = srgb_to_linear([0.0, 0.04045, 0.5, 1.0])
    assert values == pytest.approx([0.0, 0.04045 / 12.92, 0.21404114048223255, 1.0], abs=1e-15)


@pytest.fixture(scope="module")
def liver_glb(tmp_path_factory, liver_models_dir):
    meshes = {
        "liver": pv.read(liver_models_dir / "liver.vtk"),
        "tumour": pv.read(liver_models_dir / "liver_tumours.vtk"),
    }
    out = tmp_path_factory.mktemp("gltf") / "twin.glb"
    result = export_gltf(
        out,
        meshes,
        colours={"liver": LIVER_RGB, "tumour": TUMOUR_RGB},
        opacities={"liver": 0.4, "tumour": 1.0},
    )
    return out, meshes, result


def test_real_liver_models_read_back_with_pygltflib(liver_glb):
    out, meshes, result = liver_glb
    gltf = pygltflib.GLTF2().load(str(out))
    assert [m.name for m in gltf.meshes] == ["liver", "tumour"]
    assert [n.name for n in gltf.nodes] == ["liver", "tumour"]
    assert gltf.scenes[gltf.scene].nodes == [0, 1]
    for mesh, gmesh, written in zip(meshes.values(), gltf.meshes, result.structures, strict=True):
        (primitive,) = gmesh.primitives
        position = gltf.accessors[primitive.attributes.POSITION]
        lo, hi = _expected_bounds_m(mesh)
        assert position.min == pytest.approx(lo, abs=1e-6)
        assert position.max == pytest.approx(hi, abs=1e-6)
        assert position.count == mesh.n_points == written.n_vertices
        xyz = _accessor_array(gltf, primitive.attributes.POSITION)
        assert np.array_equal(xyz, lps_mm_to_gltf_m(mesh.points).astype(np.float32))
        assert position.min == xyz.min(axis=0).tolist() and position.max == xyz.max(axis=0).tolist()
        indices = _accessor_array(gltf, primitive.indices)
        assert np.array_equal(indices.reshape(-1, 3), mesh.regular_faces)  # all triangles
        normals = _accessor_array(gltf, primitive.attributes.NORMAL)
        assert np.linalg.norm(normals, axis=1) == pytest.approx(1.0, abs=1e-6)
    liver, tumour = (gltf.materials[m.primitives[0].material] for m in gltf.meshes)
    assert liver.pbrMetallicRoughness.baseColorFactor == pytest.approx(
        [*srgb_to_linear(LIVER_RGB), 0.4], abs=1e-12
    )
    assert liver.alphaMode == "BLEND" and liver.doubleSided
    assert tumour.pbrMetallicRoughness.baseColorFactor == [1.0, 1.0, 0.0, 1.0]
    assert tumour.alphaMode == "OPAQUE"


def test_real_liver_models_read_back_with_trimesh(liver_glb):
    out, meshes, _ = liver_glb
    scene = trimesh.load(out)
    assert sorted(scene.geometry) == ["liver", "tumour"]
    for name, mesh in meshes.items():
        lo, hi = _expected_bounds_m(mesh)
        assert scene.geometry[name].bounds == pytest.approx(np.array([lo, hi]), abs=1e-6)
        assert len(scene.geometry[name].vertices) == mesh.n_points
        assert len(scene.geometry[name].faces) == mesh.n_cells
    both = np.array([_expected_bounds_m(m) for m in meshes.values()])
    assert scene.bounds == pytest.approx(np.array([both[:, 0].min(0), both[:, 1].max(0)]), abs=1e-6)


def test_the_file_is_a_glb_with_the_usual_permissions(liver_glb):
    out, _, result = liver_glb
    data = out.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data)) and result.n_bytes == len(data)
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert result.to_dict()["structures"][0]["vertices"] == 10012


def test_normals_and_winding_point_out_of_a_sphere(tmp_path):
    centre = np.array([20.0, -50.0, 300.0])
    sphere = pv.Sphere(radius=30.0, center=centre, theta_resolution=24, phi_resolution=24)
    out = tmp_path / "ball.glb"
    export_gltf(out, {"ball": sphere}, colours={"ball": (0.5, 0.5, 0.5)}, colour_space="linear")
    gltf = pygltflib.GLTF2().load(str(out))
    primitive = gltf.meshes[0].primitives[0]
    xyz = _accessor_array(gltf, primitive.attributes.POSITION).astype(np.float64)
    normals = _accessor_array(gltf, primitive.attributes.NORMAL)
    centre_m = lps_mm_to_gltf_m(centre)
    assert np.all(np.einsum("ij,ij->i", normals, xyz - centre_m) > 0)
    tri = xyz[_accessor_array(gltf, primitive.indices).reshape(-1, 3)]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    counter_clockwise = np.einsum("ij,ij->i", face_normals, tri.mean(axis=1) - centre_m)
    assert np.all(counter_clockwise > 0)  # glTF front faces: counter-clockwise seen from outside
    material = gltf.materials[0]
    assert material.pbrMetallicRoughness.baseColorFactor == [0.5, 0.5, 0.5, 1.0]


def _with_nan() -> pv.PolyData:
    mesh = pv.Sphere()
    points = mesh.points.copy()
    points[7] = (np.nan, 0.0, 0.0)
    mesh.points = points
    return mesh


BAD_REQUESTS = {
    "no structures": ({}, {}, r"needs at least one structure with a surface; got none"),
    "empty mesh": ({"a": pv.PolyData()}, {}, r"structure 'a': the surface is empty \(0 points\)"),
    "non-finite": (
        {"a": _with_nan()},
        {},
        r"structure 'a': 1 non-finite point\(s\), the first at index 7: \[nan, 0\.0, 0\.0\]",
    ),
    "lines only": (
        {"a": pv.Line()},
        {},
        r"structure 'a': the surface has no triangles",
    ),
    "volume mesh": (
        {"a": pv.ImageData(dimensions=(2, 2, 2)).cast_to_unstructured_grid()},
        {},
        r"structure 'a': expected a pyvista.PolyData surface, got UnstructuredGrid",
    ),
    "missing colour": ({"a": pv.Sphere(), "b": pv.Sphere()}, {}, r"structure 'b' has no colour"),
    "colour range": (
        {"a": pv.Sphere()},
        {"colours": {"a": (0.0, 1.2, 0.0)}},
        r"'a': colour must be 3 values in 0\.\.1, got \(0\.0, 1\.2, 0\.0\)",
    ),
    "opacity range": (
        {"a": pv.Sphere()},
        {"opacities": {"a": -0.1}},
        r"'a': opacity must be in 0\.\.1, got -0\.1",
    ),
    "unknown name": (
        {"a": pv.Sphere()},
        {"opacities": {"liverr": 0.5}},
        r"colours/opacities name unknown structures \['liverr'\]",
    ),
    "colour space": ({"a": pv.Sphere()}, {"colour_space": "RGB"}, r"'sRGB' or 'linear', got 'RGB'"),
    "suffix": ({"a": pv.Sphere()}, {"out": "twin.gltf"}, r"must end in \.glb, got '\.gltf'"),
    "folder": ({"a": pv.Sphere()}, {"out": "no/twin.glb"}, r"folder .*no does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_are_one_line_errors_and_write_nothing(tmp_path, case):
    structures, options, match = BAD_REQUESTS[case]
    options = dict(options)
    out = tmp_path / options.pop("out", "twin.glb")
    colours = options.pop("colours", {"a": (1.0, 0.0, 0.0)})
    with pytest.raises(GltfExportError, match=match) as info:
        export_gltf(out, structures, colours=colours, **options)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
