"""A child process that reads legacy VTK files first, so that a crash in VTK's reader is not ours.

VTK's legacy reader dies of SIGSEGV on some corrupt files (see :mod:`imaging.mesh_io`). The
child imports only VTK's legacy reader, reads each file it is sent with every attribute on (as
pyvista does) and answers ``ok``; a crash ends the child, is reported as a
:class:`~imaging.errors.MeshingError`, and the next probe starts a fresh child. Keeping one child
alive makes a probe cost the read itself (a millisecond for a small file) rather than a Python
start (about 0.3 s). The child's address space is limited (:data:`PROBE_MEMORY_BYTES`) and each
read has a deadline (:data:`PROBE_TIMEOUT_S`), so a hostile header asking for terabytes ends the
child too.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

from imaging.errors import MeshingError

__all__ = ["PROBE_MEMORY_BYTES", "PROBE_TIMEOUT_S", "probe_legacy_vtk"]

#: Limits of the child: seconds per file, bytes of address space.
PROBE_TIMEOUT_S = 120.0
PROBE_MEMORY_BYTES = 8 * 1024**3

_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
from vtkmodules.vtkCommonCore import vtkObject
from vtkmodules.vtkIOLegacy import vtkDataSetReader
vtkObject.GlobalWarningDisplayOff()
for line in sys.stdin:
    reader = vtkDataSetReader()
    reader.SetFileName(json.loads(line))
    for what in ("Scalars", "Vectors", "Normals", "Tensors", "ColorScalars", "TCoords", "Fields"):
        getattr(reader, "ReadAll" + what + "On")()
    reader.Update()
    del reader
    sys.stdout.write("ok\\n")
    sys.stdout.flush()
"""


class _Child:
    """The one probing child of this process (started on first use, restarted after a crash)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.lock = threading.Lock()
        self.pid = os.getpid()

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None or self.pid != os.getpid():
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(PROBE_MEMORY_BYTES)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self.pid = os.getpid()
        return self.proc

    def read(self, path: Path) -> str | None:
        """``None`` if the child read ``path`` and survived, else why it did not."""
        with self.lock:
            proc = self._start()
            try:
                proc.stdin.write(json.dumps(str(path)) + "\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
                ready, _, _ = select.select([proc.stdout], [], [], PROBE_TIMEOUT_S)
                answer = proc.stdout.readline() if ready else None  # type: ignore[union-attr]
            except OSError:  # the child died before reading the request
                answer = ""
            if answer == "ok\n":
                return None
            self.proc = None
            if answer is None:
                proc.kill()
            code = proc.wait()
            _close_pipes(proc)
            if answer is None:
                return f"did not finish within {PROBE_TIMEOUT_S:g} s"
            if code < 0:
                return f"crashed with {signal.Signals(-code).name}"
            return f"failed (exit code {code}: out of memory?)"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.pid == os.getpid():
            self.proc.kill()
            self.proc.wait()
            _close_pipes(self.proc)


def _close_pipes(proc: subprocess.Popen[str]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


_child = _Child()
atexit.register(_child.close)


def probe_legacy_vtk(path: Path) -> None:
    """Read the legacy VTK file ``path`` in the child; a crash there is a :class:`MeshingError`.

    Parameters
    ----------
    path : pathlib.Path
        An existing ``.vtk`` file.

    Raises
    ------
    MeshingError
        When VTK's reader crashed on the file, ran out of memory or time in the child.
    """
    why = _child.read(path)
    if why is not None:
        raise MeshingError(
            f"cannot read mesh file {path}: corrupt legacy VTK file (VTK's reader {why} on it, "
            "in a child process)"
        )
