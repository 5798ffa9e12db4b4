"""``surgplan live | replay | sessions | pivot``: the live OpenIGTLink session and its log.

``live`` and ``replay`` stream: one line (``--json``: one JSON object) per event or state, as
they happen, so they are written here rather than through :func:`command_context`'s single
document; errors keep the same one-line form and exit code.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from surgplan.cli.common import (
    EXIT_USER_ERROR,
    case_argument,
    command_context,
    json_option,
    stderr_console,
    to_jsonable,
)
from surgplan.errors import PROJECT_ERRORS


@contextmanager
def _streaming_errors() -> Iterator[None]:
    """Project errors as ``error: ...`` on stderr and exit code 2 (as ``command_context``)."""
    try:
        yield
    except PROJECT_ERRORS as error:
        stderr_console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)


def _emit(obj: dict[str, Any], json_output: bool, text: str | None = None) -> None:
    if json_output:
        sys.stdout.write(json.dumps(to_jsonable(obj)) + "\n")
    elif text is not None:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _client(ev: dict[str, Any]) -> str:
    return ev.get("client", "")


#: One line of text per event kind (updates: ``--json`` only).
_EVENT_TEXT: dict[str, Callable[[dict[str, Any]], str]] = {
    "listening": lambda ev: f"listening on {ev['host']}:{ev['port']} (session {ev['session']})",
    "client_connected": lambda ev: f"client {_client(ev)} connected",
    "client_closed": lambda ev: f"client {_client(ev)} closed ({ev.get('reason')})",
    "client_refused": lambda ev: f"client {_client(ev)} refused: {ev.get('reason')}",
    "client_error": lambda ev: f"client {_client(ev)} error [{ev['problem']}]: {ev['message']}",
    "update_failed": lambda ev: f"update failed: {ev['message']}",
    "stopped": lambda ev: f"stopped after {ev['accepted']} messages, {ev['updates']} updates",
}


def _event_text(ev: dict[str, Any]) -> str | None:
    text = _EVENT_TEXT.get(ev["event"])
    return None if text is None else text(ev)


async def _run_live(server: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.close()


@click.command("live")
@case_argument
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=18944, show_default=True, type=int, help="Port (0: any free).")
@click.option(
    "--allow",
    multiple=True,
    help="Client address or network accepted besides loopback (repeatable); others are refused.",
)
@click.option("--deformable", is_flag=True, help="Deformable twin (default rigid).")
@click.option(
    "--noise-mm", default=1.0, show_default=True, type=float, help="Sensor noise, mm (1 SD)."
)
@click.option("--resume", default=None, help="Recover and continue this session (its id).")
@click.option(
    "--pointer-device", default="PointerToTracker", show_default=True, help="Pointer TRANSFORM."
)
@click.option("--ras-in", is_flag=True, help="Incoming POINT/POLYDATA/pointer are RAS (Slicer).")
@click.option("--lps-out", is_flag=True, help="Publish LPS instead of RAS (non-Slicer clients).")
@click.option(
    "--max-body-mb", default=64.0, show_default=True, type=float, help="Largest body, MiB."
)
@click.option(
    "--sync",
    type=click.Choice(["normal", "full"]),
    default="normal",
    show_default=True,
    help="SQLite synchronous: normal survives a crash, full also a power cut.",
)
@click.option(
    "--twin-source", type=click.Choice(["case", "synthetic"]), default="case", hidden=True
)
@json_option
def live_command(
    case: Path,
    host: str,
    port: int,
    allow: tuple[str, ...],
    deformable: bool,
    noise_mm: float,
    resume: str | None,
    pointer_device: str,
    ras_in: bool,
    lps_out: bool,
    max_body_mb: float,
    sync: str,
    twin_source: str,
    json_output: bool,
) -> None:
    """Run the OpenIGTLink server of a live session on CASE (until Ctrl-C).

    Takes POINT, POLYDATA and the pointer's TRANSFORM (tracker frame); publishes after each
    update ModelToTracker (TRANSFORM), OrganInTracker (POLYDATA), TargetsInTracker (POINT) and
    TwinStatus (STRING). Every message and state is logged in CASE/sessions/<id>.sqlite.
    """
    from surgplan.live import LiveServer, ServerLimits, SessionConfig, TwinSpec, WireFrames
    from surgplan.live.log import open_session
    from surgplan.live.pivot import load_pivot
    from surgplan.live.server import _allowed_networks

    with _streaming_errors():
        _allowed_networks(allow)  # a bad --allow fails before a session is created
        config = None
        if resume is None:
            pivot = load_pivot(case)
            config = SessionConfig(
                twin=TwinSpec(
                    source=twin_source,
                    mode="deformable" if deformable else "rigid",
                    noise_mm=noise_mm,
                ),
                frames=WireFrames(
                    pointer_ras=ras_in,
                    points_ras=ras_in,
                    scan_ras=ras_in,
                    registration_ras=not lps_out,
                    organ_ras=not lps_out,
                    targets_ras=not lps_out,
                    status_ras=not lps_out,
                    pointer_device=pointer_device,
                ),
                tip_offset_mm=None if pivot is None else pivot.tip_offset_mm,
            )
        session, recovered = open_session(case, config, resume=resume, synchronous=sync.upper())
        for n, outcome in recovered:
            _emit(
                {
                    "event": "recovered",
                    "update": n,
                    "status": outcome.status,
                    "session": session.session_id,
                },
                json_output,
                f"recovered session {session.session_id}: update {n} ({outcome.status})",
            )

        def on_event(ev: dict[str, Any]) -> None:
            _emit(ev, json_output, _event_text(ev))

        limits = ServerLimits(max_body_bytes=int(max_body_mb * 2**20))
        server = LiveServer(
            session, host=host, port=port, allow=allow, limits=limits, on_event=on_event
        )
        try:
            asyncio.run(_run_live(server))
        finally:
            session.log.end()


@click.command("replay")
@case_argument
@click.argument("session")
@json_option
def replay_command(case: Path, session: str, json_output: bool) -> None:
    """Recompute every state of SESSION from its logged messages (one line per state)."""
    from surgplan.live.log import replay_session

    with _streaming_errors():
        worst = 0.0
        count = 0
        for up in replay_session(case, session):
            worst = max(worst, up.difference)
            count += 1
            _emit(
                up.to_dict(),
                json_output,
                f"update {up.n}: {up.status}, {len(up.seqs)} messages, "
                f"difference {up.difference:.3g}",
            )
        if not json_output:
            _emit({}, False, f"{count} updates, largest difference {worst:.3g}")


@click.command("sessions")
@case_argument
@json_option
def sessions_command(case: Path, json_output: bool) -> None:
    """List the live sessions recorded in CASE."""
    from surgplan.case import Case
    from surgplan.live.log import list_sessions

    with command_context(json_output) as ctx:
        Case.open(case)
        ctx.result = list_sessions(case)
        if not ctx.result and not json_output:
            ctx.result = {"sessions": "none"}


@click.command("pivot")
@case_argument
@click.argument("transforms", type=click.Path(path_type=Path))
@json_option
def pivot_command(case: Path, transforms: Path, json_output: bool) -> None:
    """Calibrate the pointer's tip from a pivot recording TRANSFORMS and store it in CASE.

    TRANSFORMS: pointer poses T_tracker_pointer (mm) as .npy (N, 4, 4), .json or text (16
    numbers per matrix, row by row).
    """
    from surgplan.case import Case
    from surgplan.live.pivot import PIVOT_RELPATH, pivot_calibration, read_transforms, store_pivot

    with command_context(json_output) as ctx:
        Case.open(case)
        result = pivot_calibration(read_transforms(transforms))
        store_pivot(case, result, source=str(transforms))
        ctx.report.update(result.to_dict())
        ctx.report["path"] = PIVOT_RELPATH


def register(group: click.Group) -> None:
    """Add the live-session commands to ``group``."""
    for command in (live_command, replay_command, sessions_command, pivot_command):
        group.add_command(command)
