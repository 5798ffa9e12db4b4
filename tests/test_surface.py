"""Label map -> surface: analytical sphere, real CT liver, LPS placement, orientation, file I/O."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv
import SimpleITK as sitk

from imaging.errors import MeshingError
from imaging.mesh_io import SURFACE_SUFFIXES, read_surface, write_surface
from imaging.surface import (
    is_thin_structure,
    label_to_surface,
    labels_to_surfaces,
    signed_volume_mm3,
    surface_metrics,
)

LIVER = 5
SPLEEN = 1


def _volume_centroid(poly: pv.PolyData) -> np.ndarray:
    """Centroid of the solid bounded by a closed surface: sum of tetrahedra to the origin."""
    p = np.asarray(poly.points)
    tri = np.asarray(poly.regular_faces)
    a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
    v = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    return (v[:, None] * (a + b + c) / 4.0).sum(axis=0) / v.sum()


def _voxel_centroid(image: sitk.Image, label: int) -> np.ndarray:
    """Mean physical (LPS) position of the label's voxel centres."""
    index_zyx = np.argwhere(sitk.GetArrayViewFromImage(image) == label)
    index_xyz = index_zyx[:, ::-1].astype(np.float64)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    physical = index_xyz * np.asarray(image.GetSpacing()) @ direction.T + image.GetOrigin()
    return physical.mean(axis=0)


def _sphere_image(radius_mm: float, spacing_mm: float, direction=None) -> sitk.Image:
    n = int(np.ceil(2 * radius_mm / spacing_mm)) + 8
    centre = (n - 1) / 2.0
    z, y, x = np.mgrid[:n, :n, :n]
    inside = ((x - centre) ** 2 + (y - centre) ** 2 + (z - centre) ** 2) * spacing_mm**2
    image = sitk.GetImageFromArray((inside <= radius_mm**2).astype(np.uint8))
    image.SetSpacing((spacing_mm,) * 3)
    image.SetOrigin((12.0, -40.0, 7.5))
    if direction is not None:
        image.SetDirection(direction)
    return image


@pytest.fixture(scope="module")
def ct_labels(totalseg_dir: Path) -> sitk.Image:
    image = sitk.ReadImage(str(totalseg_dir / "example_seg.nii.gz"))
    assert image.GetDirection() == (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    return image


@pytest.fixture(scope="module")
def liver_surface(ct_labels: sitk.Image) -> pv.PolyData:
    return label_to_surface(ct_labels, label=LIVER)


@pytest.mark.parametrize("smoothing_iterations", [0, 20])
def test_sphere_volume_and_area_match_analytical(smoothing_iterations: int) -> None:
    radius = 20.0
    poly = label_to_surface(_sphere_image(radius, 1.0), smoothing_iterations=smoothing_iterations)
    metrics = surface_metrics(poly)
    assert metrics.is_closed and metrics.is_manifold and metrics.n_components == 1
    assert metrics.volume_ml * 1000.0 == pytest.approx(4.0 / 3.0 * np.pi * radius**3, rel=0.01)
    if smoothing_iterations:  # the raw marching-cubes staircase overestimates area by ~9%
        assert metrics.area_mm2 == pytest.approx(4.0 * np.pi * radius**2, rel=0.02)


def test_sphere_decimated_to_target_keeps_volume() -> None:
    radius = 20.0
    poly = label_to_surface(_sphere_image(radius, 1.0), target_triangles=2000)
    metrics = surface_metrics(poly)
    assert metrics.n_triangles <= 2000
    assert metrics.is_closed and metrics.is_manifold
    assert metrics.volume_ml * 1000.0 == pytest.approx(4.0 / 3.0 * np.pi * radius**3, rel=0.01)


def test_real_liver_closed_manifold_and_volume_within_3_percent(
    ct_labels: sitk.Image, liver_surface: pv.PolyData
) -> None:
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(ct_labels) == LIVER))
    label_ml = voxels * np.prod(ct_labels.GetSpacing()) / 1000.0
    metrics = surface_metrics(liver_surface)
    assert metrics.is_closed and metrics.is_manifold
    assert metrics.n_components == 1
    assert metrics.volume_ml == pytest.approx(label_ml, rel=0.03)
    assert liver_surface.points.dtype == np.float64


def test_liver_surface_lands_on_its_voxels_in_lps(
    ct_labels: sitk.Image, liver_surface: pv.PolyData
) -> None:
    # direction diag(-1,-1,1): ignoring it would put the liver ~360 mm away in x and ~300 mm in y
    centroid = _volume_centroid(liver_surface)
    np.testing.assert_allclose(centroid, _voxel_centroid(ct_labels, LIVER), atol=1.0)
    # every surface point lies within ~1 voxel of a liver voxel centre
    index = np.array([ct_labels.TransformPhysicalPointToIndex(p) for p in liver_surface.points])
    labels = sitk.GetArrayViewFromImage(ct_labels)
    size = np.asarray(ct_labels.GetSize())
    near = 0
    for i, j, k in index:
        window = labels[
            max(k - 1, 0) : min(k + 2, size[2]),
            max(j - 1, 0) : min(j + 2, size[1]),
            max(i - 1, 0) : min(i + 2, size[0]),
        ]
        near += bool((window == LIVER).any())
    assert near == len(index)


def test_sphere_with_rotated_direction_centroid() -> None:
    c, s = np.cos(0.4), np.sin(0.4)
    direction = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
    image = _sphere_image(10.0, 1.0, direction=direction)
    image.SetSpacing((1.0, 1.0, 1.0))
    poly = label_to_surface(image)
    np.testing.assert_allclose(_volume_centroid(poly), _voxel_centroid(image, 1), atol=0.2)


def test_normals_point_outward(liver_surface: pv.PolyData) -> None:
    assert signed_volume_mm3(liver_surface) > 0
    normals = np.asarray(liver_surface.point_data["Normals"])
    points = np.asarray(liver_surface.points)
    centroid = _volume_centroid(liver_surface)
    for axis in range(3):
        for pick in (np.argmax, np.argmin):
            i = pick(points[:, axis])
            assert np.dot(normals[i], points[i] - centroid) > 0
            assert np.sign(normals[i, axis]) == (1 if pick is np.argmax else -1)


def test_border_touching_structure_is_closed() -> None:
    mask = np.zeros((10, 12, 14), dtype=np.uint8)
    mask[:, 3:9, :] = 1  # touches four faces of the image
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing((2.0, 2.0, 3.0))
    metrics = surface_metrics(label_to_surface(image, smoothing_iterations=0))
    assert metrics.is_closed and metrics.is_manifold
    assert metrics.volume_ml * 1000.0 == pytest.approx(mask.sum() * 12.0, rel=0.05)


def test_labels_to_surfaces_names(ct_labels: sitk.Image) -> None:
    surfaces = labels_to_surfaces(
        ct_labels, {LIVER: "liver", SPLEEN: "spleen"}, target_triangles=3000
    )
    assert list(surfaces) == ["liver", "spleen"]
    for poly in surfaces.values():
        metrics = surface_metrics(poly)
        assert metrics.is_closed and metrics.is_manifold and metrics.n_triangles <= 3000
    with pytest.raises(MeshingError, match=r"'nothing' \(label 250\).*label 250"):
        labels_to_surfaces(ct_labels, {250: "nothing"})


def test_empty_mask_raises() -> None:
    empty = sitk.Image(8, 8, 8, sitk.sitkUInt8)
    with pytest.raises(MeshingError, match=r"label 1 has no voxels.*values present: 0"):
        label_to_surface(empty)


def test_missing_label_raises(ct_labels: sitk.Image) -> None:
    with pytest.raises(MeshingError, match="label 200 has no voxels"):
        label_to_surface(ct_labels, label=200)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pass_band": 2.5}, "pass_band must lie in"),
        ({"smoothing_iterations": -1}, "smoothing_iterations must be >= 0, got -1"),
        ({"target_triangles": 10}, "target_triangles must be >= 100, got 10"),
    ],
)
def test_bad_parameters_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(MeshingError, match=match):
        label_to_surface(_sphere_image(5.0, 1.0), **kwargs)


def test_float_image_raises() -> None:
    image = sitk.Image(4, 4, 4, sitk.sitkFloat32)
    with pytest.raises(MeshingError, match="integer pixel type, got 32-bit float"):
        label_to_surface(image)


@pytest.mark.parametrize("suffix", SURFACE_SUFFIXES)
def test_surface_round_trip(tmp_path: Path, suffix: str) -> None:
    poly = pv.Icosphere(radius=10.0, nsub=3, center=(100.0, -50.0, 20.0))
    path = write_surface(poly, tmp_path / f"liver{suffix}")
    assert [p.name for p in tmp_path.iterdir()] == [f"liver{suffix}"]  # no temp file left
    back = read_surface(path)
    assert back.n_points == poly.n_points and back.n_cells == poly.n_cells
    assert back.points.dtype == np.float64
    np.testing.assert_allclose(
        np.sort(back.points, axis=0), np.sort(poly.points, axis=0), atol=1e-4
    )
    assert surface_metrics(back).volume_ml == pytest.approx(surface_metrics(poly).volume_ml)
    if suffix in (".vtp", ".vtk"):
        assert str(back.field_data["SPACE"][0]) == "LPS"


@pytest.mark.parametrize("suffix", SURFACE_SUFFIXES)
def test_written_surface_has_the_usual_file_mode(tmp_path: Path, suffix: str) -> None:
    """0o666 less the umask (0o640 under umask 027), not the 0o600 of a mkstemp rename."""
    previous = os.umask(0o027)
    try:
        path = write_surface(pv.Icosphere(), tmp_path / f"s{suffix}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == [f"s{suffix}"]


def test_legacy_vtk_header_says_lps(tmp_path: Path) -> None:
    path = write_surface(pv.Icosphere(), tmp_path / "s.vtk")
    with path.open("rb") as fh:
        assert fh.read().split(b"\n")[1] == b"SPACE=LPS"


def test_unknown_extension_raises(tmp_path: Path) -> None:
    with pytest.raises(MeshingError, match=r"unknown surface file extension '\.xyz'"):
        write_surface(pv.Icosphere(), tmp_path / "s.xyz")
    with pytest.raises(MeshingError, match=r"unknown surface file extension '\.gltf'"):
        read_surface(tmp_path / "s.gltf")


def test_read_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(MeshingError, match="does not exist"):
        read_surface(tmp_path / "missing.vtp")


def test_supersampling_keeps_thin_tube_volume_and_place() -> None:
    """A 2.5-voxel-radius tube: marching cubes cuts staircase corners; sub-voxels halve that."""
    z, y, x = np.mgrid[0:40, 0:30, 0:30]
    tube = (((x - 14.7) ** 2 + (y - 15.2) ** 2) <= 2.5**2) & (z > 4) & (z < 35)
    mask = sitk.GetImageFromArray(tube.astype(np.uint8))
    mask.SetSpacing((1.5, 1.5, 2.0))
    mask.SetOrigin((10.0, -20.0, 5.0))
    mask.SetDirection((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))
    label_ml = tube.sum() * 1.5 * 1.5 * 2.0 / 1000.0
    assert is_thin_structure(mask)
    plain = surface_metrics(label_to_surface(mask, decimate=False))
    fine_surface = label_to_surface(mask, decimate=False, supersample=2)
    fine = surface_metrics(fine_surface)
    plain_error = abs(plain.volume_ml - label_ml) / label_ml
    fine_error = abs(fine.volume_ml - label_ml) / label_ml
    assert fine.is_closed and fine.is_manifold
    assert fine_error < 0.6 * plain_error
    assert fine_error < 0.03
    # same place in LPS: centroid of the surface ~ centroid of the voxels
    idx = np.argwhere(tube)[:, ::-1].astype(float)  # (x, y, z) indices
    voxels = np.array([mask.TransformContinuousIndexToPhysicalPoint(p) for p in idx])
    np.testing.assert_allclose(fine_surface.center_of_mass(), voxels.mean(axis=0), atol=0.5)


def test_thick_structure_is_not_thin() -> None:
    z, y, x = np.mgrid[0:30, 0:30, 0:30]
    ball = ((x - 15) ** 2 + (y - 15) ** 2 + (z - 15) ** 2) <= 10**2
    assert not is_thin_structure(sitk.GetImageFromArray(ball.astype(np.uint8)))
