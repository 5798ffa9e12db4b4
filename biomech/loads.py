"""Loads and supports a surgeon means, in millimetres and kPa.

Boundary regions are selected among the exterior facets of the mesh by a *selector*:

- :class:`TaggedFacets`: a gmsh physical surface (by tag or name),
- :class:`SphereRegion`: facets whose midpoints lie within a ball (a retractor patch),
- :class:`NearPoints`: facets within a distance of given points (e.g. the wall of the vena cava
  or hepatic veins, given as surface vertices),
- :class:`PlaneRegion`: facets on a plane (symmetry planes, clamped faces),
- :class:`AllBoundary`: every exterior facet.

Supports are :class:`FixedSupport` (Dirichlet) or :class:`SpringSupport` (Robin: a sliding
elastic contact or a ligament sheet); :class:`ElasticBed` is a tiling of spring patches.

A selector that selects no facet raises :class:`LoadRegionError` naming the load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from biomech.errors import BiomechError


class LoadRegionError(BiomechError):
    """A load or support region selects no boundary facet, or is malformed."""


@dataclass(frozen=True)
class TaggedFacets:
    """Facets carrying a gmsh physical-surface tag (id or name)."""

    tag: int | str


@dataclass(frozen=True)
class SphereRegion:
    """Boundary facets whose midpoint lies within ``radius_mm`` of ``centre_mm``."""

    centre_mm: tuple[float, float, float]
    radius_mm: float


@dataclass(frozen=True)
class NearPoints:
    """Boundary facets whose midpoint lies within ``distance_mm`` of any of ``points_mm``."""

    points_mm: np.ndarray
    distance_mm: float


@dataclass(frozen=True)
class PlaneRegion:
    """Boundary facets on the plane through ``point_mm`` with normal ``normal``."""

    point_mm: tuple[float, ...]
    normal: tuple[float, ...]
    tolerance_mm: float = 1e-6


@dataclass(frozen=True)
class AllBoundary:
    """Every exterior facet of the mesh."""


Selector = TaggedFacets | SphereRegion | NearPoints | PlaneRegion | AllBoundary


@dataclass(frozen=True)
class FixedSupport:
    """Zero displacement on a region (ligament attachment, vena cava, clamped face).

    ``components`` restricts the constraint to some displacement components (0=x, 1=y, 2=z),
    e.g. ``(0,)`` for a roller/symmetry plane normal to x.
    """

    region: Selector
    components: tuple[int, ...] | None = None
    name: str = "fixed support"


@dataclass(frozen=True)
class SpringSupport:
    """An elastic (Robin) support on a region: traction t = -k u_n n, or t = -k u.

    ``direction="normal"`` is a frictionless sliding contact, linearised and bilateral: the
    surface slides freely along its tangent plane and is held along its outward normal ``n``
    with ``stiffness_kpa_per_mm`` k (kPa per mm of normal displacement), i.e. the weak form gains
    int k (u.n)(v.n) dA. It models an organ resting on softer neighbours (the liver's bare area
    and diaphragmatic surface on the diaphragm and retroperitoneum, lubricated by peritoneal
    fluid). ``direction="all"`` resists every component (a ligament sheet: int k u.v dA).
    Unlike :class:`ElasticBed` the stiffness is uniform over the selected facets and one
    support takes one facet-tag bit whatever its size. Pass it among ``LoadCase.supports``.
    """

    region: Selector
    stiffness_kpa_per_mm: float
    direction: str = "normal"
    name: str = "spring support"


Support = FixedSupport | SpringSupport


@dataclass(frozen=True)
class PrescribedDisplacement:
    """A prescribed displacement patch (a retractor pushing or lifting the organ).

    ``displacement_mm`` is the patch displacement. Profiles:

    - ``"uniform"``: every node of the patch moves by ``displacement_mm`` (Dirichlet);
    - ``"bump"`` (with a :class:`SphereRegion`): Dirichlet, the displacement falls off smoothly
      from the centre, w(r) = (1 - (r/R)^2)^2, so the patch edge does not tear the tissue;
    - ``"spring"`` (with a :class:`SphereRegion`): a stiff elastic retractor blade, the traction
      t = k w(r) (d - u) with ``stiffness_kpa_per_mm`` k (Robin condition). The tissue under the
      centre moves by about d k / (k + k_tissue); the response is smooth in the patch position,
      which is what the reduced model interpolates.
    """

    region: Selector
    displacement_mm: tuple[float, float, float]
    profile: str = "uniform"
    name: str = "retractor"
    stiffness_kpa_per_mm: float = 10.0


@dataclass(frozen=True)
class Pressure:
    """Normal pressure ``pressure_kpa`` (kPa, positive pushes into the body) on a region.

    Insufflation pressure on the organ surface or lumen pressure on a vessel wall. In the
    hyperelastic model it is a follower load acting on the deformed surface.
    """

    region: Selector
    pressure_kpa: float
    name: str = "pressure"


@dataclass(frozen=True)
class Traction:
    """Dead-load surface traction (kPa, force per reference area) on a region."""

    region: Selector
    traction_kpa: tuple[float, ...]
    name: str = "traction"


@dataclass(frozen=True)
class Gravity:
    """Self-weight after repositioning the patient: rho g along ``direction`` (unit vector).

    The density comes from each region's :class:`~biomech.materials.Material`.
    """

    direction: tuple[float, float, float]
    acceleration_m_s2: float = 9.81


@dataclass
class LoadCase:
    """Everything applied to the tissue in one simulation."""

    supports: Sequence[FixedSupport | SpringSupport] = ()
    displacements: Sequence[PrescribedDisplacement] = ()
    pressures: Sequence[Pressure] = ()
    tractions: Sequence[Traction] = ()
    gravity: Gravity | None = None

    def __post_init__(self) -> None:
        if self.gravity is not None:
            d = np.asarray(self.gravity.direction, dtype=float)
            if d.shape != (3,) or not np.all(np.isfinite(d)) or np.linalg.norm(d) == 0:
                raise LoadRegionError(
                    f"gravity direction must be a non-zero 3-vector, got {self.gravity.direction!r}"
                )
        for d in self.displacements:
            v = np.asarray(d.displacement_mm, dtype=float)
            if v.ndim != 1 or not np.all(np.isfinite(v)):
                raise LoadRegionError(
                    f"{d.name}: displacement_mm must be a finite vector, got {d.displacement_mm!r}"
                )
            if d.profile not in ("uniform", "bump", "spring"):
                raise LoadRegionError(
                    f"{d.name}: profile must be 'uniform', 'bump' or 'spring', got {d.profile!r}"
                )
            if d.profile in ("bump", "spring") and not isinstance(d.region, SphereRegion):
                raise LoadRegionError(f"{d.name}: profile {d.profile!r} needs a SphereRegion")
            if d.profile == "spring" and not d.stiffness_kpa_per_mm > 0:
                raise LoadRegionError(
                    f"{d.name}: stiffness_kpa_per_mm must be > 0, got {d.stiffness_kpa_per_mm}"
                )
        for sp in self.supports:
            if isinstance(sp, SpringSupport):
                if sp.direction not in ("normal", "all"):
                    raise LoadRegionError(
                        f"{sp.name}: direction must be 'normal' or 'all', got {sp.direction!r}"
                    )
                if not (np.isfinite(sp.stiffness_kpa_per_mm) and sp.stiffness_kpa_per_mm > 0):
                    raise LoadRegionError(
                        f"{sp.name}: stiffness_kpa_per_mm must be > 0, got "
                        f"{sp.stiffness_kpa_per_mm}"
                    )
        for p in self.pressures:
            if not np.isfinite(p.pressure_kpa):
                raise LoadRegionError(
                    f"{p.name}: pressure_kpa must be finite, got {p.pressure_kpa}"
                )


def selector_mask(selector: Selector, midpoints_mm: np.ndarray) -> np.ndarray:
    """Boolean mask of facets (midpoints (N, gdim) in mm) selected by a geometric selector.

    Parameters
    ----------
    selector : Selector
        Any selector except :class:`TaggedFacets` (handled with the mesh's facet tags).
    midpoints_mm : numpy.ndarray
        (N, gdim) facet midpoints in mm.

    Returns
    -------
    numpy.ndarray
        (N,) bool.
    """
    x = np.asarray(midpoints_mm, dtype=float)
    gdim = x.shape[1]
    if isinstance(selector, AllBoundary):
        return np.ones(x.shape[0], dtype=bool)
    if isinstance(selector, SphereRegion):
        c = np.asarray(selector.centre_mm, dtype=float)[:gdim]
        if not selector.radius_mm > 0:
            raise LoadRegionError(f"sphere region radius must be > 0 mm, got {selector.radius_mm}")
        return np.linalg.norm(x - c, axis=1) <= selector.radius_mm
    if isinstance(selector, PlaneRegion):
        n = np.asarray(selector.normal, dtype=float)[:gdim]
        n = n / np.linalg.norm(n)
        p = np.asarray(selector.point_mm, dtype=float)[:gdim]
        return np.abs((x - p) @ n) <= selector.tolerance_mm
    if isinstance(selector, NearPoints):
        pts = np.asarray(selector.points_mm, dtype=float)
        if pts.ndim != 2 or pts.shape[0] == 0:
            raise LoadRegionError("NearPoints needs a non-empty (N, 3) array of points in mm")
        if x.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        d, _ = cKDTree(pts[:, :gdim]).query(x, k=1)
        return d <= selector.distance_mm
    raise LoadRegionError(f"unsupported region selector {selector!r}")


def bump_weight_ufl(centre_m: object, radius_m: float, x: object) -> object:
    """UFL bump w = max(1 - |x - c|^2 / R^2, 0)^2 (coordinates and centre in metres).

    Parameters
    ----------
    centre_m : ufl expression
        Patch centre, m.
    radius_m : float
        Patch radius R, m.
    x : ufl expression
        Spatial coordinate, m.
    """
    import ufl

    r2 = ufl.dot(x - centre_m, x - centre_m) / radius_m**2
    return ufl.conditional(ufl.lt(r2, 1.0), (1.0 - r2) ** 2, 0.0)


def bump_weight(selector: Selector, x_mm: np.ndarray) -> np.ndarray:
    """Smooth patch weight w = (1 - (r/R)^2)^2 inside a :class:`SphereRegion` (1 elsewhere).

    Parameters
    ----------
    selector : Selector
        The patch (a :class:`SphereRegion` gives the bump).
    x_mm : numpy.ndarray
        (N, gdim) points, mm.
    """
    if not isinstance(selector, SphereRegion):
        return np.ones(x_mm.shape[0])
    c = np.asarray(selector.centre_mm, dtype=float)[: x_mm.shape[1]]
    r2 = np.sum((x_mm - c) ** 2, axis=1) / selector.radius_mm**2
    return np.clip(1.0 - r2, 0.0, None) ** 2


@dataclass(frozen=True)
class ElasticBed:
    """An elastic bed (Robin support) under part of the organ surface.

    E.g. the posterior and diaphragmatic surface of the liver resting on the retroperitoneum
    and the diaphragm. It is a tiling of zero-displacement spring patches
    (:class:`PrescribedDisplacement`, ``profile="spring"``, ``displacement_mm = 0``): patch
    ``i`` is a ball of ``radius_mm`` around ``sites_mm[i]`` whose traction is
    t = -k w_i(x) u, w_i the bump weight. The bed stiffness is k sum_i w_i(x) (kPa per mm of
    displacement; 0.3 kPa/mm = 300 Pa/mm); with sites about one radius apart sum_i w_i is
    about 0.2-1 on the bed (report it for a given tiling: the liver benchmark does). The
    spring acts in all directions (it also holds the organ against sliding).
    :func:`~biomech.tissue.solve_tissue` tags each spring patch with one bit of an int32
    facet tag, so a load case takes at most about 29 patches in all.
    """

    sites_mm: np.ndarray
    radius_mm: float = 25.0
    stiffness_kpa_per_mm: float = 0.3
    name: str = "elastic bed"

    def springs(self) -> list[PrescribedDisplacement]:
        """The bed as zero-displacement spring patches that :func:`solve_tissue` accepts."""
        pts = np.asarray(self.sites_mm, dtype=float)
        if pts.ndim != 2 or pts.shape[0] == 0 or pts.shape[1] != 3:
            raise LoadRegionError(f"{self.name}: sites_mm must be (N >= 1, 3) in mm")
        if not (self.radius_mm > 0 and self.stiffness_kpa_per_mm > 0):
            raise LoadRegionError(
                f"{self.name}: radius_mm and stiffness_kpa_per_mm must be > 0, got "
                f"{self.radius_mm}, {self.stiffness_kpa_per_mm}"
            )
        return [
            PrescribedDisplacement(
                SphereRegion((float(p[0]), float(p[1]), float(p[2])), float(self.radius_mm)),
                (0.0, 0.0, 0.0),
                profile="spring",
                name=f"{self.name} {i}",
                stiffness_kpa_per_mm=float(self.stiffness_kpa_per_mm),
            )
            for i, p in enumerate(pts)
        ]
