"""The deformable twin: a posed, deformed organ kept in sync with sensor points.

``Twin(basis).update(points)`` runs, on the first call, a rigid global registration of the
points to the undeformed surface (:func:`registration.register_surface`) and then the
assimilation (:mod:`surgplan.twin.assimilation`) from a broad pose prior and the amplitude
prior; later calls start from the previous posterior plus process noise
(:class:`~surgplan.twin.noise.ProcessNoise`). After every update: target estimates with their
95 % radius (:mod:`surgplan.twin.targets`), the verdict (:mod:`surgplan.twin.verdict`, on
the most recent ``verdict_window`` points of all batches) and where to measure next
(:mod:`surgplan.twin.recommend`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration import ReliabilityCriteria, Verdict, register_surface
from registration import SurfaceModel as _SurfaceModel
from surgplan.twin.assimilation import SLIP_SPACING, assimilate
from surgplan.twin.basis import DeformationBasis
from surgplan.twin.errors import PointsError, TwinError
from surgplan.twin.fit import deformed_fit_verdict, surface_distance_mm
from surgplan.twin.noise import (
    ProcessNoise,
    observation_covariance,
    sensor_covariance,
    systematic_noise_mm,
)
from surgplan.twin.recommend import ANTERIOR_LPS, candidate_patches, expected_radii
from surgplan.twin.start import StartCheck, check_start
from surgplan.twin.state import Recommendation, TwinState
from surgplan.twin.surface import Foot, build_twin_surface
from surgplan.twin.targets import (
    estimate_targets,
    per_vertex_modes,
    rigid_deformation_covariance,
    target_jacobians,
)
from surgplan.twin.units import check_point_units
from surgplan.twin.verdict import (
    TwinCheck,
    TwinFailedCheck,
    combine_verdicts,
    deformation_check,
    with_systematic_noise,
)

__all__ = ["Twin"]


def _clean(points: ArrayLike) -> tuple[NDArray[np.float64], int]:
    """Finite rows of ``points`` (N, 3) and how many were dropped; errors name the problem."""
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PointsError(f"points must be numeric (N, 3) coordinates in mm: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise PointsError(f"points must have shape (N, 3), got {arr.shape}")
    finite = np.isfinite(arr)
    if finite.all():
        return arr, 0
    keep = finite.all(axis=1)
    if not keep.any():
        raise PointsError(f"all {len(arr)} points are NaN or infinite: nothing to assimilate")
    return arr[keep], int((~keep).sum())


def _foot_tail(foot: Foot, n: int) -> Foot:
    """The last ``n`` correspondences of ``foot``."""
    m = len(foot.face)
    return Foot(face=foot.face[m - n :], beta=foot.beta[m - n :], vertex=foot.vertex[m - n :])


class Twin:
    """A deformable (or rigid) twin of one organ.

    Parameters
    ----------
    basis : DeformationBasis
        Surface, modes, targets and their model error.
    mode : {"deformable", "rigid"}, keyword-only
        ``"rigid"`` freezes the amplitudes at zero (``k = 0``).
    noise_mm : float or (3,), keyword-only
        Sensor localisation noise, per-axis standard deviation (tracker axes), mm.
    process_noise : ProcessNoise, keyword-only
        Organ motion between batches.
    surface : registration.SurfaceModel, optional
        The prepared surface the basis was built on (default: prepared from the basis).
    T_tracker_model : array_like (4, 4), optional
        Known initial pose: the first update skips the rigid global search.
    initial_rotation_deg, initial_translation_mm : float, keyword-only
        Standard deviations of the first update's pose prior about the initial pose.
    criteria : registration.ReliabilityCriteria, optional
        Verdict thresholds.
    verdict_window : int, keyword-only
        Most recent points (all batches) the verdict is computed on.
    recommend : bool, keyword-only
        Compute the recommendation in :meth:`update` (``False``: never; :meth:`recommendation`
        still computes one on request).
    recommend_every : int, keyword-only
        Compute it on every ``recommend_every``-th update only (the first included;
        ``state.recommendation`` is ``None`` on the others). It costs about as much as the
        assimilation itself (every candidate patch's Woodbury update), and where to swab next
        changes on the scale of batches, not of tracker frames: a live loop at tracker rate sets
        this to the frames per second, or calls :meth:`recommendation` when the viewer asks.
    recommend_target : str, optional
        Target the recommendation shrinks (default the first); ``recommend=False`` disables.
    recommend_points : int, keyword-only
        Points per acquisition the recommendation assumes.
    view_direction : array_like (3,), keyword-only
        Direction towards the surgeon in model (CT, LPS) space.
    patch_radius_mm : float, keyword-only
        Candidate patch radius, mm.
    seed : int, keyword-only
        Seed of the rigid global search.
    model_noise_mm : float, optional, keyword-only
        Deformable mode: per-axis standard deviation of the reduced model's surface
        discrepancy, added to the sensor noise in the observation model and the verdict
        (:mod:`surgplan.twin.noise`); default ``basis.meta["surface_discrepancy_mm"]``, else 0.
        Rigid mode ignores it (its residuals hold the whole deformation: the rigid verdict
        refuses a deformed organ, as registration's).
    rigid_deformation : {"fitted", "prior", "none"}, keyword-only
        Rigid mode: the target covariance term for the deformation the rigid twin leaves out
        (:func:`surgplan.twin.targets.rigid_deformation_covariance`): ``"fitted"`` the amplitude
        prior through the targets' modes less what the rigid pose absorbs, ``"prior"`` the
        whole prior ``Phi_t A Phi_t^T``, ``"none"`` no term. Deformable mode ignores it.
    explained_inliers : bool, keyword-only
        The rigid fit's shape failures are cleared only when the deformed fit's inlier
        fraction is what Gaussian residuals alone give (:func:`surgplan.twin.verdict.
        explained_inlier_floor`); ``False``: registration's inlier fraction suffices.
    start_search : bool, keyword-only
        Deformable mode with the pose unknown and an untrustworthy rigid fit: the first update
        also runs the assimilation from every distinct candidate of the rigid global search,
        and the verdict refuses the fit when another one ends as good and far apart
        (:mod:`surgplan.twin.start`; :attr:`start_check` has the scores). ``False``: no
        such check.
    """

    def __init__(
        self,
        basis: DeformationBasis,
        *,
        mode: Literal["deformable", "rigid"] = "deformable",
        noise_mm: float | ArrayLike = 1.0,
        process_noise: ProcessNoise | None = None,
        surface: _SurfaceModel | None = None,
        T_tracker_model: ArrayLike | None = None,
        initial_rotation_deg: float = 5.0,
        initial_translation_mm: float = 10.0,
        criteria: ReliabilityCriteria | None = None,
        verdict_window: int = 2000,
        recommend: bool = True,
        recommend_every: int = 1,
        recommend_target: str | None = None,
        recommend_points: int = 100,
        view_direction: ArrayLike = ANTERIOR_LPS,
        patch_radius_mm: float = 20.0,
        seed: int = 0,
        model_noise_mm: float | None = None,
        rigid_deformation: Literal["fitted", "prior", "none"] = "fitted",
        explained_inliers: bool = True,
        start_search: bool = True,
    ) -> None:
        if mode not in ("deformable", "rigid"):
            raise TwinError(f"mode must be 'deformable' or 'rigid', got {mode!r}")
        self.mode = mode
        self.full_basis = basis
        self.basis = basis.rigid() if mode == "rigid" else basis
        self._extent_mm = self.basis.extent_mm  # used by every update (a ptp of the surface)
        self.surface = build_twin_surface(self.basis, surface)
        self.noise_cov = sensor_covariance(noise_mm)
        if rigid_deformation not in ("fitted", "prior", "none"):
            raise TwinError(
                f"rigid_deformation must be 'fitted', 'prior' or 'none', got {rigid_deformation!r}"
            )
        self.rigid_deformation = rigid_deformation
        self.explained_inliers = bool(explained_inliers)
        if mode == "rigid":
            self.model_noise_mm = 0.0
        else:
            m = model_noise_mm
            if m is None:
                m = basis.meta.get("surface_discrepancy_mm", 0.0)
            self.model_noise_mm = float(m)
            if not (math.isfinite(self.model_noise_mm) and self.model_noise_mm >= 0):
                raise TwinError(f"model_noise_mm must be finite and >= 0, got {model_noise_mm!r}")
        self._unmodelled: NDArray[np.float64] | None = None
        self._full_modes_v: NDArray[np.float64] | None = None  # rigid mode, made on first use
        self.process_noise = process_noise or ProcessNoise()
        self.criteria = criteria
        self.verdict_window = int(verdict_window)
        self.seed = seed
        self.centre_mm = self.basis.centroid_mm
        self._pose0 = (math.radians(initial_rotation_deg), float(initial_translation_mm))
        self._T_model_tracker: NDArray[np.float64] | None = None
        self.start_search = bool(start_search)
        self.start_check: StartCheck | None = None  # set by a searched deformable start
        self._start_candidates: tuple[NDArray[np.float64], ...] = ()
        self._start_ambiguity: TwinFailedCheck | None = None  # see _verdict
        self._ambiguous_until = 0
        if T_tracker_model is not None:
            self._T_model_tracker = np.linalg.inv(np.asarray(T_tracker_model, np.float64))
        self._a = np.zeros(self.basis.n_modes)
        self._P: NDArray[np.float64] | None = None
        self._rigid_verdict: Verdict | None = None
        self._window = np.zeros((0, 3))
        self._window_feet: Foot | None = None
        self._window_ref = np.zeros((0, 3))
        self._n_points = 0
        self.state: TwinState | None = None
        if int(recommend_every) < 1:
            raise TwinError(f"recommend_every must be >= 1, got {recommend_every!r}")
        self._recommend_every = int(recommend_every)
        self._n_updates = 0
        self._can_recommend = bool(self.basis.target_names)
        self._recommend = recommend and self._can_recommend
        self._rec_target = recommend_target or (basis.target_names or ("",))[0]
        if self._recommend and self._rec_target not in self.basis.target_names:
            raise TwinError(
                f"recommend_target {self._rec_target!r} is not a target: {self.basis.target_names}"
            )
        self._rec_points = int(recommend_points)
        self._patch_args = (view_direction, patch_radius_mm)
        self._patches_built: Any = None  # built once, on first use (:attr:`patches`)
        if self._recommend:
            self._patches_built = self.patches

    def _prior(self, points: NDArray[np.float64], noise_iso: float) -> NDArray[np.float64]:
        """Prior covariance of this update (runs the rigid initialisation the first time)."""
        if self._P is not None:
            return self._P + self.process_noise.covariance(self.basis.prior_std)
        if self._T_model_tracker is None:
            res = register_surface(
                points, self.surface.model, seed=self.seed, noise_mm=noise_iso,
                criteria=self.criteria,
            )  # fmt: skip
            self._T_model_tracker = res.T_model_points
            self._rigid_verdict = res.verdict
            if not res.trustworthy:
                self._start_candidates = res.candidate_poses
        rot, trans = self._pose0
        return np.diag(
            np.concatenate([np.full(3, rot**2), np.full(3, trans**2), self.basis.prior_std**2])
        )

    def update(self, points: ArrayLike, noise_mm: float | ArrayLike | None = None) -> TwinState:
        """Assimilate one batch of tracker points and return the new state.

        Parameters
        ----------
        points : array_like, shape (N, 3)
            Sensor points in tracker space, mm; NaN/infinite rows are dropped and counted.
        noise_mm : float or (3,), optional
            This batch's localisation noise (default the twin's), mm.

        Returns
        -------
        TwinState

        Raises
        ------
        PointsError
            Wrong shape, or every point NaN.
        WrongUnitsError
            Points whose extent says they are not in mm.
        """
        t0 = time.perf_counter()
        pts, dropped = _clean(points)
        first = self._P is None
        check_point_units(pts, self._extent_mm, lower=first)
        sensor = self.noise_cov if noise_mm is None else sensor_covariance(noise_mm)
        sensor_iso = float(np.sqrt(np.trace(sensor) / 3.0))
        cov = observation_covariance(sensor, self.model_noise_mm)
        noise_iso = float(np.sqrt(np.trace(cov) / 3.0))
        if first and len(pts) < 6:
            raise PointsError(f"the first batch needs at least 6 finite points, got {len(pts)}")
        P = self._prior(pts, sensor_iso)
        if first and self._start_candidates and self.mode == "deformable" and self.start_search:
            self._check_start(pts, P, cov, noise_iso)
        res = assimilate(
            pts, self.surface, self.centre_mm, self._T_model_tracker, self._a, P, sensor_cov=cov
        )
        self._T_model_tracker, self._a, self._P = (
            res.T_model_tracker,
            res.amplitudes,
            res.covariance,
        )
        self._n_points += len(pts)
        self._n_updates += 1
        self._slide_window(pts, res.feet)
        verdict = self._verdict(cov, noise_iso, sensor_iso)
        targets = estimate_targets(self.basis, res.T_model_tracker, res.amplitudes,
                                   res.covariance, self.centre_mm, self._unmodelled)  # fmt: skip
        self.state = TwinState(
            T_tracker_model=np.linalg.inv(res.T_model_tracker),
            amplitudes=res.amplitudes.copy(),
            covariance=res.covariance.copy(),
            rotation_centre_mm=self.centre_mm.copy(),
            mode=self.mode,
            n_points=self._n_points,
            n_points_dropped=dropped,
            iterations=res.iterations,
            targets=targets,
            verdict=verdict,
            recommendation=(
                self._recommendation(sensor, targets)
                if self._recommend and (self._n_updates - 1) % self._recommend_every == 0
                else None
            ),
            time_ms=(time.perf_counter() - t0) * 1e3,
        )
        return self.state

    def _check_start(
        self, pts: NDArray[np.float64], P: NDArray, cov: NDArray, noise_iso: float
    ) -> None:
        """Deformable mode, pose unknown: flag the start when another deformed fit is as good."""
        assert self._T_model_tracker is not None
        check = check_start(
            pts, self.surface, self.centre_mm, self._T_model_tracker, self._start_candidates, P,
            self.basis.prior_std, sensor_cov=cov, noise_mm=noise_iso,
        )  # fmt: skip
        self.start_check = check
        crit = self.criteria or ReliabilityCriteria()
        sep = check.runner_up_separation_mm
        if math.isfinite(sep) and sep > crit.min_runner_up_separation_mm:
            self._start_ambiguity = TwinFailedCheck(
                TwinCheck.AMBIGUOUS, sep, crit.min_runner_up_separation_mm
            )
            self._ambiguous_until = 2 * len(pts)

    def _slide_window(self, pts: NDArray[np.float64], feet: Foot) -> None:
        """Append the batch (with its final feet) to the verdict window, keep the newest."""
        n_new = min(len(pts), self.verdict_window)
        n_old = min(len(self._window), self.verdict_window - n_new)
        new_pts, new_feet = pts[len(pts) - n_new :], _foot_tail(feet, n_new)
        new_ref = np.full((n_new, 3), np.nan)  # set by the verdict
        if n_old == 0 or self._window_feet is None:
            self._window, self._window_feet, self._window_ref = new_pts, new_feet, new_ref
            return
        keep = slice(len(self._window) - n_old, None)
        old = self._window_feet
        self._window = np.vstack([self._window[keep], new_pts])
        self._window_ref = np.vstack([self._window_ref[keep], new_ref])
        self._window_feet = Foot(
            face=np.concatenate([old.face[keep], new_feet.face]),
            beta=np.concatenate([old.beta[keep], new_feet.beta]),
            vertex=np.concatenate([old.vertex[keep], new_feet.vertex]),
        )

    def _verdict(
        self, cov: NDArray[np.float64], noise_iso: float, sensor_iso: float | None = None
    ) -> Any:
        """The twin's verdict on the verdict window at the current state.

        Window points keep their feet: a carried-over point is searched again (one warm pass
        from its foot) only once its pulled-back position ``q - u(foot)``, where the search
        looks, has drifted by more than the assimilation's slip limit since its foot was
        found; the batch's own feet are the assimilation's. (A cold search of the whole
        window, four passes, would cost more than the assimilation.)
        """
        T, a, surf = self._T_model_tracker, self._a, self.surface
        R = T[:3, :3]
        S = R @ cov @ R.T
        feet = self._window_feet
        q = self._window @ R.T + T[:3, 3]
        x, n, r, _, _ = surf.residuals(q, feet, a, S, self.centre_mm, jacobian=False)
        pulled = q - x + surf.undeformed(feet)
        drift = np.sqrt(np.sum((pulled - self._window_ref) ** 2, axis=1))
        stale = np.nonzero(drift > SLIP_SPACING * surf.model.spacing_mm)[0]  # NaN: new
        if len(stale):
            sub = Foot(feet.face[stale], feet.beta[stale], feet.vertex[stale])
            sub = surf.correspond(q[stale], a, sub)
            feet.face[stale], feet.beta[stale], feet.vertex[stale] = sub.face, sub.beta, sub.vertex
            xs, ns, rs, _, _ = surf.residuals(q[stale], sub, a, S, self.centre_mm,
                                              jacobian=False)  # fmt: skip
            x[stale], n[stale], r[stale] = xs, ns, rs
            pulled[stale] = q[stale] - xs + surf.undeformed(sub)
        fresh = np.isnan(self._window_ref[:, 0])
        self._window_ref[fresh] = pulled[fresh]
        self._window_ref[stale] = pulled[stale]
        spacing = self.surface.model.spacing_mm
        dist = surface_distance_mm(q, r, x, spacing)
        fit = deformed_fit_verdict(
            q, r, x, n, noise_mm=noise_iso, spacing_mm=spacing, criteria=self.criteria,
            distance_mm=dist,
        )  # fmt: skip
        if self.model_noise_mm > 0:
            sens = noise_iso if sensor_iso is None else sensor_iso
            fit = with_systematic_noise(
                fit, systematic_noise_mm(sens, self.model_noise_mm), self.criteria
            )
        crit = self.criteria or ReliabilityCriteria()
        thr = crit.inlier_threshold_mm(noise_iso, spacing)
        if self.mode == "rigid" and self.rigid_deformation != "none":
            self._unmodelled = self._rigid_unmodelled(q, n, feet, dist <= thr)
        # An ambiguous start (surgplan.twin.start) stays flagged until the twin has as many
        # points again as it started from: until then the data that made it ambiguous decide.
        extra = () if self._n_points >= self._ambiguous_until else (self._start_ambiguity,)
        return combine_verdicts(
            fit, deformation_check(a, self.basis.prior_std), self._rigid_verdict,
            extra=tuple(e for e in extra if e is not None),
            inlier_fraction=(
                float(np.mean(dist <= thr)) if len(r) and self.explained_inliers else None
            ),
            n_points=len(r), inlier_sigma=crit.inlier_sigma,
        )  # fmt: skip

    def _rigid_unmodelled(
        self, q: NDArray, n: NDArray, feet: Foot, inl: NDArray[np.bool_]
    ) -> NDArray[np.float64]:
        """Rigid mode: covariance of the deformation left out, on the window's inliers."""
        if self._full_modes_v is None:
            self._full_modes_v = per_vertex_modes(self.full_basis)
        return rigid_deformation_covariance(
            self.full_basis, self.centre_mm, q[inl], n[inl], feet.face[inl], feet.beta[inl],
            absorbed=self.rigid_deformation == "fitted", modes_v=self._full_modes_v,
        )  # fmt: skip

    def _next_prior(self) -> NDArray[np.float64]:
        """The next update's prior covariance: the posterior plus process noise."""
        return self._P + self.process_noise.covariance(self.basis.prior_std)

    def recommendation(self) -> Recommendation | None:
        """Where to measure next at the current state, computed now (on request).

        ``None`` without targets or candidate patches. See ``recommend_every``.
        """
        if self.state is None:
            raise TwinError("no state yet: call update() first")
        if self._can_recommend and self._rec_target not in self.basis.target_names:
            raise TwinError(
                f"recommend_target {self._rec_target!r} is not a target: {self.basis.target_names}"
            )
        return self._recommendation(self.noise_cov, self.state.targets)

    def _recommendation(self, cov: NDArray[np.float64], targets: tuple) -> Recommendation | None:
        """The best patch for the recommended target (``None`` without targets or patches).

        ``cov`` is the sensor's noise covariance (tracker axes, mm^2); the model's surface
        discrepancy is added by :func:`~surgplan.twin.recommend.expected_radii`.
        """
        if self._patches is None or len(self._patches.centres) == 0:
            return None
        i = self.basis.target_names.index(self._rec_target)
        _, J = target_jacobians(self.basis, self._a, self.centre_mm)
        var = float(self.basis.discrepancy_mm[i] ** 2 + self.basis.stiffness_spread_mm[i] ** 2)
        radii = expected_radii(
            self.surface, self._patches, T_model_tracker=self._T_model_tracker,
            amplitudes=self._a, covariance=self._next_prior(), centre_mm=self.centre_mm,
            target_jacobian=J[i], model_variance_mm2=var, sensor_cov=cov,
            n_points=self._rec_points, surface_discrepancy_mm=self.model_noise_mm,
        )  # fmt: skip
        best = int(np.argmin(radii))
        c = int(self._patches.centres[best])
        centre_model = self.surface.model.vertices[c].copy()
        centre_def = centre_model + self.basis.surface_displacement_at(c, self._a)
        T_tm = np.linalg.inv(self._T_model_tracker)
        return Recommendation(
            target=self._rec_target,
            patch_centre_model_mm=centre_model,
            patch_centre_tracker_mm=T_tm[:3, :3] @ centre_def + T_tm[:3, 3],
            vertex_indices=self._patches.members[best].astype(np.int64),
            current_radius95_mm=targets[i].radius95_mm,
            expected_radius95_mm=float(radii[best]),
            n_points=self._rec_points,
        )

    def expected_patch_radii(self, n_points: int | None = None) -> NDArray[np.float64]:
        """Every candidate patch's expected target radius95 (mm) after ``n_points`` there."""
        if self._P is None or self._patches is None:
            raise TwinError("no state yet (or no targets to recommend for): call update() first")
        i = self.basis.target_names.index(self._rec_target)
        _, J = target_jacobians(self.basis, self._a, self.centre_mm)
        var = float(self.basis.discrepancy_mm[i] ** 2 + self.basis.stiffness_spread_mm[i] ** 2)
        return expected_radii(
            self.surface, self._patches, T_model_tracker=self._T_model_tracker,
            amplitudes=self._a, covariance=self._next_prior(), centre_mm=self.centre_mm,
            target_jacobian=J[i], model_variance_mm2=var,
            sensor_cov=self.noise_cov, surface_discrepancy_mm=self.model_noise_mm,
            n_points=self._rec_points if n_points is None else int(n_points),
        )  # fmt: skip

    @property
    def _patches(self) -> Any:
        return self.patches

    @property
    def patches(self) -> Any:
        """The candidate patches (:class:`surgplan.twin.recommend.Patches`) or ``None``.

        ``None`` when the basis has no targets; built once, on first use.
        """
        if self._patches_built is None and self._can_recommend:
            view, radius = self._patch_args
            self._patches_built = candidate_patches(
                self.surface, view_direction=view, radius_mm=radius
            )
        return self._patches_built

    def deformed_surface(self) -> Any:
        """The registered, deformed organ surface in tracker space (:class:`pyvista.PolyData`).

        Point data ``"displacement_mm"``: the deformation in model space, mm.
        """
        import pyvista as pv

        v, u = self._deformed_vertices()
        faces = np.hstack([np.full((len(self.basis.faces), 1), 3), self.basis.faces]).ravel()
        mesh = pv.PolyData(v, faces)
        mesh.point_data["displacement_mm"] = u
        return mesh

    def deformed_vertices_mm(self) -> NDArray[np.float64]:
        """Vertices (N, 3) of :meth:`deformed_surface` in tracker space, mm (no mesh built).

        Its triangles are ``basis.faces``. The live session publishes these on every update.
        """
        return self._deformed_vertices()[0]

    def _deformed_vertices(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self.state is None:
            raise TwinError("no state yet: call update() first")
        u = self.basis.surface_displacement_mm(self._a)
        T = self.state.T_tracker_model
        return (self.basis.vertices_mm + u) @ T[:3, :3].T + T[:3, 3], u

    def deform_points(self, points_mm: ArrayLike, modes_at_points: ArrayLike) -> NDArray:
        """Tracker positions of model points moving with the organ (vessels, tumour mesh).

        Parameters
        ----------
        points_mm : array_like, shape (N, 3)
            Undeformed points in model space, mm.
        modes_at_points : array_like, shape (k, N, 3)
            The basis's modes at them (e.g. :func:`surgplan.twin.rom_basis.transfer_modes`),
            mm per unit amplitude; ignored in rigid mode.
        """
        if self.state is None:
            raise TwinError("no state yet: call update() first")
        p = np.asarray(points_mm, np.float64)
        if self.basis.n_modes:
            phi = np.asarray(modes_at_points, np.float64)
            if phi.shape != (self.basis.n_modes, *p.shape):
                raise TwinError(
                    f"modes_at_points must have shape {(self.basis.n_modes, *p.shape)}, "
                    f"got {phi.shape}"
                )
            p = p + np.tensordot(self._a, phi, axes=(0, 0))
        T = self.state.T_tracker_model
        return p @ T[:3, :3].T + T[:3, 3]
