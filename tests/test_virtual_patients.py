"""Virtual patients on a coarse real liver: realistic peaks, targets inside, loads honoured."""

import numpy as np
import pytest

from biomech.mesh import from_unstructured_grid
from surgplan.virtual_patients import (
    VirtualPatientError,
    load_virtual_patients,
    make_virtual_patients,
    save_virtual_patients,
)

EDGE_MM = 12.0


@pytest.fixture(scope="module")
def patients(liver_models_dir):
    return make_virtual_patients(liver_models_dir, 2, seed=5, edge_mm=EDGE_MM)


def test_peaks_and_targets(patients, liver_models_dir):
    import pyvista as pv

    from biomech.geometry import inside_mesh
    from imaging.volume_mesh import tetrahedralize

    assert [p.name for p in patients] == ["vp000", "vp001"]
    for p in patients:
        assert 10.0 <= p.max_displacement_mm <= 40.0, p.load
        assert p.surface_mm.shape == (9987, 3)  # liver.vtk's largest component, its order
        names = list(p.targets_mm)
        assert names[0] == "tumour_centroid"
        assert sum(n.startswith("portal_vein_") for n in names) in range(3, 6)
        assert sum(n.startswith("hepatic_vein_") for n in names) in range(3, 6)
    vm = tetrahedralize(
        {"liver": pv.read(liver_models_dir / "liver.vtk")}, outer="liver", target_edge_mm=EDGE_MM
    )
    fe = from_unstructured_grid(vm.grid, region_names=vm.regions)
    t0 = np.array(list(patients[0].targets_undeformed_mm.values()))
    assert inside_mesh(fe, t0).all()  # every target lies inside the liver


def test_retractor_moves_by_the_prescribed_amount(patients, liver_models_dir):
    import pyvista as pv

    p = patients[0]  # lobe lift + tilt
    prm = p.load_parameters
    assert "lobe lift" in prm["kinds"]
    x0 = np.asarray(pv.read(liver_models_dir / "liver.vtk").points)
    from surgplan.virtual_patients import _largest_component

    ids, _ = _largest_component(pv.read(liver_models_dir / "liver.vtk"))
    x0 = x0[ids]
    near = np.linalg.norm(x0 - prm["patch_centre_mm"], axis=1) < prm["patch_radius_mm"] / 2
    u = np.median(p.surface_mm[near] - x0[near], axis=0)
    assert np.linalg.norm(u - prm["displacement_mm"]) < 1.0  # the blade holds the tissue
    assert 15.0 * prm["load_scale"] - 1e-6 <= np.linalg.norm(prm["displacement_mm"])


def test_deterministic_and_round_trip(patients, liver_models_dir, tmp_path):
    again = make_virtual_patients(liver_models_dir, 2, seed=5, edge_mm=EDGE_MM)
    for a, b in zip(patients, again, strict=True):
        assert a.load == b.load
        assert np.array_equal(a.surface_mm, b.surface_mm)
    path = save_virtual_patients(patients, tmp_path / "vp.npz")
    back = load_virtual_patients(path)
    assert [p.load for p in back] == [p.load for p in patients]
    assert np.array_equal(back[1].surface_mm, patients[1].surface_mm)
    assert np.array_equal(back[0].targets_mm["tumour_centroid"],
                          patients[0].targets_mm["tumour_centroid"])  # fmt: skip
    with pytest.raises(VirtualPatientError, match="not found"):
        load_virtual_patients(tmp_path / "missing.npz")
