"""Row-parallel execution of the twin's per-point compiled kernels on the machine's cores.

The correspondence search and the residual pass treat every point on its own, and their
Numba kernels release the GIL (``nogil=True``), so a large batch (a 5,000-point surface scan)
is split into contiguous row ranges run at the same time on a small thread pool, the calling
thread taking the first. Each point's result is computed by the same code whatever the split,
so the output is identical bit for bit to a single-threaded run. Batches below
:data:`MIN_ROWS_PER_THREAD` rows per thread (counted in rows of unit cost: a kernel whose row
costs twice as much, such as one summing many deformation modes, splits at half the rows) run
in the calling thread (a pool hand-off costs tens of microseconds).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["MIN_ROWS_PER_THREAD", "row_ranges", "run_on_rows", "thread_count"]

#: Fewest rows per thread worth a hand-off to another thread.
MIN_ROWS_PER_THREAD = 1024
#: Most threads used (the passes are memory-light; more rarely pays on a shared machine).
MAX_THREADS = 4

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def thread_count() -> int:
    """Threads a large batch is split over: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


def row_ranges(
    n_rows: int, threads: int | None = None, row_cost: float = 1.0
) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges covering ``n_rows`` rows, one per thread used.

    ``row_cost`` is a row's work relative to a unit row (:data:`MIN_ROWS_PER_THREAD`).
    """
    threads = thread_count() if threads is None else threads
    parts = max(1, min(threads, int(n_rows * max(row_cost, 1.0)) // MIN_ROWS_PER_THREAD))
    bounds = [n_rows * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="surgplan-rows")
        return _pool


def _forget_pool_after_fork() -> None:  # a forked child has none of the parent's threads
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def run_on_rows(work: Callable[[int, int], None], n_rows: int, row_cost: float = 1.0) -> None:
    """Call ``work(start, stop)`` on row ranges covering ``n_rows``, in parallel when large.

    ``work`` must only write rows ``start:stop`` of its outputs; ``row_cost`` as in
    :func:`row_ranges`. The first range runs in the calling thread; an exception in any range
    is raised here after all have finished.
    """
    ranges = row_ranges(n_rows, row_cost=row_cost)
    if len(ranges) == 1:
        work(0, n_rows)
        return
    pool = _executor(thread_count() - 1)
    futures = [pool.submit(work, start, stop) for start, stop in ranges[1:]]
    try:
        work(*ranges[0])
    finally:
        for future in futures:
            future.result()
