"""Threshold presets that need no seed: bone and internal air (lungs, bowel gas)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from imaging.errors import SegmentationError
from imaging.segmentation.cleanup import fill_holes
from imaging.segmentation.organ import _check_image

#: Bone threshold (HU): cortical and dense cancellous bone lie above it.
BONE_MIN_HU = 220.0
#: Hysteresis level (HU): on a coarse grid, voxels above it connected to ones above
#: ``BONE_MIN_HU`` are bone too (cancellous bone and thin ribs that partial volume in large
#: voxels brings below 220 HU: a quarter of the labelled bone is found without it at 3 mm).
BONE_LOW_HU = 110.0
#: Voxel volume (mm^3) from which the hysteresis applies (3 mm voxels: 27 mm^3); on finer
#: grids bone keeps its HU and the lower level would only add the blurred rim around it.
COARSE_VOXEL_MM3 = 10.0
#: Air threshold (HU): lung parenchyma and bowel gas lie below it.
AIR_MAX_HU = -400.0
#: Connected pieces smaller than this (mm^3) are dropped as noise.
MIN_PIECE_MM3 = 50.0

#: Names accepted by :func:`segment_preset`.
PRESETS: tuple[str, ...] = ("air", "bone")


def _drop_small(mask: np.ndarray, voxel_mm3: float) -> np.ndarray:
    labels, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes * voxel_mm3 >= MIN_PIECE_MM3
    keep[0] = False
    return keep[labels]


def _bone(arr: np.ndarray, voxel_mm3: float) -> np.ndarray:
    """Above ``BONE_MIN_HU``; on coarse grids, pieces above ``BONE_LOW_HU`` holding such voxels."""
    if voxel_mm3 < COARSE_VOXEL_MM3:
        return _drop_small(arr > BONE_MIN_HU, voxel_mm3)
    labels, n = ndi.label(arr > BONE_LOW_HU)
    if n == 0:
        return np.zeros(arr.shape, bool)
    cores = np.unique(labels[arr > BONE_MIN_HU])
    return _drop_small(np.isin(labels, cores[cores > 0]), voxel_mm3)


def _air(arr: np.ndarray, voxel_mm3: float) -> np.ndarray:
    air = arr < AIR_MAX_HU
    # label air in each axial slice; pieces touching the in-plane border are outside air
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndi.generate_binary_structure(2, 1)
    labels, n = ndi.label(air, structure=in_plane)
    if n:
        border = np.unique(
            np.concatenate(
                [
                    labels[:, 0, :].ravel(),
                    labels[:, -1, :].ravel(),
                    labels[:, :, 0].ravel(),
                    labels[:, :, -1].ravel(),
                ]
            )
        )
        air &= ~np.isin(labels, border[border > 0])
    return _drop_small(air, voxel_mm3)


def segment_preset(image: sitk.Image, name: str) -> sitk.Image:
    """Segment a structure class by a fixed HU rule.

    Parameters
    ----------
    image : SimpleITK.Image
        3D CT in HU, LPS physical space (mm).
    name : str
        ``"bone"`` (> ``BONE_MIN_HU``; on grids of ``COARSE_VOXEL_MM3`` or coarser, >
        ``BONE_LOW_HU`` and connected to > ``BONE_MIN_HU``; marrow enclosed by cortex filled,
        specks below
        ``MIN_PIECE_MM3`` removed) or ``"air"`` (< ``AIR_MAX_HU`` inside the body: lungs and
        bowel gas, without the outside air connected to the in-plane image border).

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 mask on the grid of ``image``.

    Raises
    ------
    SegmentationError
        If ``name`` is not one of :data:`PRESETS`.
    """
    if name not in PRESETS:
        raise SegmentationError(f"unknown preset {name!r}; expected one of {list(PRESETS)}")
    _check_image(image)
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    voxel_mm3 = float(np.prod(image.GetSpacing()))
    result = _bone(arr, voxel_mm3) if name == "bone" else _air(arr, voxel_mm3)
    out = sitk.GetImageFromArray(result.astype(np.uint8))
    out.CopyInformation(image)
    if name == "bone":
        out = fill_holes(out, slice_wise=True)
    return out
