"""Hook implementations: what hpcprep-genomics adds to hpcprep.

Registered through the entry point ``genomics = "hpcprep_genomics.plugin"`` in the
``hpcprep`` group; ``hpcprep plugins`` lists it once the package is installed.
"""

from __future__ import annotations

import hpcprep

from .encoders import ENCODERS
from .readers import FastaReader, FastqReader


@hpcprep.hookimpl
def hpcprep_register_readers(register):
    register(FastaReader)
    register(FastqReader)


@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    for cls in ENCODERS:
        register(cls)


@hpcprep.hookimpl
def hpcprep_register_commands(cli):
    # Imported here: the command pulls in torch only when someone runs it.
    from . import commands

    commands.register(cli)
