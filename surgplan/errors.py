"""The project's error hierarchy as the application sees it.

The four library packages (``imaging``, ``biomech``, ``registration``, ``vr``) must not import
``surgplan`` or each other (DESIGN.md, dependency star), so each defines its own base error.
:data:`PROJECT_ERRORS` is the tuple of all of them: the CLI turns any of these into a one-line
message and a non-zero exit code, and never shows a traceback for input the user controls.
"""

from biomech.errors import BiomechError
from imaging.errors import ImagingError
from registration.errors import RegistrationError
from vr.errors import VrError


class SurgplanError(Exception):
    """Base class of errors raised by the application layer (case folder, CLI, twin)."""


class CaseError(SurgplanError):
    """A case folder or its manifest is missing, invalid, or cannot hold the request."""


PROJECT_ERRORS: tuple[type[Exception], ...] = (
    SurgplanError,
    ImagingError,
    BiomechError,
    RegistrationError,
    VrError,
)
