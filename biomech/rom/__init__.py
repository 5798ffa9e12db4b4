"""Real-time reduced deformation model built from finite-element snapshots.

Load parameters: retractor patch centre c (on the organ surface, mm) and displacement d (mm),
gravity vector g (in units of 1 g; zero for none) and insufflation pressure p (kPa).

Gravity is the change from the CT pose. The organ in the (supine) CT is already in equilibrium
under its own weight, so the geometry of the model is the loaded shape and the only gravity load
that deforms it is the *change* of the gravity vector relative to the body when the patient is
repositioned: g = g_new - g_supine, with g_supine = (0, 1, 0) in LPS (supine: gravity points
posterior, +y). :func:`gravity_change_lps` gives it for a head-up (reverse Trendelenburg) tilt
and a lateral tilt; for tilts up to 30 degrees |g| <= 2 sin(15 deg) ~ 0.52 g per tilt axis.
A free organ hung from its vessels under a full 1 g (the old convention) is not a physical
load case: the linear model then predicts peaks of hundreds of millimetres.

Support. Besides fixed supports (hepatic veins), an :class:`~biomech.loads.ElasticBed`
(Robin springs on the posterior / diaphragmatic surface, a few hundred Pa/mm) keeps the
displacements physiological; it enters the stiffness of the snapshots and of the full solve
(:func:`load_case_for`) identically.

Linear model. For a fixed patch centre the linear-elastic response is exactly linear in
s = (d_x, d_y, d_z, g_x, g_y, g_z, p), so 7 unit solves (one factorisation) per sampled centre
give it exactly. The snapshots are compressed by POD (SVD) into k modes Phi evaluated on the
surface vertices and targets; the modal coefficients of each unit response, A_j(c), are
interpolated over the patch position with a cubic polyharmonic radial basis function with a
linear polynomial tail (centres projected to the tangent plane of the sampled patch sites)::

    u(theta) = sum_m a_m Phi_m,   a = sum_j s_j A_j(c)

Hyperelastic model. Snapshots are full neo-Hookean solves at sampled parameter vectors; the
coefficients are interpolated over the normalised 10-dimensional parameter vector
(:meth:`RomParameters.vector`: centre, displacement, gravity, pressure) with the same RBF.
Its held-out error is reported, not guaranteed.

Volume models (``surgplan rom CASE`` without a scenario) are evaluated at every vertex of
the FE volume mesh and store its tetrahedra (:attr:`ReducedModel.cells`): :func:`modes_at`
gives the modes at any point of the organ by exact P1 interpolation
(:mod:`biomech.rom.interpolate`).

The basis is exposed as plain arrays for registration: :attr:`ReducedModel.modes`
(modes x points x 3, mm per unit amplitude) and :attr:`ReducedModel.mode_bounds` (min, max of
each amplitude over the snapshots).
"""

from biomech.rom.hyperelastic import build_hyperelastic_rom
from biomech.rom.interpolate import P1Location, locate_p1, modes_at
from biomech.rom.linear import build_linear_rom
from biomech.rom.loads import GRAVITY_M_S2, SUPINE_GRAVITY_LPS, gravity_change_lps, load_case_for
from biomech.rom.model import ReducedModel, ReducedModelError, RomParameters, load_reduced_model
from biomech.rom.rbf import evaluate_cubic_rbf, fit_cubic_rbf
from biomech.rom.training import BasisConfig, TrainingSet

__all__ = [
    "GRAVITY_M_S2", "SUPINE_GRAVITY_LPS", "BasisConfig", "P1Location", "ReducedModel",
    "ReducedModelError", "locate_p1", "modes_at",
    "RomParameters", "TrainingSet", "build_hyperelastic_rom", "build_linear_rom",
    "evaluate_cubic_rbf", "fit_cubic_rbf", "gravity_change_lps", "load_case_for",
    "load_reduced_model",
]  # fmt: skip
