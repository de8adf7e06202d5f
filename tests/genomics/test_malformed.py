"""The malformed-input corpus of genomics (``tests/data/malformed/{fasta,fastq}``): each bad
file through its reader with the message ``expected.toml`` gives, seeded mutations of
good files, and one real run of the whole corpus mixed with good real files.

The property every reader keeps: it yields rows and ``ErrorRecord``s or raises
``RecordError``, with a message naming the file; never another exception.
"""

from __future__ import annotations

import gzip
import random
import tomllib
from pathlib import Path

import hpcprep
import pyarrow.parquet as pq
import pytest
from hpcprep.testing import read_records
from hpcprep_genomics.fastx import bgzf_compress
from hpcprep_genomics.readers import FastaReader, FastqReader

from .test_readers import LAMBDA, require_file

CORPUS = Path(__file__).resolve().parents[1] / "data" / "malformed"
QUALITY = "/usr/share/doc/python-biopython-doc/Tests/Quality"
READS = "/usr/share/doc/bowtie2/examples/reads/reads_1.fq.gz"
READERS = {"fasta": FastaReader, "fastq": FastqReader}


def expected(kind: str) -> dict[str, dict]:
    with open(CORPUS / kind / "expected.toml", "rb") as f:
        return tomllib.load(f)


CASES = [(kind, name) for kind in READERS for name in expected(kind)]


def params(kind: str, paths: list[str], tmp_path) -> dict:
    if kind == "fasta":
        return {"paths": paths, "cache_dir": str(tmp_path / "cache")}
    return {"paths": paths}


def good_files(kind: str) -> list[str]:
    if kind == "fasta":
        return [
            require_file(LAMBDA, "bowtie2-examples"),
            require_file(f"{QUALITY}/example.fasta", "python-biopython-doc"),
        ]
    return [
        require_file(READS, "bowtie2-examples"),
        require_file(f"{QUALITY}/example.fastq", "python-biopython-doc"),
        require_file(f"{QUALITY}/example.fastq.bgz", "python-biopython-doc"),
    ]


def test_the_corpus_has_ten_cases_per_format_each_with_a_message():
    for kind in READERS:
        cases = expected(kind)
        files = {p.name for p in (CORPUS / kind).iterdir() if p.name != "expected.toml"}
        assert len(cases) >= 10 and set(cases) == files, kind
        assert all(c["message"] and c["errors"] >= 1 for c in cases.values())
    names = set(expected("fasta")) | set(expected("fastq"))
    for variant in ("truncated", "bad_gzip_header", "bgzip_bad_block"):
        assert {f"{variant}.fa.gz", f"{variant}.fq.gz"} <= names


@pytest.mark.parametrize("kind,name", CASES)
def test_each_malformed_file_gives_its_message(tmp_path, kind, name):
    case = expected(kind)[name]
    path = str(CORPUS / kind / name)
    rows, messages = read_records(READERS[kind](params(kind, [path], tmp_path)))
    assert len(messages) == case["errors"], messages
    assert any(case["message"] in m for m in messages), messages
    assert all(path in m for m in messages), "every message names the file"
    if "rows" in case:
        assert len(rows) == case["rows"]
    else:
        assert len(rows) >= case["min_rows"]


def mutations(data: bytes, rng: random.Random, n: int) -> list[bytes]:
    """Damaged copies of ``data``: cut short, bytes overwritten, a line doubled or dropped."""
    out = []
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            out.append(data[: rng.randrange(len(data))])
        elif kind == 1:
            b = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            out.append(bytes(b))
        else:
            lines = data.split(b"\n")
            i = rng.randrange(len(lines))
            lines[i : i + 1] = [lines[i], lines[i]] if kind == 2 else []
            out.append(b"\n".join(lines))
    return out


@pytest.mark.parametrize("kind", ["fasta", "fastq"])
def test_damaged_files_give_rows_or_record_errors(tmp_path, kind):
    rng = random.Random(2024 if kind == "fasta" else 2025)
    if kind == "fasta":
        seed = b">a one\nACGTACGTNNNNNNNNNNNNACGT\nACGTAC\n>b\n" + b"ACGT" * 40 + b"\n>c\nGGCCnnAA\n"
    else:
        seed = b"".join(f"@r{i} x\nACGTN{'ACGT' * i}\n+\n{'I' * (5 + 4 * i)}\n".encode() for i in range(6))
    suffix = ".fa" if kind == "fasta" else ".fq"
    paths = []
    for i, data in enumerate(mutations(seed, rng, 60)):
        packed = (data, gzip.compress(data, mtime=0), bgzf_compress(data))[i % 3]
        path = tmp_path / "in" / f"m{i:03d}{suffix}{['', '.gz', '.bgz'][i % 3]}"
        path.parent.mkdir(exist_ok=True)
        if i % 5 == 4:  # damage the compressed bytes as well
            packed = mutations(packed, rng, 1)[0]
        path.write_bytes(packed)
        paths.append(str(path))
    for i, path in enumerate(paths):
        windows = {"window": 7, "stride": 3} if kind == "fasta" and i % 2 else {}  # split and gap paths too
        reader = READERS[kind]({**params(kind, [path], tmp_path), **windows})
        rows, messages = read_records(reader)
        assert all(path in m for m in messages), (path, messages)
        assert all(r["source"] == path for r in rows)


# -- the corpus through a real run, mixed with good real files ----------------------------


def run_spec(kind: str, paths: list[str], tmp_path, name: str) -> dict:
    out = tmp_path / name
    return {
        "run": {"output": str(out), "name": f"malformed-{kind}"},
        "reader": {"stage": f"genomics.{kind}", **params(kind, paths, tmp_path)},
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }


def listing(folders) -> dict[str, list[tuple[str, int]]]:
    return {str(d): sorted((p.name, p.stat().st_size) for p in Path(d).iterdir()) for d in folders}


@pytest.mark.parametrize("kind", ["fasta", "fastq"])
def test_the_corpus_mixed_with_good_files_in_one_run(tmp_path, ray_local, kind):
    good = good_files(kind)
    cases = expected(kind)
    folders = {CORPUS / kind, *(Path(p).parent for p in good)}
    before = listing(folders)

    alone = hpcprep.run(run_spec(kind, good, tmp_path, "alone"), progress=False)
    mixed = hpcprep.run(run_spec(kind, [*good, str(CORPUS / kind)], tmp_path, "mixed"), progress=False)

    assert listing(folders) == before, "a run writes nothing into its input folders"
    # every good file's rows are those of a run of the good files alone
    table = pq.read_table(tmp_path / "mixed" / "table").to_pylist()
    mine = [r for r in table if r["source"] in good]
    want = pq.read_table(tmp_path / "alone" / "table").to_pylist()
    key = lambda r: (r["source"], r["record_id"])  # noqa: E731
    assert sorted(mine, key=key) == sorted(want, key=key) and want
    assert alone.counts["errors"] == 0
    # the books balance, and each bad file is in the errors table with its message
    c = mixed.counts
    assert c["balanced"] and c["inputs"] == c["outputs"] + c["errors"]
    assert c["errors"] == sum(case["errors"] for case in cases.values())
    assert c["outputs"] == len(table)
    errors = mixed.errors().to_pylist()
    for name, case in cases.items():
        source = str(CORPUS / kind / name)
        messages = [e["message"] for e in errors if e["source"] == source]
        assert len(messages) == case["errors"] and any(case["message"] in m for m in messages), (name, messages)
        kept = sum(1 for r in table if r["source"] == source)
        assert kept == case["rows"] if "rows" in case else kept >= case["min_rows"], name
    assert {e["stage"] for e in errors} == {f"reader:genomics.{kind}"}
