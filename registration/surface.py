"""Surface registration of sparse intraoperative points to an organ model.

Pipeline: drop non-finite points; if no prior pose, FPFH features + RANSAC (Open3D, seeded),
refined by robust ICP and kept if the verdict accepts it, else a deterministic multi-start global
search (FFT-correlation starts, coarse robust ICP on a decimated model, the best few refined on
the full model); then robust point-to-plane ICP (:mod:`registration.icp`); then fit quality,
conditioning and a reliability verdict (:mod:`registration.reliability`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from registration._points import apply_transform, as_transform, clean_points, rms_distance_mm
from registration.errors import RegistrationError
from registration.fit import assess_fit
from registration.icp import IcpState, robust_icp, surface_residuals
from registration.model import SurfaceModel
from registration.reliability import ReliabilityCriteria
from registration.result import InitAttempt, InitMethod, SurfaceRegistrationResult

__all__ = [
    "FeaturePose",
    "GlobalSearchConfig",
    "SurfaceRegistrationResult",
    "register_surface",
    "global_initialise",
    "global_candidates",
    "PoseCandidate",
    "feature_initialise",
    "MIN_POINTS",
]

#: Neighbourhoods averaged by the systematic-residual check of a real-time update.
REALTIME_SYSTEMATIC_QUERIES = 150

#: Fewest finite points for which a surface registration is attempted at all.
MIN_POINTS = 6


@dataclasses.dataclass(frozen=True)
class GlobalSearchConfig:
    """Effort of the multi-start global search (:func:`global_initialise`).

    Attributes
    ----------
    n_starts : int, optional
        Start rotations per round (default 120 over all orientations, 40 within a cone).
    n_refine : int
        Distinct candidates refined on the full model.
    n_icp : int
        Starts (best by FFT score) that run the coarse ICP, per round.
    max_rounds : int
        Rounds of fresh starts at most; a round runs only while no pose so far has 95 % of the
        points on the surface.
    subsample : int
        Points of the coarse search (a seeded random subset).
    """

    n_starts: int | None = None
    n_refine: int = 4
    n_icp: int = 24
    max_rounds: int = 4
    subsample: int = 150


def _score(points: NDArray, model: SurfaceModel, T: NDArray, thr: float, coarse: bool) -> tuple:
    if coarse:
        idx = model.coarse_index
        r, dist, _ = surface_residuals(
            apply_transform(T, points),
            model.vertices[idx],
            model.normals[idx],
            model.coarse_tree,
            2.0 * model.spacing_mm,
        )
    else:
        r, dist, _ = surface_residuals(
            apply_transform(T, points),
            model.vertices,
            model.normals,
            model.tree,
            model.spacing_mm,
        )
    inl = dist < thr
    frac = float(inl.mean())
    rms = float(np.sqrt(np.mean(dist[inl] ** 2))) if inl.any() else np.inf
    # Truncated quadratic cost: inliers cost (d/thr)^2, outliers 1.
    cost = float(np.mean(np.minimum(dist / thr, 1.0) ** 2))
    return cost, frac, rms


def _distance_grid(model: SurfaceModel, h: float, n: int, pad_lo: float, tau: float) -> tuple:
    """Truncated squared-distance field of the model on an ``n^3`` grid (cached per model)."""
    key = ("dgrid", round(h, 3), n, round(pad_lo, 3), round(tau, 3))
    if key not in model._cache:
        lo = model.vertices.min(axis=0) - pad_lo
        ax = lo[:, None] + h * (np.arange(n) + 0.5)[None, :]
        g = np.stack(np.meshgrid(ax[0], ax[1], ax[2], indexing="ij"), axis=-1).reshape(-1, 3)
        d, _ = model.tree.query(g, k=1, distance_upper_bound=tau)
        cost = np.minimum(d / tau, 1.0) ** 2
        model._cache[key] = (lo, sfft.rfftn(cost.reshape(n, n, n), workers=1))
    return model._cache[key]


def _fft_translations(
    model: SurfaceModel, pts: NDArray, rots: NDArray, noise_mm: float, n: int = 64
) -> list[tuple[float, NDArray]]:
    """Best translation for each rotation by exhaustive FFT correlation.

    The points are correlated with the model's truncated distance field, as in FFT docking
    (Katchalski-Katzir et al., PNAS 89, 2195-2199, 1992).
    """
    c = pts.mean(axis=0)
    diam = 2.0 * float(np.max(np.linalg.norm(pts - c, axis=1)))
    ext = float(np.max(np.ptp(model.vertices, axis=0)))
    h = (ext + diam) / (n - 4)
    h = float(np.ceil(h))  # quantise so the cached field is reused across similar patches
    tau = max(2.0 * h, 3.0 * noise_mm)
    pad_lo = 0.5 * (n * h - ext)
    lo, D_hat = _distance_grid(model, h, n, pad_lo, tau)
    out = []
    for R in rots:
        x = (pts - c) @ R.T
        xmin = x.min(axis=0)
        idx = np.minimum(((x - xmin) / h).astype(np.int64), n - 1)
        flat = np.ravel_multi_index(idx.T, (n, n, n))
        P = np.bincount(flat, minlength=n**3).reshape(n, n, n).astype(np.float64)
        corr = sfft.irfftn(np.conj(sfft.rfftn(P, workers=1)) * D_hat, s=(n, n, n), workers=1)
        s = np.array(np.unravel_index(int(np.argmin(corr)), corr.shape), dtype=np.float64)
        t = lo + s * h - xmin - R @ c
        out.append((float(corr.min()) / len(pts), t))
    return out


def _start_rotations(
    rng: np.random.Generator, n: int, R_prior: NDArray | None, max_deg: float | None
) -> NDArray:
    if R_prior is None or max_deg is None or max_deg >= 180.0:
        rots = Rotation.random(n, random_state=rng).as_matrix()
        if R_prior is not None:
            rots[0] = R_prior
        return rots
    # Uniform in a ball of rotation vectors of radius max_deg about the prior.
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    ang = np.deg2rad(max_deg) * rng.random(n) ** (1.0 / 3.0)
    ang[0] = 0.0
    rots = Rotation.from_rotvec(axes * ang[:, None]).as_matrix()
    return rots @ R_prior


def global_initialise(
    points: ArrayLike,
    model: SurfaceModel,
    *,
    seed: int = 0,
    T_prior: ArrayLike | None = None,
    max_rotation_deg: float | None = None,
    noise_mm: float = 1.0,
    config: GlobalSearchConfig | None = None,
) -> tuple[NDArray[np.float64], float]:
    """Deterministic multi-start global pose search (no prior pose needed).

    The best of :func:`global_candidates`, and how far the best competing distinct pose of
    near-equal score lies from it.

    Parameters
    ----------
    points, model, seed, T_prior, max_rotation_deg, noise_mm, config
        As :func:`global_candidates`.

    Returns
    -------
    T_model_points : numpy.ndarray, shape (4, 4)
    runner_up_separation_mm : float
        RMS distance between the points placed by the best pose and by the best competing distinct
        pose whose score is within 10 % (``inf`` when there is none), mm.
    """
    pts = np.asarray(points, dtype=np.float64)
    refined = global_candidates(
        pts, model, seed=seed, T_prior=T_prior, max_rotation_deg=max_rotation_deg,
        noise_mm=noise_mm, config=config,
    )  # fmt: skip
    return refined[0].T_model_points, runner_up_separation(pts, model, refined, noise_mm)


def runner_up_separation(
    points: NDArray[np.float64], model: SurfaceModel, refined: list[PoseCandidate], noise_mm: float
) -> float:
    """How far the nearest near-equal competitor of the best candidate lies from it, mm.

    RMS distance between the points placed by the best candidate and by the nearest distinct
    one (placing them more than the search's inlier threshold away) that scores within 10 % of
    it; ``inf`` when there is none.
    """
    thr = max(3.0 * noise_mm, 0.05 * model.radius_mm)
    best = refined[0]
    sep = np.inf
    placed = apply_transform(best.T_model_points, points)
    for c in refined[1:]:
        moved = apply_transform(c.T_model_points, points)
        d = rms_distance_mm(placed, moved)
        if d > thr and c.cost <= 1.1 * best.cost + 1e-3:
            sep = min(sep, d)
    return sep


@dataclasses.dataclass(frozen=True)
class PoseCandidate:
    """A refined pose of the global search.

    Attributes
    ----------
    cost : float
        Truncated-quadratic score of the points at the pose (lower is better), mm^2.
    inlier_fraction : float
        Points within the search's inlier threshold of the surface, in [0, 1].
    T_model_points : numpy.ndarray, shape (4, 4)
        The pose; translation in mm.
    """

    cost: float
    inlier_fraction: float
    T_model_points: NDArray[np.float64]


def global_candidates(
    points: ArrayLike,
    model: SurfaceModel,
    *,
    seed: int = 0,
    T_prior: ArrayLike | None = None,
    max_rotation_deg: float | None = None,
    noise_mm: float = 1.0,
    config: GlobalSearchConfig | None = None,
) -> list[PoseCandidate]:
    """The distinct refined poses of the multi-start global search, best score first.

    Starts: rounds of ``config.n_starts`` rotations drawn (seeded) uniformly over SO(3), or
    uniformly within ``max_rotation_deg`` of the rotation of ``T_prior``; each rotation gets the
    best translation by FFT correlation with the model's distance field. The best starts run a
    short annealed robust point-to-plane ICP on a subsample against the decimated model; the
    ``config.n_refine`` best distinct poses of each round are refined on the full model and
    scored (truncated quadratic).

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Finite points in their own space, mm.
    model : SurfaceModel
        Prepared target.
    seed : int, keyword-only
        Seed: the same seed and inputs give the same poses.
    T_prior : array_like, shape (4, 4), optional
        Approximate ``T_model_points`` (only its rotation is trusted when ``max_rotation_deg``).
    max_rotation_deg : float, optional
        Largest rotation error of the prior to search, degrees (``None``: all orientations).
    noise_mm : float, keyword-only
        Expected localisation noise (per-axis standard deviation), mm.
    config : GlobalSearchConfig, optional
        Search effort (default :class:`GlobalSearchConfig`).

    Returns
    -------
    list of PoseCandidate
        At least one; sorted by cost.
    """
    cfg = config or GlobalSearchConfig()
    pts = np.asarray(points, dtype=np.float64)
    rng = np.random.default_rng(seed)
    sub = pts[rng.choice(len(pts), size=min(len(pts), cfg.subsample), replace=False)]
    cone = max_rotation_deg is not None and max_rotation_deg < 180.0 and T_prior is not None
    n_starts = cfg.n_starts if cfg.n_starts is not None else (40 if cone else 120)
    R_prior = None if T_prior is None else as_transform(T_prior, name="T_prior")[:3, :3]
    thr = max(3.0 * noise_mm, 0.05 * model.radius_mm)
    refined: list[tuple[float, float, NDArray]] = []
    # Multi-start where it pays: further rounds of fresh starts only while no candidate has
    # nearly all points on the surface (most good cases stop after the first round).
    for _ in range(cfg.max_rounds):
        rots = _start_rotations(rng, n_starts, R_prior, max_rotation_deg if cone else None)
        refined += _search_round(model, pts, sub, rots, thr=thr, noise_mm=noise_mm, config=cfg)
        refined.sort(key=lambda c: c[0])
        if refined[0][1] >= 0.95:
            break
    return [PoseCandidate(float(c), float(f), T) for c, f, T in refined]


def _search_round(
    model: SurfaceModel,
    pts: NDArray,
    sub: NDArray,
    rots: NDArray,
    *,
    thr: float,
    noise_mm: float,
    config: GlobalSearchConfig,
) -> list[tuple[float, float, NDArray]]:
    """One round of the global search; returns ``(cost, inlier_fraction, T)`` refined poses."""
    scale = model.radius_mm
    cidx = model.coarse_index
    cv, cn = model.vertices[cidx], model.normals[cidx]
    placed0 = _fft_translations(model, sub, rots, noise_mm)
    order = np.argsort([c for c, _ in placed0], kind="stable")[: config.n_icp]
    candidates = []
    for i in order:
        T0 = np.eye(4)
        T0[:3, :3] = rots[i]
        T0[:3, 3] = placed0[i][1]
        st = robust_icp(
            sub,
            cv,
            cn,
            model.coarse_tree,
            T0,
            kernel_mm=(0.1 * scale, thr),
            max_iterations=20,
            tol_rad=1e-3,
            tol_mm=1e-2,
        )
        candidates.append((_score(sub, model, st.T, thr, coarse=True)[0], st.T))
    candidates.sort(key=lambda c: c[0])
    # Keep distinct poses (points moved by > thr between them).
    chosen: list[NDArray] = []
    for _, T in candidates:
        placed = apply_transform(T, sub)
        if all(rms_distance_mm(placed, apply_transform(U, sub)) > thr for U in chosen):
            chosen.append(T)
        if len(chosen) >= config.n_refine:
            break
    refined = []
    for T in chosen:
        st = robust_icp(
            pts,
            model.vertices,
            model.normals,
            model.tree,
            T,
            kernel_mm=(thr, max(2.0 * noise_mm, model.spacing_mm / 4)),
            max_iterations=20,
        )
        cost, frac, _ = _score(pts, model, st.T, thr, coarse=False)
        refined.append((cost, frac, st.T))
    return refined


@dataclasses.dataclass(frozen=True)
class FeaturePose:
    """A pose found by :func:`feature_initialise`.

    Attributes
    ----------
    T_model_points : numpy.ndarray, shape (4, 4)
        Maps the points into model space; translation in mm.
    fitness : float
        RANSAC fitness: fraction of downsampled points with a correspondence, in [0, 1].
    inlier_rmse_mm : float
        RMS distance of those correspondences, mm.
    voxel_mm : float
        Downsampling voxel used, mm.
    """

    T_model_points: NDArray[np.float64]
    fitness: float
    inlier_rmse_mm: float
    voxel_mm: float


def feature_initialise(
    points: ArrayLike,
    model: SurfaceModel,
    *,
    seed: int = 0,
    voxel_mm: float | None = None,
    max_iterations: int = 100_000,
) -> FeaturePose | None:
    """Global pose from FPFH features and RANSAC (Open3D), deterministic for a given seed.

    The model's features are computed once per model (:meth:`SurfaceModel.fpfh_features`), the
    points' features per call: the points are downsampled on the same voxel, their normals
    estimated and oriented away from the patch centroid (outward on a convex patch), and
    ``registration_ransac_based_on_feature_matching`` runs with edge-length and distance
    correspondence checkers after ``open3d.utility.random.seed(seed)``, on one thread (Open3D's
    thread limit is process-wide: it is restored afterwards, so concurrent Open3D calls from
    other Python threads briefly share that limit).

    Sparse swab points over a third of the organ give weak FPFH features: on the real liver this
    pose is within the basin of ICP for only about half of the patches
    (``benchmarks/registration_init_success.py``), so :func:`register_surface` checks the refined
    fit and falls back to the multi-start search.

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Finite points in their own space, mm.
    model : SurfaceModel
        Prepared target.
    seed : int, keyword-only
        Seed of Open3D's RANSAC.
    voxel_mm : float, optional
        Downsampling voxel, mm (default :attr:`SurfaceModel.feature_voxel_mm`).
    max_iterations : int, keyword-only
        RANSAC iterations at most.

    Returns
    -------
    FeaturePose or None
        ``None`` when the downsampled points are too few to describe (< 20).
    """
    import open3d as o3d

    reg = o3d.pipelines.registration
    h = model.feature_voxel_mm if voxel_mm is None else float(voxel_mm)
    target, target_feat = model.fpfh_features(h)
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    down = pc.voxel_down_sample(h)
    if len(down.points) < 20:
        return None
    down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2.5 * h, max_nn=30))
    P, N = np.asarray(down.points), np.asarray(down.normals)
    if np.einsum("ij,ij->", N, P - P.mean(axis=0)) < 0:
        down.normals = o3d.utility.Vector3dVector(-N)
    feat = reg.compute_fpfh_feature(
        down, o3d.geometry.KDTreeSearchParamHybrid(radius=5.0 * h, max_nn=100)
    )
    level = o3d.utility.get_verbosity_level()
    threads = o3d.utility.get_max_threads()
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    # One thread: Open3D's parallel RANSAC (TBB) draws from the seeded generator in a
    # scheduling-dependent order, so with several threads the same seed can give another pose.
    o3d.utility.set_max_threads(1)
    try:
        o3d.utility.random.seed(int(seed) % (2**31))
        out = reg.registration_ransac_based_on_feature_matching(
            down,
            target,
            feat,
            target_feat,
            False,
            2.0 * h,
            reg.TransformationEstimationPointToPoint(False),
            3,
            [
                reg.CorrespondenceCheckerBasedOnEdgeLength(0.9),
                reg.CorrespondenceCheckerBasedOnDistance(2.0 * h),
            ],
            reg.RANSACConvergenceCriteria(int(max_iterations), 0.999),
        )
    finally:
        o3d.utility.set_max_threads(threads)
        o3d.utility.set_verbosity_level(level)
    return FeaturePose(
        T_model_points=np.array(out.transformation, dtype=np.float64),
        fitness=float(out.fitness),
        inlier_rmse_mm=float(out.inlier_rmse),
        voxel_mm=h,
    )


def register_surface(
    points: ArrayLike,
    model: SurfaceModel,
    *,
    T_init: ArrayLike | None = None,
    seed: int = 0,
    noise_mm: float = 1.0,
    max_rotation_deg: float | None = None,
    max_iterations: int = 30,
    criteria: ReliabilityCriteria | None = None,
    init: Literal["auto", "multi_start"] = "auto",
) -> SurfaceRegistrationResult:
    """Register sparse points (pointer swabs, scan patch) to an organ surface.

    Initialisation (``init="auto"``), cheapest first, each accepted only if the refined fit
    passes the reliability verdict:

    - no prior pose: FPFH features + RANSAC (:func:`feature_initialise`), then robust ICP;
      if the verdict rejects the fit, the seeded multi-start search (:func:`global_initialise`);
    - a prior pose with ``max_rotation_deg``: robust ICP from the prior itself; if the verdict
      rejects it, the multi-start search within that cone;
    - a prior pose alone: robust ICP from it.

    ``init="multi_start"`` skips the cheap first attempts. ``result.init`` says which path gave
    the pose (:class:`registration.result.InitMethod`), ``result.attempts`` what was tried first.

    Parameters
    ----------
    points : array_like, shape (N, 3)
        Measured points in their own space (e.g. tracker), mm. NaN/infinite rows are dropped and
        counted.
    model : SurfaceModel
        Target prepared once by :func:`registration.model.prepare_surface`.
    T_init : array_like, shape (4, 4), optional
        Prior ``T_model_points``. Without it a global search runs; with it and
        ``max_rotation_deg`` a global search restricted to that cone runs; with it alone the
        refinement is warm-started from it.
    seed : int, keyword-only
        Seed of the global search.
    noise_mm : float, keyword-only
        Expected localisation noise (per-axis standard deviation), mm; sets the robust kernel and
        the inlier threshold.
    max_rotation_deg : float, optional
        Orientation uncertainty of ``T_init``, degrees.
    max_iterations : int
        ICP iterations at most in the final refinement.
    criteria : ReliabilityCriteria, optional
        Verdict thresholds.
    init : {"auto", "multi_start"}, keyword-only
        Initialisation strategy (see above).

    Returns
    -------
    SurfaceRegistrationResult

    Raises
    ------
    registration._points.InsufficientPointsError
        Fewer than :data:`MIN_POINTS` finite points.
    registration.errors.RegistrationError
        A non-positive ``noise_mm`` or an unknown ``init``.
    """
    t0 = time.perf_counter()
    pts, keep = clean_points(points, min_points=MIN_POINTS)
    if not np.isfinite(noise_mm) or noise_mm <= 0:
        raise RegistrationError(f"noise_mm must be a positive number, got {noise_mm!r}")
    if init not in ("auto", "multi_start"):
        raise RegistrationError(f"init must be 'auto' or 'multi_start', got {init!r}")
    T_prior = None if T_init is None else as_transform(T_init, name="T_init")
    search = T_prior is None or max_rotation_deg is not None
    k_end = max(2.0 * noise_mm, model.spacing_mm / 4)

    def finish(
        st: IcpState, how: InitMethod, sep: float, tried: tuple
    ) -> SurfaceRegistrationResult:
        fit = assess_fit(
            pts, model, st.T, noise_mm=noise_mm, criteria=criteria, runner_up_separation_mm=sep
        )
        return SurfaceRegistrationResult.from_fit(
            fit,
            st.T,
            n_points_used=len(pts),
            n_points_dropped=int((~keep).sum()),
            time_ms=(time.perf_counter() - t0) * 1e3,
            iterations=st.iterations,
            global_search=search,
            init=how,
            attempts=tried,
        )

    attempts: tuple[InitAttempt, ...] = ()
    if search and init == "auto":
        # Cheap first attempt: features + RANSAC without a prior, the prior itself with one.
        how, T_first, fitness = _cheap_start(pts, model, T_prior, seed=seed)
        res = None
        if T_first is not None:
            kernel = (max(0.1 * model.radius_mm, 2.0 * k_end), k_end)
            st = _refine(pts, model, T_first, kernel, max(max_iterations, 30))
            res = finish(st, how, np.inf, ())
        attempts = (InitAttempt(how, None if res is None else res.verdict, fitness),)
        if res is not None and res.trustworthy:
            return dataclasses.replace(res, attempts=attempts)
    sep = np.inf
    T0 = T_prior
    found: list[PoseCandidate] = []
    if search:
        found = global_candidates(
            pts, model, seed=seed, T_prior=T_prior, max_rotation_deg=max_rotation_deg,
            noise_mm=noise_mm,
        )  # fmt: skip
        T0, sep = found[0].T_model_points, runner_up_separation(pts, model, found, noise_mm)
    st = _refine(pts, model, T0, (2.0 * k_end, k_end) if search else k_end, max_iterations)
    res = finish(st, InitMethod.MULTI_START if search else InitMethod.WARM, sep, attempts)
    return dataclasses.replace(res, candidate_poses=tuple(c.T_model_points for c in found))


def _cheap_start(
    pts: NDArray, model: SurfaceModel, T_prior: NDArray | None, *, seed: int
) -> tuple[InitMethod, NDArray | None, float]:
    """The cheap first start: the prior if there is one, else features (``None``: none found)."""
    if T_prior is not None:
        return InitMethod.PRIOR, T_prior, float("nan")
    found = feature_initialise(pts, model, seed=seed)
    if found is None:
        return InitMethod.FEATURES, None, float("nan")
    return InitMethod.FEATURES, found.T_model_points, found.fitness


def _refine(
    pts: NDArray, model: SurfaceModel, T0: NDArray, kernel_mm: float | tuple, iterations: int
) -> IcpState:
    """Robust point-to-plane ICP of ``pts`` on the full model from ``T0``."""
    return robust_icp(
        pts,
        model.vertices,
        model.normals,
        model.tree,
        T0,
        kernel_mm=kernel_mm,
        max_iterations=iterations,
    )
