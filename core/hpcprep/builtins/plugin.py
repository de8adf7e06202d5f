"""Registers the core's readers and sinks (stage modules imported inside the hooks, as in every plugin)."""

from ..hookspecs import hookimpl


@hookimpl
def hpcprep_register_readers(register):
    from .files_reader import FilesReader
    from .parquet_reader import ParquetReader

    register(FilesReader)
    register(ParquetReader)


@hookimpl
def hpcprep_register_sinks(register):
    from .feast_sink import FeastSink
    from .lancedb_sink import LanceDBSink
    from .parquet_sink import ParquetSink

    register(ParquetSink)
    register(LanceDBSink)
    register(FeastSink)
