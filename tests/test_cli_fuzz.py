"""A fuzzed CLI: bad inputs for every command must end in one ``error:`` line and exit code 2.

Two parts, both deterministic (the seeds are printed and given in every failure message):

- **Byte-level mutation** of real files of every format the project reads (``.nrrd``,
  ``.nii.gz``, label maps, ``.vtk``, ``.vtp``, ``.stl``, ``.vtu``, points ``.csv``/``.txt``,
  ``.mrk.json`` markups, ``.tfm``/``.txt`` transforms, ``case.json``, scenario and study specs),
  each fed to the command that reads it, in a child process (:mod:`tests.cli_fuzzing`) so that a
  crash of a native reader is seen as a crash, not the end of the test run. A mutation may leave
  a valid file (exit 0); anything else must be a clean refusal with the case byte-identical.
- **Hypothesis strategies** over the scenario TOML, the study spec (TOML/YAML/JSON), markups
  JSON, point lists, numeric options and case folders of every command, run in-process through
  click's ``CliRunner``: every generated input is invalid, so every one must be refused.

``SURGPLAN_FUZZ_SEED`` and ``SURGPLAN_FUZZ_PER_FORMAT`` change the campaign (``benchmarks/
cli_fuzz.py`` runs a larger one and prints its figures).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from registration.study.spec import CASES
from surgplan.cli import cli
from tests.cli_fuzzing import digest, make_fixtures, mutated_cases, run_cases, summarise

SEED = int(os.environ.get("SURGPLAN_FUZZ_SEED", "16"))
PER_FORMAT = int(os.environ.get("SURGPLAN_FUZZ_PER_FORMAT", "80"))
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_fixtures(tmp_path_factory.mktemp("fuzz") / "fixtures")


def refused(args: list[str], *, unchanged: Path | None = None) -> str:
    """Invoke in-process; assert one ``error:`` line, exit 2, no traceback, ``unchanged`` kept."""
    before = digest(str(unchanged)) if unchanged is not None else None
    result = CliRunner().invoke(cli, [str(a) for a in args])
    lines = result.stderr.splitlines()
    context = f"seed {SEED}: {args}: exit {result.exit_code}: {result.stderr[-800:]}"
    assert result.exit_code == 2, context
    assert len(lines) == 1 and lines[0].startswith("error: "), context
    assert "Traceback" not in result.output, context
    if unchanged is not None:
        assert digest(str(unchanged)) == before, f"case changed on refusal: {context}"
    return lines[0]


# -- byte-level mutation of every format --------------------------------------------------------


def test_mutated_files_of_every_format(fixtures: dict[str, Path], tmp_path: Path) -> None:
    print(f"cli fuzz: seed {SEED}, {PER_FORMAT} mutations per format")
    cases = mutated_cases(fixtures, tmp_path / "work", PER_FORMAT, SEED)
    summary = summarise(run_cases(cases))
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}))
    assert summary["inputs"] >= 14 * PER_FORMAT  # spec mutations that stay valid are skipped
    assert set(summary["per_format"]) >= {
        "nrrd", "nii.gz", "labels.nii.gz", "vtk", "vtp", "stl", "vtu", "csv", "txt",
        "mrk.json", "tfm", "init.txt", "case.json", "scenario.toml", "study.toml", "study.yaml",
    }  # fmt: skip
    bad = summary["failures"]
    assert not bad, f"seed {SEED}: {len(bad)} failures: {json.dumps(bad[:5], indent=1)}"
    assert summary["refused_clean"] > summary["accepted"]  # the mutations did break files
    assert sum(summary[k] for k in ("crashes", "tracebacks", "timeouts")) == 0


# -- scenario TOML ------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(value)


def to_toml(doc: dict[str, Any]) -> str:
    """A TOML document of plain data (every table inline: TOML is JSON-like that way)."""
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in doc.items())


def _scenario() -> dict[str, Any]:
    return {
        "name": "s",
        "model": {"type": "linear", "degree": 1, "load_steps": 1},
        "materials": {"default": "liver_healthy"},
        "supports": [{"region": {"type": "plane", "point_mm": [0, 0, 0], "normal": [1, 0, 0]}}],
        "retractors": [
            {
                "region": {"type": "sphere", "centre_mm": [15, 5, 10], "radius_mm": 6},
                "displacement_mm": [0, 0, 2],
            }
        ],
        "pressures": [{"region": {"type": "all"}, "pressure_kpa": 1.0}],
        "gravity": {"direction": [0, 0, -1]},
    }


#: Text that no number or preset name parses from.
_WORD = st.text(alphabet="abcxyz_", min_size=1, max_size=8)
#: (path into the scenario, values that are all invalid there)
_SCENARIO_POISON: list[tuple[tuple[Any, ...], st.SearchStrategy]] = [
    (("name",), st.sampled_from(["", "a b", "x" * 65, "é"]) | st.integers() | st.lists(st.text())),
    (("model",), st.text() | st.floats() | st.lists(st.integers())),
    (("model", "type"), st.text().filter(lambda t: t not in ("linear", "neohookean"))),
    (("model", "degree"), st.integers(max_value=0) | st.integers(min_value=4) | _WORD),
    (("model", "load_steps"), st.integers(max_value=0) | st.integers(min_value=101)),
    (("materials",), st.text() | st.lists(st.integers())),
    (("materials", "default"), st.text(alphabet="XYZ0123", min_size=1) | st.integers()),
    (("supports",), st.lists(st.integers() | st.text(), min_size=1) | st.just([])),
    (("supports", 0, "region", "type"), st.text().filter(lambda t: t not in ("plane",))),
    (("retractors", 0, "region", "radius_mm"), st.floats(max_value=0) | st.floats(min_value=501)
     | _WORD),
    (("retractors", 0, "displacement_mm"), st.lists(st.floats(min_value=101), min_size=3,
                                                      max_size=3)),
    (("retractors", 0, "profile"), st.text().filter(lambda t: t not in ("uniform", "bump",
                                                                          "spring"))),
    (("pressures", 0, "pressure_kpa"), st.floats(min_value=50.001) | st.floats(max_value=-50.001)
     | st.just(math.nan)),
    (("gravity",), st.floats() | st.text()),
    (("gravity", "direction"), st.just([0, 0, 0]) | st.lists(st.floats(), max_size=2)),
]  # fmt: skip


@st.composite
def bad_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    doc = _scenario()
    kind = draw(st.sampled_from(["poison", "unknown_key", "misspelt_table"]))
    if kind == "poison":
        path, values = draw(st.sampled_from(_SCENARIO_POISON))
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = draw(values)
    elif kind == "unknown_key":
        key = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
        table = draw(st.sampled_from([doc, doc["model"], doc["supports"][0], doc["gravity"]]))
        if key in table or (table is doc and key in _scenario()):
            key = key + "_x"
        table[key] = draw(st.integers() | st.text())
    else:
        old = draw(st.sampled_from(["supports", "retractors", "pressures", "model", "gravity"]))
        doc[old.rstrip("s") if old.endswith("s") else old + "s"] = doc.pop(old)
    return doc


@FUZZ
@given(doc=bad_scenarios())
def test_generated_bad_scenarios(fixtures: dict[str, Path], tmp_path: Path, doc) -> None:
    path = tmp_path / "s.toml"
    path.write_text(to_toml(doc))
    line = refused(["simulate", fixtures["box"], "--scenario", path], unchanged=fixtures["box"])
    assert str(path) in line


# -- study specs --------------------------------------------------------------------------------


def _study(surface: Path) -> dict[str, Any]:
    return {
        "name": "fuzz",
        "seed": 1,
        "repeats": 1,
        "models": [{"name": "organ", "surface": str(surface),
                    "targets": [{"name": "t", "point_mm": [0.0, 0.0, 0.0]}]}],
        "protocol": {"n_points": [50], "case": ["good"]},
    }  # fmt: skip


_STUDY_POISON: list[tuple[tuple[Any, ...], st.SearchStrategy]] = [
    (("seed",), st.integers(max_value=-1) | st.text() | st.floats()),
    (("repeats",), st.integers(max_value=0) | st.integers(min_value=200_001) | st.floats()),
    (("models",), st.just([]) | st.text() | st.lists(st.integers(), min_size=1)),
    (("models", 0, "surface"), st.text().map(lambda t: f"/nonexistent/{t}.vtk")),
    (("models", 0, "targets", 0, "point_mm"), st.lists(st.text(min_size=1), min_size=3,
                                                         max_size=3) | st.just([1.0, 2.0])),
    (("protocol", "n_points"), st.lists(st.integers(max_value=5) | st.integers(
        min_value=1_000_001), min_size=1, max_size=3)),
    (("protocol", "noise_mm"), st.just([math.inf]) | st.just([0.0]) | st.just([21.0])),
    (("protocol", "translation_mm"), st.just([math.inf]) | st.just([math.nan]) | st.just([-1.0])),
    (("protocol", "case"), st.lists(st.text().filter(lambda t: t not in CASES), min_size=1,
                                    max_size=2)),
    (("protocol", "coverage"), st.lists(st.floats(min_value=1.0001) | st.floats(max_value=0),
                                        min_size=1, max_size=2)),
]  # fmt: skip


@st.composite
def bad_studies(draw: st.DrawFn, surface: Path) -> dict[str, Any]:
    doc = _study(surface)
    if draw(st.booleans()):
        path, values = draw(st.sampled_from(_STUDY_POISON))
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = draw(values)
    else:
        key = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10))
        table = draw(st.sampled_from([doc, doc["models"][0], doc["protocol"],
                                      doc["models"][0]["targets"][0]]))  # fmt: skip
        table[key + "_unknown"] = draw(st.integers() | st.text())
    return doc


@FUZZ
@given(data=st.data(), fmt=st.sampled_from(["toml", "yaml", "json"]))
def test_generated_bad_study_specs(fixtures: dict[str, Path], tmp_path: Path, data, fmt) -> None:
    doc = data.draw(bad_studies(fixtures["vtp"]))
    path = tmp_path / f"spec.{fmt}"
    text = {"toml": to_toml, "yaml": yaml.safe_dump, "json": json.dumps}[fmt](doc)
    path.write_text(text)
    out = tmp_path / "study-out"
    shutil.rmtree(out, ignore_errors=True)
    line = refused(["study", path, "--out", out])
    assert str(path) in line
    assert not out.exists()


# -- markups, points and numeric options ---------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8,
)  # fmt: skip


def _not_three_numbers(value: Any) -> bool:
    return not (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


@st.composite
def bad_markups(draw: st.DrawFn) -> dict[str, Any]:
    cp = {"label": "F-1", "position": [1.0, 2.0, 3.0], "positionStatus": "defined"}
    node = {"type": "Fiducial", "coordinateSystem": "LPS", "controlPoints": [cp]}
    doc: dict[str, Any] = {"markups": [node]}
    where = draw(st.sampled_from(["doc", "markups", "node", "system", "units", "cps", "cp",
                                  "position", "status", "orientation"]))  # fmt: skip
    junk = draw(_JSON)
    if where == "doc":
        return draw(st.sampled_from([[], {"markup": []}, {"markups": {}}]))
    if where == "markups":
        doc["markups"] = [draw(_JSON.filter(lambda v: not isinstance(v, dict)))]
    elif where == "node":
        doc["markups"] = draw(_JSON.filter(lambda v: not isinstance(v, list)))
    elif where == "system":
        node["coordinateSystem"] = draw(_JSON.filter(lambda v: v not in ("LPS", "RAS")))
    elif where == "units":
        node["coordinateUnits"] = draw(_JSON.filter(lambda v: v not in ("mm", "um", "cm", "m")))
    elif where == "cps":
        node["controlPoints"] = draw(_JSON.filter(lambda v: not isinstance(v, list)))
    elif where == "cp":
        node["controlPoints"] = [draw(_JSON.filter(lambda v: not isinstance(v, dict)))]
    elif where == "position":
        cp["position"] = draw(_JSON.filter(_not_three_numbers))
    elif where == "status":
        cp["positionStatus"] = draw(
            _JSON.filter(lambda v: v not in ("defined", "preview", "undefined"))
        )
    else:
        cp["orientation"] = junk if not isinstance(junk, list) or len(junk) != 9 else "x"
    return doc


@FUZZ
@given(doc=bad_markups())
def test_generated_bad_markups(fixtures: dict[str, Path], tmp_path: Path, doc) -> None:
    path = tmp_path / "p.mrk.json"
    path.write_text(json.dumps(doc))
    args = [
        "register",
        "--model",
        fixtures["vtp"],
        "--points",
        path,
        "--init",
        fixtures["init.txt"],
    ]
    assert str(path) in refused(args)


_POISON_ROWS = [["x", "1", "2"], ["1", "2"], ["1e300", "0", "0"], ["1e", "2", "3"],
                ["0x10", "1", "2"], ["--", "1", "2"], ["nan", "one", "2"]]  # fmt: skip


@FUZZ
@given(
    rows=st.lists(st.lists(st.floats(-500, 500).map(repr) | st.just("nan"), min_size=3,
                           max_size=4), min_size=3, max_size=8),
    poison=st.sampled_from(_POISON_ROWS),
    where=st.integers(0, 8),
    ext=st.sampled_from(["csv", "txt", "xyz"]),
)  # fmt: skip
def test_generated_point_lists(fixtures, tmp_path, rows, poison, where, ext) -> None:
    """Valid rows (NaN included: dropped and counted) with one bad row anywhere: refused."""
    sep = "," if ext == "csv" else " "
    rows.insert(min(where, len(rows)), poison)
    path = tmp_path / f"p.{ext}"
    path.write_text("x,y,z\n" + "\n".join(sep.join(r) for r in rows) + "\n")
    args = [
        "register",
        "--model",
        fixtures["vtp"],
        "--points",
        path,
        "--init",
        fixtures["init.txt"],
    ]
    assert str(path) in refused(args)


def _fill(template: list[str], names: dict[str, Any]) -> list[str]:
    """``template`` with every ``{name}`` replaced by ``str(names[name])``."""
    out = []
    for arg in template:
        for key, value in names.items():
            arg = arg.replace("{" + key + "}", str(value))
        out.append(arg)
    return out


#: Numeric options and the command lines they sit in; every generated value is outside range.
_NUMERIC_OPTIONS = [
    ["register", "--model", "{vtp}", "--points", "{csv}", "--noise-mm"],
    ["register", "--model", "{vtp}", "--points", "{csv}", "--init-max-rotation-deg"],
    ["rom", "{box}", "--centres"],
    ["rom", "{box}", "--site-radius-mm"],
    ["study", "{study.toml}", "--out", "{tmp}/o", "--workers"],
]


@FUZZ
@given(
    option=st.sampled_from(range(len(_NUMERIC_OPTIONS))),
    value=st.sampled_from(["nan", "inf", "-inf", "", "1e", "ten", "1e400"])
    | st.floats(max_value=-1e-3).map(repr)
    | st.floats(min_value=1001.0, allow_infinity=False).map(repr),
)
def test_numeric_options_out_of_range(fixtures, tmp_path, option, value) -> None:
    template = _NUMERIC_OPTIONS[option]
    args = _fill(template, {"tmp": tmp_path, **fixtures})
    assert f"Invalid value for '{template[-1]}'" in refused([*args, value])


# -- every command's case argument ----------------------------------------------------------------

_CASE_COMMANDS = {
    "segment": ["--structure", "liver", "--seed", "0", "0", "0"],
    "mesh": [],
    "export": ["--structure", "liver", "--label", "{tmp}/o.nii.gz"],
    "simulate": ["--scenario", "{scenario.toml}"],
    "rom": [],
    "register": None,
    "live": ["--port", "0"],
    "replay": ["S1"],
    "sessions": [],
    "pivot": ["{csv}"],
    "snapshot": ["--out", "{tmp}/s.png"],
    "credibility": ["--out", "{tmp}/cred"],
    "import-model": None,
    "vr": ["--backend", "simulated", "--frames", "1"],
    "vr-calibrate": ["--headset-points", "{csv}", "--tracker-points", "{csv}"],
}


@FUZZ
@given(
    command=st.sampled_from(sorted(_CASE_COMMANDS)),
    manifest=st.one_of(
        st.none(),
        st.binary(max_size=64),
        _JSON.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.sampled_from(["bogus", "images", "scan"]), _JSON, min_size=1).map(
            lambda d: json.dumps({"surgplan_case": 1, **d}).encode()
        ),
        st.just(b'{"version": 99}'),
    ),
)
def test_every_case_command_refuses_a_bad_case(fixtures, tmp_path, command, manifest) -> None:
    assume(manifest is not None or command != "import-model")  # it makes a new case there
    case = tmp_path / "badcase"
    shutil.rmtree(case, ignore_errors=True)
    case.mkdir()
    if manifest is not None:
        (case / "case.json").write_bytes(manifest)
    names = {"tmp": tmp_path, **fixtures}
    extra = _CASE_COMMANDS[command]
    if command == "register":
        args = ["register", "--case", case, "--points", fixtures["csv"]]
    elif command == "import-model":
        args = ["import-model", fixtures["vtp"], case, "--structure", "liver"]
    else:
        args = [command, case, *_fill(extra, names)]
    refused(args, unchanged=case)


def test_commands_without_a_case(fixtures: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert "unknown verification problem" in refused(["verify", "--problem", "bogus"])
    assert "is a file" in refused(["demo", "--out", tmp_path / "file"])
    assert "does not exist" in refused(["import", tmp_path / "none.nrrd", tmp_path / "c"])
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("{tmp}", "is a folder; expected a file name for the export"),
        ("/proc/surgplan-fuzz.nii.gz", "cannot write"),
        ("{case}/images/scan.nrrd", "inside the case folder"),
    ],
)
def test_export_onto_a_folder_proc_or_the_case(fixtures, tmp_path, target, needle) -> None:
    case = tmp_path / "case"
    shutil.copytree(fixtures["case"], case)
    label = _fill([target], {"tmp": tmp_path, "case": case})[0]
    line = refused(["export", case, "--structure", "liver", "--label", label], unchanged=case)
    assert needle in line, line
