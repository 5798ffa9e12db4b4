"""Benchmark: ``label_to_surface`` against scikit-image marching cubes + the same post-processing.

A deterministic liver-like blob (union of three ellipsoids with a low-frequency bump) is built
on a 512 x 512 x 300 grid of 0.8 x 0.8 x 1.0 mm voxels with an LPS-style direction matrix.
Both pipelines produce a smoothed (windowed sinc, 20 iterations, pass band 0.05) and decimated
(quadric, 50,000 triangles) surface, checked closed and manifold. The peer is the usual route:
``skimage.measure.marching_cubes`` at level 0.5 on the whole scan, then VTK's windowed sinc and
VTK's volume-preserving quadric decimation of the full surface. surgplan crops to the
structure's bounding box, contours with VTK's discrete flying edges, and decimates with
fast-simplification to twice the target before VTK's last halving. The volume error is against
the voxel-count volume.  Prints one JSON object.

Run: ``nice .venv/bin/python benchmarks/surface_extraction.py``
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyvista as pv
import SimpleITK as sitk
from skimage.measure import marching_cubes

from imaging.surface import (
    DEFAULT_MAX_TRIANGLES,
    _quadric_decimation,  # VTK's volume-preserving quadric decimation: the usual route
    _windowed_sinc,  # the smoothing label_to_surface uses
    label_to_surface,
    surface_metrics,
)

SHAPE_ZYX = (300, 512, 512)
SPACING_XYZ = (0.8, 0.8, 1.0)
DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def liver_like_label_map() -> sitk.Image:
    """Deterministic liver-like blob, label 5, about 3.2 L."""
    nz, ny, nx = SHAPE_ZYX
    labels = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    y = (np.arange(ny)[:, None] * SPACING_XYZ[1]).astype(np.float32)
    x = (np.arange(nx)[None, :] * SPACING_XYZ[0]).astype(np.float32)
    lobes = (  # centre (x, y, z) mm, semi-axes (x, y, z) mm
        ((190.0, 200.0, 150.0), (110.0, 80.0, 70.0)),
        ((270.0, 210.0, 130.0), (70.0, 60.0, 55.0)),
        ((140.0, 230.0, 175.0), (60.0, 55.0, 45.0)),
    )
    for k in range(nz):
        z = k * SPACING_XYZ[2]
        bump = 1.0 + 0.08 * np.sin(x / 23.0) * np.cos(y / 31.0 + z / 19.0)
        inside = np.zeros((ny, nx), dtype=bool)
        for (cx, cy, cz), (ax, ay, az) in lobes:
            r2 = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2
            inside |= r2 <= bump
        labels[k][inside] = 5
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(SPACING_XYZ)
    image.SetDirection(DIRECTION)
    image.SetOrigin((200.0, 150.0, -300.0))
    return image


def skimage_peer(image: sitk.Image, label: int) -> pv.PolyData:
    """Marching cubes (scikit-image) + the same smoothing and decimation, mapped to LPS."""
    binary = np.pad((sitk.GetArrayViewFromImage(image) == label).astype(np.uint8), 1)
    spacing = np.asarray(image.GetSpacing())
    verts_zyx, faces, _, _ = marching_cubes(binary, level=0.5, spacing=tuple(spacing[::-1]))
    poly = pv.PolyData.from_regular_faces(np.ascontiguousarray(verts_zyx[:, ::-1]), faces)
    poly = _windowed_sinc(poly, 20, 0.05)
    poly = _quadric_decimation(poly, DEFAULT_MAX_TRIANGLES)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    origin = np.asarray(image.GetOrigin()) - direction @ spacing
    return pv.PolyData(np.asarray(poly.points) @ direction.T + origin, faces=poly.faces)


def main() -> None:
    image = liver_like_label_map()
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(image) == 5))
    label_ml = voxels * float(np.prod(SPACING_XYZ)) / 1000.0

    start = time.perf_counter()
    ours = label_to_surface(image, label=5)
    surgplan_s = time.perf_counter() - start

    start = time.perf_counter()
    peer = skimage_peer(image, 5)
    peer_s = time.perf_counter() - start

    m_ours, m_peer = surface_metrics(ours), surface_metrics(peer)
    print(
        json.dumps(
            {
                "shape": list(SHAPE_ZYX[::-1]),
                "spacing_mm": list(SPACING_XYZ),
                "label_volume_ml": round(label_ml, 2),
                "surgplan_s": round(surgplan_s, 3),
                "skimage_peer_s": round(peer_s, 3),
                "ratio": round(surgplan_s / peer_s, 3),
                "surgplan_triangles": m_ours.n_triangles,
                "peer_triangles": m_peer.n_triangles,
                "volume_error_pct": {
                    "surgplan": round(100.0 * (m_ours.volume_ml - label_ml) / label_ml, 3),
                    "skimage_peer": round(100.0 * (abs(m_peer.volume_ml) - label_ml) / label_ml, 3),
                },
                "closed_manifold": {
                    "surgplan": m_ours.is_closed and m_ours.is_manifold,
                    "skimage_peer": m_peer.is_closed and m_peer.is_manifold,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
