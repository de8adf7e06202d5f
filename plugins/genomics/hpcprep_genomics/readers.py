"""Reader stages ``genomics.fasta`` and ``genomics.fastq``.

``genomics.fasta`` indexes each local file once on the driver (``plan``), then reads
windows at random through pyfaidx in many Ray read tasks, so one large genome is spread
over the cluster. ``genomics.fastq`` streams each file in one read task. Both put bad
records in the run's errors table with the file, line and what was expected, and keep
everything else. See ``plugins/genomics/docs/readers.md``.

One module because both readers share the parameters (paths, windows, gaps, tails,
labels), the planning of items and the counting of what is skipped, and the FASTA
reader's plan and read must agree window for window so the books balance; parsing is
in ``fastx``, indexing in ``fasta_index``.
"""

from __future__ import annotations

import bisect
import logging
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hpcprep import Column, ErrorRecord, InputItem, LocalPath, RecordError, StageExamples, record_id
from hpcprep.columns import RowBatch, object_column
from hpcprep.compressed import DECOMPRESS_ERRORS, open_decompressed
from hpcprep.file_reader import FileParams, FileReader
from hpcprep.storage import is_s3, open_input
from pydantic import Field, model_validator

from .fasta_index import default_cache_dir, index_fasta
from .fastx import (
    DNA_ALPHABET,
    FASTA_SUFFIXES,
    FASTQ_ALPHABET,
    FASTQ_SUFFIXES,
    GAP_MIN,
    INDEX_SUFFIXES,
    FastaLayout,
    FastaScanner,
    FastqParser,
    FastqProblem,
    allowed_table,
    bgzf_compress,
    file_stem,
    gap_runs,
    parent_name,
    show_char,
    window_count,
    with_compression,
)

log = logging.getLogger("hpcprep.genomics")

#: Rows per batch a read task hands on at most.
MAX_BATCH_ROWS = 65536
#: Bases fetched from the file at a time when reading windows.
FETCH_BASES = 1 << 20
#: ``error_type`` of a window that a streamed file skips (see ``FastaReader._read_stream``).
SKIPPED = "Skipped"
#: A local file up to this size is looked into on the driver to tell an empty one.
EMPTY_PEEK_BYTES = 64 << 10
#: A batch of at most this many windows is NumPy columns rather than Arrow (see _Chunks).
SMALL_BATCH_ROWS = 16
#: Plain files up to this size are read whole by their read task, without an index: one
#: FASTA per gene, per protein, per design.
WHOLE_FILE_BYTES = 1 << 20

LabelFrom = Literal["file_stem", "parent_dir"]


def _label_for(path: str, label: str | None, label_from: str | None) -> str:
    if label is not None:
        return label
    if label_from == "file_stem":
        return file_stem(path)
    if label_from == "parent_dir":
        return parent_name(path)
    return ""


class _SequenceFiles(FileReader):
    """FASTA and FASTQ readers' files: those ``paths`` name or hold, less the index files and
    half-written temporaries that indexing leaves beside them."""

    def files(self) -> list[tuple[str, int | None]]:
        return [(p, s) for p, s in super().files() if not p.lower().endswith(INDEX_SUFFIXES) and ".tmp-" not in p]


def _holds_nothing(path: str, size: int | None) -> bool:
    """Whether an input file holds no text but blank lines (0 bytes, a gzip of nothing...),
    judged on the driver: from its size, and for a small local file from its contents."""
    if size == 0:
        return True
    if size is None or size > EMPTY_PEEK_BYTES or is_s3(path):
        return False
    try:
        with open(path, "rb") as raw:
            stream, _ = open_decompressed(raw)
            seen = 0
            while seen < 16 * EMPTY_PEEK_BYTES:  # a small gzip of blanks can be a large text
                chunk = stream.read(EMPTY_PEEK_BYTES)
                if not chunk:
                    return True
                if chunk.strip():
                    return False
                seen += len(chunk)
    except (OSError, *DECOMPRESS_ERRORS):
        pass  # a damaged file is not empty: the read task reports what is wrong with it
    return False


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _empty_note(names: list[str], what: str) -> list[str]:
    if not names:
        return []
    return [f"{len(names)} empty input file(s), holding no {what} (no rows, no errors): {_some(names)}"]


class _Chunks:
    """Columns of the batch being built, as chunks of Arrow arrays (one per fetched span).

    A batch of a few rows (a small file's) is kept as NumPy columns instead: the read task
    joins the NumPy batches of hundreds of small files and makes Arrow of them once,
    where Arrow arrays of one row each would cost more than the reading."""

    def __init__(self):
        self.parts: list[dict[str, pa.Array]] = []
        self.lengths: list[int] = []
        self.flushed = 0

    def __len__(self) -> int:
        return sum(self.lengths)

    def extend(self, **columns) -> None:
        """Add a chunk of Arrow arrays, or of NumPy arrays (see the class docstring)."""
        self.parts.append(columns)
        self.lengths.append(len(next(iter(columns.values()))))

    def truncate(self, n: int) -> None:
        """Back to ``n`` rows, a length this batch had before (a chunk boundary)."""
        while self.lengths and len(self) > n:
            self.parts.pop()
            self.lengths.pop()
        if len(self) != n:
            raise ValueError(f"cannot truncate to {n} rows: not a chunk boundary")

    def flush(self) -> dict[str, pa.Array | pa.ChunkedArray | np.ndarray]:
        """The columns, each one array where it fits (a string column past 2 GB stays chunked);
        NumPy when every part was."""
        out = {}
        if all(isinstance(v, np.ndarray) for part in self.parts for v in part.values()):
            for name in self.parts[0]:
                out[name] = np.concatenate([part[name] for part in self.parts])
            self.flushed = len(self)
            self.parts, self.lengths = [], []
            return out
        for name in self.parts[0]:
            chunks = [c for part in self.parts for c in _chunks_of(_arrow(part[name]))]
            try:
                out[name] = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
            except (pa.ArrowInvalid, pa.ArrowCapacityError):
                out[name] = pa.chunked_array(chunks)
        self.flushed = len(self)
        self.parts, self.lengths = [], []
        return out


def _arrow(values) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    return pa.array(values, type=pa.string() if values.dtype == object else None)


def _chunks_of(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return values.chunks if isinstance(values, pa.ChunkedArray) else [values]


#: Bytes of window text in one string array at most (Arrow's 32-bit offsets).
_STRING_BYTES = (1 << 31) - 1


def _same(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _windows_of(data: bytes, a: np.ndarray, b: np.ndarray) -> pa.Array | pa.ChunkedArray:
    """A string array of ``data[a[i]:b[i]]`` (ASCII), without a Python string per window:
    adjacent windows share the bytes as they are, others are gathered in one NumPy pass.
    Windows of more than 2 GB of text in all come as a chunked array."""
    if int((b - a).sum()) > _STRING_BYTES:
        if len(a) == 1:
            raise RecordError(f"a window of {int(b[0] - a[0])} bases is more than one Arrow string holds (2 GB)")
        cut = len(a) // 2
        halves = (_windows_of(data, a[:cut], b[:cut]), _windows_of(data, a[cut:], b[cut:]))
        return pa.chunked_array([c for h in halves for c in _chunks_of(h)], type=pa.string())
    if len(a) > 1 and np.array_equal(a[1:], b[:-1]):
        offsets = np.append(a, b[-1]) - a[0]
        body = data[a[0] : b[-1]]
    else:
        lengths = b - a
        offsets = np.zeros(len(a) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        index = np.arange(offsets[-1], dtype=np.int64) + np.repeat(a - offsets[:-1], lengths)
        body = np.frombuffer(data, dtype=np.uint8)[index].tobytes()
    return pa.Array.from_buffers(
        pa.string(), len(a), [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(body)]
    )


# -- FASTA ----------------------------------------------------------------------------


class FastaParams(FileParams):
    paths: list[LocalPath] = Field(description="FASTA files (plain, gzip or bgzip), directories, globs or s3:// URIs")
    suffixes: list[str] | None = Field(
        list(with_compression(FASTA_SUFFIXES)),
        description="when expanding directories keep only files ending in one of these (.fai/.gzi are always skipped)",
    )
    window: int | None = Field(
        None, ge=1, description="window length in bases; None gives whole records (or BED regions)"
    )
    stride: int | None = Field(None, ge=1, description="bases between window starts (default: window, i.e. tiling)")
    min_length: int = Field(
        0,
        ge=0,
        description="drop windows (a short last one) or records shorter than this; counted in the manifest notes",
    )
    min_tail: int | None = Field(
        None,
        ge=0,
        description="drop a record's last window when it is shorter than window and than this; counted in the notes "
        "(default: half the window; 0 keeps every tail)",
    )
    keep_gaps: bool = Field(
        False,
        description=f"keep windows lying wholly in an assembly gap (a run of >= {GAP_MIN} N); by default they "
        "are skipped and counted in the manifest notes",
    )
    bed: LocalPath | None = Field(
        None, description="BED file of regions (chrom, 0-based start, end, optional name) to read"
    )
    label: str | None = Field(None, description="text put in the label column of every record (e.g. the organism)")
    label_from: LabelFrom | None = Field(
        None, description="derive the label per file: 'file_stem' (lambda.fa.gz -> lambda) or 'parent_dir'"
    )
    records: list[str] | None = Field(None, description="read only the records with these names")
    uppercase: bool = Field(False, description="upper-case the sequence (default: as in the file, soft-masking kept)")
    alphabet: str = Field(DNA_ALPHABET, description="allowed sequence characters, either case; others are errors")
    item_bases: int = Field(
        8_000_000, ge=1, description="bases of sequence per Ray read task (large records are split)"
    )
    cache_dir: LocalPath | None = Field(
        None,
        description="where indexes and decompressed gzip copies go (default $HPCPREP_CACHE_DIR or "
        "~/.cache/hpcprep); plain files of at most 1 MiB need none, they are read whole",
    )
    index_beside: bool = Field(
        True,
        description="use a .fai (.gzi) already beside the FASTA when it is exactly the index hpcprep would build; "
        "hpcprep never writes beside the inputs",
    )
    decompress_gzip: bool = Field(
        True, description="decompress plain gzip once into cache_dir for random access; false streams it in one task"
    )

    @model_validator(mode="after")
    def _consistent(self):
        if self.stride is not None and self.window is None:
            raise ValueError("stride needs window: set window too, or leave stride out for whole records")
        if self.label is not None and self.label_from is not None:
            raise ValueError("give label or label_from, not both")
        if not self.alphabet:
            raise ValueError("alphabet must not be empty")
        if self.window is not None and self.min_length > self.window:
            raise ValueError(
                f"min_length={self.min_length} is longer than window={self.window}: every window would be dropped"
            )
        return self


def load_bed(path: str, s3=None) -> dict[str, list[tuple[int, int, str, int]]]:
    """BED regions by chrom: ``(start, end, name, line)``, sorted; a malformed line raises ValueError."""
    regions: dict[str, list[tuple[int, int, str, int]]] = {}
    with open_input(path, s3) as raw:
        stream, _ = open_decompressed(raw)
        for lineno, rawline in enumerate(stream, 1):
            line = rawline.decode("utf-8", "replace").rstrip("\r\n")
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            if len(fields) < 3:
                raise ValueError(f"{path} line {lineno}: a BED line needs chrom, start and end; got {line[:60]!r}")
            chrom = fields[0]
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise ValueError(
                    f"{path} line {lineno}: start and end must be whole numbers; got {fields[1]!r} and {fields[2]!r}"
                ) from None
            if start < 0 or end < start:
                raise ValueError(f"{path} line {lineno}: need 0 <= start <= end; got {start} and {end}")
            name = fields[3] if len(fields) > 3 and fields[3] not in ("", ".") else f"{chrom}:{start}-{end}"
            regions.setdefault(chrom, []).append((start, end, name, lineno))
    for chrom in regions:
        regions[chrom].sort()
    return regions


class FastaReader(_SequenceFiles):
    """FASTA records or windows of them, read at random through a pyfaidx index built once on the driver."""

    name = "genomics.fasta"
    Params = FastaParams
    outputs = (
        Column("source", "string", "path or URI of the FASTA file"),
        Column("record_id", "string", "stable id: record_id(source, name, offset), plus 'bed:LINE' with a BED file"),
        Column("name", "string", "record name (first word of the header)"),
        Column("description", "string", "rest of the header line"),
        Column("offset", "int64", "0-based start of the window in the record"),
        Column("length", "int64", "bases in the window"),
        Column("record_length", "int64", "bases in the whole record"),
        Column("sequence", "string", "the bases, as in the file unless uppercase"),
        Column("label", "string", "label or label_from, empty when neither is set"),
        Column("region", "string", "BED region name (chrom:start-end when unnamed); empty without bed"),
    )

    _COLS = ("record_id", "name", "description", "offset", "length", "record_length", "sequence", "region")
    _INTS = ("offset", "length", "record_length")

    # -- driver ---------------------------------------------------------------------

    def _cache_dir(self) -> str:
        return self.params.cache_dir or default_cache_dir()

    def plan(self) -> list[InputItem]:
        p = self.params
        s3 = p.s3()
        files = self.files()
        bed = load_bed(p.bed, s3) if p.bed else None
        items: list[InputItem] = []
        names_seen: set[str] = set()
        all_indexed = True
        tally = _PlanTally()
        indexes = self._index_all([(path, size) for path, size in files if size != 0 and not is_s3(path)])
        for path, size in files:
            label = _label_for(path, p.label, p.label_from)
            # a local file the driver scans is judged empty by its scan; only one it does not
            # look into (streamed) is peeked at
            local_stream = not is_s3(path) and size != 0 and getattr(indexes[path], "mode", None) == "stream"
            if (size == 0 or is_s3(path) or local_stream) and _holds_nothing(path, size):
                tally.empty.append(os.path.basename(path))
                items.append(InputItem(path, len(items), size, meta={"empty": True}))
                continue
            if is_s3(path):
                all_indexed = False
                tally.streamed.append(os.path.basename(path))
                items.append(self._stream_item(path, len(items), size, label, bed))
                continue
            idx = indexes[path]
            if isinstance(idx, Exception):
                # one file that cannot be indexed is that file's error, not the whole run's
                exc = idx
                log.warning("%s: cannot index it", path, exc_info=exc)
                all_indexed = False
                items.append(
                    InputItem(
                        path, len(items), size, meta={"fatal": f"{path}: cannot index it: {type(exc).__name__}: {exc}"}
                    )
                )
                continue
            for note in idx.notes:
                log.info("%s: %s", path, note)
            if idx.mode == "empty":
                tally.empty.append(os.path.basename(path))
                items.append(InputItem(path, len(items), size, meta={"empty": True}))
                continue
            if idx.mode == "stream":
                tally.streamed.append(os.path.basename(path))
            elif idx.mode == "faidx" and idx.open_path != idx.source:
                tally.decompressed.append(os.path.basename(path))
            if idx.mode != "whole":  # a file read whole has no index to read without
                tally.irregular += [
                    f"{os.path.basename(path)}:{r.name}" for r in idx.records if not r.problem and not r.regular
                ]
            if idx.mode == "fatal":
                all_indexed = False  # its records are unknown: do not call a wanted name missing
                items.append(InputItem(path, len(items), size, meta={"fatal": idx.fatal}))
            elif idx.mode == "stream":
                all_indexed = False
                items.append(self._stream_item(path, len(items), size, label, bed))
            else:  # faidx or whole
                names_seen.update(r.name for r in idx.records)
                items.extend(self._split(idx, size, label, bed, len(items), tally))
        if p.records and all_indexed:
            missing = [n for n in p.records if n not in names_seen]
            if missing:
                some = ", ".join(sorted(names_seen)[:10]) or "none"
                raise ValueError(f"records: no record named {missing} in the inputs (records there include: {some})")
        if bed is not None and all_indexed:
            absent = [(chrom, r) for chrom, rs in bed.items() if chrom not in names_seen for r in rs]
            if absent:
                errors = [
                    (
                        record_id(p.bed, chrom, start, f"bed:{line}"),
                        f"{p.bed} line {line}: no record named {chrom!r} in any input FASTA file",
                    )
                    for chrom, (start, end, _, line) in absent
                ]
                items.append(InputItem(p.bed, len(items), None, meta={"errors": errors}))
        self._notes = tally.notes(p, self._cache_dir(), self._min_tail())
        return items

    def _index_all(self, files: list[tuple[str, int | None]]) -> dict:
        """``index_fasta`` of each local file (or the exception it raised). Large files are
        indexed several at once (their scans, NumPy on large blocks, overlap); small ones
        one after the other, which is faster: their scans are short Python loops that
        threads would only queue for."""
        p = self.params

        def one(path):
            try:
                return index_fasta(
                    path,
                    cache_dir=self._cache_dir(),
                    beside=p.index_beside,
                    decompress_gzip=p.decompress_gzip,
                    whole_below=WHOLE_FILE_BYTES,
                )
            except Exception as exc:
                return exc

        sizes = dict(files)  # a file named twice is indexed once: one cache entry, one writer
        large = [path for path, size in sizes.items() if size is None or size > WHOLE_FILE_BYTES]
        out = {path: one(path) for path, size in sizes.items() if size is not None and size <= WHOLE_FILE_BYTES}
        if len(large) < 2:
            out.update((path, one(path)) for path in large)
            return out
        with ThreadPoolExecutor(max_workers=min(len(large), 2 * (os.cpu_count() or 1))) as pool:
            out.update(zip(large, pool.map(one, large), strict=True))
        return out

    def notes(self) -> list[str]:
        """How the files were read, where that is not the plain case, and what was skipped (set by ``plan``)."""
        return list(getattr(self, "_notes", []))

    def _stream_item(self, path, index, size, label, bed) -> InputItem:
        return InputItem(path, index, size, meta={"mode": "stream", "label": label, "bed": bed})

    def _segments(self, rec: FastaLayout, bed) -> list[tuple[int, int, str, int]]:
        if bed is None:
            return [(0, rec.length, "", 0)]
        return bed.get(rec.name, [])

    def _min_tail(self) -> int:
        p = self.params
        if p.window is None:
            return 0
        return p.window // 2 if p.min_tail is None else p.min_tail

    def _windows(self, n: int) -> tuple[int, str | None]:
        """Windows kept over ``n`` bases, and why the last one was dropped: ``"tail"``
        (shorter than the window and than ``min_tail``), ``"short"`` (than ``min_length``) or None.

        A segment shorter than the window gives one window that is not a tail: a short
        record is data, a few bases left over at the end of a long one are not worth a row.
        """
        p = self.params
        k = window_count(n, p.window, p.stride)
        if not k:
            return 0, None
        if p.window is None:
            return (0, "short") if n < p.min_length else (1, None)
        last = min(p.window, n - (k - 1) * (p.stride or p.window))
        if k > 1 and last < p.window and last < self._min_tail():
            return k - 1, "tail"
        if last < p.min_length:
            return k - 1, "short"
        return k, None

    def _span(self, seg: tuple[int, int], k0: int, k1: int) -> tuple[int, int]:
        s, e = seg
        p = self.params
        if p.window is None:
            return s, e
        stride = p.stride or p.window
        return s + k0 * stride, min(s + (k1 - 1) * stride + p.window, e)

    def _bounds(self, seg: tuple[int, int], k0: int, k1: int) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends of windows ``k0..k1`` of segment ``seg``."""
        s, e = seg
        p = self.params
        if p.window is None:
            return np.array([s], dtype=np.int64), np.array([e], dtype=np.int64)
        starts = s + np.arange(k0, k1, dtype=np.int64) * (p.stride or p.window)
        return starts, np.minimum(starts + p.window, e)

    def _gaps_within(self, rec: FastaLayout, gap_ends: list[int], a: int, b: int) -> list | None:
        """The record's gaps that overlap bases ``a..b``, unless gaps are kept."""
        if self.params.keep_gaps or not rec.gaps:
            return None
        i = bisect.bisect_right(gap_ends, a)
        out = []
        while i < len(rec.gaps) and rec.gaps[i][0] < b:
            out.append(rec.gaps[i])
            i += 1
        return out or None

    def _split(self, idx, size, label, bed, first_index, tally: _PlanTally) -> list[InputItem]:
        p = self.params
        source = idx.source
        wanted = set(p.records) if p.records else None
        units: list[dict] = []
        last = len(idx.records) - 1
        for i, rec in enumerate(idx.records):
            # records not asked for are skipped, bad or not, except one cut off by a broken
            # compressed stream: the records after it are lost, and that must be told
            if wanted is not None and rec.name not in wanted and not (idx.truncated_in_record and i == last):
                continue
            if rec.problem:
                units.append(
                    {
                        "kind": "error",
                        "rid": record_id(source, rec.name, "line", rec.header_line),
                        "msg": f"{source}: {rec.problem}",
                        "at": rec.offset,
                    }
                )
                continue
            geometry = rec.geometry()
            regular = geometry is not None
            gap_ends = [g[1] for g in rec.gaps]
            for s, e, region, line in self._segments(rec, bed):
                if e > rec.length or s == e:
                    why = "is empty" if s == e else f"ends past the end of the record ({rec.length} bases)"
                    units.append(
                        {
                            "kind": "error",
                            "at": rec.offset,
                            "rid": record_id(source, rec.name, s, f"bed:{line}"),
                            "msg": f"{p.bed} line {line}: region {rec.name}:{s}-{e} {why} in {source}",
                        }
                    )
                    continue
                k, dropped = self._windows(e - s)
                if dropped:
                    tally.skipped[dropped] += 1
                if not k:
                    continue
                per = k
                if regular and p.window is not None:
                    per = max(1, p.item_bases // (p.stride or p.window))
                for k0 in range(0, k, per):
                    k1 = min(k, k0 + per)
                    a, b = self._span((s, e), k0, k1)
                    unit = {
                        "kind": "part",
                        "rec": i,
                        "seg": (s, e),
                        "k": (k0, k1),
                        "region": region,
                        "line": line,
                        "bases": b - a,
                        "at": rec.offset + _byte_offset(a, geometry),
                    }
                    gaps = self._gaps_within(rec, gap_ends, a, b)
                    if gaps:
                        # the read task skips the same windows, from the same gaps
                        unit["gaps"] = gaps
                        tally.skipped["gap"] += int(_in_gaps(*self._bounds((s, e), k0, k1), gaps).sum())
                    units.append(unit)
        if idx.truncated and not idx.truncated_in_record:
            units.append(
                {
                    "kind": "error",
                    "rid": record_id(source, "line", idx.truncated_line),
                    "msg": idx.truncated,
                    "at": idx.text_bytes,
                }
            )
        groups: list[list[dict]] = []
        current: list[dict] = []
        bases = 0
        for u in units:
            b = u.get("bases", 0)
            if current and bases and bases + b > p.item_bases:
                groups.append(current)
                current, bases = [], 0
            current.append(u)
            bases += b
        # a file with nothing to read (every record filtered or dropped) stays an input, so
        # that the plan and the manifest still list it and count its bytes
        groups.append(current)
        if idx.open_path == source:
            stat = (idx.size, idx.mtime_ns)
        else:
            st = os.stat(idx.open_path)
            stat = (st.st_size, st.st_mtime_ns)
        common = {
            "mode": idx.mode,
            "open": idx.open_path,
            "fai": idx.fai,
            "gzi": idx.gzi,
            "label": label,
            "stat": stat,
            "compression": idx.compression,
        }
        if len(groups) == 1:
            return [InputItem(source, first_index, size, meta=self._item_meta(idx, common, groups[0]))]
        size = idx.size if size is None else size
        text = max(idx.text_bytes, 1)
        bounds = [0]
        for g in groups[1:]:
            bounds.append(min(max(bounds[-1], g[0]["at"]), text))
        bounds.append(text)
        items = []
        for n, g in enumerate(groups):
            lo, hi = bounds[n], bounds[n + 1]
            # each item owns the file's bytes in proportion to the text it covers, so that
            # the items' sizes add up to the file's size (exactly the bytes, for plain text)
            share = size * hi // text - size * lo // text
            items.append(
                InputItem(
                    source, first_index + n, share, offset=lo, length=hi - lo, meta=self._item_meta(idx, common, g)
                )
            )
        return items

    @staticmethod
    def _item_meta(idx, common: dict, units: list[dict]) -> dict:
        recs = {u["rec"]: idx.records[u["rec"]].to_dict() for u in units if u["kind"] == "part"}
        return dict(common, units=units, records=recs)

    # -- read tasks -----------------------------------------------------------------

    def read(self, item: InputItem) -> Iterator[dict | ErrorRecord]:
        m = item.meta
        if m.get("empty"):
            return
        if "fatal" in m:
            raise RecordError(m["fatal"])
        if "errors" in m:
            for rid, msg in m["errors"]:
                yield ErrorRecord(item.source, rid, msg)
            return
        if m.get("mode") == "stream":
            yield from self._read_stream(item)
        else:
            yield from self._read_indexed(item)

    def _rid(self, source: str, name: str, start: int, bed_line: int) -> str:
        if self.params.bed:
            return record_id(source, name, start, f"bed:{bed_line}")
        return record_id(source, name, start)

    def _emit(
        self,
        rows: _Chunks,
        source: str,
        rec: FastaLayout,
        seq: str,
        span_start: int,
        seg: tuple[int, int],
        k0: int,
        k1: int,
        region: str,
        bed_line: int,
        table: np.ndarray,
        raw: bytes | None = None,
        gaps: list | None = None,
        gaps_are_errors: bool = False,
    ) -> Iterator[ErrorRecord]:
        """Rows for windows k0..k1 of segment ``seg``; ``seq`` holds bases from ``span_start``
        (``raw``, when given, is ``seq`` as ASCII bytes). Windows lying wholly in ``gaps`` are
        skipped: silently where the plan counted them, as ``Skipped`` errors where it could not
        (``gaps_are_errors``, a streamed file).

        The rows are built as Arrow arrays straight from the bytes (no Python string per
        window): the reader's largest cost on a genome was making those strings."""
        p = self.params
        starts, ends = self._bounds(seg, k0, k1)
        # record_id(source, name, start[, "bed:LINE"]) built from its common prefix
        prefix = record_id(source, rec.name)
        suffix = f":bed:{bed_line}" if p.bed else ""

        def rid(j: int) -> str:
            return f"{prefix}:{starts[j]}{suffix}"

        keep = np.ones(len(starts), dtype=bool)
        if gaps:
            in_gap = _in_gaps(starts, ends, gaps)
            keep &= ~in_gap
            if gaps_are_errors:
                for j in np.flatnonzero(in_gap):
                    yield ErrorRecord(
                        source,
                        rid(j),
                        f"{source}: record {rec.name!r}: window {starts[j]}-{ends[j]} "
                        f"lies in an assembly gap (a run of at least {GAP_MIN} N); "
                        "skipped (keep_gaps = true keeps it)",
                        SKIPPED,
                    )
        short = (ends - span_start > len(seq)) & keep
        for j in np.flatnonzero(short):
            keep[j] = False
            yield ErrorRecord(
                source,
                rid(j),
                f"{source}: record {rec.name!r} has fewer bases than its index says "
                f"(wanted {starts[j]}-{ends[j]}); was the file changed during the run?",
            )
        if raw is None:
            raw = seq.encode("ascii") if seq.isascii() else seq.encode("ascii", "replace")
        if raw.translate(None, _allowed_bytes(table)):  # some byte is not allowed
            bad = np.flatnonzero(~table[np.frombuffer(raw, dtype=np.uint8)])
            lo = np.searchsorted(bad, starts - span_start)
            hi = np.searchsorted(bad, ends - span_start)
            for j in np.flatnonzero((hi > lo) & keep):
                keep[j] = False
                i = int(bad[lo[j]])
                line, col = rec.locate(span_start + i)
                n_more = int(hi[j] - lo[j] - 1)
                more = f" (and {n_more} more in this window)" if n_more else ""
                yield ErrorRecord(
                    source,
                    rid(j),
                    f"{source}: record {rec.name!r}: illegal character {show_char(ord(seq[i]))} at line {line}, "
                    f"column {col}{more}, in window {starts[j]}-{ends[j]}; allowed: {p.alphabet} (either case)",
                )
        if not keep.all():
            starts, ends = starts[keep], ends[keep]
        n = len(starts)
        if not n:
            return
        # What is left is ASCII (every byte allowed), so byte i of raw is base i of seq.
        if len(rows) + n <= SMALL_BATCH_ROWS:  # every earlier chunk of the batch was small too
            text = raw.upper() if p.uppercase else raw
            a, b = (starts - span_start).tolist(), (ends - span_start).tolist()
            rows.extend(
                record_id=object_column([f"{prefix}:{x}{suffix}" for x in starts.tolist()]),
                name=object_column([rec.name] * n),
                description=object_column([rec.description] * n),
                offset=starts,
                length=ends - starts,
                record_length=np.full(n, rec.length, dtype=np.int64),
                sequence=object_column([text[x:y].decode("ascii") for x, y in zip(a, b)]),
                region=object_column([region] * n),
            )
            return
        ids = pc.binary_join_element_wise(prefix + ":", pa.array(starts).cast(pa.string()), suffix, "")
        rows.extend(
            record_id=ids,
            name=_same(rec.name, n),
            description=_same(rec.description, n),
            offset=starts,
            length=ends - starts,
            record_length=np.full(n, rec.length, dtype=np.int64),
            sequence=_windows_of(raw.upper() if p.uppercase else raw, starts - span_start, ends - span_start),
            region=_same(region, n),
        )

    def _finish(self, rows: _Chunks, source: str, label: str) -> dict:
        out = rows.flush()
        n = rows.flushed
        if isinstance(out["record_id"], np.ndarray):  # a small batch's NumPy columns
            out["source"], out["label"] = object_column([source] * n), object_column([label] * n)
        else:
            out["source"], out["label"] = _same(source, n), _same(label, n)
        return out

    def _read_windows(self, fa, rows: _Chunks, source: str, rec: FastaLayout, u: dict) -> list[ErrorRecord] | None:
        """The windows of unit ``u`` of a plain file, read a few at a time straight from the
        bytes (see ``_fetch_ascii``): small buffers that the allocator reuses, instead of fresh
        memory (page faults) as large as the unit. Returns the error records, or None (and
        leaves ``rows`` as it was) when some byte is not ASCII: pyfaidx then reads the unit."""
        p = self.params
        k0, k1 = u["k"]
        step = max(1, FETCH_BASES // (p.stride or p.window or FETCH_BASES))
        table = allowed_table(p.alphabet)
        n0 = len(rows)
        errors: list[ErrorRecord] = []
        for j0 in range(k0, k1, step):
            j1 = min(k1, j0 + step)
            a, b = self._span(u["seg"], j0, j1)
            if j1 < k1:  # up to the next piece: every byte of the unit is read (and checked), gaps too
                b = max(b, self._span(u["seg"], j1, j1 + 1)[0])
            raw = _fetch_ascii(fa, rec.name, a, b)
            if raw is None:
                rows.truncate(n0)
                return None
            errors.extend(
                self._emit(
                    rows,
                    source,
                    rec,
                    raw.decode("ascii"),
                    a,
                    u["seg"],
                    j0,
                    j1,
                    u["region"],
                    u["line"],
                    table,
                    raw,
                    gaps=u.get("gaps"),
                )
            )
        return errors

    def _not_text(self, source: str, rec: FastaLayout, u: dict) -> Iterator[ErrorRecord]:
        """An error for each window of unit ``u`` (but those the plan skipped as gaps): its
        bytes are not text."""
        k0, k1 = u["k"]
        a, b = self._span(u["seg"], k0, k1)
        line0, line1 = rec.locate(a)[0], rec.locate(max(b - 1, a))[0]
        starts, ends = self._bounds(u["seg"], k0, k1)
        skip = _in_gaps(starts, ends, u.get("gaps") or [])
        for ws, skipped in zip(starts.tolist(), skip.tolist()):
            if not skipped:
                yield ErrorRecord(
                    source,
                    self._rid(source, rec.name, ws, u["line"]),
                    f"{source}: record {rec.name!r}: bytes that are not text between "
                    f"lines {line0} and {line1}; expected sequence letters",
                )

    def _read_indexed(self, item: InputItem):
        m = item.meta
        source = item.source
        table = allowed_table(self.params.alphabet)
        for path in (m["open"], m["fai"], m["gzi"]):
            if path == source and not os.path.exists(path):
                raise RecordError(f"{source}: the file is gone since the run was planned")
            if path and not os.path.exists(path):
                raise RecordError(
                    f"{source}: the index file {path} made by the driver is not there; with several machines "
                    "cache_dir must be a folder every worker sees"
                )
        st = os.stat(m["open"])
        if (st.st_size, st.st_mtime_ns) != tuple(m["stat"]):
            raise RecordError(f"{source}: {m['open']} changed after the run was planned; run it again")
        whole = None
        if m["mode"] == "whole":
            with open(m["open"], "rb") as f:
                whole = f.read()
            if len(whole) != m["stat"][0]:
                raise RecordError(f"{source}: {m['open']} changed after the run was planned; run it again")
        rows = _Chunks()
        fa = None
        raw_records: dict[int, str] = {}
        try:
            for u in m["units"]:
                if u["kind"] == "error":
                    yield ErrorRecord(source, u["rid"], u["msg"])
                    continue
                rec = FastaLayout.from_dict(m["records"][u["rec"]])
                k0, k1 = u["k"]
                gaps = u.get("gaps")
                if rec.regular and whole is None:
                    if fa is None:
                        fa = _open_faidx(m)
                    plain = getattr(fa, "_bgzf", True) is False
                    errors = self._read_windows(fa, rows, source, rec, u) if plain else None
                    if errors is None:  # not plain ASCII text: the whole span through pyfaidx
                        a, b = self._span(u["seg"], k0, k1)
                        try:
                            seq = fa.from_file(rec.name, a + 1, b)
                        except UnicodeDecodeError:
                            yield from self._not_text(source, rec, u)
                            continue
                        errors = self._emit(
                            rows, source, rec, seq, a, u["seg"], k0, k1, u["region"], u["line"], table, gaps=gaps
                        )
                    yield from errors
                else:
                    a, b = self._span(u["seg"], k0, k1)
                    if u["rec"] not in raw_records:
                        raw_records[u["rec"]] = (
                            _record_text(whole, rec) if whole is not None else _read_irregular(m["open"], rec)
                        )
                    seq = raw_records[u["rec"]][a:b]
                    yield from self._emit(
                        rows, source, rec, seq, a, u["seg"], k0, k1, u["region"], u["line"], table, gaps=gaps
                    )
                if len(rows) >= MAX_BATCH_ROWS:
                    yield self._finish(rows, source, m["label"])
        finally:
            if fa is not None:
                fa.close()
        if len(rows):
            yield self._finish(rows, source, m["label"])

    def _skipped_window(
        self, source: str, rec: FastaLayout, seg: tuple[int, int], k: int, why: str, bed_line: int
    ) -> ErrorRecord:
        """The ``Skipped`` error of window ``k`` of a streamed record, dropped for ``why``."""
        p = self.params
        starts, ends = self._bounds(seg, k, k + 1)
        a, b = int(starts[0]), int(ends[0])
        if why == "tail":
            what = (
                f"is a {b - a}-base tail, shorter than min_tail = {self._min_tail()}; skipped (min_tail = 0 keeps it)"
            )
        else:
            what = f"is shorter than min_length = {p.min_length}; skipped"
        return ErrorRecord(
            source,
            self._rid(source, rec.name, a, bed_line),
            f"{source}: record {rec.name!r}: window {a}-{b} {what}",
            SKIPPED,
        )

    def _read_stream(self, item: InputItem):
        m = item.meta
        p = self.params
        source = item.source
        table = allowed_table(p.alphabet)
        wanted = set(p.records) if p.records else None
        bed = m.get("bed")
        rows = _Chunks()
        with self.open_stream(item) as stream:
            scanner = FastaScanner(stream, collect=True, source=source)
            for rec, seq_bytes in scanner:
                if wanted is not None and rec.name not in wanted and not scanner.truncated_in_record:
                    continue
                if rec.problem:
                    yield ErrorRecord(
                        source, record_id(source, rec.name, "line", rec.header_line), f"{source}: {rec.problem}"
                    )
                    continue
                seq = seq_bytes.decode("latin-1")
                gaps = None if p.keep_gaps else gap_runs(seq_bytes)
                for s, e, region, line in self._segments(rec, bed):
                    if e > rec.length or s == e:
                        why = "is empty" if s == e else f"ends past the end of the record ({rec.length} bases)"
                        yield ErrorRecord(
                            source,
                            record_id(source, rec.name, s, f"bed:{line}"),
                            f"{p.bed} line {line}: region {rec.name}:{s}-{e} {why} in {source}",
                        )
                        continue
                    k, dropped = self._windows(e - s)
                    if dropped:
                        # the plan never saw this file, so it could not count the window: the
                        # errors table does, under its own error_type
                        yield self._skipped_window(source, rec, (s, e), k, dropped, line)
                    if k:
                        a, b = self._span((s, e), 0, k)
                        yield from self._emit(
                            rows,
                            source,
                            rec,
                            seq[a:b],
                            a,
                            (s, e),
                            0,
                            k,
                            region,
                            line,
                            table,
                            gaps=gaps,
                            gaps_are_errors=True,
                        )
                if len(rows) >= MAX_BATCH_ROWS:
                    yield self._finish(rows, source, m["label"])
            if scanner.fatal:
                raise RecordError(scanner.fatal)
            if scanner.empty:  # the plan could not look inside (an s3 object, a large compressed file)
                raise RecordError(f"{source}: empty file: it holds no FASTA records")
            if scanner.truncated and not scanner.truncated_in_record:
                yield ErrorRecord(source, record_id(source, "line", scanner.truncated_line), scanner.truncated)
        if len(rows):
            yield self._finish(rows, source, m["label"])

    @classmethod
    def examples(cls, workdir) -> StageExamples:
        good = workdir / "good.fa"
        good.write_text(">chr1 first\nACGTACGTAC\nGTacgtNNAC\nGT\n>chr2\nTTTTGGGGCCCCAAAA\n")
        packed = workdir / "good2.fa.gz"
        packed.write_bytes(bgzf_compress(b">plasmid circular\nACGTTGCAACGTTGCA\nACG\n"))
        bad = workdir / "bad.fa"
        bad.write_text(">ok\nACGT\n>empty\n>digits\nAC1T\n>ok\nGGGG\n")
        cache = str(workdir / "fasta-cache")
        params = {"paths": [str(good), str(packed)], "window": 8, "stride": 4, "cache_dir": cache}
        return StageExamples(params=params, good=params, bad={"paths": [str(bad)], "cache_dir": cache})


@dataclass
class _PlanTally:
    """What ``FastaReader.plan`` saw that the manifest's notes tell."""

    decompressed: list[str] = field(default_factory=list)
    streamed: list[str] = field(default_factory=list)
    irregular: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    #: windows (or records) the reader will not produce, by reason: gap, tail, short
    skipped: Counter = field(default_factory=Counter)

    def notes(self, p: FastaParams, cache: str, min_tail: int) -> list[str]:
        notes = []
        if self.decompressed:
            notes.append(
                f"{len(self.decompressed)} compressed file(s) decompressed once into {cache} for random "
                f"access (reused by later runs): {_some(self.decompressed)}"
            )
        if self.streamed:
            notes.append(
                f"{len(self.streamed)} file(s) streamed by one read task each, without an index: {_some(self.streamed)}"
            )
        if self.irregular:
            notes.append(
                f"{len(self.irregular)} record(s) with lines of different lengths read without the index, "
                f"each in one read task: {_some(self.irregular)}"
            )
        notes += _empty_note(self.empty, "FASTA records")
        what = "window(s)" if p.window else ("region(s)" if p.bed else "record(s)")
        skipped = self.skipped
        if skipped["gap"]:
            notes.append(
                f"{skipped['gap']} {what} lying wholly in an assembly gap (a run of at least {GAP_MIN} N) "
                "skipped: not read, not an output, not an error (keep_gaps = true keeps them)"
            )
        if skipped["tail"]:
            notes.append(
                f"{skipped['tail']} tail window(s) shorter than min_tail = {min_tail} bases skipped "
                "(min_tail = 0 keeps them)"
            )
        if skipped["short"]:
            notes.append(f"{skipped['short']} {what} shorter than min_length = {p.min_length} bases skipped")
        if self.streamed and (not p.keep_gaps or min_tail or p.min_length):
            notes.append(
                "windows skipped in streamed files (assembly gaps, short tails, min_length) are in the "
                f"errors table with error_type '{SKIPPED}': the plan does not read a streamed file, so it "
                "cannot count them"
            )
        return notes


def _in_gaps(starts: np.ndarray, ends: np.ndarray, gaps: list) -> np.ndarray:
    """True for each window ``starts[i]..ends[i]`` lying wholly inside one of ``gaps``
    (``[start, end]`` runs, ascending and disjoint)."""
    if not gaps or not len(starts):
        return np.zeros(len(starts), dtype=bool)
    g = np.asarray(gaps, dtype=np.int64).reshape(-1, 2)
    i = np.searchsorted(g[:, 0], starts, side="right") - 1  # the last gap starting at or before each window
    return (i >= 0) & (ends <= g[np.maximum(i, 0), 1])


def _byte_offset(base: int, geometry: tuple[int, int] | None) -> int:
    """Bytes from a record's first base to base ``base`` (line breaks counted when the lines are regular)."""
    if not geometry or not geometry[0]:
        return base
    bases, width = geometry
    return base + (base // bases) * (width - bases)


def _allowed_bytes(table: np.ndarray) -> bytes:
    return bytes(np.flatnonzero(table).astype(np.uint8))


def _fetch_ascii(fa, name: str, a: int, b: int) -> bytes | None:
    """Bases ``a..b`` (0-based, end excluded) of record ``name`` of a plain FASTA file, as
    bytes, through the open pyfaidx ``Faidx``; None unless they are all ASCII.

    This reads the bytes at the offsets pyfaidx computes from its index, through its file
    handle, and drops the line breaks from the bytes: for ASCII text that is what
    ``Faidx.from_file`` returns, without decoding the line breaks into a string and
    replacing them there (two passes over the data that cost more than the read).
    """
    i = fa.index.get(name)
    if i is None or not 0 <= a <= b <= i.rlen:
        return None
    if i.lenc:
        newlines_before = (a - 1) // i.lenc if a > 0 else 0
        newlines_inside = b // i.lenc - newlines_before
    else:
        newlines_before = newlines_inside = 0
    newline_blen = i.lenb - i.lenc
    seq_blen = newlines_inside * newline_blen + b - a
    if seq_blen <= 0:
        return b""
    with fa.lock:
        fa.file.seek(i.offset + newlines_before * newline_blen + a)
        data = fa.file.read(seq_blen)
    if not data.isascii():
        return None
    raw = data.replace(b"\n", b"")
    return raw.replace(b"\r", b"") if b"\r" in raw else raw


def _open_faidx(meta: dict):
    import pyfaidx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "index older than FASTA" after a touch: the driver checked it
        return pyfaidx.Faidx(
            meta["open"],
            indexname=meta["fai"],
            gzi_indexname=meta["gzi"],
            build_index=False,
            rebuild=False,
            strict_bounds=True,
        )


def _read_irregular(path: str, rec: FastaLayout) -> str:
    """A record whose lines differ in length: its bytes read straight from the (plain) file."""
    with open(path, "rb") as f:
        f.seek(rec.offset)
        data = f.read(rec.end - rec.offset)
    return _record_text(data, rec, rec.offset)


def _record_text(data: bytes, rec: FastaLayout, at: int | None = None) -> str:
    """The bases of ``rec`` from ``data``, the file's bytes from offset ``at`` (default: the
    whole file), line breaks removed; one character per byte, so that an illegal byte is
    still one base to report."""
    lo = rec.offset if at is None else rec.offset - at
    return data[lo : lo + rec.end - rec.offset].translate(None, b"\r\n").decode("latin-1")


# -- FASTQ ----------------------------------------------------------------------------


class FastqParams(FileParams):
    paths: list[LocalPath] = Field(description="FASTQ files (plain or gzip), directories, globs or s3:// URIs")
    suffixes: list[str] | None = Field(
        list(with_compression(FASTQ_SUFFIXES)),
        description="when expanding directories keep only files ending in one of these",
    )
    label: str | None = Field(None, description="text put in the label column of every read")
    label_from: LabelFrom | None = Field(None, description="derive the label per file: 'file_stem' or 'parent_dir'")
    alphabet: str = Field(FASTQ_ALPHABET, description="allowed sequence characters, either case; others are errors")
    batch_rows: int = Field(50_000, ge=1, description="reads per batch handed to the pipeline")

    @model_validator(mode="after")
    def _consistent(self):
        if self.label is not None and self.label_from is not None:
            raise ValueError("give label or label_from, not both")
        return self


class FastqReader(_SequenceFiles):
    """Reads with their qualities from FASTQ files (plain or gzip), one read task per file."""

    name = "genomics.fastq"
    Params = FastqParams
    outputs = (
        Column("source", "string", "path or URI of the FASTQ file"),
        Column("record_id", "string", "stable id: record_id(source, read index)"),
        Column("name", "string", "read name (first word of the header)"),
        Column("description", "string", "rest of the header line"),
        Column("offset", "int64", "0-based index of the read in the file"),
        Column("length", "int64", "bases in the read"),
        Column("sequence", "string", "the bases as in the file"),
        Column("quality", "string", "the quality string as in the file (Phred+33 usually)"),
        Column("label", "string", "label or label_from, empty when neither is set"),
    )

    def plan(self) -> list[InputItem]:
        p = self.params
        files = self.files()
        items, empty = [], []
        for i, (path, size) in enumerate(files):
            meta = {"label": _label_for(path, p.label, p.label_from)}
            if _holds_nothing(path, size):
                # an empty file (a barcode with no reads, a failed transfer) stays an input of
                # no rows and no errors, and the manifest's notes name it
                meta["empty"] = True
                empty.append(os.path.basename(path))
            items.append(InputItem(path, i, size, meta=meta))
        self._notes = _empty_note(empty, "reads")
        return items

    def notes(self) -> list[str]:
        """The input files that hold no reads (set by ``plan``)."""
        return list(getattr(self, "_notes", []))

    def read(self, item: InputItem):
        p = self.params
        source = item.source
        if item.meta.get("empty"):
            return
        label = item.meta.get("label", "")
        rows = RowBatch(self.outputs)
        found = 0
        with self.open_stream(item) as stream:
            for rec in FastqParser(stream, alphabet=p.alphabet):
                found += 1
                rid = record_id(source, rec.index)
                if isinstance(rec, FastqProblem):
                    yield ErrorRecord(source, rid, f"{source}: {rec.message}")
                    continue
                rows.add(
                    record_id=rid,
                    name=rec.name,
                    description=rec.description,
                    offset=rec.index,
                    length=len(rec.sequence),
                    sequence=rec.sequence,
                    quality=rec.quality,
                )
                if len(rows) >= p.batch_rows:
                    yield rows.take(source=source, label=label)
        if not found:  # the plan could not look inside (an s3 object, a large file of blank lines)
            raise RecordError(f"{source}: empty file: it holds no reads")
        if len(rows):
            yield rows.take(source=source, label=label)

    @classmethod
    def examples(cls, workdir) -> StageExamples:
        import gzip

        good = workdir / "good.fq"
        good.write_text("@r1 lane=1\nACGTN\n+\nIIII#\n@r2\nacgt\n+r2\n!!!!\n")
        packed = workdir / "good2.fq.gz"
        packed.write_bytes(gzip.compress(b"@r3\nGGCC\n+\nABCD\n"))
        bad = workdir / "bad.fq"
        bad.write_text("@r1\nACGT\n+\nIII\n@r2\nACGT\n+\nIIII\n")
        return StageExamples(
            params={"paths": [str(good), str(packed)]},
            good={"paths": [str(good), str(packed)]},
            bad={"paths": [str(bad)]},
        )


__all__ = ["FastaReader", "FastqReader", "load_bed"]
