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

Every change goes through :meth:`Case.transaction`: files are written into a staging folder
beside the case, and only when the whole step succeeded are they renamed into place and the
manifest replaced. A failing step leaves the case exactly as it was (or absent, if it was new).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from surgplan.atomic import write_text_atomic
from surgplan.errors import CaseError
from surgplan.manifest import (
    SCHEMA_VERSION,
    Artifact,
    Manifest,
    migrate_manifest,
    surgplan_version,
    utc_now,
)

MANIFEST_NAME = "case.json"


class CaseTransaction:
    """Staged changes to a case; see :meth:`Case.transaction`."""

    def __init__(self, case: Case, staging: Path) -> None:
        self.case = case
        self.staging = staging
        self.manifest: Manifest = case.manifest.model_copy(deep=True)
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
        rel = Path(relpath)
        if rel.is_absolute() or ".." in rel.parts:
            raise CaseError(f"case paths must be relative and inside the case, got {relpath!r}")
        target = self.staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        key = rel.as_posix()
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
        key = Path(relpath).as_posix()
        if key in self._staged:
            return self.staging / key
        return self.case.root / key

    def remove(self, relpath: str) -> None:
        """Delete the case file at ``relpath`` when the transaction commits (if it exists)."""
        rel = Path(relpath).as_posix()
        if rel not in self._removed:
            self._removed.append(rel)

    def record_artifact(self, kind: str, name: str, relpath: str, meta: dict[str, Any]) -> None:
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
        """
        self.manifest.artifacts[f"{kind}/{name}"] = Artifact(
            kind=kind, name=name, path=Path(relpath).as_posix(), meta=meta
        )

    def _commit(self) -> None:
        root = self.case.root
        root.mkdir(parents=True, exist_ok=True)
        for rel in self._staged:
            source = self.staging / rel
            if not source.exists():
                raise CaseError(f"step declared {rel!r} but did not write it")
        for rel in self._staged:
            destination = root / rel
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staging / rel, destination)
        for rel in self._removed:
            if rel not in self._staged:
                (root / rel).unlink(missing_ok=True)
        self.manifest.updated_at = utc_now()
        self.manifest.surgplan_version = surgplan_version()
        text = json.dumps(self.manifest.to_json_dict(), indent=2) + "\n"
        write_text_atomic(root / MANIFEST_NAME, text)
        self.case.manifest = self.manifest


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

        A manifest of an older schema version is migrated in memory (see
        :func:`surgplan.manifest.migrate_manifest`); the file is rewritten in the current
        version by the next transaction.

        Raises
        ------
        CaseError
            If the folder has no ``case.json`` or the manifest is invalid.
        """
        root = Path(folder)
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
            manifest = Manifest.model_validate(migrate_manifest(data))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CaseError(f"invalid manifest {manifest_path}: {where}: {first['msg']}") from None
        return cls(root, manifest)

    @classmethod
    def open_or_new(cls, folder: str | os.PathLike[str]) -> Case:
        """Open the case at ``folder``, or prepare a new one there (written on first commit).

        Raises
        ------
        CaseError
            If ``folder`` is a file, or a non-empty folder that is not a case.
        """
        root = Path(folder)
        if (root / MANIFEST_NAME).is_file():
            return cls.open(root)
        if root.exists() and not root.is_dir():
            raise CaseError(f"case path {root} exists and is not a folder")
        if root.is_dir() and any(root.iterdir()):
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

    @contextmanager
    def transaction(self) -> Iterator[CaseTransaction]:
        """Stage a change to the case; commit it only if the block succeeds.

        Yields
        ------
        CaseTransaction
            Write files to ``tx.path(relpath)`` and edit ``tx.manifest``.

        Raises
        ------
        CaseError
            If another process is changing the same case.
        """
        parent = self.root.resolve().parent
        if not parent.is_dir():
            raise CaseError(f"cannot create case {self.root}: folder {parent} does not exist")
        with _exclusive_lock(parent / f".{self.root.name}.lock", self.root):
            staging = parent / f".{self.root.name}.staging-{uuid.uuid4().hex[:8]}"
            staging.mkdir()
            try:
                tx = CaseTransaction(self, staging)
                yield tx
                tx._commit()
            finally:
                shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _exclusive_lock(lock_path: Path, root: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` for the block; remove the file afterwards.

    The file is removed while the lock is still held, and a lock is only accepted when
    ``lock_path`` still names the locked file: a writer that opened the file before an earlier
    writer removed it, and locked it after, holds a lock on a deleted file that nobody else can
    see, so it opens the path again instead of sharing the case with a newcomer.
    """
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CaseError(f"case {root} is being changed by another process") from None
        if _names_same_file(lock_path, fd):
            break
        os.close(fd)  # the lock file was removed or replaced meanwhile: lock the current one
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _names_same_file(path: Path, fd: int) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
