import json

import click
import numpy as np
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
