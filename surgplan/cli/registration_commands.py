"""``surgplan register`` and ``surgplan study``: surface registration and accuracy studies.

Registration itself lives in :mod:`registration` (numpy in, dataclasses out); this module only
reads files, calls it and fills the command report.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from surgplan.cli.common import command_context, json_option, progress_bar


@click.command("register")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Organ surface (VTK/VTP/STL/PLY/OBJ), model space, LPS mm.",
)
@click.option(
    "--points",
    "points_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Measured points (tracker space, LPS mm): CSV, XYZ/TXT, PLY, 3D Slicer .mrk.json "
    "(LPS or RAS), or a mesh (.vtk .vtp .stl .obj) whose vertices are the points.",
)
@click.option(
    "--init",
    "init_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Prior registration (skips the global search). A 4x4 text matrix is T_model_points "
    "(maps the points into model space, as in the JSON output). An ITK .tfm is read as "
    "--write-transform writes it: it holds T_points_model (= T_tracker_model), the inverse, "
    "and is inverted on reading.",
)
@click.option(
    "--init-max-rotation-deg",
    type=float,
    default=None,
    help="Orientation uncertainty of --init, degrees: search within this cone.",
)
@click.option(
    "--targets",
    "targets_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Targets in model space (same formats as --points): report their predicted "
    "positions in the points' space.",
)
@click.option(
    "--noise-mm",
    type=float,
    default=1.0,
    show_default=True,
    help="Expected localisation noise (per-axis standard deviation), mm.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Global-search seed.")
@click.option(
    "--write-transform",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the result as an ITK transform (.tfm) that 3D Slicer loads. The file holds "
    "T_points_model = inverse(T_model_points) (= T_tracker_model): ITK's resampling direction, "
    "which Slicer reads as the transform from parent; the JSON's T_model_points maps the points "
    "into model space. In Slicer, put the points under this transform to see them on the model.",
)
@json_option
def register_command(
    model_path: Path,
    points_path: Path,
    init_path: Path | None,
    init_max_rotation_deg: float | None,
    targets_path: Path | None,
    noise_mm: float,
    seed: int,
    write_transform: Path | None,
    json_output: bool,
) -> None:
    """Register measured points to an organ surface and say whether to trust it.

    The JSON's T_model_points maps the points into model space; the --write-transform file holds
    its inverse, T_points_model (= T_tracker_model), as ITK and 3D Slicer expect.
    """
    from registration.io import read_points, read_transform_txt, write_itk_transform
    from registration.model import load_surface
    from registration.surface import register_surface

    with command_context(json_output) as ctx:
        model = load_surface(model_path)
        points = read_points(points_path)
        T_init = read_transform_txt(init_path) if init_path is not None else None
        targets = read_points(targets_path) if targets_path is not None else None
        res = register_surface(
            points,
            model,
            T_init=T_init,
            seed=seed,
            noise_mm=noise_mm,
            max_rotation_deg=init_max_rotation_deg,
        )
        ctx.report.update(res.to_dict())
        if targets is not None:
            T_points_model = np.linalg.inv(res.T_model_points)
            pred = targets @ T_points_model[:3, :3].T + T_points_model[:3, 3]
            ctx.report["targets"] = [
                {"model_mm": t.tolist(), "predicted_points_space_mm": p.tolist()}
                for t, p in zip(targets, pred, strict=True)
            ]
        if write_transform is not None:
            ctx.report["transform_file"] = str(
                write_itk_transform(write_transform, res.T_model_points)
            )


@click.command("study")
@click.argument("spec_path", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder: trials table, summary.json, plots.",
)
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler.")
@click.option(
    "--workers",
    type=int,
    default=2,
    show_default=True,
    help="Workers of the local Dask cluster (ignored with --scheduler).",
)
@click.option(
    "--format",
    "table_format",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="Trials table format.",
)
@json_option
def study_command(
    spec_path: Path,
    out_dir: Path,
    scheduler: str | None,
    workers: int,
    table_format: str,
    json_output: bool,
) -> None:
    """Run an accuracy study (TOML/YAML spec) on Dask; resumes an interrupted run."""
    import json

    from registration.study import expand_trials, load_spec, run_study

    with command_context(json_output) as ctx:
        spec = load_spec(spec_path)
        total = len(expand_trials(spec))
        with progress_bar(f"study {spec.name}", total) as advance:
            last = [0]

            def on_progress(done: int, _total: int) -> None:
                advance(done - last[0])
                last[0] = done

            outputs = run_study(
                spec,
                out_dir,
                scheduler=scheduler,
                n_workers=workers,
                table_format=table_format,
                progress=on_progress,
            )
        summary = json.loads(outputs.summary.read_text())
        ctx.report.update(
            {
                "table": str(outputs.table),
                "summary": str(outputs.summary),
                "plots": [str(p) for p in outputs.plots],
                "n_trials": outputs.n_trials,
                "n_computed": outputs.n_computed,
                "n_reused": outputs.n_reused,
                "good_cases": summary["good_cases"],
                "bad_cases": summary["bad_cases"],
                "time_s": ctx.elapsed_s(),
            }
        )


def register(group: click.Group) -> None:
    """Add ``register`` and ``study`` to ``group``."""
    group.add_command(register_command)
    group.add_command(study_command)
