"""Screenshot of the desktop viewer on the sample case for the README (docs/figures/viewer.png).

Builds the phantom case (the bundled CT with its liver, tumour, portal vein and bone labels,
surfaces and a coarse volume mesh) in a temporary folder, opens the real viewer window under a
private Xvfb, puts the slices through the tumour, places a named target and a measurement,
and grabs the window.

Usage::

    .venv/bin/python scripts/viewer_screenshot.py [--out docs/figures/viewer.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    """Build the case, open the window, grab it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "viewer.png")
    parser.add_argument("--case", type=Path, help="An already built phantom case (a copy is used).")
    args = parser.parse_args()
    from surgplan.meshing import build_meshes
    from surgplan.sample_data import REPO_SAMPLE_DIR, SampleData
    from surgplan.scan_import import import_scan
    from surgplan.segment import import_label_map
    from tests.viewer_display import start_xvfb

    with tempfile.TemporaryDirectory() as tmp, start_xvfb(keep=True):
        case = Path(tmp) / "case"
        if args.case is not None:
            shutil.copytree(args.case, case)
        else:
            import_scan(REPO_SAMPLE_DIR / "phantom_ct.nii.gz", case)
            import_label_map(case, REPO_SAMPLE_DIR / "phantom_labels.nrrd",
                             REPO_SAMPLE_DIR / "phantom_labels.json",
                             structures=("liver", "tumour", "portal_vein", "bone"))  # fmt: skip
            build_meshes(case, edge_mm=25.0, target_triangles=15_000, outer="tumour", inner=[])
        from PySide6.QtWidgets import QApplication

        from surgplan.viewer.window import ViewerWindow

        app = QApplication(["surgplan-view"])
        w = ViewerWindow(case)
        w.show()
        while not (w.loaded or w.status.text().startswith("error")):
            app.processEvents()
            time.sleep(0.01)
        if not w.loaded:
            raise SystemExit(w.status.text())
        tumour = np.asarray(SampleData(REPO_SAMPLE_DIR).meta["tumour"]["centre_lps_mm"])
        w.set_crosshair(tumour)
        w.set_preset("liver")
        w.set_mode("target")
        w.name_edit.setText("tumour centre")
        w.handle_pick(tumour)
        w.set_mode("measure")
        w.handle_pick(tumour)
        w.handle_pick(tumour + np.array([0.0, -60.0, 0.0]))
        w.clamp.prepare("portal_vein")
        while not (w.clamp.ready or w.status.text().startswith("error")):
            app.processEvents()
            time.sleep(0.01)
        tree = w.clamp.model.tree
        inner = [i for i, b in enumerate(w.clamp.model.branches)
                 if tree.inlet not in b.nodes and not set(b.nodes) & set(tree.outlets)]  # fmt: skip
        w.clamp.clamp(inner[0])  # a branch with others beyond it
        for _ in range(50):
            app.processEvents()
            time.sleep(0.01)
        w.grab().save(str(args.out))
        w.close()
    print(args.out)


if __name__ == "__main__":
    main()
