"""What-if rehearsal frame rate: synthetic Qt mouse drag -> deformed twin rendered (Xvfb).

A 20,000-vertex liver (the real ``liver.vtk``, 10,012 vertices, split once (linear subdivision)
and decimated back to ~20,000 vertices with VTK's quadric decimation) with the real tumour,
portal vein and hepatic veins is imported into a fresh case (``import-model``), meshed (14 mm
tetrahedra) and given a reduced model (``surgplan rom`` defaults, ``--centres`` patch centres).
The real viewer window opens under a private Xvfb; the rehearsal is armed; then the retractor
handle is dragged with synthetic Qt mouse events sent to the 3D view. Frame time is from
sending the mouse-move event to the end of the render it causes (the render window's
``EndEvent``), in wall-clock time and in this process's CPU time (all threads; the machine may
be shared, so ``load_average_1min`` is recorded: CPU ms per frame is the figure that other
processes' load does not inflate). Side by side in the same run: the model evaluation alone
(``d @ G``, the precomputed 3 x 3N response), the unprecomputed path (amplitudes from the RBF,
then the k-mode product ``a @ M``) and a bare render, to show where a frame's time goes.

The per-frame cost does not depend on the number of modes (``G`` is formed once per handle
position), so a small training set (4 centres by default) measures the same frame rate.

Usage::

    .venv/bin/python benchmarks/viewer_rehearsal.py [--frames 300] [--centres 4] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = REPO.parent / "shared" / "data" / "liver_models"
TARGET_VERTICES = 20_000


def liver_20k(out: Path) -> Path:
    """The real liver surface resampled to ~20,000 vertices (VTP)."""
    import pyvista as pv

    liver = pv.read(MODELS / "liver.vtk").triangulate().clean()
    fine = liver.subdivide(1, subfilter="linear")
    keep = TARGET_VERTICES / fine.n_points
    mesh = fine.decimate(1.0 - keep).clean()
    path = out / "liver_20k.vtp"
    mesh.save(path)
    return path


def build_case(root: Path, centres: int) -> Path:
    """A case with the 20k liver, tumour, vessels, a 14 mm volume mesh and a reduced model."""
    from surgplan.case_rom import build_case_rom
    from surgplan.meshing import build_meshes
    from surgplan.model_import import import_model

    case = root / "case"
    import_model(liver_20k(root), case, structure="liver")
    for name, file in (("tumour", "liver_tumours.vtk"), ("portal_vein", "portal_vein.vtk"),
                       ("hepatic_veins", "hepatic_veins.vtk")):  # fmt: skip
        import_model(MODELS / file, case, structure=name)
    build_meshes(case, edge_mm=14.0)
    build_case_rom(case, n_centres=centres, n_validation=1)
    return case


def _wait(app, condition, timeout_s: float = 600.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        app.processEvents()
        time.sleep(0.005)
        if time.monotonic() > end:
            raise RuntimeError("timed out waiting for the viewer")


def measure(case: Path, frames: int) -> dict:
    """Open the window on ``case``, arm the rehearsal, drag, and time every frame."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from surgplan.viewer.window import ViewerWindow

    app = QApplication.instance() or QApplication(["viewer-benchmark"])
    w = ViewerWindow(case)
    w.show()
    _wait(app, lambda: w.loaded or w.status.text().startswith("error"))
    w.rehearsal.start()
    _wait(app, lambda: w.rehearsal.ready or w.status.text().startswith("error"))
    if not w.rehearsal.ready:
        raise RuntimeError(w.status.text())
    plotter = w.plotter
    rendered: list[float] = []
    plotter.ren_win.AddObserver("EndEvent", lambda *a: rendered.append(time.perf_counter()))
    ren = plotter.renderer
    ren.SetWorldPoint(*w.rehearsal.widget.GetCenter(), 1.0)
    ren.WorldToDisplay()
    dx, dy, _ = ren.GetDisplayPoint()
    ratio = plotter.devicePixelRatioF()
    x, y = dx / ratio, plotter.height() - dy / ratio

    def send(kind, px: float, py: float, buttons) -> None:
        button = (
            Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
        )
        ev = QMouseEvent(kind, QPointF(px, py), plotter.mapToGlobal(QPointF(px, py)), button,
                         buttons, Qt.KeyboardModifier.NoModifier)  # fmt: skip
        QApplication.sendEvent(plotter, ev)

    left = Qt.MouseButton.LeftButton
    send(QEvent.Type.MouseButtonPress, x, y, left)
    _wait(app, lambda: True)
    times, cpu = [], []
    for i in range(frames):
        phase = 2 * np.pi * i / 60.0
        px, py = x + 25.0 * np.sin(phase), y - 25.0 * (1 - np.cos(phase))
        n_before = len(rendered)
        t0, c0 = time.perf_counter(), time.process_time()
        send(QEvent.Type.MouseMove, px, py, left)
        while len(rendered) == n_before:
            app.processEvents()
        times.append(rendered[-1] - t0)
        cpu.append(time.process_time() - c0)
    send(QEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.NoButton)
    frame = w.rehearsal.frame
    model = w.rehearsal.model
    sizes = {n: int(len(p)) for n, p in model.points_mm.items()}
    peers = _peers(model, frame.push_mm)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(50):
        plotter.ren_win.Render()
    peers["render_only_ms_wall"] = (time.perf_counter() - t0) / 50 * 1e3
    peers["render_only_ms_cpu"] = (time.process_time() - c0) / 50 * 1e3
    size = [plotter.width(), plotter.height()]
    w.close()
    t = np.asarray(times)
    return {
        "view_size_px": size,
        "frame_cpu_ms_median": float(np.median(cpu) * 1e3),
        "frame_cpu_ms_p95": float(np.percentile(cpu, 95) * 1e3),
        "load_average_1min": os.getloadavg()[0],
        "frames": frames,
        "frame_ms_median": float(np.median(t) * 1e3),
        "frame_ms_p95": float(np.percentile(t, 95) * 1e3),
        "fps_median": float(1.0 / np.median(t)),
        "fps_p5": float(1.0 / np.percentile(t, 95)),
        "vertices": sizes,
        "vertices_total": int(sum(sizes.values())),
        "n_modes": int(model.rom.n_modes),
        "last_push_mm": frame.push_mm.tolist(),
        "last_tumour_shift_mm": frame.tumour_shift_mm,
        **peers,
    }


def _peers(model, push_mm: np.ndarray, repeats: int = 200) -> dict:
    """Model evaluation alone: precomputed ``d @ G`` vs RBF amplitudes then ``a @ M``."""
    from biomech.rom import RomParameters

    t0 = time.perf_counter()
    for _ in range(repeats):
        model.evaluate(push_mm)
    pre = (time.perf_counter() - t0) / repeats
    c = tuple(model.handle_mm)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a = model.rom.amplitudes(RomParameters(c, tuple(push_mm))).astype(np.float32)
        (a @ model._modes).reshape(-1, 3)
    naive = (time.perf_counter() - t0) / repeats
    return {"eval_ms_precomputed_dG": pre * 1e3, "eval_ms_amplitudes_then_modes": naive * 1e3}


def main() -> None:
    """Build the case (or use ``--case``), measure, print one JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--centres", type=int, default=4)
    parser.add_argument(
        "--case", type=Path, help="Case folder: used if it exists, else built there and kept."
    )
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    args = parser.parse_args()
    from tests.viewer_display import start_xvfb

    with tempfile.TemporaryDirectory() as tmp, start_xvfb(keep=True):
        t0 = time.perf_counter()
        if args.case is not None and (args.case / "case.json").is_file():
            case = args.case
        elif args.case is not None:
            args.case.mkdir(parents=True)
            case = build_case(args.case, args.centres)
        else:
            case = build_case(Path(tmp), args.centres)
        build_s = time.perf_counter() - t0
        result = {
            "benchmark": "viewer_rehearsal",
            "cpu_cores": len(os.sched_getaffinity(0)),
            "case_build_s": build_s,
            **measure(case, args.frames),
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
