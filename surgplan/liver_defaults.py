"""Documented default supports of a liver: what holds the organ as a surgeon sees it move.

:func:`default_liver_supports` chooses, for a liver FE mesh and the case's other surfaces:

1. **Vascular anchor (fixed).** The liver hangs from the inferior vena cava by the hepatic veins
   (and the coronary ligament around the bare area); it is the one attachment a retractor
   cannot move. Boundary facets within :data:`ANCHOR_DISTANCE_MM` of the vena cava surface
   (a case surface named ``inferior_vena_cava``, ``vena_cava`` or ``ivc``) are fixed; without
   one, those within that distance of the *extrahepatic* hepatic-vein trunks (the points of a
   ``hepatic_veins`` surface outside the organ: where the veins leave the liver to join the
   cava). Fixing every facet near any hepatic-vein branch, as the demo did before, pins the
   organ wherever a branch runs under the capsule and turns a lobe lift into a local dent.
   Without either surface the anchor is the bare area: facets within
   :data:`BARE_AREA_RADIUS_MM` of the most posterior-superior boundary point (LPS: max y + z).
2. **Sliding bed (normal springs).** The posterior (bare area, right kidney, adrenal) and
   diaphragmatic surface rest on softer neighbours lubricated by peritoneal fluid: they slide
   freely in their tangent plane and are held along their normal
   (:class:`biomech.loads.SpringSupport`, ``direction="normal"``) with
   :data:`BED_NORMAL_KPA_PER_MM`. The facets are those whose outward normal is within
   60 degrees of posterior (+y) or superior (+z), outside the anchor.
3. **Ligaments and areolar attachments (weak isotropic springs)** on the same bed,
   :data:`BED_TANGENTIAL_KPA_PER_MM`, standing for the coronary and triangular ligaments and the
   loose connective tissue of the bare area: they stop the organ sliding off its bed under a
   tilt without stopping a lobe from being lifted. The falciform ligament (anterior wall, thin
   and lax once the abdomen is open) is not modelled.

Stiffness (Winkler foundation, k = E / h: the modulus of the backing tissue over its
thickness). Diaphragm over lung and retroperitoneal fat have Young's moduli of about 1-3 kPa
(fat: Samani et al. 2007, Phys Med Biol 52:1565) over 20-60 mm, so k ~ 0.02-0.15 kPa/mm. Two
checks narrow it. (a) A linear, bilateral spring stands for a one-sided contact only while the
surface does not separate by more than the weight preload, delta_0 = p / k, with p ~ 0.3-0.6
kPa the supine weight of the overlying liver (1060 kg/m^3 x 9.81 m/s^2 x 30-60 mm); a 20 mm lobe
lift then needs k <~ 0.03-0.06 kPa/mm. (b) Repositioning must not swing the organ unphysically:
on the real liver a 30-degree tilt moves the surface by at most 16-24 mm at 0.1 kPa/mm and
32-43 mm at 0.03 kPa/mm. We take k = 0.05 kPa/mm (50 Pa/mm); the ligament share is a tenth
(0.005 kPa/mm). These are the boundary conditions of the liver registration literature:
hepatic veins / vena cava fixed and ligaments as springs (Plantefeve et al. 2016, Ann Biomed
Eng 44:139), and a sliding support of the posterior surface (Rucker et al. 2014, IEEE Trans Med
Imaging 33:147). ``benchmarks/biomech_liver_supports.py`` measures a 20 mm lobe lift of the
real liver under these and under the former supports.

All in LPS mm and kPa; the rules are geometric, so they apply to any liver mesh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvista as pv

from biomech.loads import FixedSupport, NearPoints, SpringSupport, Support
from surgplan.errors import SurgplanError

__all__ = [
    "ANCHOR_DISTANCE_MM",
    "BARE_AREA_RADIUS_MM",
    "BED_NORMAL_KPA_PER_MM",
    "BED_TANGENTIAL_KPA_PER_MM",
    "LiverSupportError",
    "SupportChoice",
    "default_liver_supports",
]

#: Boundary facets within this distance of the vena cava / extrahepatic hepatic veins are fixed.
ANCHOR_DISTANCE_MM = 6.0
#: Fallback anchor: the bare area, this radius around the most posterior-superior point, mm.
BARE_AREA_RADIUS_MM = 30.0
#: Normal stiffness of the sliding bed (diaphragm, retroperitoneum), kPa per mm.
BED_NORMAL_KPA_PER_MM = 0.05
#: Isotropic stiffness of the ligaments / areolar tissue on the same bed, kPa per mm.
BED_TANGENTIAL_KPA_PER_MM = 0.005
#: A bed facet's outward normal is within this angle of posterior (+y) or superior (+z).
BED_MAX_ANGLE_DEG = 60.0

_CAVA_NAMES = ("inferior_vena_cava", "vena_cava", "ivc")
_HEPATIC_NAMES = ("hepatic_veins", "hepatic_vein")


class LiverSupportError(SurgplanError):
    """The default supports cannot be built for this mesh (e.g. no bed facet found)."""


@dataclass(frozen=True)
class SupportChoice:
    """Which default supports were chosen, in words and numbers (mm, kPa/mm).

    Attributes
    ----------
    anchor : str
        ``"vena_cava"``, ``"hepatic_veins"`` or ``"bare_area"``: what the fixed support is.
    anchor_facets, bed_facets : int
        Boundary facets fixed, and held by the sliding bed.
    bed_normal_kpa_per_mm, bed_tangential_kpa_per_mm : float
        Normal and isotropic bed stiffness.
    text : str
        One line saying all of it (for stderr and reports).
    """

    anchor: str
    anchor_facets: int
    bed_facets: int
    bed_normal_kpa_per_mm: float
    bed_tangential_kpa_per_mm: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``surgplan rom --json`` key ``"defaults"``)."""
        return {
            "anchor": self.anchor,
            "anchor_facets": self.anchor_facets,
            "bed_facets": self.bed_facets,
            "bed_normal_kpa_per_mm": self.bed_normal_kpa_per_mm,
            "bed_tangential_kpa_per_mm": self.bed_tangential_kpa_per_mm,
            "text": self.text,
        }


def _points(surface: Any) -> np.ndarray:
    if isinstance(surface, pv.DataSet):
        return np.asarray(surface.points, dtype=float)
    return np.asarray(surface, dtype=float).reshape(-1, 3)


def _find(case_surfaces: Mapping[str, Any], names: tuple[str, ...]) -> np.ndarray | None:
    low = {k.lower(): k for k in case_surfaces}
    for n in names:
        if n in low:
            pts = _points(case_surfaces[low[n]])
            if len(pts):
                return pts
    return None


def _anchor(
    fe_mesh: Any, mid: np.ndarray, case_surfaces: Mapping[str, Any]
) -> tuple[str, np.ndarray]:
    """(kind, (F,) bool mask of anchored facets)."""
    from scipy.spatial import cKDTree

    from biomech.geometry import inside_mesh

    cava = _find(case_surfaces, _CAVA_NAMES)
    if cava is not None:
        d, _ = cKDTree(cava).query(mid)
        if (d <= ANCHOR_DISTANCE_MM).any():
            return "vena_cava", d <= ANCHOR_DISTANCE_MM
    veins = _find(case_surfaces, _HEPATIC_NAMES)
    if veins is not None:
        trunks = veins[~inside_mesh(fe_mesh, veins)]
        if len(trunks):
            d, _ = cKDTree(trunks).query(mid)
            if (d <= ANCHOR_DISTANCE_MM).any():
                return "hepatic_veins", d <= ANCHOR_DISTANCE_MM
    top = mid[np.argmax(mid[:, 1] + mid[:, 2])]
    return "bare_area", np.linalg.norm(mid - top, axis=1) <= BARE_AREA_RADIUS_MM


def default_liver_supports(
    fe_mesh: Any,
    case_surfaces: Mapping[str, Any] | None = None,
    *,
    bed_normal_kpa_per_mm: float = BED_NORMAL_KPA_PER_MM,
    bed_tangential_kpa_per_mm: float = BED_TANGENTIAL_KPA_PER_MM,
) -> tuple[tuple[Support, ...], SupportChoice]:
    """The documented default supports of a liver mesh (module docstring) and what was chosen.

    Parameters
    ----------
    fe_mesh : biomech.mesh.FEMesh
        The liver volume mesh (mm at the boundary of biomech).
    case_surfaces : mapping of str to pyvista.PolyData or (N, 3) array, optional
        The case's other surfaces by name (mm), e.g. ``hepatic_veins``, ``inferior_vena_cava``.
    bed_normal_kpa_per_mm, bed_tangential_kpa_per_mm : float
        Bed stiffness (normal, isotropic), kPa/mm; ``bed_tangential_kpa_per_mm=0`` leaves
        only the sliding contact (a "ligaments released" case).

    Returns
    -------
    tuple
        The supports (a :class:`~biomech.loads.FixedSupport` and one or two
        :class:`~biomech.loads.SpringSupport`) for ``LoadCase.supports`` and the
        :class:`SupportChoice`.

    Raises
    ------
    LiverSupportError
        A stiffness is not positive, or no facet qualifies as the bed.
    """
    from biomech.geometry import boundary_facets_mm

    if not bed_normal_kpa_per_mm > 0 or not bed_tangential_kpa_per_mm >= 0:
        raise LiverSupportError(
            f"bed stiffness must be > 0 (normal) and >= 0 (tangential) kPa/mm, got "
            f"{bed_normal_kpa_per_mm}, {bed_tangential_kpa_per_mm}"
        )
    _, mid, normals = boundary_facets_mm(fe_mesh)
    kind, anchored = _anchor(fe_mesh, mid, dict(case_surfaces or {}))
    cos = np.cos(np.radians(BED_MAX_ANGLE_DEG))
    bed = ((normals[:, 1] >= cos) | (normals[:, 2] >= cos)) & ~anchored
    if not bed.any():
        raise LiverSupportError("no boundary facet faces posterior or superior: no bed")
    tol = 1e-3  # facet midpoints are selected exactly (mm)
    supports: list[Support] = [
        FixedSupport(NearPoints(mid[anchored], tol), name=f"anchor ({kind.replace('_', ' ')})"),
        SpringSupport(
            NearPoints(mid[bed], tol), float(bed_normal_kpa_per_mm), "normal", "sliding bed"
        ),
    ]
    if bed_tangential_kpa_per_mm > 0:
        supports.append(
            SpringSupport(
                NearPoints(mid[bed], tol), float(bed_tangential_kpa_per_mm), "all", "ligaments"
            )
        )
    text = (
        f"liver defaults: {kind.replace('_', ' ')} fixed ({int(anchored.sum())} facets within "
        f"{ANCHOR_DISTANCE_MM:g} mm); sliding bed on the posterior/diaphragmatic surface "
        f"({int(bed.sum())} facets, normal {bed_normal_kpa_per_mm:g} kPa/mm, ligaments "
        f"{bed_tangential_kpa_per_mm:g} kPa/mm)"
    )
    choice = SupportChoice(
        anchor=kind,
        anchor_facets=int(anchored.sum()),
        bed_facets=int(bed.sum()),
        bed_normal_kpa_per_mm=float(bed_normal_kpa_per_mm),
        bed_tangential_kpa_per_mm=float(bed_tangential_kpa_per_mm),
        text=text,
    )
    return tuple(supports), choice
