"""biomech: verified tissue and vessel mechanics (DOLFINx) and a real-time reduced model.

Public units: mm, kPa, mL/s. Nothing here imports ``surgplan``, ``imaging``, ``registration``
or ``vr``; inputs are plain data (pyvista grids with a ``"region"`` cell array, numpy arrays,
gmsh models or ``.msh`` files).

Tissue mechanics
    solve_tissue             Static linear-elastic or neo-Hookean solve under surgical loads.
    TissueResult             Its converged field (to_pyvista, write_vtu, write_xdmf).
    ConvergenceError         Newton did not converge; no field is returned.
    from_unstructured_grid   A pyvista tetrahedral grid (mm, cell data "region") -> FEMesh.
    FEMesh                   A DOLFINx mesh with region and facet tags (metres inside).
Materials (kPa)
    Material, get_material, PRESETS, LIVER_HEALTHY, LIVER_FIBROTIC, TUMOUR, KIDNEY,
    ARTERY_WALL, VEIN_WALL, MaterialError
Loads and supports (mm, kPa)
    LoadCase, FixedSupport, SpringSupport, PrescribedDisplacement, Pressure, Traction, Gravity,
    ElasticBed,
    SphereRegion, PlaneRegion, NearPoints, AllBoundary, TaggedFacets, LoadRegionError
Stress and results
    sigma, cauchy_stress     Hooke's law and the Cauchy stress (UFL, Pa).
    von_mises_function, write_vtu, write_xdmf, to_pyvista
Reduced model
    build_linear_rom, TrainingSet, BasisConfig, build_hyperelastic_rom, ReducedModel,
    RomParameters, load_reduced_model, load_case_for, gravity_change_lps, ReducedModelError
Vessels
    solve_vessel_wall, VesselWallResult, lame_tube_closed_form, VesselWallError  (3-D wall)
    VesselTree, solve_flow, FlowResult, bifurcation_tree, VesselTreeError      (1-D flow)
Verification
    run_verification, PROBLEMS   Analytical benchmarks with observed convergence orders.
Errors
    BiomechError                 Base class of every error caused by bad input.

Modules: :mod:`~biomech.materials`, :mod:`~biomech.mesh`, :mod:`~biomech.loads`,
:mod:`~biomech.elasticity` (material fields and stress laws), :mod:`~biomech.tissue`,
:mod:`~biomech.results`, :mod:`~biomech.vessel_tree`, :mod:`~biomech.vessel_wall`,
:mod:`~biomech.verification`, :mod:`~biomech.geometry` (gmsh test geometries) and the
:mod:`~biomech.rom` package (:mod:`~biomech.rom.model`: the reduced model and its file format;
:mod:`~biomech.rom.loads`: gravity and the load case of a parameter vector;
:mod:`~biomech.rom.rbf`: the cubic RBF; :mod:`~biomech.rom.snapshots`: FE snapshots and POD;
:mod:`~biomech.rom.linear`, :mod:`~biomech.rom.hyperelastic`: the builders).
"""

# The dolfinx-solver-real wheel must be imported before dolfinx / petsc4py (DESIGN.md); doing it
# here makes every ``biomech.*`` import safe whatever the import order inside the modules.
import dolfinx_solver  # noqa: F401, I001

from biomech.elasticity import cauchy_stress, sigma  # noqa: E402
from biomech.errors import BiomechError  # noqa: E402
from biomech.loads import (  # noqa: E402
    AllBoundary,
    ElasticBed,
    FixedSupport,
    Gravity,
    LoadCase,
    LoadRegionError,
    NearPoints,
    PlaneRegion,
    PrescribedDisplacement,
    Pressure,
    SphereRegion,
    SpringSupport,
    TaggedFacets,
    Traction,
)
from biomech.materials import (  # noqa: E402
    ARTERY_WALL,
    KIDNEY,
    LIVER_FIBROTIC,
    LIVER_HEALTHY,
    PRESETS,
    TUMOUR,
    VEIN_WALL,
    Material,
    MaterialError,
    get_material,
)
from biomech.mesh import FEMesh, from_unstructured_grid  # noqa: E402
from biomech.results import to_pyvista, von_mises_function, write_vtu, write_xdmf  # noqa: E402
from biomech.rom import (  # noqa: E402
    BasisConfig,
    ReducedModel,
    ReducedModelError,
    RomParameters,
    TrainingSet,
    build_hyperelastic_rom,
    build_linear_rom,
    gravity_change_lps,
    load_case_for,
    load_reduced_model,
)
from biomech.tissue import ConvergenceError, TissueResult, solve_tissue  # noqa: E402
from biomech.verification import PROBLEMS, run_verification  # noqa: E402
from biomech.vessel_tree import (  # noqa: E402
    FlowResult,
    VesselTree,
    VesselTreeError,
    bifurcation_tree,
    solve_flow,
)
from biomech.vessel_wall import (  # noqa: E402
    VesselWallError,
    VesselWallResult,
    lame_tube_closed_form,
    solve_vessel_wall,
)

__all__ = [
    "ARTERY_WALL", "KIDNEY", "LIVER_FIBROTIC", "LIVER_HEALTHY", "PRESETS", "TUMOUR", "VEIN_WALL",
    "AllBoundary", "BasisConfig", "BiomechError", "ConvergenceError", "ElasticBed", "FEMesh",
    "FixedSupport", "FlowResult", "Gravity", "LoadCase", "LoadRegionError", "Material",
    "MaterialError", "NearPoints", "PROBLEMS", "PlaneRegion", "PrescribedDisplacement",
    "Pressure", "ReducedModel", "ReducedModelError", "RomParameters", "SphereRegion",
    "SpringSupport",
    "TaggedFacets", "TissueResult", "Traction", "TrainingSet", "VesselTree", "VesselTreeError",
    "VesselWallError", "VesselWallResult", "bifurcation_tree", "build_hyperelastic_rom",
    "build_linear_rom", "cauchy_stress", "from_unstructured_grid", "get_material",
    "gravity_change_lps", "lame_tube_closed_form", "load_case_for", "load_reduced_model",
    "run_verification", "sigma", "solve_flow", "solve_tissue", "solve_vessel_wall",
    "to_pyvista", "von_mises_function", "write_vtu", "write_xdmf",
]  # fmt: skip
