"""Deterministic synthetic abdominal CT phantom: the project's sample data.

A small adult abdomen in LPS millimetres, contrast-enhanced portal-venous phase: body wall, an
organically shaped liver with a hypodense tumour and portal and hepatic vein trees, vena cava,
aorta, spine, ribs, kidneys, spleen, stomach and colon, with partial volume, a Gaussian PSF and
Gaussian noise; with its ground-truth label map, per-structure masks and seed points.

>>> from surgplan.phantom import generate_phantom, write_sample_data
>>> phantom = generate_phantom(seed=0)            # doctest: +SKIP
>>> write_sample_data(phantom, "sample_data")     # doctest: +SKIP
"""

from surgplan.phantom.ct import HU, LABEL_NAMES
from surgplan.phantom.errors import PhantomError
from surgplan.phantom.generate import GENERATOR_VERSION, Phantom, generate_phantom
from surgplan.phantom.writer import SAMPLE_FILES, write_sample_data

__all__ = [
    "GENERATOR_VERSION",
    "HU",
    "LABEL_NAMES",
    "SAMPLE_FILES",
    "Phantom",
    "PhantomError",
    "generate_phantom",
    "write_sample_data",
]
