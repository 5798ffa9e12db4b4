"""The desktop viewer's main window: 3D scene, CT slices, tools, markups and rehearsal.

Every feature is a method (``set_structure_visible``, ``set_slice``, ``set_preset``,
``set_clip_plane``, ``handle_pick``, ``place_markup``, ``undo``...) that the widgets call and
tests can call too. The case is read off the GUI thread (:mod:`surgplan.viewer.workers`) with a
busy indicator; any failure is shown in the status line and a dialog, never as a crash.

Picking: in the ``measure``, ``target`` and ``fiducial`` modes a left click on the 3D view
picks the surface point under the cursor (``vtkCellPicker``) and calls :meth:`handle_pick`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv
from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)
from pyvistaqt import QtInteractor

from surgplan.viewer.actors import add_structures, pick_translucency, place_camera
from surgplan.viewer.markups_store import Markup, MarkupStore
from surgplan.viewer.scene import Scene, ViewerError, build_scene
from surgplan.viewer.slice_view import SliceView
from surgplan.viewer.slices import AXES, PRESETS, pixel_to_index, slice_count, slice_rgb
from surgplan.viewer.workers import start_job

__all__ = ["ViewerWindow", "MODES"]

#: Tool modes of a left click in the 3D view.
MODES = ("navigate", "measure", "target", "fiducial")
#: Markup colours in the 3D view (RGB 0..1).
MARKUP_COLOURS = {"target": (1.0, 0.2, 0.2), "fiducial": (0.1, 0.8, 0.2)}
_MEASURE_COLOUR = (0.0, 0.9, 0.9)


class ViewerWindow(QMainWindow):
    """``surgplan view CASE``: the case in 3D and in slices, with tools.

    Parameters
    ----------
    case_dir : str or os.PathLike
        The case folder.
    load_async : bool
        Read the case on a pool thread (default); ``False`` reads it before returning.
    """

    def __init__(self, case_dir: str | os.PathLike[str], *, load_async: bool = True) -> None:
        super().__init__()
        self.case_dir = Path(case_dir)
        self.setWindowTitle(f"surgplan view: {self.case_dir.name}")
        self.resize(1280, 860)
        self.scene: Scene | None = None
        self.actors: dict[str, Any] = {}
        self.controllers: list[Any] = []
        self.markups: MarkupStore | None = None
        self.undo_stack: list[tuple[str, Callable[[], None]]] = []
        self.mode = "navigate"
        self.measure_points: list[np.ndarray] = []
        self.measurement_mm: float | None = None
        self.slice_index: dict[str, int] = {}
        self.window_level = PRESETS["abdomen"]
        self.clip_plane: tuple[np.ndarray, np.ndarray] | None = None
        self.slice_views: dict[str, SliceView] = {}
        self._jobs: list[Any] = []
        self._markup_actors: dict[tuple[str, str], Any] = {}
        self._build_layout()
        if load_async:
            self.begin_busy("loading the case")
            self._jobs.append(
                start_job(lambda progress: self._read_scene(), self._on_scene, self.show_error)
            )
        else:
            try:
                self._on_scene(self._read_scene())
            except (ViewerError, OSError) as error:
                self.show_error(str(error))

    # --- layout ---------------------------------------------------------------------------

    def _build_layout(self) -> None:
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        # no MSAA and no periodic re-render: software OpenGL (llvmpipe) spends most of a frame
        # on 4x multisampling, and the rehearsal renders every drag step itself
        self.plotter = QtInteractor(self.splitter, multi_samples=0, auto_update=False)
        self.plotter.set_background("white")
        self.splitter.addWidget(self.plotter)
        self.slice_panel = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.slice_panel)
        self.slice_panel.hide()
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self.status = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.statusBar().addWidget(self.status, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.error_dialog: QMessageBox | None = None
        self._build_side_panel()
        self.plotter.iren.add_observer("LeftButtonPressEvent", self._on_left_press)

    def _build_side_panel(self) -> None:
        dock = QDockWidget("Case", self)
        dock.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        panel = QWidget()
        self.side_layout = QVBoxLayout(panel)
        self.structure_table = QTableWidget(0, 2)
        self.structure_table.setHorizontalHeaderLabels(["structure", "opacity"])
        self.structure_table.verticalHeader().hide()
        self.side_layout.addWidget(self.structure_table, 1)
        self.side_layout.addWidget(self._slice_tools())
        self.side_layout.addWidget(self._edit_tools())
        from surgplan.viewer.clamp_panel import ClampPanel
        from surgplan.viewer.rehearsal_panel import RehearsalPanel

        self.rehearsal = RehearsalPanel(self)
        self.side_layout.addWidget(self.rehearsal)
        self.clamp = ClampPanel(self)
        self.side_layout.addWidget(self.clamp)
        dock.setWidget(panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

    def _slice_tools(self) -> QGroupBox:
        box = QGroupBox("Slices and clipping")
        form = QFormLayout(box)
        self.preset_box = QComboBox()
        self.preset_box.addItems(list(PRESETS))
        self.preset_box.currentTextChanged.connect(self.set_preset)
        form.addRow("window/level", self.preset_box)
        self.clip_box = QComboBox()
        self.clip_box.addItems(["off", "x (left-right)", "y (front-back)", "z (head-foot)"])
        self.clip_slider = QSlider(Qt.Orientation.Horizontal)
        self.clip_slider.setRange(0, 100)
        self.clip_slider.setValue(50)
        self.clip_box.currentIndexChanged.connect(lambda _: self._clip_from_widgets())
        self.clip_slider.valueChanged.connect(lambda _: self._clip_from_widgets())
        form.addRow("clip", self.clip_box)
        form.addRow("clip position", self.clip_slider)
        return box

    def _edit_tools(self) -> QGroupBox:
        box = QGroupBox("Measure and mark")
        form = QFormLayout(box)
        self.mode_box = QComboBox()
        self.mode_box.addItems(list(MODES))
        self.mode_box.currentTextChanged.connect(self.set_mode)
        form.addRow("click does", self.mode_box)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name of the next target / fiducial")
        form.addRow("name", self.name_edit)
        self.measure_label = QLabel("distance: -")
        form.addRow(self.measure_label)
        self.undo_button = QPushButton("Undo last edit")
        self.undo_button.clicked.connect(self.undo)
        self.undo_button.setEnabled(False)
        form.addRow(self.undo_button)
        return box

    # --- loading and errors ---------------------------------------------------------------

    def _read_scene(self) -> tuple[Scene, MarkupStore]:
        return build_scene(self.case_dir), MarkupStore(self.case_dir)

    def begin_busy(self, what: str, total: int = 0) -> None:
        """Show the progress indicator (busy when ``total`` is 0) and say what runs."""
        self.status.setText(f"{what}...")
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.show()

    def step_busy(self, done: int, total: int) -> None:
        """Advance the progress indicator."""
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def end_busy(self, message: str = "") -> None:
        """Hide the progress indicator; leave ``message`` in the status line."""
        self.progress.hide()
        self.status.setText(message)

    def show_error(self, reason: str) -> None:
        """Report a failure in the status line and a (non-blocking) dialog."""
        self.progress.hide()
        self.status.setText(f"error: {reason}")
        self.error_dialog = QMessageBox(QMessageBox.Icon.Warning, "surgplan view", reason,
                                        QMessageBox.StandardButton.Ok, self)  # fmt: skip
        self.error_dialog.open()

    @property
    def loaded(self) -> bool:
        """Whether the case's scene is shown."""
        return self.scene is not None

    def _on_scene(self, loaded: tuple[Scene, MarkupStore]) -> None:
        self.scene, self.markups = loaded
        self.actors = add_structures(self.plotter, self.scene)
        renderer = self.plotter.renderer
        self.plotter.ren_win.AddObserver("StartEvent", lambda *_: pick_translucency(renderer))
        self._fill_structure_table()
        for m in self.markups.items:
            self._draw_markup(m)
        if self.scene.image is not None:
            self._build_slice_views()
        self.clamp.fill()
        place_camera(self.plotter, "anterior")
        self.plotter.render()
        note = "" if self.scene.image is not None else "; no scan (3D only)"
        self.end_busy(f"{len(self.scene.structures)} structures{note}")

    # --- structures -----------------------------------------------------------------------

    def _fill_structure_table(self) -> None:
        table = self.structure_table
        table.setRowCount(len(self.scene.structures))  # type: ignore[union-attr]
        for row, s in enumerate(self.scene.structures):  # type: ignore[union-attr]
            check = QCheckBox(s.name)
            check.setChecked(True)
            check.toggled.connect(lambda on, n=s.name: self.set_structure_visible(n, on))
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setValue(round(100 * s.opacity))
            slider.valueChanged.connect(lambda v, n=s.name: self.set_structure_opacity(n, v / 100))
            table.setCellWidget(row, 0, check)
            table.setCellWidget(row, 1, slider)
        table.resizeColumnsToContents()

    def _actor(self, name: str) -> Any:
        if name not in self.actors:
            raise ViewerError(f"no structure {name!r} in the view ({', '.join(self.actors)})")
        return self.actors[name]

    def set_structure_visible(self, name: str, visible: bool) -> None:
        """Show or hide a structure in the 3D view and its label in the slices."""
        self._actor(name).SetVisibility(bool(visible))
        self.plotter.render()
        self._refresh_slices()

    def set_structure_opacity(self, name: str, opacity: float) -> None:
        """Set a structure's opacity (0..1)."""
        if not 0.0 <= opacity <= 1.0:
            raise ViewerError(f"opacity must be in 0..1, got {opacity}")
        self._actor(name).prop.opacity = float(opacity)
        self.plotter.render()

    def visible_structures(self) -> set[str]:
        """Names of the structures shown."""
        return {n for n, a in self.actors.items() if a.GetVisibility()}

    # --- slices and crosshair -------------------------------------------------------------

    def _build_slice_views(self) -> None:
        image = self.scene.image  # type: ignore[union-attr]
        for view in AXES:
            sv = SliceView(view, slice_count(image, view))
            sv.slice_changed.connect(self.set_slice)
            sv.pixel_clicked.connect(self.on_slice_click)
            self.slice_views[view] = sv
            self.slice_panel.addWidget(sv)
            self.slice_index[view] = slice_count(image, view) // 2
        self.slice_panel.show()
        self._crosshair = pv.PolyData(np.zeros((6, 3)), lines=[2, 0, 1, 2, 2, 3, 2, 4, 5])
        self.plotter.add_mesh(self._crosshair, color=(0.0, 0.8, 0.0), line_width=2,
                              name="crosshair", reset_camera=False, pickable=False)  # fmt: skip
        self._update_crosshair()
        self._refresh_slices()

    def crosshair_mm(self) -> np.ndarray:
        """LPS point (mm) where the three slices cross."""
        image = self.scene.image  # type: ignore[union-attr]
        ijk = [self.slice_index[v] for v in ("sagittal", "coronal", "axial")]
        return image.index_to_lps(ijk)

    def set_slice(self, view: str, index: int) -> None:
        """Move one slice view to ``index``; the crosshair in 3D follows."""
        if self.scene is None or self.scene.image is None:
            raise ViewerError("this case has no scan: no slice views")
        n = slice_count(self.scene.image, view)
        if not 0 <= index < n:
            raise ViewerError(f"{view} slice {index} is outside 0..{n - 1}")
        if self.slice_index.get(view) == index:
            return
        self.slice_index[view] = int(index)
        self._update_crosshair()
        self._refresh_slices()

    def set_crosshair(self, point_mm: np.ndarray) -> None:
        """Move all three slices to the voxel nearest an LPS point (mm)."""
        i, j, k = self.scene.image.lps_to_index(point_mm)  # type: ignore[union-attr]
        self.slice_index.update(sagittal=int(i), coronal=int(j), axial=int(k))
        self._update_crosshair()
        self._refresh_slices()

    def on_slice_click(self, view: str, row: int, col: int) -> None:
        """A click on a slice moves the other two slices through that voxel."""
        image = self.scene.image  # type: ignore[union-attr]
        self.set_crosshair(
            image.index_to_lps(pixel_to_index(image, view, self.slice_index[view], row, col))
        )

    def _update_crosshair(self) -> None:
        b = self.scene.image.bounds_mm()  # type: ignore[union-attr]
        p = self.crosshair_mm()
        pts = np.repeat(p[None], 6, axis=0)
        for axis in range(3):
            pts[2 * axis, axis], pts[2 * axis + 1, axis] = b[axis]
        self._crosshair.points = pts
        self.plotter.render()

    def _crosshair_pixel(self, view: str) -> tuple[int, int]:
        image = self.scene.image  # type: ignore[union-attr]
        nz = image.shape_xyz[2]
        i, j, k = (self.slice_index[v] for v in ("sagittal", "coronal", "axial"))
        return {"axial": (j, i), "coronal": (nz - 1 - k, i), "sagittal": (nz - 1 - k, j)}[view]

    def _refresh_slices(self) -> None:
        if self.scene is None or self.scene.image is None:
            return
        image = self.scene.image
        sx, sy, sz = image.spacing_mm
        pixel_mm = {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}
        shown = self.visible_structures()
        for view, sv in self.slice_views.items():
            rgb = slice_rgb(image, view, self.slice_index[view], self.window_level,
                            visible_labels=shown)  # fmt: skip
            sv.show_rgb(rgb, *pixel_mm[view], self._crosshair_pixel(view))
            sv.title.setText(f"{view} {self.slice_index[view]}")
            sv.slider.blockSignals(True)
            sv.slider.setValue(self.slice_index[view])
            sv.slider.blockSignals(False)

    def set_preset(self, name: str) -> None:
        """Apply a window/level preset (``abdomen``, ``liver``, ``bone``) to the slices."""
        if name not in PRESETS:
            raise ViewerError(f"unknown window/level preset {name!r} ({', '.join(PRESETS)})")
        self.window_level = PRESETS[name]
        if self.preset_box.currentText() != name:
            self.preset_box.setCurrentText(name)
        self._refresh_slices()

    # --- clipping -------------------------------------------------------------------------

    def set_clip_plane(self, origin_mm: np.ndarray, normal: np.ndarray) -> None:
        """Clip every structure by a plane: what lies on the ``normal`` side is kept."""
        import vtk

        n = np.asarray(normal, float)
        if not np.linalg.norm(n) > 0:
            raise ViewerError("clip plane normal must be non-zero")
        plane = vtk.vtkPlane()
        plane.SetOrigin(*np.asarray(origin_mm, float))
        plane.SetNormal(*(n / np.linalg.norm(n)))
        for actor in self.actors.values():
            mapper = actor.GetMapper()
            mapper.RemoveAllClippingPlanes()
            mapper.AddClippingPlane(plane)
        self._cull_back_faces(False)  # the cut opens the surfaces: their insides show
        self.clip_plane = (np.asarray(origin_mm, float), n / np.linalg.norm(n))
        self.plotter.render()

    def clear_clip(self) -> None:
        """Remove the clipping plane."""
        for actor in self.actors.values():
            actor.GetMapper().RemoveAllClippingPlanes()
        self.clip_plane = None
        self._cull_back_faces(True)
        self.plotter.render()

    def _cull_back_faces(self, on: bool) -> None:
        """Back-face culling on (closed outward surfaces, :func:`encloses_outward`) or off."""
        from surgplan.viewer.actors import encloses_outward

        for actor in self.actors.values():
            closed = on and encloses_outward(actor.mapper.dataset)
            actor.prop.culling = "back" if closed else "none"

    def _clip_from_widgets(self) -> None:
        axis = self.clip_box.currentIndex() - 1
        if axis < 0 or not self.actors:
            self.clear_clip()
            return
        b = np.asarray(self.plotter.bounds).reshape(3, 2)
        origin = b.mean(axis=1)
        origin[axis] = b[axis, 0] + (b[axis, 1] - b[axis, 0]) * self.clip_slider.value() / 100
        self.set_clip_plane(origin, np.eye(3)[axis])

    # --- picking, measuring, markups, undo ------------------------------------------------

    def set_mode(self, mode: str) -> None:
        """What a left click on the 3D view does: one of :data:`MODES`."""
        if mode not in MODES:
            raise ViewerError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        self.mode = mode
        self.measure_points = []
        if self.mode_box.currentText() != mode:
            self.mode_box.setCurrentText(mode)

    def _on_left_press(self, obj: Any, event: str) -> None:
        if self.mode == "navigate":
            return
        import vtk

        x, y = self.plotter.iren.get_event_position()
        picker = vtk.vtkCellPicker()
        picker.SetTolerance(0.0005)
        if picker.Pick(x, y, 0, self.plotter.renderer) and picker.GetCellId() >= 0:
            self.handle_pick(np.array(picker.GetPickPosition()))

    def handle_pick(self, point_mm: np.ndarray) -> None:
        """A surface point (LPS mm) was picked: measure, or place a target / fiducial."""
        p = np.asarray(point_mm, float).reshape(3)
        if self.mode == "measure":
            self._measure(p)
        elif self.mode in ("target", "fiducial"):
            name = self.name_edit.text().strip() or self._next_name(self.mode)
            self.place_markup(self.mode, name, p)
            self.name_edit.clear()

    def _measure(self, p: np.ndarray) -> None:
        self.measure_points = (
            [*self.measure_points[-1:], p] if len(self.measure_points) < 2 else [p]
        )
        if len(self.measure_points) < 2:
            self.status.setText("measure: pick the second point")
            return
        a, b = self.measure_points
        self.show_measurement(a, b)

    def show_measurement(self, a: np.ndarray, b: np.ndarray) -> float:
        """Draw the segment a-b (LPS mm) and show its length; undoable. Returns mm."""
        previous = self.measurement_mm
        line = pv.Line(a, b)
        self.plotter.add_mesh(line, color=_MEASURE_COLOUR, line_width=4, name="measurement",
                              reset_camera=False, pickable=False)  # fmt: skip
        self.measurement_mm = float(np.linalg.norm(np.asarray(b) - np.asarray(a)))
        self.measure_label.setText(f"distance: {self.measurement_mm:.1f} mm")
        self.status.setText(f"distance {self.measurement_mm:.1f} mm")
        self.plotter.render()

        def undo() -> None:
            self.plotter.remove_actor("measurement")
            self.measurement_mm = previous
            self.measure_label.setText("distance: -")
            self.plotter.render()

        self._push_undo("measurement", undo)
        return self.measurement_mm

    def _next_name(self, kind: str) -> str:
        taken = {m.name for m in self.markups.of_kind(kind)}  # type: ignore[union-attr]
        i = 1
        while f"{kind}-{i}" in taken:
            i += 1
        return f"{kind}-{i}"

    def place_markup(self, kind: str, name: str, point_mm: np.ndarray) -> Markup:
        """Place and name a target or fiducial; saved to the case at once; undoable."""
        if self.markups is None:
            raise ViewerError("the case is not loaded yet")
        try:
            item = self.markups.add(kind, name, point_mm)
        except ViewerError as error:
            self.show_error(str(error))
            raise
        self._draw_markup(item)
        self.status.setText(f"{kind} {item.name!r} saved")

        def undo() -> None:
            self.markups.remove(item)  # type: ignore[union-attr]
            self.plotter.remove_actor(self._markup_actors.pop((item.kind, item.name)))
            self.plotter.remove_actor(f"label-{item.kind}-{item.name}")
            self.plotter.render()

        self._push_undo(f"{kind} {item.name}", undo)
        return item

    def _draw_markup(self, item: Markup) -> None:
        extent = float(np.ptp(np.asarray(self.plotter.bounds).reshape(3, 2), axis=1).max()) or 100
        sphere = pv.Sphere(radius=max(1.5, 0.012 * extent), center=item.position_mm)
        actor = self.plotter.add_mesh(sphere, color=MARKUP_COLOURS[item.kind], pickable=False,
                                      reset_camera=False)  # fmt: skip
        self.plotter.add_point_labels([item.position_mm], [item.name], font_size=12,
                                      name=f"label-{item.kind}-{item.name}", shape=None,
                                      always_visible=True, reset_camera=False)  # fmt: skip
        self._markup_actors[(item.kind, item.name)] = actor
        self.plotter.render()

    def _push_undo(self, what: str, undo: Callable[[], None]) -> None:
        self.undo_stack.append((what, undo))
        self.undo_button.setEnabled(True)

    def undo(self) -> str | None:
        """Undo the last edit (measurement, target, fiducial); return what was undone."""
        if not self.undo_stack:
            self.status.setText("nothing to undo")
            return None
        what, fn = self.undo_stack.pop()
        fn()
        self.undo_button.setEnabled(bool(self.undo_stack))
        self.status.setText(f"undone: {what}")
        return what

    # --- attachments and closing ----------------------------------------------------------

    def attach(self, controller: Any) -> Any:
        """Keep a live/replay controller; its ``close()`` is called when the window closes."""
        self.controllers.append(controller)
        return controller

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802, D102 (Qt)
        for controller in self.controllers:
            controller.close()
        self.controllers.clear()
        self.rehearsal.release()
        self.plotter.close()
        super().closeEvent(event)
