"""Hook implementations: what hpcprep-genomics adds to hpcprep.

Registered through the entry point ``genomics = "hpcprep_genomics.plugin"`` in the
``hpcprep`` group; ``hpcprep plugins`` lists it once the package is installed. Stage
modules are imported inside the hooks, as in every plugin, so loading the plugin imports
only what a hook that runs needs.
"""

from __future__ import annotations

import hpcprep


@hpcprep.hookimpl
def hpcprep_register_readers(register):
    from .readers import FastaReader, FastqReader

    register(FastaReader)
    register(FastqReader)


@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    from .encoders import ENCODERS

    for cls in ENCODERS:
        register(cls)


@hpcprep.hookimpl
def hpcprep_register_commands(cli):
    # Imported here: the command pulls in torch only when someone runs it.
    from . import commands

    commands.register(cli)


@hpcprep.hookimpl
def hpcprep_report_sections(run):
    from .report import sections

    return sections(run)
