"""genomics.fasta and genomics.fastq: windows against a naive parse, the index policy, bad input, a real run.

One module because the tests share the naive reference parse, the real files and the
reader factories at the top; the malformed-file corpus is in ``test_malformed``.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import re
import struct
import sys
import types
import zlib

import hpcprep
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hpcprep import ErrorRecord, RecordError
from hpcprep.testing import assert_stage_ok
from hpcprep_genomics import fasta_index
from hpcprep_genomics.fastx import GAP_MIN, bgzf_compress, gap_runs
from hpcprep_genomics.readers import FastaReader, FastqReader

from tests.conftest import unavailable

LAMBDA = "/usr/share/doc/bowtie2/examples/reference/lambda_virus.fa.gz"
LAMBDA_LENGTH = 48502


def require_file(path: str, package: str) -> str:
    """A data file from a Debian package: skip without it on a user's machine, fail in CI."""
    __tracebackhide__ = True
    if os.path.exists(path):
        return path
    unavailable(f"{path} is missing (Debian package {package})")


def random_seq(rng: random.Random, n: int, letters: str = "ACGTACGTacgtN") -> str:
    return "".join(rng.choice(letters) for _ in range(n))


RNG = random.Random(7)
RECORDS = {
    "chr1": ("first chromosome", random_seq(RNG, 1234)),
    "chr2": ("", "acgtNNNNacgtACGT" * 20 + "ACG"),
    "chrM": ("mito, circular", random_seq(RNG, 97)),
    "tiny": ("one line", "ACGTN"),
}


def fasta_text(records: dict, width: int = 60, newline: str = "\n", widths: dict | None = None) -> str:
    out = []
    for name, (desc, seq) in records.items():
        out.append(f">{name} {desc}".rstrip() + newline)
        w = (widths or {}).get(name, width)
        out.extend(seq[i : i + w] + newline for i in range(0, len(seq), w))
    return "".join(out)


def naive_parse(text: str) -> dict[str, tuple[str, str]]:
    """The simplest FASTA parser there is, to compare the reader with."""
    records: dict[str, tuple[str, str]] = {}
    name = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(">"):
            head = line[1:].split(None, 1)
            name = head[0]
            records[name] = (head[1] if len(head) > 1 else "", "")
        elif name is not None:
            desc, seq = records[name]
            records[name] = (desc, seq + line.strip())
    return records


def read_all(reader) -> tuple[list[dict], list[ErrorRecord], list[str]]:
    """Plan and read in this process: rows, error records, and RecordError messages of whole items."""
    rows, errors, failed = [], [], []
    for item in reader.plan():
        try:
            for out in reader.read(item):
                if isinstance(out, ErrorRecord):
                    errors.append(out)
                    continue
                cols = {k: v.to_pylist() if isinstance(v, (pa.Array, pa.ChunkedArray)) else v for k, v in out.items()}
                rows.extend({k: v[i] for k, v in cols.items()} for i in range(len(cols["record_id"])))
        except RecordError as exc:
            failed.append(str(exc))
    return rows, errors, failed


def expected_windows(seq: str, window: int, stride: int) -> list[tuple[int, str]]:
    out, start = [], 0
    while start < len(seq):
        out.append((start, seq[start : start + window]))
        if start + window >= len(seq):
            break
        start += stride
    return out


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


@pytest.fixture
def indexed(monkeypatch):
    """Small files indexed like large ones (they are read whole otherwise), for the tests
    of the index itself."""
    monkeypatch.setattr(sys.modules[FastaReader.__module__], "WHOLE_FILE_BYTES", 0)


def write(path, data) -> str:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return str(path)


# -- the contract -----------------------------------------------------------------------


def test_stage_kit(tmp_path):
    assert_stage_ok(FastaReader, tmp_path / "fasta")
    assert_stage_ok(FastqReader, tmp_path / "fastq")


def test_params_are_checked():
    with pytest.raises(ValueError, match="stride needs window"):
        FastaReader({"paths": ["x.fa"], "stride": 5})
    with pytest.raises(ValueError, match="label or label_from"):
        FastaReader({"paths": ["x.fa"], "label": "a", "label_from": "file_stem"})


# -- FASTA content ------------------------------------------------------------------------


@pytest.mark.parametrize("window,stride", [(100, 100), (100, 37), (50, 80)])
def test_windows_equal_naive_parse(tmp_path, cache, window, stride):
    text = fasta_text(RECORDS, widths={"chrM": 7})
    path = write(tmp_path / "g.fa", text)
    truth = naive_parse(text)
    rows, errors, failed = read_all(
        FastaReader({"paths": [path], "window": window, "stride": stride, "cache_dir": cache, "min_tail": 0})
    )
    assert not errors and not failed
    for name, (desc, seq) in truth.items():
        got = [(r["offset"], r["sequence"]) for r in rows if r["name"] == name]
        assert got == expected_windows(seq, window, stride), name
        mine = [r for r in rows if r["name"] == name]
        assert all(r["description"] == desc and r["record_length"] == len(seq) for r in mine)
        assert all(r["length"] == len(r["sequence"]) for r in mine)
        assert all(r["record_id"] == hpcprep.record_id(path, name, r["offset"]) for r in mine)
    # lowercase and N are kept as in the file
    assert any("n" in r["sequence"].lower() and r["sequence"] != r["sequence"].upper() for r in rows)


def test_whole_records_labels_filter_uppercase_min_length(tmp_path, cache):
    text = fasta_text(RECORDS)
    path = write(tmp_path / "ecoli_k12.fasta", text)
    truth = naive_parse(text)
    rows, errors, _ = read_all(FastaReader({"paths": [path], "cache_dir": cache, "label_from": "file_stem"}))
    assert not errors
    assert {r["name"]: r["sequence"] for r in rows} == {n: s for n, (_, s) in truth.items()}
    assert {r["label"] for r in rows} == {"ecoli_k12"} and all(r["offset"] == 0 for r in rows)

    rows, _, _ = read_all(
        FastaReader(
            {
                "paths": [path],
                "cache_dir": cache,
                "records": ["chr2", "tiny"],
                "uppercase": True,
                "label": "E. coli",
                "min_length": 6,
            }
        )
    )
    assert [(r["name"], r["sequence"]) for r in rows] == [("chr2", truth["chr2"][1].upper())]
    assert rows[0]["label"] == "E. coli"

    # min_length drops the short last window only
    rows, _, _ = read_all(
        FastaReader({"paths": [path], "cache_dir": cache, "window": 100, "min_length": 100, "records": ["chr1"]})
    )
    assert [r["offset"] for r in rows] == list(range(0, 1200, 100)) and all(r["length"] == 100 for r in rows)
    with pytest.raises(ValueError, match="no record named \\['chrX'\\]"):
        FastaReader({"paths": [path], "cache_dir": cache, "records": ["chrX"]}).plan()


def test_large_record_is_split_across_read_tasks(tmp_path, cache):
    seq = random_seq(random.Random(3), 120_000, "ACGT")
    path = write(tmp_path / "big.fa", fasta_text({"big": ("", seq), "small": ("", "ACGT")}, width=80))
    reader = FastaReader(
        {"paths": [path], "window": 1000, "stride": 900, "item_bases": 20_000, "cache_dir": cache, "min_tail": 0}
    )
    items = reader.plan()
    assert len(items) >= 6 and {i.source for i in items} == {path}
    assert len({(i.offset, i.index) for i in items}) == len(items)
    rows, errors, _ = read_all(reader)
    assert not errors
    big = [(r["offset"], r["sequence"]) for r in rows if r["name"] == "big"]
    assert big == expected_windows(seq, 1000, 900)
    assert len({r["record_id"] for r in rows}) == len(rows)


def test_bed_regions(tmp_path, cache):
    text = fasta_text(RECORDS)
    path = write(tmp_path / "g.fa", text)
    truth = naive_parse(text)
    bed = write(
        tmp_path / "r.bed",
        "# regions\ntrack name=x\nchr1\t10\t400\tpromoter\t0\t+\nchrM\t0\t97\n"
        "chr1\t1200\t1300\tpast_end\nchrZ\t5\t10\tnowhere\nchr2 3 20\n",
    )
    rows, errors, failed = read_all(FastaReader({"paths": [path], "bed": bed, "cache_dir": cache}))
    assert not failed
    got = {r["region"]: (r["name"], r["offset"], r["sequence"]) for r in rows}
    assert got == {
        "promoter": ("chr1", 10, truth["chr1"][1][10:400]),
        "chrM:0-97": ("chrM", 0, truth["chrM"][1]),
        "chr2:3-20": ("chr2", 3, truth["chr2"][1][3:20]),
    }
    messages = sorted(e.message for e in errors)
    assert any("line 5: region chr1:1200-1300 ends past the end of the record (1234 bases)" in m for m in messages)
    assert any("line 6: no record named 'chrZ'" in m for m in messages)
    # windows inside regions
    rows, _, _ = read_all(FastaReader({"paths": [path], "bed": bed, "window": 100, "cache_dir": cache}))
    promoter = [(r["offset"], r["sequence"]) for r in rows if r["region"] == "promoter"]
    assert promoter == [(10 + o, s) for o, s in expected_windows(truth["chr1"][1][10:400], 100, 100)]
    bad = write(tmp_path / "bad.bed", "chr1\t10\tx\n")
    with pytest.raises(ValueError, match="line 1: start and end must be whole numbers"):
        FastaReader({"paths": [path], "bed": bad, "cache_dir": cache}).plan()


# -- compression and the index policy --------------------------------------------------------


def test_bgzip_and_gzip_read_like_plain(tmp_path, cache):
    text = fasta_text(RECORDS)
    plain = write(tmp_path / "g.fa", text)
    bgz = write(tmp_path / "g2.fa.gz", bgzf_compress(text.encode()))
    gz = write(tmp_path / "g3.fa.gz", gzip.compress(text.encode()))

    def windows(path, **extra):
        rows, errors, failed = read_all(
            FastaReader({"paths": [path], "window": 64, "stride": 50, "cache_dir": cache, "min_tail": 0, **extra})
        )
        assert not errors and not failed
        return [(r["name"], r["offset"], r["sequence"]) for r in rows]

    want = windows(plain)
    assert windows(bgz) == want
    assert windows(gz) == want
    assert windows(gz, decompress_gzip=False) == want  # streamed in one task

    items = FastaReader({"paths": [gz, bgz], "cache_dir": cache}).plan()
    by_source = {i.source: i.meta for i in items}
    assert by_source[gz]["open"].startswith(cache) and not by_source[gz]["open"].endswith(".gz")
    if fasta_index.bgzf_readable():  # pyfaidx reads BGZF in place with Biopython
        assert by_source[bgz]["open"] == bgz and by_source[bgz]["gzi"].startswith(cache)
    else:  # without it the BGZF file is decompressed once, like gzip
        assert by_source[bgz]["open"].startswith(cache)
    assert FastaReader({"paths": [gz], "cache_dir": cache, "decompress_gzip": False}).plan()[0].meta["mode"] == "stream"


def test_index_is_built_once_on_the_driver(tmp_path, cache, indexed):
    path = write(tmp_path / "g.fa", fasta_text(RECORDS))
    reader = FastaReader({"paths": [path], "window": 100, "item_bases": 300, "cache_dir": cache})
    items = reader.plan()
    fai = items[0].meta["fai"]
    assert fai.startswith(cache) and fai.endswith("g.fa.fai") and len(items) > 3
    before = os.stat(fai)
    rows, errors, _ = read_all(reader)  # plans again, then reads every item
    after = os.stat(fai)
    assert rows and not errors
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # the index is what samtools faidx writes: name, length, offset, linebases, linewidth
    assert open(fai).readline() == "chr1\t1234\t23\t60\t61\n"
    # a read task never builds an index: without it, it says so
    os.unlink(fai)
    with pytest.raises(RecordError, match="index file .*g.fa.fai made by the driver is not there"):
        list(reader.read(items[0]))
    assert not os.path.exists(fai) and sorted(os.listdir(tmp_path)) == ["cache", "g.fa"]


def test_many_files_are_indexed_together_and_one_that_fails_is_its_own_error(tmp_path, cache, indexed, monkeypatch):
    """Planning indexes files side by side; the items come in file order whatever finishes
    first, and a file whose indexing raises becomes that file's error, not the run's."""
    paths = [write(tmp_path / f"g{i}.fa", fasta_text(RECORDS)) for i in range(6)]
    index_fasta = fasta_index.index_fasta

    def flaky(path, **kw):
        if path.endswith("g3.fa"):
            raise OSError("disk went away")
        return index_fasta(path, **kw)

    monkeypatch.setattr(sys.modules[FastaReader.__module__], "index_fasta", flaky)
    items = FastaReader({"paths": [str(tmp_path)], "window": 100, "cache_dir": cache}).plan()
    sources = [it.source for it in items]
    assert sources == sorted(sources) and set(sources) == set(paths)
    bad = [it for it in items if it.source.endswith("g3.fa")]
    assert len(bad) == 1 and bad[0].meta["fatal"].endswith("cannot index it: OSError: disk went away")
    assert all("fai" in it.meta for it in items if not it.source.endswith("g3.fa"))


def test_a_valid_index_beside_the_file_is_used_and_none_is_ever_written_there(tmp_path, cache, indexed):
    data = tmp_path / "data"
    data.mkdir()
    path = write(data / "g.fa", fasta_text(RECORDS))
    write(data / "g2.fa.gz", bgzf_compress(fasta_text(RECORDS).encode()))
    rows, errors, _ = read_all(FastaReader({"paths": [str(data)], "window": 100, "cache_dir": cache}))
    assert not errors and rows
    assert sorted(os.listdir(data)) == ["g.fa", "g2.fa.gz"]  # nothing written beside the inputs
    fai = FastaReader({"paths": [path], "cache_dir": cache}).plan()[0].meta["fai"]
    assert fai.startswith(cache)
    # samtools faidx's index beside the file (the same bytes) is used as it is
    with open(fai, "rb") as f:
        write(data / "g.fa.fai", f.read())
    assert FastaReader({"paths": [path], "cache_dir": cache}).plan()[0].meta["fai"] == path + ".fai"
    assert FastaReader({"paths": [path], "cache_dir": cache, "index_beside": False}).plan()[0].meta["fai"] == fai
    # a stale one is not trusted
    write(data / "g.fa.fai", "chr1\t10\t5\t60\t61\n")
    assert FastaReader({"paths": [path], "cache_dir": cache}).plan()[0].meta["fai"] == fai
    rows2, errors2, _ = read_all(FastaReader({"paths": [str(data)], "window": 100, "cache_dir": cache}))
    assert rows2 == rows and not errors2
    assert open(data / "g.fa.fai").read() == "chr1\t10\t5\t60\t61\n"
    assert sorted(os.listdir(data)) == ["g.fa", "g.fa.fai", "g2.fa.gz"]


def test_record_ids_are_deterministic(tmp_path):
    path = write(tmp_path / "g.fa", fasta_text(RECORDS))

    def ids(cache):
        rows, _, _ = read_all(FastaReader({"paths": [path], "window": 90, "stride": 45, "cache_dir": cache}))
        return [r["record_id"] for r in rows]

    first, second = ids(str(tmp_path / "c1")), ids(str(tmp_path / "c2"))
    assert first == second and len(set(first)) == len(first)


# -- awkward but valid FASTA ------------------------------------------------------------------


def test_windows_line_endings_are_read_correctly(tmp_path, cache, indexed):
    text = fasta_text(RECORDS, newline="\r\n")
    path = write(tmp_path / "crlf.fa", text)
    truth = naive_parse(text)
    rows, errors, _ = read_all(
        FastaReader({"paths": [path], "window": 70, "stride": 70, "cache_dir": cache, "min_tail": 0})
    )
    assert not errors
    for name, (desc, seq) in truth.items():
        assert "".join(r["sequence"] for r in rows if r["name"] == name) == seq
        assert all("\r" not in r["sequence"] and r["description"] == desc for r in rows if r["name"] == name)
    fai = FastaReader({"paths": [path], "cache_dir": cache}).plan()[0].meta["fai"]
    assert open(fai).readline() == "chr1\t1234\t24\t60\t62\n"  # regular: read through pyfaidx
    # mixed line endings inside a record: read without the index, still right
    mixed = text.replace("\r\n", "\n", 5)
    path2 = write(tmp_path / "mixed.fa", mixed)
    rows, errors, _ = read_all(FastaReader({"paths": [path2], "cache_dir": cache}))
    assert not errors and {r["name"]: r["sequence"] for r in rows} == {n: s for n, (_, s) in truth.items()}


def test_inconsistent_line_lengths_fall_back_to_a_plain_read(tmp_path, cache, indexed):
    seq = random_seq(random.Random(5), 300)
    ragged = ">ragged lines of all lengths\n" + "\n".join([seq[:50], seq[50:61], seq[61:200], "", seq[200:]]) + "\n"
    text = fasta_text({"a": ("", RECORDS["chr1"][1])}) + ragged + fasta_text({"b": ("", RECORDS["chrM"][1])})
    path = write(tmp_path / "ragged.fa", text)
    rows, errors, _ = read_all(FastaReader({"paths": [path], "window": 40, "cache_dir": cache}))
    assert not errors
    assert "".join(r["sequence"] for r in rows if r["name"] == "ragged") == seq
    assert "".join(r["sequence"] for r in rows if r["name"] == "a") == RECORDS["chr1"][1]
    reader = FastaReader({"paths": [path], "cache_dir": cache})
    item = reader.plan()[0]
    assert item.meta["fai"].startswith(cache)  # incomplete index: never beside the file
    assert any("read without the index" in n and "ragged.fa:ragged" in n for n in reader.notes())
    assert [line.split("\t")[0] for line in open(item.meta["fai"])] == ["a", "b"]
    assert not os.path.exists(path + ".fai")


def _tricky_files(folder) -> list[str]:
    """Small FASTA files with what the reader must get right whichever way it reads them."""
    seq = random_seq(random.Random(5), 300)
    gap = "ACGT" * 30 + "N" * (GAP_MIN + 40) + "acgt" * 30
    files = {
        "plain.fa": fasta_text(RECORDS, widths={"chrM": 7}),
        "crlf.fa": fasta_text(RECORDS, newline="\r\n"),
        "mixed.fa": fasta_text(RECORDS, newline="\r\n").replace("\r\n", "\n", 5),
        "ragged.fa": ">ragged lines\n" + "\n".join([seq[:50], seq[50:61], seq[61:200], "", seq[200:]]) + "\n",
        "illegal.fa": fasta_text({"bad": ("", "ACGT" * 40 + "XZ" + "ACGT" * 10), "ok": ("", "ACGT" * 30)}),
        "gap.fa": fasta_text({"gappy": ("assembly gap", gap)}),
        "header_only.fa": ">nothing here\n>then one\nACGT\n",
    }
    return [write(folder / name, text) for name, text in files.items()]


@pytest.mark.parametrize(
    "params",
    [
        {"window": 100, "stride": 37, "min_tail": 0},
        {"window": 64},
        {},
        {"records": ["chr1", "ragged", "bad", "ok", "gappy"], "uppercase": True, "min_length": 50},
    ],
)
def test_small_files_read_whole_give_what_the_index_gives(tmp_path, monkeypatch, params):
    """A small plain file is scanned on the driver but not indexed, and its read task reads
    it whole: the rows, error records and failed items are those of the indexed read, and
    nothing is written to the cache."""
    data = tmp_path / "data"
    data.mkdir()
    paths = _tricky_files(data)
    module = sys.modules[FastaReader.__module__]

    def run(cache):
        reader = FastaReader({"paths": [str(data)], "cache_dir": cache, **params})
        modes = {item.meta.get("mode") for item in reader.plan() if not item.meta.get("empty")}
        rows, errors, failed = read_all(reader)
        return modes, rows, [(e.source, e.record_id, e.message, e.error_type) for e in errors], failed

    whole_cache = str(tmp_path / "whole-cache")
    modes, *whole = run(whole_cache)
    assert modes == {"whole"}
    assert not os.path.exists(whole_cache)
    monkeypatch.setattr(module, "WHOLE_FILE_BYTES", 0)
    modes, *indexed = run(str(tmp_path / "cache"))
    assert modes == {"faidx"}
    assert whole == indexed
    rows, errors, _ = whole
    assert {r["source"] for r in rows} == set(paths) - ({paths[-1]} if params.get("records") else set())
    assert any("illegal character" in e[2] for e in errors)


@pytest.mark.parametrize("params", [{"window": 100, "stride": 37, "min_tail": 0}, {}])
def test_small_batches_as_numpy_make_the_same_blocks_as_arrow(tmp_path, cache, monkeypatch, params):
    """Batches of a few windows come as NumPy columns (joined across files before Arrow);
    the read task's blocks hold the same rows with the same types as from Arrow batches."""
    from hpcprep.reading import _BlockBuilder

    data = tmp_path / "data"
    data.mkdir()
    _tricky_files(data)
    module = sys.modules[FastaReader.__module__]

    def blocks():
        reader = FastaReader({"paths": [str(data)], "cache_dir": cache, **params})
        builder, out, kinds = _BlockBuilder(lambda *a: pytest.fail("a batch did not become Arrow")), [], set()
        for item in reader.plan():
            for batch in reader.read(item):
                if not isinstance(batch, ErrorRecord):
                    kinds.add(type(batch["record_id"]).__name__)
                    out += builder.add(item, batch)
        return pa.concat_tables(out + builder.take()), kinds

    small, kinds = blocks()
    assert "ndarray" in kinds  # the small batches were NumPy
    monkeypatch.setattr(module, "SMALL_BATCH_ROWS", 0)
    arrow, kinds = blocks()
    assert kinds == {"StringArray"}
    assert small.schema == arrow.schema and small.to_pylist() == arrow.to_pylist()
    assert small.num_rows >= 16


def test_only_small_files_are_read_whole(tmp_path, cache):
    """A plain file over WHOLE_FILE_BYTES is indexed and read through the index, whole and
    right; one at the limit is read whole."""
    module = sys.modules[FastaReader.__module__]
    seq = random_seq(random.Random(11), module.WHOLE_FILE_BYTES + 5000, "ACGT")
    big = write(tmp_path / "big.fa", fasta_text({"big": ("", seq)}))
    reader = FastaReader({"paths": [big], "window": 100_000, "cache_dir": cache})
    items = reader.plan()
    assert {i.meta["mode"] for i in items} == {"faidx"} and items[0].meta["fai"]
    rows, errors, failed = read_all(reader)
    assert not errors and not failed and "".join(r["sequence"] for r in rows) == seq
    text = fasta_text({"edge": ("", "ACGT" * 100)})
    edge = write(tmp_path / "edge.fa", text + "A" * (module.WHOLE_FILE_BYTES - len(text)))
    assert os.path.getsize(edge) == module.WHOLE_FILE_BYTES
    assert FastaReader({"paths": [edge], "cache_dir": cache}).plan()[0].meta["mode"] == "whole"


def test_a_small_file_changed_after_planning_is_its_items_error(tmp_path, cache):
    path = write(tmp_path / "g.fa", fasta_text(RECORDS))
    reader = FastaReader({"paths": [path], "window": 100, "cache_dir": cache})
    (item,) = reader.plan()
    assert item.meta["mode"] == "whole" and item.meta["fai"] is None
    write(tmp_path / "g.fa", fasta_text(RECORDS) + ">more\nACGT\n")
    with pytest.raises(RecordError, match="changed after the run was planned"):
        list(reader.read(item))
    os.unlink(path)
    with pytest.raises(RecordError, match="g.fa: the file is gone since the run was planned"):
        list(reader.read(item))


# -- bad FASTA ---------------------------------------------------------------------------------


def test_bad_fasta_files_give_clear_errors_and_the_rest_survives(tmp_path, cache):
    good = write(tmp_path / "good.fa", fasta_text({"g1": ("", "ACGT" * 30)}))
    text = write(tmp_path / "notes.txt", "hello world\nthis is not FASTA\n")
    binary = write(tmp_path / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    empty = write(tmp_path / "empty.fa", b"")
    reader = FastaReader({"paths": [good, text, binary, empty], "cache_dir": cache})
    rows, errors, failed = read_all(reader)
    assert [r["name"] for r in rows] == ["g1"] and not errors
    assert len(failed) == 2
    assert any(
        "notes.txt: not a FASTA file: line 1 should be a header starting with '>' but is 'hello world'" in m
        for m in failed
    )
    assert any("image.png: not a FASTA file: line 1 holds binary data" in m for m in failed)
    # an empty file is nothing wrong and nothing to read: the manifest's notes name it
    assert "1 empty input file(s), holding no FASTA records (no rows, no errors): empty.fa" in reader.notes()


def test_bad_records_are_errors_with_line_numbers(tmp_path, cache):
    body = (
        ">good1\nACGTACGTAC\nACGT\n"
        ">empty\n"
        ">digits sequence with a number\nACGTACGTAC\nACG7ACGTAC\nAC\n"
        ">good1 again\nTTTT\n"
        ">\nACGT\n"
        ">good2\nGGGGCCCCAA\n"
    )
    path = write(tmp_path / "bad.fa", body)
    rows, errors, failed = read_all(FastaReader({"paths": [path], "window": 10, "cache_dir": cache, "min_tail": 0}))
    assert not failed
    assert sorted({r["name"] for r in rows}) == ["digits", "good1", "good2"]
    # the window holding the digit is an error; the other windows of that record survive
    assert [(r["offset"], r["sequence"]) for r in rows if r["name"] == "digits"] == [(0, "ACGTACGTAC"), (20, "AC")]
    assert [r["sequence"] for r in rows if r["name"] == "good1"] == ["ACGTACGTAC", "ACGT"]
    msgs = sorted(e.message for e in errors)
    assert len(errors) == 4
    assert any("empty record 'empty': the header at line 4 has no sequence lines" in m for m in msgs)
    assert any("record 'digits': illegal character '7' at line 7, column 4" in m and "window 10-20" in m for m in msgs)
    assert any("duplicate record name 'good1' at line 9 (first at line 1)" in m for m in msgs)
    assert any("the header at line 11 has no record name" in m for m in msgs)
    assert all(e.source == path and e.message.startswith(path) for e in errors)
    # bad records that were not asked for are not reported
    rows3, errors3, _ = read_all(FastaReader({"paths": [path], "records": ["good2"], "cache_dir": cache}))
    assert [r["name"] for r in rows3] == ["good2"] and not errors3
    # the same through the streaming path (gzip, not decompressed)
    gz = write(tmp_path / "bad.fa.gz", gzip.compress(body.encode()))
    rows2, errors2, _ = read_all(
        FastaReader({"paths": [gz], "window": 10, "cache_dir": cache, "decompress_gzip": False, "min_tail": 0})
    )
    assert [(r["name"], r["offset"]) for r in rows2] == [(r["name"], r["offset"]) for r in rows]
    assert sorted(e.message.replace(gz, path) for e in errors2) == msgs


@pytest.mark.parametrize("kind", ["gzip", "bgzip", "gzip-stream"])
def test_truncated_compressed_fasta_keeps_the_records_before(tmp_path, cache, kind):
    recs = {f"r{i}": ("", random_seq(random.Random(i), 30_000, "ACGT")) for i in range(4)}
    data = fasta_text(recs).encode()
    packed = bgzf_compress(data) if kind == "bgzip" else gzip.compress(data)
    cut = packed[: int(len(packed) * 0.7)]
    path = write(tmp_path / "cut.fa.gz", cut)
    params = {"paths": [path], "cache_dir": cache, "decompress_gzip": kind != "gzip-stream"}
    rows, errors, failed = read_all(FastaReader(params))
    assert not failed
    names = [r["name"] for r in rows]
    assert names == ["r0", "r1"] and all(r["sequence"] == recs[r["name"]][1] for r in rows)
    assert len(errors) == 1
    assert "record 'r2' (line " in errors[0].message and "is cut off" in errors[0].message
    assert "compressed data ends early or is damaged" in errors[0].message


def test_bgzip_cut_at_a_block_boundary_is_reported(tmp_path, cache):
    recs = {"r0": ("", "ACGT" * 100), "r1": ("", "GGCC" * 100)}
    packed = bgzf_compress(fasta_text(recs).encode())
    path = write(tmp_path / "noeof.fa.gz", packed[:-28])  # drop only the end-of-file block
    rows, errors, _ = read_all(FastaReader({"paths": [path], "cache_dir": cache}))
    assert [r["name"] for r in rows] == ["r0"]
    assert len(errors) == 1 and "ends without the BGZF end-of-file block" in errors[0].message


# -- FASTQ --------------------------------------------------------------------------------------


def fastq_text(reads: list[tuple[str, str, str]], newline: str = "\n") -> str:
    return "".join(f"@{n}{newline}{s}{newline}+{newline}{q}{newline}" for n, s, q in reads)


READS = [(f"read{i} lane=1", random_seq(random.Random(100 + i), 30 + i, "ACGTN"), "") for i in range(6)]
READS = [(n, s, "".join(chr(33 + (i * 7) % 41) for i in range(len(s)))) for n, s, _ in READS]


def test_fastq_reads_and_qualities(tmp_path):
    path = write(tmp_path / "reads.fq", fastq_text(READS))
    gz = write(tmp_path / "sample_a.fastq.gz", gzip.compress(fastq_text(READS, newline="\r\n").encode()))
    rows, errors, _ = read_all(FastqReader({"paths": [path, gz], "label_from": "file_stem", "batch_rows": 4}))
    assert not errors
    for source in (path, gz):
        mine = [r for r in rows if r["source"] == source]
        assert [(r["name"] + " " + r["description"], r["sequence"], r["quality"]) for r in mine] == READS
        assert [r["offset"] for r in mine] == list(range(len(READS)))
        assert [r["record_id"] for r in mine] == [hpcprep.record_id(source, i) for i in range(len(READS))]
        assert all(r["length"] == len(r["sequence"]) for r in mine)
    assert {r["label"] for r in rows if r["source"] == gz} == {"sample_a"}


def test_bad_fastq_records_are_errors_and_good_reads_survive(tmp_path):
    good = [("g0", "ACGT", "IIII"), ("g1", "GGCC", "!!!!")]
    body = (
        fastq_text(good[:1])
        + "@mismatch\nACGTA\n+\nIIII\n"  # lines 5-8: quality one short
        + "@noplus\nACGT\nIIII\n"  # lines 9-11: '+' line missing
        + fastq_text([("g2", "TTTT", "####")])  # lines 12-15
        + "noat\nACGT\n+\nIIII\n"  # lines 16-19: '@' missing
        + "@digit\nAC9T\n+\nIIII\n"  # lines 20-23
        + fastq_text(good[1:])  # lines 24-27
        + "@cut\nACGT\n+\n"  # lines 28-30: truncated
    )
    path = write(tmp_path / "bad.fq", body)
    rows, errors, failed = read_all(FastqReader({"paths": [path]}))
    assert not failed
    assert [r["name"] for r in rows] == ["g0", "g2", "g1"]
    msgs = [e.message for e in errors]
    assert len(msgs) == 5
    assert "read 'mismatch' (line 5): the sequence (line 6) has 5 bases but the quality (line 8) has 4" in msgs[0]
    assert "read 'noplus' (line 9): expected the '+' separator line at line 11, found 'IIII'" in msgs[1]
    assert "line 16: expected a read header starting with '@', found 'noat'" in msgs[2]
    assert "read 'digit': illegal character '9' in the sequence at line 21, column 3" in msgs[3]
    assert "read 'cut' at line 28 is truncated after 3 of its 4 lines: the file ends" in msgs[4]
    assert all(m.startswith(path) for m in msgs)
    ids = [r["record_id"] for r in rows] + [e.record_id for e in errors]
    assert len(set(ids)) == len(ids) == 8


def test_truncated_gzip_fastq_and_not_fastq(tmp_path):
    reads = [(f"r{i}", "ACGT" * 50, "I" * 200) for i in range(400)]
    packed = gzip.compress(fastq_text(reads).encode())
    path = write(tmp_path / "cut.fq.gz", packed[: len(packed) // 2])
    text = write(tmp_path / "notes.fq", "just some text\nnothing else\n")
    rows, errors, _ = read_all(FastqReader({"paths": [path, text]}))
    kept = [r for r in rows if r["source"] == path]
    assert 0 < len(kept) < 400
    assert all((r["name"], r["sequence"], r["quality"]) == reads[r["offset"]] for r in kept)
    cut = [e.message for e in errors if e.source == path]
    assert len(cut) == 1 and "compressed data ends early or is damaged" in cut[0]
    other = [e.message for e in errors if e.source == text]
    assert other == [f"{text}: line 1: expected a read header starting with '@', found 'just some text'"]


# -- gaps, tails and empty inputs: skipped or noted, and counted -------------------------------


def gapped_sequence(rng: random.Random) -> str:
    """Random bases with runs of N (and n) of many lengths, some shorter than a gap."""
    parts = []
    for _ in range(40):
        parts.append(random_seq(rng, rng.randint(1, 300), "ACGTacgt"))
        parts.append(rng.choice("Nn") * rng.choice([1, 3, 9, 10, 11, 59, 60, 61, 250, 1000]))
    return "".join(parts)


@pytest.mark.parametrize("packing", ["plain", "crlf", "gzip", "bgzip"])
def test_gaps_are_found_across_line_breaks(tmp_path, cache, packing):
    rng = random.Random(31)
    records = {f"s{i}": ("", gapped_sequence(rng)) for i in range(3)}
    records["ragged"] = ("", gapped_sequence(rng))
    # s1 in short lines, s2 on a single line, s0 and ragged in the usual 60
    text = fasta_text(records, width=60, newline="\r\n" if packing == "crlf" else "\n", widths={"s1": 7, "s2": 10**6})
    text = text.replace(records["ragged"][1][:60], records["ragged"][1][:60] + "\n", 1)  # an irregular record
    data = text.encode()
    data = gzip.compress(data) if packing == "gzip" else bgzf_compress(data) if packing == "bgzip" else data
    path = write(tmp_path / "gapped.fa.gz" if packing in ("gzip", "bgzip") else tmp_path / "gapped.fa", data)
    idx = fasta_index.index_fasta(path, cache_dir=cache)
    assert [r.name for r in idx.records] == list(records)
    for rec in idx.records:
        seq = records[rec.name][1].encode()
        naive = [[m.start(), m.end()] for m in re.finditer(rb"[Nn]{%d,}" % GAP_MIN, seq)]
        assert rec.gaps == naive == gap_runs(seq) and naive, rec.name


def test_gap_and_tail_windows_are_skipped_and_counted(tmp_path, cache):
    rng = random.Random(5)
    seq = random_seq(rng, 1000, "ACGT") + "N" * 450 + random_seq(rng, 530, "ACGT") + "n" * 9 + "ACGT" * 3
    text = fasta_text({"chr1": ("", seq), "gap": ("", "N" * 80), "tiny": ("", "ACG")})
    path = write(tmp_path / "g.fa", text)
    everything = {"paths": [path], "window": 100, "cache_dir": cache, "keep_gaps": True, "min_tail": 0}
    all_rows, errors, _ = read_all(FastaReader(everything))
    assert not errors and [r["offset"] for r in all_rows if r["name"] == "chr1"] == list(range(0, 2001, 100))

    reader = FastaReader({"paths": [path], "window": 100, "cache_dir": cache})
    rows, errors, _ = read_all(reader)
    # windows 1000-1400 lie wholly in the 450 N (1000-1450); 1400-1500 holds bases too; the
    # 9 n are no gap; the record of 80 N is one window, all gap; the 1-base tail (2000) goes
    gaps = {("chr1", 1000), ("chr1", 1100), ("chr1", 1200), ("chr1", 1300), ("gap", 0)}
    tails = {("chr1", 2000)}
    assert {(r["name"], r["offset"]) for r in all_rows} - {(r["name"], r["offset"]) for r in rows} == gaps | tails
    assert not errors
    assert reader.notes() == [
        f"5 window(s) lying wholly in an assembly gap (a run of at least {GAP_MIN} N) skipped: not read, not an "
        "output, not an error (keep_gaps = true keeps them)",
        "1 tail window(s) shorter than min_tail = 50 bases skipped (min_tail = 0 keeps them)",
    ]
    assert ("tiny", 0) in {(r["name"], r["offset"]) for r in rows}, "a short record is not a tail"
    rows_split, _, _ = read_all(FastaReader({"paths": [path], "window": 100, "cache_dir": cache, "item_bases": 150}))
    assert sorted(r["record_id"] for r in rows_split) == sorted(r["record_id"] for r in rows)

    # a streamed file cannot be counted by the plan: its skipped windows are 'Skipped' errors
    gz = write(tmp_path / "g.fa.gz", gzip.compress(text.encode()))
    stream = FastaReader({"paths": [gz], "window": 100, "cache_dir": cache, "decompress_gzip": False})
    rows2, errors2, _ = read_all(stream)
    assert [(r["name"], r["offset"], r["sequence"]) for r in rows2] == [
        (r["name"], r["offset"], r["sequence"]) for r in rows
    ]
    assert all(e.error_type == "Skipped" for e in errors2) and len(errors2) == len(gaps | tails)
    assert {e.record_id for e in errors2} == {hpcprep.record_id(gz, n, o) for n, o in gaps | tails}
    assert any("window 1100-1200 lies in an assembly gap" in e.message for e in errors2)
    assert any("window 2000-2001 is a 1-base tail, shorter than min_tail = 50" in e.message for e in errors2)
    assert any("error_type 'Skipped'" in n for n in stream.notes())

    # min_length drops are counted too; a whole record of N is a gap as well
    short = FastaReader({"paths": [path], "cache_dir": cache, "min_length": 50})
    rows3, _, _ = read_all(short)
    assert [r["name"] for r in rows3] == ["chr1"]
    assert "1 record(s) shorter than min_length = 50 bases skipped" in short.notes()
    assert any(n.startswith("1 record(s) lying wholly in an assembly gap") for n in short.notes())
    with pytest.raises(ValueError, match="min_length=200 is longer than window=100"):
        FastaReader({"paths": [path], "window": 100, "min_length": 200})


def test_empty_inputs_are_noted_not_errors(tmp_path, cache):
    folder = tmp_path / "in"
    folder.mkdir()
    empties = {"zero.fq": b"", "blank.fq": b"\n\n  \n", "nothing.fq.gz": gzip.compress(b"")}
    for name, data in empties.items():
        write(folder / name, data)
        write(folder / name.replace(".fq", ".fa"), data)
    write(folder / "ok.fq", fastq_text(READS[:2]))
    write(folder / "ok.fa", fasta_text({"a": ("", "ACGT")}))
    fastq = FastqReader({"paths": [str(folder)]})
    rows, errors, failed = read_all(fastq)
    assert len(rows) == 2 and not errors and not failed
    assert fastq.notes() == [
        "3 empty input file(s), holding no reads (no rows, no errors): blank.fq, nothing.fq.gz, zero.fq"
    ]
    fasta = FastaReader({"paths": [str(folder)], "cache_dir": cache})
    rows, errors, failed = read_all(fasta)
    assert len(rows) == 1 and not errors and not failed
    assert (
        "3 empty input file(s), holding no FASTA records (no rows, no errors): blank.fa, nothing.fa.gz, zero.fa"
        in fasta.notes()
    )
    # what the plan cannot look into (here: too large to peek at) is an error when read
    big_blank = write(tmp_path / "blank_big.fq", b"\n" * (200 << 10))
    _, errors, failed = read_all(FastqReader({"paths": [big_blank]}))
    assert failed == [f"{big_blank}: empty file: it holds no reads"]


def test_empty_reads_and_records_are_both_errors(tmp_path, cache):
    fq = write(tmp_path / "r.fq", "@a\nACGT\n+\nIIII\n@trimmed\n\n+\n\n@b\nGG\n+\nII\n")
    fa = write(tmp_path / "r.fa", ">a\nACGT\n>trimmed\n>b\nGG\n")
    for reader in (FastqReader({"paths": [fq]}), FastaReader({"paths": [fa], "cache_dir": cache})):
        rows, errors, _ = read_all(reader)
        assert [r["name"] for r in rows] == ["a", "b"]
        assert len(errors) == 1 and "empty re" in errors[0].message and "'trimmed'" in errors[0].message


def test_truncated_gzip_fastq_is_one_error_wherever_it_breaks(tmp_path):
    reads = [(f"r{i}", random_seq(random.Random(i), 120, "ACGT"), "I" * 120) for i in range(300)]
    packed = gzip.compress(fastq_text(reads).encode(), compresslevel=1)
    for n, cut in enumerate(range(200, len(packed), len(packed) // 40)):
        path = write(tmp_path / f"cut{n}.fq.gz", packed[:cut])
        rows, errors, failed = read_all(FastqReader({"paths": [path]}))
        assert len(errors) == 1 and not failed, (cut, [e.message for e in errors])
        assert "compressed data ends early or is damaged" in errors[0].message
        assert [(r["name"], r["sequence"]) for r in rows] == [(n, s) for n, s, _ in reads[: len(rows)]]
        # ids stay distinct: the error row never takes a read's id
        assert errors[0].record_id not in {r["record_id"] for r in rows}


def test_plan_writes_nothing_into_input_folders_and_sizes_add_up(tmp_path, cache):
    from click.testing import CliRunner
    from hpcprep.cli import cli

    folder = tmp_path / "genomes"
    folder.mkdir()
    seq = random_seq(random.Random(8), 50_000, "ACGT")
    text = fasta_text({"big": ("", seq), "small": ("", "ACGT" * 10), "other": ("", seq[:20_000])})
    write(folder / "plain.fa", text)
    write(folder / "packed.fa.gz", gzip.compress(text.encode()))
    write(folder / "blocks.fa.gz", bgzf_compress(text.encode()))
    write(folder / "empty.fa", b"")
    before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[run]\noutput = "{tmp_path / "out"}"\n'
        f'[reader]\nstage = "genomics.fasta"\npaths = ["{folder}"]\nwindow = 1000\nitem_bases = 7000\n'
        f'cache_dir = "{cache}"\n'
        f'[[sinks]]\nstage = "parquet"\npath = "{tmp_path / "out" / "table"}"\n'
    )
    result = CliRunner().invoke(cli, ["plan", str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()) == before
    # each item weighs its own share: the plan's total is the files' size, not 3 x 8 x it
    assert plan["inputs"]["bytes"] == sum(size for _, size, _ in before)
    items = FastaReader({"paths": [str(folder)], "window": 1000, "item_bases": 7000, "cache_dir": cache}).plan()
    for name, size, _ in before:
        mine = [i for i in items if i.source == str(folder / name)]
        assert sum(i.size for i in mine) == size and (len(mine) > 3 or size == 0), name
    plain = [i for i in items if i.source == str(folder / "plain.fa")]
    assert [(i.offset, i.length) for i in plain[1:]] == [(i.offset, i.size) for i in plain[1:]]
    assert all(a.offset + a.length == b.offset for a, b in zip(plain, plain[1:]))


def test_a_bgzf_header_with_a_zero_block_size_is_read_as_gzip(tmp_path, cache):
    text = fasta_text(RECORDS).encode()
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(text) + deflate.flush()
    # a BGZF block header whose size field says 0: walking the blocks once crashed the plan
    data = (
        b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00\x00\x00"
        + body
        + struct.pack("<II", zlib.crc32(text), len(text))
    )
    path = write(tmp_path / "odd.fa.gz", data)
    rows, errors, failed = read_all(FastaReader({"paths": [path], "cache_dir": cache}))
    assert not errors and not failed
    assert {r["name"]: r["sequence"] for r in rows} == {n: s for n, (_, s) in naive_parse(text.decode()).items()}


# -- a real genome through a real run -------------------------------------------------------------


def test_lambda_phage_pipeline(tmp_path, ray_local):
    require_file(LAMBDA, "bowtie2-examples")
    with gzip.open(LAMBDA, "rt") as f:
        genome = naive_parse(f.read())
    ((name, (_, seq)),) = genome.items()
    assert len(seq) == LAMBDA_LENGTH
    bad = write(tmp_path / "bad.fa", ">x\nACGT\n>y\nAC1T\n")

    plugin = types.ModuleType("genomics_readers_under_test")

    @hpcprep.hookimpl
    def hpcprep_register_readers(register):
        register(FastaReader)
        register(FastqReader)

    plugin.hpcprep_register_readers = hpcprep_register_readers
    sys.modules.setdefault(plugin.__name__, plugin)
    out = tmp_path / "out"
    spec = {
        "run": {"output": str(out), "name": "lambda"},
        "reader": {
            "stage": "genomics.fasta",
            "paths": [LAMBDA, bad],
            "window": 1000,
            "item_bases": 10_000,
            "label_from": "file_stem",
            "cache_dir": str(tmp_path / "cache"),
        },
        "encoders": [],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }
    result = hpcprep.run(spec, plugins=[plugin], progress=False)
    windows = math.ceil(LAMBDA_LENGTH / 1000)
    assert result.manifest["counts"] == {"inputs": windows + 2, "outputs": windows + 1, "errors": 1, "balanced": True}
    table = pq.read_table(out / "table").to_pylist()
    phage = sorted((r for r in table if r["source"] == LAMBDA), key=lambda r: r["offset"])
    assert len(phage) == windows and {r["label"] for r in phage} == {"lambda_virus"}
    assert "".join(r["sequence"] for r in phage) == seq
    assert phage[-1]["length"] == LAMBDA_LENGTH % 1000 and phage[0]["name"] == name
    assert any("decompressed once" in n and "lambda_virus.fa.gz" in n for n in result.manifest.get("notes", [])) or (
        not hasattr(hpcprep.Reader, "notes")
    )
    (error,) = result.errors().to_pylist()
    assert error["stage"] == "reader:genomics.fasta" and "illegal character '1' at line 4, column 3" in error["message"]
    first_ids = sorted(r["record_id"] for r in table)

    hpcprep.run(spec, plugins=[plugin], progress=False, overwrite=True)
    assert sorted(r["record_id"] for r in pq.read_table(out / "table").to_pylist()) == first_ids
