"""The window's what-if rehearsal: a draggable retractor handle deforming the twin live.

A sphere handle (``vtkSphereWidget`` through :meth:`pyvista.Plotter.add_sphere_widget`) sits on
the organ surface; dragging it pushes the retractor by (handle - rest position) and every
frame applies :meth:`surgplan.viewer.rehearsal.RehearsalModel.evaluate`: the organ (coloured by
|u| in mm), its vessels and the tumour move in place (their VTK point arrays are overwritten,
no new meshes), the window is rendered once (by the widget, which renders after its callback)
and the tumour's shift is shown in mm. The model is read and precomputed on a
pool thread; without a reduced model, "Build reduced model" runs ``surgplan rom`` there, with
its progress shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QPushButton

from surgplan.viewer.rehearsal import MAX_PUSH_MM, RehearsalFrame, RehearsalModel
from surgplan.viewer.scene import ViewerError
from surgplan.viewer.workers import start_job

if TYPE_CHECKING:
    from surgplan.viewer.window import ViewerWindow

__all__ = ["RehearsalPanel", "ROM_FILE", "follows_organ"]

#: The case's reduced model (``surgplan rom CASE``).
ROM_FILE = "rom/linear.npz"
#: Name words of structures carried by the organ's deformation (besides the organ itself).
FOLLOWER_WORDS = ("tumour", "tumor", "lesion", "vein", "vessel", "arter", "portal", "biliary")
_LESION_WORDS = ("tumour", "tumor", "lesion", "metastasis")
#: Scalar array of the organ's displacement magnitude, mm.
U_ARRAY = "|u| mm"


def follows_organ(name: str) -> bool:
    """Whether a structure is moved by the organ's deformation field (vessels, lesions)."""
    return any(w in name.lower() for w in FOLLOWER_WORDS)


class RehearsalPanel(QGroupBox):
    """Side-panel box and controller of the rehearsal for one window.

    Parameters
    ----------
    window : ViewerWindow
        The viewer window (its scene must be loaded before :meth:`start`).
    organ : str
        The deformed organ.
    """

    def __init__(self, window: ViewerWindow, organ: str = "liver") -> None:
        super().__init__("What-if rehearsal")
        self.window = window
        self.organ = organ
        self.model: RehearsalModel | None = None
        self.widget: Any = None
        self.frame: RehearsalFrame | None = None
        self._datasets: dict[str, Any] = {}
        self._base: dict[str, np.ndarray] = {}
        self._jobs: list[Any] = []
        form = QFormLayout(self)
        self.start_button = QPushButton("Start rehearsal")
        self.start_button.clicked.connect(self.start)
        self.build_button = QPushButton("Build reduced model")
        self.build_button.clicked.connect(self.build_rom)
        self.shift_label = QLabel("tumour shift: -")
        self.push_label = QLabel("retractor push: -")
        for w in (self.start_button, self.build_button, self.shift_label, self.push_label):
            form.addRow(w)

    @property
    def ready(self) -> bool:
        """Whether the handle is placed and dragging deforms the twin."""
        return self.widget is not None

    # --- model ----------------------------------------------------------------------------

    def _rom_path(self) -> Path:
        return self.window.case_dir / ROM_FILE

    def build_rom(self) -> None:
        """Build the case's reduced model (``surgplan rom CASE``) on a pool thread."""
        from surgplan.case_rom import build_case_rom

        case_dir = self.window.case_dir
        self.window.begin_busy("building the reduced model (finite-element solves)", 1)
        self._jobs.append(start_job(
            lambda progress: build_case_rom(case_dir, progress=progress),
            lambda result: self.window.end_busy(f"reduced model built: {result.n_modes} modes"),
            self.window.show_error, self.window.step_busy,
        ))  # fmt: skip

    def start(self) -> None:
        """Read the reduced model and precompute the response on a pool thread, then arm."""
        scene = self.window.scene
        if scene is None:
            raise ViewerError("the case is not loaded yet")
        if self.organ not in self.window.actors:
            self.window.show_error(f"rehearsal needs a {self.organ!r} surface in the case")
            return
        if not self._rom_path().is_file():
            self.window.show_error(
                f"no reduced model ({self._rom_path()}); press 'Build reduced model' or run "
                f"'surgplan rom {self.window.case_dir}'"
            )
            return
        names = [self.organ] + [
            n for n in self.window.actors if n != self.organ and follows_organ(n)
        ]
        self._datasets = {n: self.window.actors[n].mapper.dataset for n in names}
        self._base = {n: np.array(d.points, np.float64) for n, d in self._datasets.items()}
        tumour = next((n for n in names if any(w in n.lower() for w in _LESION_WORDS)), None)
        points = {n: p.copy() for n, p in self._base.items()}
        rom_path = self._rom_path()

        def work(progress: Any) -> RehearsalModel:
            from biomech.rom import load_reduced_model

            return RehearsalModel(load_reduced_model(rom_path), self.organ, points, tumour=tumour)

        self.window.begin_busy("preparing the rehearsal (reduced model on every vertex)")
        self._jobs.append(start_job(work, self._arm, self.window.show_error))

    def _arm(self, model: RehearsalModel) -> None:
        self.model = model
        organ = self._base[self.organ]
        rest = model.set_handle(organ[np.argmin(organ[:, 2])])  # the inferior edge
        self._colour_organ()
        extent = float(np.ptp(organ, axis=0).max())
        self.widget = self.window.plotter.add_sphere_widget(
            self._on_widget, center=tuple(rest), radius=0.04 * extent, color="red",
            interaction_event="always", test_callback=False,
        )  # fmt: skip
        self.apply_push(np.zeros(3))
        note = ""
        if model.extrapolating:
            note = (
                f"; the handle is {model.handle_gap_mm:.0f} mm from the model's nearest "
                "training patch: predictions are extrapolated (rebuild with more centres)"
            )
        self.window.end_busy(f"rehearsal: drag the red retractor handle{note}")

    def _colour_organ(self) -> None:
        plotter = self.window.plotter
        old = self.window.actors[self.organ]
        mesh = self._datasets[self.organ].copy()
        mesh.point_data[U_ARRAY] = np.zeros(mesh.n_points, np.float32)
        actor = plotter.add_mesh(
            mesh, scalars=U_ARRAY, cmap="viridis", clim=(0.0, MAX_PUSH_MM),
            opacity=old.prop.opacity, name=self.organ, reset_camera=False,
            scalar_bar_args={"title": "displacement (mm)"},
        )  # fmt: skip
        actor.prop.culling = old.prop.culling
        planes = old.mapper.GetClippingPlanes()
        if planes is not None and planes.GetNumberOfItems():
            actor.mapper.SetClippingPlanes(planes)
        self.window.actors[self.organ] = actor
        self._datasets[self.organ] = actor.mapper.dataset

    # --- dragging -------------------------------------------------------------------------

    def _on_widget(self, centre: Any) -> None:
        # the sphere widget renders the window itself right after this callback
        if self.model is not None and self.model.handle_mm is not None:
            self.apply_push(np.asarray(centre, float) - self.model.handle_mm, render=False)

    def apply_push(self, push_mm: np.ndarray, *, render: bool = True) -> RehearsalFrame:
        """Deform the twin for a retractor push (mm) and render (unless ``render=False``)."""
        if self.model is None:
            raise ViewerError("start the rehearsal first")
        frame = self.model.evaluate(push_mm)
        for name, u in frame.displacement_mm.items():
            data = self._datasets[name]
            pts = data.points
            np.add(self._base[name], u, out=pts, casting="unsafe")
            data.GetPoints().Modified()
        organ = self._datasets[self.organ]
        scal = organ.point_data[U_ARRAY]
        scal[:] = np.linalg.norm(frame.displacement_mm[self.organ], axis=1)
        organ.point_data.GetArray(U_ARRAY).Modified()
        self.frame = frame
        if frame.tumour_shift_mm is not None:
            self.shift_label.setText(f"tumour shift: {frame.tumour_shift_mm:.1f} mm")
        note = f" (clipped to {MAX_PUSH_MM:g} mm)" if frame.clipped else ""
        self.push_label.setText(f"retractor push: {np.linalg.norm(frame.push_mm):.1f} mm{note}")
        if render:
            self.window.plotter.ren_win.Render()  # now, once (plotter.render() queues a repaint)
        return frame

    def release(self) -> None:
        """Drop the handle widget (the window is closing)."""
        if self.widget is not None:
            self.widget.Off()
            self.widget = None
