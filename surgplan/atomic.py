"""Atomic file writes: write to a temporary name in the same folder, fsync, then rename.

A reader (or a crash) never sees a half-written file: either the old file or the new one. The
new file's data is flushed to disk before the rename, and the folder entry after it. Files get
the usual mode (``0o666`` less the umask, e.g. ``0o644``), not the ``0o600`` of ``mkstemp``:
the temporary file is created by the writer itself, under a random name nobody else uses.

Every writer in ``surgplan`` goes through :func:`atomic_path` (or :func:`write_text_atomic`);
the library packages, which may not import ``surgplan``, have their own (``imaging._atomic``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; fsync it and rename it onto ``path`` on success.

    The temporary name keeps the final file's suffixes (``.nii.gz``, ``.vtp``...) because many
    writers choose the format from the extension. The block must create the file.

    Parameters
    ----------
    path
        Final destination. Its folder must exist.

    Yields
    ------
    Path
        Where to write (not yet existing). Removed if the block raises.
    """
    final = Path(path)
    suffixes = "".join(final.suffixes)
    stem = final.name[: len(final.name) - len(suffixes)] if suffixes else final.name
    tmp = final.parent / f".{stem}.{uuid.uuid4().hex}.tmp{suffixes}"
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, final)
        fsync_file(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, flushed to disk before the rename.

    Parameters
    ----------
    path
        Final destination. Its folder must exist.
    text
        The whole content.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's (or a folder's entries') data to disk.

    Parameters
    ----------
    path
        An existing file or folder.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
