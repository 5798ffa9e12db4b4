"""Targets and fiducials placed in the viewer, saved to the case as 3D Slicer markups.

Two markups files, each written in one case transaction (nothing half-written) after every
edit and recorded as a ``markups`` artifact (so ``surgplan export --scene`` carries them):

- ``targets/viewer_targets.mrk.json`` (node ``targets``): points the twin predicts the error
  at (:mod:`surgplan.twin.case_twin` reads every ``targets/*.mrk.json``);
- ``markups/fiducials.mrk.json`` (node ``fiducials``): landmarks for paired-point registration.

Positions are LPS mm (:func:`registration.markups.write_slicer_markups`, ``coordinateSystem``
``"LPS"``). Removing the last point of a kind removes its file and artifact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surgplan.case import Case
from surgplan.viewer.scene import ViewerError

__all__ = ["MARKUP_FILES", "Markup", "MarkupStore"]

#: Kind -> file relative to the case folder.
MARKUP_FILES = {
    "target": "targets/viewer_targets.mrk.json",
    "fiducial": "markups/fiducials.mrk.json",
}
_NODE_NAMES = {"target": "targets", "fiducial": "fiducials"}


@dataclass(frozen=True)
class Markup:
    """One placed point: its kind (``target`` or ``fiducial``), name and LPS position (mm)."""

    kind: str
    name: str
    position_mm: tuple[float, float, float]


class MarkupStore:
    """The case's viewer markups, loaded on open and saved on every change.

    Parameters
    ----------
    case_dir : str or os.PathLike
        The case folder.
    """

    def __init__(self, case_dir: str | os.PathLike[str]) -> None:
        self.case_dir = Path(case_dir)
        self.items: list[Markup] = []
        for kind, rel in MARKUP_FILES.items():
            path = self.case_dir / rel
            if path.is_file():
                self.items.extend(self._read(kind, path))

    @staticmethod
    def _read(kind: str, path: Path) -> list[Markup]:
        from registration.errors import RegistrationError
        from registration.markups import read_slicer_markups

        try:
            points, labels = read_slicer_markups(path)
        except RegistrationError as error:
            raise ViewerError(f"cannot read markups {path}: {error}") from None
        return [Markup(kind, str(n), (float(p[0]), float(p[1]), float(p[2])))
                for p, n in zip(points, labels, strict=True)]  # fmt: skip

    def of_kind(self, kind: str) -> list[Markup]:
        """The points of one kind, in placing order."""
        return [m for m in self.items if m.kind == kind]

    def add(self, kind: str, name: str, position_mm: np.ndarray) -> Markup:
        """Place a point and save; returns it.

        Raises
        ------
        ViewerError
            Unknown kind, empty or duplicate name, or a non-finite position.
        """
        if kind not in MARKUP_FILES:
            raise ViewerError(f"markup kind must be one of {', '.join(MARKUP_FILES)}, got {kind!r}")
        name = name.strip()
        if not name:
            raise ViewerError("a markup needs a name")
        if any(m.name == name and m.kind == kind for m in self.items):
            raise ViewerError(f"a {kind} named {name!r} already exists")
        p = np.asarray(position_mm, float).reshape(3)
        if not np.all(np.isfinite(p)):
            raise ViewerError(f"markup {name!r}: position must be finite mm, got {p.tolist()}")
        item = Markup(kind, name, (float(p[0]), float(p[1]), float(p[2])))
        self.items.append(item)
        self._save(kind)
        return item

    def remove(self, item: Markup) -> None:
        """Remove a placed point and save."""
        self.items.remove(item)
        self._save(item.kind)

    def _save(self, kind: str) -> None:
        from registration.markups import write_slicer_markups

        rel = MARKUP_FILES[kind]
        points = self.of_kind(kind)
        case = Case.open(self.case_dir)
        with case.transaction() as tx:
            key = f"markups/{_NODE_NAMES[kind]}"
            if points:
                write_slicer_markups(
                    tx.path(rel), np.array([m.position_mm for m in points]),
                    [m.name for m in points], name=_NODE_NAMES[kind],
                )  # fmt: skip
                tx.record_artifact("markups", _NODE_NAMES[kind], rel, {"n_points": len(points)})
            else:
                tx.remove(rel)
                tx.manifest.artifacts.pop(key, None)
