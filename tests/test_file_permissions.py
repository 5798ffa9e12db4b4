"""Files written by every package's atomic writer and by case commands follow the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv
import SimpleITK as sitk
from click.testing import CliRunner

from biomech._atomic import atomic_write
from imaging._atomic import write_atomically
from registration._atomic import write_atomic
from surgplan.atomic import atomic_path, write_text_atomic
from surgplan.cli import cli


@pytest.fixture(params=[0o027, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writers_of_every_package(tmp_path: Path, umask: int) -> None:
    expected = 0o666 & ~umask
    sphere = pv.Sphere(theta_resolution=8, phi_resolution=8)
    write_atomically(tmp_path / "mesh.vtp", lambda tmp: sphere.save(tmp))
    atomic_write(tmp_path / "result.npz", lambda tmp: np.savez(tmp, a=np.arange(3)))
    write_atomic(tmp_path / "table.csv", lambda tmp: tmp.write_text("a,b\n1,2\n"))
    with atomic_path(tmp_path / "scan.nrrd") as tmp:
        sitk.WriteImage(sitk.Image([2, 2, 2], sitk.sitkUInt8), str(tmp))
    write_text_atomic(tmp_path / "case.json", "{}")
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["case.json", "mesh.vtp", "result.npz", "scan.nrrd", "table.csv"]
    assert {p.name: _mode(p) for p in tmp_path.iterdir()} == dict.fromkeys(written, expected)


def test_case_files_and_exports_follow_the_umask(tmp_path: Path, umask: int) -> None:
    array = np.zeros((10, 12, 14), np.int16) - 100
    array[3:7, 3:9, 4:10] = 60
    scan = sitk.GetImageFromArray(array)
    labels = sitk.GetImageFromArray((array > 0).astype(np.uint8))
    sitk.WriteImage(scan, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(labels, str(tmp_path / "labels.nrrd"))
    (tmp_path / "names.json").write_text('{"1": "liver"}')
    case, out = tmp_path / "case", tmp_path / "out"
    out.mkdir()
    runner = CliRunner()
    for args in (
        ["import", str(tmp_path / "ct.nrrd"), str(case)],
        ["segment", str(case), "--labels", str(tmp_path / "labels.nrrd")]
        + ["--names", str(tmp_path / "names.json")],
        ["export", str(case), "--structure", "liver", "--mesh", str(out / "liver.stl")],
        ["export", str(case), "--structure", "liver", "--label", str(out / "liver.nii.gz")],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.stderr)
    files = [p for p in [*case.rglob("*"), *out.rglob("*")] if p.is_file()]
    assert len(files) >= 6
    assert {p.name: _mode(p) for p in files} == {p.name: 0o666 & ~umask for p in files}
