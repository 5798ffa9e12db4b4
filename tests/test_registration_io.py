import json

import numpy as np
import pytest
import SimpleITK as sitk

from registration.io import (
    PointFileError,
    read_itk_transform,
    read_points,
    read_slicer_markups,
    read_transform_txt,
    write_itk_transform,
    write_slicer_markups,
)


def _T():
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix()
    T[:3, 3] = [5.0, -7.0, 12.0]
    return T


def test_markups_roundtrip_and_ras_conversion(tmp_path):
    pts = np.array([[1.0, 2.0, 3.0], [-4.0, 5.5, -6.0]])
    p = write_slicer_markups(tmp_path / "f.mrk.json", pts, ["a", "b"], coordinate_system="RAS")
    doc = json.loads(p.read_text())
    assert doc["markups"][0]["coordinateSystem"] == "RAS"
    # In the file: RAS = (-x, -y, z) of LPS.
    assert doc["markups"][0]["controlPoints"][0]["position"] == [-1.0, -2.0, 3.0]
    back, labels = read_slicer_markups(p)
    np.testing.assert_allclose(back, pts)
    assert labels == ["a", "b"]
    lps = write_slicer_markups(tmp_path / "g.mrk.json", pts)
    assert json.loads(lps.read_text())["markups"][0]["controlPoints"][1]["position"] == [
        -4.0,
        5.5,
        -6.0,
    ]
    np.testing.assert_allclose(read_points(lps), pts)


def test_itk_transform_roundtrip_with_simpleitk(tmp_path):
    T = _T()  # T_model_points
    path = write_itk_transform(tmp_path / "reg.tfm", T)
    assert path.read_text().startswith("#Insight Transform File")
    tx = sitk.ReadTransform(str(path))
    # The file is the resampling transform: model (fixed) point -> points (moving) space.
    x_model = np.array([10.0, 20.0, -30.0])
    expected = np.linalg.inv(T)[:3, :3] @ x_model + np.linalg.inv(T)[:3, 3]
    np.testing.assert_allclose(tx.TransformPoint(x_model.tolist()), expected, atol=1e-9)
    np.testing.assert_allclose(read_itk_transform(path), T, atol=1e-12)
    np.testing.assert_allclose(read_transform_txt(path), T, atol=1e-12)


def test_read_points_formats_and_nan(tmp_path):
    (tmp_path / "a.csv").write_text("x,y,z\n1,2,3\n4,5,nan\n")
    np.testing.assert_array_equal(
        np.isnan(read_points(tmp_path / "a.csv")).any(axis=1), [False, True]
    )
    (tmp_path / "b.xyz").write_text("1 2 3\n4 5 6\n")
    np.testing.assert_allclose(read_points(tmp_path / "b.xyz"), [[1, 2, 3], [4, 5, 6]])
    import open3d as o3d

    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.array([[1.0, 2, 3], [4, 5, 6]])))
    o3d.io.write_point_cloud(str(tmp_path / "c.ply"), pc)
    np.testing.assert_allclose(read_points(tmp_path / "c.ply"), [[1, 2, 3], [4, 5, 6]])


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(PointFileError, match="not found"):
        read_points(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("1,2,3\n1,x,3\n")
    with pytest.raises(PointFileError, match=r"bad.csv:2"):
        read_points(tmp_path / "bad.csv")
    (tmp_path / "m.txt").write_text("1 0 0\n")
    with pytest.raises(PointFileError, match="16 numbers"):
        read_transform_txt(tmp_path / "m.txt")


def test_writers_are_atomic_with_the_usual_file_mode(tmp_path):
    import os

    from registration._atomic import write_atomic

    old = os.umask(0o022)
    try:
        markups = write_slicer_markups(tmp_path / "sub" / "f.mrk.json", np.zeros((2, 3)))
        transform = write_itk_transform(tmp_path / "T.tfm", _T())
    finally:
        os.umask(old)
    # mkstemp's 0600 is not what a user expects of a written file: 0666 less the umask.
    assert markups.stat().st_mode & 0o777 == 0o644
    assert transform.stat().st_mode & 0o777 == 0o644

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        write_atomic(transform, fail)
    np.testing.assert_allclose(read_itk_transform(transform), _T(), atol=1e-12)  # old file kept
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["T.tfm", "f.mrk.json"]


def _swab_patch(liver_models_dir):
    """Simulated swabs on the real liver and a triangulated patch through them."""
    import pyvista as pv

    from registration.model import load_surface
    from registration.sensors import simulate_swabs

    liver = load_surface(liver_models_dir / "liver.vtk")
    swabs = simulate_swabs(liver, n_points=200, coverage=0.3, seed=3)
    return swabs, pv.PolyData(swabs).delaunay_2d()


def test_mesh_files_give_their_vertices(tmp_path, liver_models_dir):
    import pyvista as pv

    swabs, patch = _swab_patch(liver_models_dir)
    pv.PolyData(swabs).save(tmp_path / "swabs.vtp")
    np.testing.assert_array_equal(read_points(tmp_path / "swabs.vtp"), swabs)  # float64, in order
    assert patch.n_points == 200 and patch.n_cells > 300
    patch.save(tmp_path / "patch.stl")  # STL: float32 triangles, vertices merged on reading
    stl = read_points(tmp_path / "patch.stl")
    assert stl.shape == (200, 3)
    np.testing.assert_allclose(
        stl[np.lexsort(stl.T[::-1])], swabs[np.lexsort(swabs.T[::-1])], rtol=0, atol=1e-4
    )
    patch.save(tmp_path / "patch.vtk")
    np.testing.assert_array_equal(read_points(tmp_path / "patch.vtk"), swabs)
    patch.save(tmp_path / "patch.obj")
    obj = read_points(tmp_path / "patch.obj")
    np.testing.assert_allclose(obj, swabs, rtol=0, atol=1e-4)


def test_bad_meshes_and_binary_point_files(tmp_path):
    import pyvista as pv

    from registration.io import read_mesh_vertices

    pv.PolyData().save(tmp_path / "empty.vtp")
    with pytest.raises(PointFileError, match=r"empty.vtp: mesh has no points"):
        read_points(tmp_path / "empty.vtp")
    nan = pv.PolyData(np.array([[0.0, 0, 0], [1, np.nan, 0], [0, 1, 0], [np.inf, 0, 1]]))
    nan.save(tmp_path / "nan.vtp")
    with pytest.raises(PointFileError, match=r"2 of 4 mesh vertices are NaN or infinite \(first"):
        read_points(tmp_path / "nan.vtp")
    (tmp_path / "junk.vtp").write_bytes(b"\x00\x01 not xml \xff")
    with pytest.raises(PointFileError, match=r"junk.vtp: cannot read mesh") as info:
        read_mesh_vertices(tmp_path / "junk.vtp")
    assert "\n" not in str(info.value)
    (tmp_path / "bin.csv").write_bytes(b"1,2,3\n\x00\x00\x07\x10garbage")
    with pytest.raises(PointFileError, match=r"bin.csv: binary content \(NUL byte at offset 6\)"):
        read_points(tmp_path / "bin.csv")
    (tmp_path / "latin.xyz").write_bytes(b"1 2 3\n4 5 6 \xb5m\n")
    with pytest.raises(PointFileError, match=r"latin.xyz: not a text file \(byte 12"):
        read_points(tmp_path / "latin.xyz")
    (tmp_path / "m.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    with pytest.raises(PointFileError, match=r"m.txt: binary content"):
        read_transform_txt(tmp_path / "m.txt")
    (tmp_path / "p.las").write_text("1 2 3\n")
    with pytest.raises(PointFileError, match=r"unknown points format \(expected one of .csv"):
        read_points(tmp_path / "p.las")
