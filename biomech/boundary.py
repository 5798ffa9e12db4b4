"""Boundary-condition plumbing: selectors -> facets -> Dirichlet BCs and surface measures.

Internal to :mod:`biomech.tissue`; geometry here is the FE mesh in metres, selectors in mm.
"""

from __future__ import annotations

from collections.abc import Sequence

import dolfinx
import dolfinx_solver  # noqa: F401
import numpy as np
import ufl

from biomech.loads import (
    LoadRegionError,
    Selector,
    TaggedFacets,
    bump_weight,
    selector_mask,
)
from biomech.mesh import MM_TO_M, FEMesh


def select_facets(fe: FEMesh, selector: Selector, name: str) -> np.ndarray:
    """Local exterior-facet indices selected by ``selector``.

    Parameters
    ----------
    fe : FEMesh
        The mesh.
    selector : Selector
        The region (mm) of :mod:`biomech.loads`.
    name : str
        The load or support it belongs to, for the error message.

    Raises
    ------
    LoadRegionError
        If the selector selects no facet on any rank (the message names the load).
    """
    tdim = fe.mesh.topology.dim
    if isinstance(selector, TaggedFacets):
        tag = selector.tag
        if isinstance(tag, str):
            if tag not in fe.boundaries:
                raise LoadRegionError(
                    f"{name}: boundary {tag!r} not in mesh; "
                    f"known boundaries: {sorted(fe.boundaries)}"
                )
            tag = fe.boundaries[tag]
        if fe.facet_tags is None:
            raise LoadRegionError(f"{name}: mesh has no facet tags, cannot select tag {tag}")
        facets = fe.facet_tags.find(int(tag))
    else:
        ext = fe.exterior_facets()
        mid = dolfinx.mesh.compute_midpoints(fe.mesh, tdim - 1, ext)[:, : fe.gdim] / MM_TO_M
        facets = ext[selector_mask(selector, mid)]
    n = fe.comm.allreduce(int(facets.size))
    if n == 0:
        raise LoadRegionError(f"{name}: region {_describe(selector)} selects no boundary facets")
    return np.sort(facets).astype(np.int32)


def _describe(selector: Selector) -> str:
    text = repr(selector)
    return text if len(text) < 160 else text[:157] + "..."


class FacetMarkers:
    """Combine possibly overlapping facet sets into one MeshTags for a single ``ds`` measure.

    Each facet gets the bitmask of the sets it belongs to as its id; ``measure(k)`` returns
    ``ds`` restricted to all combinations containing set k.
    """

    def __init__(self, fe: FEMesh, facet_sets: Sequence[np.ndarray], quadrature_degree: int):
        tdim = fe.mesh.topology.dim
        keys: dict[int, set[int]] = {}
        for k, facets in enumerate(facet_sets):
            for f in facets.tolist():
                keys.setdefault(f, set()).add(k)
        # The set membership is encoded as a bitmask so that ids agree across MPI ranks.
        ent = sorted(keys)
        val = [sum(1 << k for k in keys[f]) for f in ent]
        self._n = len(facet_sets)
        local = np.unique(np.asarray(val, dtype=np.int32))
        self._present = {int(v) for v in np.unique(np.concatenate(fe.comm.allgather(local)))}
        self.tags = dolfinx.mesh.meshtags(
            fe.mesh, tdim - 1, np.asarray(ent, dtype=np.int32), np.asarray(val, dtype=np.int32)
        )
        self.ds = ufl.Measure(
            "ds",
            domain=fe.mesh,
            subdomain_data=self.tags,
            metadata={"quadrature_degree": quadrature_degree},
        )

    def measure(self, k: int) -> ufl.Measure:
        """``ds`` over the facets of set ``k``."""
        ids = tuple(m for m in sorted(self._present) if m & (1 << k))
        return self.ds(ids)


def dirichlet_dofs(
    space: dolfinx.fem.FunctionSpace,
    collapsed: dolfinx.fem.FunctionSpace | None,
    facets: np.ndarray,
    fdim: int,
) -> np.ndarray | list[np.ndarray]:
    """Locate dofs of ``space`` (possibly a sub-space) on ``facets``.

    Parameters
    ----------
    space : dolfinx.fem.FunctionSpace
        The space, or a sub-space of a mixed space.
    collapsed : dolfinx.fem.FunctionSpace or None
        The collapsed sub-space when ``space`` is a sub-space (then a pair of dof arrays is
        returned, as :func:`dolfinx.fem.locate_dofs_topological` expects), else ``None``.
    facets : numpy.ndarray
        Local facet indices.
    fdim : int
        Topological dimension of the facets.
    """
    if collapsed is None:
        return dolfinx.fem.locate_dofs_topological(space, fdim, facets)
    return dolfinx.fem.locate_dofs_topological((space, collapsed), fdim, facets)


def displacement_bc_values(
    v_collapsed: dolfinx.fem.FunctionSpace,
    displacement_m: np.ndarray,
    selector: Selector,
    profile: str,
) -> dolfinx.fem.Function:
    """Function in the displacement space holding the prescribed displacement (m).

    Parameters
    ----------
    v_collapsed : dolfinx.fem.FunctionSpace
        The (collapsed) displacement space.
    displacement_m : numpy.ndarray
        (gdim,) displacement at full weight, metres.
    selector : Selector
        The patch; a ``"bump"`` profile needs a :class:`~biomech.loads.SphereRegion`.
    profile : {"uniform", "bump"}
        Uniform displacement, or weighted by the smooth bump of the sphere (1 at its centre,
        0 at its radius).
    """
    g = dolfinx.fem.Function(v_collapsed)
    gdim = v_collapsed.mesh.geometry.dim
    disp = np.asarray(displacement_m, dtype=float)[:gdim]

    def values(x: np.ndarray) -> np.ndarray:
        w = np.ones(x.shape[1])
        if profile == "bump":
            w = bump_weight(selector, x[:gdim].T / MM_TO_M)
        return disp[:, None] * w[None, :]

    g.interpolate(values)
    return g
