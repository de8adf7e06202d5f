"""``fasta_windows``: 1 kb FASTA windows into Arrow with ``genomics.fasta``, single thread, in process.

Registered into ``benchmarks/genomics.py`` (``--only fasta_windows``). The input is the
M. tuberculosis genome written ``COPIES`` times as separate records (35.7 MB, 80-column lines).
``FastaReader(window=1000)`` is run without Ray, as a read task runs it: ``plan()``, then
``read(item)`` over every item, each batch turned into an Arrow table by
``hpcprep.execution.to_arrow_table`` (what the runner does; all ten output columns).

- "plan+read": each run indexes the file from cold (a fresh ``cache_dir``,
  ``index_beside = false``, so no ``.fai`` or scan is reused) and reads every window.
- "read": the items of one plan, read again; the index exists.

MB/s = bytes of the FASTA file / seconds. Peers, timed in the same run:

- pyfaidx directly, at its fastest for this job (``Fasta(path, as_raw=True, read_ahead=1 MiB)``):
  every 1 kb window sliced into a list, ``pa.array`` of it (one column). With "plan+read" its
  ``.fai`` is deleted first, so it builds the index; with "read" the index exists.
- ``seqkit sliding -W 1000 -s 1000 -g -w 0 -j 1`` to /dev/null (the same windows, one line
  each, no index), against "plan+read".

Ratio = peer seconds / our seconds. Before timing, the windows of all three are checked to
be the same.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

import pyarrow as pa
from genomics import Bench, Row, measurement
from hpcprep.execution import to_arrow_table
from hpcprep.stages import ErrorRecord
from hpcprep_genomics.readers import FastaReader

WINDOW = 1000
COPIES = 8
TARGET = 250.0  # MB/s
PYFAIDX_OPTIONS = {"as_raw": True, "read_ahead": 1 << 20}


def _write_input(bench: Bench) -> Path:
    path = bench.work / f"mtb_x{COPIES}_windows.fna"
    text = bench.genome_path.read_bytes()
    body = text[text.index(b"\n") + 1 :]
    with open(path, "wb") as f:
        for i in range(COPIES):
            f.write(f">copy{i} M. tuberculosis H37Rv\n".encode() + body)
    return path


class _Ours:
    """``genomics.fasta`` in this process; every ``reader()`` gets a fresh cache_dir (cold index)."""

    def __init__(self, path: Path, cache_root: Path):
        self.path = path
        self.cache_root = cache_root
        self.runs = itertools.count()

    def reader(self) -> FastaReader:
        cache = self.cache_root / f"run{next(self.runs)}"
        params = FastaReader.Params(paths=[str(self.path)], window=WINDOW, index_beside=False, cache_dir=str(cache))
        return FastaReader(params)

    @staticmethod
    def read(reader: FastaReader, items) -> list[pa.Table]:
        tables = []
        for item in items:
            for out in reader.read(item):
                if isinstance(out, ErrorRecord):
                    raise AssertionError(f"unexpected error record: {out}")
                tables.append(to_arrow_table(out))
        return tables

    def plan_and_read(self) -> list[pa.Table]:
        reader = self.reader()
        return self.read(reader, reader.plan())


def _pyfaidx_windows(path: Path, build_index: bool) -> list[pa.Array]:
    import pyfaidx

    if build_index:
        try:
            os.unlink(f"{path}.fai")
        except FileNotFoundError:
            pass
    fa = pyfaidx.Fasta(str(path), **PYFAIDX_OPTIONS)
    try:
        arrays = []
        for name in fa.keys():
            rec = fa[name]
            n = len(rec)
            arrays.append(pa.array([rec[s : s + WINDOW] for s in range(0, n, WINDOW)]))
        return arrays
    finally:
        fa.close()


def _seqkit_cmd(path: Path) -> list[str]:
    return [
        shutil.which("seqkit"),
        "sliding",
        "-W",
        str(WINDOW),
        "-s",
        str(WINDOW),
        "-g",
        "-w",
        "0",
        "-j",
        "1",
        str(path),
    ]


def _time_command(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return min(times)


def _check_same_windows(ours: list[pa.Table], path: Path) -> int:
    """Our sequence column equals pyfaidx's windows and seqkit's output; returns the window count."""
    seqs = pa.chunked_array([t.column("sequence") for t in ours]).to_pylist()
    theirs = pa.chunked_array(_pyfaidx_windows(path, build_index=True)).to_pylist()
    if seqs != theirs:
        raise AssertionError("genomics.fasta and pyfaidx windows differ")
    if shutil.which("seqkit"):
        out = subprocess.run(_seqkit_cmd(path), check=True, capture_output=True).stdout
        lines = out.split(b"\n")
        if lines[1::2][: len(seqs)] != [s.encode() for s in seqs] or len(lines) != 2 * len(seqs) + 1:
            raise AssertionError("genomics.fasta and seqkit sliding windows differ")
    return len(seqs)


@measurement
def fasta_windows(bench: Bench) -> list[Row]:
    """FASTA 1 kb windows into Arrow, in process, vs pyfaidx and ``seqkit sliding``."""
    path = _write_input(bench)
    size = path.stat().st_size
    label = f"x{COPIES}"
    ours = _Ours(path, bench.work / "fasta_windows_cache")
    n_windows = _check_same_windows(ours.plan_and_read(), path)
    what = f"{size / 1e6:.1f} MB FASTA, {COPIES} records, {n_windows} windows of {WINDOW} bases"
    rows = []

    # plan (cold index) + read
    t = bench.best(ours.plan_and_read)
    mbs = size / t / 1e6
    row = Row(
        f"fasta_windows {WINDOW // 1000} kb plan+read",
        mbs,
        "MB/s",
        label,
        f">= {TARGET:.0f} MB/s",
        peer="pyfaidx index + slices",
        seconds=t,
        met=mbs >= TARGET,
        note=f"{what}; index built from cold every run; 10 columns via to_arrow_table; "
        f"pyfaidx builds its .fai, Fasta({', '.join(f'{k}={v!r}' for k, v in PYFAIDX_OPTIONS.items())}), "
        "pa.array of the window list",
    )
    row.peer_seconds = bench.best(lambda: _pyfaidx_windows(path, build_index=True))
    row.ratio = row.peer_seconds / t
    rows.append(row)
    if shutil.which("seqkit"):
        peer_t = _time_command(_seqkit_cmd(path), bench.repeat)
        rows.append(
            Row(
                row.name,
                mbs,
                "MB/s",
                label,
                peer="seqkit sliding -j 1 >/dev/null",
                peer_seconds=peer_t,
                seconds=t,
                ratio=peer_t / t,
                note=f"{' '.join(_seqkit_cmd(path)[1:-1])} FASTA > /dev/null (a separate process, no index)",
            )
        )

    # read only (the index exists)
    reader = ours.reader()
    items = reader.plan()
    t = bench.best(lambda: ours.read(reader, items))
    mbs = size / t / 1e6
    _pyfaidx_windows(path, build_index=False)  # make sure its .fai is there
    peer_t = bench.best(lambda: _pyfaidx_windows(path, build_index=False))
    rows.append(
        Row(
            f"fasta_windows {WINDOW // 1000} kb read",
            mbs,
            "MB/s",
            label,
            f">= {TARGET:.0f} MB/s",
            peer="pyfaidx slices",
            peer_seconds=peer_t,
            seconds=t,
            ratio=peer_t / t,
            met=mbs >= TARGET,
            note=f"{what}; the items of one plan read again (index exists); pyfaidx with its .fai present",
        )
    )
    return rows
