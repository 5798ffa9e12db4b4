import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from registration import VerdictCheck, target_registration_error
from registration._points import InsufficientPointsError
from registration.model import load_surface, prepare_surface
from registration.realtime import RealTimeRegistrar
from registration.reliability import pose_conditioning
from registration.sensors import add_noise, add_outliers, simulate_scan, simulate_swabs
from registration.surface import register_surface


@pytest.fixture(scope="module")
def liver(liver_models_dir):
    return load_surface(liver_models_dir / "liver.vtk")


@pytest.fixture(scope="module")
def tumour(liver_models_dir):
    return load_surface(liver_models_dir / "liver_tumours.vtk").centroid_mm


def _pose(rng, deg=None):
    T = np.eye(4)
    if deg is None:
        T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    else:
        T[:3, :3] = Rotation.from_rotvec(np.deg2rad(deg) * np.array([0.6, 0.8, 0.0])).as_matrix()
    T[:3, 3] = rng.normal(scale=40.0, size=3)
    return T


def test_model_keeps_largest_component(liver):
    # liver.vtk: a 9,987-vertex organ plus five degenerate 5-point pieces.
    assert len(liver.vertices) == 9987
    assert liver.n_dropped_vertices == 25
    # Outward normals: most point away from the centroid.
    outward = np.einsum("ij,ij->i", liver.vertices - liver.centroid_mm, liver.normals) > 0
    assert np.mean(outward) > 0.8


def test_global_registration_recovers_known_pose(liver, tumour):
    rng = np.random.default_rng(1)
    pts = add_noise(
        simulate_swabs(liver, n_points=400, coverage=0.3, seed=rng), noise_mm=1.0, seed=rng
    )
    T_pm = _pose(rng)
    meas = pts @ T_pm[:3, :3].T + T_pm[:3, 3]
    meas[:5] = np.nan
    res = register_surface(meas, liver, seed=3, noise_mm=1.0)
    assert res.n_points_dropped == 5 and res.n_points_used == 395
    assert target_registration_error(res.T_model_points, T_pm, tumour)[0] < 2.0
    assert res.trustworthy, res.reason
    assert res.inlier_fraction > 0.95
    assert 0.6 < res.inlier_rms_mm < 1.3  # ~ the 1 mm normal noise component
    # Same seed, same inputs: same pose.
    again = register_surface(meas, liver, seed=3, noise_mm=1.0)
    np.testing.assert_array_equal(again.T_model_points, res.T_model_points)


def test_warm_update_and_reuse(liver, tumour):
    rng = np.random.default_rng(2)
    pts = add_noise(
        simulate_swabs(liver, n_points=1000, coverage=0.3, seed=rng), noise_mm=0.5, seed=rng
    )
    T_pm = _pose(rng)
    meas = pts @ T_pm[:3, :3].T + T_pm[:3, 3]
    # Previous pose: the truth moved by 3 degrees about the organ centroid and 2.7 mm.
    reg = RealTimeRegistrar(
        liver, _small_motion(liver.centroid_mm) @ np.linalg.inv(T_pm), noise_mm=0.5
    )
    tree = liver.tree
    res = reg.update(meas)
    assert liver.tree is tree  # nothing rebuilt
    assert target_registration_error(res.T_model_points, T_pm, tumour)[0] < 1.0
    assert res.trustworthy, res.reason
    np.testing.assert_array_equal(reg.T_model_points, res.T_model_points)


def _small_motion(c):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(np.deg2rad(3.0) * np.array([0.0, 0.6, 0.8])).as_matrix()
    T[:3, 3] = c - T[:3, :3] @ c + np.array([2.0, -1.0, 1.5])
    return T


def test_bad_cases_are_flagged(liver):
    rng = np.random.default_rng(4)
    pts = add_noise(
        simulate_swabs(liver, n_points=400, coverage=0.3, seed=rng), noise_mm=1.0, seed=rng
    )
    # 30 % gross outliers, correct start pose.
    bad, _ = add_outliers(pts, fraction=0.3, seed=rng)
    res = register_surface(bad, liver, T_init=np.eye(4), noise_mm=1.0)
    assert not res.trustworthy and VerdictCheck.LOW_INLIER_FRACTION in res.verdict.checks
    low = res.verdict.failed(VerdictCheck.LOW_INLIER_FRACTION)
    assert low.value < low.threshold == 0.85 and low.message in res.reason
    # Too few points.
    res = register_surface(pts[:20], liver, T_init=np.eye(4), noise_mm=1.0)
    assert not res.trustworthy and VerdictCheck.TOO_FEW_POINTS in res.verdict.checks
    few = res.verdict.failed(VerdictCheck.TOO_FEW_POINTS)
    assert (few.value, few.threshold) == (20, 200)
    # Wrong local minimum: warm start 150 degrees off.
    T_bad = np.eye(4)
    T_bad[:3, :3] = Rotation.from_rotvec(np.deg2rad(150) * np.array([0, 0, 1.0])).as_matrix()
    c = liver.centroid_mm
    T_bad[:3, 3] = c - T_bad[:3, :3] @ c
    res = register_surface(pts, liver, T_init=T_bad, noise_mm=1.0)
    assert not res.trustworthy


def test_nonfinite_points_leave_too_few(liver):
    pts = np.full((10, 3), np.nan)
    pts[:3] = liver.vertices[:3]
    with pytest.raises(InsufficientPointsError, match="3 finite points remain after dropping 7"):
        register_surface(pts, liver)


def test_conditioning_plane_and_sphere():
    rng = np.random.default_rng(0)
    plane = np.c_[rng.uniform(-20, 20, (500, 2)), np.zeros(500)]
    _, weak, motion = pose_conditioning(plane, np.tile([0.0, 0.0, 1.0], (500, 1)))
    assert weak == pytest.approx(0.0, abs=1e-12)
    d = rng.normal(size=(500, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    _, weak_s, motion_s = pose_conditioning(30.0 * d, d)
    assert weak_s == pytest.approx(0.0, abs=1e-12)
    assert np.linalg.norm(motion_s[:3]) > 0.99  # a free rotation
    cube_pts = rng.uniform(-1, 1, (600, 3))
    axis = np.argmax(np.abs(cube_pts), axis=1)
    cube_pts[np.arange(600), axis] = np.sign(cube_pts[np.arange(600), axis])
    normals = np.zeros_like(cube_pts)
    normals[np.arange(600), axis] = cube_pts[np.arange(600), axis]
    _, weak_c, _ = pose_conditioning(cube_pts * 20.0, normals)
    assert weak_c > 0.05


def test_sensors(liver):
    rng = np.random.default_rng(0)
    pts = simulate_swabs(liver, n_points=300, coverage=0.2, seed=rng)
    d, _ = liver.tree.query(pts)
    assert pts.shape == (300, 3) and d.max() < liver.spacing_mm * 2
    # Swabs are on the anterior (LPS -y) side.
    assert np.mean(pts[:, 1]) < liver.centroid_mm[1]
    cam = liver.centroid_mm + np.array([0.0, -300.0, 0.0])
    scan = simulate_scan(liver, n_points=500, coverage=0.2, camera_position_mm=cam, seed=1)
    _, idx = liver.tree.query(scan)
    to_cam = cam - scan
    # Self-occlusion: every seen point faces the camera.
    assert np.mean(np.einsum("ij,ij->i", liver.normals[idx], to_cam) > 0) > 0.97
    noisy = add_noise(np.zeros((20000, 3)), noise_mm=[0.5, 1.0, 2.0], seed=2)
    np.testing.assert_allclose(noisy.std(axis=0), [0.5, 1.0, 2.0], rtol=0.03)
    out, mask = add_outliers(np.zeros((100, 3)), fraction=0.3, seed=3)
    assert mask.sum() == 30 and np.linalg.norm(out[mask], axis=1).min() >= 10.0
    disp = np.tile([0.0, 0.0, 5.0], (len(liver.vertices), 1))
    shifted = simulate_swabs(liver, n_points=50, coverage=0.2, seed=5, displacement_mm=disp)
    base = simulate_swabs(liver, n_points=50, coverage=0.2, seed=5)
    np.testing.assert_allclose(shifted - base, np.tile([0, 0, 5.0], (50, 1)), atol=1e-9)


def test_prepare_surface_from_arrays_and_open3d():
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=20.0, resolution=20)
    m = prepare_surface(mesh)
    assert np.allclose(np.linalg.norm(m.vertices, axis=1), 20.0)
    assert np.all(np.einsum("ij,ij->i", m.vertices, m.normals) > 0)


def test_long_slivers_are_split_without_changing_the_surface():
    import pyvista as pv

    # A long thin box, as a decimated flat region leaves it: few long triangles.
    box = pv.Box(bounds=(0.0, 120.0, 0.0, 8.0, 0.0, 6.0), level=2).triangulate().clean()
    v0 = np.asarray(box.points)
    f0 = np.asarray(box.faces).reshape(-1, 4)[:, 1:]
    edges0 = np.linalg.norm(v0[f0[:, 0]] - v0[f0[:, 1]], axis=1)
    model = prepare_surface(box)
    v, f = model.vertices, model.faces
    lengths = np.concatenate(
        [np.linalg.norm(v[f[:, i]] - v[f[:, (i + 1) % 3]], axis=1) for i in range(3)]
    )
    assert lengths.max() <= 3.0 * np.median(edges0) + 1e-9 < edges0.max()
    np.testing.assert_allclose(v[: len(v0)], v0)  # the original vertices come first, unmoved
    surface = model.to_polydata()
    assert surface.n_open_edges == 0 and surface.is_manifold
    assert surface.volume == pytest.approx(120.0 * 8.0 * 6.0, rel=1e-12)
    assert np.all(np.abs(np.einsum("ij,ij->i", model.normals, model.normals) - 1.0) < 1e-12)
