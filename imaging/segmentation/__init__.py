"""Segmentation of CT images into binary masks (``sitkUInt8`` 0/1 on the image grid).

Seeds are LPS physical points in mm; every function raises
:class:`imaging.errors.SegmentationError` on bad input.
"""

from imaging.segmentation.checks import Check, CheckedSegmentation, SegmentationCheckError
from imaging.segmentation.cleanup import (
    component_containing,
    fill_holes,
    largest_component,
    smooth_mask,
)
from imaging.segmentation.metrics import dice
from imaging.segmentation.organ import ORGANS, segment_organ, segment_organ_checked
from imaging.segmentation.presets import PRESETS, segment_preset
from imaging.segmentation.tumour import segment_tumour
from imaging.segmentation.vessels import segment_vessels

__all__ = [
    "ORGANS",
    "Check",
    "CheckedSegmentation",
    "SegmentationCheckError",
    "PRESETS",
    "component_containing",
    "dice",
    "fill_holes",
    "largest_component",
    "segment_organ",
    "segment_organ_checked",
    "segment_preset",
    "segment_tumour",
    "segment_vessels",
    "smooth_mask",
]
