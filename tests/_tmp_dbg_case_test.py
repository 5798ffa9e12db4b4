from pathlib import Path
import SimpleITK as sitk
from click.testing import CliRunner
from surgplan.cli import cli
from surgplan.phantom.generate import generate_phantom

def test_x(tmp_path):
    p = generate_phantom(seed=0, spacing_mm=(5.0, 5.0, 5.0))
    sitk.WriteImage(p.ct, str(tmp_path / "a.nrrd"))
    r = CliRunner().invoke(cli, ["import", str(tmp_path / "a.nrrd"), str(tmp_path / "case")])
    print("CODE", r.exit_code, r.stderr, r.stdout)
    import traceback
    if r.exc_info: traceback.print_exception(r.exc_info[1])
    assert r.exit_code == 0
