"""``surgplan verify | simulate | rom``: verified tissue mechanics and the reduced model."""

from __future__ import annotations

from pathlib import Path

import click

from surgplan.cli.common import (
    FiniteFloat,
    case_argument,
    command_context,
    json_option,
    progress_bar,
)


@click.command("verify")
@click.option(
    "--problem",
    "problems",
    multiple=True,
    help="Only these problems (repeatable): lame_cylinder, lame_sphere, cantilever, "
    "cooks_membrane, poiseuille, vessel_tree.",
)
@click.option("--quick", is_flag=True, help="Fewer, coarser mesh levels.")
@json_option
def verify_command(problems: tuple[str, ...], quick: bool, json_output: bool) -> None:
    """Solve the verification problems; print errors and observed convergence orders.

    With --json: a JSON list, one object per problem, quantity and mesh level with exactly the
    keys problem, quantity, dofs, value, reference, rel_error and order (the observed
    convergence order of that problem and quantity at this level; null on the first level).
    Without --json: a table with the same columns.
    """
    from biomech.verification import PROBLEMS, format_table, json_records, run_verification

    with command_context(json_output) as ctx:
        names = list(problems) or list(PROBLEMS)
        with progress_bar("verification", total=len(names)) as advance:
            records = run_verification(
                names, quick=quick, progress=lambda name: advance(0, f"verifying {name}")
            )
        if json_output:
            ctx.result = json_records(records)
        else:
            click.echo(format_table(records))
            ctx.report["time_s"] = ctx.elapsed_s()


@click.command("simulate")
@case_argument
@click.option(
    "--scenario",
    type=click.Path(path_type=Path),
    required=True,
    help="Scenario TOML: materials, supports, retractors, pressures, gravity (mm, kPa).",
)
@json_option
def simulate_command(case: Path, scenario: Path, json_output: bool) -> None:
    """Solve a scenario on CASE's volume mesh and store the result (VTU + XDMF) in the case."""
    from surgplan.simulation import simulate_case

    with command_context(json_output) as ctx:
        with progress_bar("solving tissue mechanics"):
            ctx.report.update(simulate_case(case, scenario).to_dict())
        ctx.report["time_s"] = ctx.elapsed_s()


@click.command("rom")
@case_argument
@click.option(
    "--scenario",
    type=click.Path(path_type=Path),
    default=None,
    help="Scenario TOML giving supports, the nominal retractor patch and insufflation surface. "
    "Without it: the documented liver defaults (surgplan.liver_defaults), patch centres over "
    "the whole surface, every volume vertex evaluated (what the twin uses).",
)
@click.option(
    "--centres",
    type=click.IntRange(1, 1000),
    default=30,
    show_default=True,
    help="Sampled retractor centres.",
)
@click.option(
    "--site-radius-mm",
    type=FiniteFloat(0.0, 500.0, low_open=True),
    default=15.0,
    show_default=True,
    help="Patch-centre range around the scenario's retractor, mm (with --scenario).",
)
@json_option
def rom_command(
    case: Path, scenario: Path | None, centres: int, site_radius_mm: float, json_output: bool
) -> None:
    """Build CASE's real-time reduced deformation model from FE snapshots (rom/linear.npz).

    Without --scenario the liver defaults are used and said on stderr (and, with --json,
    under the extra key "defaults").
    """
    from surgplan.case_rom import build_case_rom

    with command_context(json_output) as ctx:
        with progress_bar("FE snapshots", total=centres) as advance:
            result = build_case_rom(
                case,
                scenario,
                n_centres=centres,
                site_radius_mm=site_radius_mm,
                progress=lambda done, total: advance(1),
            )
        if result.defaults is not None:
            click.echo(f"no scenario: {result.defaults['text']}", err=True)
        ctx.report.update(result.to_dict())
        ctx.report["time_s"] = ctx.elapsed_s()


def register(group: click.Group) -> None:
    """Add ``verify``, ``simulate`` and ``rom`` to ``group``."""
    group.add_command(verify_command)
    group.add_command(simulate_command)
    group.add_command(rom_command)
