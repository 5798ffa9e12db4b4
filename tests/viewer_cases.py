"""Small cases for the viewer tests, built once per test process and shared between modules.

- :func:`phantom_viewer_case`: the bundled CT phantom with liver, tumour, portal vein and bone
  (label maps imported from the sample's ground truth, surfaces of at most 15,000 triangles;
  the volume mesh is the tumour's alone, at 25 mm: the viewer tests do not use it, and
  tetrahedralising the liver would cost most of the fixture);
- the real liver models case with a reduced model is :func:`tests.test_twin_case.small_twin_case`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

#: Structures of the phantom viewer case.
PHANTOM_STRUCTURES = ("liver", "tumour", "portal_vein", "bone")


def phantom_viewer_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phantom case (built on the first call in this process, then reused)."""
    from surgplan.meshing import build_meshes
    from surgplan.sample_data import REPO_SAMPLE_DIR
    from surgplan.scan_import import import_scan
    from surgplan.segment import import_label_map

    case = tmp_path_factory.getbasetemp() / "viewer_phantom_case" / "case"
    if (case / "meshes" / "bone.vtp").is_file():
        return case
    case.parent.mkdir(parents=True, exist_ok=True)
    import_scan(REPO_SAMPLE_DIR / "phantom_ct.nii.gz", case)
    labels, names = REPO_SAMPLE_DIR / "phantom_labels.nrrd", REPO_SAMPLE_DIR / "phantom_labels.json"
    import_label_map(case, labels, names, structures=PHANTOM_STRUCTURES)
    build_meshes(case, edge_mm=25.0, target_triangles=15_000, outer="tumour", inner=[])
    return case


def copy_case(case: Path, where: Path) -> Path:
    """A private copy of a case (tests that write to it)."""
    target = where / case.name
    shutil.copytree(case, target)
    return target


def liver_like(img: np.ndarray) -> np.ndarray:
    """Pixels of the translucent liver colour (0.80, 0.45, 0.35) blended over white.

    Over white the blend keeps the liver's ratio (g - b) / (r - g) ~ 0.3, unlike the
    tumour (~5), bone (~4) and the purple portal vein (b > g).
    """
    r, g, b = (img[..., i].astype(float) for i in range(3))
    return (r - g > 12) & (g >= b) & ((g - b) < 0.6 * (r - g))


def hue_like(
    img: np.ndarray, rgb: tuple[float, float, float], *, min_cos: float = 0.997
) -> np.ndarray:
    """Pixels whose colour is a shade of ``rgb`` (0..1): an opaque lit surface of that colour."""
    c = np.asarray(rgb, float) / np.linalg.norm(rgb)
    p = img[..., :3].astype(float)
    n = np.linalg.norm(p, axis=-1)
    cos = (p @ c) / np.maximum(n, 1e-9)
    return (cos > min_cos) & (n > 60) & ~np.all(img[..., :3] > 250, axis=-1)
