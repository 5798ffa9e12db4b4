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
@click.option(
    "--liver-models",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of real liver models to retract too (default: ../shared/data/liver_models).",
)
@click.option("--no-liver-models", is_flag=True, help="Skip the real liver model's retraction.")
@json_option
def demo_command(
    out: Path, liver_models: Path | None, no_liver_models: bool, json_output: bool
) -> None:
    """Phantom CT -> case -> segmentation -> meshes -> FE retraction -> registration -> report."""
    from surgplan.demo import DEFAULT_LIVER_MODELS, run_demo

    models = None if no_liver_models else (liver_models or DEFAULT_LIVER_MODELS)
    with command_context(json_output) as ctx:
        with progress_bar("demo") as advance:
            result = run_demo(out, liver_models=models, on_step=lambda text: advance(0, text))
        ctx.report.update(result.to_dict())
        ctx.report["time_s"] = ctx.elapsed_s()
        if not ctx.report["passed"]:
            ctx.report["warning"] = (
                "a segmentation fell below its Dice target or the simulated registration missed "
                "its target (see the report)"
            )


def register(group: click.Group) -> None:
    """Add ``demo`` to ``group``."""
    group.add_command(demo_command)
