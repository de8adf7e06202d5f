"""Hook implementations: what hpcprep-protein adds to hpcprep.

Registered through the entry point ``protein = "hpcprep_protein.plugin"`` in the
``hpcprep`` group.
"""

from __future__ import annotations

import hpcprep


@hpcprep.hookimpl
def hpcprep_register_readers(register):
    from .readers import READERS

    for cls in READERS:
        register(cls)


@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    from .encoders import ENCODERS
    from .esm import EsmEmbed  # imports transformers only in setup(): the plugin loads without the esm extra

    for cls in (*ENCODERS, EsmEmbed):
        register(cls)


@hpcprep.hookimpl
def hpcprep_register_commands(cli):
    from .commands import register

    register(cli)


@hpcprep.hookimpl
def hpcprep_report_sections(run):
    from .report import sections

    return sections(run)
