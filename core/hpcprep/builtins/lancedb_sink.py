"""``lancedb``: placeholder replaced by the LanceDB sink."""
from ..stages import Sink


class LanceDBSink(Sink):
    """LanceDB table (in progress)."""

    name = "lancedb"
