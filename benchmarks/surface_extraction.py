"""Benchmark: ``label_to_surface`` against the naive scikit-image + VTK route, in one run.

A deterministic liver-like blob (union of three ellipsoids with a low-frequency bump) is built
on a 512 x 512 x 300 grid of 0.8 x 0.8 x 1.0 mm voxels with an LPS-style direction matrix.
Both pipelines produce a smoothed (the same windowed sinc, 20 iterations, pass band 0.05) and
decimated (quadric error metric, 50,000 triangles) surface, checked closed and manifold the
same way (:func:`imaging.surface.surface_metrics`). The peer is the route one would write
first: ``skimage.measure.marching_cubes`` at level 0.5 on the whole array, the same windowed
sinc, then VTK's volume-preserving ``vtkQuadricDecimation``. ``label_to_surface`` crops to the
structure's bounding box, contours with VTK's discrete flying edges and decimates with
``fast-simplification`` (VTK's decimation only as a fallback). The volume error is against the
voxel-count volume. Each pipeline runs ``--repeats`` times (default 3), alternating, and the
median is reported with the load average. Prints one JSON object.

Run: ``nice .venv/bin/python benchmarks/surface_extraction.py``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import pyvista as pv
import SimpleITK as sitk
from skimage.measure import marching_cubes

from imaging.surface import (
    DEFAULT_MAX_TRIANGLES,
    _vtk_decimations,  # VTK quadric decimation first: the peer decimator
    _windowed_sinc,  # the exact smoothing of label_to_surface, for a like-for-like peer
    label_to_surface,
    surface_metrics,
)

SHAPE_ZYX = (300, 512, 512)
SPACING_XYZ = (0.8, 0.8, 1.0)
DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def liver_like_label_map() -> sitk.Image:
    """Deterministic liver-sized blob, label 5, about 1.6 L."""
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
    """Marching cubes (scikit-image) + the same smoothing + VTK quadric decimation, in LPS."""
    binary = np.pad((sitk.GetArrayViewFromImage(image) == label).astype(np.uint8), 1)
    spacing = np.asarray(image.GetSpacing())
    verts_zyx, faces, _, _ = marching_cubes(binary, level=0.5, spacing=tuple(spacing[::-1]))
    poly = pv.PolyData.from_regular_faces(np.ascontiguousarray(verts_zyx[:, ::-1]), faces)
    poly = _windowed_sinc(poly, 20, 0.05)
    poly = next(_vtk_decimations(poly, DEFAULT_MAX_TRIANGLES))
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    origin = np.asarray(image.GetOrigin()) - direction @ spacing
    return pv.PolyData(np.asarray(poly.points) @ direction.T + origin, faces=poly.faces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    image = liver_like_label_map()
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(image) == 5))
    label_ml = voxels * float(np.prod(SPACING_XYZ)) / 1000.0

    times: dict[str, list[float]] = {"surgplan": [], "skimage_peer": []}
    load_before = os.getloadavg()
    for _ in range(repeats):
        start = time.perf_counter()
        ours = label_to_surface(image, label=5)
        times["surgplan"].append(time.perf_counter() - start)
        start = time.perf_counter()
        peer = skimage_peer(image, 5)
        times["skimage_peer"].append(time.perf_counter() - start)
    surgplan_s = statistics.median(times["surgplan"])
    peer_s = statistics.median(times["skimage_peer"])

    m_ours, m_peer = surface_metrics(ours), surface_metrics(peer)
    print(
        json.dumps(
            {
                "shape": list(SHAPE_ZYX[::-1]),
                "spacing_mm": list(SPACING_XYZ),
                "label_volume_ml": round(label_ml, 2),
                "repeats": repeats,
                "surgplan_s": round(surgplan_s, 3),
                "skimage_peer_s": round(peer_s, 3),
                "speedup": round(peer_s / surgplan_s, 2),
                "ratio": round(surgplan_s / peer_s, 3),
                "all_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
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
                "load_average_1_5_15": {
                    "before": [round(x, 2) for x in load_before],
                    "after": [round(x, 2) for x in os.getloadavg()],
                },
            }
        )
    )


if __name__ == "__main__":
    main()
