"""The cubic polyharmonic radial basis function that maps load parameters to modal coefficients."""

from __future__ import annotations

import numpy as np

__all__ = ["evaluate_cubic_rbf", "fit_cubic_rbf"]


def fit_cubic_rbf(
    centres: np.ndarray, values: np.ndarray, smoothing: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Cubic polyharmonic RBF with a linear tail, f(x) = sum_i w_i |x - x_i|^3 + c_0 + c . x.

    Solves the usual saddle-point system [[K + s I, P], [P^T, 0]] [w; c] = [f; 0]
    (K_ij = |x_i - x_j|^3, P = [1, x]). The interpolant is the one of
    ``scipy.interpolate.RBFInterpolator(centres, values, kernel="cubic", degree=1)``
    (``tests/test_biomech_rom.py`` checks they agree to 1e-9 relative); it is kept here because
    the reduced model stores ``w`` and ``c`` as plain arrays in its ``.npz`` and evaluates them
    in :meth:`ReducedModel.amplitudes` without scipy, and RBFInterpolator exposes no
    coefficients (its polynomial is in shifted and scaled coordinates).

    Parameters
    ----------
    centres : numpy.ndarray
        (n, d) interpolation sites (mm or normalised parameters).
    values : numpy.ndarray
        (n, ...) values at the sites (flattened to (n, m)).
    smoothing : float
        Added to the kernel diagonal (0: interpolate exactly).

    Returns
    -------
    tuple of numpy.ndarray
        Weights (n, m) and polynomial coefficients (d + 1, m): constant first.
    """
    centres = np.asarray(centres, float)
    n, d = centres.shape
    vals = np.asarray(values, float).reshape(n, -1)
    r = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    k = r**3 + smoothing * np.eye(n)
    p = np.hstack([np.ones((n, 1)), centres])
    m = np.block([[k, p], [p.T, np.zeros((d + 1, d + 1))]])
    rhs = np.vstack([vals, np.zeros((d + 1, vals.shape[1]))])
    sol = np.linalg.lstsq(m, rhs, rcond=None)[0]
    return sol[:n], sol[n:]


def evaluate_cubic_rbf(
    centres: np.ndarray, weights: np.ndarray, poly: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Value at one point ``x`` (d,) of the RBF fitted by :func:`fit_cubic_rbf`.

    Parameters
    ----------
    centres : numpy.ndarray
        (n, d) sites.
    weights, poly : numpy.ndarray
        (n, m) weights and (d + 1, m) polynomial coefficients.
    x : numpy.ndarray
        (d,) evaluation point.
    """
    r = np.sqrt(((centres - x) ** 2).sum(axis=1))
    return (r**3) @ weights + poly[0] + x @ poly[1:]
