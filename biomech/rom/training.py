"""The training set and the basis settings of the linear reduced model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from biomech.loads import ElasticBed, FixedSupport, Selector

__all__ = ["BasisConfig", "TrainingSet"]


@dataclass(frozen=True)
class TrainingSet:
    """The load cases the linear reduced model is trained on, and where it is evaluated (mm).

    Attributes
    ----------
    supports : Sequence[FixedSupport]
        Fixed regions (ligaments, hepatic veins).
    patch_centres_mm : numpy.ndarray
        (S, 3) sampled retractor patch centres on the surface (S >= 4), mm.
    patch_radius_mm : float
        Retractor patch radius (bump weight), mm.
    surface_points_mm : numpy.ndarray
        (V, 3) surface vertices, mm.
    target_points_mm : numpy.ndarray, optional
        (T, 3) targets (tumour, vessel points), mm.
    pressure_region : Selector, optional
        Surface where insufflation pressure acts.
    retractor_stiffness_kpa_per_mm : float
        Stiffness of the spring retractor, kPa/mm.
    bed : ElasticBed, optional
        Elastic bed (Robin springs) under part of the surface; pass the same bed to
        :func:`load_case_for` for the full solve.
    """

    supports: Sequence[FixedSupport]
    patch_centres_mm: np.ndarray
    patch_radius_mm: float
    surface_points_mm: np.ndarray
    target_points_mm: np.ndarray | None = None
    pressure_region: Selector | None = None
    retractor_stiffness_kpa_per_mm: float = 10.0
    bed: ElasticBed | None = None


@dataclass(frozen=True)
class BasisConfig:
    """How the snapshots become a basis and coefficient maps.

    Attributes
    ----------
    degree : int
        Displacement polynomial degree of the snapshots.
    pod_tolerance : float
        Discarded fraction of snapshot energy (sum of squared singular values).
    max_modes : int, optional
        Cap on the number of modes.
    load_scales : sequence of 7 floats, optional
        Typical magnitudes of (d_x, d_y, d_z [mm], g_x, g_y, g_z [g], p [kPa]). The unit
        responses are weighted by them before the POD, so that the modes are spent in
        proportion to the displacement each load really causes (e.g. 10 mm pushes and a
        0.5 g gravity change) rather than per unit of each load. Default: unweighted.
    centre_space : {"plane", "3d"}
        Where the coefficients are interpolated over the patch position: ``"plane"``
        projects the centres to their mean tangent plane (a gently curved site); ``"3d"`` uses
        the centres' 3D coordinates, which does not fold where the site wraps around a curved
        edge (the inferior tip of the liver).
    """

    degree: int = 1
    pod_tolerance: float = 1e-7
    max_modes: int | None = None
    load_scales: Sequence[float] | None = None
    centre_space: str = "plane"
