"""The scene the headset shows, as plain data: coloured meshes in layers, a pose, overlay text.

The application (``surgplan``) builds a :class:`VrScene` from a case or a live session; ``vr``
only draws it. Every length is in mm; ``T_world_twin`` places the twin (the meshes' own space,
e.g. patient LPS) in the XR world (reference space), e.g. through the live registration and the
headset-to-tracker calibration, or in front of the user in rehearsal.

Trust: when ``trusted`` is false the twin is hidden (:meth:`VrScene.visible_meshes` is empty)
and :meth:`VrScene.overlay_text` is the warning, which must then be given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyvista as pv

from vr.errors import VrError

__all__ = ["LAYERS", "SceneMesh", "VrScene"]

#: The layers, in the order the trigger cycles through them.
LAYERS = ("organ", "vessels", "tumour", "error_spheres", "recommended_region")


@dataclass(frozen=True)
class SceneMesh:
    """One coloured mesh of the twin.

    Attributes
    ----------
    name : str
        Structure name (for reports).
    mesh : pyvista.PolyData
        Surface in the twin's space, mm.
    colour : tuple of float
        RGB 0..1.
    opacity : float
        0..1.
    layer : str
        One of :data:`LAYERS`.
    """

    name: str
    mesh: pv.PolyData
    colour: tuple[float, float, float]
    opacity: float = 1.0
    layer: str = "organ"

    def __post_init__(self) -> None:
        """Refuse an unknown layer, a bad colour or opacity, an empty mesh."""
        if self.layer not in LAYERS:
            raise VrError(f"mesh {self.name!r}: layer must be one of {LAYERS}, got {self.layer!r}")
        if len(self.colour) != 3 or not all(0.0 <= c <= 1.0 for c in self.colour):
            raise VrError(
                f"mesh {self.name!r}: colour must be 3 numbers in 0..1, got {self.colour}"
            )
        if not 0.0 <= self.opacity <= 1.0:
            raise VrError(f"mesh {self.name!r}: opacity must be in 0..1, got {self.opacity}")
        if not isinstance(self.mesh, pv.PolyData) or self.mesh.n_points == 0:
            raise VrError(f"mesh {self.name!r}: needs a non-empty pyvista.PolyData surface")


@dataclass(frozen=True)
class VrScene:
    """Everything one frame draws.

    Attributes
    ----------
    meshes : tuple of SceneMesh
        The twin's surfaces.
    T_world_twin : numpy.ndarray
        4x4 pose of the twin in the XR world, mm.
    visible_layers : frozenset of str
        Layers drawn (default: all).
    trusted : bool
        The reliability verdict allows the overlay.
    warning : str
        Shown instead of the twin when untrusted (required then).
    text : str
        Status text shown in the quad layer when trusted (may be empty).
    state_received_s : float or None
        ``time.perf_counter()`` when the state behind this scene arrived (for the
        motion-to-photon budget); ``None`` for a static scene.
    """

    meshes: tuple[SceneMesh, ...]
    T_world_twin: np.ndarray = field(default_factory=lambda: np.eye(4))
    visible_layers: frozenset[str] = frozenset(LAYERS)
    trusted: bool = True
    warning: str = ""
    text: str = ""
    state_received_s: float | None = None

    def __post_init__(self) -> None:
        """Check the pose, the layers and that an untrusted scene carries a warning."""
        T = np.asarray(self.T_world_twin, float)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)) or not np.allclose(T[3], [0, 0, 0, 1]):
            raise VrError("T_world_twin must be a finite 4x4 affine transform (last row 0 0 0 1)")
        object.__setattr__(self, "T_world_twin", T)
        unknown = set(self.visible_layers) - set(LAYERS)
        if unknown:
            raise VrError(f"visible_layers: unknown layer(s) {sorted(unknown)}; known: {LAYERS}")
        if not self.trusted and not self.warning.strip():
            raise VrError("an untrusted scene must carry the warning text to show instead")

    def visible_meshes(self) -> tuple[SceneMesh, ...]:
        """The meshes to draw: none when untrusted, else those of the visible layers."""
        if not self.trusted:
            return ()
        return tuple(m for m in self.meshes if m.layer in self.visible_layers)

    def overlay_text(self) -> str:
        """The quad layer's text: the warning when untrusted, else :attr:`text`."""
        return self.warning if not self.trusted else self.text

    def with_pose(self, T_world_twin: np.ndarray) -> VrScene:
        """The same scene with the twin moved."""
        return replace(self, T_world_twin=np.asarray(T_world_twin, float))

    def next_layers(self) -> VrScene:
        """The trigger's action: show the next single layer that has meshes (then all again)."""
        present = [layer for layer in LAYERS if any(m.layer == layer for m in self.meshes)]
        if not present:
            return self
        if self.visible_layers == frozenset(LAYERS) or len(self.visible_layers) != 1:
            return replace(self, visible_layers=frozenset({present[0]}))
        (current,) = self.visible_layers
        index = present.index(current) + 1 if current in present else 0
        if index >= len(present):
            return replace(self, visible_layers=frozenset(LAYERS))
        return replace(self, visible_layers=frozenset({present[index]}))
