"""What-if retraction with the case's reduced model, precomputed for interactive dragging.

The case's linear reduced model (``rom/linear.npz``, :mod:`surgplan.case_rom`) gives, for a
retractor patch centred at ``c`` on the organ surface and pushed by ``d`` (mm, no gravity
change, no insufflation), the modal amplitudes ``a = d @ C(c)``, ``C(c)`` = the amplitudes of
the three unit pushes (:meth:`biomech.rom.ReducedModel.amplitudes` is exactly linear in ``d``
for a fixed centre). The displacement of any point of the organ is ``a @ M``, with ``M`` the
model's modes there by exact P1 (barycentric) interpolation in the FE volume mesh
(:func:`biomech.rom.modes_at`); vessel and tumour vertices take the organ's field the same way,
so they follow its deformation (vertices just outside the volume mesh take its nearest cell).

Everything except one product is done once: ``M`` per structure when the model is built, and
``G = C(c) @ M`` (3 x 3N) when the handle is put at ``c``; a drag is then ``u = d @ G``.

Between its training patch centres the model interpolates; :attr:`RehearsalModel.
handle_gap_mm` is the handle's distance to the nearest one (in the model's centre space, mm)
and :attr:`~RehearsalModel.extrapolating` says when it exceeds the median spacing of the
centres: the window then says the prediction is an extrapolation.

The push is limited to :data:`MAX_PUSH_MM` (twice the model's typical 10 mm retractor push:
the amplitude statistics were sampled up to there); a longer drag is clipped to it and flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from surgplan.viewer.scene import ViewerError

__all__ = ["MAX_PUSH_MM", "RehearsalFrame", "RehearsalModel"]

#: Longest retractor push the rehearsal applies, mm.
MAX_PUSH_MM = 20.0


@dataclass(frozen=True)
class RehearsalFrame:
    """One evaluated drag.

    Attributes
    ----------
    push_mm : numpy.ndarray
        (3,) retractor push applied (after clipping), mm.
    clipped : bool
        The requested push was longer than :data:`MAX_PUSH_MM`.
    displacement_mm : Mapping[str, numpy.ndarray]
        Structure name -> (N, 3) vertex displacement, mm (float32).
    tumour_shift_mm : float or None
        Length of the tumour's mean vertex displacement (its centroid shift), mm.
    """

    push_mm: np.ndarray
    clipped: bool
    displacement_mm: Mapping[str, np.ndarray]
    tumour_shift_mm: float | None


class RehearsalModel:
    """Precomputed reduced-model response of every structure's vertices.

    Parameters
    ----------
    rom : biomech.rom.ReducedModel
        A volume model (with ``cells``), as ``surgplan rom CASE`` builds it.
    organ : str
        The deformed organ (its surface carries the handle).
    points_mm : Mapping[str, numpy.ndarray]
        Structure name -> (N, 3) vertices, LPS mm (the organ's among them).
    tumour : str, optional
        The structure whose shift is reported.

    Raises
    ------
    ViewerError
        The model has no volume cells, or ``organ`` / ``tumour`` is not among the points.
    """

    def __init__(
        self,
        rom: Any,
        organ: str,
        points_mm: Mapping[str, np.ndarray],
        *,
        tumour: str | None = None,
    ) -> None:
        from biomech.rom import ReducedModelError, modes_at

        if organ not in points_mm or (tumour is not None and tumour not in points_mm):
            raise ViewerError(f"rehearsal needs {organ!r} (and the tumour) among the structures")
        self.rom = rom
        self.organ = organ
        self.tumour = tumour
        self.names = tuple(points_mm)
        self.points_mm = {n: np.asarray(p, float).reshape(-1, 3) for n, p in points_mm.items()}
        sizes = [len(self.points_mm[n]) for n in self.names]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])
        stacked = np.concatenate([self.points_mm[n] for n in self.names])
        try:
            modes = modes_at(rom, stacked)  # (k, N, 3)
        except ReducedModelError as error:
            raise ViewerError(f"rehearsal: {error}") from None
        self._modes = np.ascontiguousarray(modes.reshape(modes.shape[0], -1), np.float32)
        self._gain: np.ndarray | None = None
        self.handle_mm: np.ndarray | None = None
        self.handle_gap_mm = float("nan")
        self.extrapolating = False

    def set_handle(self, centre_mm: np.ndarray) -> np.ndarray:
        """Put the retractor on the organ's surface vertex nearest ``centre_mm``; return it.

        Computes ``G = C(c) @ M`` (module docstring): three amplitude evaluations and one
        (3 x k) by (k x 3N) product.
        """
        from biomech.rom import RomParameters

        organ = self.points_mm[self.organ]
        c = organ[int(np.argmin(np.linalg.norm(organ - np.asarray(centre_mm, float), axis=1)))]
        unit = np.array(
            [self.rom.amplitudes(RomParameters(tuple(c), tuple(e))) for e in np.eye(3)],
            np.float32,
        )  # (3, k)
        self._gain = unit @ self._modes  # (3, 3N)
        self.handle_mm = c.copy()
        self._check_training_gap(c)
        return c.copy()

    def _check_training_gap(self, c: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        centres = np.asarray(self.rom.rbf_centres, float)
        axes, origin = np.asarray(self.rom.plane_axes, float), np.asarray(self.rom.plane_origin)
        if centres.ndim != 2 or centres.shape[1] != axes.shape[0] or len(centres) < 2:
            return
        tree = cKDTree(centres)
        self.handle_gap_mm = float(tree.query(axes @ (c - origin))[0])
        spacing = float(np.median(tree.query(centres, k=2)[0][:, 1]))
        self.extrapolating = self.handle_gap_mm > spacing

    def evaluate(self, push_mm: np.ndarray) -> RehearsalFrame:
        """Displacements of every structure for a retractor push (mm) at the handle.

        Raises
        ------
        ViewerError
            No handle placed yet, or a non-finite push.
        """
        if self._gain is None:
            raise ViewerError("place the retractor handle first (set_handle)")
        d = np.asarray(push_mm, float).reshape(3)
        if not np.all(np.isfinite(d)):
            raise ViewerError(f"retractor push must be finite mm, got {d.tolist()}")
        length = float(np.linalg.norm(d))
        clipped = length > MAX_PUSH_MM
        if clipped:
            d = d * (MAX_PUSH_MM / length)
        u = (d.astype(np.float32) @ self._gain).reshape(-1, 3)
        out = {n: u[self._offsets[i] : self._offsets[i + 1]] for i, n in enumerate(self.names)}
        shift = None
        if self.tumour is not None:
            shift = float(np.linalg.norm(out[self.tumour].mean(axis=0)))
        return RehearsalFrame(d, clipped, out, shift)
