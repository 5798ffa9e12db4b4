"""Shared fixtures: the real test data in ``../shared/data`` (always present in CI).

Every test that needs real data reaches it through :func:`shared_data` (directly or through
``totalseg_dir`` / ``liver_models_dir``). A missing folder or file is a failure naming what is
missing and where it comes from, never a skip (README, "Test data").
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

#: Every file the tests read from ``../shared/data``, with where it comes from.
REQUIRED_FILES: dict[str, str] = {
    "totalseg_ct/example_ct_sm.nii.gz": "TotalSegmentator tests/reference_files (Apache-2.0)",
    "totalseg_ct/example_seg.nii.gz": "TotalSegmentator tests/reference_files (Apache-2.0)",
    "totalseg_ct/labels.json": "TotalSegmentator 'total' task label names (Apache-2.0)",
    "totalseg_ct/example_ct_dicom": "TotalSegmentator tests/reference_files (Apache-2.0)",
    "liver_models/liver.vtk": "scikit-surgeryvtk tests/data/models/Liver (BSD-3-Clause, UCL)",
    "liver_models/liver_tumours.vtk": "scikit-surgeryvtk tests/data/models/Liver (BSD-3-Clause)",
    "liver_models/hepatic_veins.vtk": "scikit-surgeryvtk tests/data/models/Liver (BSD-3-Clause)",
    "liver_models/portal_vein.vtk": "scikit-surgeryvtk tests/data/models/Liver (BSD-3-Clause)",
    "liver_models/gallbladder.vtk": "scikit-surgeryvtk tests/data/models/Liver (BSD-3-Clause)",
}


def missing_shared_data(root: Path = SHARED_DATA) -> list[str]:
    """Lines naming each required test-data file absent under ``root``, with its source."""
    return [
        f"{root / rel} (from {source})"
        for rel, source in REQUIRED_FILES.items()
        if not (root / rel).exists()
    ]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real CT and liver models; anything missing is a failure, never a skip."""
    missing = missing_shared_data()
    if missing:
        pytest.fail(
            "real test data missing (see README, 'Test data'; CI provides ../shared/data):\n  "
            + "\n  ".join(missing),
            pytrace=False,
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def totalseg_dir(shared_data: Path) -> Path:
    """Real abdominal CT with its TotalSegmentator reference labels."""
    return shared_data / "totalseg_ct"


@pytest.fixture(scope="session")
def liver_models_dir(shared_data: Path) -> Path:
    """Real liver surface models (liver, vessels, tumours) in millimetres."""
    return shared_data / "liver_models"
