"""Scans in, structures out.

Read DICOM series and image files (de-identified), segment structures with SimpleITK, turn label
maps into closed surfaces (VTK) and surfaces into tetrahedral meshes (gmsh). Everything is in
patient LPS millimetres; images are ``SimpleITK.Image``, meshes ``pyvista`` datasets.

This package never imports ``surgplan``, ``biomech``, ``registration`` or ``vr``.
"""

from imaging.dicom import DicomVolume, SeriesSummary, list_series, read_dicom_series
from imaging.errors import (
    DicomSeriesError,
    ImageReadError,
    ImagingError,
    LabelMapError,
    MeshingError,
    SegmentationError,
)
from imaging.grid import require_same_grid, same_grid, voxel_volume_ml
from imaging.image_io import LoadedScan, load_scan, read_image_file, strip_metadata, write_image
from imaging.labels import LabelMap, load_label_map, read_label_names
from imaging.mesh_io import read_surface, write_surface
from imaging.segmentation import (
    dice,
    fill_holes,
    largest_component,
    segment_organ,
    segment_preset,
    segment_tumour,
    segment_vessels,
)
from imaging.surface import SurfaceMetrics, label_to_surface, labels_to_surfaces, surface_metrics
from imaging.volume_mesh import MeshQuality, VolumeMesh, tetrahedralize, write_volume_mesh

__all__ = [
    "DicomSeriesError",
    "DicomVolume",
    "ImageReadError",
    "ImagingError",
    "LabelMap",
    "LabelMapError",
    "LoadedScan",
    "MeshQuality",
    "MeshingError",
    "SegmentationError",
    "SeriesSummary",
    "SurfaceMetrics",
    "VolumeMesh",
    "dice",
    "fill_holes",
    "label_to_surface",
    "labels_to_surfaces",
    "largest_component",
    "list_series",
    "load_label_map",
    "load_scan",
    "read_dicom_series",
    "read_image_file",
    "read_label_names",
    "read_surface",
    "require_same_grid",
    "same_grid",
    "segment_organ",
    "segment_preset",
    "segment_tumour",
    "segment_vessels",
    "strip_metadata",
    "surface_metrics",
    "tetrahedralize",
    "voxel_volume_ml",
    "write_image",
    "write_surface",
    "write_volume_mesh",
]
