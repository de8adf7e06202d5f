"""gzip and BGZF as readers meet them: told apart by their first bytes, undone for a whole file or as a stream,
and one message for data that is damaged or cut short.

Readers keep their own error types (``RecordError``, a mesh or FoamFile error): ``gunzip`` raises
``DamagedGzip``, a ``ValueError`` whose message already names the file, for them to pass on.
"""

from __future__ import annotations

import gzip
import io
import zlib

GZIP_MAGIC = b"\x1f\x8b"

#: What a damaged or truncated gzip stream raises while it is read (``BadGzipFile`` for a bad header or CRC,
#: ``EOFError`` for a cut, ``zlib.error`` for damaged deflate data).
DECOMPRESS_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


class DamagedGzip(ValueError):
    """gzip data that cannot be decompressed; the message names the file."""


def is_gzip(head: bytes) -> bool:
    return head[:2] == GZIP_MAGIC


def compression_of(head: bytes) -> str:
    """``"plain"``, ``"gzip"`` or ``"bgzf"`` (bgzip's blocked gzip) from the first 18 bytes of a file."""
    if not is_gzip(head):
        return "plain"
    if len(head) >= 16 and head[3] & 4 and head[12:14] == b"BC" and head[14:16] == b"\x02\x00":
        return "bgzf"
    return "gzip"


def gunzip(data: bytes, source: str) -> bytes:
    """``data`` decompressed when it is gzip (BGZF included), else unchanged."""
    if not is_gzip(data):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, *DECOMPRESS_ERRORS) as exc:
        raise DamagedGzip(f"{source}: damaged or truncated gzip data: {exc}") from None


def open_decompressed(raw) -> tuple[io.BufferedIOBase, str]:
    """A binary file object that yields ``raw``'s decompressed bytes, and its compression (``compression_of``).
    A gzip stream is the ``GzipFile`` itself, not buffered again: a buffer on top would drop the lines it had
    read when the stream breaks, and the lines before a truncation must survive."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw, 1 << 20)
    kind = compression_of(buffered.peek(18)[:18])
    if kind == "plain":
        return buffered, kind
    return gzip.GzipFile(fileobj=buffered, mode="rb"), kind


def read_head(path: str, size: int) -> bytes:
    """The first ``size`` decompressed bytes of a local file (``OSError`` if it cannot be opened,
    ``DamagedGzip`` if its gzip data breaks before then)."""
    with open(path, "rb") as raw:
        stream, _ = open_decompressed(raw)
        try:
            return stream.read(size)
        except DECOMPRESS_ERRORS as exc:
            raise DamagedGzip(f"{path}: damaged or truncated gzip data: {exc}") from None
