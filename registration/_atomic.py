"""Atomic file writes for ``registration``'s writers (markups, transforms, study outputs).

The file is written under a temporary name in the destination folder, flushed to disk (fsync)
and renamed over the destination, so a reader or a crash sees the old file or the new one, never
half of one. ``tempfile.mkstemp`` creates its file with mode 0600; the file gets the mode a plain
``open(path, "w")`` would give (``0666`` less the umask, 0644 under the usual umask 022).

(``surgplan.atomic`` does the same for the application; the leaf packages may not import it.)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_atomic", "write_text_atomic"]


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly process-wide)
    os.umask(mask)
    return mask


def _fsync_path(path: str | Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms cannot open a folder: the rename is still atomic
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Write a file atomically through ``write(temporary_path)``, then rename it to ``path``.

    The temporary name keeps ``path``'s suffixes (``.tfm``, ``.mrk.json``), since some writers
    choose the format from the extension. The folder is created if missing.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    write : callable
        Writes the whole file at the path it is given.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffixes = "".join(final.suffixes)
    stem = final.name[: len(final.name) - len(suffixes)]
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{stem}.", suffix=f".tmp{suffixes}")
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())
        finally:
            os.close(fd)
        write(Path(tmp))
        _fsync_path(tmp)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_path(final.parent, directory=True)
    return final


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`write_atomic`).

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    text : str
        Whole file content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
