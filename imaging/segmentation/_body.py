"""The patient's body in a scan: the complement of the outside air (private helper).

The body sets the scale of the volume checks (:mod:`imaging.segmentation.checks`) and tells
tissue from the scanner table and the air around the patient, in CT (HU) and in MR
(arbitrary units) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

#: Below this value an image with values under it is a CT in HU and the voxel is air.
CT_AIR_HU = -500.0
#: In an image without negative values (MR), air lies below this fraction of Otsu's level.
MR_AIR_FRACTION = 0.5
#: Axial cross-section (cm^2) of the adult abdomen the organ volume limits are given for.
REFERENCE_AREA_CM2 = 700.0


@dataclass(frozen=True)
class Body:
    """The body on an image grid.

    Attributes
    ----------
    mask : numpy.ndarray
        Boolean ``(z, y, x)`` array: the largest connected non-air region, axial holes
        (lungs, bowel gas) filled.
    volume_ml : float
        Body volume inside the scan, mL.
    area_cm2 : float
        Mean axial cross-section over the slices the body occupies, cm^2.
    """

    mask: np.ndarray
    volume_ml: float
    area_cm2: float

    @property
    def scale(self) -> float:
        """Volume scale of this body relative to the reference adult: ``(area / ref)^1.5``."""
        return float((self.area_cm2 / REFERENCE_AREA_CM2) ** 1.5)


def air_level(arr: np.ndarray) -> float:
    """Intensity below which a voxel is outside air (``-inf`` when the image has no air).

    A CT (values below :data:`CT_AIR_HU`) uses that HU level; an image with negative values
    but none that low is tissue only (a synthetic CT without air); an image without negative
    values (MR) uses :data:`MR_AIR_FRACTION` of Otsu's level.
    """
    low = float(arr.min())
    if low < CT_AIR_HU:
        return CT_AIR_HU
    if low < 0:
        return -np.inf
    sample = np.ascontiguousarray(arr[:: max(1, arr.shape[0] // 32)], dtype=np.float32)
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.SetInsideValue(0)
    otsu.SetOutsideValue(1)
    otsu.Execute(sitk.GetImageFromArray(sample))
    return MR_AIR_FRACTION * float(otsu.GetThreshold())


def find_body(image: sitk.Image) -> Body:
    """The body of a scan: not outside air, largest 3D piece, axial holes filled.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scan (CT in HU or MR in any unit), spacing in mm.
    """
    arr = sitk.GetArrayViewFromImage(image)
    tissue = arr >= air_level(arr)
    labels, n = ndi.label(tissue)
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        tissue = labels == int(np.argmax(sizes))
    for k in range(tissue.shape[0]):
        if tissue[k].any():
            tissue[k] = ndi.binary_fill_holes(tissue[k])
    sx, sy, sz = image.GetSpacing()
    voxel_ml = sx * sy * sz / 1000.0
    per_slice = tissue.sum(axis=(1, 2))
    occupied = per_slice[per_slice > 0]
    area_cm2 = float(occupied.mean()) * sx * sy / 100.0 if occupied.size else 0.0
    return Body(mask=tissue, volume_ml=float(tissue.sum()) * voxel_ml, area_cm2=area_cm2)


#: Shrink factor of the image N4 estimates the bias field on (the field is smooth).
N4_SHRINK = 2


def n4_corrected(image: sitk.Image, body: np.ndarray) -> sitk.Image:
    """Divide out a smooth multiplicative bias field (N4, estimated inside ``body``).

    Parameters
    ----------
    image : SimpleITK.Image
        MR-like image (non-negative values).
    body : numpy.ndarray
        Boolean ``(z, y, x)`` mask where the field is estimated.
    """
    image = sitk.Cast(image, sitk.sitkFloat32)
    mask = sitk.GetImageFromArray(body.astype(np.uint8))
    mask.CopyInformation(image)
    shrink = [N4_SHRINK if n >= 4 * N4_SHRINK else 1 for n in image.GetSize()]
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([50, 50, 30])
    n4.Execute(sitk.Shrink(image, shrink), sitk.Shrink(mask, shrink))
    field = sitk.Exp(n4.GetLogBiasFieldAsImage(image))
    out = sitk.Divide(image, field)
    out.CopyInformation(image)
    return sitk.Cast(out, sitk.sitkFloat32)
