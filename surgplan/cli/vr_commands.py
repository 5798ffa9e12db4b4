"""``surgplan vr``: the case's twin in an OpenXR headset, or on the simulated headset offscreen."""

from __future__ import annotations

from pathlib import Path

import click

from surgplan.cli.common import case_argument, command_context, json_option


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
    "--live",
    "live",
    metavar="HOST:PORT",
    help="Follow a live session (surgplan live) as an OpenIGTLink client; needs the case's "
    "headset calibration (surgplan vr-calibrate).",
)
@click.option(
    "--frames",
    type=click.IntRange(1, 10_000_000),
    default=None,
    help="Frames to render, then exit [OpenXR: until the session ends; simulated: 90].",
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
    type=(click.IntRange(16, 8192), click.IntRange(16, 8192)),
    default=None,
    help="Per-eye WIDTH HEIGHT, px [OpenXR: the runtime's recommended size; simulated: 512 512].",
)
@click.option(
    "--validation",
    is_flag=True,
    help="OpenXR: run through the Khronos core validation API layer (pyopenxr ships it).",
)
@json_option
def vr_command(
    case: Path,
    backend: str,
    live: str | None,
    frames: int | None,
    out: Path | None,
    size: tuple[int, int] | None,
    validation: bool,
    json_output: bool,
) -> None:
    """Show CASE's twin in VR: rehearsal (600 mm ahead, grips move it) or a live session."""
    with command_context(json_output) as ctx:
        from surgplan.vr_app import run_vr

        layers = ()
        if validation:
            from vr.openxr_backend import CORE_VALIDATION_LAYER

            layers = (CORE_VALIDATION_LAYER,)
        report = run_vr(
            case, backend=backend, live=live, frames=frames, out_dir=out, size=size,
            validation=layers,
        )  # fmt: skip
        ctx.report.update(report)
        ctx.report["time_s"] = ctx.elapsed_s()


@click.command("vr-calibrate")
@case_argument
@click.option(
    "--headset-points",
    "headset_points",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The points in the headset's reference space, mm (any points file surgplan reads).",
)
@click.option(
    "--tracker-points",
    "tracker_points",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The same points, same order, in tracker space, mm.",
)
@json_option
def vr_calibrate_command(
    case: Path, headset_points: Path, tracker_points: Path, json_output: bool
) -> None:
    """Compute the headset-to-tracker calibration of CASE from paired points and store it."""
    with command_context(json_output) as ctx:
        from imaging.mesh_io import probe_mesh_file
        from registration.io import read_points
        from surgplan.vr_calibration import compute_calibration, store_calibration

        for path in (headset_points, tracker_points):
            probe_mesh_file(path)  # a legacy .vtk is read in a child first: VTK can crash on it
        calibration = compute_calibration(read_points(headset_points), read_points(tracker_points))
        store_calibration(case, calibration)
        ctx.report.update(calibration.to_dict())


def register(group: click.Group) -> None:
    """Add ``vr`` and ``vr-calibrate`` to ``group``."""
    group.add_command(vr_command)
    group.add_command(vr_calibrate_command)
