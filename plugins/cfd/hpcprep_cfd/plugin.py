"""Hook implementations: what hpcprep-cfd adds to hpcprep.

Registered through the entry point ``cfd = "hpcprep_cfd.plugin"`` in the ``hpcprep`` group.
"""

from __future__ import annotations

import hpcprep
