"""Long work off the GUI thread: a :class:`QRunnable` on the global thread pool.

The function runs on a pool thread; its result or error comes back to the GUI thread through
Qt signals (queued connections), so slots may touch widgets and the VTK view. The function
itself must not touch widgets. It may report progress with ``progress(done, total)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from surgplan.errors import PROJECT_ERRORS

__all__ = ["Job", "start_job"]


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)
    progress = Signal(int, int)


class Job(QRunnable):
    """``fn(progress)`` run on the pool; ``signals.done(result)`` or ``signals.failed(reason)``."""

    def __init__(self, fn: Callable[[Callable[[int, int], None]], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _Signals()
        self.setAutoDelete(False)  # the window keeps the job (and its signals) alive

    def run(self) -> None:  # noqa: D102 (QRunnable)
        try:
            result = self.fn(lambda done, total: self.signals.progress.emit(done, total))
        except PROJECT_ERRORS as error:
            self.signals.failed.emit(str(error))
        except (OSError, ValueError, RuntimeError, MemoryError) as error:
            self.signals.failed.emit(f"{type(error).__name__}: {error}")
        else:
            self.signals.done.emit(result)


def start_job(
    fn: Callable[[Callable[[int, int], None]], Any],
    on_done: Callable[[Any], None],
    on_failed: Callable[[str], None],
    on_progress: Callable[[int, int], None] | None = None,
) -> Job:
    """Start ``fn`` on the global thread pool; connect its outcome to the slots; return it."""
    job = Job(fn)
    job.signals.done.connect(on_done)
    job.signals.failed.connect(on_failed)
    if on_progress is not None:
        job.signals.progress.connect(on_progress)
    QThreadPool.globalInstance().start(job)
    return job
