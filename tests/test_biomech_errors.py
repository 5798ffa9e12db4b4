"""Bad input gives a specific, named error."""

import numpy as np
import pytest
import pyvista as pv

from biomech import geometry
from biomech.errors import BiomechError
from biomech.loads import (
    FixedSupport,
    LoadCase,
    LoadRegionError,
    PlaneRegion,
    Pressure,
    SphereRegion,
    TaggedFacets,
    Traction,
)
from biomech.materials import LIVER_HEALTHY, Material, MaterialError
from biomech.mesh import EmptyRegionError, MeshError, from_unstructured_grid
from biomech.tissue import ConvergenceError, solve_tissue


def cube(n=2):
    grid = pv.UnstructuredGrid(
        pv.ImageData(dimensions=(n + 1,) * 3, spacing=(5, 5, 5)).triangulate()
    )
    grid.cell_data["region"] = np.ones(grid.n_cells, dtype=np.int32)
    return grid


def test_inverted_elements_are_named():
    grid = cube()
    cells = grid.cells_dict[pv.CellType.TETRA].copy()
    cells[3, [0, 1]] = cells[3, [1, 0]]  # flip one tetrahedron
    bad = pv.UnstructuredGrid({pv.CellType.TETRA: cells}, grid.points)
    bad.cell_data["region"] = np.ones(bad.n_cells, dtype=np.int32)
    with pytest.raises(MeshError, match=r"1 inverted or degenerate tetrahedra.*cell 3"):
        from_unstructured_grid(bad)


def test_non_tetrahedral_and_missing_region():
    with pytest.raises(MeshError, match="only linear tetrahedra"):
        from_unstructured_grid(pv.ImageData(dimensions=(3, 3, 3)).cast_to_unstructured_grid())
    grid = cube()
    del grid.cell_data["region"]
    with pytest.raises(MeshError, match="'region'"):
        from_unstructured_grid(grid)


def test_empty_region_is_named():
    with pytest.raises(EmptyRegionError, match="'tumour' \\(id 2\\) has no cells"):
        from_unstructured_grid(cube(), region_names={"liver": 1, "tumour": 2})


def test_load_region_selecting_nothing():
    loads = LoadCase(
        supports=[FixedSupport(PlaneRegion((0, 0, 0), (0, 0, 1)))],
        pressures=[Pressure(SphereRegion((100.0, 100.0, 100.0), 2.0), 1.0, name="insufflation")],
    )
    with pytest.raises(
        LoadRegionError, match="insufflation: region SphereRegion.*selects no boundary facets"
    ):
        solve_tissue(cube(), LIVER_HEALTHY, loads)


def test_no_support_and_missing_material():
    with pytest.raises(LoadRegionError, match="free to move rigidly"):
        solve_tissue(cube(), LIVER_HEALTHY, LoadCase())
    loads = LoadCase(supports=[FixedSupport(PlaneRegion((0, 0, 0), (0, 0, 1)))])
    with pytest.raises(MaterialError, match="no material for region"):
        solve_tissue(cube(), {7: LIVER_HEALTHY}, loads)
    assert issubclass(MaterialError, BiomechError)


def test_unconverged_newton_raises_with_last_residual():
    fe = geometry.cooks_membrane(4)
    mat = Material.from_shear_bulk("cook", 80.194, 400889.8)
    loads = LoadCase(
        supports=[FixedSupport(TaggedFacets("left"))],
        tractions=[Traction(TaggedFacets("right"), (0.0, 500.0))],
    )
    with pytest.raises(ConvergenceError, match=r"last residual norm [0-9.e+]+"):
        solve_tissue(fe, mat, loads, model="neohookean", max_bisections=1, newton_max_it=8)
