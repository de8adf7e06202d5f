"""FASTA/FASTQ helpers of the genomics readers, usable without Ray.

- Telling plain text, gzip and BGZF (bgzip) apart and opening them as streams is the core's
  (``hpcprep.compressed``), as for every reader.
- ``FastaScanner`` (in the core, ``hpcprep.fasta``, shared with the protein reader) gives
  each record's layout: the driver writes a samtools-style ``.fai`` from it and counts
  the windows in assembly gaps; the streaming reader uses the sequences.
- ``FastqParser`` yields reads and bad chunks of a FASTQ stream, resynchronising after a
  malformed record so that the good reads before and after it are kept; a broken
  compressed stream is one problem.
- ``bgzf_blocks``/``write_gzi``/``bgzf_compress``: BGZF block handling and the htslib
  ``.gzi`` index, written without Biopython.

One module because parsing FASTQ and walking BGZF blocks share the same byte-level
handling of compressed streams (what a cut gzip or BGZF block looks like, where a record
ends when the stream breaks), and each of them needs it.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from hpcprep.compressed import DECOMPRESS_ERRORS, GZIP_MAGIC
from hpcprep.fasta import (  # noqa: F401  (genomics modules and tests import them from here)
    GAP_MIN,
    FastaLayout,
    FastaScanner,
    gap_runs,
    looks_binary,
    preview,
)

#: IUPAC nucleotide codes and the gap; case-insensitive.
DNA_ALPHABET = "ACGTURYSWKMBDHVN-"
#: FASTQ also sees '.' for an unknown base (older Illumina pipelines).
FASTQ_ALPHABET = DNA_ALPHABET + "."

#: The empty block bgzip writes at the end of every BGZF file.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
#: Uncompressed bytes per BGZF block, as bgzip writes them.
BGZF_BLOCK = 0xFF00
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".ffn", ".frn", ".fas", ".fsa", ".seq", ".mfa")
FASTQ_SUFFIXES = (".fq", ".fastq")
COMPRESSED_SUFFIXES = (".gz", ".bgz")
INDEX_SUFFIXES = (".fai", ".gzi", ".fxi")


def with_compression(suffixes: tuple[str, ...]) -> tuple[str, ...]:
    return suffixes + tuple(s + c for s in suffixes for c in COMPRESSED_SUFFIXES)


def file_stem(path: str) -> str:
    """``/x/lambda_virus.fa.gz`` -> ``lambda_virus``: the name without compression and format suffixes."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (*COMPRESSED_SUFFIXES, ".bz2", ".xz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


def parent_name(path: str) -> str:
    parts = path.rstrip("/").rsplit("/", 2)
    return parts[-2] if len(parts) >= 2 else ""


def allowed_table(alphabet: str) -> np.ndarray:
    """A 256-entry lookup: True for the bytes of ``alphabet`` in either case."""
    table = np.zeros(256, dtype=bool)
    for ch in alphabet.upper() + alphabet.lower():
        table[ord(ch)] = True
    return table


def bad_positions(seq: bytes, table: np.ndarray) -> np.ndarray:
    """Positions in ``seq`` whose byte is not allowed by ``table`` (usually none)."""
    arr = np.frombuffer(seq, dtype=np.uint8)
    ok = table[arr]
    if ok.all():
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(~ok)


def show_char(byte: int) -> str:
    ch = chr(byte)
    return repr(ch) if ch.isprintable() and byte < 128 else f"byte 0x{byte:02x}"


def window_count(n: int, window: int | None, stride: int | None) -> int:
    """Windows over ``n`` bases: starts 0, stride, 2·stride, … until one reaches the end.

    The last window is shorter when it reaches the end early; with ``stride > window``
    the bases between windows are skipped and the last window may end before the end.
    """
    if n <= 0:
        return 0
    if window is None:
        return 1
    stride = stride or window
    reach = 1 if n <= window else -(-(n - window) // stride) + 1
    return min(reach, -(-n // stride))


# -- FASTQ ----------------------------------------------------------------------------


@dataclass
class FastqRead:
    index: int
    line: int
    name: str
    description: str
    sequence: str
    quality: str


@dataclass
class FastqProblem:
    index: int
    line: int
    message: str


class _Lines:
    """Numbered lines with lookahead; notes (does not raise) where compressed data breaks."""

    def __init__(self, stream: Iterable[bytes]):
        self.it = iter(stream)
        self.buf: deque = deque()
        self.lineno = 0
        self.truncated: str | None = None
        self.done = False

    def peek(self, k: int):
        while len(self.buf) <= k and not self.done:
            try:
                raw = next(self.it)
            except StopIteration:
                self.done = True
                break
            except DECOMPRESS_ERRORS as exc:
                self.truncated = f"the compressed data ends early or is damaged after line {self.lineno}: {exc}"
                self.done = True
                break
            self.lineno += 1
            self.buf.append((self.lineno, raw))
        return self.buf[k] if k < len(self.buf) else None

    def pop(self):
        self.peek(0)
        return self.buf.popleft() if self.buf else None


class FastqParser:
    """Yield ``FastqRead`` and ``FastqProblem`` for each four-line FASTQ record of a stream.

    ``index`` counts records in file order, good and bad alike, so ids stay stable. After a
    malformed record the parser skips to the next line that starts with '@' and has a
    '+' line two lines below it. Compressed data that ends early or breaks is one problem:
    on the read it cuts, or, when it breaks between reads, on the reads that are lost.
    A read without bases is a problem, as an empty FASTA record is: there is nothing in it
    to prepare, and the file and line say where a trimming step left it.
    """

    def __init__(self, stream: Iterable[bytes], *, alphabet: str = FASTQ_ALPHABET):
        self.lines = _Lines(stream)
        self.table = allowed_table(alphabet)

    def _resync(self) -> None:
        la = self.lines
        while True:
            first = la.peek(0)
            if first is None:
                return
            if first[1][:1] == b"@":
                third = la.peek(2)
                if third is not None and third[1][:1] == b"+":
                    return
            la.pop()

    def __iter__(self) -> Iterator[FastqRead | FastqProblem]:
        la = self.lines
        index = 0
        while True:
            first = la.peek(0)
            while first is not None and not first[1].strip():
                la.pop()
                first = la.peek(0)
            if first is None:
                break
            lineno, head = first
            if head[:1] != b"@":
                if index == 0 and looks_binary(head):
                    what = f"binary data ({preview(head, 16)}), not FASTQ text"
                else:
                    what = preview(head)
                yield FastqProblem(
                    index, lineno, f"line {lineno}: expected a read header starting with '@', found {what}"
                )
                la.pop()
                self._resync()
                index += 1
                continue
            title = head[1:].rstrip(b"\r\n").decode("utf-8", "replace")
            fields = title.split(None, 1)
            name = fields[0] if fields else ""
            description = fields[1].strip() if len(fields) > 1 else ""
            rest = [la.peek(i) for i in (1, 2, 3)]
            if any(r is None for r in rest):
                have = 1 + sum(r is not None for r in rest)
                why = la.truncated or "the file ends"
                yield FastqProblem(
                    index,
                    lineno,
                    f"read {name!r} at line {lineno} is truncated after {have} of its 4 lines: {why}",
                )
                while la.pop() is not None:
                    pass
                return  # the break, if any, is told: one problem for one broken file
            (sl, seq), (pl, plus), (ql, qual) = rest
            if plus[:1] != b"+":
                yield FastqProblem(
                    index,
                    lineno,
                    f"read {name!r} (line {lineno}): expected the '+' separator line at line {pl}, "
                    f"found {preview(plus)}",
                )
                la.pop()
                self._resync()
                index += 1
                continue
            for _ in range(4):
                la.pop()
            seq = seq.rstrip(b"\r\n")
            qual = qual.rstrip(b"\r\n")
            problem = self._check(name, lineno, title, seq, sl, plus, pl, qual, ql)
            if problem:
                yield FastqProblem(index, lineno, problem)
            else:
                yield FastqRead(index, lineno, name, description, seq.decode("ascii"), qual.decode("ascii"))
            index += 1
        if la.truncated:
            yield FastqProblem(index, la.lineno, la.truncated)

    def _check(self, name, lineno, title, seq, sl, plus, pl, qual, ql) -> str | None:
        if not name:
            return f"line {lineno}: the read header has no name after '@'"
        if not seq and not qual:
            return f"empty read {name!r}: the sequence line {sl} has no bases"
        repeat = plus[1:].rstrip(b"\r\n").decode("utf-8", "replace")
        if repeat and repeat != title and repeat != name:
            return f"read {name!r} (line {lineno}): the '+' line {pl} names {repeat!r}, not the read"
        bad = bad_positions(seq, self.table)
        if len(bad):
            i = int(bad[0])
            return (
                f"read {name!r}: illegal character {show_char(seq[i])} in the sequence at line {sl}, "
                f"column {i + 1} (allowed: IUPAC nucleotide codes)"
            )
        if len(seq) != len(qual):
            return (
                f"read {name!r} (line {lineno}): the sequence (line {sl}) has {len(seq)} bases but the "
                f"quality (line {ql}) has {len(qual)} characters"
            )
        q = np.frombuffer(qual, dtype=np.uint8)
        if len(q) and (q.min() < 33 or q.max() > 126):
            i = int(np.flatnonzero((q < 33) | (q > 126))[0])
            return f"read {name!r}: quality character {show_char(qual[i])} at line {ql}, column {i + 1} is outside '!'..'~'"
        return None


# -- BGZF -----------------------------------------------------------------------------


class BgzfError(ValueError):
    """A BGZF file whose blocks cannot be walked (truncated or not BGZF)."""


def bgzf_blocks(f) -> Iterator[tuple[int, int, int, int]]:
    """``(cstart, clen, ustart, ulen)`` for each block of a BGZF file object, EOF block included."""
    f.seek(0, io.SEEK_END)
    total = f.tell()
    cstart = ustart = 0
    while cstart < total:
        f.seek(cstart)
        head = f.read(18)
        if len(head) < 18 or head[:2] != GZIP_MAGIC or not head[3] & 4:
            raise BgzfError(f"no BGZF block header at byte {cstart}")
        xlen = struct.unpack("<H", head[10:12])[0]
        extra = (head[12:18] + f.read(max(xlen - 6, 0)))[:xlen]
        if len(extra) < xlen:
            raise BgzfError(f"the gzip block at byte {cstart} is cut off inside its header")
        bsize = None
        i = 0
        while i + 4 <= xlen:
            si, slen = extra[i : i + 2], struct.unpack("<H", extra[i + 2 : i + 4])[0]
            if si == b"BC" and slen == 2 and i + 6 <= xlen:
                bsize = struct.unpack("<H", extra[i + 4 : i + 6])[0]
            i += 4 + slen
        if bsize is None:
            raise BgzfError(f"the gzip block at byte {cstart} has no BGZF size field")
        clen = bsize + 1
        if clen < 12 + xlen + 8:  # header, extra field, CRC and length: a smaller block is damaged
            raise BgzfError(f"the BGZF block at byte {cstart} declares {clen} bytes, fewer than its header holds")
        if cstart + clen > total:
            raise BgzfError(
                f"the BGZF block at byte {cstart} needs {clen} bytes but the file ends after {total - cstart}"
            )
        f.seek(cstart + clen - 4)
        ulen = struct.unpack("<I", f.read(4))[0]
        yield cstart, clen, ustart, ulen
        cstart += clen
        ustart += ulen


def gzi_entries(path: str) -> tuple[list[tuple[int, int]], bool]:
    """The htslib ``.gzi`` entries of a BGZF file and whether it ends with the EOF block."""
    with open(path, "rb") as f:
        blocks = list(bgzf_blocks(f))
        has_eof = False
        if blocks and blocks[-1][3] == 0:
            f.seek(blocks[-1][0])
            has_eof = f.read(len(BGZF_EOF)) == BGZF_EOF
            if has_eof:
                blocks.pop()
    # htslib leaves out the first block (0, 0) and the EOF block
    return [(c, u) for c, _, u, _ in blocks[1:]], has_eof


def gzi_bytes(entries: list[tuple[int, int]]) -> bytes:
    return struct.pack("<Q", len(entries)) + b"".join(struct.pack("<QQ", c, u) for c, u in entries)


def bgzf_compress(data: bytes, level: int = 6) -> bytes:
    """``data`` as a BGZF file (what ``bgzip`` writes), EOF block included."""
    out = bytearray()
    for start in range(0, len(data), BGZF_BLOCK):
        chunk = data[start : start + BGZF_BLOCK]
        comp = zlib.compressobj(level, zlib.DEFLATED, -15)
        cdata = comp.compress(chunk) + comp.flush()
        bsize = 18 + len(cdata) + 8 - 1
        out += b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00" + struct.pack("<H", bsize)
        out += cdata + struct.pack("<II", zlib.crc32(chunk) & 0xFFFFFFFF, len(chunk))
    return bytes(out + BGZF_EOF)
