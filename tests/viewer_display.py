"""A private virtual X display (Xvfb) for tests that start the real Qt viewer window.

:func:`start_xvfb` launches ``Xvfb -displayfd`` (the server picks a free display number and
writes it to a pipe), so every process (each pytest-xdist worker) gets its own display. It
sets ``DISPLAY`` and ``QT_QPA_PLATFORM=xcb`` before any ``QApplication`` exists. A missing
``Xvfb`` is a failure (it is installed by ``scripts/setup.sh``), never a skip.

The server is not stopped while the process may still hold a Qt connection to it (Qt exits
the process when its X connection breaks): it is started with ``PR_SET_PDEATHSIG`` so the
kernel stops it when the test process ends. :func:`start_xvfb` with ``keep=False`` (scripts
that close their windows first) stops it at the end of the block.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

#: Screen of the virtual display: width x height x depth.
SCREEN = "1280x1024x24"
#: Seconds to wait for Xvfb to report its display number.
START_TIMEOUT_S = 20.0
#: Servers kept until the process ends (their Popen objects must outlive the block).
_KEPT: list[subprocess.Popen[bytes]] = []


def _die_with_parent() -> None:
    """In the child: ask the kernel for SIGTERM when the parent process ends (Linux)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _read_display(fd: int, proc: subprocess.Popen[bytes]) -> str:
    text = b""
    while not text.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], START_TIMEOUT_S)
        if not ready:
            proc.kill()
            raise RuntimeError(f"Xvfb wrote no display number within {START_TIMEOUT_S} s")
        chunk = os.read(fd, 64)
        if not chunk:
            raise RuntimeError(f"Xvfb exited (code {proc.wait()}) before reporting a display")
        text += chunk
    return text.decode().strip()


@contextmanager
def start_xvfb(*, keep: bool = False) -> Iterator[str]:
    """Run a private Xvfb for the block; yield its ``DISPLAY`` value (``":N"``).

    With ``keep`` the server (and ``DISPLAY``) outlive the block until the process ends.

    Raises
    ------
    RuntimeError
        If Xvfb is not installed or does not start.
    """
    exe = shutil.which("Xvfb")
    if exe is None:
        raise RuntimeError("Xvfb is not installed (Debian package 'xvfb'; scripts/setup.sh)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-screen", "0", SCREEN, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        preexec_fn=_die_with_parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        display = ":" + _read_display(read_fd, proc)
    finally:
        os.close(read_fd)
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ["DISPLAY"] = display
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    try:
        yield display
    finally:
        if keep:
            _KEPT.append(proc)
        else:
            _stop(proc, saved)


def _stop(proc: subprocess.Popen[bytes], saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """Session-wide private X display; a missing or broken Xvfb fails the test."""
    try:
        with start_xvfb(keep=True) as display:
            yield display
    except RuntimeError as error:
        pytest.fail(f"cannot start the virtual display: {error}", pytrace=False)


@pytest.fixture(scope="session")
def qapp_args(xvfb_display: str) -> list[str]:
    """pytest-qt's QApplication arguments; depends on the display so it exists first."""
    return ["surgplan-test"]
