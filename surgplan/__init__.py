"""surgplan: the patient-specific surgical digital twin and its application.

The case folder (:mod:`surgplan.case`), the steps that fill it (:mod:`surgplan.import_scan`,
:mod:`surgplan.segment`, :mod:`surgplan.meshing`, :mod:`surgplan.export`), the demo, reports and
the command line (:mod:`surgplan.cli`). It builds on ``imaging``, ``biomech``, ``registration``
and ``vr``, which never import it.
"""
