"""``surgplan view`` (the desktop viewer window) and ``surgplan snapshot`` (offscreen PNG)."""

from __future__ import annotations

from pathlib import Path

import click

from surgplan.cli.common import case_argument, command_context, json_option
from surgplan.errors import SurgplanError

#: Camera directions of ``--view`` (see :data:`surgplan.viewer.actors.VIEWS`).
VIEW_NAMES = ("anterior", "posterior", "left", "right", "superior", "inferior")


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SurgplanError(f"--live must be HOST:PORT with a port 1..65535, got {value!r}")
    return host, int(port)


@click.command("view")
@case_argument
@click.option("--live", "live", metavar="HOST:PORT", help="Follow a running live session.")
@click.option("--session", "session", help="Replay a recorded session of CASE.")
def view_command(case: Path, live: str | None, session: str | None) -> None:
    """Open CASE in the desktop viewer (3D scene, CT slices, rehearsal); needs a display."""
    with command_context(False) as ctx:
        if live is not None and session is not None:
            raise SurgplanError("--live and --session cannot be used together")
        from surgplan.viewer.app import run_viewer

        host_port = _host_port(live) if live is not None else None
        ctx.report["exit_code"] = run_viewer(case, live=host_port, session=session)


@click.command("snapshot")
@case_argument
@click.option("--view", type=click.Choice(VIEW_NAMES), default="anterior", show_default=True)
@click.option("--structures", "structures", multiple=True, help="Structures (repeatable).")
@click.option("--session", "session", help="A recorded live session of CASE.")
@click.option("--at", "at_s", type=float, help="Time in the session, s.")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="PNG file.")
@json_option
def snapshot_command(
    case: Path,
    view: str,
    structures: tuple[str, ...],
    session: str | None,
    at_s: float | None,
    out: Path,
    json_output: bool,
) -> None:
    """Render CASE's structures offscreen from a patient direction to a PNG (no display)."""
    from surgplan.viewer.snapshot import render_snapshot

    names = [n for item in structures for n in item.split(",") if n]
    with command_context(json_output) as ctx:
        result = render_snapshot(case, out, view=view, structures=names, session=session, at_s=at_s)
        ctx.report.update(result.to_dict())
        ctx.report["time_s"] = ctx.elapsed_s()


def register(group: click.Group) -> None:
    """Add ``view`` and ``snapshot`` to ``group``."""
    group.add_command(view_command)
    group.add_command(snapshot_command)
