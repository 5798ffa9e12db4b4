"""``surgplan demo``: the whole pipeline on the bundled phantom, ending in an HTML report.

Steps: import the phantom's DICOM series (with its fake patient identity, removed on import),
segment liver, tumour, vessels and bone from the seeds stored with the sample, build surfaces and
the tetrahedral mesh, score each segmentation by Dice against the phantom's ground truth, render
an offscreen picture, predict a retraction by finite elements, register simulated tracked-pointer
swabs to the liver (global, then tracking, then a spoiled acquisition that must be flagged),
stream a recorded acquisition of a deformed virtual patient over a real socket to the live
server, rigid and deformable twins (:mod:`surgplan.intraop_demo`, ``intraop/``), the twin's
credibility report (:mod:`surgplan.credibility.demo_part`, ``credibility/``), and write
``report.html``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv

from imaging.image_io import read_image_file
from imaging.mesh_io import read_surface
from imaging.segmentation import dice
from surgplan.atomic import write_text_atomic
from surgplan.case import Case
from surgplan.credibility.demo_part import demo_credibility
from surgplan.credibility.sections import credibility_sections
from surgplan.errors import SurgplanError
from surgplan.intraop_demo import intraop_demo
from surgplan.meshing import MeshResult, VolumeMeshReport, build_meshes
from surgplan.registration_demo import RegistrationDemoResult, registration_demo
from surgplan.render import render_displacement, render_structures
from surgplan.report import Section, Table, verdict_cell, write_report
from surgplan.retraction_demo import liver_retraction_demo
from surgplan.sample_data import SampleData, ensure_sample_data
from surgplan.scan_import import import_scan
from surgplan.segment import segment_structure
from surgplan.simulation import simulate_case

#: Dice each demo segmentation must reach against the phantom's ground truth.
DICE_TARGETS = {"liver": 0.95, "tumour": 0.85, "vessels": 0.75}
#: Structures the demo segments, in order (seeds from the sample's ``phantom.json``).
DEMO_STRUCTURES = ("liver", "tumour", "vessels", "bone")
#: Largest tumour TRE (mm) the demo's simulated registration may have.
TRE_TARGET_MM = 2.0


#: The real liver models shipped beside the repository (``../shared/data/liver_models``).
DEFAULT_LIVER_MODELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "liver_models"
#: Retractor lift applied in the demo's what-if retraction (mm, superior).
RETRACTOR_LIFT_MM = 15.0


def _toml_point(point: Any) -> str:
    return "[" + ", ".join(f"{float(c):.3f}" for c in point) + "]"


def retraction_scenario(case: Case, sample: SampleData) -> str:
    """TOML scenario: hepatic-vein outflow fixed, a retractor lifting the liver's inferior tip.

    The support is a 25 mm sphere around the hepatic veins' root (where they join the vena
    cava, which holds the liver in place); the retractor is a 20 mm patch at the most inferior
    point of the liver's boundary, lifted by :data:`RETRACTOR_LIFT_MM` towards the head (+z).

    Parameters
    ----------
    case
        The demo case (it must have a volume mesh).
    sample
        The sample data whose seeds (LPS mm) locate the hepatic veins.
    """
    boundary = read_surface(case.file(case.manifest.volume_mesh.boundary_path))  # type: ignore[union-attr, arg-type]
    points = np.asarray(boundary.points)
    lowest = points[np.argmin(points[:, 2])]
    support = sample.seeds_lps_mm["hepatic_veins"]
    return f"""name = "retraction"
[model]
type = "linear"
load_steps = 1
[materials]
default = "liver_healthy"
tumour = "tumour"
[[supports]]
region = {{ type = "sphere", centre_mm = {_toml_point(support)}, radius_mm = 25.0 }}
[[retractors]]
region = {{ type = "sphere", centre_mm = {_toml_point(lowest)}, radius_mm = 20.0 }}
displacement_mm = [0.0, 0.0, {RETRACTOR_LIFT_MM}]
profile = "bump"
"""


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes
    ----------
    case, report, picture : pathlib.Path
        The demo case folder, ``report.html`` and the rendered twin (PNG).
    volume_ml : dict of str to float
        Label volume of each segmented structure, mL.
    dice : dict of str to float
        Dice of each segmentation against the phantom's ground truth.
    dice_targets : dict of str to float
        :data:`DICE_TARGETS`.
    volume_mesh : VolumeMeshReport or None
        The tetrahedral mesh of the liver.
    retraction, real_liver_retraction : dict
        Summaries of the finite-element retractions (phantom liver; real model or ``None``),
        with the rendered ``picture``.
    registration : dict
        Summary of the simulated intraoperative registration.
    intraop : dict
        The live session part (:meth:`surgplan.intraop_demo.IntraopDemoResult.to_dict`): the
        recorded stream, per twin mode the acknowledged and logged messages, tumour TRE and
        predicted 95 % radius after each batch, the replay check, the pictures.
    passed : bool
        Every Dice target met and the registration within :data:`TRE_TARGET_MM`, the spoiled
        acquisition flagged.
    """

    case: Path
    report: Path
    picture: Path
    volume_ml: Mapping[str, float]
    dice: Mapping[str, float]
    dice_targets: Mapping[str, float]
    volume_mesh: VolumeMeshReport | None
    retraction: Mapping[str, Any]
    real_liver_retraction: Mapping[str, Any] | None
    registration: Mapping[str, Any]
    passed: bool
    intraop: Mapping[str, Any] = field(default_factory=dict)
    credibility: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan demo --json``."""
        return {
            "action": "demo",
            "case": str(self.case),
            "report": str(self.report),
            "picture": str(self.picture),
            "volume_ml": dict(self.volume_ml),
            "dice": dict(self.dice),
            "dice_targets": dict(self.dice_targets),
            "volume_mesh": None if self.volume_mesh is None else self.volume_mesh.to_dict(),
            "retraction": _plain(self.retraction),
            "real_liver_retraction": _plain(self.real_liver_retraction),
            "registration": _plain(self.registration),
            "intraop": _plain(self.intraop),
            "credibility": dict(self.credibility),
            "passed": self.passed,
        }


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    liver_models: str | os.PathLike[str] | None = DEFAULT_LIVER_MODELS,
    on_step: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the demo pipeline into ``out_dir`` (the case is ``out_dir/case``).

    Parameters
    ----------
    out_dir
        Output folder; created if missing. A previous demo there is updated in place.
    liver_models
        Folder with the real liver models (``liver.vtk``, ``liver_tumours.vtk``,
        ``hepatic_veins.vtk``); when it exists, their retraction is solved and pictured too.
        ``None`` skips that step.
    on_step
        Called with a description before each step (drives the progress bar).

    Returns
    -------
    DemoResult
        The case, report and picture paths, volumes (mL), Dice scores, the retraction and
        registration summaries, and whether every target was met.
    """
    step = on_step or (lambda text: None)
    out = Path(out_dir)
    _check_inputs(out, liver_models)  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    case_dir = out / "case"
    sample = ensure_sample_data()
    meshes = _build_case(case_dir, sample, step)

    step("scoring against ground truth")
    case = Case.open(case_dir)
    scores = _dice_scores(case, sample)

    step("rendering")
    surfaces = {
        name: read_surface(case.file(entry.path)) for name, entry in case.manifest.surfaces.items()
    }
    picture = render_structures(surfaces, out / "twin.png")
    retraction, real_liver = _retractions(out, case, sample, surfaces, liver_models, step)
    case = Case.open(case_dir)

    step("registering simulated tracked-pointer swabs to the liver")
    registration_result = registration_demo(surfaces, out / "registration")
    registration = registration_result.to_dict()
    intraop = intraop_demo(case_dir, out / "intraop", on_step=step).to_dict()
    credibility = demo_credibility(intraop["case"], out / "credibility", step)

    passed = all(scores[name] >= target for name, target in DICE_TARGETS.items()) and (
        _registration_passed(registration_result)
    )
    report_path = _write_demo_report(
        out / "report.html",
        case,
        scores,
        meshes.volume_mesh,
        picture,
        retraction,
        real_liver,
        registration,
        intraop,
        credibility_sections(credibility.report, credibility.images),
    )
    return DemoResult(
        case=case_dir,
        report=report_path,
        picture=picture,
        volume_ml={n: e.volume_ml for n, e in case.manifest.structures.items()},
        dice=scores,
        dice_targets=DICE_TARGETS,
        volume_mesh=meshes.volume_mesh,
        retraction=retraction,
        real_liver_retraction=real_liver,
        registration=registration,
        passed=passed,
        intraop=intraop,
        credibility=credibility.to_dict(),
    )


#: The real liver models the demo's second retraction reads.
LIVER_MODEL_FILES = ("liver.vtk", "liver_tumours.vtk", "hepatic_veins.vtk")


def _check_inputs(out: Path, liver_models: str | os.PathLike[str] | None) -> None:
    """Refuse an ``out`` that is a file and corrupt liver models before any output exists."""
    if out.exists() and not out.is_dir():
        raise SurgplanError(f"{out}: is a file; expected a folder for the demo's outputs")
    if liver_models is None or not Path(liver_models, "liver.vtk").is_file():
        return
    for name in LIVER_MODEL_FILES:
        path = Path(liver_models, name)
        if not path.is_file():
            raise SurgplanError(f"liver models {liver_models}: {name} is missing")
        if read_surface(path).n_cells == 0:
            raise SurgplanError(f"liver model {path}: holds no surface cells")


def _build_case(case_dir: Path, sample: SampleData, step: Callable[[str], None]) -> MeshResult:
    """Import the phantom's DICOM series, segment :data:`DEMO_STRUCTURES`, build the meshes."""
    step("importing the phantom DICOM series")
    import_scan(sample.dicom_dir, case_dir)
    seeds = sample.seeds_lps_mm
    plan = {
        "liver": [seeds["liver"]],
        "tumour": [seeds["tumour"]],
        "vessels": [seeds["portal_vein"], seeds["hepatic_veins"]],
        "bone": [],
    }
    for name in DEMO_STRUCTURES:
        step(f"segmenting {name}")
        segment_structure(case_dir, name, plan[name])
    step("building surfaces and the tetrahedral mesh")
    return build_meshes(case_dir, on_step=step)


def _dice_scores(case: Case, sample: SampleData) -> dict[str, float]:
    """Dice of each of :data:`DEMO_STRUCTURES` against the phantom's ground truth."""
    scan = read_image_file(case.require_image())
    return {
        name: dice(
            read_image_file(case.require_structure(name)),
            sample.truth_mask(name, reference=scan),
        )
        for name in DEMO_STRUCTURES
    }


def _retractions(
    out: Path,
    case: Case,
    sample: SampleData,
    surfaces: Mapping[str, pv.PolyData],
    liver_models: str | os.PathLike[str] | None,
    step: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Retract the phantom liver (pictured) and, when available, the real liver model."""
    step("finite-element retraction of the phantom liver")
    case_dir = case.root
    scenario = out / "retraction.toml"
    write_text_atomic(scenario, retraction_scenario(case, sample))
    retraction = simulate_case(case_dir, scenario).to_dict()
    case = Case.open(case_dir)
    deformed = pv.read(case.file(retraction["path"]))
    retraction["picture"] = str(
        render_displacement(deformed, out / "retraction.png", context=surfaces["liver"])
    )
    real_liver = None
    if liver_models is not None and Path(liver_models, "liver.vtk").is_file():
        step("finite-element retraction of the real liver model")
        real_liver = liver_retraction_demo(out / "real_liver", liver_models).to_dict()
    return retraction, real_liver


def _plain(value: Any) -> Any:
    """A step's summary as a plain dict (typed results give theirs with ``to_dict()``)."""
    if value is None:
        return None
    return value.to_dict() if hasattr(value, "to_dict") else dict(value)


def _registration_passed(registration: RegistrationDemoResult) -> bool:
    """Global fit and every tracking update trusted and within the TRE target; spoiled flagged."""
    glob, track = registration.global_fit, registration.tracking
    return (
        glob.verdict.trustworthy
        and glob.tre_tumour_mm <= TRE_TARGET_MM
        and track.trusted == len(track.verdicts)
        and max(track.tre_tumour_mm) <= TRE_TARGET_MM
        and not registration.outliers.trustworthy
    )


def _write_demo_report(
    path: Path,
    case: Case,
    scores: dict[str, float],
    volume_mesh: VolumeMeshReport | None,
    picture: Path,
    retraction: dict[str, Any],
    real_liver: dict[str, Any] | None,
    registration: dict[str, Any],
    intraop: dict[str, Any],
    credibility: list[Section],
) -> Path:
    twin = Section("The twin", "Anterior view; LPS millimetres.")
    twin.add_image(picture, "Liver (translucent), tumour, vessels and bone from the phantom CT")
    sections = [_segmentation_section(case, scores), twin]
    if volume_mesh is not None:
        sections.append(_mesh_section(volume_mesh))
    sections.append(_mechanics_section(retraction, real_liver))
    sections.append(_registration_section(registration))
    sections.append(_intraop_section(intraop))
    sections.extend(credibility)
    return write_report(path, "surgplan demo: phantom abdomen", sections)


def _segmentation_section(case: Case, scores: dict[str, float]) -> Section:
    surfaces = case.manifest.surfaces
    rows = [
        [
            name,
            entry.method,
            f"{entry.volume_ml:.1f}",
            f"{surfaces[name].volume_ml:.1f}" if name in surfaces else "-",
            _dice_cell(name, scores),
        ]
        for name, entry in case.manifest.structures.items()
    ]
    return Section(
        "Segmentation",
        "Each structure segmented from the sample's seeds, scored by Dice against the phantom's "
        "ground truth.",
        Table(["structure", "method", "label volume (mL)", "surface volume (mL)", "Dice"], rows),
    )


def _mesh_section(volume: VolumeMeshReport) -> Section:
    quality = dataclasses.asdict(volume.quality)
    return Section(
        "Finite-element mesh",
        f"Tetrahedral mesh of {volume.outer}, regions {json.dumps(dict(volume.regions))}.",
        Table(["figure", "value"], [[k, _fmt(v)] for k, v in quality.items()]),
    )


def _mechanics_section(retraction: dict[str, Any], real_liver: dict[str, Any] | None) -> Section:
    models = [("phantom liver (this case)", retraction)]
    if real_liver:
        models.append(("real liver model", real_liver))
    rows = [
        [
            label,
            summary["dofs"],
            f"{summary['max_displacement_mm']:.2f}",
            f"{summary['max_von_mises_kpa']:.2f}",
        ]
        for label, summary in models
    ]
    mechanics = Section(
        "What-if retraction (finite elements)",
        f"Linear elastic liver (E 4 kPa) with a stiffer tumour (E 20 kPa); hepatic-vein outflow "
        f"fixed; a retractor lifts the inferior tip by {RETRACTOR_LIFT_MM:g} mm.",
        Table(["model", "dofs", "max displacement (mm)", "max von Mises (kPa)"], rows),
    )
    mechanics.add_image(
        Path(retraction["picture"]), "Phantom liver, deformed, coloured by |u| (mm)"
    )
    if real_liver:
        mechanics.add_image(
            Path(real_liver["picture"]),
            f"Real liver model retracted; tumour moves up to "
            f"{real_liver['max_tumour_displacement_mm']:.2f} mm",
        )
    return mechanics


def _registration_section(registration: dict[str, Any]) -> Section:
    glob, track, bad = registration["global"], registration["tracking"], registration["outliers"]

    def verdict(trusted: bool, reason: str) -> str:
        return "trusted" if trusted else f"not trusted: {reason}"

    tre_cell = {
        "text": f"{glob['tre_tumour_mm']:.2f}",
        "cls": "pass" if glob["tre_tumour_mm"] <= TRE_TARGET_MM else "fail",
    }
    section = Section(
        "Intraoperative registration (simulated)",
        f"A tracked pointer swabs {registration['coverage']:.0%} of the liver "
        f"({registration['points']} points, {registration['noise_mm']:g} mm noise) in an unknown "
        f"tracker pose. Errors are against the simulated truth, at the tumour centroid (TRE). "
        f"Points: {Path(registration['markups']).name} (3D Slicer markups); registration: "
        f"{Path(registration['transform']).name} (ITK transform holding T_tracker_model, the "
        f"resampling direction ITK and 3D Slicer expect: in Slicer, put the points under it and "
        f"they land on the model).",
        Table(
            ["acquisition", "TRE at tumour (mm)", "inlier RMS (mm)", "time", "verdict"],
            [
                [
                    f"first, no prior pose ({glob['init']})",
                    tre_cell,
                    f"{glob['inlier_rms_mm']:.2f}",
                    f"{glob['time_s']:.2f} s",
                    verdict(glob["trustworthy"], glob["reason"]),
                ],
                [
                    f"{track['updates']} tracking updates, liver moving "
                    f"{track['motion_per_update']} each",
                    f"mean {track['mean_tre_tumour_mm']:.2f}, max {track['max_tre_tumour_mm']:.2f}",
                    "-",
                    f"median {track['median_update_ms']:.1f} ms",
                    f"{track['trusted']} of {track['updates']} trusted",
                ],
                [
                    f"{bad['fraction']:.0%} gross outliers",
                    "-",
                    "-",
                    "-",
                    verdict(bad["trustworthy"], bad["reason"]),
                ],
            ],
        ),
    )
    section.add_image(Path(registration["picture"]), "Swabs placed by the registration")
    return section


def _intraop_section(intraop: dict[str, Any]) -> Section:
    """The live session: the twin converging on a deformed virtual patient, rigid vs deformable."""
    sessions, patient = intraop["sessions"], intraop["patient"]
    rigid, deform = sessions["rigid"], sessions["deformable"]

    def verdict(s: dict[str, Any], i: int) -> str:
        return "trusted" if s["trustworthy"][i] else "not trusted"

    def tre(s: dict[str, Any], i: int) -> dict[str, str]:
        inside = s["inside_radius95"][i]
        return {
            "text": f"{s['tre_mm'][i]:.2f}" + ("" if inside else " (outside radius)"),
            "cls": "pass" if inside else "fail",
        }

    rows = [
        [
            i + 1,
            n,
            tre(rigid, i),
            f"{rigid['radius95_mm'][i]:.1f}",
            verdict(rigid, i),
            tre(deform, i),
            f"{deform['radius95_mm'][i]:.1f}",
            verdict(deform, i),
        ]
        for i, n in enumerate(intraop["points_per_batch"])
    ]
    r_end, d_end = rigid["tre_mm"][-1], deform["tre_mm"][-1]
    if intraop["deformable_beats_rigid"]:
        outcome = (
            f"On this patient the deformable twin ends {r_end / d_end:.1f} times closer to the "
            f"tumour than the rigid one ({d_end:.2f} mm against {r_end:.2f} mm)."
        )
    else:
        outcome = (
            f"On this patient the deformable twin does NOT beat the rigid one: it ends at "
            f"{d_end:.2f} mm from the tumour, the rigid twin at {r_end:.2f} mm."
        )
    integrity = "; ".join(
        f"{mode}: {s['messages_sent']} messages sent, {s['acks']} acknowledged, {s['logged']} "
        f"logged, {s['updates']} updates, published transform within "
        f"{s['published_transform_max_error']:.1g} of the logged state, replay difference "
        f"{s['replay_max_difference']:.2g}"
        for mode, s in sessions.items()
    )
    tumour = patient.get("tumour_displacement_mm")
    section = Section(
        "Live session: the twin following a deformed patient (simulated)",
        f"A virtual patient deformed by a full finite-element solve on the case's mesh "
        f"({patient['load']}; largest surface displacement {patient['max_displacement_mm']:.1f} "
        f"mm"
        + (f", the tumour moves {tumour:.1f} mm" if tumour is not None else "")
        + f"), placed in a tracker pose the twin does not know. A recorded stream of "
        f"{intraop['batches']} tracked-pointer swab batches ({intraop['batch_points']} points "
        f"each, {intraop['noise_mm']:g} mm noise, POINT messages, "
        f"{Path(intraop['recording']).name}) is sent over a loopback TCP socket to the live "
        f"OpenIGTLink server, one session per twin mode (reduced model of "
        f"{intraop['rom']['n_patch_centres']} patch centres, {intraop['rom']['n_modes']} "
        f"modes); the table reads the published states. TRE: the twin's tumour centroid "
        f"against the virtual patient's deformed one; radius: the twin's predicted 95 % error "
        f"radius. {outcome} Session integrity: {integrity}. The intraoperative part took "
        f"{intraop['timing_s']['total']:.0f} s.",
        Table(
            [
                "batch",
                "points",
                "rigid TRE (mm)",
                "rigid 95% radius (mm)",
                "rigid verdict",
                "deformable TRE (mm)",
                "deformable 95% radius (mm)",
                "deformable verdict",
            ],
            rows,
        ),
    )
    section.add_image(
        Path(intraop["convergence_picture"]),
        "Tumour TRE (solid) and predicted 95 % radius (dashed) after each batch",
    )
    section.add_image(
        Path(intraop["overlay_picture"]),
        "Final rigid and deformable twins coloured by their distance to the deformed truth "
        "(grey wireframe), CT axes, anterior view; swab points green",
    )
    return section


def _dice_cell(name: str, scores: dict[str, float]) -> Any:
    if name not in scores:
        return "-"
    if name in DICE_TARGETS:
        return verdict_cell(scores[name], DICE_TARGETS[name])
    return f"{scores[name]:.3f}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(np.asarray(value).tolist()) if isinstance(value, (list, tuple)) else str(value)
