"""Starting the viewer: the Qt application, the window, and the live or replay attachment.

``--live HOST:PORT`` and ``--session ID`` hand the window and its plotter to
:func:`surgplan.viewer.live_view.attach_live` / ``attach_replay``; the controller they return
is closed with the window.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from surgplan.viewer.scene import ViewerError

__all__ = ["run_viewer", "attach_follow"]


def attach_follow(
    window: object, case_dir: Path, *, live: tuple[str, int] | None, session: str | None
) -> object | None:
    """Attach the live-follow or replay controller to ``window`` (at most one of them)."""
    if live is None and session is None:
        return None
    try:
        from surgplan.viewer import live_view
    except ImportError as error:
        raise ViewerError(
            f"live/replay view unavailable (surgplan.viewer.live_view): {error}"
        ) from None
    if live is not None:
        controller = live_view.attach_live(window, window.plotter, case_dir, *live)  # type: ignore[attr-defined]
    else:
        controller = live_view.attach_replay(window, window.plotter, case_dir, session)  # type: ignore[attr-defined]
    return window.attach(controller)  # type: ignore[attr-defined]


def run_viewer(
    case_dir: str | os.PathLike[str],
    *,
    live: tuple[str, int] | None = None,
    session: str | None = None,
) -> int:
    """Open the viewer on a case and run the Qt event loop until the window closes.

    Returns
    -------
    int
        The event loop's exit code.

    Raises
    ------
    ViewerError
        No display to open a window on (set ``DISPLAY``, or use ``surgplan snapshot``).
    """
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        if os.environ.get("QT_QPA_PLATFORM") not in ("offscreen", "minimal"):
            raise ViewerError(
                "no display to open the viewer on (DISPLAY is not set); run it under a desktop "
                "or xvfb-run, or render pictures with 'surgplan snapshot'"
            )
    from PySide6.QtWidgets import QApplication

    from surgplan.case import Case
    from surgplan.viewer.window import ViewerWindow

    Case.open(case_dir)  # not a case: a one-line error before any window opens

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = ViewerWindow(case_dir)
    attach_follow(window, Path(case_dir), live=live, session=session)
    window.show()
    return int(app.exec())
