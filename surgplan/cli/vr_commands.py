"""``surgplan vr``: the case's twin in an OpenXR headset, or on the simulated headset offscreen."""

from __future__ import annotations

from pathlib import Path

import click

from surgplan.cli.common import case_argument, command_context, json_option
from surgplan.errors import SurgplanError


@click.command("vr")
@case_argument
@click.option(
    "--backend",
    type=click.Choice(["openxr", "simulated"]),
    default="openxr",
    show_default=True,
    help="openxr: a headset through the OpenXR runtime; simulated: scripted head, offscreen.",
)
@click.option(
    "--live", "live", metavar="HOST:PORT", help="Follow a live session (not supported yet)."
)
@click.option(
    "--frames",
    type=click.IntRange(1, 100_000),
    default=90,
    show_default=True,
    help="Simulated: frames to render.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Simulated: folder for both eyes' PNG frames.",
)
@click.option(
    "--size",
    "size",
    type=(click.IntRange(16, 4096), click.IntRange(16, 4096)),
    default=(512, 512),
    show_default=True,
    help="Simulated: per-eye WIDTH HEIGHT, px.",
)
@json_option
def vr_command(
    case: Path,
    backend: str,
    live: str | None,
    frames: int,
    out: Path | None,
    size: tuple[int, int],
    json_output: bool,
) -> None:
    """Show CASE's twin in VR (rehearsal: the twin floats 600 mm ahead of the user)."""
    with command_context(json_output) as ctx:
        if live is not None:
            raise SurgplanError(
                "--live is not supported by 'surgplan vr' yet; run without --live (rehearsal)"
            )
        from surgplan.vr_scene import case_vr_scene

        scene = case_vr_scene(case)  # a bad case is reported before any headset is opened
        if backend == "openxr":
            from vr.openxr_backend import open_openxr_backend

            open_openxr_backend()
            return
        from vr.simulated import HeadsetModel, run_simulated

        headset = HeadsetModel(width=size[0], height=size[1])
        run = run_simulated(lambda t: scene, frames=frames, headset=headset, out_dir=out)
        ctx.report.update(run.to_dict())
        ctx.report["backend"] = "simulated"
        ctx.report["eye_size_px"] = list(size)
        ctx.report["time_s"] = ctx.elapsed_s()


def register(group: click.Group) -> None:
    """Add ``vr`` to ``group``."""
    group.add_command(vr_command)
