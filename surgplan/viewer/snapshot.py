"""``surgplan snapshot``: the viewer's scene rendered offscreen to a PNG (for reports).

The plotter renders through VTK's EGL window (no display needed; :mod:`surgplan.render`
selects it). With a session and a time, the live-session overlay of that moment is added by
:func:`surgplan.viewer.session_overlay.add_session_state`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surgplan.viewer.scene import ViewerError

__all__ = ["SnapshotResult", "render_snapshot"]

#: Default picture size, pixels.
SNAPSHOT_SIZE = (1000, 800)


@dataclass(frozen=True)
class SnapshotResult:
    """What :func:`render_snapshot` wrote."""

    path: Path
    view: str
    structures: tuple[str, ...]
    size_px: tuple[int, int]
    session: str | None = None
    at_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready summary ``surgplan snapshot --json`` prints."""
        return {
            "path": str(self.path),
            "view": self.view,
            "structures": list(self.structures),
            "size_px": list(self.size_px),
            "session": self.session,
            "at_s": self.at_s,
        }


def _session_overlay() -> Any:
    try:
        from surgplan.viewer.session_overlay import add_session_state
    except ImportError as error:
        raise ViewerError(
            f"--session needs the session overlay (surgplan.viewer.session_overlay): {error}"
        ) from None
    return add_session_state


def render_snapshot(
    case_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    view: str = "anterior",
    structures: Sequence[str] = (),
    session: str | None = None,
    at_s: float | None = None,
    size_px: tuple[int, int] = SNAPSHOT_SIZE,
) -> SnapshotResult:
    """Render the case's structures from ``view`` to the PNG ``out`` (written atomically).

    Parameters
    ----------
    case_dir : str or os.PathLike
        The case folder.
    out : str or os.PathLike
        PNG file to write.
    view : str
        ``anterior``, ``posterior``, ``left``, ``right``, ``superior`` or ``inferior``.
    structures : sequence of str
        Structures to draw (default all with a surface).
    session, at_s : str and float, optional
        A recorded live session and a time in it (s): its state at that moment is drawn too.
    size_px : tuple of int
        Width and height, pixels.

    Raises
    ------
    ViewerError, surgplan.errors.CaseError
        Bad case, structure, view or destination; a session without a time (or vice versa).
    """
    import pyvista as pv

    import surgplan.render  # noqa: F401  (selects VTK's EGL window: no display needed)
    from surgplan.atomic import atomic_path
    from surgplan.case import Case
    from surgplan.export import require_outside_case
    from surgplan.viewer.actors import VIEWS, add_structures, place_camera
    from surgplan.viewer.scene import build_scene

    if view not in VIEWS:
        raise ViewerError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    if (session is None) != (at_s is None):
        raise ViewerError("--session and --at go together (a session and a time in it, s)")
    target = Path(out)
    if target.suffix.lower() != ".png":
        raise ViewerError(f"snapshot output must be a .png file, got {target}")
    if not target.parent.is_dir():
        raise ViewerError(f"cannot write {target}: folder {target.parent} does not exist")
    require_outside_case(Case.open(case_dir), target)  # the next step would collect it
    scene = build_scene(case_dir, structures, with_image=False, allow_empty=session is not None)
    add_state = _session_overlay() if session is not None else None
    plotter = pv.Plotter(off_screen=True, window_size=list(size_px))
    try:
        plotter.set_background("white")
        add_structures(plotter, scene)
        if add_state is not None:
            add_state(plotter, scene.case_dir, session, float(at_s))  # type: ignore[arg-type]
        place_camera(plotter, view)
        with atomic_path(target) as tmp:
            plotter.screenshot(str(tmp))
    finally:
        plotter.close()
    return SnapshotResult(target, view, scene.names, size_px, session, at_s)
