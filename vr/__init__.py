"""Display of the twin: per-eye views, the OpenXR frame loop and stereo rendering.

- :mod:`vr.views`: OpenXR-style eye poses and asymmetric fields of view, projection to pixels.
- :mod:`vr.session_state`: the OpenXR session state machine; :mod:`vr.frame_loop`: the one frame
  loop every backend runs (wait, begin, locate views, render each eye, end with layers).
- :mod:`vr.scene`, :mod:`vr.layers`: the scene as plain data (pyvista meshes, colours, 4x4
  transforms, trust flag and warning text); :mod:`vr.render_vtk`, :mod:`vr.render_gl`: renderers.
- :mod:`vr.simulated`: a scripted headset that runs the same loop offscreen;
  :mod:`vr.openxr_backend`: the pyopenxr path (instance and system level so far).

It never imports ``surgplan``, ``imaging``, ``biomech`` or ``registration``.
"""
