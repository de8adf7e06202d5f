"""Where the CFD tests find real data and reference tools (Debian packages `make test` installs).

- ``openfoam-examples``: tutorial geometry (STL/OBJ, gzipped) and ready polyMesh cases.
- ``openfoam``: ``blockMesh`` and ``postProcess`` (reference cell centres and volumes).
- ``python3-paraview``: ``pvpython``, to open what the VTK sink writes.

Without a package a test skips with the reason; under ``CI`` it fails instead.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import unavailable

EXAMPLES = Path("/usr/share/doc/openfoam-examples/examples")
GEOMETRY = EXAMPLES / "resources" / "geometry"
#: Ready polyMesh cases: name -> directory holding the mesh (airFoil2D is a full case with
#: constant/polyMesh and fields in 0/; the adjoint meshes hold polyMesh/ directly).
CASES = {
    "airFoil2D": EXAMPLES / "incompressible/simpleFoam/airFoil2D",
    "naca0012": EXAMPLES / "incompressible/adjointOptimisationFoam/resources/meshes/naca0012",
    "sbend": EXAMPLES / "incompressible/adjointOptimisationFoam/resources/meshes/sbend",
}


def _missing(what: str, package: str):
    __tracebackhide__ = True
    unavailable(f"{what} not found (Debian package {package})")


def geometry(filename: str) -> Path:
    """A tutorial geometry file, e.g. ``geometry("flange.stl.gz")``."""
    path = GEOMETRY / filename
    if not path.exists():
        _missing(str(path), "openfoam-examples")
    return path


def case(name: str) -> Path:
    """A tutorial directory with a ready polyMesh (see ``CASES``)."""
    path = CASES[name]
    if not path.exists():
        _missing(str(path), "openfoam-examples")
    return path
