"""``surgplan snapshot``: the viewer's scene offscreen (EGL), checked pixel by pixel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from surgplan.cli import cli
from tests.viewer_cases import hue_like, liver_like, phantom_viewer_case


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phantom_viewer_case(tmp_path_factory)


def snapshot(case: Path, out: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["snapshot", str(case), "--out", str(out), "--json", *args])
    return result.exit_code, result.stdout, result.stderr


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_anterior_and_posterior_views_show_every_structure_where_expected(
    case: Path, tmp_path: Path
) -> None:
    from surgplan.case import Case
    from surgplan.export import display_style

    code, out, err = snapshot(case, tmp_path / "front.png", "--view", "anterior")
    assert code == 0, err
    report = json.loads(out)
    assert set(report["structures"]) == {"liver", "tumour", "portal_vein", "bone"}
    front = pixels(tmp_path / "front.png")
    assert front.shape == (800, 1000, 3)
    c = Case.open(case)
    for name in ("tumour", "portal_vein", "bone"):
        assert hue_like(front, display_style(c, name)[0]).sum() > 100, name
    liver = liver_like(front)
    assert liver.sum() > 3000
    assert np.nonzero(liver)[1].mean() < 500  # patient's right (-x) on the viewer's left
    code, _, err = snapshot(case, tmp_path / "back.png", "--view", "posterior")
    assert code == 0, err
    back = liver_like(pixels(tmp_path / "back.png"))
    assert np.nonzero(back)[1].mean() > 500  # seen from behind: on the right


def test_superior_view_and_structure_subset(case: Path, tmp_path: Path) -> None:
    from surgplan.case import Case
    from surgplan.export import display_style

    code, _, err = snapshot(case, tmp_path / "top.png", "--view", "superior",
                            "--structures", "tumour")  # fmt: skip
    assert code == 0, err
    img = pixels(tmp_path / "top.png")
    tumour = hue_like(img, display_style(Case.open(case), "tumour")[0])
    assert tumour.sum() > 5000  # framed on the tumour alone
    drawn = ~np.all(img > 245, axis=-1)
    assert tumour.sum() > 0.9 * drawn.sum()  # nothing else drawn
    assert liver_like(img).sum() == 0


@pytest.mark.parametrize(
    ("args", "message", "max_lines"),
    [
        (["--structures", "spleen"], "error: structure(s) spleen have no surface", 1),
        (["--session", "abc"], "error: --session and --at go together", 1),
        (["--view", "sideways"], "'sideways' is not one of", 3),  # click's usage error
    ],
)
def test_bad_requests_are_errors_that_write_nothing(
    case: Path, tmp_path: Path, args, message, max_lines
) -> None:
    code, out, err = snapshot(case, tmp_path / "x.png", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) <= max_lines
    assert not (tmp_path / "x.png").exists()


def test_not_a_case(tmp_path: Path) -> None:
    code, _, err = snapshot(tmp_path / "none", tmp_path / "x.png")
    assert code == 2 and "not a surgplan case" in err
