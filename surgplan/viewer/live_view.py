"""Following a live session and replaying a recorded one in the viewer's Qt window.

:func:`attach_live` follows a ``surgplan live`` server with a
:class:`~surgplan.viewer.live_client.LiveClient`: the client's thread only posts the newest
frame and emits a Qt signal; the slot, on the GUI thread, takes the newest frame, applies it to
a :class:`~surgplan.viewer.twin_overlay.TwinOverlay` and renders (VTK is never touched from the
socket thread; frames that arrive while one is drawn are coalesced). Two permanent widgets in
the window's status bar say where the connection stands (connected, or dropped with the reason
and reconnecting) and what the verdict is (green when trusted, grey-orange with the reason when
not).

:func:`attach_replay` adds a dock with a timeline over a recorded session
(:class:`~surgplan.viewer.replay_timeline.ReplayTimeline`, built off the GUI thread with a
progress bar): a slider (ms), play, pause, step back and forward, a speed choice and the time;
a ``QTimer`` moves the slider while playing.

Both draw in model (CT) space with the case's structures following the twin's deformation
(:mod:`surgplan.viewer.twin_overlay`, :mod:`surgplan.viewer.structure_follow`): the structures
are the plotter's actors named like the case's surfaces. Live, the twin's rest surface is the
case's organ surface prepared as the twin prepares it, read off the GUI thread
(:func:`~surgplan.viewer.structure_follow.rest_organ_from_case`); a replay's frames carry it.

Rendering: one ``render()`` per applied frame, on the GUI thread. While following, the
``QtInteractor``'s periodic auto-update timer is stopped (it re-renders the whole scene five
times a second for nothing; every change here renders explicitly) and restarted on ``close()``.

Both return a controller whose ``close()`` stops everything and removes its widgets and actors
(the window calls it when it closes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from surgplan.viewer.live_client import ConnectionState, LiveClient
from surgplan.viewer.live_frame import LiveFrame
from surgplan.viewer.replay_timeline import (
    SPEEDS,
    ReplayError,
    ReplayTimeline,
    load_session_timeline,
)
from surgplan.viewer.structure_follow import rest_organ_from_case, structure_actors
from surgplan.viewer.twin_overlay import TwinOverlay
from surgplan.viewer.workers import start_job

__all__ = ["LiveController", "ReplayController", "attach_live", "attach_replay"]

_TRUSTED_CSS = "background:#1f7a3a;color:white;padding:2px 6px;font-weight:bold"
_UNTRUSTED_CSS = "background:#777777;color:#ffcc66;padding:2px 6px;font-weight:bold"


def _verdict_css(frame: LiveFrame | None) -> str:
    ok = frame is not None and frame.status == "state" and frame.trustworthy
    return _TRUSTED_CSS if ok else _UNTRUSTED_CSS


class _Bridge(QObject):
    """Signals from the client's thread to the GUI thread (queued: the bridge lives there)."""

    frame_ready = Signal()
    state_changed = Signal(object)


class LiveController:
    """A live session followed in a window (see :func:`attach_live`).

    Attributes
    ----------
    client : LiveClient
        The OpenIGTLink client.
    overlay : TwinOverlay
        The twin's actors.
    connection_label, verdict_label : QLabel
        The status-bar widgets.
    rendered : list of (update, perf_counter s, draw ms, render ms)
        Frames drawn (the last 1,000): when the render returned, how long applying the frame
        and rendering took, and the render alone.
    states : list of ConnectionState
        The connection states shown (the last 100).
    on_rendered : callable, optional
        Called on the GUI thread after each frame is drawn, with the frame.
    rest_error : str or None
        Why the twin's rest surface could not be read (the structures then stay at rest).
    """

    def __init__(
        self,
        window: QMainWindow,
        plotter: Any,
        case_dir: Path,
        host: str,
        port: int,
        *,
        structure: str = "liver",
        rest_organ_mm: Any = None,
        structures: Callable[[], Any] | None = None,
        **client_options: Any,
    ) -> None:
        self._closed = False
        self.window, self.plotter, self.case_dir = window, plotter, Path(case_dir)
        self.rest_error: str | None = None
        self._auto_timer = _pause_auto_update(plotter)
        self.overlay = TwinOverlay(
            plotter,
            prefix="live",
            structures=structures or structure_actors(plotter, self.case_dir),
            rest_organ_mm=rest_organ_mm,
        )
        self._rest_job = None
        if rest_organ_mm is None:
            self._rest_job = start_job(
                lambda progress: rest_organ_from_case(self.case_dir, structure),
                self._rest_loaded,
                self._rest_failed,
            )
        self.rendered: list[tuple[int, float, float, float]] = []
        self.states: list[ConnectionState] = []
        self.on_rendered: Callable[[LiveFrame], None] | None = None
        self.connection_label = QLabel(f"live: connecting to {host}:{port}")
        self.verdict_label = QLabel("twin: waiting for the first update")
        self.verdict_label.setStyleSheet(_UNTRUSTED_CSS)
        bar = window.statusBar()
        bar.addPermanentWidget(self.connection_label)
        bar.addPermanentWidget(self.verdict_label)
        self._bridge = _Bridge(window)
        self._bridge.frame_ready.connect(self._on_frame, Qt.ConnectionType.QueuedConnection)
        self._bridge.state_changed.connect(self._on_state, Qt.ConnectionType.QueuedConnection)
        self.client = LiveClient(
            host,
            port,
            on_frame=self._bridge.frame_ready.emit,
            on_state=self._bridge.state_changed.emit,
            **client_options,
        )
        self.client.start()

    @property
    def status_text(self) -> str:
        """The connection line shown."""
        return self.connection_label.text()

    def _rest_loaded(self, rest: Any) -> None:
        if not self._closed:
            self.overlay.set_rest_organ(rest)

    def _rest_failed(self, reason: str) -> None:
        if not self._closed:
            self.rest_error = reason
            self.overlay.note = f"structures at rest: cannot read the twin's surface: {reason}"

    def _on_state(self, state: ConnectionState) -> None:
        if getattr(self, "_closed", True):
            return
        self.connection_label.setText(state.text())
        self.states.append(state)
        del self.states[:-100]

    def _on_frame(self) -> None:
        if getattr(self, "_closed", True):
            return
        frame = self.client.take()
        if frame is None:  # coalesced: an earlier signal drew it
            return
        t0 = time.perf_counter()
        self.overlay.apply(frame)
        note = self.overlay.note
        self.verdict_label.setText(frame.verdict_text() + (f" | {note}" if note else ""))
        self.verdict_label.setStyleSheet(_verdict_css(frame))
        t_render = time.perf_counter()
        self.plotter.render()  # the one render of this frame
        t1 = time.perf_counter()
        self.rendered.append((frame.update, t1, (t1 - t0) * 1e3, (t1 - t_render) * 1e3))
        del self.rendered[:-1000]
        if self.on_rendered is not None:
            self.on_rendered(frame)

    def close(self) -> None:
        """Stop following; remove the status widgets and the overlay (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.client.on_frame = self.client.on_state = None  # nothing more is queued to us
        self.client.close()
        for signal in (self._bridge.frame_ready, self._bridge.state_changed):
            signal.disconnect()
        bar = self.window.statusBar()
        for w in (self.connection_label, self.verdict_label):
            bar.removeWidget(w)
            w.deleteLater()
        self.overlay.clear()
        _resume_auto_update(self._auto_timer)
        self._bridge.deleteLater()


def _pause_auto_update(plotter: Any) -> Any:
    """Stop a ``QtInteractor``'s auto-update timer if it runs; return it (or ``None``)."""
    timer = getattr(plotter, "render_timer", None)
    if timer is None or not timer.isActive():
        return None
    timer.stop()
    return timer


def _resume_auto_update(timer: Any) -> None:
    if timer is not None:
        try:
            timer.start()
        except RuntimeError:  # the widget (and its timer) is already deleted
            pass


def attach_live(
    window: QMainWindow, plotter: Any, case_dir: Path, host: str, port: int, **options: Any
) -> LiveController:
    """Follow the ``surgplan live`` session at ``host:port`` in ``window``'s ``plotter``.

    Parameters
    ----------
    window : QMainWindow
        The viewer's window (its status bar gets the connection and verdict widgets).
    plotter : pyvistaqt.QtInteractor
        Its 3D view (the overlay is drawn there, in tracker space, mm).
    case_dir : Path
        The case being viewed.
    host, port
        The live server.
    **options
        Keywords of :class:`LiveController`: ``structure`` (the twin's organ, ``"liver"``),
        ``rest_organ_mm`` (the twin's rest surface when known, e.g. a synthetic twin's),
        ``structures`` (a provider of the structure actors to deform), client options.

    Returns
    -------
    LiveController
        ``close()`` it when the window closes.
    """
    return LiveController(window, plotter, case_dir, host, port, **options)


class ReplayController:
    """A recorded session on a timeline dock (see :func:`attach_replay`).

    The session's frames are built off the GUI thread (:func:`surgplan.viewer.workers.start_job`:
    the twin's basis is rebuilt, then one frame per state) while the dock shows a progress bar;
    the controls are enabled once they are ready (:attr:`ready`), or the dock says why the
    session cannot be replayed (:attr:`error`).

    Attributes
    ----------
    timeline : ReplayTimeline or None
        The frames and the playback state (``None`` while loading or after a failure).
    overlay : TwinOverlay
        The twin's actors.
    dock : QDockWidget
        The timeline dock: ``slider``, ``play_button``, ``pause_button``, ``back_button``,
        ``step_button``, ``speed_box``, ``time_label``, ``progress``.
    timer : QTimer
        Moves the position while playing.
    error : str or None
        Why loading failed.
    """

    def __init__(
        self,
        window: QMainWindow,
        plotter: Any,
        case_dir: Path,
        session_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        tick_ms: int = 33,
    ) -> None:
        from surgplan.live.log import SessionLog, session_path

        SessionLog.open(session_path(case_dir, session_id)).close()  # no such session: raise now
        self.window, self.plotter = window, plotter
        self.session_id = session_id
        self.timeline: ReplayTimeline | None = None
        self.error: str | None = None
        self.overlay = TwinOverlay(
            plotter, prefix="replay", structures=structure_actors(plotter, case_dir)
        )
        self._shown: int | None = None
        self._build_dock()
        self.timer = QTimer(self.dock)
        self.timer.setInterval(int(tick_ms))
        self.timer.timeout.connect(self.refresh)
        self._set_controls(False)
        self.time_label.setText(f"loading session {session_id}...")
        self._job = start_job(
            lambda progress: load_session_timeline(
                case_dir, session_id, clock=clock, progress=progress
            ),
            self._loaded,
            self._failed,
            self._progress,
        )

    @property
    def ready(self) -> bool:
        """Whether the frames are loaded and the controls enabled."""
        return self.timeline is not None

    def _set_controls(self, on: bool) -> None:
        for w in (
            self.slider,
            self.back_button,
            self.play_button,
            self.pause_button,
            self.step_button,
            self.speed_box,
        ):
            w.setEnabled(on)

    def _progress(self, done: int, total: int) -> None:
        if self.dock is not None:
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)

    def _loaded(self, timeline: ReplayTimeline) -> None:
        if self.dock is None:  # closed while loading
            return
        self.timeline = timeline
        self.slider.setRange(0, int(round(timeline.duration_s * 1000)))
        self.progress.hide()
        self._set_controls(True)
        self.set_speed(float(self.speed_box.currentData()))
        self.seek(timeline.times[0])

    def _failed(self, reason: str) -> None:
        if self.dock is None:
            return
        self.error = reason
        self.progress.hide()
        self.time_label.setText(f"cannot replay session {self.session_id}: {reason}")
        self.time_label.setStyleSheet("color:#b00000")

    def _build_dock(self) -> None:
        self.dock = QDockWidget(f"Session {self.session_id}", self.window)
        self.dock.setObjectName("replay_timeline")
        body = QWidget()
        col = QVBoxLayout(body)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self._slider_moved)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy until the first progress report
        row = QHBoxLayout()
        self.back_button = QPushButton("|<")
        self.play_button = QPushButton("Play")
        self.pause_button = QPushButton("Pause")
        self.step_button = QPushButton(">|")
        self.speed_box = QComboBox()
        for s in SPEEDS:
            self.speed_box.addItem(f"{s:g}x", s)
        self.speed_box.setCurrentIndex(SPEEDS.index(1.0))
        self.time_label = QLabel()
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.step_button.clicked.connect(lambda: self.step(1))
        self.play_button.clicked.connect(self.play)
        self.pause_button.clicked.connect(self.pause)
        self.speed_box.currentIndexChanged.connect(
            lambda i: self.set_speed(float(self.speed_box.itemData(i)))
        )
        for w in (self.back_button, self.play_button, self.pause_button, self.step_button):
            row.addWidget(w)
        row.addWidget(QLabel("speed"))
        row.addWidget(self.speed_box)
        row.addWidget(self.time_label, 1)
        col.addWidget(self.progress)
        col.addWidget(self.slider)
        col.addLayout(row)
        self.dock.setWidget(body)
        self.window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.show()

    # --- actions ----------------------------------------------------------------------------

    def _require(self) -> ReplayTimeline:
        if self.timeline is None:
            raise ReplayError(
                f"session {self.session_id} is not loaded"
                + (f": {self.error}" if self.error else "")
            )
        return self.timeline

    def seek(self, t_s: float) -> None:
        """Show the session at ``t_s`` s since its start."""
        self._require().seek(t_s)
        self.refresh()

    def play(self) -> None:
        """Play from the current position."""
        self._require().play()
        self.timer.start()
        self.refresh()

    def pause(self) -> None:
        """Pause."""
        self._require().pause()
        self.timer.stop()
        self.refresh()

    def step(self, n: int) -> None:
        """Pause and show the ``n``-th next frame (negative: previous)."""
        self._require().step(n)
        self.timer.stop()
        self.refresh()

    def set_speed(self, speed: float) -> None:
        """Playback rate (1: real time)."""
        self._require().set_speed(speed)
        i = self.speed_box.findData(speed)
        if i >= 0 and i != self.speed_box.currentIndex():
            self.speed_box.blockSignals(True)
            self.speed_box.setCurrentIndex(i)
            self.speed_box.blockSignals(False)

    def _slider_moved(self, value: int) -> None:
        if self.timeline is None:
            return
        self.timeline.seek(value / 1000.0)
        self.refresh()

    def refresh(self) -> None:
        """Move the slider to the position and draw its frame if it changed."""
        if self.timeline is None:
            return
        pos = self.timeline.position_s
        self.slider.blockSignals(True)
        self.slider.setValue(int(round(pos * 1000)))
        self.slider.blockSignals(False)
        i = self.timeline.index_at(pos)
        self.time_label.setText(
            f"{pos:.2f} / {self.timeline.duration_s:.2f} s"
            + ("" if i is None else f"  update {self.timeline.frames[i].update}")
        )
        if not self.timeline.playing:
            self.timer.stop()
        if i is not None and i != self._shown:
            self._shown = i
            self.overlay.apply(self.timeline.frames[i])
            self.plotter.render()

    @property
    def shown(self) -> LiveFrame | None:
        """The frame drawn."""
        if self._shown is None or self.timeline is None:
            return None
        return self.timeline.frames[self._shown]

    def close(self) -> None:
        """Stop playback; remove the dock and the overlay (idempotent)."""
        if self.dock is None:
            return
        self.timer.stop()
        self.window.removeDockWidget(self.dock)
        self.dock.deleteLater()
        self.dock = None  # type: ignore[assignment]
        self.overlay.clear()


def attach_replay(
    window: QMainWindow, plotter: Any, case_dir: Path, session_id: str
) -> ReplayController:
    """Replay session ``session_id`` of the case on a timeline dock in ``window``.

    Parameters
    ----------
    window : QMainWindow
        The viewer's window (it gets the dock).
    plotter : pyvistaqt.QtInteractor
        Its 3D view.
    case_dir : Path
        The case holding the session.
    session_id : str
        The session (``surgplan sessions CASE``).

    Raises
    ------
    SessionLogError
        No such session, or not a session log (at once). A session that cannot be replayed
        (no states, a twin that no longer fits) is reported in the dock (``controller.error``).
    """
    return ReplayController(window, plotter, Path(os.fspath(case_dir)), session_id)
