"""What-if rehearsal in the real window: dragging the retractor deforms the twin by the ROM.

The case is the session's small twin case (real liver, tumour and portal vein models with a
reduced model; :func:`tests.test_twin_case.small_twin_case`). The tumour's shift shown in the
window is compared with the reduced model evaluated directly (``biomech.rom``), and a real
mouse drag of the handle (Qt mouse events on the 3D view) moves the twin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from tests.test_twin_case import small_twin_case
from tests.test_viewer_window import display_xy, wait_until

pytest_plugins = ["tests.viewer_display"]


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory: pytest.TempPathFactory, liver_models_dir: Path):
    from surgplan.viewer.window import ViewerWindow

    w = ViewerWindow(small_twin_case(tmp_path_factory, liver_models_dir))
    w.show()
    wait_until(qapp, lambda: w.loaded or w.status.text().startswith("error"))
    assert w.loaded, w.status.text()
    w.rehearsal.start()
    wait_until(qapp, lambda: w.rehearsal.ready or w.status.text().startswith("error"))
    assert w.rehearsal.ready, w.status.text()
    yield w
    w.close()


def direct_rom(window, name: str, push_mm: np.ndarray) -> np.ndarray:
    """The structure's vertex displacement (mm) by the reduced model, evaluated directly."""
    from biomech.rom import RomParameters, load_reduced_model, modes_at

    rom = load_reduced_model(window.case_dir / "rom" / "linear.npz")
    base = window.rehearsal._base[name]
    c = window.rehearsal.model.handle_mm
    a = rom.amplitudes(RomParameters(tuple(c), tuple(push_mm)))
    return np.tensordot(a, modes_at(rom, base), 1)


def test_push_deforms_organ_vessels_and_tumour_as_the_rom_predicts(window) -> None:
    push = np.array([0.0, -8.0, 8.0])  # lift the inferior edge anteriorly and cranially
    frame = window.rehearsal.apply_push(push)
    u_tumour = direct_rom(window, "tumour", push)
    assert frame.tumour_shift_mm > 0.5
    assert frame.tumour_shift_mm == pytest.approx(np.linalg.norm(u_tumour.mean(axis=0)), rel=1e-4)
    assert f"{frame.tumour_shift_mm:.1f} mm" in window.rehearsal.shift_label.text()
    for name in ("liver", "portal_vein", "tumour"):
        drawn = np.asarray(window.rehearsal._datasets[name].points)
        expected = window.rehearsal._base[name] + direct_rom(window, name, push)
        np.testing.assert_allclose(drawn, expected, atol=2e-3)  # float32 vertices
    organ = window.rehearsal._datasets["liver"]
    np.testing.assert_allclose(organ.point_data["|u| mm"],
                               np.linalg.norm(direct_rom(window, "liver", push), axis=1),
                               atol=1e-3)  # fmt: skip
    assert not frame.clipped
    far = window.rehearsal.apply_push(np.array([0.0, 0.0, 50.0]))
    assert far.clipped and np.linalg.norm(far.push_mm) == pytest.approx(20.0)
    assert "clipped" in window.rehearsal.push_label.text()
    window.rehearsal.apply_push(np.zeros(3))


def _send(widget, kind: QEvent.Type, x: float, y: float, buttons) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    event = QMouseEvent(kind, QPointF(x, y), widget.mapToGlobal(QPointF(x, y)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)  # fmt: skip
    QApplication.sendEvent(widget, event)


def test_real_mouse_drag_of_the_handle_moves_the_twin(window) -> None:
    plotter = window.plotter
    centre = np.asarray(window.rehearsal.widget.GetCenter())
    ratio = plotter.devicePixelRatioF()
    dx, dy = display_xy(window, centre)
    x, y = dx / ratio, plotter.height() - dy / ratio
    left = Qt.MouseButton.LeftButton
    _send(plotter, QEvent.Type.MouseButtonPress, x, y, left)
    for step in range(1, 11):
        _send(plotter, QEvent.Type.MouseMove, x, y - 4.0 * step, left)  # drag up the screen
    _send(plotter, QEvent.Type.MouseButtonRelease, x, y - 40.0, Qt.MouseButton.NoButton)
    frame = window.rehearsal.frame
    moved = np.asarray(window.rehearsal.widget.GetCenter()) - window.rehearsal.model.handle_mm
    assert np.linalg.norm(moved) > 2.0
    np.testing.assert_allclose(frame.push_mm, moved, atol=1e-6)
    assert frame.push_mm[2] > 1.0  # up the screen is superior (+z) in the anterior view
    u_tumour = direct_rom(window, "tumour", frame.push_mm)
    assert frame.tumour_shift_mm > 0.1
    assert frame.tumour_shift_mm == pytest.approx(np.linalg.norm(u_tumour.mean(axis=0)), rel=1e-4)
