"""FASTA/FASTQ parsing helpers, usable without Ray.

- ``compression_of`` tells plain text, plain gzip and BGZF (bgzip) apart by their first bytes.
- ``FastaScanner`` reads a FASTA byte stream line by line (a plain one in large blocks, with
  runs of equal lines counted at once) and reports each record's layout (name, header
  line, byte range, line geometry) and, on request, its sequence. The
  driver uses the layout to write a samtools-style ``.fai``; the streaming reader uses
  the sequences. The layout also lists the record's assembly gaps (runs of at least
  ``GAP_MIN`` N), so the driver can count the windows that lie in them. Problems that
  concern one record (empty, duplicate name, header without a name, compressed data
  ending inside it) are attached to that record; problems that make the whole stream
  unreadable set ``fatal``; a stream of nothing but blank lines sets ``empty``.
- ``FastqParser`` yields reads and bad chunks of a FASTQ stream, resynchronising after a
  malformed record so that the good reads before and after it are kept; a broken
  compressed stream is one problem.
- ``bgzf_blocks``/``write_gzi``/``bgzf_compress``: BGZF block handling and the htslib
  ``.gzi`` index, written without Biopython.

One module because scanning FASTA, parsing FASTQ and walking BGZF blocks share the
same byte-level handling of compressed streams (what a cut gzip or BGZF block looks
like, where a record ends when the stream breaks), and each of them needs it.
"""

from __future__ import annotations

import bisect
import gzip
import io
import re
import struct
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

#: IUPAC nucleotide codes and the gap; case-insensitive.
DNA_ALPHABET = "ACGTURYSWKMBDHVN-"
#: FASTQ also sees '.' for an unknown base (older Illumina pipelines).
FASTQ_ALPHABET = DNA_ALPHABET + "."

GZIP_MAGIC = b"\x1f\x8b"
#: The empty block bgzip writes at the end of every BGZF file.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
#: Uncompressed bytes per BGZF block, as bgzip writes them.
BGZF_BLOCK = 0xFF00
#: What a damaged or truncated compressed stream raises while being read.
DECOMPRESS_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".ffn", ".frn", ".fas", ".fsa", ".seq", ".mfa")
FASTQ_SUFFIXES = (".fq", ".fastq")
COMPRESSED_SUFFIXES = (".gz", ".bgz")
INDEX_SUFFIXES = (".fai", ".gzi", ".fxi")

#: A run of at least this many N (either case) is an assembly gap. Shorter runs are
#: ordinary unknown bases; keeping only the long ones bounds what a scan stores.
GAP_MIN = 10
_N_RUN = re.compile(rb"[Nn]+")


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


def compression_of(head: bytes) -> str:
    """``"plain"``, ``"gzip"`` or ``"bgzf"`` from the first 18 bytes of a file."""
    if head[:2] != GZIP_MAGIC:
        return "plain"
    if len(head) >= 16 and head[3] & 4 and head[12:14] == b"BC" and head[14:16] == b"\x02\x00":
        return "bgzf"
    return "gzip"


def open_text_stream(raw) -> tuple[io.BufferedIOBase, str]:
    """Wrap a binary file object so that it yields decompressed lines; returns it and the compression."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw, 1 << 20)
    kind = compression_of(buffered.peek(18)[:18])
    if kind == "plain":
        return buffered, kind
    # iterate the GzipFile itself: a BufferedReader on top would drop the data it had read
    # when the stream breaks, and the lines before a truncation must survive
    return gzip.GzipFile(fileobj=buffered, mode="rb"), kind


def preview(line: bytes, limit: int = 40) -> str:
    """A short, printable rendering of a line for error messages."""
    text = line.rstrip(b"\r\n")[:limit]
    try:
        shown = text.decode("utf-8")
        if not shown.isprintable():
            raise ValueError
        return repr(shown) + ("…" if len(line.rstrip(b"\r\n")) > limit else "")
    except ValueError:
        return repr(text)


def looks_binary(line: bytes) -> bool:
    if b"\0" in line:
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


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


# -- FASTA ----------------------------------------------------------------------------


@dataclass
class FastaLayout:
    """Where one FASTA record lies in its (decompressed) file and how its lines are laid out.

    ``runs`` are runs of equal sequence lines: ``[first_line, first_base, bases, width,
    count]`` where ``width`` counts the line terminator. A record is *regular* (samtools
    and pyfaidx can index it) when all its lines but the last have the same length and
    terminator and no blank line sits between sequence lines.
    """

    name: str
    description: str
    header_line: int
    offset: int = 0
    end: int = 0
    length: int = 0
    runs: list = field(default_factory=list)
    blank_inside: int | None = None
    problem: str | None = None
    #: assembly gaps: ``[start, end]`` base ranges (0-based, end excluded) of runs of at
    #: least ``GAP_MIN`` N, ascending
    gaps: list = field(default_factory=list)

    def geometry(self) -> tuple[int, int] | None:
        """``(linebases, linewidth)`` for the ``.fai``, or None when the lines are irregular."""
        if self.blank_inside is not None:
            return None
        runs = self.runs
        if not runs:
            return (0, 0)
        _, _, bases, width, _ = runs[0]
        if len(runs) == 1:
            return (bases, width)
        if len(runs) == 2:
            _, _, b2, w2, c2 = runs[1]
            # the last line may be shorter, and at the end of the file may lack its newline
            if c2 == 1 and b2 < bases and (w2 - b2 == width - bases or w2 == b2):
                return (bases, width)
        return None

    @property
    def regular(self) -> bool:
        return self.geometry() is not None

    def first_irregular_line(self) -> int | None:
        """The line a person should look at when the record is irregular."""
        if self.blank_inside is not None:
            return self.blank_inside
        if len(self.runs) < 2:
            return None
        # the first run that breaks the pattern: the second, unless it looks like a valid
        # last line (one shorter line with the same terminator) and a third follows
        (_, _, b0, w0, _), (l1, _, b1, w1, c1) = self.runs[0], self.runs[1]
        if len(self.runs) > 2 and c1 == 1 and b1 < b0 and w1 - b1 == w0 - b0:
            return self.runs[2][0]
        return l1

    def locate(self, base: int) -> tuple[int, int]:
        """``(line, column)`` (1-based) of base ``base`` (0-based within the record)."""
        starts = [r[1] for r in self.runs]
        i = max(bisect.bisect_right(starts, base) - 1, 0)
        first_line, first_base, bases, _, count = self.runs[i]
        if bases == 0:
            return first_line, 1
        k = min((base - first_base) // bases, count - 1)
        return first_line + k, base - first_base - k * bases + 1

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "header_line": self.header_line,
            "offset": self.offset,
            "end": self.end,
            "length": self.length,
            "runs": self.runs,
            "blank_inside": self.blank_inside,
            "problem": self.problem,
            "gaps": self.gaps,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FastaLayout:
        return cls(**d)


#: Bytes read at a time by ``FastaScanner`` from a plain stream.
_SCAN_BLOCK = 1 << 20


class _GapRuns:
    """The runs of N in one record's sequence lines, joined across line breaks, in base
    coordinates; ``take`` returns those of at least ``GAP_MIN`` bases and starts afresh."""

    def __init__(self):
        self.runs: list[list[int]] = []
        self.start = self.end = -1

    def _add(self, start: int, end: int) -> None:
        if start == self.end:  # the run goes on from the line before
            self.end = end
            return
        self._close()
        self.start, self.end = start, end

    def _close(self) -> None:
        if self.end - self.start >= GAP_MIN:
            self.runs.append([self.start, self.end])

    def line(self, raw: bytes, bases: int, first_base: int) -> None:
        """One sequence line holding ``bases`` bases, the first of which is ``first_base``."""
        if b"N" not in raw and b"n" not in raw:  # a fast byte search first: most lines hold no N
            return
        if len(raw) > 256:  # a long line (a whole chromosome on one line): NumPy, not the regex engine
            self.lines(memoryview(raw)[:bases], bases, bases, first_base)
            return
        for m in _N_RUN.finditer(raw, 0, bases):
            self._add(first_base + m.start(), first_base + m.end())

    def lines(self, buf, bases: int, width: int, first_base: int) -> None:
        """Consecutive lines of ``width`` bytes holding ``bases`` bases each (bytes or a memoryview)."""
        arr = np.frombuffer(buf, dtype=np.uint8)
        at = np.flatnonzero((arr | 0x20) == 110)  # 'N' or 'n': no other byte gives 110
        if not at.size:
            return
        line = at // width
        base = first_base + line * bases + (at - line * width)
        breaks = np.flatnonzero(np.diff(base) != 1) + 1
        starts = base[np.concatenate(([0], breaks))]
        ends = base[np.concatenate((breaks - 1, [base.size - 1]))] + 1
        # a run shorter than a gap matters only at either end, where it may join the next lines'
        keep = ends - starts >= GAP_MIN
        keep[0] = keep[-1] = True
        for s, e in zip(starts[keep].tolist(), ends[keep].tolist()):
            self._add(s, e)

    def take(self) -> list[list[int]]:
        self._close()
        runs = self.runs
        self.__init__()
        return runs


def gap_runs(seq: bytes) -> list[list[int]]:
    """The assembly gaps of a sequence held in memory, as ``FastaScanner`` finds them."""
    runs = _GapRuns()
    runs.line(seq, len(seq), 0)
    return runs.take()


class FastaScanner:
    """Iterate the records of a FASTA byte stream (already decompressed).

    Yields ``FastaLayout`` (``collect=False``) or ``(FastaLayout, sequence bytes)``. After
    iteration: ``empty`` is true when the stream holds nothing but blank lines (no
    records, and nothing wrong either), ``fatal`` is a message when the stream is not
    FASTA at all (nothing was yielded before it), ``truncated`` a message when compressed data ended or broke
    (the record being read then carries the problem; ``truncated_line`` is where), and
    ``lines``/``bytes`` how far it got.
    """

    def __init__(self, stream: Iterable[bytes], *, collect: bool = False, where: str = ""):
        self.stream = stream
        self.collect = collect
        self.where = where
        self.fatal: str | None = None
        self.empty = False
        self.truncated: str | None = None
        self.truncated_line = 0
        #: True when the break was reported on the record being read (it carries the problem)
        self.truncated_in_record = False
        self.lines = 0
        self.bytes = 0

    def _at(self, text: str) -> str:
        return f"{self.where}: {text}" if self.where else text

    def _line_groups(self) -> Iterator[tuple[bytes, int, object, bool]]:
        """``(line, more, more_bytes, maybe_n)``: a line, then ``more`` lines right after it
        that look like it (same length and terminator, neither a header nor blank) and their
        bytes (a memoryview of the block); ``maybe_n`` is false when none of them holds an N.

        A plain binary stream is read in large blocks and split with NumPy, so the lines of
        a well-formed record cost nothing each; any other stream (compressed, a generator)
        is iterated line by line, ``more`` always 0, so that a stream that breaks keeps
        every line before the break.
        """
        stream = self.stream
        if not isinstance(stream, (io.BufferedIOBase, io.RawIOBase)) or isinstance(stream, gzip.GzipFile):
            for raw in stream:
                yield raw, 0, None, True
            return
        pending: list[bytes] = []  # a line that goes on into the next block
        while True:
            data = stream.read(_SCAN_BLOCK)
            if not data:
                if pending:
                    yield b"".join(pending), 0, None, True  # the last line, without a newline
                return
            start = 0
            if pending:
                j = data.find(b"\n")
                if j < 0:
                    pending.append(data)
                    continue
                pending.append(data[: j + 1])
                yield b"".join(pending), 0, None, True
                pending = []
                start = j + 1
            arr = np.frombuffer(data, dtype=np.uint8)
            nl = np.flatnonzero(arr[start:] == 10)
            if not nl.size:
                if start < len(data):
                    pending.append(data[start:])
                continue
            ends = nl + (start + 1)
            starts = np.empty_like(ends)
            starts[0] = start
            starts[1:] = ends[:-1]
            n = ends - starts
            cr = (n >= 2) & (arr[np.maximum(ends - 2, 0)] == 13)
            c = n - 1 - cr
            seq_like = (c > 0) & (arr[starts] != 62)
            same = np.zeros(n.size, dtype=bool)
            same[1:] = seq_like[1:] & seq_like[:-1] & (n[1:] == n[:-1]) & (cr[1:] == cr[:-1])
            heads = np.flatnonzero(~same)
            last = np.append(heads[1:], n.size) - 1
            view = memoryview(data)
            # two byte searches per block spare a look for gaps in every line of a genome without N
            maybe_n = data.find(b"N", start) >= 0 or data.find(b"n", start) >= 0
            for s, e, more, stop in zip(
                starts[heads].tolist(), ends[heads].tolist(), (last - heads).tolist(), ends[last].tolist()
            ):
                yield data[s:e], more, (view[e:stop] if more else None), maybe_n
            tail = int(ends[-1])
            if tail < len(data):
                pending.append(data[tail:])

    def __iter__(self) -> Iterator:
        rec: FastaLayout | None = None
        parts: list = []
        seen: dict[str, int] = {}
        records = 0
        pos = 0
        lineno = 0
        bases = 0
        runs: list = []
        blank_at: int | None = None
        gaps = _GapRuns()
        seen_text = False  # a line that is neither blank nor a header: the file is not empty
        it = self._line_groups()
        pushed: list[bytes] = []  # lines of a group met before the first record, taken one by one
        while True:
            if pushed:
                raw, more, more_bytes, maybe_n = pushed.pop(), 0, None, True
            else:
                try:
                    raw, more, more_bytes, maybe_n = next(it)
                except StopIteration:
                    break
                except DECOMPRESS_ERRORS as exc:
                    self.truncated = self._at(
                        f"the compressed data ends early or is damaged after line {lineno} "
                        f"(byte {pos} of the decompressed text): {exc}"
                    )
                    self.truncated_line = lineno
                    if rec is not None:
                        rec.problem = rec.problem or (
                            f"record {rec.name!r} (line {rec.header_line}) is cut off: {self.truncated}"
                        )
                        rec.end, rec.length, rec.runs, rec.gaps = pos, bases, runs, gaps.take()
                        self.truncated_in_record = True
                        yield (rec, b"") if self.collect else rec
                        rec = None
                    break
                if more and rec is None:  # before the first record every line is looked at
                    n = len(raw)
                    pushed = [bytes(more_bytes[i * n : (i + 1) * n]) for i in range(more - 1, -1, -1)]
                    more = 0
            lineno += 1
            n = len(raw)
            if n and raw[0] == 62:  # '>'
                if rec is not None:
                    rec.end, rec.length, rec.runs, rec.gaps = pos, bases, runs, gaps.take()
                    self._finish(rec, blank_at)
                    yield (rec, self._join(parts)) if self.collect else rec
                rec = self._header(raw, lineno, seen)
                records += 1
                pos += n
                rec.offset = pos
                parts, bases, runs, blank_at = [], 0, [], None
                continue
            if rec is None:
                if not raw.strip():
                    pos += n
                    continue
                seen_text = True
                if raw[0] == 59:  # ';' comment before the first record
                    pos += n
                    continue
                if looks_binary(raw):
                    self.fatal = self._at(
                        f"not a FASTA file: line {lineno} holds binary data ({preview(raw, 16)}); "
                        "expected a header line starting with '>'"
                    )
                else:
                    self.fatal = self._at(
                        f"not a FASTA file: line {lineno} should be a header starting with '>' but is {preview(raw)}"
                    )
                self.lines, self.bytes = lineno, pos
                return
            if n and raw[-1] == 10:
                c = n - 2 if n >= 2 and raw[-2] == 13 else n - 1
            else:
                c = n
            if c == 0:
                if blank_at is None:
                    blank_at = lineno
                pos += n
                continue
            if blank_at is not None and rec.blank_inside is None:
                rec.blank_inside = blank_at
            if self.collect:
                parts.append(raw)
            if maybe_n:
                gaps.line(raw, c, bases)
            if runs and runs[-1][2] == c and runs[-1][3] == n:
                runs[-1][4] += 1
            else:
                runs.append([lineno, bases, c, n, 1])
            bases += c
            pos += n
            if more:  # lines shaped like this one: one run, counted at once
                if self.collect:
                    parts.append(more_bytes)
                if maybe_n:
                    gaps.lines(more_bytes, c, n, bases)
                runs[-1][4] += more
                bases += c * more
                pos += n * more
                lineno += more
        if rec is not None:
            rec.end, rec.length, rec.runs, rec.gaps = pos, bases, runs, gaps.take()
            if self.truncated is None:
                self._finish(rec, blank_at)
            yield (rec, self._join(parts)) if self.collect else rec
        elif self.truncated is None and not records:
            if seen_text:
                self.fatal = self._at("not a FASTA file: it holds no header line starting with '>'")
            else:  # nothing at all, or blank lines: nothing wrong, and nothing to read
                self.empty = True
        self.lines, self.bytes = lineno, pos

    @staticmethod
    def _join(parts: list[bytes]) -> bytes:
        return b"".join(parts).translate(None, b"\r\n")

    def _header(self, raw: bytes, lineno: int, seen: dict[str, int]) -> FastaLayout:
        body = raw[1:].rstrip(b"\r\n")
        problem = None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("utf-8", "replace")
            problem = f"the header at line {lineno} is not UTF-8 text: {preview(raw)}"
        fields = text.split(None, 1)
        name = fields[0] if fields else ""
        description = fields[1].strip() if len(fields) > 1 else ""
        if not name and problem is None:
            problem = f"the header at line {lineno} has no record name after '>'"
        if name and problem is None:
            if name in seen:
                problem = (
                    f"duplicate record name {name!r} at line {lineno} (first at line {seen[name]}); the first is kept"
                )
            else:
                seen[name] = lineno
        return FastaLayout(name=name, description=description, header_line=lineno, problem=problem)

    @staticmethod
    def _finish(rec: FastaLayout, blank_at: int | None) -> None:
        if rec.problem is None and rec.length == 0:
            rec.problem = f"empty record {rec.name!r}: the header at line {rec.header_line} has no sequence lines"


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
