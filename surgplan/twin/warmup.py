"""Pay the twin's one-off costs before the first real update.

Two costs fall on a twin's first update otherwise. In a fresh install, Numba compiles the
twin's kernels (:mod:`surgplan.twin._foot_kernel`, :mod:`surgplan.twin._radius_kernel`) and
registration's: measured here, 45 s for the first update of a synthetic twin with an empty
Numba cache. In every new process the compiled kernels are loaded from that cache and the
organ's search grids are built, about 1.3 s for that first update with the cache filled. A
live session pays the second cost at the first acquisition, an operating room would see the
first acquisition's state seconds late; :func:`warm_up_twin` moves it before the server
listens, and :func:`precompile` (run by ``scripts/setup.sh``) moves the first one to install
time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["precompile", "warm_up_twin"]

_WARMED: list[bool] = []  # one synthetic warm-up per process


def precompile() -> None:
    """Run one deformable and one rigid update of a small synthetic twin (all its kernels).

    Numba caches what it compiles on disk: later processes load the kernels instead of
    compiling them. Calling it again in the same process does nothing.
    """
    if _WARMED:
        return
    from surgplan.twin.synthetic import posed_swabs, synthetic_basis, synthetic_organ
    from surgplan.twin.twin import Twin

    organ = synthetic_organ(2)
    basis = synthetic_basis(organ)
    pose = np.eye(4)
    zero = np.zeros((len(organ.vertices), 3))
    # more points than the assimilation's slip subsample (256): its strided path runs too
    points = posed_swabs(organ, zero, pose, n_points=600, noise_mm=1.0, seed=0)
    for mode in ("deformable", "rigid"):
        twin = Twin(basis, mode=mode, noise_mm=1.0, surface=organ, T_tracker_model=pose)
        twin.update(points)
        twin.update(points[::2])  # the warm path (feet kept between batches)
    _WARMED.append(True)


def warm_up_twin(twin: Any) -> None:
    """Load the kernels (:func:`precompile`) and build ``twin``'s search grids now.

    Leaves the twin's state untouched: only the surface's cached grids and neighbourhoods
    (the same ones its first update would build) are made.
    """
    precompile()
    model = twin.surface.model
    model.closest_vertex_grid()
    model.sheet_seed_grid()
    model.vertex_neighbourhoods()
    twin.patches  # noqa: B018 - the recommendation's candidate patches, built on first access
