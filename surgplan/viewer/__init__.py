"""The desktop viewer: the case in a Qt window, rehearsal, and the live session's twin.

Live and replay (Qt-free parts): :mod:`~surgplan.viewer.live_frame`,
:mod:`~surgplan.viewer.live_client`, :mod:`~surgplan.viewer.replay_timeline`; drawing:
:mod:`~surgplan.viewer.twin_overlay`, :mod:`~surgplan.viewer.session_overlay`; Qt:
:mod:`~surgplan.viewer.live_view`.
"""
