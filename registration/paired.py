"""Paired-point (fiducial) registration, FRE and the Fitzpatrick TRE prediction.

References
----------
.. [Arun1987] K. S. Arun, T. S. Huang, S. D. Blostein, "Least-squares fitting of two 3-D point
   sets", IEEE TPAMI 9(5), 698-700, 1987.
.. [Umeyama1991] S. Umeyama, "Least-squares estimation of transformation parameters between two
   point patterns", IEEE TPAMI 13(4), 376-380, 1991.
.. [Fitzpatrick1998] J. M. Fitzpatrick, J. B. West, C. R. Maurer Jr., "Predicting error in
   rigid-body point-based registration", IEEE TMI 17(5), 694-702, 1998.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registration._points import apply_transform, as_points
from registration.errors import RegistrationError

__all__ = [
    "DegenerateConfigurationError",
    "PairedPointResult",
    "register_paired_points",
    "fiducial_registration_error",
    "predicted_tre",
    "expected_fre",
]

#: Relative singular-value threshold below which a fiducial configuration counts as collinear.
COLLINEAR_TOL = 1e-6


class DegenerateConfigurationError(RegistrationError):
    """The fiducial configuration cannot determine a rigid pose (too few, collinear, mismatch)."""


@dataclass(frozen=True)
class PairedPointResult:
    """Result of a paired-point registration.

    Attributes
    ----------
    T_fixed_moving : numpy.ndarray, shape (4, 4)
        Maps moving points onto fixed points (translation in mm; includes the scale for a
        similarity fit).
    scale : float
        Isotropic scale (1.0 for a rigid fit).
    fre_mm : float
        Fiducial registration error: RMS residual distance after the fit, in mm.
    residuals_mm : numpy.ndarray, shape (N,)
        Per-fiducial residual distance, in mm.
    """

    T_fixed_moving: NDArray[np.float64]
    scale: float
    fre_mm: float
    residuals_mm: NDArray[np.float64]


def _check_pairs(fixed: ArrayLike, moving: ArrayLike) -> tuple[NDArray, NDArray]:
    f = as_points(fixed, name="fixed")
    m = as_points(moving, name="moving")
    if f.shape != m.shape:
        raise DegenerateConfigurationError(
            f"fixed and moving must have the same number of points, got {len(f)} and {len(m)}"
        )
    if len(f) < 3:
        raise DegenerateConfigurationError(
            f"paired-point registration needs at least 3 fiducials, got {len(f)}"
        )
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(m))):
        raise DegenerateConfigurationError("fiducial coordinates must be finite (NaN/inf found)")
    for name, pts in (("fixed", f), ("moving", m)):
        s = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
        if s[0] == 0.0 or s[1] <= COLLINEAR_TOL * s[0]:
            raise DegenerateConfigurationError(
                f"{name} fiducials are collinear or coincident (singular values {s.tolist()}); "
                "at least 3 non-collinear points are needed"
            )
    return f, m


def register_paired_points(
    fixed: ArrayLike, moving: ArrayLike, *, allow_scale: bool = False
) -> PairedPointResult:
    """Least-squares rigid (or similarity) fit of corresponding points.

    Minimises ``sum ||fixed_i - (s R moving_i + t)||^2`` in closed form by SVD of the
    cross-covariance [Arun1987]_, with Umeyama's sign correction so a reflection is never
    returned [Umeyama1991]_.

    Parameters
    ----------
    fixed : array_like, shape (N, 3)
        Fiducial positions in the fixed (e.g. model) space, mm.
    moving : array_like, shape (N, 3)
        The same fiducials measured in the moving (e.g. tracker) space, mm.
    allow_scale : bool, keyword-only
        Also estimate an isotropic scale (similarity transform).

    Returns
    -------
    PairedPointResult
        ``T_fixed_moving`` maps moving points into fixed space.

    Raises
    ------
    DegenerateConfigurationError
        Fewer than 3 points, a count mismatch, or collinear points.
    """
    f, m = _check_pairs(fixed, moving)
    cf, cm = f.mean(axis=0), m.mean(axis=0)
    fc, mc = f - cf, m - cm
    # Arun eq. (11): H = sum q_i' q_i^T, here the 3x3 cross-covariance of moving and fixed.
    H = mc.T @ fc / len(f)
    U, S, Vt = np.linalg.svd(H)
    # Umeyama eq. (39)-(40): D = diag(1, 1, sign(det(V U^T))) removes the reflection.
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0
    R = Vt.T @ D @ U.T
    scale = 1.0
    if allow_scale:
        # Umeyama eq. (42): s = trace(D S) / sigma_moving^2.
        scale = float(np.sum(S * np.diag(D)) / np.mean(np.sum(mc**2, axis=1)))
    T = np.eye(4)
    T[:3, :3] = scale * R
    T[:3, 3] = cf - scale * R @ cm
    res = np.linalg.norm(apply_transform(T, m) - f, axis=1)
    return PairedPointResult(
        T_fixed_moving=T,
        scale=scale,
        fre_mm=float(np.sqrt(np.mean(res**2))),
        residuals_mm=res,
    )


def fiducial_registration_error(
    T_fixed_moving: ArrayLike, fixed: ArrayLike, moving: ArrayLike
) -> float:
    """RMS distance (mm) between ``fixed`` and ``T_fixed_moving`` applied to ``moving``.

    Parameters
    ----------
    T_fixed_moving : array_like, shape (4, 4)
        Registration mapping moving space into fixed space; translation in mm.
    fixed, moving : array_like, shape (N, 3)
        Corresponding fiducials, mm.

    Returns
    -------
    float
        FRE, mm.
    """
    f, m = as_points(fixed, name="fixed"), as_points(moving, name="moving")
    if f.shape != m.shape:
        raise DegenerateConfigurationError(
            f"fixed and moving must have the same number of points, got {len(f)} and {len(m)}"
        )
    T = np.asarray(T_fixed_moving, dtype=np.float64)
    return float(np.sqrt(np.mean(np.sum((apply_transform(T, m) - f) ** 2, axis=1))))


def expected_fre(fle_rms_mm: float, n_fiducials: int) -> float:
    """Expected FRE (mm) for isotropic FLE, ``<FRE^2> = (1 - 2/N) <FLE^2>`` [Fitzpatrick1998]_.

    Parameters
    ----------
    fle_rms_mm : float
        RMS fiducial localisation error magnitude (3-D), mm.
    n_fiducials : int
        Number of fiducials ``N >= 3``.
    """
    if n_fiducials < 3:
        raise DegenerateConfigurationError(f"need at least 3 fiducials, got {n_fiducials}")
    return float(fle_rms_mm * np.sqrt(1.0 - 2.0 / n_fiducials))


def predicted_tre(fiducials: ArrayLike, targets: ArrayLike, fle_rms_mm: float) -> NDArray:
    """Predicted RMS target registration error at each target, mm.

    Implements [Fitzpatrick1998]_ eq. 46 for isotropic, identically distributed FLE::

        <TRE^2(r)> = <FLE^2> / N * (1 + 1/3 * sum_k d_k^2 / f_k^2)

    where ``d_k`` is the distance of the target from principal axis ``k`` of the fiducial
    configuration and ``f_k`` the RMS distance of the fiducials from that axis.

    Parameters
    ----------
    fiducials : array_like, shape (N, 3)
        Fiducial positions (any one space), mm.
    targets : array_like, shape (M, 3) or (3,)
        Target positions in the same space, mm.
    fle_rms_mm : float
        RMS fiducial localisation error magnitude (3-D, not per axis), mm.

    Returns
    -------
    numpy.ndarray, shape (M,)
        RMS TRE at each target, mm.
    """
    f, _ = _check_pairs(fiducials, fiducials)
    t = np.atleast_2d(np.asarray(targets, dtype=np.float64))
    t = as_points(t, name="targets")
    if not np.isfinite(fle_rms_mm) or fle_rms_mm < 0:
        raise RegistrationError(f"fle_rms_mm must be finite and >= 0, got {fle_rms_mm!r}")
    c = f.mean(axis=0)
    fc = f - c
    _, _, axes = np.linalg.svd(fc, full_matrices=False)  # rows: principal axes
    # Squared distance of a point x from axis k: |x|^2 - (x . a_k)^2 (x relative to centroid).
    f_sq = np.mean(np.sum(fc**2, axis=1)[:, None] - (fc @ axes.T) ** 2, axis=0)
    tc = t - c
    d_sq = np.sum(tc**2, axis=1)[:, None] - (tc @ axes.T) ** 2
    # Fitzpatrick, West & Maurer 1998, eq. 46.
    tre_sq = fle_rms_mm**2 / len(f) * (1.0 + np.sum(d_sq / f_sq, axis=1) / 3.0)
    return np.sqrt(tre_sq)
