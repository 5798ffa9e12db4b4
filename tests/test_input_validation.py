"""Issue 16's reproducers for scenarios, registration inputs, study specs, demo and meshes.

Each bad input must end in exactly one ``error: ...`` line naming the problem, exit code 2, no
traceback, and (where a file would be written) nothing written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv
from click.testing import CliRunner

from imaging.errors import MeshingError
from imaging.mesh_io import read_surface, write_surface
from registration.io import PointFileError, read_points
from registration.point_units import PointUnitsError, check_point_extent
from surgplan.cli import cli

SCENARIO = """
name = "retraction"
[model]
type = "linear"
degree = 1
[materials]
default = "liver_healthy"
tumour = "tumour"
[[supports]]
region = { type = "plane", point_mm = [0, 0, 0], normal = [1, 0, 0] }
[[retractors]]
region = { type = "sphere", centre_mm = [30, 10, 20], radius_mm = 8 }
displacement_mm = [0, 0, 5]
[[pressures]]
region = { type = "plane", point_mm = [0, 0, 20], normal = [0, 0, 1] }
pressure_kpa = 0.5
[gravity]
direction = [0, 0, -1]
"""
SUPPORT = '[[supports]]\nregion = { type = "plane", point_mm = [0, 0, 0], normal = [1, 0, 0] }\n'


def refused(*args: object) -> str:
    """Run the CLI; it must refuse with one ``error:`` line and exit 2. Return that line."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from surgplan.case import Case
    from surgplan.manifest import VolumeMeshEntry

    folder = tmp_path_factory.mktemp("box") / "case"
    grid = pv.UnstructuredGrid(
        pv.ImageData(dimensions=(7, 5, 5), spacing=(5.0, 5.0, 5.0)).triangulate()
    )
    centres = grid.cell_centers().points
    grid.cell_data["region"] = np.where(
        np.linalg.norm(centres - [15.0, 10.0, 10.0], axis=1) < 6.0, 2, 1
    ).astype(np.int32)
    case = Case.open_or_new(folder)
    with case.transaction() as tx:
        grid.save(tx.path("meshes/volume.vtu"))
        tx.manifest.volume_mesh = VolumeMeshEntry(
            path="meshes/volume.vtu", regions={"liver": 1, "tumour": 2}, quality={}
        )
    return folder


# -- scenarios ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("radius_mm = 8", 'radius_mm = "big"', "retractors[0].region.radius_mm: Input should be"),
        ('[model]\ntype = "linear"\ndegree = 1', 'model = "linear"', "model: Input should be"),
        ("degree = 1", 'degree = "two"', "model.degree: Input should be a valid integer"),
        ('name = "retraction"', 'name = ""', "name: String should match pattern"),
        ('name = "retraction"', 'name = "r"\ncolour = 3', "colour: Extra inputs are not permitted"),
        ("[[supports]]", "[[support]]", "support: Extra inputs are not permitted"),
        (SUPPORT, "", "at least one [[supports]] table"),
        ("displacement_mm = [0, 0, 5]", "displacement_mm = [0, 0, 1e6]", "within +-100 mm"),
        ("pressure_kpa = 0.5", "pressure_kpa = 1e12", "less than or equal to 50"),
        ("degree = 1", "degree = 1\nload_steps = 0", "model.load_steps: Input should be greater"),
        ("degree = 1", "degree = 1\nload_steps = -3", "model.load_steps: Input should be greater"),
        ("degree = 1", "degree = 5", "model.degree: Input should be less than or equal to 3"),
    ],
)
def test_bad_scenarios_are_refused_before_solving(box, tmp_path, old, new, needle) -> None:
    text = SCENARIO.replace(old, new)
    assert text != SCENARIO
    _refused_scenario(box, tmp_path, text, needle)


@pytest.mark.parametrize(
    ("table", "value", "needle"),
    [
        ('[materials]\ndefault = "liver_healthy"\ntumour = "tumour"\n', 'materials = "liver"',
         "materials: Input should be a valid dictionary"),
        ("[gravity]\ndirection = [0, 0, -1]\n", "gravity = 9.81",
         "gravity: Input should be a valid dictionary"),
    ],
)  # fmt: skip
def test_scalars_where_tables_belong(box, tmp_path, table, value, needle) -> None:
    assert table in SCENARIO
    _refused_scenario(box, tmp_path, value + "\n" + SCENARIO.replace(table, ""), needle)


def _refused_scenario(box: Path, tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "s.toml").write_text(text)
    before = snapshot(box)
    line = refused("simulate", box, "--scenario", tmp_path / "s.toml")
    assert f"invalid scenario {tmp_path / 's.toml'}: " in line and needle in line, line
    assert snapshot(box) == before


def test_supports_given_as_numbers(box, tmp_path) -> None:
    (tmp_path / "s.toml").write_text("supports = [1, 2]\n")
    line = refused("simulate", box, "--scenario", tmp_path / "s.toml")
    assert "supports[0]: Input should be a valid dictionary" in line


@pytest.mark.parametrize("command", ["simulate", "rom"])
def test_simulate_and_rom_without_the_volume_mesh(box, tmp_path, command) -> None:
    case = tmp_path / "case"
    shutil.copytree(box, case)
    (case / "meshes" / "volume.vtu").unlink()
    (tmp_path / "s.toml").write_text(SCENARIO)
    line = refused(command, case, "--scenario", tmp_path / "s.toml")
    assert "volume.vtu" in line and "not found" in line


# -- register -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def liver(liver_models_dir: Path) -> Path:
    return liver_models_dir / "liver.vtk"


@pytest.fixture(scope="module")
def swabs(liver: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from registration.model import load_surface
    from registration.sensors import simulate_swabs

    pts = simulate_swabs(load_surface(liver), n_points=150, coverage=0.3, seed=4)
    path = tmp_path_factory.mktemp("swabs") / "swabs.csv"
    np.savetxt(path, pts + [4.0, -2.0, 3.0], delimiter=",")
    return path


def test_register_refuses_bad_point_files(liver, swabs, tmp_path) -> None:
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 3)
    assert "bin.csv: binary content" in refused(
        "register", "--model", liver, "--points", tmp_path / "bin.csv"
    )
    (tmp_path / "big.csv").write_text("1e300,1e300,1e300\n" * 20)
    line = refused("register", "--model", liver, "--points", tmp_path / "big.csv")
    assert "20 point(s) have coordinates beyond 100000 mm" in line
    for name, doc, needle in [
        ("a.mrk.json", {"markups": [3]}, "markups[0] must be an object, got 3"),
        ("b.mrk.json", {"markups": [{"controlPoints": [1]}]}, "controlPoints[0] must be an obj"),
        (
            "c.mrk.json",
            {"markups": [{"controlPoints": [{"position": "1 2 3"}]}]},
            "position must be a list of 3 numbers, got '1 2 3'",
        ),
    ]:
        (tmp_path / name).write_text(json.dumps(doc))
        assert needle in refused("register", "--model", liver, "--points", tmp_path / name)
    assert "bin.csv: binary content" in refused(
        "register", "--model", liver, "--points", swabs, "--targets", tmp_path / "bin.csv"
    )


@pytest.mark.parametrize(
    ("matrix", "needle"),
    [
        ("0 0 0 0\n0 0 0 0\n0 0 0 0\n0 0 0 1\n", "its 3x3 part is singular"),
        ("1000 0 0 0\n0 1000 0 0\n0 0 1000 0\n0 0 0 1\n", "scaled or sheared (scale 1000"),
        ("-1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n", "it mirrors"),
        (b"\x00\x89binary\xff", "binary content"),
    ],
)
def test_register_refuses_a_non_rigid_init(liver, swabs, tmp_path, matrix, needle) -> None:
    init = tmp_path / "init.txt"
    init.write_bytes(matrix if isinstance(matrix, bytes) else matrix.encode())
    line = refused(
        "register", "--model", liver, "--points", swabs, "--init", init,
        "--write-transform", tmp_path / "out.tfm", "--targets", swabs,
    )  # fmt: skip
    assert needle in line and str(init) in line
    assert not (tmp_path / "out.tfm").exists()


@pytest.mark.parametrize(
    ("destination", "needle"),
    [
        ("/proc/surgplan-test/out.tfm", "cannot write in /proc"),
        ("out.mat", "ITK transform files end in .tfm or .txt"),
        (".", "is a folder; expected a transform file name"),
    ],
)
def test_write_transform_is_checked_before_registering(
    liver, tmp_path, destination, needle
) -> None:
    # 1e300 points would fail registration: the destination must be refused first
    (tmp_path / "big.csv").write_text("1e300,1e300,1e300\n" * 20)
    target = Path(destination) if destination.startswith("/") else tmp_path / destination
    if destination == ".":
        target = tmp_path / "d.tfm"
        target.mkdir()
    line = refused(
        "register", "--model", liver, "--points", tmp_path / "big.csv", "--write-transform", target
    )
    assert needle in line, line


@pytest.mark.parametrize(("units", "scale"), [("m", 1e-3), ("cm", 0.1), ("in", 1 / 25.4)])
def test_points_in_other_units_are_refused_then_converted(liver, swabs, tmp_path, units, scale):
    mm = np.loadtxt(swabs, delimiter=",")
    other = tmp_path / f"swabs_{units}.csv"
    np.savetxt(other, mm * scale, delimiter=",")
    line = refused("register", "--model", liver, "--points", other)
    name = {"m": "metres", "cm": "centimetres", "in": "inches"}[units]
    assert "they are probably in " in line and name in line, line
    assert "Give --units cm|m|in to convert them" in line
    init = tmp_path / "identity.txt"
    init.write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    args = ["register", "--model", liver, "--points", other, "--units", units, "--json",
            "--init", init]  # fmt: skip
    converted = CliRunner().invoke(cli, [str(a) for a in args])
    assert converted.exit_code == 0, converted.stderr
    report = json.loads(converted.stdout)
    assert report["inlier_fraction"] > 0.9  # the known shift (4, -2, 3) mm is recovered
    translation = np.asarray(report["T_model_points"])[:3, 3]
    np.testing.assert_allclose(translation, [-4.0, 2.0, -3.0], atol=1.5)


def test_point_extent_check_units() -> None:
    model = np.array([[0.0, 0, 0], [200.0, 150.0, 120.0]])
    check_point_extent([[0.0, 0, 0], [60.0, 40.0, 20.0]], model, name="p")  # a patch: fine
    with pytest.raises(PointUnitsError, match=r"ratio 0.00\d+.*they are probably in metres"):
        check_point_extent([[0.0, 0, 0], [0.06, 0.04, 0.02]], model, name="p")
    with pytest.raises(PointUnitsError, match="no length unit explains it"):
        check_point_extent([[0.0, 0, 0], [6e5, 4e5, 2e5]], model, name="p")


def test_too_many_points_are_refused_from_the_line_count(tmp_path, monkeypatch, liver) -> None:
    path = tmp_path / "many.csv"
    path.write_text("1,2,3\n" * 101)
    with pytest.raises(PointFileError, match=r"many.csv: 101 lines; at most 100 points"):
        read_points(path, max_points=100)
    assert read_points(path, max_points=101).shape == (101, 3)
    import surgplan.cli.registration_commands as rc

    monkeypatch.setattr(rc, "MAX_REGISTER_POINTS", 100)
    assert "101 lines; at most 100 points are accepted" in refused(
        "register", "--model", liver, "--points", path
    )


# -- study --------------------------------------------------------------------------------------


def _spec(liver: Path, extra: str = "", protocol: str = "n_points = [200]\n") -> str:
    return (
        f'name = "x"\nseed = 1\nrepeats = 1\n{extra}[[models]]\nname = "liver"\n'
        f'surface = "{liver}"\ntargets = [{{ name = "t", point_mm = [0.0, 0.0, 0.0] }}]\n'
        f"[protocol]\n{protocol}"
    )


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("s.yaml", "a: [1, 2\n b: {", "cannot parse YAML at line 2"),
        ("s.toml", bytes(range(256)), "binary content (NUL byte at offset 0)"),
        ("s.toml", 'point_mm = ["a"', "cannot parse"),
        ("s.toml", "TARGET_A", "field 'models[0].targets[0].point_mm[0]': input should be a valid"),
        ("s.toml", "COLOUR", "field 'models[0].colour': unknown field"),
        ("s.toml", "INF", "field 'protocol.translation_mm[0]': value inf out of range"),
        ("s.toml", "REPEATS", "expands to 1,000,000,000 trials"),
        ("s.toml", "NPOINTS", "field 'protocol.n_points[0]': value 50000000 out of range"),
        ("s.toml", "TOTAL", "simulates 200,000,000 points in all"),
    ],
)
def test_bad_study_specs(liver, tmp_path, name, content, needle) -> None:
    good = _spec(liver)
    content = {
        "TARGET_A": good.replace("point_mm = [0.0, 0.0, 0.0]", 'point_mm = ["a", 0.0, 0.0]'),
        "COLOUR": good.replace('name = "liver"', 'name = "liver"\ncolour = 1'),
        "INF": good + "translation_mm = [inf]\n",
        "REPEATS": good.replace("repeats = 1", "repeats = 1000000000"),
        "NPOINTS": good.replace("n_points = [200]", "n_points = [50000000]"),
        "TOTAL": good.replace("repeats = 1", "repeats = 200").replace(
            "n_points = [200]", "n_points = [1000000]"
        ),
    }.get(content, content)
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    line = refused("study", path, "--out", tmp_path / "out")
    assert needle in line and str(path) in line, line
    assert not (tmp_path / "out").exists()


def test_study_out_and_scheduler_are_checked_first(liver, tmp_path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(_spec(liver))
    (tmp_path / "file").write_text("x")
    line = refused("study", spec, "--out", tmp_path / "file")
    assert (
        line
        == f"error: --out {tmp_path / 'file'}: is a file; expected a folder for the study outputs"
    )
    line = refused("study", spec, "--out", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:1")
    assert "--scheduler tcp://127.0.0.1:1: cannot connect (Connection refused)" in line
    assert "expected a Dask scheduler address" in refused(
        "study", spec, "--out", tmp_path / "o", "--scheduler", "http://:x"
    )
    assert not (tmp_path / "o").exists()


# -- demo and meshes -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crashing_vtk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A legacy VTK file whose version line is garbled: VTK's reader dies of SIGSEGV on it."""
    folder = tmp_path_factory.mktemp("crash")
    good = write_surface(pv.Sphere(theta_resolution=8, phi_resolution=8), folder / "good.vtk")
    bad = folder / "liver.vtk"
    bad.write_bytes(good.read_bytes().replace(b"Version 5.1", b"Version Q.1", 1))
    return bad


def test_the_crashing_file_really_crashes_vtk(crashing_vtk: Path) -> None:
    code = (
        "import sys\nfrom vtkmodules.vtkIOLegacy import vtkDataSetReader\n"
        "r = vtkDataSetReader(); r.SetFileName(sys.argv[1]); r.ReadAllFieldsOn(); r.Update()\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(crashing_vtk)], capture_output=True)
    assert done.returncode == -11  # SIGSEGV: the reason for probe_mesh_file


def test_a_crashing_mesh_file_is_one_error_line(crashing_vtk: Path, swabs: Path) -> None:
    with pytest.raises(MeshingError, match=r"VTK's reader crashed with SIGSEGV"):
        read_surface(crashing_vtk)
    line = refused("register", "--model", crashing_vtk, "--points", swabs)
    assert f"cannot read mesh file {crashing_vtk}: corrupt legacy VTK file" in line
    line = refused(
        "register", "--model", crashing_vtk.with_name("good.vtk"), "--points", crashing_vtk
    )
    assert "VTK's reader crashed with SIGSEGV" in line


def test_demo_refuses_a_file_as_out_and_corrupt_liver_models(tmp_path, crashing_vtk) -> None:
    (tmp_path / "file").write_text("x")
    assert refused("demo", "--out", tmp_path / "file") == (
        f"error: {tmp_path / 'file'}: is a file; expected a folder for the demo's outputs"
    )
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(crashing_vtk, models / "liver.vtk")
    line = refused("demo", "--out", tmp_path / "demo", "--liver-models", models)
    assert f"cannot read mesh file {models / 'liver.vtk'}" in line
    assert not (tmp_path / "demo").exists()  # nothing half-made
