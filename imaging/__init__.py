"""Scans in, structures out.

Read DICOM series and image files (de-identified), segment structures with SimpleITK, turn label
maps into closed surfaces (VTK) and surfaces into tetrahedral meshes (gmsh). Everything is in
patient LPS millimetres; images are ``SimpleITK.Image``, meshes ``pyvista`` datasets.

This package never imports ``surgplan``, ``biomech``, ``registration`` or ``vr``.

Reading scans (:mod:`imaging.dicom`, :mod:`imaging.image_io`, :mod:`imaging.grid`)
    list_series, read_dicom_series, SeriesSummary, DicomVolume    DICOM folders
    load_scan, LoadedScan, read_image_file, write_image           any scan, geometry only
    strip_metadata, image_suffix                                  de-identification, suffixes
    same_grid, require_same_grid, voxel_volume_ml                 grids and voxel volume (mL)

Label maps (:mod:`imaging.labels`, :mod:`imaging.seg_nrrd`, :mod:`imaging.nifti_labels`)
    LabelMap, load_label_map, read_label_image, read_label_names       integer maps and names
    validate_structure_name, structure_name_from_label                structure names
    Segment, write_slicer_segmentation, read_slicer_segmentation      3D Slicer ``.seg.nrrd``
    segments_from_label_map, terminology_for, is_slicer_segmentation, mask_on_grid
    read_label_names_from_nifti, read_label_table_from_nifti, NiftiLabel    TotalSegmentator

Segmentation (:mod:`imaging.segmentation`)
    segment_organ, ORGANS, OrganModel       solid organs from one seed
    segment_tumour, segment_vessels         lesions and contrast vessels from seeds
    segment_preset, PRESETS                 bone and air by HU
    fill_holes, largest_component, component_containing, smooth_mask    clean-up
    dice                                    overlap score

Surfaces (:mod:`imaging.surface`, :mod:`imaging.surface_planarity`, :mod:`imaging.mesh_io`)
    label_to_surface, labels_to_surfaces, array_to_surface    closed surfaces of masks
    structure_surface                                         vessel-aware smoothing
    surface_metrics, SurfaceMetrics, signed_volume_mm3, edge_defects, is_thin_structure
    smooth_for_meshing                                         creases removed before meshing
    largest_planar_patch, PlanarPatch                          flat faces: cut artefacts
    read_surface, write_surface, SURFACE_SUFFIXES             VTP/VTK/STL/OBJ/PLY, atomic

Volume meshes (:mod:`imaging.volume_mesh`, :mod:`imaging.mesh_quality`,
:mod:`imaging.volume_mesh_io`)
    tetrahedralize, VolumeMesh, OUTER_BOUNDARY_ID             gmsh tetrahedra with regions
    MeshQuality, mesh_quality, tet_volumes, dihedral_angles_deg    element quality
    write_volume_mesh, VOLUME_MESH_SUFFIXES                   ``.vtu`` and ``.msh``, atomic

Errors (:mod:`imaging.errors`)
    ImagingError and its subclasses DicomSeriesError, ImageReadError, LabelMapError
    (SlicerSegmentationError, NiftiLabelTableError), SegmentationError, MeshingError
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
from imaging.image_io import (
    LoadedScan,
    image_suffix,
    load_scan,
    read_image_file,
    strip_metadata,
    write_image,
)
from imaging.labels import (
    LabelMap,
    load_label_map,
    read_label_image,
    read_label_names,
    structure_name_from_label,
    validate_structure_name,
)
from imaging.mesh_io import SURFACE_SUFFIXES, read_surface, write_surface
from imaging.mesh_quality import MeshQuality, dihedral_angles_deg, mesh_quality, tet_volumes
from imaging.nifti_labels import (
    NiftiLabel,
    NiftiLabelTableError,
    read_label_names_from_nifti,
    read_label_table_from_nifti,
)
from imaging.seg_nrrd import (
    Segment,
    SlicerSegmentationError,
    is_slicer_segmentation,
    mask_on_grid,
    read_slicer_segmentation,
    segments_from_label_map,
    terminology_for,
    write_slicer_segmentation,
)
from imaging.segmentation import (
    ORGANS,
    PRESETS,
    component_containing,
    dice,
    fill_holes,
    largest_component,
    segment_organ,
    segment_preset,
    segment_tumour,
    segment_vessels,
    smooth_mask,
)
from imaging.segmentation.organ import OrganModel
from imaging.surface import (
    SurfaceMetrics,
    array_to_surface,
    edge_defects,
    is_thin_structure,
    label_to_surface,
    labels_to_surfaces,
    signed_volume_mm3,
    smooth_for_meshing,
    structure_surface,
    surface_metrics,
)
from imaging.surface_planarity import PlanarPatch, largest_planar_patch
from imaging.volume_mesh import OUTER_BOUNDARY_ID, VolumeMesh, tetrahedralize
from imaging.volume_mesh_io import VOLUME_MESH_SUFFIXES, write_volume_mesh

__all__ = [
    "ORGANS",
    "OUTER_BOUNDARY_ID",
    "PRESETS",
    "SURFACE_SUFFIXES",
    "VOLUME_MESH_SUFFIXES",
    "DicomSeriesError",
    "DicomVolume",
    "ImageReadError",
    "ImagingError",
    "LabelMap",
    "LabelMapError",
    "LoadedScan",
    "MeshQuality",
    "MeshingError",
    "NiftiLabel",
    "NiftiLabelTableError",
    "OrganModel",
    "Segment",
    "SegmentationError",
    "SeriesSummary",
    "SlicerSegmentationError",
    "SurfaceMetrics",
    "VolumeMesh",
    "array_to_surface",
    "component_containing",
    "dice",
    "dihedral_angles_deg",
    "edge_defects",
    "largest_planar_patch",
    "PlanarPatch",
    "fill_holes",
    "image_suffix",
    "is_slicer_segmentation",
    "is_thin_structure",
    "label_to_surface",
    "labels_to_surfaces",
    "largest_component",
    "list_series",
    "load_label_map",
    "load_scan",
    "mask_on_grid",
    "mesh_quality",
    "read_dicom_series",
    "read_image_file",
    "read_label_image",
    "read_label_names",
    "read_label_names_from_nifti",
    "read_label_table_from_nifti",
    "read_slicer_segmentation",
    "read_surface",
    "require_same_grid",
    "same_grid",
    "segment_organ",
    "segment_preset",
    "segment_tumour",
    "segment_vessels",
    "segments_from_label_map",
    "signed_volume_mm3",
    "smooth_for_meshing",
    "smooth_mask",
    "strip_metadata",
    "structure_name_from_label",
    "structure_surface",
    "surface_metrics",
    "terminology_for",
    "tet_volumes",
    "tetrahedralize",
    "validate_structure_name",
    "voxel_volume_ml",
    "write_image",
    "write_slicer_segmentation",
    "write_surface",
    "write_volume_mesh",
]
