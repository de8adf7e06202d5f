"""Registers the core's readers and sinks."""

from ..hookspecs import hookimpl
from .files_reader import FilesReader
from .lancedb_sink import LanceDBSink
from .parquet_reader import ParquetReader
from .parquet_sink import ParquetSink


@hookimpl
def hpcprep_register_readers(register):
    register(FilesReader)
    register(ParquetReader)


@hookimpl
def hpcprep_register_sinks(register):
    register(ParquetSink)
    register(LanceDBSink)
