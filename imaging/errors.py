"""Exceptions raised by ``imaging``.

Every error a user can cause with bad input is a :class:`ImagingError` (or a subclass)
whose message names the offending file, value or field and what was expected.
``surgplan.errors.PROJECT_ERRORS`` gathers the base classes of all five packages.
"""


class ImagingError(Exception):
    """Base class of every ``imaging`` error caused by bad input or an impossible request."""


class ImageReadError(ImagingError):
    """An image file or DICOM folder cannot be read (missing, corrupt, not an image)."""


class DicomSeriesError(ImagingError):
    """A DICOM folder holds no usable series, several series, or an inconsistent one."""


class SegmentationError(ImagingError):
    """A segmentation request cannot be satisfied (seed outside the body, empty result...)."""


class LabelMapError(ImagingError):
    """A label map or its label-name file is invalid, or lacks a requested label."""


class MeshingError(ImagingError):
    """A surface or volume mesh cannot be built from the given input."""
