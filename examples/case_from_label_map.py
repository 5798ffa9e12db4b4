"""Build a planning case from a CT and an existing label map, then export what a surgeon needs.

Goal: show the scriptable path from a scan to files that open in 3D Slicer and ParaView, using
the bundled phantom: import the CT (NIfTI), import its ground-truth label map with label names
(the same route as TotalSegmentator output), build closed surfaces and the tetrahedral mesh of
the liver with its tumour as a separate region, and export the liver surface as STL.

Run: ``python examples/case_from_label_map.py [OUT]``. The CLI equivalent is
``surgplan import``, ``surgplan segment --labels --names`` (``--names`` optional for a Slicer
``.seg.nrrd`` or a TotalSegmentator NIfTI), ``surgplan mesh``, ``surgplan export``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from surgplan.export import export_structure
from surgplan.meshing import build_meshes
from surgplan.sample_data import ensure_sample_data
from surgplan.scan_import import import_scan
from surgplan.segment import import_label_map


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("demo_output") / "example_case"
    out.mkdir(parents=True, exist_ok=True)
    sample = ensure_sample_data()
    case = out / "case"
    import_scan(sample.folder / "phantom_ct.nii.gz", case)
    imported = import_label_map(
        case,
        sample.folder / "phantom_labels.nrrd",
        sample.folder / "phantom_labels.json",
        structures=["liver", "tumour"],
    )
    meshes = build_meshes(case, edge_mm=8.0)
    exported = export_structure(case, "liver", mesh_out=out / "liver.stl")
    volume_mesh = meshes.volume_mesh
    assert volume_mesh is not None
    summary = {"imported": imported.to_dict(), "volume_mesh": volume_mesh.to_dict()}
    print(json.dumps(summary, indent=2))

    # Label volumes agree with the phantom's own bookkeeping (parenchyma label, tumour label).
    volumes = sample.meta["volumes_ml"]
    liver_ml = imported.structures["liver"].volume_ml
    assert abs(liver_ml - volumes["liver_parenchyma"]) < 0.01 * volumes["liver_parenchyma"]
    tumour_ml = imported.structures["tumour"].volume_ml
    assert abs(tumour_ml - volumes["tumour"]) < 0.02 * volumes["tumour"]
    # Surfaces are closed and manifold. The tumour keeps its label volume within 3%; the
    # parenchyma label is pierced by thin vessel tunnels, whose walls smoothing moves by a
    # fraction of a voxel, so its surface volume is looser (the demo meshes the whole organ).
    for name, surface in meshes.surfaces.items():
        assert surface.is_closed and surface.is_manifold, name
    assert abs(meshes.surfaces["tumour"].volume_error_pct) <= 3.0
    assert abs(meshes.surfaces["liver"].volume_error_pct) <= 6.0
    # The FE mesh has the tumour as its own region.
    assert set(volume_mesh.regions) == {"liver", "tumour"}
    assert exported.output.stat().st_size > 10_000


if __name__ == "__main__":
    main()
