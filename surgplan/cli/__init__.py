"""The ``surgplan`` command line: one click group, commands registered from small modules.

Each ``*_commands`` module defines click commands and a ``register(group: click.Group)``
function that adds them (``group.add_command(...)``). Click (not Typer) is used because the
contract needs repeated multi-value options such as ``--seed X Y Z`` given several times.
Command bodies run inside :func:`surgplan.cli.common.command_context`; the group is a
:class:`~surgplan.cli.error_boundary.SurgplanGroup`, so click's usage errors are one line too.
"""

from __future__ import annotations

import click

from surgplan.cli import (
    biomech_commands,
    case_commands,
    credibility_commands,
    demo_command,
    live_commands,
    model_commands,
    registration_commands,
    viewer_commands,
    vr_commands,
)
from surgplan.cli.error_boundary import SurgplanGroup


@click.group(
    name="surgplan",
    cls=SurgplanGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="surgplan")
def cli() -> None:
    """Patient-specific surgical digital twin: CT to case, meshes, mechanics, registration."""


case_commands.register(cli)
demo_command.register(cli)
registration_commands.register(cli)
biomech_commands.register(cli)
model_commands.register(cli)
live_commands.register(cli)
credibility_commands.register(cli)
viewer_commands.register(cli)
vr_commands.register(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="surgplan")
