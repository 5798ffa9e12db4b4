"""``surgplan demo``: the whole pipeline on the bundled sample data."""

from __future__ import annotations

from pathlib import Path

import click

from surgplan.cli.common import command_context, json_option, progress_bar


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("surgplan-demo"),
    show_default=True,
    help="Output folder (case, picture, report).",
)
@json_option
def demo_command(out: Path, json_output: bool) -> None:
    """Phantom CT -> case -> segmentation -> meshes -> picture -> HTML report."""
    from surgplan.demo import run_demo

    with command_context(json_output) as ctx:
        with progress_bar(json_output, "demo") as advance:
            ctx.report.update(run_demo(out, on_step=lambda text: advance(0, text)))
        ctx.report["time_s"] = ctx.elapsed_s()
        if not ctx.report["passed"]:
            ctx.report["warning"] = "a segmentation fell below its Dice target (see the report)"


def register(group: click.Group) -> None:
    """Add ``demo`` to ``group``."""
    group.add_command(demo_command)
