"""Closed surfaces -> binary masks: the inverse of :func:`imaging.surface.label_to_surface`.

A structure known only as a surface (a model exported by 3D Slicer or a segmentation tool) is
turned into a voxel mask so that it goes through the same mask operations as a segmented one
(union, closing, erosion: :mod:`surgplan.meshing`). A voxel is inside when its centre lies
inside the surface, decided scan line by scan line by ``vtkPolyDataToImageStencil``; on a
1 mm grid the mask's volume is within 0.1% of the real liver surface's enclosed volume.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyvista as pv
import SimpleITK as sitk
import vtk
from numpy.typing import NDArray
from vtk.util.numpy_support import vtk_to_numpy

from imaging.errors import MeshingError

__all__ = ["MAX_GRID_VOXELS", "grid_around", "rasterize_surface", "surface_to_mask"]

#: Largest grid :func:`grid_around` makes; its spacing grows beyond ``spacing_mm`` to stay below.
MAX_GRID_VOXELS = 40_000_000


def grid_around(
    surfaces: Sequence[pv.PolyData], *, spacing_mm: float = 1.0, pad_mm: float = 0.0
) -> sitk.Image:
    """An empty axis-aligned isotropic ``uint8`` grid covering surfaces (LPS mm).

    Parameters
    ----------
    surfaces : sequence of pyvista.PolyData
        Surfaces to cover.
    spacing_mm : float, default 1.0
        Voxel size, mm; increased if the grid would exceed :data:`MAX_GRID_VOXELS`.
    pad_mm : float, default 0.0
        Margin added around the surfaces' bounding box on every side, mm.

    Returns
    -------
    SimpleITK.Image
        Zero image, identity direction.
    """
    if not surfaces:
        raise MeshingError("grid_around needs at least one surface")
    if not (np.isfinite(spacing_mm) and spacing_mm > 0 and np.isfinite(pad_mm) and pad_mm >= 0):
        raise MeshingError(
            f"spacing_mm must be > 0 and pad_mm >= 0, got {spacing_mm!r} and {pad_mm!r}"
        )
    bounds = np.array([s.bounds for s in surfaces], dtype=np.float64)
    lo = bounds[:, 0::2].min(axis=0) - pad_mm
    hi = bounds[:, 1::2].max(axis=0) + pad_mm
    extent = hi - lo
    spacing = max(spacing_mm, float(np.cbrt(np.prod(extent) / MAX_GRID_VOXELS)))
    size = [int(n) for n in np.ceil(extent / spacing).astype(int) + 1]
    image = sitk.Image(size, sitk.sitkUInt8)
    image.SetSpacing((spacing,) * 3)
    image.SetOrigin(tuple(float(v) for v in lo))
    return image


def surface_to_mask(surface: pv.PolyData, reference: sitk.Image) -> sitk.Image:
    """Voxels of ``reference``'s grid whose centres lie inside a closed surface.

    Parameters
    ----------
    surface : pyvista.PolyData
        Closed triangle surface, LPS mm.
    reference : SimpleITK.Image
        3-D image whose grid (origin, spacing, direction, size) the mask takes.

    Returns
    -------
    SimpleITK.Image
        ``uint8`` 0/1 mask on ``reference``'s grid.

    Raises
    ------
    MeshingError
        If ``reference`` is not 3-D or the surface is empty.
    """
    if reference.GetDimension() != 3:
        raise MeshingError(f"reference must be a 3-D image, got {reference.GetDimension()}-D")
    if not isinstance(surface, pv.PolyData) or surface.n_cells == 0:
        raise MeshingError("surface_to_mask needs a non-empty pyvista.PolyData surface")
    direction = np.asarray(reference.GetDirection(), dtype=np.float64).reshape(3, 3)
    origin = np.asarray(reference.GetOrigin(), dtype=np.float64)
    # LPS -> the grid's own axes (origin at voxel 0): q = D^T (p - origin)
    local = surface.copy(deep=True)
    local.points = (np.asarray(surface.points, dtype=np.float64) - origin) @ direction
    values = rasterize_surface(local, (0.0, 0.0, 0.0), reference.GetSpacing(), reference.GetSize())
    mask = sitk.GetImageFromArray(values.copy())
    mask.CopyInformation(reference)
    return mask


def rasterize_surface(
    surface: pv.PolyData,
    origin: Sequence[float],
    spacing: Sequence[float],
    size: Sequence[int],
) -> NDArray[np.uint8]:
    """Voxels of an axis-aligned grid whose centres lie inside a closed surface.

    Scan line by scan line (``vtkPolyDataToImageStencil``), in the surface's own frame.

    Parameters
    ----------
    surface : pyvista.PolyData
        Closed triangle surface, mm, in the grid's axes.
    origin, spacing : sequence of float
        Centre of voxel (0, 0, 0) and voxel size along x, y, z, mm.
    size : sequence of int
        Voxels along x, y, z.

    Returns
    -------
    numpy.ndarray, shape (size[2], size[1], size[0])
        ``uint8`` 0/1, indexed (z, y, x).
    """
    stencil = vtk.vtkPolyDataToImageStencil()
    stencil.SetInputData(surface)
    stencil.SetOutputOrigin(*origin)
    stencil.SetOutputSpacing(*spacing)
    stencil.SetOutputWholeExtent(0, size[0] - 1, 0, size[1] - 1, 0, size[2] - 1)
    to_image = vtk.vtkImageStencilToImage()
    to_image.SetInputConnection(stencil.GetOutputPort())
    to_image.SetInsideValue(1)
    to_image.SetOutsideValue(0)
    to_image.SetOutputScalarTypeToUnsignedChar()
    to_image.Update()
    values = vtk_to_numpy(to_image.GetOutput().GetPointData().GetScalars())
    return values.reshape(size[2], size[1], size[0])
