"""The viewer's scene as plain data (no Qt): surfaces in their colours, the scan and its labels.

:func:`build_scene` reads a case (:meth:`surgplan.case.Case.open`) into a :class:`Scene` that the
offscreen snapshot, the desktop window and (later) the VR overlay all draw from:

- one :class:`SceneStructure` per surface (``meshes/<name>.vtp``, LPS mm) with the colour and
  opacity of :func:`surgplan.export.display_style` (the segment colour of the case's 3D Slicer
  segmentation, the opacities of :data:`surgplan.render.STYLE`), and its 4x4 pose
  ``T_world_structure`` (identity: the case's LPS space is the world);
- the scan (``images/scan.nrrd``) and the structures' label maps reoriented to LPS axes
  (:func:`SimpleITK.DICOMOrient`) as numpy arrays indexed ``[k, j, i]`` (z, y, x), with one
  integer label volume whose value ``n`` is structure ``label_names[n - 1]``. A case built from
  surface models only (``surgplan import-model``) has no scan: ``image`` is ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyvista as pv
import SimpleITK as sitk

from surgplan.case import Case
from surgplan.errors import CaseError

__all__ = ["SceneImage", "SceneStructure", "Scene", "build_scene", "ViewerError"]

#: Structures drawn last in the label overlay (small ones on top of the organ).
_OVERLAY_LAST = ("tumour", "portal_vein", "hepatic_veins", "vessels")


class ViewerError(CaseError):
    """The viewer cannot show the request (missing scan, structure, file or view)."""


@dataclass(frozen=True)
class SceneStructure:
    """One structure's surface and display style.

    Attributes
    ----------
    name : str
        Structure name.
    mesh : pyvista.PolyData
        Closed surface, LPS mm.
    colour : tuple of float
        Display RGB in 0..1 (sRGB).
    opacity : float
        0..1.
    T_world_structure : numpy.ndarray
        4x4 pose of the surface in the world (LPS mm).
    """

    name: str
    mesh: pv.PolyData
    colour: tuple[float, float, float]
    opacity: float
    T_world_structure: np.ndarray = field(default_factory=lambda: np.eye(4))


@dataclass(frozen=True)
class SceneImage:
    """The scan and label maps on LPS-aligned axes.

    Attributes
    ----------
    ct : numpy.ndarray
        (nz, ny, nx) intensities (HU for CT), float32.
    labels : numpy.ndarray
        (nz, ny, nx) uint16: 0 background, ``n`` structure ``label_names[n - 1]``.
    label_names : tuple of str
        Structure of each label value.
    label_colours : numpy.ndarray
        (len(label_names), 3) uint8 display colours.
    origin_mm, spacing_mm : numpy.ndarray
        (3,) LPS position of voxel (0, 0, 0) and voxel size (x, y, z), mm.
    """

    ct: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    label_colours: np.ndarray
    origin_mm: np.ndarray
    spacing_mm: np.ndarray

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        """Number of voxels along x, y, z."""
        nz, ny, nx = self.ct.shape
        return nx, ny, nz

    def index_to_lps(self, ijk: Sequence[float]) -> np.ndarray:
        """LPS position (mm) of a continuous voxel index (i, j, k)."""
        return self.origin_mm + np.asarray(ijk, float) * self.spacing_mm

    def lps_to_index(self, point_mm: Sequence[float]) -> np.ndarray:
        """Nearest voxel index (i, j, k) of an LPS point, clipped to the grid."""
        ijk = np.rint((np.asarray(point_mm, float) - self.origin_mm) / self.spacing_mm)
        return np.clip(ijk, 0, np.array(self.shape_xyz) - 1).astype(int)

    def bounds_mm(self) -> np.ndarray:
        """(3, 2) LPS extent of the voxel centres, mm."""
        lo = self.origin_mm
        hi = self.index_to_lps(np.array(self.shape_xyz) - 1)
        return np.stack([lo, hi], axis=1)


@dataclass(frozen=True)
class Scene:
    """A case ready to draw: its structures and (if it has one) its scan.

    Attributes
    ----------
    case_dir : pathlib.Path
        The case folder.
    structures : tuple of SceneStructure
        In the manifest's order of surfaces.
    image : SceneImage or None
        The scan with its label maps; ``None`` for a case without a scan.
    """

    case_dir: Path
    structures: tuple[SceneStructure, ...]
    image: SceneImage | None

    def structure(self, name: str) -> SceneStructure:
        """The structure called ``name``.

        Raises
        ------
        ViewerError
            If the scene has no such structure (the message lists those it has).
        """
        for s in self.structures:
            if s.name == name:
                return s
        have = ", ".join(s.name for s in self.structures) or "none"
        raise ViewerError(f"the scene has no structure {name!r} (structures: {have})")

    @property
    def names(self) -> tuple[str, ...]:
        """Structure names in drawing order."""
        return tuple(s.name for s in self.structures)


def _read_lps(path: Path, pixel: int) -> sitk.Image:
    if not path.is_file():
        raise ViewerError(f"case file missing: {path}")
    try:
        image = sitk.ReadImage(str(path), pixel)
    except RuntimeError as error:
        raise ViewerError(f"cannot read {path}: {str(error).strip().splitlines()[-1]}") from None
    return sitk.DICOMOrient(image, "LPS")


def _check_axis_aligned(image: sitk.Image, path: Path) -> None:
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    if not np.allclose(direction, np.eye(3), atol=1e-4):
        raise ViewerError(
            f"{path}: oblique scan (direction {np.round(direction, 3).tolist()}); "
            "the slice views need axis-aligned voxels"
        )


def _scene_image(case: Case, names: Sequence[str]) -> SceneImage | None:
    """The scan and the label maps of ``names`` (those with one), or ``None`` without a scan."""
    from surgplan.export import display_style

    if case.manifest.image is None:
        return None
    scan_path = case.file(case.manifest.image.path)
    scan = _read_lps(scan_path, sitk.sitkFloat32)
    _check_axis_aligned(scan, scan_path)
    ct = sitk.GetArrayFromImage(scan)
    labelled = [n for n in names if n in case.manifest.structures]
    labelled.sort(key=lambda n: n in _OVERLAY_LAST)  # small structures painted last
    labels = np.zeros(ct.shape, np.uint16)
    for value, name in enumerate(labelled, start=1):
        path = case.file(case.manifest.structures[name].label_path)
        mask = sitk.GetArrayFromImage(_read_lps(path, sitk.sitkUInt8))
        if mask.shape != ct.shape:
            raise ViewerError(f"{path}: label grid {mask.shape} differs from the scan {ct.shape}")
        labels[mask > 0] = value
    colours = np.array(
        [np.rint(np.asarray(display_style(case, n)[0]) * 255) for n in labelled], np.uint8
    ).reshape(-1, 3)
    return SceneImage(
        ct=ct.astype(np.float32, copy=False),
        labels=labels,
        label_names=tuple(labelled),
        label_colours=colours,
        origin_mm=np.asarray(scan.GetOrigin(), float),
        spacing_mm=np.asarray(scan.GetSpacing(), float),
    )


def build_scene(
    case_dir: str | os.PathLike[str],
    structures: Sequence[str] = (),
    *,
    with_image: bool = True,
    allow_empty: bool = False,
) -> Scene:
    """Read a case into a :class:`Scene`.

    Parameters
    ----------
    case_dir : str or os.PathLike
        The case folder.
    structures : sequence of str
        Structures to include (default: every structure with a surface).
    with_image : bool
        Read the scan and label maps too (the snapshot does not need them).
    allow_empty : bool
        Accept a case without surfaces (an empty scene; e.g. a session's twin is drawn).

    Returns
    -------
    Scene

    Raises
    ------
    ViewerError, surgplan.errors.CaseError
        Not a case, no surfaces, an unknown structure, or a missing or unreadable file.
    """
    from imaging.errors import ImagingError
    from imaging.mesh_io import read_surface
    from surgplan.export import display_style

    case = Case.open(case_dir)
    surfaces = case.manifest.surfaces
    if not surfaces and not allow_empty:
        raise ViewerError(f"case {case.root} has no surfaces; run 'surgplan mesh CASE' first")
    unknown = [n for n in structures if n not in surfaces]
    if unknown:
        raise ViewerError(
            f"structure(s) {', '.join(unknown)} have no surface in {case.root} "
            f"(surfaces: {', '.join(surfaces)})"
        )
    names = list(dict.fromkeys(structures)) or list(surfaces)
    items = []
    for name in names:
        path = case.file(surfaces[name].path)
        if not path.is_file():
            raise ViewerError(f"case file missing: {path} (surface of {name!r})")
        try:
            mesh = read_surface(path)
        except (ImagingError, OSError, ValueError) as error:
            raise ViewerError(f"cannot read {path}: {error}") from None
        colour, opacity = display_style(case, name)
        items.append(SceneStructure(name, mesh, colour, float(opacity)))
    image = _scene_image(case, names) if with_image else None
    return Scene(case_dir=case.root, structures=tuple(items), image=image)
