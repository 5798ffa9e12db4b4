"""Accuracy studies: a spec file (TOML/YAML) expanded into seeded trials run on Dask.

``load_spec`` parses and validates the file, ``expand_trials`` lists the trials in a fixed order,
``run_study`` runs the missing ones (resuming an interrupted study), writes the table, the summary
and the plots.
"""

from registration.study.runner import StudyOutputs, run_study
from registration.study.spec import StudySpec, StudySpecError, expand_trials, load_spec
from registration.study.trial import run_trial

__all__ = [
    "StudyOutputs",
    "StudySpec",
    "StudySpecError",
    "expand_trials",
    "load_spec",
    "run_study",
    "run_trial",
]
