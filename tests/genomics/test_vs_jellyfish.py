"""k-mer counts identical to ``jellyfish count`` / ``jellyfish dump`` (Debian ``jellyfish``).

On the complete M. tuberculosis H37Rv genome (``kmer-examples``): k = 11 dense, forward
and canonical (``-C``), every one of the 4**11 indices including zeros; k = 21 sparse
canonical, identical code and count arrays. A small multi-record FASTA with lowercase, N,
IUPAC codes and punctuation checks that jellyfish and the kernels share conventions
(k-mers do not span records; only ACGT in either case counts).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from hpcprep_genomics import kernels as K

from tests.conftest import require_tool
from tests.genomics.genome_data import mtb_genome, read_fasta

_CODE = np.full(256, 255, dtype=np.uint8)
_CODE[np.frombuffer(b"ACGT", dtype=np.uint8)] = np.arange(4, dtype=np.uint8)


def jellyfish_counts(fasta: Path, k: int, canonical: bool, workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``jellyfish count`` then ``jellyfish dump -c``, parsed to (codes sorted, counts)."""
    jf = require_tool("jellyfish")
    db = workdir / f"k{k}{'C' if canonical else ''}.jf"
    cmd = [jf, "count", "-m", str(k), "-s", "10M", "-t", "2", "-o", str(db)]
    if canonical:
        cmd.append("-C")
    subprocess.run([*cmd, str(fasta)], check=True, capture_output=True)
    text = subprocess.run([jf, "dump", "-c", str(db)], check=True, capture_output=True).stdout
    db.unlink()
    return parse_dump(text, k)


def parse_dump(text: bytes, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``KMER COUNT`` lines (vectorised; independent of the kernels under test)."""
    data = np.frombuffer(text, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if ends.size == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    starts = np.concatenate(([0], ends[:-1] + 1))
    digits = _CODE[data[starts[:, None] + np.arange(k)]]
    assert (digits < 4).all(), "jellyfish dumped a k-mer that is not uppercase ACGT"
    assert (data[starts + k] == ord(" ")).all()
    codes = np.zeros(starts.size, dtype=np.uint64)
    for col in range(k):
        codes = codes * np.uint64(4) + digits[:, col].astype(np.uint64)
    first = starts + k + 1
    width = ends - first
    assert width.min() >= 1
    counts = np.zeros(starts.size, dtype=np.int64)
    for d in range(int(width.max())):
        more = d < width
        ch = data[first[more] + d].astype(np.int64) - ord("0")
        assert ((ch >= 0) & (ch <= 9)).all()
        counts[more] = counts[more] * 10 + ch
    order = np.argsort(codes, kind="stable")
    codes, counts = codes[order], counts[order]
    assert (np.diff(codes) > 0).all(), "jellyfish dumped a k-mer twice"
    return codes, counts


def genome_sequence(fasta: Path) -> bytes:
    """All records, joined by one N so that no k-mer spans two records (as in jellyfish)."""
    return b"N".join(seq for _, seq in read_fasta(fasta))


@pytest.fixture(scope="module")
def mtb():
    path = mtb_genome()
    seq = genome_sequence(path)
    assert len(seq) == 4_411_532  # NC_000962.3, complete
    return path, seq


@pytest.mark.parametrize("canonical", [False, True], ids=["forward", "canonical"])
def test_k11_dense_identical(mtb, canonical, tmp_path):
    path, seq = mtb
    codes, counts = jellyfish_counts(path, 11, canonical, tmp_path)
    expected = np.zeros(4**11, dtype=np.int64)
    expected[codes.astype(np.int64)] = counts
    got = K.kmer_counts(seq, 11, canonical=canonical)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # every index, zeros included
    assert int(got.sum()) == len(seq) - 10  # one record, ACGT only: every position counts


def test_k21_sparse_canonical_identical(mtb, tmp_path):
    path, seq = mtb
    codes, counts = jellyfish_counts(path, 21, True, tmp_path)
    got_codes, got_counts = K.kmer_counts_sparse(seq, 21, canonical=True)
    assert got_codes.size == codes.size > 4_000_000
    np.testing.assert_array_equal(got_codes, codes)
    np.testing.assert_array_equal(got_counts, counts)


def test_conventions_match_jellyfish(tmp_path):
    """Lowercase, N, IUPAC, punctuation and record boundaries: same k-mers as jellyfish."""
    rng = np.random.default_rng(5)
    pool = np.frombuffer(b"ACGTACGTACGTACGTACGTacgtacgtNnRYKMSWBDHVry-.*0", dtype=np.uint8)
    records = [pool[rng.integers(0, pool.size, n)].tobytes() for n in (3000, 1, 0, 7, 500, 2000)]
    records.append(b"ACGTAC" * 40 + b"acgtac" * 40)
    fasta = tmp_path / "mixed.fa"
    with open(fasta, "wb") as f:
        for i, rec in enumerate(records):
            f.write(f">rec{i} some description\n".encode())
            for j in range(0, len(rec), 60):
                f.write(rec[j : j + 60] + b"\n")
    seq = genome_sequence(fasta)
    assert seq == b"N".join(records)
    for k in (3, 5):
        for canonical in (False, True):
            codes, counts = jellyfish_counts(fasta, k, canonical, tmp_path)
            expected = np.zeros(4**k, dtype=np.int64)
            expected[codes.astype(np.int64)] = counts
            np.testing.assert_array_equal(K.kmer_counts(seq, k, canonical=canonical), expected)
            got_codes, got_counts = K.kmer_counts_sparse(seq, k, canonical=canonical)
            np.testing.assert_array_equal(got_codes, codes)
            np.testing.assert_array_equal(got_counts, counts)


@pytest.mark.parametrize("canonical", [False, True])
def test_k12_dense_large_table_path_agrees_with_sparse(mtb, canonical):
    """k = 12 on a whole genome takes the dense kernel's large-table path (prefetching,
    uint8 counters widened at the end, canonical folding); the sparse kernel, a sort of
    the codes, is an independent count of the same k-mers."""
    _, seq = mtb
    dense = K.kmer_counts(seq, 12, canonical=canonical)
    codes, counts = K.kmer_counts_sparse(seq, 12, canonical=canonical)
    assert dense.sum() == counts.sum() > 4_000_000
    assert dense.max() > 255, "counts past the uint8 counters' range are widened correctly"
    expected = np.zeros(4**12, dtype=np.int64)
    expected[codes.astype(np.int64)] = counts
    np.testing.assert_array_equal(dense, expected)
