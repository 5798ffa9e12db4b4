"""The shared-data fixture names every missing file and its source instead of skipping."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REQUIRED_FILES, SHARED_DATA, missing_shared_data


def test_nothing_missing_in_ci() -> None:
    assert missing_shared_data() == []


def test_missing_files_are_named_with_their_source(tmp_path: Path) -> None:
    (tmp_path / "totalseg_ct").mkdir()
    (tmp_path / "totalseg_ct" / "labels.json").write_text("{}")
    missing = missing_shared_data(tmp_path)
    assert len(missing) == len(REQUIRED_FILES) - 1
    assert f"{tmp_path / 'liver_models' / 'liver.vtk'} (from scikit-surgeryvtk" in missing[3]
    assert all("(from " in line for line in missing)
    assert SHARED_DATA.name == "data" and SHARED_DATA.parent.name == "shared"
