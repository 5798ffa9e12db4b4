"""The same problem on 2 MPI ranks gives the serial answer."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
import numpy as np
from mpi4py import MPI
from biomech import geometry
from biomech.loads import FixedSupport, Gravity, LoadCase, Pressure, TaggedFacets
from biomech.materials import LIVER_FIBROTIC
from biomech.tissue import solve_tissue
fe = geometry.box(30.0, 20.0, 20.0, mesh_size_mm=5.0)
loads = LoadCase(
    supports=[FixedSupport(TaggedFacets("x0"))],
    pressures=[Pressure(TaggedFacets("z1"), 0.2)],
    gravity=Gravity((0.0, 0.0, -1.0)),
)
out = {"ranks": MPI.COMM_WORLD.size}
for model in ("linear", "neohookean"):
    res = solve_tissue(fe, LIVER_FIBROTIC, loads, model=model, degree=2, load_steps=2)
    out[model] = res.displacement_norm_mm()
    out[model + "_dofs"] = res.info.num_dofs
res.write_xdmf(sys.argv[1])
if MPI.COMM_WORLD.rank == 0:
    print("RESULT " + json.dumps(out))
"""


def _run(cmd, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][0]
    return json.loads(line[7:])


def test_two_ranks_match_serial(tmp_path):
    script = tmp_path / "mpi_case.py"
    script.write_text(SCRIPT)
    repo = Path(__file__).resolve().parents[1]
    script_env = [sys.executable, str(script)]
    serial = _run([*script_env, str(tmp_path / "serial.xdmf")], tmp_path)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    parallel = _run([str(mpiexec), "-n", "2", *script_env, str(tmp_path / "par.xdmf")], tmp_path)
    assert parallel["ranks"] == 2
    for model in ("linear", "neohookean"):
        assert serial[model + "_dofs"] == parallel[model + "_dofs"]
        assert serial[model] > 0.5
        rel = abs(serial[model] - parallel[model]) / serial[model]
        print(f"{model}: serial {serial[model]!r} parallel {parallel[model]!r} rel {rel:.2e}")
        assert rel < 1e-8
    assert (tmp_path / "par.xdmf").is_file() and (tmp_path / "par.h5").is_file()
    assert repo.is_dir()
