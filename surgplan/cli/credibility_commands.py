"""``surgplan credibility``: the ASME V&V 40-style credibility report of a case."""

from __future__ import annotations

from pathlib import Path

import click

from surgplan.cli.common import case_argument, command_context, json_option, progress_bar


@click.command("credibility")
@case_argument
@click.option(
    "--context",
    "context",
    type=click.Path(path_type=Path),
    default=None,
    help="Context-of-use TOML (question, use, model risk, planned acquisition, validation "
    "grid); default: liver resection guidance.",
)
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--trials", default=24, show_default=True, help="Validation trials.")
@click.option("--quick-verify", is_flag=True, help="Code verification on the quick levels.")
@click.option(
    "--verify-json",
    type=click.Path(path_type=Path),
    default=None,
    help="Read a kept `surgplan verify --json` output instead of rerunning it.",
)
@click.option(
    "--max-refined-tets",
    default=150_000,
    show_default=True,
    help="Cap on the finest calculation-verification mesh (tetrahedra); 0: no cap (h / 2).",
)
@click.option(
    "--validation-data",
    "validation_data",
    type=click.Path(path_type=Path),
    multiple=True,
    help="A real acquisition with a known answer (TOML/JSON manifest: points in tracker space, "
    "truth targets, noise, description; see README); repeat for several. Scored by the "
    "case's twin in rigid and deformable mode and checked by the verdict.",
)
@json_option
def credibility_command(
    case: Path, context: Path | None, out: Path, trials: int, quick_verify: bool,
    verify_json: Path | None, max_refined_tets: int, validation_data: tuple[Path, ...],
    json_output: bool,
) -> None:  # fmt: skip
    """Write OUT/credibility.html and OUT/credibility.json for CASE's twin.

    Code verification, calculation verification on the case's mesh, validation on virtual
    patients of the case, calibration of the predicted 95 % radius and its sources of doubt,
    applicability, and the verdict against the evidence the model risk requires; with
    --validation-data, the twin's figures on the user's real acquisitions. With --json: the
    verdict, headline figures and file paths.
    """
    from surgplan.credibility import build_credibility

    with command_context(json_output) as ctx:
        with progress_bar("credibility") as advance:
            result = build_credibility(
                case, out, context=context, trials=trials, quick_verify=quick_verify,
                verify_json=verify_json, max_refined_tets=max_refined_tets or None,
                step=lambda text: advance(0, text), validation_data=validation_data,
            )  # fmt: skip
        ctx.report.update(result.to_dict())


def register(group: click.Group) -> None:
    """Add ``credibility`` to ``group``."""
    group.add_command(credibility_command)
