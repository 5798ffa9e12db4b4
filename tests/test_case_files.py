"""The case's volume mesh is read through one validating reader, checked against the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvista as pv

from imaging.errors import MeshingError
from imaging.volume_mesh_io import read_volume_mesh
from surgplan.case import Case
from surgplan.case_files import read_case_volume_mesh
from surgplan.errors import CaseError
from surgplan.manifest import VolumeMeshEntry


def box_grid() -> pv.UnstructuredGrid:
    grid = pv.UnstructuredGrid(
        pv.ImageData(dimensions=(4, 3, 3), spacing=(5.0, 5.0, 5.0)).triangulate()
    )
    grid.cell_data["region"] = np.ones(grid.n_cells, dtype=np.int32)
    return grid


def saved(grid: pv.UnstructuredGrid, path: Path) -> Path:
    grid.save(path)
    return path


def test_a_valid_mesh_round_trips(tmp_path: Path) -> None:
    grid = box_grid()
    back = read_volume_mesh(saved(grid, tmp_path / "m.vtu"))
    assert back.n_cells == grid.n_cells == 60
    np.testing.assert_array_equal(back.cell_data["region"], grid.cell_data["region"])
    np.testing.assert_allclose(back.points, grid.points)


@pytest.mark.parametrize(
    ("spoil", "match"),
    [
        (lambda g: g.cell_data.remove("region"), "no integer 'region' array"),
        (lambda g: g.cell_data.__setitem__("region", np.ones(g.n_cells)), "integer 'region'"),
        (
            lambda g: setattr(
                g, "points", np.where(np.arange(len(g.points))[:, None] == 0, np.nan, g.points)
            ),
            "NaN",
        ),  # fmt: skip
        (lambda g: setattr(g, "points", g.points * 1e6), "implausible"),
    ],
)
def test_a_spoiled_mesh_is_refused(tmp_path: Path, spoil, match: str) -> None:
    grid = box_grid()
    spoil(grid)
    with pytest.raises(MeshingError, match=match):
        read_volume_mesh(saved(grid, tmp_path / "m.vtu"))


def test_inverted_and_non_tetrahedral_cells_are_refused(tmp_path: Path) -> None:
    grid = box_grid()
    cells = np.asarray(grid.cell_connectivity).reshape(-1, 4).copy()
    cells[0] = cells[0][[0, 2, 1, 3]]  # one tetrahedron inverted against the others
    flipped = pv.UnstructuredGrid({pv.CellType.TETRA: cells}, np.asarray(grid.points))
    flipped.cell_data["region"] = np.ones(flipped.n_cells, dtype=np.int32)
    with pytest.raises(MeshingError, match="inverted against the others"):
        read_volume_mesh(saved(flipped, tmp_path / "flip.vtu"))
    hexes = pv.ImageData(dimensions=(3, 3, 3)).cast_to_unstructured_grid()
    hexes.cell_data["region"] = np.ones(hexes.n_cells, dtype=np.int32)
    with pytest.raises(MeshingError, match="other than linear tetrahedra"):
        read_volume_mesh(saved(hexes, tmp_path / "hex.vtu"))


def test_mutated_bytes_are_a_meshing_error_or_a_valid_mesh(tmp_path: Path) -> None:
    source = saved(box_grid(), tmp_path / "m.vtu").read_bytes()
    rng = np.random.default_rng(2026)
    outcomes = {"refused": 0, "read": 0}
    for i in range(60):
        data = bytearray(source)
        for j in rng.integers(0, len(data), size=int(rng.integers(1, 20))):
            data[j] = int(rng.integers(0, 256))
        path = tmp_path / f"mut{i}.vtu"
        path.write_bytes(bytes(data))
        try:
            grid = read_volume_mesh(path)
        except MeshingError:
            outcomes["refused"] += 1
            continue
        outcomes["read"] += 1
        assert set(np.unique(grid.celltypes)) == {pv.CellType.TETRA}
        assert np.isfinite(grid.points).all()
    assert outcomes["refused"] > 0, outcomes


@pytest.fixture()
def case(tmp_path: Path) -> Case:
    with Case.open_or_new(tmp_path / "case").transaction() as tx:
        box_grid().save(tx.path("meshes/volume.vtu"))
        tx.manifest.volume_mesh = VolumeMeshEntry(
            path="meshes/volume.vtu", regions={"liver": 1}, quality={}
        )
    return Case.open(tmp_path / "case")


def test_the_case_mesh_is_read_when_it_is_as_recorded(case: Case) -> None:
    assert read_case_volume_mesh(case).n_cells == 60


def test_a_case_mesh_changed_or_missing_is_refused_naming_it(case: Case) -> None:
    path = case.root / "meshes" / "volume.vtu"
    grid = box_grid()
    grid.points = grid.points + 1.0  # same size, other content
    grid.save(path)
    with pytest.raises(CaseError, match="meshes/volume.vtu .*changed outside surgplan"):
        read_case_volume_mesh(case)
    path.unlink()
    with pytest.raises(CaseError, match="meshes/volume.vtu named by the manifest is not found"):
        read_case_volume_mesh(case)
