"""``surgplan import-model``: a case from surface models, repaired or refused, then meshed.

The real ``liver.vtk`` (scikit-surgeryvtk) carries five degenerate 5-point pieces of zero
volume beside the organ; they are dropped and the stored volume is the closed organ's, computed
here independently with VTK's mass properties on the largest connected piece.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvista as pv
import SimpleITK as sitk
from click.testing import CliRunner

from imaging.mesh_io import write_surface
from imaging.mesh_repair import repair_surface
from surgplan.case import Case
from surgplan.cli import cli
from surgplan.manifest import StructureEntry

SURFACE_KEYS = {
    "path", "volume_ml", "area_mm2", "n_points", "n_triangles", "n_pieces", "is_closed",
    "is_manifold", "extent_mm",
}  # fmt: skip
REPAIR_KEYS = {
    "pieces_dropped", "points_dropped", "duplicate_points_merged",
    "degenerate_triangles_removed", "holes_filled", "largest_hole_mm", "triangles_reoriented",
    "flipped_orientation",
}  # fmt: skip


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def import_json(mesh: Path, case: Path, structure: str, *extra: str) -> dict[str, Any]:
    code, out, err = run("import-model", mesh, case, "--structure", structure, *extra, "--json")
    assert code == 0, err
    return json.loads(out)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def organ_volume_ml(path: Path) -> float:
    """Volume of the largest connected piece, by VTK (vtkMassProperties), not our code."""
    largest = pv.read(path).connectivity("largest").extract_surface(algorithm="dataset_surface")
    return float(largest.volume) / 1000.0


@pytest.fixture(scope="module")
def liver_case(tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path) -> Path:
    case = tmp_path_factory.mktemp("model") / "case"
    report = import_json(liver_models_dir / "liver.vtk", case, "liver")
    assert report["created_case"] is True
    return case


def test_real_liver_drops_its_degenerate_pieces(liver_case: Path, liver_models_dir: Path) -> None:
    case = liver_case.parent / "again"
    report = import_json(liver_models_dir / "liver.vtk", case, "liver")
    assert set(report) == {
        "action", "case", "structure", "created_case", "surface", "repairs", "time_s"
    }  # fmt: skip
    assert report["action"] == "import_model" and report["structure"] == "liver"
    assert set(report["surface"]) == SURFACE_KEYS and set(report["repairs"]) == REPAIR_KEYS
    repairs = report["repairs"]
    assert repairs["pieces_dropped"] == 5 and repairs["points_dropped"] == 25  # 5 x 5 points
    assert repairs["duplicate_points_merged"] == 0 and repairs["holes_filled"] == 0
    assert repairs["flipped_orientation"] is False and repairs["triangles_reoriented"] == 0
    surface = report["surface"]
    assert surface["volume_ml"] == pytest.approx(organ_volume_ml(liver_models_dir / "liver.vtk"))
    assert surface["volume_ml"] == pytest.approx(2316.2, abs=0.1)
    assert surface["is_closed"] and surface["is_manifold"] and surface["n_pieces"] == 1
    assert surface["n_points"] == 10012 - 25 and surface["n_triangles"] == 20000 - 30

    manifest = Case.open(case).manifest
    assert manifest.image is None and manifest.structures == {}
    entry = manifest.surfaces["liver"]
    assert entry.path == "meshes/liver.vtp" and entry.label_volume_ml == entry.volume_ml
    stored = pv.read(case / entry.path)
    assert stored.n_cells == surface["n_triangles"]
    assert stored.volume / 1000.0 == pytest.approx(surface["volume_ml"])


@pytest.mark.parametrize("suffix", [".stl", ".obj", ".ply"])
def test_other_formats_give_the_same_volume(
    suffix: str, liver_case: Path, liver_models_dir: Path, tmp_path: Path
) -> None:
    raw = pv.read(liver_models_dir / "liver.vtk")  # degenerate pieces and all
    mesh = write_surface(raw, tmp_path / f"liver{suffix}")
    report = import_json(mesh, tmp_path / "case", "liver")
    expected = Case.open(liver_case).manifest.surfaces["liver"].volume_ml
    assert report["surface"]["volume_ml"] == pytest.approx(expected, rel=1e-6)  # float32 files
    assert report["surface"]["is_closed"] and report["surface"]["n_pieces"] == 1


def test_triangle_soup_is_merged(liver_case: Path, tmp_path: Path) -> None:
    liver = pv.read(liver_case / "meshes" / "liver.vtp")
    faces = np.asarray(liver.regular_faces)
    soup = pv.PolyData.from_regular_faces(
        np.asarray(liver.points)[faces.ravel()], np.arange(faces.size).reshape(-1, 3)
    )
    report = import_json(write_surface(soup, tmp_path / "soup.vtp"), tmp_path / "case", "liver")
    assert report["repairs"]["duplicate_points_merged"] == faces.size - liver.n_points
    assert report["surface"]["n_points"] == liver.n_points
    assert report["surface"]["volume_ml"] == pytest.approx(liver.volume / 1000.0)


def test_small_hole_is_filled(liver_case: Path, tmp_path: Path) -> None:
    liver = pv.read(liver_case / "meshes" / "liver.vtp")
    faces = np.asarray(liver.regular_faces)
    points = np.asarray(liver.points)
    centres = points[faces].mean(axis=1)
    punched = np.argsort(np.linalg.norm(centres - centres[100], axis=1))[:6]
    holed = pv.PolyData.from_regular_faces(points, np.delete(faces, punched, axis=0))
    assert not holed.is_manifold  # open: boundary edges
    report = import_json(write_surface(holed, tmp_path / "holed.vtk"), tmp_path / "case", "liver")
    assert report["repairs"]["holes_filled"] == 1
    assert 0.0 < report["repairs"]["largest_hole_mm"] < 10.0
    assert report["surface"]["is_closed"] and report["surface"]["is_manifold"]
    assert report["surface"]["volume_ml"] == pytest.approx(liver.volume / 1000.0, rel=1e-4)


def test_cube_soup_inward_and_mixed_winding_is_repaired() -> None:
    """A 10 mm cube as 12 unconnected, inconsistently wound triangles: exactly 1000 mm^3."""
    cube = pv.Cube(x_length=10.0, y_length=10.0, z_length=10.0).triangulate()
    faces = np.asarray(cube.regular_faces)[:, ::-1].copy()  # inward
    faces[::3] = faces[::3, ::-1]  # and every third triangle outward
    soup = pv.PolyData.from_regular_faces(
        np.asarray(cube.points, dtype=float)[faces.ravel()], np.arange(36).reshape(-1, 3)
    )
    result = repair_surface(soup)
    assert result.report.duplicate_points_merged == 36 - 8
    assert result.report.triangles_reoriented == 4 and result.report.flipped_orientation
    assert result.surface.volume == pytest.approx(1000.0)
    assert result.surface.n_points == 8 and result.surface.n_cells == 12


def test_several_lesions_kept_or_only_the_largest(liver_models_dir: Path, tmp_path: Path) -> None:
    tumour = pv.read(liver_models_dir / "liver_tumours.vtk")
    small = tumour.copy()
    small.points = (np.asarray(tumour.points) - tumour.center) * 0.5 + tumour.center + [0, 0, 80]
    lesions = write_surface(tumour + small, tmp_path / "lesions.vtk")  # two closed pieces
    tumour_ml = float(tumour.volume) / 1000.0
    report = import_json(lesions, tmp_path / "all", "tumour")
    assert report["surface"]["n_pieces"] == 2 and report["repairs"]["pieces_dropped"] == 0
    assert report["surface"]["volume_ml"] == pytest.approx(tumour_ml * (1 + 0.5**3))
    report = import_json(lesions, tmp_path / "one", "tumour", "--largest-only")
    assert report["surface"]["n_pieces"] == 1 and report["repairs"]["pieces_dropped"] == 1
    assert report["repairs"]["points_dropped"] == small.n_points
    assert report["surface"]["volume_ml"] == pytest.approx(tumour_ml)


# --------------------------------------------------------------------------- refusals


def _large_hole(liver: pv.PolyData, path: Path) -> Path:
    faces = np.asarray(liver.regular_faces)
    centres = np.asarray(liver.points)[faces].mean(axis=1)
    cut = np.linalg.norm(centres - centres[100], axis=1) < 40.0
    return write_surface(
        pv.PolyData.from_regular_faces(np.asarray(liver.points), faces[~cut]), path
    )


def _scaled(liver: pv.PolyData, path: Path) -> Path:
    metres = liver.copy()
    metres.points = np.asarray(liver.points) / 1000.0
    return write_surface(metres, path)


def _nan_point(liver: pv.PolyData, path: Path) -> Path:
    bad = liver.copy()
    bad.points[7] = [np.nan, 0.0, 0.0]
    return write_surface(bad, path)


def _corrupt(liver: pv.PolyData, path: Path) -> Path:
    write_surface(liver, path)
    path.write_bytes(path.read_bytes()[:1000])
    return path


def _points_only(liver: pv.PolyData, path: Path) -> Path:
    return write_surface(pv.PolyData(np.asarray(liver.points)), path)


REFUSALS = {
    "large hole": (_large_hole, "large.vtp", "not closed: a hole of radius"),
    "metres": (_scaled, "metres.stl", "probably in metres"),
    "nan": (_nan_point, "nan.vtk", "NaN or infinite vertex coordinates"),
    "corrupt": (_corrupt, "corrupt.vtp", "cannot read surface file"),
    "no triangles": (_points_only, "points.vtp", "holds no triangles"),
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_refusals_are_one_line_and_change_nothing(
    kind: str, liver_case: Path, tmp_path: Path
) -> None:
    make, name, message = REFUSALS[kind]
    mesh = make(pv.read(liver_case / "meshes" / "liver.vtp"), tmp_path / name)
    # a new case is not created
    fresh = tmp_path / "new"
    code, out, err = run("import-model", mesh, fresh, "--structure", "tumour", "--json")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not fresh.exists()
    # an existing case is left byte for byte
    case = tmp_path / "cases" / "case"
    shutil.copytree(liver_case, case)
    before, siblings = snapshot(case), sorted(case.parent.iterdir())
    code, _, err = run("import-model", mesh, case, "--structure", "tumour")
    assert code == 2 and message in err and err.count("\n") == 1
    assert snapshot(case) == before and sorted(case.parent.iterdir()) == siblings


def _scan_over(lo: np.ndarray, hi: np.ndarray, path: Path) -> Path:
    spacing = 4.0
    size = np.ceil((hi - lo) / spacing).astype(int) + 1
    image = sitk.Image([int(n) for n in size], sitk.sitkInt16)
    image.SetSpacing((spacing,) * 3)
    image.SetOrigin(tuple(float(v) for v in lo))
    sitk.WriteImage(image, str(path))
    return path


def test_case_with_a_scan_takes_only_a_model_inside_it(
    liver_case: Path, liver_models_dir: Path, tmp_path: Path
) -> None:
    liver = pv.read(liver_case / "meshes" / "liver.vtp")
    bounds = np.asarray(liver.bounds)
    lo, hi = bounds[0::2] - 10.0, bounds[1::2] + 10.0
    case = tmp_path / "ct"
    assert run("import", _scan_over(lo, hi, tmp_path / "ct.nrrd"), case)[0] == 0
    report = import_json(liver_models_dir / "liver_tumours.vtk", case, "tumour")
    assert report["created_case"] is False
    assert Case.open(case).manifest.image is not None

    ras = liver.copy()
    ras.points = np.asarray(liver.points) * [-1.0, -1.0, 1.0]
    mesh = write_surface(ras, tmp_path / "liver_ras.stl")
    before = snapshot(case)
    code, _, err = run("import-model", mesh, case, "--structure", "liver")
    assert code == 2 and "inside the case's scan" in err and "RAS" in err, err
    assert snapshot(case) == before


def test_a_label_map_structure_is_not_replaced(tmp_path: Path, liver_models_dir: Path) -> None:
    case = Case.open_or_new(tmp_path / "case")
    with case.transaction() as tx:
        tx.manifest.structures["liver"] = StructureEntry(
            name="liver", label_path="labels/liver.nrrd", method="organ", n_voxels=1, volume_ml=1
        )
        tx.path("labels/liver.nrrd").write_bytes(b"")
    code, _, err = run(
        "import-model", liver_models_dir / "liver.vtk", case.root, "--structure", "liver"
    )
    assert code == 2 and "already has a label map" in err


# --------------------------------------------------------------------------- mesh and rom


@pytest.fixture(scope="module")
def meshed_case(
    tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path
) -> tuple[Path, dict[str, Any]]:
    case = tmp_path_factory.mktemp("meshed") / "case"
    import_json(liver_models_dir / "liver.vtk", case, "liver")
    import_json(liver_models_dir / "liver_tumours.vtk", case, "tumour")
    code, out, err = run("mesh", case, "--edge-mm", "10", "--json")
    assert code == 0, err
    return case, json.loads(out)


def test_mesh_of_a_model_case(meshed_case: tuple[Path, dict[str, Any]]) -> None:
    case, report = meshed_case
    volume = report["volume_mesh"]
    assert volume["outer"] == "liver" and volume["inner"] == ["tumour"]
    assert volume["regions"] == {"liver": 1, "tumour": 2}
    grid = pv.read(case / "meshes" / "volume.vtu")
    sizes = np.asarray(grid.compute_cell_sizes(length=False, area=False)["Volume"]) / 1000.0
    region = np.asarray(grid.cell_data["region"])
    assert (sizes > 0).all()
    surfaces = Case.open(case).manifest.surfaces
    liver_ml, tumour_ml = surfaces["liver"].volume_ml, surfaces["tumour"].volume_ml
    # the organ envelope (tumour included) as the liver surface: ~0.1% here
    assert sizes.sum() == pytest.approx(liver_ml, rel=0.02)
    # the tumour is kept INNER_MARGIN_MM inside the organ: it pokes 0.5 mm out of liver.vtk
    assert 0.85 * tumour_ml < sizes[region == 2].sum() < 1.01 * tumour_ml
    # the imported surfaces are kept as they were
    assert report["surfaces"]["liver"]["volume_error_pct"] == 0.0
    assert report["surfaces"]["liver"]["n_triangles"] == 19970


def test_rom_of_a_model_case(meshed_case: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    case, _ = meshed_case
    points = np.asarray(pv.read(case / "meshes" / "liver.vtp").points)
    posterior = points[np.argmax(points[:, 1])]  # LPS: +y posterior
    inferior = points[np.argmin(points[:, 2])]  # the inferior lobe's edge
    scenario = tmp_path / "liver.toml"
    scenario.write_text(
        'name = "retraction"\n[model]\ntype = "linear"\ndegree = 1\n'
        '[materials]\ndefault = "liver_healthy"\ntumour = "tumour"\n'
        f'[[supports]]\nregion = {{ type = "sphere", centre_mm = {posterior.tolist()}, '
        "radius_mm = 60 }\n"
        f'[[retractors]]\nregion = {{ type = "sphere", centre_mm = {inferior.tolist()}, '
        'radius_mm = 20 }\ndisplacement_mm = [0, -5, 5]\nprofile = "bump"\n'
        "[gravity]\ndirection = [0, 0, -1]\n"
    )
    code, out, err = run("rom", case, "--scenario", scenario, "--centres", "4", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["n_modes"] > 0 and report["n_targets"] > 0
    assert len(report["validation_max_vertex_error_mm"]) == 2
    assert "rom/linear" in Case.open(case).artifacts
