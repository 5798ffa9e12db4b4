"""Atomic writes for ``imaging``: a temporary name in the same folder, fsync, rename.

``imaging`` may not import ``surgplan`` (dependency star), so it keeps this small private copy
of ``surgplan.atomic``. The temporary file is created by the writer itself under a random name,
so the result has the usual mode (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | os.PathLike[str], save: Callable[[Path], object]) -> None:
    """Call ``save(tmp)`` on a temporary path beside ``path``, fsync it, rename it onto ``path``.

    Parameters
    ----------
    path
        Final destination; its folder must exist.
    save
        ``save(tmp)`` creates the complete file at ``tmp``. The temporary name keeps ``path``'s
        suffix so that format-sniffing writers pick the right format.
    """
    final = Path(path)
    tmp = final.parent / f".{final.stem}.{uuid.uuid4().hex}.tmp{final.suffix}"
    try:
        save(tmp)
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
