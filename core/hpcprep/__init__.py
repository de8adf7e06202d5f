"""hpcprep: prepare scientific data for machine learning and simulation at HPC scale, on Ray."""

__version__ = "0.1.0"

from .hookspecs import hookimpl
from .placement import ClusterInfo, Placement
from .stages import (
    FLOAT_VECTOR_TYPES,
    TEXT_TYPES,
    Column,
    Encoder,
    ErrorRecord,
    Input,
    InputItem,
    LocalPath,
    Params,
    Reader,
    RecordError,
    Sink,
    SinkContext,
    SinkWriter,
    StageExamples,
    record_id,
)


def run(spec, **kwargs):
    """Validate and run a pipeline spec (TOML path or dict); returns a ``RunResult``.

    Keyword arguments: ``overrides`` (list of ``"encoders.0.k=5"``), ``overwrite``,
    ``resume``, ``address``, ``plugins`` (extra plugin objects), ``progress``.
    Raises ``hpcprep.runner.RunError`` when the run cannot go on, and its subclass
    ``UnbalancedRun`` (holding the result) when it ended with books that do not balance.
    """
    from .runner import run as _run

    return _run(spec, **kwargs)


__all__ = [
    "ClusterInfo",
    "Column",
    "Encoder",
    "ErrorRecord",
    "FLOAT_VECTOR_TYPES",
    "Input",
    "InputItem",
    "LocalPath",
    "Params",
    "Placement",
    "Reader",
    "RecordError",
    "Sink",
    "SinkContext",
    "SinkWriter",
    "StageExamples",
    "TEXT_TYPES",
    "__version__",
    "hookimpl",
    "record_id",
    "run",
]
