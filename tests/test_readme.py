"""The README's Python quick start runs as written and does what it says."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from registration import target_registration_error
from tests.conftest import REPO_ROOT


def quick_start_code() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Python quick start", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "README has no Python quick start block"
    return blocks[0]


def test_quick_start_runs(tmp_path: Path) -> None:
    code = quick_start_code()
    assert 10 <= len(code.strip().splitlines()) <= 25
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        exec(compile(code, "README.md quick start", "exec"), namespace)
    finally:
        os.chdir(here)
    assert (tmp_path / "case" / "case.json").is_file()
    assert namespace["labels"].structures["liver"].volume_ml > 100.0
    assert namespace["meshes"].volume_mesh.quality.gamma_min > 0.0
    fit = namespace["fit"]
    # The swabs are in model space (the true pose is the identity): small error over the liver.
    assert fit.trustworthy, fit.reason
    liver = namespace["liver"]
    tre = target_registration_error(fit.T_model_points, np.eye(4), liver.vertices[::50])
    assert tre.max() < 3.0, tre.max()
