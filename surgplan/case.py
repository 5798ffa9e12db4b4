"""The case folder: a validated manifest plus the files it names, changed only atomically.

Layout (all paths relative to the case folder)::

    case.json                 manifest (see :mod:`surgplan.manifest`)
    images/scan.nrrd          de-identified scan, LPS
    labels/<name>.nrrd        one binary label map per structure, on the scan's grid
    labels/segmentation.seg.nrrd  the same structures as one 3D Slicer segmentation (named,
                              coloured segments, layered where they overlap), rewritten by
                              every step that changes a structure
    meshes/<name>.vtp         closed surfaces, LPS mm
    meshes/volume.vtu/.msh    tetrahedral mesh with a "region" cell array
    fe/, rom/, sessions/      products of later steps (artifacts)

How a change is made so that no crash, kill or second writer can leave a case that lies
-------------------------------------------------------------------------------------------
The file names above are a contract (scripts, 3D Slicer, the README; an FE result's XDMF also
names its HDF5 file), so files keep them rather than taking generation names; the manifest's
commit is the single point of truth instead, and the one atomic step of a change is the
rename of a *commit journal* (a redo log):

1. **Lock first.** :meth:`Case.transaction` takes an exclusive ``flock`` on ``.CASE.lock``
   beside the case (waiting up to :data:`LOCK_WAIT_S`) and only then reads ``case.json``: the
   step edits the manifest as it is under the lock, never a copy read before it, so two
   writers never lose each other's update. A step that computed its result from parts of the
   manifest before the lock names them (``depends_on``); if another command changed one of
   them meanwhile the step is refused ("run it again") rather than committed on stale input.
2. **Stage under new names.** The step writes its files into ``CASE/.staging-<id>/``;
   nothing the manifest names is touched.
3. **Commit.** Every staged file is fsync'd and its sha256 and size go into the new manifest
   (``files``; ``revision`` + 1). The new manifest, the files to move into place and the files
   no entry names any more are written to ``CASE/.case.commit.json`` (fsync'd, renamed, folder
   fsync'd). That rename is the commit: before it the case is the old one (the staging folder
   is garbage), after it the change is certain and is carried out by whoever holds the lock
   next if this process dies.
4. **Apply** (idempotent): move the staged files onto their names, delete the orphans, write
   ``case.json`` atomically from the journal, fsync, remove the journal and the staging folder.

Every opener (:meth:`Case.open`) that finds a journal takes the lock and finishes the commit
before it reads, so a case killed at any moment opens as the old or the new state, never a
mix. The next writer also collects, and reports, stale staging folders (also the older
``.CASE.staging-*`` beside the case), temporary files (``.case.*.tmp.json``), an interrupted
lock file and files in the case's own folders that the manifest does not know.

Paths: every manifest path is a :data:`surgplan.manifest.CasePath` (relative, no ``..``) and
is resolved on open (symbolic links followed) to stay inside the case; a move or delete of a
commit is checked the same way, so a manifest can never make a command write or delete a
file outside the case. A read-only ``case.json`` (or case folder) protects the case: a step
is refused before it writes anything.

Limits: opening checks paths, not contents; :meth:`Case.verify` compares every recorded file
with its sha256 and size (a file changed behind the case's back, by hand, is found there). A
reader that opened the case before a commit and reads a file after it gets the new file (the
names are stable, so readers get no snapshot); it never gets a half-written one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from surgplan.atomic import fsync_file, write_text_atomic
from surgplan.errors import CaseError
from surgplan.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Artifact,
    FileEntry,
    Manifest,
    check_case_path,
    migrate_manifest,
    surgplan_version,
    utc_now,
)

__all__ = ["LOCK_WAIT_S", "MANIFEST_NAME", "Case", "CaseTransaction", "file_checksum"]

#: Commit journal: its atomic rename is the commit point of a transaction.
JOURNAL_NAME = ".case.commit.json"
#: Prefix of the staging folders inside the case.
STAGING_PREFIX = ".staging-"
#: Seconds a writer waits for another one to finish (``SURGPLAN_CASE_LOCK_WAIT_S`` overrides).
LOCK_WAIT_S = 120.0
#: Folders of the case whose files are all the manifest's (unknown files there are collected).
MANAGED_FOLDERS = ("images", "labels", "meshes", "fe", "rom")

_POLL_S = 0.05
_TMP_PATTERN = re.compile(r"^\..*\.[0-9a-f]{32}\.tmp(\..+)?$")
_log = logging.getLogger(__name__)


def _lock_wait_s() -> float:
    value = os.environ.get("SURGPLAN_CASE_LOCK_WAIT_S")
    if value is None:
        return LOCK_WAIT_S
    try:
        return max(0.0, float(value))
    except ValueError:
        raise CaseError(f"SURGPLAN_CASE_LOCK_WAIT_S must be seconds, got {value!r}") from None


class CaseTransaction:
    """Staged changes to a case; see :meth:`Case.transaction`.

    ``manifest`` is the manifest read under the lock (edit it); ``collected`` says what the
    recovery at the start of the transaction cleaned up.
    """

    def __init__(self, case: Case, staging: Path, base: Manifest, collected: list[str]) -> None:
        self.case = case
        self.staging = staging
        self.base = base
        self.manifest: Manifest = base.model_copy(deep=True)
        self.collected = collected
        self._staged: list[str] = []
        self._removed: list[str] = []

    def path(self, relpath: str) -> Path:
        """Return the staging path where the file that will live at ``relpath`` is written.

        Parameters
        ----------
        relpath
            Path relative to the case folder, e.g. ``"meshes/liver.vtp"``.

        Returns
        -------
        Path
            A path inside the staging folder (its parent folder exists).
        """
        key = _checked_relpath(relpath)
        target = self.staging / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if key not in self._staged:
            self._staged.append(key)
        return target

    def current_path(self, relpath: str) -> Path:
        """Where the file at ``relpath`` is now: its staged version if this step wrote one.

        Parameters
        ----------
        relpath
            Path relative to the case folder.

        Returns
        -------
        Path
            The staging path if ``relpath`` was staged (and not yet committed), else the path
            inside the case folder (which may not exist).
        """
        key = _checked_relpath(relpath)
        if key in self._staged:
            return self.staging / key
        return self.case.root / key

    def remove(self, relpath: str) -> None:
        """Delete the case file at ``relpath`` when the transaction commits (if it exists)."""
        key = _checked_relpath(relpath)
        if key not in self._removed:
            self._removed.append(key)

    def record_artifact(
        self, kind: str, name: str, relpath: str, meta: dict[str, Any], files: Sequence[str] = ()
    ) -> None:
        """Add or replace the artifact ``kind/name`` in the manifest.

        Parameters
        ----------
        kind
            Category, e.g. ``"fe_result"``, ``"rom"``, ``"session"``.
        name
            Name unique within the kind.
        relpath
            The artifact's main file, relative to the case folder.
        meta
            JSON-serialisable details (units in the key names).
        files
            The artifact's further files (removed with it), relative to the case folder.
        """
        self.manifest.artifacts[f"{kind}/{name}"] = Artifact(
            kind=kind,
            name=name,
            path=_checked_relpath(relpath),
            files=[_checked_relpath(f) for f in files],
            meta=meta,
        )

    def _journal(self) -> dict[str, Any]:
        """Fsync the staged files and build the commit journal (new manifest, moves, deletes)."""
        root = self.case.root
        new = Manifest.model_validate(self.manifest.model_dump(mode="json", by_alias=True))
        staged = [rel for rel in self._staged]
        for rel in staged:
            if not (self.staging / rel).is_file():
                raise CaseError(f"step declared {rel!r} but did not write it")
        referenced = set(new.referenced_paths())
        dropped = set(self.base.referenced_paths()) - referenced
        deletes = [
            rel
            for rel in dict.fromkeys([*self._removed, *sorted(dropped)])
            if rel not in staged and rel not in referenced and (root / rel).is_file()
        ]
        files = {rel: entry for rel, entry in self.base.files.items() if rel not in deletes}
        for rel in [*self._removed, *sorted(dropped)]:
            if rel not in staged and rel not in referenced:
                files.pop(rel, None)
        for rel in staged:
            files[rel] = file_checksum(self.staging / rel)
            fsync_file(self.staging / rel)
        for folder in {(self.staging / rel).parent for rel in staged} | {self.staging}:
            fsync_file(folder)
        for rel in [*staged, *deletes]:
            _require_inside(root, rel)
            _require_changeable(root / rel)
        new.files = dict(sorted(files.items()))
        new.revision = self.base.revision + 1
        new.updated_at = utc_now()
        new.surgplan_version = surgplan_version()
        text = json.dumps(new.to_json_dict(), indent=2) + "\n"
        self._new_manifest = new
        return {
            "revision": new.revision,
            "staging": self.staging.name,
            "moves": staged,
            "deletes": deletes,
            "manifest_text": text,
        }

    def _commit(self) -> None:
        journal = self._journal()
        _write_journal(self.case.root, journal)  # the commit point
        _apply_journal(self.case.root, journal)
        self.case.manifest = self._new_manifest


class Case:
    """A case folder and its manifest.

    Parameters
    ----------
    root
        The case folder. It need not exist yet: a new case is created on the first successful
        transaction.
    manifest
        The validated manifest.
    """

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest

    @property
    def exists(self) -> bool:
        """Whether the case has been written to disk."""
        return (self.root / MANIFEST_NAME).is_file()

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Case:
        """Open an existing case and validate its manifest.

        An interrupted commit (a process killed while committing) is completed first, under
        the case's lock. A manifest of an older schema version is migrated in memory (see
        :func:`surgplan.manifest.migrate_manifest`); the file is rewritten in the current
        version by the next transaction.

        Raises
        ------
        CaseError
            If the folder has no ``case.json``, the manifest is invalid, or one of its paths
            leads outside the case.
        """
        root = Path(folder)
        if (root / JOURNAL_NAME).exists():
            with _exclusive_lock(_lock_path(root), root, _lock_wait_s()):
                _recover(root)
        manifest = _read_manifest(root)
        _require_paths_inside(root, manifest)
        return cls(root, manifest)

    @classmethod
    def open_or_new(cls, folder: str | os.PathLike[str]) -> Case:
        """Open the case at ``folder``, or prepare a new one there (written on first commit).

        A folder that holds only what an interrupted first step left (a staging folder) is a
        new case; the next transaction collects the leftovers.

        Raises
        ------
        CaseError
            If ``folder`` is a file, or a non-empty folder that is not a case.
        """
        root = Path(folder)
        if (root / MANIFEST_NAME).is_file() or (root / JOURNAL_NAME).exists():
            return cls.open(root)
        if root.exists() and not root.is_dir():
            raise CaseError(f"case path {root} exists and is not a folder")
        if root.is_dir() and any(not _is_bookkeeping(p.name) for p in root.iterdir()):
            raise CaseError(
                f"{root} is a non-empty folder without {MANIFEST_NAME}; "
                "refusing to use it as a case"
            )
        return cls(root, Manifest())

    def file(self, relpath: str) -> Path:
        """Absolute path of a file named in the manifest (relative to the case folder)."""
        return self.root / relpath

    def require_image(self) -> Path:
        """Path of the case's scan.

        Raises
        ------
        CaseError
            If nothing has been imported yet.
        """
        if self.manifest.image is None:
            raise CaseError(f"case {self.root} has no image; run 'surgplan import' first")
        return self.file(self.manifest.image.path)

    def require_structure(self, name: str) -> Path:
        """Path of the label map of structure ``name``.

        Raises
        ------
        CaseError
            If the case has no such structure (the message lists those it has).
        """
        entry = self.manifest.structures.get(name)
        if entry is None:
            have = ", ".join(sorted(self.manifest.structures)) or "none"
            raise CaseError(f"case has no structure {name!r} (structures: {have})")
        return self.file(entry.label_path)

    def volume_mesh_path(self) -> Path:
        """Path of the tetrahedral mesh (VTU with a "region" cell array).

        Raises
        ------
        CaseError
            If ``surgplan mesh`` has not been run.
        """
        if self.manifest.volume_mesh is None:
            raise CaseError(f"case {self.root} has no volume mesh; run 'surgplan mesh' first")
        return self.file(self.manifest.volume_mesh.path)

    @property
    def artifacts(self) -> dict[str, Artifact]:
        """Artifacts keyed ``"kind/name"``."""
        return self.manifest.artifacts

    def verify(self, *, checksums: bool = True) -> list[str]:
        """Check the case against its manifest; an empty list means it tells the truth.

        Parameters
        ----------
        checksums
            Also compare the sha256 of every file with a recorded checksum (reads them all).

        Returns
        -------
        list of str
            One line per problem: a named file missing, of another size or content, a path
            leading outside the case, or an unfinished commit or staging folder.
        """
        root = self.root
        problems = [f"{p.name}: left by an interrupted step" for p in _bookkeeping(root)]
        for rel in self.manifest.referenced_paths():
            if not (root / rel).is_file():
                problems.append(f"{rel}: named by the manifest but missing")
        for rel, entry in self.manifest.files.items():
            path = root / rel
            if not path.is_file():
                if rel not in self.manifest.referenced_paths():
                    problems.append(f"{rel}: checksum recorded but file missing")
                continue
            if path.stat().st_size != entry.size_bytes:
                problems.append(
                    f"{rel}: {path.stat().st_size} bytes, manifest says {entry.size_bytes}"
                )
            elif checksums and file_checksum(path).sha256 != entry.sha256:
                problems.append(f"{rel}: content differs from the manifest's sha256")
        return problems

    @contextmanager
    def transaction(self, depends_on: Sequence[str] = ()) -> Iterator[CaseTransaction]:
        """Stage a change to the case; commit it only if the block succeeds.

        The lock is taken first, then the manifest is read again: ``tx.manifest`` is the one
        on disk under the lock (``self.manifest`` becomes the committed one).

        Parameters
        ----------
        depends_on
            Parts of the manifest the step's result was computed from before the lock:
            ``"image"``, ``"structures"``, ``"structures/<name>"``, ``"surfaces/<name>"``,
            ``"volume_mesh"``, ``"artifacts/<kind>/<name>"``... If another command changed one
            of them since this case was opened, the step is refused.

        Yields
        ------
        CaseTransaction
            Write files to ``tx.path(relpath)`` and edit ``tx.manifest``.

        Raises
        ------
        CaseError
            If another process holds the case longer than :data:`LOCK_WAIT_S`, a part in
            ``depends_on`` changed meanwhile, or the case is read-only.
        """
        root = self.root
        parent = root.resolve().parent
        if not parent.is_dir():
            raise CaseError(f"cannot create case {root}: folder {parent} does not exist")
        with _exclusive_lock(_lock_path(root), root, _lock_wait_s()) as stale_lock:
            _require_writable(root)  # a protected case is not even cleaned up
            collected = _recover(root) if root.is_dir() else []
            if stale_lock:
                collected.append(f"removed the lock file {_lock_path(root).name} of a killed step")
            base = _read_manifest(root) if (root / MANIFEST_NAME).is_file() else Manifest()
            _require_paths_inside(root, base)
            _require_unchanged(root, self.manifest, base, depends_on)
            for line in collected:
                _log.warning("case %s: %s", root, line)
            created = not root.exists()
            staging = root / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
            try:
                staging.mkdir(parents=True)
            except OSError as error:
                raise CaseError(f"cannot write in case folder {root}: {error.strerror}") from None
            try:
                tx = CaseTransaction(self, staging, base, collected)
                try:
                    yield tx
                    tx._commit()
                except OSError as error:
                    where = f" ({error.filename})" if error.filename else ""
                    raise CaseError(
                        f"cannot write case {root}: {error.strerror or error}{where}; "
                        "nothing was changed"
                    ) from None
            finally:
                if not (root / JOURNAL_NAME).exists():  # else committed: the next one finishes
                    shutil.rmtree(staging, ignore_errors=True)
                if created and not (root / MANIFEST_NAME).exists():
                    with suppress(OSError):
                        root.rmdir()


# --- reading and checking the manifest -----------------------------------------------------


def _read_manifest(root: Path) -> Manifest:
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise CaseError(
            f"{root} is not a surgplan case (no {MANIFEST_NAME}); "
            "create one with 'surgplan import SOURCE CASE'"
        )
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CaseError(f"cannot read {manifest_path}: not UTF-8 text (corrupt?)") from None
    except (OSError, json.JSONDecodeError) as error:
        raise CaseError(f"cannot read {manifest_path}: {error}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if type(version) is int and version > SCHEMA_VERSION:
        raise CaseError(
            f"{manifest_path}: schema_version {version} was written by a newer surgplan "
            f"(this one reads versions 1 to {SCHEMA_VERSION}); upgrade surgplan"
        )
    try:
        return Manifest.model_validate(migrate_manifest(data))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise CaseError(f"invalid manifest {manifest_path}: {where}: {message}") from None


def _checked_relpath(relpath: str | os.PathLike[str]) -> str:
    key = Path(relpath).as_posix() if not isinstance(relpath, str) else relpath
    try:
        return check_case_path(Path(key).as_posix())
    except ValueError as error:
        raise CaseError(f"case paths must be relative and inside the case: {error}") from None


def _inside(root: Path, rel: str) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(root / rel)
    return real != real_root and real.startswith(real_root.rstrip(os.sep) + os.sep)


def _require_inside(root: Path, rel: str) -> None:
    if not _inside(root, rel):
        raise CaseError(
            f"case {root}: {rel} leads outside the case (a symbolic link?); refusing to use it"
        )


def _require_paths_inside(root: Path, manifest: Manifest) -> None:
    """Refuse a manifest one of whose paths resolves (links followed) outside the case."""
    for rel in [*manifest.referenced_paths(), *manifest.files]:
        if not _inside(root, rel):
            raise CaseError(
                f"invalid manifest {root / MANIFEST_NAME}: {rel} resolves outside the case "
                "(a symbolic link?); refusing to use the case"
            )


#: Manifest sections a step may depend on (``"structures"`` or ``"structures/<name>"``...).
_SECTIONS = ("image", "structures", "segmentation", "surfaces", "volume_mesh", "artifacts")


def _part(manifest: Manifest, key: str) -> Any:
    """The manifest entry named by ``key`` and the checksums of the files it names."""
    section, _, name = key.partition("/")
    if section not in _SECTIONS:
        raise ValueError(f"unknown manifest part {key!r}; expected one of {_SECTIONS}")
    value = getattr(manifest, section)
    if name:
        value = value.get(name)
        value = {} if value is None else {name: value}
    part = Manifest(**{section: value})
    sums = {p: manifest.files.get(p) for p in part.referenced_paths()}
    dump = part.model_dump(mode="json", include={section})
    return dump, {p: None if s is None else s.sha256 for p, s in sums.items()}


def _require_unchanged(root: Path, opened: Manifest, now: Manifest, keys: Sequence[str]) -> None:
    """Refuse when a part the step depends on changed between the open and the lock."""
    if opened.revision == now.revision and opened == now:
        return
    changed = [key for key in keys if _part(opened, key) != _part(now, key)]
    if changed:
        raise CaseError(
            f"case {root} was changed by another command while this one ran "
            f"({', '.join(changed)} changed); nothing was saved: run it again"
        )


def _is_protected(path: Path) -> bool:
    """Whether ``path`` exists and is read-only (no write bit, or not writable by us)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    return mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0 or not os.access(path, os.W_OK)


def _require_writable(root: Path) -> None:
    for path in (root / MANIFEST_NAME, root):
        if _is_protected(path):
            raise CaseError(
                f"{path} is read-only: the case is protected against changes; nothing was "
                "changed (make it writable to change the case)"
            )


def _require_changeable(path: Path) -> None:
    for target in (path, path.parent):
        if _is_protected(target):
            raise CaseError(f"{target} is read-only; nothing was changed")


def file_checksum(path: Path) -> FileEntry:
    """The sha256 and size of a file, as the manifest records them (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return FileEntry(sha256=digest.hexdigest(), size_bytes=size)


# --- committing and recovering --------------------------------------------------------------


def _write_journal(root: Path, journal: dict[str, Any]) -> None:
    write_text_atomic(root / JOURNAL_NAME, json.dumps(journal) + "\n")


def _apply_journal(root: Path, journal: dict[str, Any]) -> None:
    """Carry out a committed journal; safe to repeat after a crash at any point of it."""
    staging = root / journal["staging"]
    touched = {root}
    for rel in journal["moves"]:
        source, target = staging / rel, root / rel
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            touched.add(target.parent)
        elif not target.is_file():
            raise CaseError(
                f"case {root}: the interrupted commit {journal['revision']} lost {rel}; "
                "restore the case from a copy"
            )
    for rel in journal["deletes"]:
        (root / rel).unlink(missing_ok=True)
        touched.add((root / rel).parent)
    for folder in touched:
        if folder.is_dir():
            fsync_file(folder)
    write_text_atomic(root / MANIFEST_NAME, journal["manifest_text"])
    (root / JOURNAL_NAME).unlink()
    fsync_file(root)
    shutil.rmtree(staging, ignore_errors=True)


def _read_journal(root: Path) -> dict[str, Any]:
    path = root / JOURNAL_NAME
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
        staging = journal["staging"]
        moves = [check_case_path(rel) for rel in journal["moves"]]
        deletes = [check_case_path(rel) for rel in journal["deletes"]]
        Manifest.model_validate_json(journal["manifest_text"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise CaseError(f"{path}: unreadable commit journal ({error}); restore the case") from None
    if not (isinstance(staging, str) and re.fullmatch(r"\.staging-[0-9a-f]+", staging)):
        raise CaseError(f"{path}: unreadable commit journal (staging {staging!r})")
    for rel in [*moves, *deletes]:
        _require_inside(root, rel)
    return journal


def _is_bookkeeping(name: str) -> bool:
    return name.startswith(STAGING_PREFIX) or name == JOURNAL_NAME or bool(_TMP_PATTERN.match(name))


def _bookkeeping(root: Path) -> list[Path]:
    """Entries of the case folder that only an unfinished step leaves behind."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _is_bookkeeping(p.name))


def _recover(root: Path) -> list[str]:
    """Finish an interrupted commit and collect what interrupted steps left; call it locked.

    Returns
    -------
    list of str
        One line per thing done (reported by the caller).
    """
    done = []
    if (root / JOURNAL_NAME).exists():
        journal = _read_journal(root)
        try:
            _apply_journal(root, journal)
        except OSError as error:
            raise CaseError(
                f"case {root}: cannot finish the interrupted commit {journal['revision']} "
                f"({error.strerror}); make the case writable and run the command again"
            ) from None
        done.append(f"finished the commit of revision {journal['revision']} that was interrupted")
    legacy = root.parent.glob(f".{root.name}.staging-*") if root.name else []
    for path in [*_bookkeeping(root), *legacy]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        done.append(f"removed {path.name}, left by an interrupted step")
    done += _collect_unknown_files(root)
    return done


def _collect_unknown_files(root: Path) -> list[str]:
    """Delete files in :data:`MANAGED_FOLDERS` that the manifest neither names nor records."""
    if not (root / MANIFEST_NAME).is_file():
        return []
    try:
        manifest = _read_manifest(root)
        _require_paths_inside(root, manifest)
    except CaseError:
        return []  # the step refuses this case: collect nothing
    known = set(manifest.referenced_paths()) | set(manifest.files)
    done = []
    for folder in MANAGED_FOLDERS:
        base = root / folder
        if not base.is_dir() or base.is_symlink():
            continue
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if (path.is_file() or path.is_symlink()) and rel not in known:
                path.unlink()
                done.append(f"removed {rel}, which the manifest does not name")
    return done


def _lock_path(root: Path) -> Path:
    return root.resolve().parent / f".{root.resolve().name}.lock"


@contextmanager
def _exclusive_lock(lock_path: Path, root: Path, wait_s: float) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``lock_path`` for the block; remove the file afterwards.

    Waits up to ``wait_s`` seconds for another holder. The file is removed while the lock is
    still held, and a lock is only accepted when ``lock_path`` still names the locked file: a
    writer that opened the file before an earlier writer removed it, and locked it after,
    holds a lock on a deleted file that nobody else can see, so it opens the path again
    instead of sharing the case with a newcomer.

    Yields
    ------
    bool
        Whether the lock file was there, unlocked, before: left by a killed step.
    """
    deadline = time.monotonic() + wait_s
    waited = False
    while True:
        fd, existed = _open_lock_file(lock_path, root)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise CaseError(f"case {root} is being changed by another process") from None
            waited = True
            time.sleep(_POLL_S)
            continue
        if _names_same_file(lock_path, fd):
            break
        os.close(fd)  # the lock file was removed or replaced meanwhile: lock the current one
    try:
        yield existed and not waited
    finally:
        lock_path.unlink(missing_ok=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _open_lock_file(lock_path: Path, root: Path) -> tuple[int, bool]:
    """Open (creating) the lock file; also say whether it was there already."""
    while True:
        try:
            return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), False
        except FileExistsError:
            with suppress(FileNotFoundError):
                return os.open(lock_path, os.O_RDWR), True
        except OSError as error:
            raise CaseError(f"cannot lock case {root}: {error.strerror} ({lock_path})") from None


def _names_same_file(path: Path, fd: int) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
