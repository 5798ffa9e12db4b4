"""surgplan: the patient-specific surgical digital twin and its application.

It builds on ``imaging``, ``biomech``, ``registration`` and ``vr``, which never import it.
Every name below is importable from ``surgplan`` itself and loaded on first use, so
``import surgplan`` stays light (no gmsh, VTK or DOLFINx until a step needs them)::

    from surgplan import Case, build_meshes, import_scan, segment_structure

    imported = import_scan("ct_folder", "case")        # DICOM or NIfTI/NRRD/MHA, de-identified
    segment_structure("case", "liver", [(10.0, -20.0, 5.0)])   # seed in LPS mm
    meshes = build_meshes("case", edge_mm=6.0)
    print(meshes.volume_mesh.quality.gamma_min, meshes.to_dict())

The case folder
    Case, CaseTransaction   a case folder and its staged, atomic changes (:mod:`surgplan.case`)
    Manifest                the validated ``case.json`` (:mod:`surgplan.manifest`)

Building a case (each step returns a frozen result with ``to_dict()`` for JSON)
    import_scan -> ImportResult                     scan in, de-identified
    import_model -> ImportModelResult               a structure from a surface mesh (repaired)
    segment_structure -> SegmentResult              one structure from seeds
    import_label_map -> LabelImportResult           structures from a multi-label map
        (ImportedStructure per structure)
    build_meshes -> MeshResult                      surfaces and the tetrahedral mesh
        (SurfaceReport per structure, VolumeMeshReport)
    export_structure -> ExportResult                label map or surface out
    export_scene -> CaseSceneExport                 the case as a 3D Slicer scene (.mrb/.mrml)
    export_case_gltf -> GltfExport                  its surfaces as binary glTF (.glb)
    export_dicom_series -> CaseDicomExport          its scan as a de-identified DICOM series
    export_dicom_seg, export_rtstruct               its structures as DICOM-SEG / RTSTRUCT
        (CaseDicomExport; the case's DICOM UIDs are kept in case.json)

The demo and its pieces
    run_demo -> DemoResult                          the whole pipeline on the phantom
    ensure_sample_data -> SampleData                the bundled phantom CT and its truth
    write_report, Section, Table                    self-contained HTML reports
    render_structures, render_displacement          offscreen pictures (PNG)
    atomic_path, write_text_atomic                  atomic, fsynced file writes

Errors
    SurgplanError, CaseError; PROJECT_ERRORS        every project error, the CLI's one-line set

Simulation and registration live in their own modules (not re-exported here, they load
DOLFINx and the registration stack): :mod:`surgplan.simulation` (``simulate_case``),
:mod:`surgplan.scenario` (scenario TOML), :mod:`surgplan.case_rom` (reduced model of a case),
:mod:`surgplan.retraction_demo` and :mod:`surgplan.registration_demo`; the command line is
:mod:`surgplan.cli`.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> module that defines it (imported on first attribute access, PEP 562).
_LAZY = {
    "Case": "surgplan.case",
    "CaseTransaction": "surgplan.case",
    "Manifest": "surgplan.manifest",
    "import_scan": "surgplan.scan_import",
    "import_model": "surgplan.model_import",
    "ImportModelResult": "surgplan.model_import",
    "ImportResult": "surgplan.scan_import",
    "segment_structure": "surgplan.segment",
    "import_label_map": "surgplan.segment",
    "SegmentResult": "surgplan.segment",
    "LabelImportResult": "surgplan.segment",
    "ImportedStructure": "surgplan.segment",
    "build_meshes": "surgplan.meshing",
    "MeshResult": "surgplan.meshing",
    "SurfaceReport": "surgplan.meshing",
    "VolumeMeshReport": "surgplan.meshing",
    "export_structure": "surgplan.export",
    "ExportResult": "surgplan.export",
    "export_scene": "surgplan.case_scene_export",
    "CaseSceneExport": "surgplan.case_scene_export",
    "export_case_gltf": "surgplan.case_scene_export",
    "GltfExport": "surgplan.gltf_export",
    "export_dicom_series": "surgplan.dicom_case_export",
    "export_dicom_seg": "surgplan.dicom_case_export",
    "export_rtstruct": "surgplan.dicom_case_export",
    "CaseDicomExport": "surgplan.dicom_case_export",
    "run_demo": "surgplan.demo",
    "DemoResult": "surgplan.demo",
    "ensure_sample_data": "surgplan.sample_data",
    "SampleData": "surgplan.sample_data",
    "write_report": "surgplan.report",
    "Section": "surgplan.report",
    "Table": "surgplan.report",
    "render_structures": "surgplan.render",
    "render_displacement": "surgplan.render",
    "atomic_path": "surgplan.atomic",
    "write_text_atomic": "surgplan.atomic",
    "SurgplanError": "surgplan.errors",
    "CaseError": "surgplan.errors",
    "PROJECT_ERRORS": "surgplan.errors",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'surgplan' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
