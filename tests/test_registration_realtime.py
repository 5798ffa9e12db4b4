"""The compiled warm-update path: exact correspondences, the least-squares optimum, kNN."""

import numpy as np
import open3d as o3d
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from registration import target_registration_error
from registration._fit_kernels import inlier_statistics
from registration._icp_kernels import _solve_spd6, transform_and_correspond
from registration._knn import knn_mean_residuals
from registration.icp import robust_icp, surface_residuals
from registration.model import load_surface, prepare_surface
from registration.realtime import RealTimeRegistrar, WarmIcpSchedule, warm_icp
from registration.reliability import conditioning_of, pose_conditioning, systematic_residual
from registration.sensors import add_noise, simulate_swabs


@pytest.fixture(scope="module")
def liver(liver_models_dir):
    model = load_surface(liver_models_dir / "liver.vtk")
    model.prepare_realtime()
    return model


@pytest.fixture(scope="module")
def demo_phantom_surface():
    """The phantom liver surfaced as the demo does it: decimated to 20k triangles, which
    leaves long slivers in flat areas."""
    from imaging.surface import label_to_surface
    from surgplan.sample_data import ensure_sample_data

    return label_to_surface(ensure_sample_data().truth_mask("liver"), target_triangles=20_000)


@pytest.fixture(scope="module")
def tumour(liver_models_dir):
    return load_surface(liver_models_dir / "liver_tumours.vtk").centroid_mm


def _correspond(model, points):
    lo, h, _ = model.closest_vertex_grid()
    grid, pairs = model.sheet_seed_grid()
    nb_ptr, nb_idx, nb_xyz = model.vertex_neighbourhoods()
    p = np.empty_like(points)
    idx = np.empty(len(points), dtype=np.int64)
    misses = transform_and_correspond(
        points,
        np.eye(3),
        np.zeros(3),
        lo,
        1.0 / h,
        grid,
        pairs,
        np.asarray(grid.shape, dtype=np.int64),
        model.vertices,
        nb_ptr,
        nb_idx,
        nb_xyz,
        p,
        idx,
        True,
    )
    return misses, p, idx


def test_neighbourhoods_are_the_two_ring(liver):
    ptr, idx, xyz = liver.vertex_neighbourhoods()
    f = liver.faces
    v = int(f[100, 0])
    one = set(f[(f == v).any(axis=1)].ravel()) - {v}
    two = set()
    for u in one:
        two |= set(f[(f == u).any(axis=1)].ravel())
    assert set(idx[ptr[v] : ptr[v + 1]]) == (one | two) - {v}
    np.testing.assert_allclose(xyz, liver.vertices[idx], atol=1e-4)


def test_correspondences_are_the_exact_nearest_vertex(liver):
    rng = np.random.default_rng(0)
    pts = add_noise(
        simulate_swabs(liver, n_points=5000, coverage=0.4, seed=rng), noise_mm=1.5, seed=rng
    )
    misses, p, idx = _correspond(liver, pts)
    np.testing.assert_array_equal(p, pts)
    d_kd, idx_kd = liver.tree.query(pts)
    d = np.linalg.norm(pts - liver.vertices[idx], axis=1)
    # Same vertex, or one at the same distance (a tie) for all but a handful.
    assert misses == 0
    assert np.mean(d - d_kd > 1e-9) < 1e-3
    assert np.max(d - d_kd) < 0.1


def test_thin_parts_get_a_guess_on_each_sheet(liver):
    grid, pairs = liver.sheet_seed_grid()
    assert len(pairs) > 0 and (grid <= -2).sum() == len(pairs)
    dots = np.einsum("ij,ij->i", liver.normals[pairs[:, 0]], liver.normals[pairs[:, 1]])
    assert np.all(dots < 0)


def test_points_outside_the_grid_band_fall_back_to_the_tree(liver):
    far = liver.centroid_mm + np.array([[0.0, 0.0, 400.0], [300.0, 0.0, 0.0]])
    near = liver.vertices[:3] + 0.2
    misses, _, idx = _correspond(liver, np.vstack([far, near]))
    assert misses == 2 and np.all(idx[:2] == -1) and np.all(idx[2:] >= 0)


def test_cholesky_solve_matches_numpy():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(40, 6))
    H = A.T @ A
    b = rng.normal(size=6)
    np.testing.assert_allclose(_solve_spd6(H, b), np.linalg.solve(H, b), rtol=1e-7)


def _acquisition(model, seed, deg=2.0, shift_mm=2.0):
    rng = np.random.default_rng(seed)
    pts = add_noise(
        simulate_swabs(model, n_points=1000, coverage=0.3, seed=rng), noise_mm=1.0, seed=rng
    )
    T_pm = np.eye(4)
    T_pm[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T_pm[:3, 3] = rng.normal(scale=50.0, size=3)
    meas = pts @ T_pm[:3, :3].T + T_pm[:3, 3]
    axis = rng.normal(size=3)
    dT = np.eye(4)
    dT[:3, :3] = Rotation.from_rotvec(np.deg2rad(deg) * axis / np.linalg.norm(axis)).as_matrix()
    c = model.centroid_mm
    dT[:3, 3] = c - dT[:3, :3] @ c + shift_mm * rng.normal(size=3) / np.sqrt(3)
    return meas, T_pm, dT @ np.linalg.inv(T_pm)


def test_warm_icp_reaches_the_exact_least_squares_optimum(liver, tumour):
    """Same optimum as plain point-to-plane least squares with KD-tree correspondences."""
    # (Seeds whose plain ICP settles; on this coarse mesh some acquisitions cycle between two
    # correspondence sets instead, for either method.)
    for seed in (0, 2, 3):
        meas, T_pm, T_start = _acquisition(liver, seed)
        schedule = WarmIcpSchedule(polish_iterations=10, tol_mm=1e-4)
        st = warm_icp(meas, liver, T_start, kernel_mm=4.0, schedule=schedule)
        ref = robust_icp(
            meas,
            liver.vertices,
            liver.normals,
            liver.tree,
            T_start,
            kernel_mm=np.inf,
            max_residual_mm=4.0,
            max_iterations=60,
            tol_rad=1e-7,
            tol_mm=1e-5,
        )
        assert ref.converged and st.converged
        # The optimum, not just near the truth: tumour position within 5 micrometres.
        assert target_registration_error(st.T, np.linalg.inv(ref.T), tumour)[0] < 5e-3
        assert target_registration_error(st.T, T_pm, tumour)[0] < 0.5


def test_warm_update_far_from_the_last_pose_still_converges(liver, tumour):
    meas, T_pm, T_start = _acquisition(liver, 7, deg=5.0, shift_mm=12.0)
    res = RealTimeRegistrar(liver, T_start, noise_mm=1.0).update(meas)
    assert target_registration_error(res.T_model_points, T_pm, tumour)[0] < 1.0
    assert res.trustworthy, res.reason


def test_knn_means_match_a_kd_tree():
    rng = np.random.default_rng(3)
    strokes = [
        np.c_[np.linspace(0, 80, 300), np.full(300, 6.0 * i), rng.normal(scale=0.5, size=300)]
        for i in range(4)
    ]
    for pts in (rng.normal(size=(800, 3)) * [40.0, 30.0, 3.0], np.vstack(strokes)):
        r = rng.normal(size=len(pts))
        queries = np.arange(0, len(pts), 7, dtype=np.int64)
        _, nb = cKDTree(pts).query(pts[queries], k=9)
        np.testing.assert_allclose(
            knn_mean_residuals(pts, r, queries, 9), r[nb].mean(axis=1), rtol=1e-12
        )
        expected = np.sqrt(np.mean(r[nb].mean(axis=1) ** 2))
        assert systematic_residual(pts, r, max_queries=len(queries)) == pytest.approx(expected)


def _exact_distance(model, points):
    """Distance to the closest point of the whole mesh (Open3D ray-casting scene, float32)."""
    mesh = o3d.t.geometry.TriangleMesh()
    mesh.vertex.positions = o3d.core.Tensor(model.vertices.astype(np.float32))
    mesh.triangle.indices = o3d.core.Tensor(model.faces.astype(np.int32))
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(mesh)
    return scene.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()


def _verdict_distance(model, points):
    r, _, idx = surface_residuals(
        points, model.vertices, model.normals, model.tree, model.spacing_mm
    )
    d = np.linalg.norm(points - model.vertices[idx], axis=1)
    return np.maximum(np.abs(r), d - model.vertex_reach()[idx]), r, idx


def test_verdict_distance_holds_on_a_decimated_surface(demo_phantom_surface, monkeypatch):
    """Good points must not look far from the surface because its triangles are large."""

    def far_fractions(model):
        rng = np.random.default_rng(6)
        pts = add_noise(
            simulate_swabs(model, n_points=2000, coverage=0.3, seed=rng), noise_mm=1.0, seed=rng
        )
        exact = _exact_distance(model, pts)
        ours, _, _ = _verdict_distance(model, pts)
        _, spacing_proxy, _ = surface_residuals(
            pts, model.vertices, model.normals, model.tree, model.spacing_mm
        )
        return np.mean(exact > 3.0), np.mean(ours > 3.0), np.mean(spacing_proxy > 3.0)

    exact, ours, _ = far_fractions(prepare_surface(demo_phantom_surface))
    assert abs(ours - exact) <= 0.005
    # Without splitting the slivers, vertex distances make good points look far.
    monkeypatch.setattr("registration.model.LONGEST_EDGE_SPACINGS", np.inf)
    exact, ours, spacing_proxy = far_fractions(prepare_surface(demo_phantom_surface))
    assert spacing_proxy > exact + 0.1 and ours > exact + 0.03


def test_compiled_fit_statistics_match_the_array_version(liver):
    rng = np.random.default_rng(5)
    pts = add_noise(
        simulate_swabs(liver, n_points=800, coverage=0.3, seed=rng), noise_mm=1.0, seed=rng
    )
    pts[:80] += rng.normal(scale=15.0, size=(80, 3))  # some outliers
    R = Rotation.from_rotvec([0.01, -0.02, 0.005]).as_matrix()  # about the centroid
    t = liver.centroid_mm - R @ liver.centroid_mm + np.array([0.5, -0.3, 0.2])
    moved = pts @ R.T + t
    r, _, idx = surface_residuals(
        moved, liver.vertices, liver.normals, liver.tree, liver.spacing_mm
    )
    dist, r, idx = _verdict_distance(liver, moved)
    thr = 3.0
    p_in = np.empty_like(pts)
    r_in = np.empty(len(pts))
    n, sum_d2, A = inlier_statistics(
        pts,
        R,
        t,
        r,
        idx.astype(np.int64),
        liver.vertices,
        liver.normals,
        liver.vertex_reach(),
        thr,
        p_in,
        r_in,
    )
    inl = dist < thr
    assert n == inl.sum() and 500 < n < 800
    np.testing.assert_allclose(p_in[:n], moved[inl], atol=1e-9)
    np.testing.assert_array_equal(r_in[:n], r[inl])
    assert sum_d2 == pytest.approx(np.sum(dist[inl] ** 2), rel=1e-9)
    cond, weakest, motion = pose_conditioning(moved[inl], liver.normals[idx[inl]])
    cond2, weakest2, motion2 = conditioning_of(A, n)
    assert cond2 == pytest.approx(cond, rel=1e-9)
    assert weakest2 == pytest.approx(weakest, rel=1e-9)
    assert abs(abs(motion @ motion2) - 1.0) < 1e-9


def test_a_huge_surface_gets_coarser_voxels_not_an_out_of_memory_grid():
    """A surface in micrometres read as millimetres spans metres: the grid stays bounded."""
    import pyvista as pv

    from registration.model import MAX_GRID_VOXELS

    model = prepare_surface(pv.Sphere(radius=40_000.0, theta_resolution=60, phi_resolution=60))
    _, h, grid = model.closest_vertex_grid()
    assert grid.size <= 1.05 * MAX_GRID_VOXELS and h > 1.0
    rng = np.random.default_rng(0)
    pts = model.vertices[rng.choice(len(model.vertices), 400, replace=False)]
    start = np.eye(4)
    start[:3, 3] = [30.0, -20.0, 10.0]
    st = warm_icp(pts, model, start, kernel_mm=400.0)
    # A sphere pins the translation only (its rotation is free): 37 mm off -> back to < 0.1 mm.
    assert np.linalg.norm(st.T[:3, 3]) < 0.1
