"""``surgplan import-model``: a structure from a surface model (a case without a scan)."""

from __future__ import annotations

from pathlib import Path

import click

from surgplan.cli.common import case_argument, command_context, json_option, progress_bar


@click.command("import-model")
@click.argument("mesh", type=click.Path(path_type=Path))
@case_argument
@click.option("--structure", required=True, help="Structure name (liver, tumour, ...).")
@click.option(
    "--largest-only",
    is_flag=True,
    help="Keep only the piece of largest volume (default: every piece that is not degenerate).",
)
@json_option
def import_model_command(
    mesh: Path, case: Path, structure: str, largest_only: bool, json_output: bool
) -> None:
    """Add a structure to CASE from a surface MESH (.vtk/.vtp/.stl/.obj/.ply), repaired.

    Coordinates are taken as patient LPS millimetres (STL/OBJ/PLY cannot declare a space; a
    VTK/VTP file declaring RAS is refused). CASE is created without a scan when it does not
    exist; when it has a scan, the surface must lie inside it. Degenerate pieces, duplicate
    points, collapsed triangles and holes up to 5% of the piece's size are repaired, the
    triangles wound consistently and outward; anything else is refused with its reason.
    """
    from surgplan.model_import import import_model

    with command_context(json_output) as ctx:
        with progress_bar(f"importing {structure} from {mesh.name}"):
            result = import_model(
                mesh, case, structure=structure, keep="largest" if largest_only else "all"
            )
        ctx.report.update(result.to_dict())
        ctx.report["time_s"] = ctx.elapsed_s()


def register(group: click.Group) -> None:
    """Add ``import-model`` to ``group``."""
    group.add_command(import_model_command)
