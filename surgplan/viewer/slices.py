"""CT slices as RGB pictures with the label maps overlaid (no Qt): the window's slice views.

Orientation (radiological convention, LPS voxels indexed ``[k, j, i]``):

- ``axial`` (index k): rows are y (anterior at the top), columns x (the patient's right on
  the viewer's left);
- ``coronal`` (index j): rows are z (superior at the top), columns x;
- ``sagittal`` (index i): rows are z (superior at the top), columns y (anterior on the left).

Window/level presets (Radiopaedia, "Windowing (CT)"): abdomen soft tissue W 400 / L 50,
liver W 150 / L 30, bone W 1800 / L 400 (HU).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgplan.viewer.scene import SceneImage, ViewerError

__all__ = ["AXES", "PRESETS", "WindowLevel", "slice_rgb", "pixel_to_index", "slice_count"]

#: Slice view name -> the voxel axis (0 = i/x, 1 = j/y, 2 = k/z) it cuts.
AXES = {"axial": 2, "coronal": 1, "sagittal": 0}


@dataclass(frozen=True)
class WindowLevel:
    """A display window: intensities ``level +- width / 2`` map to black..white (HU)."""

    width: float
    level: float

    def grey(self, values: np.ndarray) -> np.ndarray:
        """uint8 grey levels of intensities."""
        lo = self.level - self.width / 2.0
        g = (np.asarray(values, np.float32) - lo) * (255.0 / self.width)
        return np.clip(g, 0, 255).astype(np.uint8)


#: Named presets (HU), see the module docstring.
PRESETS = {
    "abdomen": WindowLevel(400.0, 50.0),
    "liver": WindowLevel(150.0, 30.0),
    "bone": WindowLevel(1800.0, 400.0),
}


def slice_count(image: SceneImage, view: str) -> int:
    """Number of slices of ``view``."""
    return image.shape_xyz[_axis(view)]


def _axis(view: str) -> int:
    if view not in AXES:
        raise ViewerError(f"unknown slice view {view!r}; expected one of {', '.join(AXES)}")
    return AXES[view]


def _plane(volume: np.ndarray, view: str, index: int) -> np.ndarray:
    """The 2-D plane of ``volume`` (k, j, i) shown by ``view``, rows top to bottom."""
    if view == "axial":
        return volume[index]
    if view == "coronal":
        return volume[:, index, :][::-1]
    return volume[:, :, index][::-1]


def slice_rgb(
    image: SceneImage,
    view: str,
    index: int,
    window: WindowLevel,
    *,
    overlay_opacity: float = 0.45,
    visible_labels: set[str] | None = None,
) -> np.ndarray:
    """The slice as an (H, W, 3) uint8 picture: CT in grey, labels blended in their colours.

    Parameters
    ----------
    image : SceneImage
        Scan and labels.
    view : str
        ``axial``, ``coronal`` or ``sagittal``.
    index : int
        Slice index along the view's axis.
    window : WindowLevel
        Grey mapping.
    overlay_opacity : float
        Opacity of the label colours, 0..1.
    visible_labels : set of str, optional
        Structures whose labels are drawn (default all).

    Raises
    ------
    ViewerError
        Unknown view or index out of range.
    """
    n = slice_count(image, view)
    if not 0 <= index < n:
        raise ViewerError(f"{view} slice {index} is outside 0..{n - 1}")
    grey = window.grey(_plane(image.ct, view, index))
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    labels = _plane(image.labels, view, index)
    lut = np.zeros((len(image.label_names) + 1, 3), np.float32)
    lut[1:] = image.label_colours
    shown = np.zeros(len(image.label_names) + 1, bool)
    shown[1:] = [visible_labels is None or n in visible_labels for n in image.label_names]
    mask = shown[labels]
    a = float(overlay_opacity)
    rgb[mask] = (1.0 - a) * rgb[mask] + a * lut[labels[mask]]
    return np.ascontiguousarray(np.rint(rgb).astype(np.uint8))


def pixel_to_index(image: SceneImage, view: str, index: int, row: int, col: int) -> np.ndarray:
    """Voxel index (i, j, k) under pixel (row, col) of slice ``index`` of ``view``."""
    nx, ny, nz = image.shape_xyz
    if view == "axial":
        ijk = (col, row, index)
    elif view == "coronal":
        ijk = (col, index, nz - 1 - row)
    else:
        _axis(view)
        ijk = (index, col, nz - 1 - row)
    return np.clip(np.array(ijk), 0, np.array([nx, ny, nz]) - 1).astype(int)
