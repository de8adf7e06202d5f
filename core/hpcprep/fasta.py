"""FASTA scanning shared by every reader of FASTA (genomics windows, protein records).

``FastaScanner`` reads a FASTA byte stream (already decompressed) line by line, a plain
one in large blocks with runs of equal lines counted at once, and reports each record's
layout (name, header line, byte range, line geometry, runs of N) and, on request, its
sequence. Problems of one record (empty, a header without a name, a duplicate name,
compressed data ending inside it) are attached to that record; a stream that is not
FASTA at all sets ``fatal``; a stream of nothing but blank lines sets ``empty``. What a
reader does with a record (windows of DNA, a protein's residues) and which letters it
allows is the reader's.
"""

from __future__ import annotations

import bisect
import gzip
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .compressed import DECOMPRESS_ERRORS

#: A run of at least this many N (either case) is an assembly gap. Shorter runs are
#: ordinary unknown bases; keeping only the long ones bounds what a scan stores.
GAP_MIN = 10
_N_RUN = re.compile(rb"[Nn]+")


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

    def __init__(self, stream: Iterable[bytes], *, collect: bool = False, source: str = "", unique_names: bool = True):
        self.stream = stream
        self.collect = collect
        #: a name seen before is that record's problem (records are found by name: a .fai, ``records``)
        self.unique_names = unique_names
        self.source = source
        self.fatal: str | None = None
        self.empty = False
        self.truncated: str | None = None
        self.truncated_line = 0
        #: True when the break was reported on the record being read (it carries the problem)
        self.truncated_in_record = False
        self.lines = 0
        self.bytes = 0

    def _at(self, text: str) -> str:
        return f"{self.source}: {text}" if self.source else text

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
        if name and problem is None and self.unique_names:
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
