"""The twin's structures as binary glTF 2.0 (``.glb``) for web and VR viewers.

One mesh and one node per structure, each with a PBR material in the structure's colour and
opacity. glTF fixes its frame: metres, right-handed, +Y up, +Z forward (the front of an asset
faces +Z, towards a default camera looking down -Z). The project's geometry is patient LPS
millimetres, converted at this file boundary by :func:`lps_mm_to_gltf_m`:

====== ============================= ==========================
glTF   anatomical direction          LPS components
====== ============================= ==========================
+X     patient's left (L)            ( 1,  0,  0)
+Y     superior (S): up              ( 0,  0,  1)
+Z     anterior (A): towards viewer  ( 0, -1,  0)
====== ============================= ==========================

so a viewer's default camera sees the patient from the front, head up, the patient's left on
the viewer's right (the radiological view of a standing patient). The map is a rotation
(``L x S = A`` in LPS: determinant +1, see :data:`GLTF_FROM_LPS`), hence right-handed and
winding-preserving: triangles keep their counter-clockwise front faces, as glTF requires.
The scale is 1/1000 (mm to m).

Colours are given as display (sRGB) values, as 3D Slicer and colour tables hold them; glTF's
``baseColorFactor`` is linear, so they are linearised (:func:`srgb_to_linear`, IEC 61966-2-1)
unless ``colour_space="linear"``. Opacity is the factor's alpha (``alphaMode`` ``BLEND`` where it
is below 1, double-sided so the inside of a see-through organ shows).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pygltflib
import pyvista as pv
from numpy.typing import ArrayLike, NDArray

from surgplan.atomic import atomic_path
from surgplan.errors import SurgplanError

__all__ = [
    "GLTF_FROM_LPS",
    "GltfExportError",
    "GltfStructure",
    "GltfExport",
    "export_gltf",
    "lps_mm_to_gltf_m",
    "srgb_to_linear",
]

#: Rows are the glTF axes X, Y, Z written in LPS components: X = L, Y = S, Z = A = -P.
GLTF_FROM_LPS = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
#: Millimetres per metre.
MM_PER_M = 1000.0

_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_FLOAT = 5126
_UNSIGNED_INT = 5125
_TRIANGLES = 4


class GltfExportError(SurgplanError):
    """A glTF request has no structures, an unusable mesh, colour, opacity or destination."""


@dataclass(frozen=True)
class GltfStructure:
    """One structure as written.

    Attributes
    ----------
    name : str
        Structure (mesh and node) name.
    n_vertices, n_triangles : int
        Vertices and triangles written.
    bounds_min_m, bounds_max_m : tuple of float
        Bounding box in glTF metres (the POSITION accessor's ``min`` and ``max``).
    base_colour : tuple of float
        The material's ``baseColorFactor`` (linear r, g, b and alpha = opacity).
    """

    name: str
    n_vertices: int
    n_triangles: int
    bounds_min_m: tuple[float, float, float]
    bounds_max_m: tuple[float, float, float]
    base_colour: tuple[float, float, float, float]


@dataclass(frozen=True)
class GltfExport:
    """What :func:`export_gltf` wrote.

    Attributes
    ----------
    output : pathlib.Path
        The ``.glb`` file.
    structures : tuple of GltfStructure
        One per mesh, in file order.
    n_bytes : int
        Size of the file.
    """

    output: Path
    structures: tuple[GltfStructure, ...]
    n_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``surgplan export --gltf ... --json``."""
        return {
            "action": "export",
            "kind": "gltf",
            "output": str(self.output),
            "bytes": self.n_bytes,
            "frame": "glTF: metres, +X patient left, +Y superior, +Z anterior",
            "structures": [
                {
                    "name": s.name,
                    "vertices": s.n_vertices,
                    "triangles": s.n_triangles,
                    "bounds_min_m": list(s.bounds_min_m),
                    "bounds_max_m": list(s.bounds_max_m),
                    "base_colour": list(s.base_colour),
                }
                for s in self.structures
            ],
        }


def lps_mm_to_gltf_m(points: ArrayLike) -> NDArray[np.float64]:
    """Convert points from patient LPS millimetres to glTF metres (X = L, Y = S, Z = A).

    ``(x, y, z)_glTF = (x_L, z_S, -y_P) / 1000``: a rotation (determinant +1) and a scale.

    Parameters
    ----------
    points : array_like, shape (..., 3)
        Positions in LPS mm.

    Returns
    -------
    numpy.ndarray, shape (..., 3)
        Positions in glTF metres.
    """
    p = np.asarray(points, dtype=np.float64)
    return (p @ GLTF_FROM_LPS.T) / MM_PER_M


def srgb_to_linear(rgb: ArrayLike) -> NDArray[np.float64]:
    """Linearise sRGB colour components in 0..1 (IEC 61966-2-1 transfer function).

    ``c / 12.92`` for ``c <= 0.04045``, else ``((c + 0.055) / 1.055) ** 2.4``.

    Parameters
    ----------
    rgb : array_like
        sRGB components in 0..1.

    Returns
    -------
    numpy.ndarray
        Linear components in 0..1.
    """
    c = np.asarray(rgb, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def export_gltf(
    out_path: str | os.PathLike[str],
    structures: Mapping[str, pv.PolyData],
    *,
    colours: Mapping[str, Sequence[float]],
    opacities: Mapping[str, float] | None = None,
    colour_space: str = "sRGB",
) -> GltfExport:
    """Write surfaces as a binary glTF (``.glb``), in metres, glTF axes, one node per structure.

    Parameters
    ----------
    out_path
        Destination ending in ``.glb``; its folder must exist. Written atomically.
    structures
        Structure name -> surface in LPS mm (polygons are triangulated; lines and vertices are
        not written).
    colours
        Structure name -> ``(r, g, b)`` in 0..1; every structure needs one.
    opacities
        Structure name -> opacity in 0..1 (1, opaque, where missing).
    colour_space
        ``"sRGB"`` (display colours, linearised for glTF) or ``"linear"`` (written as given).

    Returns
    -------
    GltfExport
        The file, and per structure its counts, bounds in metres and material colour.

    Raises
    ------
    GltfExportError
        No structures; a structure that is not a surface, has no triangles or a non-finite
        point; a missing or out-of-range colour or opacity; a bad destination.
    """
    out = _check_output(out_path)
    if not structures:
        raise GltfExportError(
            "glTF export needs at least one structure with a surface; got none "
            "(does the case have surfaces? build them with `surgplan mesh CASE`)"
        )
    factors = _base_colours(structures, colours, opacities or {}, colour_space)
    gltf = _GltfBuilder()
    written = []
    for name, mesh in structures.items():
        positions, normals, indices = _mesh_arrays(name, mesh)
        written.append(gltf.add_structure(name, positions, normals, indices, factors[name]))
    data = gltf.to_bytes()
    with atomic_path(out) as tmp:
        with open(tmp, "xb") as handle:
            handle.write(data)
    return GltfExport(out, tuple(written), len(data))


def _check_output(out_path: str | os.PathLike[str]) -> Path:
    out = Path(out_path)
    if out.suffix.lower() != ".glb":
        raise GltfExportError(f"glTF output {out} must end in .glb, got {out.suffix!r}")
    if not out.parent.is_dir():
        raise GltfExportError(f"cannot write {out}: folder {out.parent} does not exist")
    return out


def _base_colours(
    structures: Mapping[str, pv.PolyData],
    colours: Mapping[str, Sequence[float]],
    opacities: Mapping[str, float],
    colour_space: str,
) -> dict[str, tuple[float, float, float, float]]:
    """Validated ``baseColorFactor`` (linear RGB, alpha = opacity) per structure."""
    if colour_space not in ("sRGB", "linear"):
        raise GltfExportError(f"colour_space must be 'sRGB' or 'linear', got {colour_space!r}")
    unknown = sorted(set(colours) - set(structures)) + sorted(set(opacities) - set(structures))
    if unknown:
        raise GltfExportError(f"colours/opacities name unknown structures {unknown}")
    factors = {}
    for name in structures:
        if name not in colours:
            raise GltfExportError(f"structure {name!r} has no colour (expected r, g, b in 0..1)")
        try:
            rgb = [float(c) for c in colours[name]]
            alpha = float(opacities.get(name, 1.0))
        except (TypeError, ValueError) as exc:
            raise GltfExportError(f"structure {name!r}: colour/opacity are not numbers") from exc
        if len(rgb) != 3 or not all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in rgb):
            raise GltfExportError(
                f"structure {name!r}: colour must be 3 values in 0..1, got {colours[name]!r}"
            )
        if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
            raise GltfExportError(f"structure {name!r}: opacity must be in 0..1, got {alpha!r}")
        linear = srgb_to_linear(rgb) if colour_space == "sRGB" else np.asarray(rgb)
        factors[name] = (float(linear[0]), float(linear[1]), float(linear[2]), alpha)
    return factors


def _mesh_arrays(
    name: str, mesh: pv.PolyData
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint32]]:
    """Triangles of ``mesh`` as glTF arrays: positions (m), unit normals, uint32 indices."""
    if not isinstance(mesh, pv.PolyData):
        raise GltfExportError(
            f"structure {name!r}: expected a pyvista.PolyData surface, got {type(mesh).__name__}"
        )
    points = np.asarray(mesh.points, dtype=np.float64)
    if points.shape[0] == 0:
        raise GltfExportError(f"structure {name!r}: the surface is empty (0 points)")
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        raise GltfExportError(
            f"structure {name!r}: {int(bad.sum())} non-finite point(s), the first at index "
            f"{int(np.argmax(bad))}: {points[np.argmax(bad)].tolist()}"
        )
    if points.shape[0] >= 2**32:
        raise GltfExportError(f"structure {name!r}: {points.shape[0]} points exceed uint32 indices")
    surface = pv.PolyData(points)  # polygons and strips only: lines and vertices are dropped
    if mesh.n_faces:
        surface.faces = mesh.faces
    if mesh.n_strips:
        surface.strips = mesh.strips
    tri = surface.triangulate()
    faces = np.asarray(tri.faces).reshape(-1, 4)
    if len(faces) == 0:
        raise GltfExportError(f"structure {name!r}: the surface has no triangles (no polygons)")
    indices = faces[:, 1:].astype(np.uint32)
    normals = _point_normals(tri)
    return (
        lps_mm_to_gltf_m(points).astype(np.float32),
        (normals @ GLTF_FROM_LPS.T).astype(np.float32),
        indices,
    )


def _point_normals(tri: pv.PolyData) -> NDArray[np.float64]:
    """Unit point normals from the triangles' own winding (no reordering, no point splitting)."""
    with_normals = tri.compute_normals(
        cell_normals=False,
        point_normals=True,
        split_vertices=False,
        consistent_normals=False,
        auto_orient_normals=False,
    )
    normals = np.asarray(with_normals.point_data["Normals"], dtype=np.float64)
    length = np.linalg.norm(normals, axis=1)
    unused = ~(length > 1e-12)  # points of no triangle, or only of degenerate ones
    normals[unused] = (0.0, 0.0, 1.0)  # any unit vector: glTF requires unit normals
    normals[~unused] /= length[~unused, None]
    return normals


class _GltfBuilder:
    """Accumulates meshes, nodes, materials and one binary buffer."""

    def __init__(self) -> None:
        self.gltf = pygltflib.GLTF2(
            asset=pygltflib.Asset(
                version="2.0",
                generator=f"surgplan {_version()}",
                extras={
                    "units": "m",
                    "axes": "+X patient left, +Y superior, +Z anterior",
                    "converted_from": "LPS mm (surgplan.gltf_export.lps_mm_to_gltf_m)",
                },
            ),
            scene=0,
            scenes=[pygltflib.Scene(nodes=[])],
        )
        self.blob = bytearray()

    def add_structure(
        self,
        name: str,
        positions: NDArray[np.float32],
        normals: NDArray[np.float32],
        indices: NDArray[np.uint32],
        base_colour: tuple[float, float, float, float],
    ) -> GltfStructure:
        g = self.gltf
        lo = [float(v) for v in positions.min(axis=0)]
        hi = [float(v) for v in positions.max(axis=0)]
        i_idx = self._accessor(indices.ravel(), _UNSIGNED_INT, "SCALAR", _ELEMENT_ARRAY_BUFFER)
        i_pos = self._accessor(positions, _FLOAT, "VEC3", _ARRAY_BUFFER, lo, hi)
        i_nrm = self._accessor(normals, _FLOAT, "VEC3", _ARRAY_BUFFER)
        g.materials.append(_material(name, base_colour))
        primitive = pygltflib.Primitive(
            attributes=pygltflib.Attributes(POSITION=i_pos, NORMAL=i_nrm),
            indices=i_idx,
            material=len(g.materials) - 1,
            mode=_TRIANGLES,
        )
        g.meshes.append(pygltflib.Mesh(name=name, primitives=[primitive]))
        g.nodes.append(pygltflib.Node(name=name, mesh=len(g.meshes) - 1))
        g.scenes[0].nodes.append(len(g.nodes) - 1)
        return GltfStructure(
            name,
            len(positions),
            len(indices),
            (lo[0], lo[1], lo[2]),
            (hi[0], hi[1], hi[2]),
            base_colour,
        )

    def _accessor(
        self,
        array: NDArray[Any],
        component_type: int,
        kind: str,
        target: int,
        lo: list[float] | None = None,
        hi: list[float] | None = None,
    ) -> int:
        data = np.ascontiguousarray(array).tobytes()  # little-endian on every supported host
        self.gltf.bufferViews.append(
            pygltflib.BufferView(
                buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target
            )
        )
        self.blob += data  # every component is 4 bytes: views stay 4-byte aligned
        self.gltf.accessors.append(
            pygltflib.Accessor(
                bufferView=len(self.gltf.bufferViews) - 1,
                componentType=component_type,
                count=len(array),
                type=kind,
                min=lo,
                max=hi,
            )
        )
        return len(self.gltf.accessors) - 1

    def to_bytes(self) -> bytes:
        self.gltf.buffers = [pygltflib.Buffer(byteLength=len(self.blob))]
        self.gltf.set_binary_blob(bytes(self.blob))
        return b"".join(self.gltf.save_to_bytes())


def _material(name: str, base_colour: tuple[float, float, float, float]) -> pygltflib.Material:
    see_through = base_colour[3] < 1.0
    return pygltflib.Material(
        name=name,
        pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
            baseColorFactor=list(base_colour), metallicFactor=0.0, roughnessFactor=0.6
        ),
        alphaMode=pygltflib.BLEND if see_through else pygltflib.OPAQUE,
        doubleSided=see_through,
    )


def _version() -> str:
    try:
        return metadata.version("surgplan")
    except metadata.PackageNotFoundError:
        return "unknown"
