"""A case folder that cannot be corrupted: regression tests of issue 16, "Data loss and corruption".

1. manifest paths leading outside the case (``..``, absolute, symbolic links) are refused when
   the manifest is read, and nothing outside the case is deleted or written;
2. two writers never lose an update: the manifest is re-read under the lock, and a step whose
   input changed meanwhile is refused;
3. what an interrupted step leaves (staging folder, lock, temporary manifest, a commit
   journal) is finished or collected, and reported, by the next command;
4. an export never writes into the case; a different scan drops everything derived from the
   old one, with a note naming it;
5. a read-only ``case.json`` or case folder: one-line error, nothing changed.

The scan is the project's phantom on a 5 mm grid (60 x 50 x 36 voxels).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from surgplan.case import JOURNAL_NAME, Case
from surgplan.cli import cli
from surgplan.errors import CaseError
from surgplan.phantom.generate import generate_phantom
from surgplan.scan_import import import_scan
from surgplan.segment import segment_structure

SPACING_MM = (5.0, 5.0, 5.0)


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def manifest(case: Path) -> dict:
    return json.loads((case / "case.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The phantom (seed 0), another phantom on the same grid (seed 1), one on another grid."""
    folder = tmp_path_factory.mktemp("scans")
    phantom = generate_phantom(seed=0, spacing_mm=SPACING_MM)
    paths = {"a": folder / "a.nrrd", "b": folder / "b.nrrd", "grid": folder / "grid.nrrd"}
    sitk.WriteImage(phantom.ct, str(paths["a"]))
    sitk.WriteImage(generate_phantom(seed=1, spacing_mm=SPACING_MM).ct, str(paths["b"]))
    sitk.WriteImage(generate_phantom(seed=0, spacing_mm=(4.0, 4.0, 5.0)).ct, str(paths["grid"]))
    return {**paths, "liver_seed": phantom.seeds_lps_mm["liver"]}


@pytest.fixture(scope="module")
def base_case(tmp_path_factory: pytest.TempPathFactory, scans: dict) -> Path:
    """Scan a, the liver segmented from its seed, its surface and volume mesh."""
    case = tmp_path_factory.mktemp("base") / "case"
    assert run("import", scans["a"], case)[0] == 0
    code, _, err = run("segment", case, "--structure", "liver", "--seed", *scans["liver_seed"])
    assert code == 0, err
    code, _, err = run("mesh", case, "--edge-mm", "15")
    assert code == 0, err
    return case


@pytest.fixture()
def case(base_case: Path, tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.copytree(base_case, target)
    return target


# --- 1. paths outside the case -------------------------------------------------------------


@pytest.fixture()
def victim(tmp_path: Path) -> Path:
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "important.txt").write_text("keep me")
    return folder / "important.txt"


@pytest.mark.parametrize("form", ["dotdot", "absolute"])
def test_manifest_path_outside_the_case_is_refused(
    case: Path, victim: Path, scans: dict, form: str
) -> None:
    data = manifest(case)
    bad = "../victim/important.txt" if form == "dotdot" else str(victim)
    data["structures"]["liver"]["label_path"] = bad
    (case / "case.json").write_text(json.dumps(data))
    before = snapshot(case)
    for args in (("import", scans["b"], case), ("segment", case, "--structure", "bone")):
        code, _, err = run(*args)
        assert code == 2
        line = one_error_line(err)
        assert "structures.liver.label_path" in line and "stay inside the case" in line, line
    assert victim.read_text() == "keep me"
    assert snapshot(case) == before


@pytest.mark.parametrize("link", ["file", "folder"])
def test_symbolic_link_out_of_the_case_is_refused(
    case: Path, victim: Path, scans: dict, link: str
) -> None:
    if link == "file":
        (case / "labels" / "liver.nrrd").unlink()
        (case / "labels" / "liver.nrrd").symlink_to(victim)
    else:
        shutil.move(case / "labels", victim.parent / "labels")
        (case / "labels").symlink_to(victim.parent / "labels")
    code, _, err = run("import", scans["b"], case)
    assert code == 2
    assert "resolves outside the case" in one_error_line(err)
    assert victim.read_text() == "keep me"
    if link == "folder":
        assert sorted(p.name for p in (victim.parent / "labels").iterdir()) == [
            "liver.nrrd",
            "segmentation.seg.nrrd",
        ]


def test_a_journal_cannot_delete_outside_the_case(case: Path, victim: Path) -> None:
    """A received case with a forged commit journal: refused, nothing deleted."""
    journal = {
        "revision": 99,
        "staging": ".staging-0",
        "moves": [],
        "deletes": ["../victim/important.txt"],
        "manifest_text": (case / "case.json").read_text(),
    }
    (case / JOURNAL_NAME).write_text(json.dumps(journal))
    with pytest.raises(CaseError, match="unreadable commit journal"):
        Case.open(case)
    assert victim.read_text() == "keep me"


def test_step_paths_must_stay_inside(case: Path) -> None:
    with pytest.raises(CaseError, match="inside the case"):
        with Case.open(case).transaction() as tx:
            tx.path("/etc/x")
    with pytest.raises(CaseError, match="inside the case"):
        with Case.open(case).transaction() as tx:
            tx.remove("labels/../../victim")


# --- 2. two writers -------------------------------------------------------------------------


def test_writers_opened_at_once_both_commit(case: Path) -> None:
    """Both opened before either committed: the second works on the first's manifest."""
    first, second = Case.open(case), Case.open(case)
    with first.transaction(depends_on=["image"]) as tx:
        tx.path("fe/a.txt").write_text("a")
        tx.record_artifact("note", "a", "fe/a.txt", {})
    with second.transaction(depends_on=["image"]) as tx:
        tx.path("fe/b.txt").write_text("b")
        tx.record_artifact("note", "b", "fe/b.txt", {})
    reopened = Case.open(case)
    assert {"note/a", "note/b"} <= set(reopened.artifacts)
    assert reopened.manifest.revision == manifest(case)["revision"]
    assert reopened.verify() == []


def test_second_writer_waits_for_the_first(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that finds the case locked waits for it (no refusal), then commits on top."""
    import surgplan.case as case_module

    waiting, errors = threading.Event(), []
    real_sleep = case_module.time.sleep

    def sleep(seconds: float) -> None:
        waiting.set()  # only a writer refused by the lock sleeps
        real_sleep(seconds)

    monkeypatch.setattr(case_module.time, "sleep", sleep)

    def second() -> None:
        try:
            with Case.open(case).transaction(depends_on=["image"]) as tx:
                tx.path("fe/b.txt").write_text("b")
                tx.record_artifact("note", "b", "fe/b.txt", {})
        except CaseError as error:
            errors.append(error)

    with Case.open(case).transaction() as tx:
        tx.path("fe/a.txt").write_text("a")
        tx.record_artifact("note", "a", "fe/a.txt", {})
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(60)
    thread.join(60)
    assert errors == []
    opened = Case.open(case)
    assert {"note/a", "note/b"} <= set(opened.artifacts) and opened.verify() == []


def test_writer_whose_input_changed_is_refused(case: Path) -> None:
    stale = Case.open(case)
    with Case.open(case).transaction() as tx:
        tx.manifest.structures["liver"].parameters["edited"] = True
    before = snapshot(case)
    with pytest.raises(CaseError, match=r"changed by another command .*structures/liver"):
        with stale.transaction(depends_on=["structures/liver"]) as tx:
            tx.path("fe/x.txt").write_text("x")
    assert snapshot(case) == before


def test_segment_during_import_is_refused_and_the_case_stays_consistent(
    case: Path, scans: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another scan is imported while ``segment`` computes: segment refused, case consistent."""
    import surgplan.segment as segment_module

    real_segment = segment_module._segment

    def segment_while_importing(*args: object, **kwargs: object) -> sitk.Image:
        mask = real_segment(*args, **kwargs)
        import_scan(scans["grid"], case)  # commits while segment has its result
        return mask

    monkeypatch.setattr(segment_module, "_segment", segment_while_importing)
    with pytest.raises(CaseError, match=r"changed by another command .*\(image changed\)"):
        segment_structure(case, "bone", [])
    opened = Case.open(case)
    size = sitk.ReadImage(str(case / "images" / "scan.nrrd")).GetSize()
    assert opened.manifest.image.size == size == (75, 63, 36)
    assert opened.manifest.structures == {} and opened.verify() == []


# --- 3. what an interrupted step leaves -----------------------------------------------------


def test_leftovers_of_a_killed_step_are_collected_and_reported(case: Path) -> None:
    staging = case / ".staging-0123abcd"
    (staging / "labels").mkdir(parents=True)
    (staging / "labels" / "liver.nrrd").write_bytes(b"half")
    legacy = case.parent / f".{case.name}.staging-deadbeef"
    legacy.mkdir()
    (case / ".case.0123456789abcdef0123456789abcdef.tmp.json").write_text("{")
    (case.parent / f".{case.name}.lock").write_text("")
    (case / "labels" / "orphan.nrrd").write_bytes(b"old")
    code, _, err = run("segment", case, "--structure", "bone")
    assert code == 0, err
    for what in (staging.name, legacy.name, ".case.0123", "labels/orphan.nrrd", ".case.lock"):
        assert what in err, (what, err)
    assert not staging.exists() and not legacy.exists()
    assert not (case / "labels" / "orphan.nrrd").exists()
    assert sorted(p.name for p in case.parent.iterdir()) == ["case"]
    assert Case.open(case).verify() == []


def test_an_interrupted_commit_is_finished_by_the_next_opener(case: Path) -> None:
    """State right after the journal rename: the change is certain; open() completes it."""
    from surgplan.case import _write_journal

    opened = Case.open(case)
    tx_ctx = opened.transaction()
    tx = tx_ctx.__enter__()
    tx.path("labels/liver.nrrd").write_bytes(b"new label")
    tx.manifest.surfaces.clear()
    journal = tx._journal()
    _write_journal(case, journal)
    shutil.copytree(case, case.parent / "frozen")  # what a SIGKILL here would leave
    tx_ctx.__exit__(RuntimeError, RuntimeError("killed"), None)
    frozen = case.parent / "frozen"
    assert (frozen / JOURNAL_NAME).is_file()
    reopened = Case.open(frozen)
    assert (frozen / "labels" / "liver.nrrd").read_bytes() == b"new label"
    assert reopened.manifest.surfaces == {} and not (frozen / "meshes" / "liver.vtp").exists()
    assert reopened.manifest.revision == manifest(case)["revision"] + 1
    assert reopened.verify() == []
    assert not list(frozen.glob(".*"))


def test_verify_finds_a_file_that_differs(case: Path) -> None:
    assert Case.open(case).verify() == []
    path = case / "labels" / "liver.nrrd"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert Case.open(case).verify() == [
        "labels/liver.nrrd: content differs from the manifest's sha256"
    ]
    (case / "meshes" / "volume.vtu").unlink()
    assert "meshes/volume.vtu: named by the manifest but missing" in Case.open(case).verify()


# --- 4. commands that would overwrite or orphan the case's data -----------------------------


def test_export_into_the_case_is_refused(case: Path, tmp_path: Path) -> None:
    before = snapshot(case)
    (tmp_path / "link").symlink_to(case / "images")
    targets = [
        case / "images" / "scan.nrrd",
        case / "labels" / ".." / "images" / "scan.nrrd",
        tmp_path / "link" / "scan.nrrd",
    ]
    for target in targets:
        for option in ("--label", "--mesh"):
            out = target if option == "--label" else target.with_suffix(".vtp")
            code, _, err = run("export", case, "--structure", "liver", option, out)
            assert code == 2 and "inside the case folder" in one_error_line(err)
    assert snapshot(case) == before


def _add_products(case: Path) -> None:
    """An FE result, a reduced model, a registration and a live session in the case."""
    with Case.open(case).transaction() as tx:
        for rel in ("fe/r.vtu", "fe/r.xdmf", "fe/r.h5", "rom/linear.npz", "registration/t.tfm"):
            tx.path(rel).write_text(rel)
        tx.record_artifact("fe_result", "r", "fe/r.vtu", {}, files=["fe/r.xdmf", "fe/r.h5"])
        tx.record_artifact("rom", "linear", "rom/linear.npz", {})
        tx.record_artifact("transform", "T_model_tracker", "registration/t.tfm", {})
    (case / "sessions").mkdir()
    (case / "sessions" / "s1.sqlite").write_bytes(b"log")
    with Case.open(case).transaction() as tx:
        tx.record_artifact("session", "s1", "sessions/s1.sqlite", {})


@pytest.mark.parametrize("scan", ["b", "grid"], ids=["same-grid", "other-grid"])
def test_reimporting_another_scan_drops_everything_derived(
    case: Path, scans: dict, scan: str
) -> None:
    _add_products(case)
    code, out, err = run("import", scans[scan], case, "--json")
    assert code == 0, err
    assert json.loads(out)["dropped_structures"] == ["liver"]
    dropped = (
        "structures/liver, surfaces/liver, segmentation, volume_mesh, artifacts/fe_result/r, "
        "artifacts/rom/linear, artifacts/transform/T_model_tracker"
    )
    assert err.strip() == (
        "note: the new scan differs from the case's previous one; dropped what was derived "
        f"from it: {dropped}"
    )
    data = manifest(case)
    assert data["structures"] == {} and data["surfaces"] == {} and data["volume_mesh"] is None
    assert list(data["artifacts"]) == ["session/s1"]
    on_disk = sorted(p.relative_to(case).as_posix() for p in case.rglob("*") if p.is_file())
    assert on_disk == ["case.json", "images/scan.nrrd", "sessions/s1.sqlite"]
    assert Case.open(case).verify() == []


def test_reimporting_the_same_scan_keeps_the_case(case: Path, scans: dict) -> None:
    before = manifest(case)
    code, out, err = run("import", scans["a"], case, "--json")
    assert code == 0 and err == "" and json.loads(out)["dropped_structures"] == []
    after = manifest(case)
    assert after["structures"] == before["structures"]
    assert after["volume_mesh"] == before["volume_mesh"]


# --- 5. read-only locations -----------------------------------------------------------------


@pytest.mark.parametrize("what", ["case.json", "folder", "labels"])
def test_read_only_case_is_left_unchanged(case: Path, what: str) -> None:
    """Issue 16, 5: ``mesh`` with a read-only case.json left five new files; now none."""
    target = case if what == "folder" else case / what
    mode = target.stat().st_mode
    before = snapshot(case)
    os.chmod(target, 0o555 if target.is_dir() else 0o444)
    step = ["mesh", case, "--edge-mm", "15"] if what == "case.json" else ["segment", case]
    try:
        code, _, err = run(*step, *(["--structure", "bone"] if what != "case.json" else []))
        assert code == 2
        assert "read-only" in one_error_line(err) and "nothing was changed" in err
        assert snapshot(case) == before
        assert sorted(p.name for p in case.iterdir() if p.name.startswith(".")) == []
    finally:
        os.chmod(target, mode)
    assert Case.open(case).verify() == []


def test_version_2_manifest_migrates_its_fe_files(case: Path) -> None:
    data = manifest(case)
    data.update({"$schema": "urn:surgplan:schema:case:2", "schema_version": 2})
    del data["files"], data["revision"]
    data["artifacts"]["fe_result/r"] = {
        "kind": "fe_result", "name": "r", "path": "fe/r.vtu", "meta": {"xdmf": "fe/r.xdmf"},
        "created_at": "2026-05-01T10:06:00+00:00",
    }  # fmt: skip
    (case / "case.json").write_text(json.dumps(data))
    opened = Case.open(case)
    assert opened.manifest.revision == 0 and opened.manifest.files == {}
    assert opened.artifacts["fe_result/r"].files == ["fe/r.xdmf", "fe/r.h5"]
    assert np.all(np.asarray(opened.manifest.image.size) == (60, 50, 36))
