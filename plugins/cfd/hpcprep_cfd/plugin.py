"""Hook implementations: what hpcprep-cfd adds to hpcprep.

Registered through the entry point ``cfd = "hpcprep_cfd.plugin"`` in the ``hpcprep`` group.
Stage modules are imported inside the hooks, which hpcprep calls only when a command needs a stage, so
`hpcprep --help` and this plugin's own commands never import the kernels.
"""

from __future__ import annotations

import hpcprep


@hpcprep.hookimpl
def hpcprep_register_readers(register):
    from .mesh_reader import MeshReader
    from .openfoam.reader import OpenFoamReader

    register(MeshReader)
    register(OpenFoamReader)


@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    from .cell_features import CellFeatures
    from .encoders import MESH_ENCODERS

    for cls in (*MESH_ENCODERS, CellFeatures):
        register(cls)


@hpcprep.hookimpl
def hpcprep_register_sinks(register):
    from .vtk_sink import VtkSink

    register(VtkSink)


@hpcprep.hookimpl
def hpcprep_register_commands(cli):
    from . import commands

    commands.register(cli)


@hpcprep.hookimpl
def hpcprep_report_sections(run):
    from .report import sections

    return sections(run)
