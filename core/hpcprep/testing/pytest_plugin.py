"""pytest plugin of hpcprep (entry point ``pytest11: hpcprep``): the ``hpcprep_kit`` fixture.

It loads in every pytest session of an environment where hpcprep is installed, so it
imports nothing heavy until a test asks for the fixture.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def hpcprep_kit(tmp_path):
    """The hpcprep plugin test kit working in ``tmp_path``.

    ``hpcprep_kit.assert_plugin_ok(plugin_module_or_name)`` checks a plugin and all its
    stages; ``assert_stage_ok(StageClass)``, ``check_stage`` and ``check_plugin`` are
    there too (see ``hpcprep.testing``).
    """
    from hpcprep.testing import Kit

    return Kit(tmp_path / "hpcprep-kit")
