import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

from registration.io import read_itk_transform, write_slicer_markups
from registration.model import load_surface
from registration.sensors import add_noise, simulate_swabs
from surgplan.cli import registration_commands


def _cli():
    group = click.Group()
    registration_commands.register(group)
    return group


def test_register_json_contract(tmp_path, liver_models_dir):
    liver = load_surface(liver_models_dir / "liver.vtk")
    pts = add_noise(simulate_swabs(liver, n_points=300, coverage=0.3, seed=0), noise_mm=0.5, seed=1)
    shift = np.array([5.0, -3.0, 2.0])
    pts = pts + shift
    pts[0] = np.nan
    np.savetxt(tmp_path / "p.csv", pts, delimiter=",", header="x,y,z", comments="")
    (tmp_path / "init.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    write_slicer_markups(tmp_path / "t.mrk.json", [liver.centroid_mm])
    res = CliRunner().invoke(
        _cli(),
        [
            "register",
            "--model",
            str(liver_models_dir / "liver.vtk"),
            "--points",
            str(tmp_path / "p.csv"),
            "--init",
            str(tmp_path / "init.txt"),
            "--targets",
            str(tmp_path / "t.mrk.json"),
            "--noise-mm",
            "0.5",
            "--write-transform",
            str(tmp_path / "r.tfm"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in (
        "T_model_points",
        "inlier_fraction",
        "inlier_rms_mm",
        "trustworthy",
        "reason",
        "n_points_used",
        "n_points_dropped",
        "time_ms",
    ):
        assert key in out
    assert out["n_points_dropped"] == 1 and out["n_points_used"] == 299
    np.testing.assert_allclose(np.array(out["T_model_points"])[:3, 3], -shift, atol=0.5)
    np.testing.assert_allclose(
        out["targets"][0]["predicted_points_space_mm"], liver.centroid_mm + shift, atol=0.5
    )
    np.testing.assert_allclose(
        read_itk_transform(tmp_path / "r.tfm"), out["T_model_points"], atol=1e-9
    )


def test_register_bad_input_is_one_line_error(tmp_path, liver_models_dir):
    (tmp_path / "p.csv").write_text("1,2,3\nnan,1,1\n")
    res = CliRunner().invoke(
        _cli(),
        [
            "register",
            "--model",
            str(liver_models_dir / "liver.vtk"),
            "--points",
            str(tmp_path / "p.csv"),
            "--json",
        ],
    )
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "1 finite points remain" in res.stderr
    assert res.stdout == ""


def _shifted_swabs(liver_models_dir, shift):
    liver = load_surface(liver_models_dir / "liver.vtk")
    pts = add_noise(simulate_swabs(liver, n_points=300, coverage=0.3, seed=0), noise_mm=0.5, seed=1)
    return pts + shift


def _register(liver_models_dir, points, tmp_path):
    (tmp_path / "init.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    return CliRunner().invoke(
        _cli(),
        [
            "register",
            "--model",
            str(liver_models_dir / "liver.vtk"),
            "--points",
            str(points),
            "--init",
            str(tmp_path / "init.txt"),
            "--noise-mm",
            "0.5",
            "--json",
        ],
    )


@pytest.mark.parametrize("suffix", [".vtp", ".stl"])
def test_register_takes_mesh_files_as_points(tmp_path, liver_models_dir, suffix):
    import pyvista as pv

    shift = np.array([5.0, -3.0, 2.0])
    pts = _shifted_swabs(liver_models_dir, shift)
    mesh = pv.PolyData(pts)
    if suffix == ".stl":
        mesh = mesh.delaunay_2d()  # STL holds triangles: a patch through the swabs
    mesh.save(tmp_path / f"swabs{suffix}")
    res = _register(liver_models_dir, tmp_path / f"swabs{suffix}", tmp_path)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_points_used"] == 300 and out["n_points_dropped"] == 0
    np.testing.assert_allclose(np.array(out["T_model_points"])[:3, 3], -shift, atol=0.5)


def _bad_inputs(tmp_path):
    import pyvista as pv

    markups = {
        "entry.mrk.json": {"@schema": "x", "markups": ["Fiducial"]},
        "text.mrk.json": {"@schema": "x", "markups": [{"controlPoints": [{"position": "1 2 3"}]}]},
    }
    for name, doc in markups.items():
        (tmp_path / name).write_text(json.dumps(doc))
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    pv.PolyData().save(tmp_path / "empty.vtp")
    pv.PolyData(np.array([[0.0, 0, 0], [1, 0, np.nan], [0, 1, 0]])).save(tmp_path / "nan.vtp")
    (tmp_path / "junk.stl").write_bytes(b"\x00\x01\x02 definitely not an STL")
    return {
        "entry.mrk.json": r"markups\[0\] must be an object",
        "text.mrk.json": r"position must be a list of 3 numbers, got '1 2 3'",
        "binary.csv": r"binary content \(NUL byte at offset 0\)",
        "empty.vtp": r"mesh has no points",
        "nan.vtp": r"1 of 3 mesh vertices are NaN or infinite",
        "junk.stl": r"(cannot read mesh|mesh has no points)",
    }


def test_register_bad_point_files_are_one_line_errors(tmp_path, liver_models_dir, capfd):
    import re

    for name, pattern in _bad_inputs(tmp_path).items():
        res = _register(liver_models_dir, tmp_path / name, tmp_path)
        assert res.exit_code == 2, (name, res.output)
        assert res.stdout == ""
        assert res.stderr.startswith(f"error: {tmp_path / name}: "), res.stderr
        assert res.stderr.count("\n") == 1, res.stderr
        assert re.search(pattern, res.stderr), (name, res.stderr)
    leaked = capfd.readouterr()  # nothing from VTK or pyvista on the real stdout/stderr
    assert leaked.out == "" and leaked.err == "", leaked


def test_register_help_states_each_transform_files_direction():
    import re

    text = " ".join(CliRunner().invoke(_cli(), ["register", "--help"]).output.split())
    text = re.sub(r"(\w)- (\w)", r"\1-\2", text)  # rejoin words click wrapped at a hyphen
    assert "An ITK .tfm is read as --write-transform writes it: it holds T_points_model" in text
    assert "T_points_model = inverse(T_model_points) (= T_tracker_model)" in text
    assert "A 4x4 text matrix is T_model_points" in text
    assert "mesh (.vtk .vtp .stl .obj) whose vertices are the points" in text
