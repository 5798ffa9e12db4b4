"""One CT slice view of the window: the picture, a slider for the slice and click-to-point."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget

__all__ = ["SliceView"]

#: Colour of the crosshair drawn on the slices (RGB).
CROSSHAIR_RGB = (0, 255, 0)


class _Picture(QLabel):
    clicked = Signal(QPoint)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802, D102 (Qt)
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(event.position().toPoint())
        super().mousePressEvent(event)


class SliceView(QWidget):
    """A titled slice picture with a slider; emits ``pixel_clicked(view, row, col)``.

    Parameters
    ----------
    view : str
        ``axial``, ``coronal`` or ``sagittal``.
    n_slices : int
        Slices along the view's axis.
    """

    pixel_clicked = Signal(str, int, int)
    slice_changed = Signal(str, int)

    def __init__(self, view: str, n_slices: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.title = QLabel(view)
        self.picture = _Picture()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(160, 160)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.picture.setStyleSheet("background: black")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, max(0, n_slices - 1))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        for w in (self.title, self.picture, self.slider):
            layout.addWidget(w)
        layout.setStretch(1, 1)
        self.rgb = np.zeros((1, 1, 3), np.uint8)
        self._aspect = 1.0  # physical height / width of one pixel
        self._shown: tuple[int, int, int, int] = (0, 0, 1, 1)  # x0, y0, w, h on the label
        self.slider.valueChanged.connect(lambda i: self.slice_changed.emit(self.view, int(i)))
        self.picture.clicked.connect(self._on_click)

    def show_rgb(
        self, rgb: np.ndarray, row_mm: float, col_mm: float, crosshair: tuple[int, int]
    ) -> None:
        """Show an (H, W, 3) uint8 picture with pixel size ``row_mm`` x ``col_mm``.

        ``crosshair`` is the (row, col) of the linked point, drawn as two lines.
        """
        img = np.array(rgb, np.uint8, copy=True)
        r, c = crosshair
        if 0 <= r < img.shape[0]:
            img[r, ::2] = CROSSHAIR_RGB
        if 0 <= c < img.shape[1]:
            img[::2, c] = CROSSHAIR_RGB
        self.rgb = img
        self._aspect = row_mm / col_mm
        self._redraw()

    def resizeEvent(self, event) -> None:  # noqa: N802, D102, ANN001 (Qt)
        super().resizeEvent(event)
        self._redraw()

    def _redraw(self) -> None:
        h, w = self.rgb.shape[:2]
        qimg = QImage(self.rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        box_w, box_h = max(1, self.picture.width()), max(1, self.picture.height())
        scale = min(box_w / w, box_h / (h * self._aspect))
        sw, sh = max(1, round(w * scale)), max(1, round(h * self._aspect * scale))
        pix = QPixmap.fromImage(qimg).scaled(
            sw, sh, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation
        )
        self._shown = ((box_w - sw) // 2, (box_h - sh) // 2, sw, sh)
        self.picture.setPixmap(pix)

    def widget_to_pixel(self, point: QPoint) -> tuple[int, int] | None:
        """(row, col) of the slice pixel under a point of the picture label, or None."""
        x0, y0, sw, sh = self._shown
        h, w = self.rgb.shape[:2]
        fx, fy = (point.x() - x0) / sw, (point.y() - y0) / sh
        if not (0 <= fx < 1 and 0 <= fy < 1):
            return None
        return int(fy * h), int(fx * w)

    def pixel_to_widget(self, row: int, col: int) -> QPoint:
        """Centre of slice pixel (row, col) on the picture label."""
        x0, y0, sw, sh = self._shown
        h, w = self.rgb.shape[:2]
        return QPoint(int(x0 + (col + 0.5) * sw / w), int(y0 + (row + 0.5) * sh / h))

    def _on_click(self, point: QPoint) -> None:
        pixel = self.widget_to_pixel(point)
        if pixel is not None:
            self.pixel_clicked.emit(self.view, *pixel)
