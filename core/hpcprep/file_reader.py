"""``FileReader``: the base of readers whose input items are whole files.

Most readers take the same parameters (``paths``: files, directories, globs or s3:// URIs;
``suffixes``: which files of a directory count; the S3 endpoint and credentials) and plan
the same way (one item per file, sorted, with its size). ``FileReader`` does that once:
a subclass declares its ``outputs``, gives its ``Params`` (a subclass of ``FileParams``,
overriding ``paths``' description and ``suffixes``' default for its formats) and writes
``read(item)``, getting the file's bytes from ``read_bytes(item)``, or, for files too
large to hold (FASTA, FASTQ), a stream of them from ``open_stream(item)``. A reader that
plans more than one item per file, or adds to each item, builds its ``plan()`` on
``files()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from pydantic import Field

from . import compressed
from .stages import InputItem, LocalPath, Reader, RecordError
from .storage import S3Params, expand_paths, open_input, unmatched_local


class FileParams(S3Params):
    paths: list[LocalPath] = Field(description="files, directories, globs or s3:// URIs")
    suffixes: list[str] | None = Field(
        None, description="when expanding directories and globs keep only files ending in one of these"
    )


class FileReader(Reader):
    """A reader of whole files: one input item per file that ``paths`` names or holds."""

    Params = FileParams

    def files(self) -> list[tuple[str, int | None]]:
        """``(path, size)`` of every file that ``paths`` names or holds (directories and globs
        filtered by ``suffixes``), sorted; a pattern that matches nothing is a ``FileNotFoundError``."""
        p = self.params
        return expand_paths(p.paths, tuple(p.suffixes) if p.suffixes else None, p.s3())

    def plan(self) -> list[InputItem]:
        return [InputItem(source=path, index=i, size=size) for i, (path, size) in enumerate(self.files())]

    def problems(self) -> list[str]:
        """Local ``paths`` that name nothing, so that a misspelt path is refused with the spec's
        other problems, before Ray starts; ``files()`` finds the rest when the run plans."""
        missing = unmatched_local(self.params.paths)
        return [f"nothing matches {', '.join(repr(p) for p in missing)}"] if missing else []

    @contextmanager
    def open_stream(self, item: InputItem) -> Iterator[BinaryIO]:
        """The file as a binary stream, gzip and BGZF undone as it is read (local or S3). A file
        that cannot be opened is a ``RecordError`` naming it; data that breaks later raises one of
        ``hpcprep.compressed.DECOMPRESS_ERRORS`` from the read, after every line before the break."""
        try:
            raw = open_input(item.source, self.params.s3())
        except OSError as exc:
            raise RecordError(f"{item.source}: cannot read the file: {exc}") from None
        with raw:
            stream, _ = compressed.open_decompressed(raw)
            yield stream

    def read_bytes(self, item: InputItem, gunzip: bool = True) -> bytes:
        """The whole file; gunzipped when it starts with the gzip magic and ``gunzip`` is set.
        A file that cannot be read, or damaged gzip data, is a ``RecordError`` naming the file."""
        try:
            with open_input(item.source, self.params.s3()) as f:
                data = f.read()
        except OSError as exc:
            raise RecordError(f"{item.source}: cannot read the file: {exc}") from None
        if gunzip:
            try:
                data = compressed.gunzip(data, item.source)
            except compressed.DamagedGzip as exc:
                raise RecordError(str(exc)) from None
        return bytes(data)
