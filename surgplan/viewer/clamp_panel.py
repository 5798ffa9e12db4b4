"""The window's vessel clamp: choose a branch, see the predicted pressure in the others.

The vessel's centreline tree and flow model (:class:`surgplan.viewer.vessel_clamp.ClampModel`)
are built on a pool thread from its label map; clamping a branch colours every vertex of the
vessel's surface by the pressure of its branch (kPa, from the outflow to the inlet pressure),
the clamped branch in black.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QListWidget, QPushButton

from surgplan.viewer.scene import ViewerError
from surgplan.viewer.vessel_clamp import INLET_KPA, OUTLET_KPA, ClampModel
from surgplan.viewer.workers import start_job

if TYPE_CHECKING:
    from surgplan.viewer.window import ViewerWindow

__all__ = ["ClampPanel", "PRESSURE_ARRAY"]

#: Scalar array of the predicted pressure on the vessel surface, kPa.
PRESSURE_ARRAY = "pressure kPa"
_VESSEL_WORDS = ("vein", "vessel", "arter", "portal", "aorta")


class ClampPanel(QGroupBox):
    """Side-panel box and controller of the vessel clamp."""

    def __init__(self, window: ViewerWindow) -> None:
        super().__init__("Vessel clamp")
        self.window = window
        self.model: ClampModel | None = None
        self.pressures_kpa: np.ndarray | None = None
        self.clamped: int | None = None
        self._jobs: list[Any] = []
        form = QFormLayout(self)
        self.vessel_box = QComboBox()
        self.load_button = QPushButton("Find branches")
        self.load_button.clicked.connect(lambda: self.prepare(self.vessel_box.currentText()))
        self.branch_list = QListWidget()
        self.branch_list.setMaximumHeight(110)
        self.clamp_button = QPushButton("Clamp selected branch")
        self.clamp_button.clicked.connect(lambda: self.clamp(self.branch_list.currentRow()))
        self.info = QLabel("")
        form.addRow("vessel", self.vessel_box)
        for w in (self.load_button, self.branch_list, self.clamp_button, self.info):
            form.addRow(w)

    def fill(self) -> None:
        """List the case's vessels that have a label map (called once the scene is loaded)."""
        image = self.window.scene.image if self.window.scene is not None else None
        labels = image.label_names if image is not None else ()
        names = [n for n in labels if any(w in n.lower() for w in _VESSEL_WORDS)]
        self.vessel_box.clear()
        self.vessel_box.addItems(names)
        self.setEnabled(bool(names))
        if not names:
            self.info.setText("no vessel label map in this case")

    @property
    def ready(self) -> bool:
        """Whether a vessel's branches are listed."""
        return self.model is not None

    def prepare(self, vessel: str) -> None:
        """Build the vessel's centreline tree on a pool thread, then list its branches."""
        image = self.window.scene.image if self.window.scene is not None else None
        if image is None:
            raise ViewerError("vessel clamp needs a CT case with label maps")
        self.model = None
        self.window.begin_busy(f"finding the branches of {vessel}")
        self._jobs.append(start_job(lambda progress: ClampModel(image, vessel), self._listed,
                                    self.window.show_error))  # fmt: skip

    def _listed(self, model: ClampModel) -> None:
        self.model = model
        self.branch_list.clear()
        for i, b in enumerate(model.branches):
            role = " (inlet)" if model.tree.inlet in b.nodes else ""
            self.branch_list.addItem(f"{i}: r {b.radius_mm:.1f} mm, {b.length_mm:.0f} mm{role}")
        self.window.end_busy(f"{model.vessel}: {len(model.branches)} branches")

    def clamp(self, branch: int) -> np.ndarray:
        """Clamp one branch; colour the vessel by the predicted pressures; return them (kPa)."""
        if self.model is None:
            raise ViewerError("find the vessel's branches first")
        if not 0 <= branch < len(self.model.branches):
            raise ViewerError(f"branch {branch} is outside 0..{len(self.model.branches) - 1}")
        p = self.model.branch_pressures_kpa(branch)
        name = self.model.vessel
        actor = self.window.actors[name]
        mesh = actor.mapper.dataset.copy()
        per_vertex = p[self.model.vertex_branches(np.asarray(mesh.points))]
        mesh.point_data[PRESSURE_ARRAY] = per_vertex.astype(np.float32)
        self.window.actors[name] = self.window.plotter.add_mesh(
            mesh, scalars=PRESSURE_ARRAY, cmap="coolwarm", clim=(OUTLET_KPA, INLET_KPA),
            nan_color="black", name=name, reset_camera=False,
            scalar_bar_args={"title": "pressure (kPa)"},
        )  # fmt: skip
        self.pressures_kpa, self.clamped = p, branch
        low = int(np.sum(p[np.isfinite(p)] < OUTLET_KPA + 0.05 * (INLET_KPA - OUTLET_KPA)))
        self.info.setText(f"branch {branch} clamped: {low} branch(es) lose their pressure")
        self.window.plotter.render()
        return p
