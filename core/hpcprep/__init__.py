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
    TextColumnEncoder,
    TextColumnParams,
    record_id,
)


def __getattr__(name: str):
    # the error types live with the code that raises them, which imports Ray: loaded on first use
    if name == "SpecError":
        from .spec import SpecError

        return SpecError
    if name in ("RunError", "UnbalancedRun"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'hpcprep' has no attribute {name!r}")


def run(spec, **kwargs):
    """Validate and run a pipeline spec (TOML path or dict); returns a ``RunResult``.

    Keyword arguments: ``overrides`` (list of ``"encoders.0.k=5"``), ``overwrite``,
    ``resume``, ``address``, ``plugins`` (extra plugin objects), ``progress``, ``keep_ray``,
    ``verbose`` (Ray's own log lines on the terminal too; they always go to
    ``RUN_DIR/_logs/ray.log``).
    Raises ``hpcprep.SpecError`` for a spec that cannot run, ``hpcprep.RunError`` when the
    run cannot go on, and its subclass
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
    "RunError",
    "Sink",
    "SinkContext",
    "SinkWriter",
    "SpecError",
    "StageExamples",
    "TEXT_TYPES",
    "TextColumnEncoder",
    "TextColumnParams",
    "UnbalancedRun",
    "__version__",
    "hookimpl",
    "record_id",
    "run",
]
