"""Soft-tissue and vessel-wall materials with literature values.

All moduli are in kPa. A :class:`Material` holds Young's modulus and Poisson's ratio of an
isotropic solid; :func:`lame_parameters` turns them into the Lamé parameters used by the
finite-element forms in :mod:`biomech.tissue`.

The values below are small-strain (initial) moduli reported for in-vivo or ex-vivo human
tissue; they scatter by a factor of two or more between studies and patients, so they are
defaults to be calibrated, not constants of nature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from biomech.errors import BiomechError


class MaterialError(BiomechError):
    """A material parameter is physically impossible or outside the model's domain."""


@dataclass(frozen=True)
class Material:
    """Isotropic elastic material.

    Parameters
    ----------
    name : str
        Human-readable name, used in error messages.
    youngs_modulus_kpa : float
        Young's modulus E in kPa (small-strain); must be > 0.
    poisson_ratio : float
        Poisson's ratio nu, dimensionless; must lie in (-1, 0.5) for a compressible law.
    density_kg_m3 : float
        Mass density in kg/m^3 (used for gravity loads).
    source : str
        Literature source of the values.
    """

    name: str
    youngs_modulus_kpa: float
    poisson_ratio: float
    density_kg_m3: float = 1060.0
    source: str = ""

    def __post_init__(self) -> None:
        validate_material(self)

    @property
    def shear_modulus_kpa(self) -> float:
        """Shear modulus G = E / (2 (1 + nu)) in kPa."""
        return self.youngs_modulus_kpa / (2.0 * (1.0 + self.poisson_ratio))

    @property
    def bulk_modulus_kpa(self) -> float:
        """Bulk modulus K = E / (3 (1 - 2 nu)) in kPa."""
        return self.youngs_modulus_kpa / (3.0 * (1.0 - 2.0 * self.poisson_ratio))

    @property
    def lame_lambda_kpa(self) -> float:
        """First Lamé parameter lambda = E nu / ((1 + nu)(1 - 2 nu)) in kPa."""
        e, nu = self.youngs_modulus_kpa, self.poisson_ratio
        return e * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))

    @classmethod
    def from_shear_bulk(
        cls, name: str, shear_modulus_kpa: float, bulk_modulus_kpa: float, **kwargs: object
    ) -> Material:
        """Build a material from shear modulus G and bulk modulus K (both kPa).

        E = 9 K G / (3 K + G), nu = (3 K - 2 G) / (2 (3 K + G)).

        Parameters
        ----------
        name : str
            Material name.
        shear_modulus_kpa : float
            Shear modulus G, kPa.
        bulk_modulus_kpa : float
            Bulk modulus K, kPa.
        **kwargs
            Other :class:`Material` fields (``density_kg_m3``...).
        """
        g, k = float(shear_modulus_kpa), float(bulk_modulus_kpa)
        if not (g > 0 and k > 0 and math.isfinite(g) and math.isfinite(k)):
            raise MaterialError(
                f"material {name!r}: shear and bulk moduli must be finite and > 0 kPa, "
                f"got G={g!r}, K={k!r}"
            )
        e = 9.0 * k * g / (3.0 * k + g)
        nu = (3.0 * k - 2.0 * g) / (2.0 * (3.0 * k + g))
        return cls(name, e, nu, **kwargs)  # type: ignore[arg-type]


def validate_material(material: Material) -> None:
    """Raise :class:`MaterialError` when a material is physically impossible.

    Parameters
    ----------
    material : Material
        The material to check.

    Raises
    ------
    MaterialError
        If E <= 0 or not finite, nu outside (-1, 0.5), or density <= 0.
    """
    e, nu, rho = material.youngs_modulus_kpa, material.poisson_ratio, material.density_kg_m3
    if not isinstance(e, int | float) or not math.isfinite(e) or e <= 0.0:
        raise MaterialError(
            f"material {material.name!r}: Young's modulus must be a finite value > 0 kPa, got {e!r}"
        )
    if not isinstance(nu, int | float) or not math.isfinite(nu) or not (-1.0 < nu < 0.5):
        raise MaterialError(
            f"material {material.name!r}: Poisson's ratio must lie in (-1, 0.5) for a "
            f"compressible law, got {nu!r}"
        )
    if not isinstance(rho, int | float) or not math.isfinite(rho) or rho <= 0.0:
        raise MaterialError(
            f"material {material.name!r}: density must be a finite value > 0 kg/m^3, got {rho!r}"
        )


def lame_parameters(material: Material) -> tuple[float, float]:
    """Return (mu, lambda) in kPa for a material (linear-elastic Lamé parameters)."""
    return material.shear_modulus_kpa, material.lame_lambda_kpa


LIVER_HEALTHY = Material(
    "liver_healthy",
    youngs_modulus_kpa=4.0,
    poisson_ratio=0.45,
    density_kg_m3=1060.0,
    source=(
        "Healthy human liver, E about 2-6 kPa: magnetic-resonance and transient elastography "
        "give shear moduli of 1.5-2.5 kPa (Yin et al., Clin Gastroenterol Hepatol 5:1207, 2007; "
        "Sandrin et al., Ultrasound Med Biol 29:1705, 2003, E about 5 kPa in F0 livers)."
    ),
)
"""Healthy liver parenchyma, E = 4 kPa, nu = 0.45."""

LIVER_FIBROTIC = Material(
    "liver_fibrotic",
    youngs_modulus_kpa=15.0,
    poisson_ratio=0.45,
    density_kg_m3=1060.0,
    source=(
        "Fibrotic/cirrhotic liver, E about 10-25 kPa by transient elastography (stage F3-F4 "
        "cut-offs 9.6 and 14.6 kPa: Castera et al., Gastroenterology 128:343, 2005)."
    ),
)
"""Fibrotic (F3-F4) liver, E = 15 kPa, nu = 0.45."""

TUMOUR = Material(
    "tumour",
    youngs_modulus_kpa=20.0,
    poisson_ratio=0.45,
    density_kg_m3=1080.0,
    source=(
        "Liver tumours (hepatocellular carcinoma, metastases) are stiffer than parenchyma: "
        "shear-wave elastography reports E about 10-75 kPa (Gheonea et al., BMC Gastroenterol "
        "13:6, 2013; Kim et al., Ultrasound Med Biol 41:2311, 2015)."
    ),
)
"""Liver tumour, E = 20 kPa, nu = 0.45 (stiffer than parenchyma)."""

KIDNEY = Material(
    "kidney",
    youngs_modulus_kpa=10.0,
    poisson_ratio=0.45,
    density_kg_m3=1050.0,
    source=(
        "Human kidney cortex, E about 5-20 kPa (Grenier et al., Diagn Interv Imaging "
        "94:545, 2013, review of renal elastography; Farshad et al., J Biomech 32:417, 1999)."
    ),
)
"""Kidney, E = 10 kPa, nu = 0.45."""

ARTERY_WALL = Material(
    "artery_wall",
    youngs_modulus_kpa=500.0,
    poisson_ratio=0.45,
    density_kg_m3=1100.0,
    source=(
        "Arterial wall incremental modulus at physiological pressure, E about 0.3-1 MPa "
        "(Humphrey, Cardiovascular Solid Mechanics, Springer 2002, ch. 7; Fung, Biomechanics: "
        "Mechanical Properties of Living Tissues, 1993)."
    ),
)
"""Arterial wall, E = 500 kPa, nu = 0.45."""

VEIN_WALL = Material(
    "vein_wall",
    youngs_modulus_kpa=100.0,
    poisson_ratio=0.45,
    density_kg_m3=1100.0,
    source=(
        "Venous wall at low (venous) pressure, E about 50-200 kPa (Wesly et al., Circ Res "
        "37:509, 1975; Humphrey 2002)."
    ),
)
"""Venous wall, E = 100 kPa, nu = 0.45."""

PRESETS: dict[str, Material] = {
    m.name: m for m in (LIVER_HEALTHY, LIVER_FIBROTIC, TUMOUR, KIDNEY, ARTERY_WALL, VEIN_WALL)
}
"""Named literature materials, looked up by :func:`get_material`."""


def get_material(name: str) -> Material:
    """Return the preset material called ``name``.

    Raises
    ------
    MaterialError
        If no preset of that name exists (the message lists the known names).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise MaterialError(
            f"unknown material {name!r}; known materials: {sorted(PRESETS)}"
        ) from None
