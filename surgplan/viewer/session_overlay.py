"""A recorded session's twin at one moment in a plotter: ``surgplan snapshot --session --at``.

:func:`add_session_state` draws, with :class:`~surgplan.viewer.twin_overlay.TwinOverlay`, the
last twin state logged at or before ``at_s`` seconds into the session
(:func:`surgplan.viewer.replay_timeline.logged_frame`): the organ as the surgeon saw it then,
the targets' predicted-error spheres, the recommended region and the verdict, in model (CT)
space with the structures already in the plotter (actors named like the case's surfaces)
deformed with the twin (:mod:`surgplan.viewer.twin_overlay`). Works with any plotter,
offscreen included.
"""

from __future__ import annotations

import os

import pyvista as pv

from surgplan.viewer.replay_timeline import logged_frame
from surgplan.viewer.structure_follow import structure_actors
from surgplan.viewer.twin_overlay import TwinOverlay

__all__ = ["add_session_state"]


def add_session_state(
    plotter: pv.Plotter, case_dir: str | os.PathLike[str], session_id: str, at_s: float
) -> None:
    """Add the twin of session ``session_id`` at ``at_s`` s since its start to ``plotter``.

    Parameters
    ----------
    plotter : pyvista.Plotter
        Where to draw (the camera is set to frame the organ).
    case_dir : path
        The case holding the session.
    session_id : str
        The session (``surgplan sessions CASE``).
    at_s : float
        Seconds since the session's first message; the last state logged by then is drawn.

    Raises
    ------
    SessionGltfError
        A negative or non-finite time, a session without states, a time before its first.
    SessionLogError
        No such session.
    ReplayError
        A session whose states no longer fit the case's twin.
    """
    frame = logged_frame(case_dir, session_id, at_s)
    overlay = TwinOverlay(plotter, prefix="session", structures=structure_actors(plotter, case_dir))
    overlay.apply(frame)
