"""Shared behaviour of every ``surgplan`` command: JSON output, one-line errors, progress.

Each command body runs inside :func:`command_context`. The command fills ``ctx.report`` (a
dict) or sets ``ctx.result`` (any JSON-serialisable value, e.g. a list). On success the value is
printed as one JSON document on stdout with ``--json``, or as a readable summary otherwise. Any
project error (:data:`surgplan.errors.PROJECT_ERRORS`) becomes ``error: <message>`` on one line
of stderr and exit code 2; no traceback is shown for input the user controls. The decision and
the capture of library output live in :mod:`surgplan.cli.error_boundary`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from surgplan.cli.error_boundary import EXIT_USER_ERROR, error_boundary

__all__ = [
    "EXIT_USER_ERROR",
    "CommandContext",
    "FiniteFloat",
    "case_argument",
    "command_context",
    "json_option",
    "path_option",
    "progress_bar",
    "stderr_console",
    "to_jsonable",
]

#: Longest nested value shown in the readable (non-JSON) summary, characters.
SUMMARY_WIDTH = 160

stderr_console = Console(stderr=True)


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths and dataclass-free containers to plain JSON values.

    Parameters
    ----------
    value
        Any nesting of dicts, lists, tuples, numpy arrays and scalars, paths, str, int, float.

    Returns
    -------
    Any
        The same structure built from JSON types only. Non-finite floats become ``None``.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: The ``--json`` flag every command takes (sets the ``json_output`` parameter).
json_option = click.option(
    "--json", "json_output", is_flag=True, help="Print one JSON document on stdout."
)


#: The CASE argument (a case folder) of the commands that work on a case.
case_argument = click.argument("case", type=click.Path(path_type=Path))


def path_option(*param_decls: str, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``click.option`` whose value is a :class:`pathlib.Path` (a file or folder to write).

    Parameters
    ----------
    *param_decls
        The option's names, as ``click.option`` takes them (``"--dicom-seg", "dicom_seg"``).
    help
        The option's help text.
    """
    return click.option(*param_decls, type=click.Path(path_type=Path), help=help)


class FiniteFloat(click.ParamType):
    """A float option that must be finite and within a range (click's FloatRange lets NaN in).

    Parameters
    ----------
    low, high : float, optional
        Bounds; ``None`` for none.
    low_open : bool
        Whether ``low`` itself is excluded (``> low`` rather than ``>= low``).
    """

    name = "number"

    def __init__(
        self, low: float | None = None, high: float | None = None, *, low_open: bool = False
    ) -> None:
        self.low, self.high, self.low_open = low, high, low_open

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """The option's value as a finite float in range, or a one-line usage error."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} must be a finite number", param, ctx)
        below = self.low is not None and (
            number <= self.low if self.low_open else number < self.low
        )
        if below or (self.high is not None and number > self.high):
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            bracket = "(" if self.low_open else "["
            self.fail(f"{number:g} is not in the range {bracket}{lo}, {hi}]", param, ctx)
        return number


@dataclass
class CommandContext:
    """What a command hands back: a report dict, or any JSON value in ``result``."""

    json_output: bool
    report: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    started: float = field(default_factory=time.perf_counter)

    def elapsed_s(self) -> float:
        """Seconds since the command started."""
        return time.perf_counter() - self.started


def _print_summary(value: Any) -> None:
    console = Console()
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                text = json.dumps(to_jsonable(item))
                if len(text) > SUMMARY_WIDTH:
                    text = text[: SUMMARY_WIDTH - 30] + " ... (full figures with --json)"
                console.print(f"[bold]{key}[/bold]: {text}", markup=True, highlight=False)
            else:
                console.print(f"[bold]{key}[/bold]: {item}")
    else:
        console.print_json(json.dumps(to_jsonable(value)))


@contextmanager
def command_context(json_output: bool) -> Iterator[CommandContext]:
    """Run a command body with the project's output and error conventions.

    Parameters
    ----------
    json_output
        Print the result as one JSON document on stdout when true.

    Yields
    ------
    CommandContext
        Fill ``report`` (dict) or set ``result`` (any JSON-serialisable value).

    Raises
    ------
    SystemExit
        With code 2 after printing one ``error: ...`` line when an error caused by the input
        escapes the body, 1 after a traceback and a bug-report line for anything else
        (:mod:`surgplan.cli.error_boundary`).
    """
    ctx = CommandContext(json_output=json_output)
    with error_boundary():
        yield ctx
    value = ctx.result if ctx.result is not None else ctx.report
    if json_output:
        sys.stdout.write(json.dumps(to_jsonable(value)) + "\n")
        sys.stdout.flush()
    else:
        _print_summary(value)


@contextmanager
def progress_bar(description: str, total: float | None = None) -> Iterator[Any]:
    """A rich progress bar on stderr (so ``--json`` stdout stays one clean JSON document).

    The bar is shown only when stderr is a terminal, with or without ``--json``.

    Parameters
    ----------
    description
        Text shown next to the bar.
    total
        Number of steps, or ``None`` for a spinner.

    Yields
    ------
    Callable
        ``advance(step=1.0, description=None)`` to move the bar and optionally relabel it.
    """
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
        disable=not stderr_console.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=total)

        def advance(step: float = 1.0, description: str | None = None) -> None:
            if description is not None:
                progress.update(task, description=description)
            progress.advance(task, step)

        yield advance
