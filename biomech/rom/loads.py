"""Gravity relative to the CT pose, and the full-order load case a parameter vector stands for."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from biomech.loads import (
    ElasticBed,
    FixedSupport,
    Gravity,
    LoadCase,
    PrescribedDisplacement,
    Pressure,
    Selector,
    SphereRegion,
)
from biomech.rom.model import RomParameters

__all__ = ["GRAVITY_M_S2", "SUPINE_GRAVITY_LPS", "gravity_change_lps", "load_case_for"]

GRAVITY_M_S2 = 9.81
"""Standard gravity, m/s^2 (one unit of the gravity parameter)."""

SUPINE_GRAVITY_LPS = (0.0, 1.0, 0.0)
"""Gravity direction relative to the body in the supine CT pose (LPS: posterior, +y)."""


def gravity_change_lps(head_up_deg: float = 0.0, left_down_deg: float = 0.0) -> np.ndarray:
    """Change of the gravity vector (in g, LPS body frame) when a supine patient is tilted.

    The patient is tilted head up by ``head_up_deg`` (reverse Trendelenburg; negative is
    Trendelenburg, head down) and rolled left side down by ``left_down_deg`` (negative: right
    side down). Gravity in the body frame is then
    g_new = (cos a sin b, cos a cos b, -sin a) (a = head up, b = left down; L = +x, P = +y,
    S = +z), and the load of the reduced model is g_new - g_supine with g_supine = (0, 1, 0):
    the organ in the CT is already in equilibrium under g_supine.

    Parameters
    ----------
    head_up_deg : float
        Head-up (reverse Trendelenburg) tilt, degrees.
    left_down_deg : float
        Left-side-down roll, degrees.

    Returns
    -------
    numpy.ndarray
        (3,) gravity change in units of g (zero for the CT pose).
    """
    a, b = np.radians(float(head_up_deg)), np.radians(float(left_down_deg))
    g_new = np.array([np.cos(a) * np.sin(b), np.cos(a) * np.cos(b), -np.sin(a)])
    return g_new - np.asarray(SUPINE_GRAVITY_LPS)


def load_case_for(
    params: RomParameters,
    supports: Sequence[FixedSupport],
    patch_radius_mm: float,
    pressure_region: Selector | None,
    retractor_stiffness_kpa_per_mm: float = 10.0,
    bed: ElasticBed | None = None,
) -> LoadCase:
    """The full-order :class:`~biomech.loads.LoadCase` that a parameter vector stands for.

    ``params.gravity_direction`` is the gravity vector in g (its norm is the magnitude);
    ``bed`` adds the elastic bed as zero-displacement spring patches.

    Parameters
    ----------
    params : RomParameters
        Patch centre and displacement (mm), gravity (g), pressure (kPa).
    supports : Sequence[FixedSupport]
        Fixed regions.
    patch_radius_mm : float
        Retractor patch radius, mm.
    pressure_region : Selector or None
        Where insufflation pressure acts.
    retractor_stiffness_kpa_per_mm : float
        Spring retractor stiffness, kPa/mm.
    bed : ElasticBed, optional
        Elastic bed under part of the surface.
    """
    g = np.asarray(params.gravity_direction, float)
    gnorm = float(np.linalg.norm(g))
    return LoadCase(
        supports=list(supports),
        displacements=[
            PrescribedDisplacement(
                SphereRegion(tuple(params.patch_centre_mm), patch_radius_mm),
                tuple(params.displacement_mm),
                profile="spring",
                stiffness_kpa_per_mm=retractor_stiffness_kpa_per_mm,
            ),
            *(bed.springs() if bed is not None else []),
        ],
        pressures=(
            [Pressure(pressure_region, params.pressure_kpa, name="insufflation")]
            if pressure_region is not None and params.pressure_kpa != 0.0
            else []
        ),
        gravity=Gravity(tuple(g / gnorm), GRAVITY_M_S2 * gnorm) if gnorm > 0 else None,
    )
