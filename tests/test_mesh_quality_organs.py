"""Tetrahedral meshes of every real organ surface meet the FE standard, or are refused.

Surfaces: the real liver model (``liver.vtk`` with its tumour), the real CT's liver, spleen and
kidneys (from the TotalSegmentator reference label map through :func:`label_to_surface`) and
the phantom liver (its envelope with the tumour inside, from the committed sample data). The
standard (:data:`imaging.mesh_quality.FE_STANDARD`): minimum dihedral angle >= 5 degrees,
fewer than 0.1% of tetrahedra with gamma < 0.1, none inverted, each region's volume within 2%
of its surface's, regions kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvista as pv
import SimpleITK as sitk

from imaging._gmsh_mesher import gmsh_model, mesh_with_gmsh
from imaging.errors import MeshingError
from imaging.mesh_quality import (
    FE_STANDARD,
    FEStandard,
    dihedral_angles_deg,
    standard_failures,
    tet_gamma,
    tet_volumes,
)
from imaging.surface import label_to_surface, signed_volume_mm3
from imaging.volume_mesh import VolumeMesh, estimate_mesh_size, tetrahedralize

REPO = Path(__file__).resolve().parents[1]
CT_ORGANS = {"liver": 5, "spleen": 1, "kidney_right": 2, "kidney_left": 3}


def _check_standard(mesh: VolumeMesh, reference_ml: dict[str, float]) -> None:
    """Recompute every figure of the standard from the grid itself, not from the summary."""
    cells = np.asarray(mesh.grid.cells_dict[pv.CellType.TETRA])
    points = np.asarray(mesh.grid.points)
    volumes = tet_volumes(points, cells)
    assert (volumes > 0).all()
    assert dihedral_angles_deg(points, cells).min() >= 5.0
    assert np.mean(tet_gamma(points, cells) < 0.1) < 0.001
    region = np.asarray(mesh.grid.cell_data["region"])
    assert set(np.unique(region)) == set(mesh.regions.values())
    for name, ml in reference_ml.items():
        meshed_ml = volumes[region == mesh.regions[name]].sum() / 1000.0
        assert meshed_ml == pytest.approx(ml, rel=0.02), name
    assert standard_failures(mesh.quality) == []


@pytest.fixture(scope="module")
def ct_surfaces(totalseg_dir: Path) -> dict[str, pv.PolyData]:
    labels = sitk.ReadImage(str(totalseg_dir / "example_seg.nii.gz"))
    return {
        name: label_to_surface(labels, label=value, target_triangles=20_000)
        for name, value in CT_ORGANS.items()
    }


@pytest.mark.parametrize("organ", sorted(CT_ORGANS))
def test_real_ct_organ_meets_the_standard(ct_surfaces: dict[str, pv.PolyData], organ: str) -> None:
    surface = ct_surfaces[organ]
    mesh = tetrahedralize({organ: surface}, outer=organ, target_edge_mm=6.0)
    _check_standard(mesh, {organ: signed_volume_mm3(surface) / 1000.0})
    assert mesh.quality.mesher == "gmsh"  # the fast default suffices on these surfaces


def test_real_liver_model_with_tumour_meets_the_standard(liver_models_dir: Path) -> None:
    liver = pv.read(liver_models_dir / "liver.vtk")
    tumour = pv.read(liver_models_dir / "liver_tumours.vtk")
    mesh = tetrahedralize({"liver": liver, "tumour": tumour}, outer="liver", target_edge_mm=6.0)
    assert mesh.regions == {"liver": 1, "tumour": 2}
    liver_ml = liver.connectivity("largest").extract_surface(algorithm="dataset_surface").volume
    tumour_ml = mesh.quality.region_volume_ml["tumour"]
    assert 85.0 < tumour_ml < 97.0  # 96.7 mL, the part poking out of the liver clipped
    _check_standard(mesh, {})
    total_ml = mesh.quality.region_volume_ml["liver"] + tumour_ml
    assert total_ml == pytest.approx(liver_ml / 1000.0, rel=0.02)
    assert abs(mesh.quality.volume_error_pct["tumour"]) < 2.0  # against the clipped surface


def test_phantom_liver_with_tumour_meets_the_standard() -> None:
    envelope = sitk.ReadImage(str(REPO / "sample_data" / "phantom_liver_envelope.nrrd"))
    labels = sitk.ReadImage(str(REPO / "sample_data" / "phantom_labels.nrrd"))
    surfaces = {
        "liver": label_to_surface(envelope, target_triangles=20_000),
        "tumour": label_to_surface(labels, label=2, target_triangles=20_000),
    }
    mesh = tetrahedralize(surfaces, outer="liver", target_edge_mm=6.0)
    assert mesh.regions == {"liver": 1, "tumour": 2}
    _check_standard(mesh, {"tumour": signed_volume_mm3(surfaces["tumour"]) / 1000.0})
    total_ml = sum(mesh.quality.region_volume_ml.values())
    assert total_ml == pytest.approx(signed_volume_mm3(surfaces["liver"]) / 1000.0, rel=0.02)


def test_ftetwild_keeps_regions_and_the_analytical_volumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fTetWild (the fallback) on nested spheres: regions, interface and volumes.

    fTetWild writes a scratch file into the working folder: none may be left in the caller's.
    """
    monkeypatch.chdir(tmp_path)
    centre = np.array([5.0, -3.0, 2.0])
    surfaces = {
        "organ": pv.Icosphere(radius=20.0, nsub=3, center=centre),
        "lesion": pv.Icosphere(radius=8.0, nsub=3, center=centre + (4.0, 0.0, 0.0)),
    }
    mesh = tetrahedralize(surfaces, outer="organ", target_edge_mm=5.0, mesher="ftetwild")
    assert mesh.quality.mesher == "ftetwild"
    assert list(tmp_path.iterdir()) == []
    _check_standard(mesh, {})
    region_ml = mesh.quality.region_volume_ml
    # the icospheres' own volumes (their chords cut 0.3-2% off the analytical balls)
    organ_ml = signed_volume_mm3(surfaces["organ"]) / 1000.0
    lesion_ml = signed_volume_mm3(surfaces["lesion"]) / 1000.0
    assert region_ml["lesion"] == pytest.approx(lesion_ml, rel=0.01)
    assert region_ml["organ"] == pytest.approx(organ_ml - lesion_ml, rel=0.01)
    ids = np.asarray(mesh.boundary.cell_data["boundary_id"])
    inner = mesh.boundary.extract_cells(ids == 2).points
    outer = mesh.boundary.extract_cells(ids == 1).points
    # on the icospheres (whose chords lie up to 0.2 mm inside the spheres) within the envelope
    assert np.abs(np.linalg.norm(inner - centre - (4.0, 0.0, 0.0), axis=1) - 8.0).max() < 0.4
    assert np.abs(np.linalg.norm(outer - centre, axis=1) - 20.0).max() < 0.5
    # boundary triangles face outward: the outer shell encloses a positive volume
    shell = mesh.boundary.extract_cells(ids == 1).extract_surface(algorithm="dataset_surface")
    assert signed_volume_mm3(shell) > 0


def test_a_mesh_short_of_the_standard_is_refused_with_the_figures() -> None:
    """No mesher makes 30-degree minimum dihedral angles: each is named with its values."""
    sphere = pv.Icosphere(radius=15.0, nsub=3)
    strict = FEStandard(min_dihedral_deg=30.0)
    with pytest.raises(MeshingError) as info:
        tetrahedralize({"organ": sphere}, outer="organ", target_edge_mm=5.0, standard=strict)
    message = str(info.value)
    assert "'organ' could not be meshed to the finite-element standard" in message
    for recipe in ("classic", "classic+netgen", "refined"):
        assert f"gmsh ({recipe}) fell short of the FE standard: minimum dihedral angle" in message
    assert "ftetwild fell short of the FE standard: minimum dihedral angle" in message
    assert "(expected >= 30)" in message and "\n" not in message


def test_standard_failures_name_each_metric() -> None:
    mesh = tetrahedralize({"organ": pv.Icosphere(radius=15.0, nsub=3)}, outer="organ")
    assert standard_failures(mesh.quality) == []
    bad = FEStandard(min_dihedral_deg=89.0, max_sliver_fraction=0.0, max_volume_error_pct=0.0)
    failures = " | ".join(standard_failures(mesh.quality, bad))
    assert "minimum dihedral angle" in failures and "(expected >= 89)" in failures
    assert "of tetrahedra with gamma < 0.1 (expected < 0%)" in failures
    assert "volume of 'organ'" in failures
    assert FE_STANDARD.min_dihedral_deg == 5.0 and FE_STANDARD.max_sliver_fraction == 0.001


def test_gamma_matches_gmsh() -> None:
    """Our gamma is gmsh's (3 r_in / R_circ), so both meshers are measured alike."""
    piece = pv.Icosphere(radius=12.0, nsub=3)
    with gmsh_model():
        tets = mesh_with_gmsh([(1, piece)], {"organ": 1}, 4.0, True, ())
    np.testing.assert_allclose(tet_gamma(tets.points, tets.cells), tets.gamma, atol=1e-9)
    regular = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float)
    assert tet_gamma(regular, np.array([[0, 1, 2, 3]]))[0] == pytest.approx(1.0)
    flat = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=float)
    assert tet_gamma(flat, np.array([[0, 1, 2, 3]]))[0] == 0.0


def test_oversized_request_is_refused_up_front(liver_models_dir: Path) -> None:
    """``--edge-mm 0.5`` on the real liver: refused with the estimate before any meshing."""
    liver = pv.read(liver_models_dir / "liver.vtk")
    with pytest.raises(MeshingError) as info:
        tetrahedralize({"liver": liver}, outer="liver", target_edge_mm=0.5)
    message = str(info.value)
    assert "meshing 'liver' (2316 mL) with target_edge_mm=0.5 would make about 7." in message
    assert "over the limit of 1,000,000; use an edge of at least 2." in message


def test_size_estimate_matches_gmsh(ct_surfaces: dict[str, pv.PolyData]) -> None:
    surface = ct_surfaces["spleen"]
    mesh = tetrahedralize({"spleen": surface}, outer="spleen", target_edge_mm=6.0)
    estimate = estimate_mesh_size(signed_volume_mm3(surface), surface.area, 6.0)
    assert estimate.n_tets == pytest.approx(mesh.quality.n_tets, rel=0.25)
    assert estimate.memory_gb < 0.1 and estimate.edge_mm == 6.0
