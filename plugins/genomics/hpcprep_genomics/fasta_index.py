"""Driver-side FASTA indexing: one scan per file, one ``.fai`` written once, never by workers.

``index_fasta(path, ...)`` reads a local FASTA file once (decompressing gzip/BGZF on the
fly), records every record's layout, and writes the samtools-style ``.fai`` (and, for
BGZF, the htslib ``.gzi``) that pyfaidx then uses for random access in the read tasks.

Nothing is ever written beside the inputs: a user's data folder (20 000 genomes, a
shared reference) is not ours to fill with index files, and ``hpcprep plan`` must leave
it as it was. Where the index comes from:

- an index already beside the FASTA (``x.fa.fai``, ``x.fa.gz.gzi``, e.g. from
  ``samtools faidx``) when ``beside`` is true and it is byte for byte the index this scan
  gives (a stale or partial one is not trusted);
- otherwise ``cache_dir/<key>/``, where ``key`` hashes the absolute path, size and
  modification time, so a changed file gets a fresh index.

Plain gzip cannot be read at random, so it is decompressed once into the cache while it
is scanned (the copy is reused by later runs). BGZF is read in place through pyfaidx when
Biopython is installed and the file is intact; otherwise it is decompressed like gzip.
The scan result is kept in ``cache_dir/<key>/scan.json`` so a re-run does not rescan.

A small plain file (``whole_below``) gets no index at all: its read task reads it whole,
and rescanning it costs less than the cache's files. With 20 000 one-gene files, writing
and checking 40 000 small cache files was most of a run's start.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from hpcprep.compressed import compression_of, open_decompressed

from .fastx import BgzfError, FastaLayout, FastaScanner, gzi_bytes, gzi_entries

#: 2: records carry their assembly gaps; empty files are a mode of their own.
SCAN_VERSION = 2


@dataclass
class FastaIndex:
    """What the driver learnt about one FASTA file, and where the read tasks find it."""

    source: str
    size: int
    mtime_ns: int
    compression: str  # plain | gzip | bgzf
    #: faidx (pyfaidx on open_path) | whole (a small plain file, read whole) | stream (no index)
    #: | empty (no records, nothing wrong) | fatal
    mode: str
    open_path: str | None = None
    fai: str | None = None
    gzi: str | None = None
    location: str | None = None  # beside | cache
    records: list[FastaLayout] = field(default_factory=list)
    fatal: str | None = None
    truncated: str | None = None
    truncated_line: int = 0
    truncated_in_record: bool = False
    #: bytes of (decompressed) text the scan went through: where the records lie in it
    #: gives each read task's share of the file
    text_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "records"}
        d["records"] = [r.to_dict() for r in self.records]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FastaIndex:
        d = dict(d)
        records = [FastaLayout.from_dict(r) for r in d.pop("records")]
        return cls(records=records, **d)


def default_cache_dir() -> str:
    base = os.environ.get("HPCPREP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hpcprep"
    )
    return os.path.join(base, "genomics", "fasta")


def bgzf_readable() -> bool:
    """pyfaidx reads BGZF through Biopython's ``Bio.bgzf``."""
    try:
        return importlib.util.find_spec("Bio") is not None and importlib.util.find_spec("Bio.bgzf") is not None
    except (ImportError, ValueError):
        return False


def _dir_writable(directory: str) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


def _holds(path: str, data: bytes) -> bool:
    """Whether the file ``path`` exists and holds exactly ``data``."""
    try:
        if os.path.getsize(path) != len(data):
            return False
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def _write_if_changed(path: str, data: bytes) -> bool:
    """Atomically write ``data`` unless ``path`` already holds it; False when it cannot be written."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return True
    except OSError:
        pass
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


def fai_bytes(records: list[FastaLayout]) -> bytes:
    """The ``.fai`` lines of the indexable records: name, length, offset, linebases, linewidth."""
    lines = []
    for r in records:
        geometry = r.geometry()
        if r.problem is None and geometry is not None:
            lines.append(f"{r.name}\t{r.length}\t{r.offset}\t{geometry[0]}\t{geometry[1]}\n")
    return "".join(lines).encode()


def _cache_key(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.blake2b(f"{path}\0{size}\0{mtime_ns}".encode(), digest_size=10).hexdigest()


def _decompressed_name(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".gz", ".bgz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or "sequence.fa"
    return name + ".fa"


def _tee(lines, out):
    for line in lines:
        out.write(line)
        yield line


def _scan(path: str, copy_to: str | None) -> tuple[list[FastaLayout], FastaScanner]:
    """Scan ``path``; with ``copy_to`` write the decompressed text there (atomically)."""
    with open(path, "rb") as raw:
        stream, _ = open_decompressed(raw)
        if copy_to is None:
            scanner = FastaScanner(stream, source=path)
            return list(scanner), scanner
        tmp = f"{copy_to}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "wb") as out:
                scanner = FastaScanner(_tee(stream, out), source=path)
                records = list(scanner)
            os.replace(tmp, copy_to)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return records, scanner


def _take_scan(idx: FastaIndex, records: list[FastaLayout], scanner: FastaScanner) -> bool:
    """Put what a scan found into ``idx``; False when the file has no records to read
    (``idx.mode`` is then fatal or empty)."""
    if scanner.fatal:
        idx.mode, idx.fatal = "fatal", scanner.fatal
        return False
    if scanner.empty:
        idx.mode = "empty"
        return False
    idx.truncated, idx.truncated_line = scanner.truncated, scanner.truncated_line
    idx.truncated_in_record = scanner.truncated_in_record
    idx.text_bytes = scanner.bytes
    idx.records = records
    return True


def _use_beside_if_same(idx: FastaIndex) -> None:
    """Switch a cached index to the one beside the file when that one holds the same bytes:
    which index a run uses does not depend on what an earlier run left in the cache."""
    if idx.open_path != idx.source or not idx.fai:
        return
    try:
        with open(idx.fai, "rb") as f:
            fai = f.read()
        gzi = None
        if idx.gzi:
            with open(idx.gzi, "rb") as f:
                gzi = f.read()
    except OSError:
        return
    src = idx.source
    if _holds(src + ".fai", fai) and (gzi is None or _holds(src + ".gzi", gzi)):
        idx.fai, idx.gzi, idx.location = src + ".fai", (src + ".gzi" if gzi is not None else None), "beside"


def _load_cached(scan_json: str, st: os.stat_result, path: str) -> FastaIndex | None:
    try:
        with open(scan_json) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if data.get("version") != SCAN_VERSION:
        return None
    try:
        idx = FastaIndex.from_dict(data["index"])
    except (KeyError, TypeError):
        return None
    if (idx.source, idx.size, idx.mtime_ns) != (path, st.st_size, st.st_mtime_ns):
        return None
    needed = [p for p in (idx.open_path, idx.fai, idx.gzi) if p]
    if not all(os.path.exists(p) for p in needed):
        return None
    if idx.fai:
        try:
            with open(idx.fai, "rb") as f:
                if f.read() != fai_bytes(idx.records):
                    return None
        except OSError:
            return None
    return idx


def index_fasta(
    path: str,
    *,
    cache_dir: str | None = None,
    beside: bool = True,
    decompress_gzip: bool = True,
    bgzf_random_access: bool | None = None,
    whole_below: int = 0,
) -> FastaIndex:
    """Scan and index one local FASTA file on the driver; see the module docstring for the
    policy. A plain file of at most ``whole_below`` bytes is scanned but not indexed (mode
    ``whole``)."""
    path = os.path.abspath(path)
    st = os.stat(path)
    cache_root = cache_dir or default_cache_dir()
    cdir = os.path.join(cache_root, _cache_key(path, st.st_size, st.st_mtime_ns))
    scan_json = os.path.join(cdir, "scan.json")
    with open(path, "rb") as f:
        head = f.read(st.st_size + 1 if st.st_size <= whole_below else 18)
    compression = compression_of(head)
    idx = FastaIndex(source=path, size=st.st_size, mtime_ns=st.st_mtime_ns, compression=compression, mode="faidx")
    if (
        compression == "plain" and st.st_size <= whole_below and len(head) == st.st_size
    ):  # the whole file is in ``head``
        scanner = FastaScanner(io.BytesIO(head), source=path)
        if _take_scan(idx, list(scanner), scanner):
            idx.mode, idx.open_path = "whole", path
        return idx
    if compression == "gzip" and not decompress_gzip:
        idx.mode = "stream"
        idx.notes.append("plain gzip is streamed in one read task (decompress_gzip = false)")
        return idx
    cached = _load_cached(scan_json, st, path)
    if cached is not None and cached.mode == "faidx" and (beside or cached.location != "beside"):
        if beside and cached.location == "cache":
            _use_beside_if_same(cached)
        return cached

    try:
        Path(cdir).mkdir(parents=True, exist_ok=True)
        cache_ok = _dir_writable(cdir)
    except OSError:
        cache_ok = False

    entries, has_eof = None, True
    if compression == "bgzf":
        try:
            entries, has_eof = gzi_entries(path)
        except BgzfError:
            entries = None  # not walkable block by block: decompress it (the gzip stream tells if it is damaged)
    use_bgzf = (
        entries is not None
        and (bgzf_readable() if bgzf_random_access is None else bgzf_random_access)
        and path.lower().endswith((".gz", ".bgz"))
    )
    decompress = compression == "gzip" or (compression == "bgzf" and not use_bgzf)
    if decompress and not cache_ok:
        idx.mode = "stream"
        idx.notes.append(f"cache_dir {cache_root} is not writable, so the compressed file is streamed")
        return idx

    copy_to = os.path.join(cdir, _decompressed_name(path)) if decompress else None
    records, scanner = _scan(path, copy_to)
    if scanner.fatal or scanner.empty:
        _take_scan(idx, records, scanner)
        return idx
    gzi = None
    if use_bgzf:
        if not scanner.truncated and all(r.regular for r in records):
            gzi = gzi_bytes(entries)
        elif not cache_ok:
            idx.mode = "stream"
            idx.notes.append(f"cache_dir {cache_root} is not writable, so the BGZF file is streamed")
            return idx
        else:  # damaged or irregular: read from a decompressed copy instead
            copy_to = os.path.join(cdir, _decompressed_name(path))
            records, scanner = _scan(path, copy_to)
            use_bgzf = False
    _take_scan(idx, records, scanner)
    if not has_eof and not idx.truncated and records and records[-1].problem is None:
        last = records[-1]
        last.problem = (
            f"record {last.name!r} (line {last.header_line}) may be cut off: {path} ends without the "
            "BGZF end-of-file block, so the file was probably truncated"
        )
    idx.open_path = copy_to if copy_to is not None and not use_bgzf else path
    if idx.open_path != path:
        idx.notes.append(f"{idx.compression} file decompressed once to {idx.open_path} for random access")

    fai = fai_bytes(records)
    idx.location = None
    if beside and idx.open_path == path and _holds(path + ".fai", fai) and (gzi is None or _holds(path + ".gzi", gzi)):
        idx.fai, idx.gzi, idx.location = path + ".fai", (path + ".gzi" if gzi is not None else None), "beside"
    else:
        if not cache_ok:
            idx.mode = "stream"
            idx.notes.append(f"no writable place for the index (cache_dir {cache_root}), so the file is streamed")
            idx.records = []
            return idx
        base = os.path.join(cdir, os.path.basename(idx.open_path))
        fai_path, gzi_path = base + ".fai", (base + ".gzi" if gzi is not None else None)
        if not (_write_if_changed(fai_path, fai) and (gzi_path is None or _write_if_changed(gzi_path, gzi))):
            idx.mode = "stream"
            idx.notes.append(f"cannot write the index in {cdir}, so the file is streamed")
            idx.records = []
            return idx
        idx.fai, idx.gzi, idx.location = fai_path, gzi_path, "cache"
    if cache_ok:
        _write_if_changed(scan_json, json.dumps({"version": SCAN_VERSION, "index": idx.to_dict()}).encode())
    return idx
