"""``surgplan import | segment | mesh | export``: build a case from a scan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from imaging.volume_mesh import DEFAULT_MAX_TETS
from surgplan.cli.common import (
    case_argument,
    command_context,
    json_option,
    path_option,
    progress_bar,
)


@click.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@case_argument
@click.option("--series", default=None, help="SeriesInstanceUID when the folder holds several.")
@json_option
def import_command(source: Path, case: Path, series: str | None, json_output: bool) -> None:
    """Create or update CASE from SOURCE (DICOM folder or NIfTI/NRRD/MHA), de-identified."""
    from surgplan.scan_import import import_scan

    with command_context(json_output) as ctx:
        with progress_bar("importing scan"):
            result = import_scan(source, case, series_uid=series)
        if result.dropped:
            click.echo(
                "note: the new scan differs from the case's previous one; dropped what was "
                f"derived from it: {', '.join(result.dropped)}",
                err=True,
            )
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        ctx.report.update(result.to_dict())
        ctx.report["time_s"] = ctx.elapsed_s()


@click.command("segment")
@case_argument
@click.option(
    "--structure", multiple=True, help="Structure name (liver, tumour, vessels, bone...)."
)
@click.option(
    "--seed", type=(float, float, float), multiple=True, help="Seed X Y Z in LPS mm (repeatable)."
)
@click.option("--method", default=None, help="organ, tumour, vessels, bone or air.")
@path_option(
    "--labels",
    help="Segmentation to import: 3D Slicer .seg.nrrd (3-D or layered), TotalSegmentator "
    "multi-label NIfTI, or an integer label map (NIfTI/NRRD/MHA).",
)
@path_option(
    "--names",
    help="Label names (JSON value->name, or segment name->name for a .seg.nrrd); optional "
    "where the --labels file names its labels (.seg.nrrd, TotalSegmentator NIfTI).",
)
@json_option
def segment_command(
    case: Path,
    structure: tuple[str, ...],
    seed: tuple[tuple[float, float, float], ...],
    method: str | None,
    labels: Path | None,
    names: Path | None,
    json_output: bool,
) -> None:
    """Segment a structure from seeds, or import a segmentation file with --labels.

    Every structure is also kept in CASE/labels/segmentation.seg.nrrd, a 3D Slicer
    segmentation with the structures' names, colours and terminology.
    """
    from surgplan.errors import SurgplanError
    from surgplan.segment import import_label_map, segment_structure

    with command_context(json_output) as ctx:
        if labels is not None or names is not None:
            if labels is None:
                raise SurgplanError("--names goes with --labels FILE")
            if seed:
                raise SurgplanError("--seed does not apply when importing --labels")
            with progress_bar("importing label map"):
                result = import_label_map(case, labels, names, structures=structure)
            ctx.report.update(result.to_dict())
        else:
            if len(structure) != 1:
                raise SurgplanError("give one --structure NAME (or --labels FILE)")
            with progress_bar(f"segmenting {structure[0]}"):
                segmented = segment_structure(case, structure[0], seed, method=method)
            ctx.report.update(segmented.to_dict())
        ctx.report["time_s"] = ctx.elapsed_s()


@click.command("mesh")
@case_argument
@click.option("--structure", multiple=True, help="Only these structures (repeatable).")
@click.option("--outer", default=None, help="Organ to fill with tetrahedra (default: liver).")
@click.option("--inner", multiple=True, help="Regions inside the organ (default: tumour).")
@click.option("--edge-mm", default=6.0, show_default=True, help="Tetrahedron edge length, mm.")
@click.option(
    "--max-tets",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_TETS,
    show_default=True,
    help="Largest estimated tetrahedron count; a finer --edge-mm is refused before meshing.",
)
@json_option
def mesh_command(
    case: Path,
    structure: tuple[str, ...],
    outer: str | None,
    inner: tuple[str, ...],
    edge_mm: float,
    max_tets: int,
    json_output: bool,
) -> None:
    """Build closed surfaces of the structures and the tetrahedral FE mesh."""
    from surgplan.meshing import build_meshes

    with command_context(json_output) as ctx:
        with progress_bar("meshing") as advance:
            meshes = build_meshes(
                case,
                structures=structure,
                outer=outer,
                inner=inner or None,
                edge_mm=edge_mm,
                max_tets=max_tets,
                on_step=lambda text: advance(0, text),
            )
        ctx.report.update(meshes.to_dict())
        ctx.report["time_s"] = ctx.elapsed_s()


#: The export command's output options, in the order its help lists them.
EXPORT_OUTPUTS = ("label", "mesh", "scene", "gltf", "dicom", "dicom_seg", "rtstruct")


@click.command("export")
@case_argument
@click.option(
    "--structure",
    multiple=True,
    help="Structure to export: exactly one for --label/--mesh; for the whole-case exports "
    "(--scene, --gltf, --dicom-seg, --rtstruct) only these structures (repeatable; default all).",
)
@path_option(
    "--label",
    help="Label map out (.nii.gz/.nrrd/.mha), or a 3D Slicer segmentation (.seg.nrrd).",
)
@path_option("--mesh", help="Surface out (.vtp/.vtk/.stl/.obj/.ply).")
@path_option(
    "--scene",
    help="3D Slicer scene out: OUT.mrb (one bundle) or OUT.mrml (with OUT_data/ beside it): "
    "scan, segmentation, surface models in their colours, registration markups and transforms.",
)
@path_option(
    "--gltf",
    help="Binary glTF out (OUT.glb) of the surfaces in their colours and opacities, in metres, "
    "+Y up (superior), +Z anterior, +X patient left. With --session ID --at SECONDS: the "
    "session's deformed, registered twin at that moment, in tracker space.",
)
@path_option(
    "--dicom",
    help="De-identified DICOM CT series of the scan into folder DIR (new, empty, or this "
    "case's previous series).",
)
@path_option(
    "--dicom-seg",
    "dicom_seg",
    help="DICOM-SEG out (OUT.dcm) of the structures, on the de-identified series of --dicom.",
)
@path_option(
    "--rtstruct",
    help="DICOM RT Structure Set out (OUT.dcm), on the de-identified series of --dicom.",
)
@click.option(
    "--session",
    default=None,
    help="With --gltf: a recorded live session of CASE (see 'surgplan sessions CASE').",
)
@click.option(
    "--at",
    "at_s",
    type=float,
    default=None,
    help="With --session: seconds since the session's first message; the last twin state "
    "logged at or before then is exported.",
)
@json_option
def export_command(
    case: Path,
    structure: tuple[str, ...],
    session: str | None,
    at_s: float | None,
    json_output: bool,
    **outputs: Path | None,
) -> None:
    """Export one structure (--label, --mesh) or the whole case (one output per call).

    Outputs never go inside CASE. The DICOM exports share the case's own UIDs, generated on
    the first DICOM export and kept in case.json, so a SEG or RTSTRUCT always references the
    series that --dicom writes (before or after it); no original identifier is written.

    --gltf OUT.glb --session ID --at SECONDS writes the twin of live session ID at that
    moment: the organ deformed by the state's amplitudes and posed by its T_tracker_model
    (tracker space), the case's other structures moved by the same deformation field.
    """
    from surgplan.errors import SurgplanError

    with command_context(json_output) as ctx:
        _check_session_options(session, at_s, outputs.get("gltf") is not None)
        given = [name for name in EXPORT_OUTPUTS if outputs[name] is not None]
        if len(given) != 1:
            options = ", ".join(f"--{name.replace('_', '-')}" for name in EXPORT_OUTPUTS)
            raise SurgplanError(f"give exactly one output option ({options})")
        kind = given[0]
        if kind in ("label", "mesh"):
            if len(structure) != 1:
                raise SurgplanError(f"--{kind} exports one structure: give one --structure NAME")
        elif kind == "dicom" and structure:
            raise SurgplanError("--dicom writes the scan; --structure does not apply")
        _refuse_output_inside_case(case, outputs[kind], kind)  # type: ignore[arg-type]
        with progress_bar(f"exporting {kind.replace('_', '-')}"):
            if session is not None:
                from surgplan.session_gltf import export_session_gltf

                result = export_session_gltf(
                    case, outputs[kind], session=session, at_s=at_s, structures=structure
                )
            else:
                result = _export(case, kind, outputs[kind], structure)  # type: ignore[arg-type]
        ctx.report.update(result.to_dict())
        ctx.report["time_s"] = ctx.elapsed_s()


def _refuse_output_inside_case(case: Path, out: Path, kind: str) -> None:
    """Refuse an export inside CASE (its files change only by its steps) or where none fits."""
    from surgplan.case import Case
    from surgplan.export import require_outside_case, require_writable_destination

    require_outside_case(Case.open(case), out)
    require_writable_destination(out, folder=kind == "dicom")


def _check_session_options(session: str | None, at_s: float | None, gltf: bool) -> None:
    """Refuse --session without --gltf or --at, --at without --session, a negative time."""
    import math

    from surgplan.errors import SurgplanError

    if at_s is not None and session is None:
        raise SurgplanError("--at SECONDS goes with --session ID (and --gltf OUT.glb)")
    if session is None:
        return
    if not gltf:
        raise SurgplanError("--session ID goes with --gltf OUT.glb (and --at SECONDS)")
    if at_s is None:
        raise SurgplanError("--session ID needs --at SECONDS (seconds since its first message)")
    if not (math.isfinite(at_s) and at_s >= 0.0):
        raise SurgplanError(f"--at must be seconds >= 0 since the session's start, got {at_s:g}")


def _export(case: Path, kind: str, out: Path, structure: tuple[str, ...]) -> Any:
    """Run the export of ``kind`` (an :data:`EXPORT_OUTPUTS` name) to ``out``."""
    if kind in ("label", "mesh"):
        from surgplan.export import export_structure

        return export_structure(case, structure[0], **{f"{kind}_out": out})
    if kind in ("scene", "gltf"):
        from surgplan.case_scene_export import export_case_gltf, export_scene

        export = export_scene if kind == "scene" else export_case_gltf
        return export(case, out, structures=structure)
    from surgplan.dicom_case_export import export_dicom_seg, export_dicom_series, export_rtstruct

    if kind == "dicom":
        return export_dicom_series(case, out)
    export = export_dicom_seg if kind == "dicom_seg" else export_rtstruct
    return export(case, out, structures=structure)


def register(group: click.Group) -> None:
    """Add the case-building commands to ``group``."""
    for command in (import_command, segment_command, mesh_command, export_command):
        group.add_command(command)
