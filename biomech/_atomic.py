"""Atomic file writes for biomech results: temporary name, fsync, rename.

A crash or a full disk never leaves half a file under the final name: the data are written to
a hidden temporary file next to the target (same folder, so the rename cannot cross file
systems), flushed to disk with ``fsync``, and renamed over the target with :func:`os.replace`,
which is atomic on POSIX and Windows. ``biomech`` cannot import ``surgplan.atomic`` (the
dependency star), hence this small private copy.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path


def temporary_name(path: Path, tag: int | None = None) -> Path:
    """Hidden temporary sibling of ``path`` keeping its suffix (``.stem.tmp<pid>.suffix``).

    Parameters
    ----------
    path : Path
        The final file.
    tag : int, optional
        What tells concurrent writers apart (default: this process id).
    """
    tag = os.getpid() if tag is None else tag
    return path.with_name(f".{path.stem}.tmp{tag}{path.suffix}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, path: Path) -> None:
    """Flush ``tmp`` to disk and rename it to ``path`` (then flush the folder entry).

    Parameters
    ----------
    tmp : Path
        The complete temporary file (on the same file system as ``path``).
    path : Path
        The final file; replaced atomically if it exists.
    """
    _fsync(tmp)
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # folders cannot be opened on every platform
        _fsync(path.parent)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file that is then committed.

    Parameters
    ----------
    path : str or os.PathLike
        The final file.
    write : callable
        ``write(tmp)`` writes the whole content to the temporary path it is given (same suffix
        as ``path``).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        write(tmp)
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
