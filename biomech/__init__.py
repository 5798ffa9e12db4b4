"""biomech: verified tissue and vessel mechanics (DOLFINx) and a real-time reduced model.

Public units: mm, kPa, mL/s. Nothing here imports ``surgplan``, ``imaging``, ``registration``
or ``vr``; inputs are plain data (pyvista grids with a ``"region"`` cell array, numpy arrays,
gmsh models or ``.msh`` files).

Modules: :mod:`~biomech.materials` (literature materials), :mod:`~biomech.mesh` (meshes ->
DOLFINx), :mod:`~biomech.loads` (supports and loads), :mod:`~biomech.tissue` (linear and
neo-Hookean solves), :mod:`~biomech.results` (von Mises, VTU/XDMF, pyvista),
:mod:`~biomech.vessels` (vessel-tree flow; vessel wall under lumen pressure),
:mod:`~biomech.verification` (analytical checks), :mod:`~biomech.rom` (reduced model),
:mod:`~biomech.geometry` (gmsh test geometries).

Exported here: :func:`solve_vessel_wall` (3D FE vessel wall under lumen pressure) with its
:class:`VesselWallResult`, and :func:`lame_tube_closed_form` (the Lamé reference).
"""

# The dolfinx-solver-real wheel must be imported before dolfinx / petsc4py (DESIGN.md); doing it
# here makes every ``biomech.*`` import safe whatever the import order inside the modules.
import dolfinx_solver  # noqa: F401, I001

from biomech.vessels import (  # noqa: E402
    VesselWallError,
    VesselWallResult,
    lame_tube_closed_form,
    solve_vessel_wall,
)

__all__ = ["VesselWallError", "VesselWallResult", "lame_tube_closed_form", "solve_vessel_wall"]
