"""``surgplan register`` and ``surgplan study``: surface registration and accuracy studies.

Registration itself lives in :mod:`registration` (numpy in, dataclasses out), the twin in
:mod:`surgplan.twin`, the virtual-patient study in :mod:`surgplan.twin_study`; this module only
reads files, calls them and fills the command report.

``register --model`` is the rigid surface registration. ``register --case`` runs the case's
twin (:func:`surgplan.twin.case_twin.twin_from_case`): rigid mode, or with ``--deformable``
the reduced-model deformation; the report has the register contract's keys (fit statistics of
the points against the registered, deformed surface; ``trustworthy``/``reason`` the twin's
verdict) plus ``"mode"``, ``"modes"`` (amplitudes), ``"targets"`` (name -> tracker position,
radius95 and its components, mm) and ``"recommendation"``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from registration.point_units import MM_PER_UNIT
from surgplan.cli.common import FiniteFloat, command_context, json_option, progress_bar
from surgplan.errors import SurgplanError

type ProgressFn = Callable[[int, int], None]

#: Most measured points ``register`` accepts (refused before parsing the file beyond a line
#: count). The issue's 1e7 points ran > 9 min at 3.8 GB; a few thousand constrain a pose fully.
MAX_REGISTER_POINTS = 1_000_000
#: Largest extent (bounding-box diagonal) of a ``--model`` surface, mm: a whole body is < 2.5 m.
MAX_MODEL_EXTENT_MM = 3000.0


@click.command("register")
@click.option(
    "--model",
    "model_path",
    default=None,
    type=click.Path(path_type=Path),
    help="Organ surface (VTK/VTP/STL/PLY/OBJ), model space, LPS mm (or --case).",
)
@click.option(
    "--case",
    "case_path",
    default=None,
    type=click.Path(path_type=Path),
    help="A case with a reduced model (surgplan rom CASE): register its twin (or --model).",
)
@click.option(
    "--structure",
    default="liver",
    show_default=True,
    help="With --case: the organ the points lie on.",
)
@click.option(
    "--deformable",
    is_flag=True,
    help="With --case: deformable twin (default: the twin's rigid mode).",
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
    type=FiniteFloat(0.0, 180.0),
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
    type=FiniteFloat(0.0, 50.0, low_open=True),
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
@click.option(
    "--units",
    type=click.Choice(sorted(MM_PER_UNIT)),
    default=None,
    help="Length unit of --points (converted to mm). Without it the points must be mm, and "
    "points whose extent does not fit the model's in mm are refused.",
)
@json_option
def register_command(
    model_path: Path | None,
    case_path: Path | None,
    structure: str,
    deformable: bool,
    points_path: Path,
    init_path: Path | None,
    init_max_rotation_deg: float | None,
    targets_path: Path | None,
    noise_mm: float,
    seed: int,
    write_transform: Path | None,
    units: str | None,
    json_output: bool,
) -> None:
    """Register measured points to an organ surface and say whether to trust it.

    The JSON's T_model_points maps the points into model space; the --write-transform file holds
    its inverse, T_points_model (= T_tracker_model), as ITK and 3D Slicer expect.
    """
    from registration.io import check_transform_destination, read_points, write_itk_transform
    from registration.point_units import check_point_extent
    from registration.surface import register_surface

    with command_context(json_output) as ctx:
        if (model_path is None) == (case_path is None):
            raise SurgplanError("give exactly one of --model (a surface) or --case (a case)")
        if write_transform is not None:
            check_transform_destination(write_transform)  # before any work
            if case_path is not None:
                from surgplan.case import Case
                from surgplan.export import require_outside_case

                require_outside_case(Case.open(case_path), write_transform)
        _probe_meshes(model_path, points_path, targets_path)
        if case_path is not None:
            for flag, value in (("--init-max-rotation-deg", init_max_rotation_deg),
                                ("--targets", targets_path)):  # fmt: skip
                if value is not None:
                    raise SurgplanError(
                        f"{flag} is for --model; with --case the targets are the case's "
                        "(tumour, vessels, CASE/targets/*.mrk.json)"
                    )
            ctx.report.update(
                _register_case(
                    case_path,
                    structure,
                    points_path,
                    deformable=deformable,
                    noise_mm=noise_mm,
                    seed=seed,
                    init_path=init_path,
                    write_transform=write_transform,
                    units=units,
                )  # fmt: skip
            )
            return
        points = _measured_points(points_path, units)
        T_init = _initial_pose(init_path)
        targets = (
            read_points(targets_path, max_points=MAX_REGISTER_POINTS)
            if targets_path is not None
            else None
        )
        model = _model_surface(model_path)
        if units is None:
            check_point_extent(points, model.vertices, name=str(points_path))
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


def _probe_meshes(*paths: Path | None) -> None:
    """Read every legacy VTK file given first in a child process (its reader can crash)."""
    from imaging.mesh_io import probe_mesh_file

    for path in paths:
        if path is not None:
            probe_mesh_file(path)


def _model_surface(model_path: Path) -> Any:
    """The ``--model`` surface, read by imaging's validating reader, prepared for registration."""
    from imaging.mesh_io import read_surface
    from registration.model import prepare_surface

    surface = read_surface(model_path)
    extent = float(np.linalg.norm(np.ptp(np.asarray(surface.points), axis=0)))
    if extent > MAX_MODEL_EXTENT_MM:
        raise SurgplanError(
            f"--model {model_path}: the surface spans {extent:.4g} mm; an organ surface in mm "
            f"spans less than {MAX_MODEL_EXTENT_MM:g} mm (is it in other units, or corrupt?)"
        )
    return prepare_surface(surface, name=model_path.name.split(".")[0])


def _measured_points(points_path: Path, units: str | None) -> np.ndarray:
    """The ``--points``, at most :data:`MAX_REGISTER_POINTS`, in mm (``--units``)."""
    from registration.io import read_points
    from registration.point_units import to_mm

    points = read_points(points_path, max_points=MAX_REGISTER_POINTS)
    return to_mm(points, units) if units is not None else points


def _initial_pose(init_path: Path | None) -> np.ndarray | None:
    """The ``--init`` pose, which must be rigid (a rotation and a translation in mm)."""
    from registration.io import check_rigid, read_transform_txt

    if init_path is None:
        return None
    return check_rigid(read_transform_txt(init_path), name=str(init_path))


def _fit_report(twin: object, points: np.ndarray, noise_mm: float, global_search: bool) -> dict:
    """The register contract's fit statistics of the points against the twin's surface.

    Points go into model space by the twin's ``T_model_tracker``; residuals are registration's
    point-to-surface distances to the *deformed* surface (rigid mode: the model surface).
    """
    from registration import ReliabilityCriteria, prepare_surface
    from registration.icp import surface_residuals
    from registration.reliability import pose_conditioning, systematic_residual

    state = twin.state
    basis = twin.basis
    surf = prepare_surface(
        (basis.vertices_mm + basis.surface_displacement_mm(state.amplitudes), basis.faces)
    )
    T_mt = np.linalg.inv(state.T_tracker_model)
    pts = points[np.all(np.isfinite(points), axis=1)]
    q = pts @ T_mt[:3, :3].T + T_mt[:3, 3]
    r, dist, idx = surface_residuals(q, surf.vertices, surf.normals, surf.tree, surf.spacing_mm)
    thr = ReliabilityCriteria().inlier_threshold_mm(noise_mm, surf.spacing_mm)
    inl = dist <= thr
    cond, weakest, _ = pose_conditioning(q[inl], surf.normals[idx[inl]])
    return {
        "T_model_points": T_mt,
        "inlier_fraction": float(inl.mean()) if len(inl) else 0.0,
        "inlier_rms_mm": float(np.sqrt(np.mean(r[inl] ** 2))) if inl.any() else None,
        "trustworthy": state.trustworthy,
        "reason": state.verdict.reason,
        "n_points_used": int(state.n_points),
        "n_points_dropped": int(state.n_points_dropped),
        "time_ms": float(state.time_ms),
        "condition_number": cond,
        "weakest_constraint": weakest,
        "inlier_threshold_mm": thr,
        "iterations": int(state.iterations),
        "global_search": global_search,
        "systematic_residual_mm": systematic_residual(q[inl], r[inl]),
    }


def _register_case(
    case_path: Path, structure: str, points_path: Path, *, deformable: bool, noise_mm: float,
    seed: int, init_path: Path | None, write_transform: Path | None, units: str | None,
) -> dict:  # fmt: skip
    """``register --case``: the twin's update on the points and its report (module docstring)."""
    from registration.io import write_itk_transform
    from surgplan.twin.case_twin import twin_from_case

    points = _measured_points(points_path, units)
    T_init = _initial_pose(init_path)
    twin = twin_from_case(
        case_path, structure=structure, mode="deformable" if deformable else "rigid",
        noise_mm=noise_mm, seed=seed,
        T_tracker_model=None if T_init is None else np.linalg.inv(T_init),
    )  # fmt: skip
    state = twin.update(points)  # the twin checks the points' units itself (surgplan.twin.units)
    report = _fit_report(twin, points, noise_mm, global_search=T_init is None)
    report |= {
        "mode": state.mode,
        "modes": state.amplitudes,
        "targets": {
            t.name: {
                "position_tracker_mm": t.position_tracker_mm,
                "radius95_mm": t.radius95_mm,
                "posterior_mm": t.posterior_mm,
                "discrepancy_mm": t.discrepancy_mm,
                "stiffness_mm": t.stiffness_mm,
            }
            for t in state.targets
        },
        "recommendation": None if state.recommendation is None
        else state.recommendation.to_dict(),
    }  # fmt: skip
    if write_transform is not None:
        report["transform_file"] = str(
            write_itk_transform(write_transform, report["T_model_points"])
        )
    return report


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
    type=click.IntRange(1, 512),
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
    """Run an accuracy study (TOML/YAML spec) on Dask; resumes an interrupted run.

    The spec's ``kind`` chooses the study: absent (or ``"registration"``), a registration
    accuracy study; ``"twin_virtual_patients"``, the twin on virtual patients
    (:mod:`surgplan.twin_study`).
    """
    import json

    from registration.study import expand_trials, run_study
    from surgplan.twin_study import KIND, spec_kind

    with command_context(json_output) as ctx:
        _check_study_out(out_dir)
        if spec_kind(spec_path) == KIND:
            if scheduler is not None:
                _check_scheduler(scheduler)
            ctx.report.update(
                _twin_study(spec_path, out_dir, scheduler, workers, table_format, ctx.elapsed_s)
            )
            return
        spec = _registration_spec(spec_path)
        _probe_meshes(*_spec_surfaces(spec))
        if scheduler is not None:
            _check_scheduler(scheduler)
        outputs = _run_with_progress(
            f"study {spec.name}",
            len(expand_trials(spec)),
            lambda on_progress: run_study(
                spec,
                out_dir,
                scheduler=scheduler,
                n_workers=workers,
                table_format=table_format,
                progress=on_progress,
            ),
        )
        summary = json.loads(outputs.summary.read_text())
        ctx.report.update(
            {
                **_outputs_report(outputs),
                "good_cases": summary["good_cases"],
                "bad_cases": summary["bad_cases"],
                "time_s": ctx.elapsed_s(),
            }
        )


def _check_study_out(out_dir: Path) -> None:
    """``--out`` must be a folder (or not exist yet): refused before any trial runs."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SurgplanError(f"--out {out_dir}: is a file; expected a folder for the study outputs")
    parent = out_dir
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise SurgplanError(f"--out {out_dir}: {parent} is a file, not a folder")


def _check_scheduler(address: str, timeout_s: float = 5.0) -> None:
    """Refuse a ``--scheduler`` address that is malformed or accepts no connection."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if parts.scheme not in ("tcp", "tls") or not host or port is None:
        raise SurgplanError(
            f"--scheduler {address!r}: expected a Dask scheduler address such as "
            "tcp://127.0.0.1:8786"
        )
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SurgplanError(
            f"--scheduler {address}: cannot connect ({reason}); is a Dask scheduler running there?"
        ) from exc


def _spec_surfaces(spec: Any) -> list[Path]:
    """Every surface file a registration study spec reads (models, decoys, target surfaces)."""
    files = []
    for model in spec.models:
        files += [model.surface, model.decoy_surface]
        files += [t.surface for t in model.targets]
    return [Path(f) for f in files if f is not None]


def _run_with_progress[T](label: str, total: int, run: Callable[[ProgressFn], T]) -> T:
    """``run(on_progress)`` under a progress bar of ``total`` trials; its result."""
    with progress_bar(label, total) as advance:
        last = [0]

        def on_progress(done: int, _total: int) -> None:
            advance(done - last[0])
            last[0] = done

        return run(on_progress)


def _outputs_report(outputs: Any) -> dict:
    """The report keys every study shares: its files and trial counts."""
    return {
        "table": str(outputs.table),
        "summary": str(outputs.summary),
        "plots": [str(p) for p in outputs.plots],
        "n_trials": outputs.n_trials,
        "n_computed": outputs.n_computed,
        "n_reused": outputs.n_reused,
    }


def _registration_spec(spec_path: Path) -> object:
    """A registration spec; an explicit ``kind = "registration"`` is accepted and dropped."""
    from registration.study import load_spec
    from registration.study.spec import parse_spec
    from surgplan.twin_study.spec import read_spec_data

    data = read_spec_data(spec_path)
    if isinstance(data, dict) and "kind" in data:
        data = {k: v for k, v in data.items() if k != "kind"}
        return parse_spec(data, base_dir=spec_path.parent, source=str(spec_path))
    return load_spec(spec_path)


def _twin_study(
    spec_path: Path, out_dir: Path, scheduler: str | None, workers: int, table_format: str,
    elapsed_s: object,
) -> dict:  # fmt: skip
    """``surgplan study`` on a virtual-patient twin spec: run it and report its figures."""
    import json

    from surgplan.twin_study import expand_twin_trials, load_twin_spec, run_twin_study

    spec = load_twin_spec(spec_path)
    _probe_meshes(None if spec.decoy_surface is None else Path(spec.decoy_surface))
    outputs = _run_with_progress(
        f"twin study {spec.name}",
        len(expand_twin_trials(spec)),
        lambda on_progress: run_twin_study(
            spec, out_dir, scheduler=scheduler, n_workers=workers, table_format=table_format,
            progress=on_progress,
        ),
    )  # fmt: skip
    summary = json.loads(outputs.summary.read_text())
    return {
        "kind": summary["kind"],
        **_outputs_report(outputs),
        **{
            k: summary[k]
            for k in ("tre_mm", "deformable_over_rigid", "calibration", "verdict", "recommendation")
        },  # fmt: skip
        "time_s": elapsed_s(),
    }


def register(group: click.Group) -> None:
    """Add ``register`` and ``study`` to ``group``."""
    group.add_command(register_command)
    group.add_command(study_command)
