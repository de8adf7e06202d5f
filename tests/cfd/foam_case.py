"""What running OpenFOAM's own tools on a case needs, shared by the tests that compare with them."""

from __future__ import annotations

import os

OPENFOAM_DIR = "/usr/share/openfoam"  # Debian's WM_PROJECT_DIR (holds etc/controlDict)

# postProcess writes C and V with 17 significant digits (writePrecision), uncompressed; ``fmt``: ascii or binary.
CONTROL_DICT = """FoamFile {{ version 2.0; format ascii; class dictionary; object controlDict; }}
application postProcess;
startFrom startTime;
startTime 0;
stopAt endTime;
endTime 0;
deltaT 1;
writeControl timeStep;
writeInterval 1;
writeFormat {fmt};
writePrecision 17;
writeCompression off;
timeFormat general;
timePrecision 6;
"""
FV_SCHEMES = """FoamFile { version 2.0; format ascii; class dictionary; object fvSchemes; }
ddtSchemes {} gradSchemes {} divSchemes {} laplacianSchemes {} interpolationSchemes {} snGradSchemes {}
"""
FV_SOLUTION = "FoamFile { version 2.0; format ascii; class dictionary; object fvSolution; }\n"


def openfoam_env() -> dict:
    """The environment OpenFOAM's Debian binaries need: WM_PROJECT_DIR pointing at their etc/."""
    env = dict(os.environ)
    if not os.path.isfile(os.path.join(env.get("WM_PROJECT_DIR", ""), "etc", "controlDict")):
        env["WM_PROJECT_DIR"] = OPENFOAM_DIR
    return env
