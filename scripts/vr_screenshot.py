"""Both eyes of the headset through OpenXR, for the README (docs/figures/vr_eyes.png).

Builds a case of the real liver models (liver, tumour, portal and hepatic veins) in a temporary
folder, compiles the project's headless OpenXR runtime (``tests/openxr_test_runtime``) and runs
``surgplan vr CASE --backend openxr`` against it through the Khronos loader, with the runtime
reading back what was submitted: the middle of the left and right eye images (340 x 320 of
600 x 640 px) side by side, and the text quad below them.

Usage::

    .venv/bin/python scripts/vr_screenshot.py [--out docs/figures/vr_eyes.png]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = REPO.parent / "shared" / "data" / "liver_models"
STRUCTURES = {
    "liver": "liver.vtk",
    "tumour": "liver_tumours.vtk",
    "portal_vein": "portal_vein.vtk",
    "hepatic_veins": "hepatic_veins.vtk",
}


def main() -> None:
    """Build the case, run the headset session, stitch the submitted images to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "vr_eyes.png")
    args = parser.parse_args()
    from surgplan.model_import import import_model
    from tests.openxr_test_runtime.build import build_runtime, runtime_env

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, file in STRUCTURES.items():
            import_model(MODELS / file, work / "case", structure=name)
        capture = work / "capture"
        capture.mkdir()
        env = runtime_env(build_runtime(work), SURGPLAN_XR_TEST_VIEW_SIZE="600x640",
                          SURGPLAN_XR_TEST_CAPTURE_DIR=str(capture))  # fmt: skip
        command = "from surgplan.cli import main; main()"
        done = subprocess.run(
            [sys.executable, "-c", command, "vr", str(work / "case"), "--frames", "2", "--json"],
            env=env, cwd=REPO, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(done.stderr)
        frames = [json.loads(x) for x in (capture / "frames.jsonl").read_text().splitlines()]
        layers = [f for f in frames if f["layers"]][-1]["layers"]
        eyes = [
            np.asarray(Image.open(capture / v["file"]).convert("RGB")) for v in layers[0]["views"]
        ]
        eyes = [eye[150:470, 160:500] for eye in eyes]  # the middle of each eye's field
        quad = np.asarray(Image.open(capture / layers[1]["file"]).convert("RGB"))
        top = np.hstack([eyes[0], np.full((eyes[0].shape[0], 8, 3), 255, np.uint8), eyes[1]])
        below = np.zeros((quad.shape[0], top.shape[1], 3), np.uint8)
        left = (top.shape[1] - quad.shape[1]) // 2
        below[:, left : left + quad.shape[1]] = quad
        args.out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.vstack([top, below])).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
