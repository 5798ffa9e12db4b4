"""A twin from a case folder: its reduced model, organ surface and targets.

:func:`twin_from_case` builds a :class:`~surgplan.twin.Twin` from what ``surgplan import``/
``import-model``, ``surgplan mesh`` and ``surgplan rom CASE`` (no scenario) stored:

- **Reduced model** ``rom/linear.npz``: built on every vertex of the case's volume mesh with
  its tetrahedra (:func:`biomech.rom.modes_at` gives exact P1 modes anywhere in the organ). It
  must belong to the volume mesh the case has now: same vertex and cell counts and the same
  vertex set (:func:`volume_mesh_fingerprint`, a hash of the rounded, sorted vertices), else
  :class:`~surgplan.twin.errors.BasisMismatchError` (re-run ``surgplan rom``).
- **Surface** ``meshes/<structure>.vtp`` (the registration model), modes at its vertices by P1
  interpolation (vertices just outside the volume mesh take the nearest cell).
- **Targets**, in this order: ``tumour_centroid`` (volume centroid of the closed surface of the
  first structure whose name says tumour / tumor / lesion / metastasis); named vessel points,
  ``<vessel>_<i>`` for ``portal_vein`` and ``hepatic_veins`` (:data:`VESSEL_STRUCTURES`):
  :data:`N_VESSEL_POINTS` farthest-point samples of the vessel surface's vertices that lie inside
  the volume mesh and at least :data:`TARGET_DEPTH_MM` below the organ surface (the same rule as
  :mod:`surgplan.virtual_patients`); and the user's targets, the control points of every
  ``targets/*.mrk.json`` 3D Slicer markups file of the case (named by their labels).
- **Prior and model error**: the amplitude prior is zero-mean with standard deviation the RMS
  of each amplitude over the model's sampled training load cases,
  ``sqrt(amplitude_mean^2 + amplitude_std^2)`` (``ReducedModel.amplitude_mean/std``, whose
  loads ``rom.meta["amplitude_statistics"]`` names): a zero-mean Gaussian with the second
  moment the model's own loads produce. The discrepancy and stiffness spread at every target
  are the model's ``meta["discrepancy_mm"]`` and ``meta["stiffness_spread_mm"]`` (per-axis
  standard deviations from held-out full FE solves, :func:`surgplan.case_rom.
  build_default_case_rom`; the discrepancy is the larger of the same-kind held-out and the
  other-physics figure, other stiffness and supports, in models built since that was
  measured). The surface part of the discrepancy, ``meta["surface_discrepancy_mm"]``
  (:func:`surgplan.twin.rom_basis.surface_discrepancy_from_meta`), goes into the basis'
  ``meta`` for the twin's observation model (:mod:`surgplan.twin.noise`).

``Twin.from_case`` is not attached to :class:`~surgplan.twin.Twin` (its module belongs to the
numerics); this module's :func:`twin_from_case` is the entry point.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from surgplan.case_files import read_case_surface, read_case_volume_mesh
from surgplan.twin.basis import DeformationBasis
from surgplan.twin.errors import BasisError, BasisMismatchError, TwinError
from surgplan.twin.twin import Twin

__all__ = [
    "CaseModel",
    "N_VESSEL_POINTS",
    "NoReducedModelError",
    "TARGET_DEPTH_MM",
    "VESSEL_STRUCTURES",
    "case_basis",
    "load_case_model",
    "twin_from_case",
    "volume_mesh_fingerprint",
]

#: Vessel structures whose points become named targets, in this order.
VESSEL_STRUCTURES = ("portal_vein", "hepatic_veins")
#: Named points per vessel and their smallest depth below the organ surface, mm
#: (as :mod:`surgplan.virtual_patients`).
N_VESSEL_POINTS = 4
TARGET_DEPTH_MM = 5.0
#: Words that make a structure the tumour.
LESION_WORDS = ("tumour", "tumor", "lesion", "metastasis")
#: Folder of the case holding user targets (3D Slicer ``.mrk.json``).
TARGETS_DIR = "targets"
#: Largest share of organ-surface vertices allowed off the model's surface.
MAX_OFF_MODEL_FRACTION = 0.02
#: Vertices are rounded to this (mm) before hashing (float32 round trips of the VTU file).
FINGERPRINT_ROUND_MM = 1e-3


class NoReducedModelError(TwinError):
    """The case has no reduced model (``rom/linear.npz``)."""


def volume_mesh_fingerprint(points_mm: ArrayLike) -> str:
    """Hash of a volume mesh's vertex set (order-free): sorted, rounded coordinates.

    Parameters
    ----------
    points_mm : array_like, shape (P, 3)
        The mesh's vertices, mm.

    Returns
    -------
    str
        16 hex digits.
    """
    p = np.round(np.asarray(points_mm, np.float64) / FINGERPRINT_ROUND_MM).astype(np.int64)
    p = p[np.lexsort(p.T[::-1])]
    return hashlib.sha256(np.ascontiguousarray(p).tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class CaseModel:
    """What a case gives the twin: the reduced model, the organ surface and the targets.

    Attributes
    ----------
    case_dir : pathlib.Path
        The case folder.
    structure : str
        The organ (its surface is the registration model).
    rom : biomech.rom.ReducedModel
        The case's reduced model (with volume cells).
    vertices_mm, faces : numpy.ndarray
        The organ surface (V, 3) mm and its triangles (F, 3).
    targets_mm : dict of str to numpy.ndarray
        Target name -> (3,) undeformed position, model space, mm (module docstring order).
    surface_modes : numpy.ndarray
        (k, V, 3) modes at the surface vertices, mm per unit amplitude.
    prior_std : numpy.ndarray
        (k,) amplitude prior standard deviations.
    discrepancy_mm, stiffness_spread_mm : float
        Per-axis standard deviations of the model error at targets, mm.
    surface_discrepancy_mm : float
        Per-axis standard deviation of the model's error on the organ surface, mm (the
        observation model's share of it).
    surface_model : registration.SurfaceModel or None
        The organ surface as :func:`registration.prepare_surface` prepares it (largest piece,
        long edges split: the same geometry); ``vertices_mm`` and ``faces`` are its own, so
        the twin uses it as it is instead of preparing the surface again.
    """

    case_dir: Path
    structure: str
    rom: Any
    vertices_mm: NDArray[np.float64]
    faces: NDArray[np.int64]
    targets_mm: dict[str, NDArray[np.float64]]
    surface_modes: NDArray[np.float64]
    prior_std: NDArray[np.float64]
    discrepancy_mm: float
    stiffness_spread_mm: float
    meta: dict[str, Any] = field(default_factory=dict)
    surface_discrepancy_mm: float = 0.0
    surface_model: Any = None

    def modes_at(self, points_mm: ArrayLike) -> NDArray[np.float64]:
        """(k, N, 3) modes at any model points (exact P1 inside the organ), mm."""
        from biomech.rom import modes_at

        return np.asarray(modes_at(self.rom, np.asarray(points_mm, np.float64)), np.float64)

    def basis(self, targets_mm: dict[str, ArrayLike] | None = None) -> DeformationBasis:
        """The deformation basis on the organ surface, for these targets (default the case's).

        Parameters
        ----------
        targets_mm : dict of str to array_like (3,), optional
            Target name -> undeformed position, model space, mm.
        """
        targets = self.targets_mm if targets_mm is None else targets_mm
        names = tuple(targets)
        pts = np.array([np.asarray(targets[n], np.float64) for n in names]).reshape(-1, 3)
        t_modes = self.modes_at(pts) if len(pts) else np.zeros((len(self.prior_std), 0, 3))
        return DeformationBasis(
            vertices_mm=self.vertices_mm,
            faces=self.faces,
            surface_modes=self.surface_modes,
            prior_std=self.prior_std,
            target_names=names,
            target_points_mm=pts,
            target_modes=t_modes,
            discrepancy_mm=self.discrepancy_mm,
            stiffness_spread_mm=self.stiffness_spread_mm,
            meta={
                "source": "surgplan.twin.case_twin",
                "surface_discrepancy_mm": self.surface_discrepancy_mm,
                **self.meta,
            },
        )


def _tumour_name(names: list[str]) -> str | None:
    for name in names:
        if any(w in name.lower() for w in LESION_WORDS):
            return name
    return None


def _volume_centroid(mesh: Any) -> NDArray[np.float64]:
    """Volume centroid of a closed triangle surface (divergence theorem over its triangles)."""
    tri = np.asarray(mesh.triangulate().regular_faces)
    v = np.asarray(mesh.points, np.float64)
    a, b, c = v[tri[:, 0]], v[tri[:, 1]], v[tri[:, 2]]
    vol6 = np.einsum("ij,ij->i", a, np.cross(b, c))  # 6 x signed tetra volume from the origin
    if abs(vol6.sum()) < 1e-9:
        return v.mean(axis=0)
    return ((a + b + c) * vol6[:, None]).sum(axis=0) / (4.0 * vol6.sum())


def _vessel_points(
    name: str, vessel_mm: NDArray, rom: Any, organ_mm: NDArray
) -> dict[str, NDArray[np.float64]]:
    """Named vessel points inside the organ, at least TARGET_DEPTH_MM below its surface."""
    from scipy.spatial import cKDTree

    from biomech.rom import locate_p1
    from registration import farthest_point_sample

    inside = locate_p1(rom.points_mm, rom.cells, vessel_mm).inside
    depth, _ = cKDTree(organ_mm).query(vessel_mm)
    ok = vessel_mm[inside & (depth >= TARGET_DEPTH_MM)]
    if len(ok) == 0:
        return {}
    idx = farthest_point_sample(ok, min(N_VESSEL_POINTS, len(ok)), start=ok.mean(axis=0))
    return {f"{name}_{i + 1}": ok[j].copy() for i, j in enumerate(idx)}


def _user_targets(case_dir: Path) -> dict[str, NDArray[np.float64]]:
    from registration.markups import read_slicer_markups

    out: dict[str, NDArray[np.float64]] = {}
    for f in sorted((case_dir / TARGETS_DIR).glob("*.mrk.json")):
        pts, labels = read_slicer_markups(f)
        for i, p in enumerate(pts):
            label = labels[i] if i < len(labels) and labels[i] else f"{f.name[:-9]}_{i + 1}"
            out[label if label not in out else f"{label}_{i + 1}"] = np.asarray(p, np.float64)
    return out


def _prior_std(rom: Any) -> NDArray[np.float64]:
    """RMS of the amplitudes over the training load cases (module docstring)."""
    if rom.amplitude_std is None or rom.amplitude_mean is None:
        raise BasisError(
            "the reduced model has no amplitude statistics (built before they were stored); "
            "re-run `surgplan rom CASE`"
        )
    std = np.sqrt(np.asarray(rom.amplitude_mean, float) ** 2 + np.asarray(rom.amplitude_std) ** 2)
    return np.maximum(std, 1e-6 * max(float(std.max()), 1e-12))


def _load_rom(case: Any) -> Any:
    from biomech.rom import load_reduced_model

    path = case.root / "rom" / "linear.npz"
    if "rom/linear" in case.artifacts:
        path = case.file(case.artifacts["rom/linear"].path)
    if not path.is_file():
        raise NoReducedModelError(
            f"case has no reduced model: run surgplan rom {case.root} (no {path})"
        )
    rom = load_reduced_model(path)
    if rom.cells is None:
        raise BasisError(
            f"{path}: the reduced model was built with a scenario on surface points only; the "
            f"twin needs one built on the volume mesh: run surgplan rom {case.root} "
            "(without --scenario)"
        )
    return rom


def _check_same_mesh(case: Any, rom: Any) -> None:
    """Refuse a model whose evaluation points are not the case's current volume mesh."""
    import pyvista as pv

    grid = read_case_volume_mesh(case)
    n_tets = len(grid.cells_dict.get(pv.CellType.TETRA, ()))
    where = f"{case.root / 'rom' / 'linear.npz'}"
    if grid.n_points != len(rom.points_mm) or n_tets != len(rom.cells):
        raise BasisMismatchError(
            f"{where} was built for another mesh: {len(rom.points_mm)} vertices / "
            f"{len(rom.cells)} tetrahedra, the case's volume mesh has {grid.n_points} / "
            f"{n_tets}; re-run surgplan rom {case.root}"
        )
    fp_rom, fp_mesh = volume_mesh_fingerprint(rom.points_mm), volume_mesh_fingerprint(grid.points)
    if fp_rom != fp_mesh:
        raise BasisMismatchError(
            f"{where} was built for another mesh: vertex fingerprint {fp_rom} != the case's "
            f"volume mesh {fp_mesh}; re-run surgplan rom {case.root}"
        )


def _check_same_organ(rom_surface: NDArray, vertices: NDArray, structure: str) -> None:
    """Refuse an organ surface that is not the one the volume mesh was built from.

    The volume mesh's surface is the organ sealed by ``surgplan mesh`` (narrow vessel grooves
    closed), so a few vertices of the imported surface lie deep in a groove; more than
    :data:`MAX_OFF_MODEL_FRACTION` of them farther than :data:`~surgplan.twin.rom_basis.
    MISMATCH_SPACINGS` model point spacings from the model's surface is another organ.
    """
    from scipy.spatial import cKDTree

    from surgplan.twin.rom_basis import MISMATCH_SPACINGS

    tree = cKDTree(rom_surface)
    spacing = float(np.median(tree.query(rom_surface, k=2)[0][:, 1]))
    limit = max(MISMATCH_SPACINGS * spacing, 2.0)
    off = float((tree.query(vertices)[0] > limit).mean())
    if off > MAX_OFF_MODEL_FRACTION:
        raise BasisMismatchError(
            f"the reduced model was built for another mesh: {off:.0%} of the {structure!r} "
            f"surface's vertices lie more than {limit:.1f} mm ({MISMATCH_SPACINGS:g} point "
            f"spacings) from the model's surface (at most {MAX_OFF_MODEL_FRACTION:.0%} may)"
        )


def load_case_model(case_dir: str | os.PathLike[str], *, structure: str = "liver") -> CaseModel:
    """Read and check a case's reduced model, organ surface and targets (module docstring).

    Parameters
    ----------
    case_dir : path
        The case folder.
    structure : str, keyword-only
        The organ whose surface the sensor points lie on.

    Raises
    ------
    NoReducedModelError
        No ``rom/linear.npz``.
    BasisMismatchError
        The model was built for another volume mesh, or on another surface.
    BasisError, surgplan.errors.CaseError
        A model without volume cells or statistics; no such structure or volume mesh.
    """
    root = Path(case_dir).resolve()
    return _load_case_model(str(root), structure, _stamp(root))


def _stamp(root: Path) -> tuple[int, ...]:
    """Modification times of what the model is read from (the cache key)."""
    files = [root / "case.json", root / "rom" / "linear.npz", *sorted(root.glob("meshes/*"))]
    files += sorted((root / TARGETS_DIR).glob("*.mrk.json"))
    return tuple(f.stat().st_mtime_ns if f.exists() else -1 for f in files)


@lru_cache(maxsize=4)
def _load_case_model(case_dir: str, structure: str, stamp: tuple[int, ...]) -> CaseModel:
    del stamp  # part of the cache key only

    from surgplan.case import Case
    from surgplan.errors import CaseError

    case = Case.open(case_dir)
    surfaces = case.manifest.surfaces
    if structure not in surfaces:
        have = ", ".join(sorted(surfaces)) or "none"
        raise CaseError(
            f"case has no surface of {structure!r} (surfaces: {have}); run surgplan mesh"
        )
    rom = _load_rom(case)
    _check_same_mesh(case, rom)
    from registration import prepare_surface

    # The registration model of the organ: a CT case's surface has long edges that
    # prepare_surface splits (same geometry), so the basis lives on the prepared vertices.
    organ = prepare_surface(read_case_surface(case, structure), name=structure)
    v = np.asarray(organ.vertices, np.float64)
    faces = np.asarray(organ.faces, np.int64)
    _check_same_organ(np.asarray(rom.points_mm[: rom.n_surface], float), v, structure)
    from biomech.rom import modes_at

    surface_modes = np.asarray(modes_at(rom, v), np.float64)
    targets: dict[str, NDArray[np.float64]] = {}
    lesion = _tumour_name([n for n in surfaces if n != structure])
    if lesion is not None:
        targets["tumour_centroid"] = _volume_centroid(read_case_surface(case, lesion))
    for name in VESSEL_STRUCTURES:
        if name in surfaces:
            vessel = np.asarray(read_case_surface(case, name).points, np.float64)
            targets |= _vessel_points(name, vessel, rom, v)
    targets |= _user_targets(case.root)
    meta = dict(rom.meta)
    from surgplan.twin.rom_basis import surface_discrepancy_from_meta

    surface_disc, surface_source = surface_discrepancy_from_meta(meta)
    return CaseModel(
        case_dir=case.root,
        structure=structure,
        rom=rom,
        vertices_mm=v,
        faces=faces,
        targets_mm=targets,
        surface_modes=surface_modes,
        prior_std=_prior_std(rom),
        discrepancy_mm=float(meta.get("discrepancy_mm", 0.0)),
        stiffness_spread_mm=float(meta.get("stiffness_spread_mm", 0.0)),
        meta={
            "case": str(case.root),
            "structure": structure,
            "tumour_structure": lesion,
            "n_modes": int(rom.n_modes),
            "volume_mesh_fingerprint": volume_mesh_fingerprint(rom.points_mm),
            "surface_discrepancy_source": surface_source,
        },
        surface_discrepancy_mm=surface_disc,
        surface_model=organ,
    )


def case_basis(
    case_dir: str | os.PathLike[str],
    *,
    structure: str = "liver",
    targets_mm: dict[str, ArrayLike] | None = None,
) -> DeformationBasis:
    """The case's :class:`DeformationBasis` (its targets, or the ones given)."""
    return load_case_model(case_dir, structure=structure).basis(targets_mm)


def twin_from_case(
    case_dir: str | os.PathLike[str],
    *,
    structure: str = "liver",
    mode: Literal["deformable", "rigid"] = "deformable",
    noise_mm: float | ArrayLike = 1.0,
    **twin_options: Any,
) -> Twin:
    """A twin of the case's organ (module docstring: model, surface, targets, prior, error).

    Parameters
    ----------
    case_dir : path
        The case folder (``surgplan rom CASE`` run without a scenario).
    structure : str, keyword-only
        The organ.
    mode : {"deformable", "rigid"}, keyword-only
        As :class:`~surgplan.twin.Twin`.
    noise_mm : float or (3,), keyword-only
        Sensor localisation noise, per-axis standard deviation, mm.
    **twin_options
        Any other keyword of :class:`~surgplan.twin.Twin` (``seed``, ``view_direction``...).

    Returns
    -------
    Twin

    Raises
    ------
    NoReducedModelError, BasisMismatchError, BasisError, surgplan.errors.CaseError
        As :func:`load_case_model`.
    """
    model = load_case_model(case_dir, structure=structure)
    twin_options.setdefault("surface", model.surface_model)
    return Twin(model.basis(), mode=mode, noise_mm=noise_mm, **twin_options)
