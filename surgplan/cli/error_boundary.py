"""The CLI's one error boundary: a user's mistake is one line (exit 2), a bug a traceback (exit 1).

Every command body runs inside :func:`error_boundary` (through
:func:`surgplan.cli.common.command_context`) and the click group runs its parsing inside
:func:`report_exception` (``surgplan.cli.SurgplanGroup``), so there is one place that decides:

- **Caused by the input** (:func:`user_error_message`): the project's errors
  (:data:`surgplan.errors.PROJECT_ERRORS`), ``MemoryError``, an operating-system refusal about a
  path the user gave (``OSError``: no such file, permission denied, is a directory, read-only file
  system, disk full), and click's usage errors. These print exactly one line ``error: ...`` on
  stderr and exit with :data:`EXIT_USER_ERROR` (2).
- **Anything else is a bug**: the traceback is kept, followed by :data:`BUG_REPORT_LINE`, exit
  :data:`EXIT_BUG` (1).

Native libraries (VTK, ITK, PETSc, gmsh) write their diagnostics straight to file descriptor 2,
and pyvista forwards VTK's errors to Python's logging. :class:`LibraryOutput` captures all of it
for the duration of a command (fd 2 into an unlinked temporary file, Python's warnings and log
records): on a user error its first line is folded into the one error line, on a bug it is
printed before the traceback, and on success it is repeated once per distinct line as
``warning: ...``. Python-level writes to stderr (progress bars, notes) still reach the terminal.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import io
import logging
import os
import re
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator

import click

from surgplan.errors import PROJECT_ERRORS

__all__ = [
    "BUG_REPORT_LINE",
    "EXIT_BUG",
    "EXIT_USER_ERROR",
    "LibraryOutput",
    "error_boundary",
    "one_line",
    "SurgplanGroup",
    "report_exception",
    "user_error_message",
]

#: Exit code for errors caused by bad input or an impossible request.
EXIT_USER_ERROR = 2
#: Exit code for a genuine bug (an unexpected exception; the traceback is shown).
EXIT_BUG = 1
#: Printed after the traceback of a bug.
BUG_REPORT_LINE = (
    "surgplan: this is a bug, not a problem with your input; please report it with the "
    "command line and the traceback above"
)
#: Longest error line, characters (the rest is cut with "...").
MAX_LINE = 600
#: Most library lines repeated as warnings after a successful command.
MAX_WARNINGS = 5

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: vtkLogger's prefix: "2026-12-01 19:40:00.123 (   0.456s) [main thread     ] file.cxx:123  ERR| ".
_VTK_LOG_PREFIX = re.compile(r"^.*?\[[^\]]*\]\s+\S+:\d+\s+(?:ERR|WARN|INFO|\d+)\s*\|\s*(?:\.\s*)*")
_OS_ERRNOS = {
    errno.ENOENT: "no such file or folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder, expected a file",
    errno.ENOTDIR: "a part of the path is a file, expected a folder",
    errno.EEXIST: "already exists",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many symbolic links",
    errno.ENOTEMPTY: "folder not empty",
    errno.EXDEV: "cannot move across file systems",
    errno.EINVAL: "invalid argument",
    errno.ECONNREFUSED: "connection refused",
    errno.ETIMEDOUT: "timed out",
    errno.EADDRINUSE: "address already in use",
    errno.EMFILE: "too many open files",
}


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line (whitespace runs collapsed, colour codes dropped), at most ``limit``."""
    flat = " ".join(_ANSI.sub("", str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _os_message(exc: OSError) -> str:
    """An ``OSError`` as ``<path>: <what went wrong>`` (the user's path, in plain words)."""
    what = _OS_ERRNOS.get(exc.errno or 0) or exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    if paths:
        return f"{' -> '.join(paths)}: {what}"
    detail = str(exc)
    return detail if exc.errno is None and detail else what


def user_error_message(exc: BaseException) -> str | None:
    """The one-line message of an exception caused by the user's input, or ``None`` for a bug.

    Parameters
    ----------
    exc : BaseException
        The exception that ended the command.

    Returns
    -------
    str or None
        The message (without the ``error:`` prefix), or ``None`` when ``exc`` is a bug.
    """
    if isinstance(exc, PROJECT_ERRORS):
        return str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        return "not enough memory for this request (reduce the image, mesh or point count)"
    if isinstance(exc, click.UsageError):
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return f"{exc.format_message()}{where}"
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    if isinstance(exc, (OSError, EOFError)) and not isinstance(exc, _BUG_OS_ERRORS):
        return _os_message(exc) if isinstance(exc, OSError) else "unexpected end of input"
    return None


#: ``OSError`` subclasses that signal a programming error rather than a refused path.
_BUG_OS_ERRORS: tuple[type[BaseException], ...] = (io.UnsupportedOperation,)


class LibraryOutput:
    """What native libraries and Python's warnings/logging said during a command.

    Use as a context manager. Inside it, file descriptor 2 goes to an unlinked temporary file,
    Python's ``sys.stderr`` (when it is fd 2) is a copy of the original stream so Python-level
    output still shows, warnings are recorded and log records of level WARNING and above are
    kept instead of printed.
    """

    def __init__(self) -> None:
        self._records: list[str] = []
        self._warnings: list[str] = []
        self._native = ""

    # -- capture --------------------------------------------------------------------------
    @contextlib.contextmanager
    def capture(self) -> Iterator[LibraryOutput]:
        """Capture for the duration of the ``with`` block; the messages stay readable after."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._native_stderr())
            stack.enter_context(self._python_logging())
            caught = stack.enter_context(warnings.catch_warnings(record=True))
            warnings.simplefilter("default")
            stack.enter_context(_vtk_logger_quiet())
            try:
                yield self
            finally:
                self._warnings = [
                    f"{w.category.__name__}: {w.message}"
                    for w in caught
                    if not _for_developers(w.category)
                ]

    @contextlib.contextmanager
    def _native_stderr(self) -> Iterator[None]:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (closed): nothing to capture
            yield
            return
        sink = tempfile.TemporaryFile()
        swapped = None
        was_enabled = faulthandler.is_enabled()
        real = None  # the terminal's stderr for faulthandler: a native crash still shows
        try:
            if _is_fd2(sys.stderr):
                swapped = sys.stderr
                sys.stderr = io.TextIOWrapper(
                    os.fdopen(os.dup(saved), "wb", buffering=0),
                    encoding=getattr(swapped, "encoding", None) or "utf-8",
                    errors="backslashreplace",
                    line_buffering=True,
                )
            os.dup2(sink.fileno(), 2)
            real = os.fdopen(os.dup(saved), "w")
            faulthandler.enable(file=real)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if real is not None:
                faulthandler.disable()
                real.close()
                if was_enabled:
                    with contextlib.suppress(Exception):  # on the process's own stderr
                        faulthandler.enable(file=sys.__stderr__)
            if swapped is not None:
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.flush()
                    sys.stderr.close()
                sys.stderr = swapped
            sink.seek(0)
            self._native = sink.read(1 << 20).decode("utf-8", errors="replace")
            sink.close()

    @contextlib.contextmanager
    def _python_logging(self) -> Iterator[None]:
        records = self._records

        class _Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                with contextlib.suppress(Exception):
                    records.append(record.getMessage())

        handler = _Keep(level=logging.WARNING)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)

    # -- reading ---------------------------------------------------------------------------
    def lines(self) -> list[str]:
        """Distinct one-line messages: native output first, then log records, then warnings."""
        out: list[str] = []
        for raw in [*self._native.splitlines(), *self._records, *self._warnings]:
            text = one_line(_VTK_LOG_PREFIX.sub("", _ANSI.sub("", raw)), 300)
            if text and text not in out and not _is_noise(text):
                out.append(text)
        return out

    def fold_into(self, message: str) -> str:
        """``message`` with the libraries' first line appended when it adds information."""
        extra = [line for line in self.lines() if line not in message]
        if not extra:
            return message
        more = f"; {len(extra) - 1} more line(s)" if len(extra) > 1 else ""
        return f"{message} [library output: {extra[0]}{more}]"

    def replay_raw(self) -> None:
        """Write everything captured to stderr as it was (before a bug's traceback)."""
        if self._native:
            sys.stderr.write(self._native if self._native.endswith("\n") else self._native + "\n")
        for text in [*self._records, *self._warnings]:
            sys.stderr.write(text + "\n")


def _for_developers(category: type[Warning]) -> bool:
    """Deprecation and future warnings (pyvista's own included) concern the code, not the user."""
    return issubclass(category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)) or (
        "Deprecation" in category.__name__
    )


def _is_fd2(stream: object) -> bool:
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _is_noise(text: str) -> bool:
    """Lines that say nothing to a user (VTK's separator lines, empty loguru frames)."""
    return text.strip("-=. ") == "" or text.startswith(("Stack trace", "loguru"))


@contextlib.contextmanager
def _vtk_logger_quiet() -> Iterator[None]:
    """Silence VTK's logger on stderr (its coloured lines) while the body runs."""
    if "vtkmodules.vtkCommonCore" not in sys.modules:
        yield
        return
    from vtkmodules.vtkCommonCore import vtkLogger

    before = vtkLogger.GetCurrentVerbosityCutoff()
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    try:
        yield
    finally:
        vtkLogger.SetStderrVerbosity(before)


def report_exception(exc: BaseException, captured: LibraryOutput | None = None) -> int:
    """Print ``exc`` the boundary's way and return the exit code (2 user error, 1 bug).

    Parameters
    ----------
    exc : BaseException
        The exception that ended the command (not ``SystemExit``).
    captured : LibraryOutput, optional
        What the libraries said during the command.
    """
    message = user_error_message(exc)
    if message is not None:
        if captured is not None:
            message = captured.fold_into(message)
        sys.stderr.write(f"error: {one_line(message)}\n")
        sys.stderr.flush()
        return EXIT_USER_ERROR
    if captured is not None:
        captured.replay_raw()
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(BUG_REPORT_LINE + "\n")
    sys.stderr.flush()
    return EXIT_BUG


@contextlib.contextmanager
def error_boundary() -> Iterator[LibraryOutput]:
    """Run a command body under the boundary (module docstring); exits on any exception.

    Yields
    ------
    LibraryOutput
        The capture of library output (its lines are repeated as warnings on success).

    Raises
    ------
    SystemExit
        Code 2 after one ``error:`` line for a user error, 1 after a traceback for a bug, 130
        on Ctrl-C.
    """
    captured = LibraryOutput()
    code = 0
    try:
        with captured.capture():
            yield captured
    except (SystemExit, click.exceptions.Exit, click.Abort):
        raise
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        code = 130
    except BaseException as exc:  # noqa: BLE001 - this is the boundary
        code = report_exception(exc, captured)
    if code:
        sys.exit(code)
    for line in captured.lines()[:MAX_WARNINGS]:
        sys.stderr.write(f"warning: {line}\n")


class SurgplanGroup(click.Group):
    """The ``surgplan`` click group: usage errors and exceptions outside a command on one line.

    Click's own usage errors (a missing option, an unknown command, an invalid value) print
    four lines; here they are one ``error: ...`` line and exit code 2, like every other user
    error. An exception that escapes before a command body (a bug) keeps its traceback.
    """

    def main(self, *args: object, standalone_mode: bool = True, **kwargs: object) -> object:  # type: ignore[override]
        """Run the group as click does, with the boundary's error reporting when standalone."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[arg-type]
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[arg-type]
        except click.Abort:
            sys.stderr.write("error: aborted\n")
            sys.exit(EXIT_BUG)
        except KeyboardInterrupt:
            sys.stderr.write("error: interrupted\n")
            sys.exit(130)
        except SystemExit:
            raise
        except click.exceptions.NoArgsIsHelpError as exc:  # bare ``surgplan``: the help, as is
            sys.stderr.write(exc.format_message() + "\n")
            sys.exit(EXIT_USER_ERROR)
        except BaseException as exc:  # noqa: BLE001 - this is the boundary
            sys.exit(report_exception(exc))
        sys.exit(code if isinstance(code, int) else 0)
