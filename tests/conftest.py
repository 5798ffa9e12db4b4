"""Shared fixtures: paths to the real test data in ``../shared/data`` (always present in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real CT and liver models; a missing folder is a failure, never a skip."""
    assert SHARED_DATA.is_dir(), f"shared test data not found at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def totalseg_dir(shared_data: Path) -> Path:
    """Real abdominal CT with its TotalSegmentator reference labels."""
    return shared_data / "totalseg_ct"


@pytest.fixture(scope="session")
def liver_models_dir(shared_data: Path) -> Path:
    """Real liver surface models (liver, vessels, tumours) in millimetres."""
    return shared_data / "liver_models"
