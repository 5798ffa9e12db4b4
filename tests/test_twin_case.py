"""``twin_from_case``: a twin from a case built from surface models, its model and targets.

A small case from the real liver models (``import-model`` liver, tumour and portal vein;
``mesh`` with a 14 mm edge; ``rom`` without a scenario from 4 patch centres) is built once per
session (:func:`small_twin_case`, shared with the CLI and study tests). A known deformation
(the case's own reduced model under a 20 mm lobe lift with a tilt and insufflation) is
recovered by the deformable twin better than by the rigid one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv

import registration as reg
from registration.io import write_slicer_markups
from surgplan.twin import BasisMismatchError, Twin
from surgplan.twin.case_twin import (
    NoReducedModelError,
    load_case_model,
    twin_from_case,
    volume_mesh_fingerprint,
)
from surgplan.twin.synthetic import posed_swabs, random_pose

EDGE_MM = 14.0
N_CENTRES = 4
KNOWN_PEAK_MM = 20.0  # largest surface displacement of the known deformation, mm


def small_twin_case(tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path) -> Path:
    """The session's small twin-ready case (built on the first call, then reused)."""
    from surgplan.case_rom import build_case_rom
    from surgplan.meshing import build_meshes
    from surgplan.model_import import import_model

    case = tmp_path_factory.getbasetemp() / "twin_small_case" / "case"
    if (case / "rom" / "linear.npz").is_file():
        return case
    case.parent.mkdir(parents=True, exist_ok=True)
    for name, file in (("liver", "liver.vtk"), ("tumour", "liver_tumours.vtk"),
                       ("portal_vein", "portal_vein.vtk")):  # fmt: skip
        import_model(liver_models_dir / file, case, structure=name)
    build_meshes(case, edge_mm=EDGE_MM)
    build_case_rom(case, n_centres=N_CENTRES, n_validation=1)
    return case


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path) -> Path:
    return small_twin_case(tmp_path_factory, liver_models_dir)


def known_deformation(model):
    """Amplitudes and surface displacement of a lobe lift + tilt + insufflation (the ROM's)."""
    from biomech.rom import RomParameters, gravity_change_lps

    # the most inferior retractor position the model was trained on (the lowest vertex lies
    # between trained positions, where the amplitudes extrapolate to thousands and the same
    # load peaks at 20-100 mm depending on the mesh); the displacement scaled to a 20 mm peak
    centres = np.asarray(model.rom.rbf_centres, dtype=float)
    edge = centres[np.argmin(centres[:, 2])]
    prm = RomParameters(tuple(edge), (0.0, -14.0, 14.0), tuple(gravity_change_lps(20, 10)), 1.0)
    a = model.rom.amplitudes(prm)
    basis = model.basis()
    a = a * min(1.0, KNOWN_PEAK_MM / np.linalg.norm(basis.surface_displacement_mm(a), axis=1).max())
    return a, basis.surface_displacement_mm(a)


def test_case_model_targets_and_model_error(case: Path) -> None:
    model = load_case_model(case)
    names = list(model.targets_mm)
    assert names[0] == "tumour_centroid"
    assert [n for n in names if n.startswith("portal_vein_")] == [f"portal_vein_{i}" for i in
                                                                  range(1, 5)]  # fmt: skip
    tumour = pv.read(case / "meshes" / "tumour.vtp")
    # the volume centroid of the (compact) tumour: inside its box, near its vertex mean
    c = model.targets_mm["tumour_centroid"]
    lo, hi = np.asarray(tumour.bounds).reshape(3, 2).T
    assert np.all((lo < c) & (c < hi))
    assert np.linalg.norm(c - np.asarray(tumour.points).mean(axis=0)) < 0.2 * np.max(hi - lo)
    # prior: RMS of the training amplitudes; model error from the ROM's meta
    rom = model.rom
    np.testing.assert_allclose(
        model.prior_std, np.sqrt(rom.amplitude_mean**2 + rom.amplitude_std**2), rtol=1e-12
    )
    assert model.discrepancy_mm == rom.meta["discrepancy_mm"] > 0
    assert model.stiffness_spread_mm == rom.meta["stiffness_spread_mm"] > 0
    basis = model.basis()
    assert basis.n_modes == rom.n_modes and basis.n_vertices == len(model.vertices_mm)
    # modes at the targets are the P1 modes of the model
    from biomech.rom import modes_at

    pts = np.array(list(model.targets_mm.values()))
    np.testing.assert_allclose(basis.target_modes, modes_at(rom, pts), rtol=1e-6)


def test_deformable_twin_recovers_a_known_deformation_better_than_rigid(case: Path) -> None:
    model = load_case_model(case)
    a, u = known_deformation(model)
    assert np.linalg.norm(u, axis=1).max() > 10.0  # centimetre-scale
    basis = model.basis()
    surface = reg.prepare_surface((basis.vertices_mm, basis.faces))
    T = random_pose(np.random.default_rng(3), rotation_deg=20.0, translation_mm=50.0)
    truth = reg.apply_transform(T, basis.target_positions_mm(a))
    err = {}
    for mode in ("rigid", "deformable"):
        twin = twin_from_case(case, mode=mode, noise_mm=1.0, recommend=False)
        assert isinstance(twin, Twin) and twin.mode == mode
        for s in range(2):
            state = twin.update(posed_swabs(surface, u, T, n_points=300, noise_mm=1.0, seed=s))
        pos = np.array([t.position_tracker_mm for t in state.targets])
        err[mode] = np.linalg.norm(pos - truth, axis=1)
    assert err["deformable"].mean() < 0.5 * err["rigid"].mean(), err
    assert err["deformable"][0] < 2.0  # tumour centroid, mm


def test_user_targets_from_markups(case: Path, tmp_path: Path) -> None:
    copy = tmp_path / "case"
    shutil.copytree(case, copy)
    centre = load_case_model(copy).targets_mm["tumour_centroid"] + [5.0, 0.0, 0.0]
    (copy / "targets").mkdir()
    write_slicer_markups(copy / "targets" / "plan.mrk.json", [centre], labels=["resection"])
    model = load_case_model(copy)
    assert list(model.targets_mm)[-1] == "resection"
    np.testing.assert_allclose(model.targets_mm["resection"], centre)


def test_case_without_reduced_model(case: Path, tmp_path: Path) -> None:
    copy = tmp_path / "case"
    shutil.copytree(case, copy)
    (copy / "rom" / "linear.npz").unlink()
    with pytest.raises(NoReducedModelError, match="case has no reduced model: run surgplan rom"):
        twin_from_case(copy)


def test_model_built_for_another_mesh(case: Path, tmp_path: Path) -> None:
    copy = tmp_path / "case"
    shutil.copytree(case, copy)
    grid = pv.read(copy / "meshes" / "volume.vtu")
    grid.points = np.asarray(grid.points) + [2.0, 0.0, 0.0]  # same counts, other vertices
    from surgplan.case import Case

    with Case.open(copy).transaction() as tx:  # re-meshed after the reduced model was built
        grid.save(tx.path("meshes/volume.vtu"))
    with pytest.raises(BasisMismatchError, match="built for another mesh: vertex fingerprint"):
        twin_from_case(copy)
    assert volume_mesh_fingerprint(grid.points) != volume_mesh_fingerprint(
        np.asarray(grid.points) - [2.0, 0.0, 0.0]
    )
    # the fingerprint ignores the vertex order
    p = np.asarray(grid.points)
    assert volume_mesh_fingerprint(p) == volume_mesh_fingerprint(p[::-1])
