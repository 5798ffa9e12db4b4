"""Display of the twin: OpenXR session and stereo rendering (pyopenxr + VTK).

Not built yet: this package holds only its error base (:class:`vr.errors.VrError`) so that the
application's error handling already covers it. It never imports ``surgplan``, ``imaging``,
``biomech`` or ``registration``.
"""
