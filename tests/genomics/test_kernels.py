"""Genomics kernels against the pure-Python references and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from hpcprep_genomics import kernels as K
from hpcprep_genomics.kernels import reference as R

# Bases in both cases, N, IUPAC codes and a few other bytes (digits, gap, space).
ALPHABET = b"ACGTACGTACGTACGTacgtacgtNnRYKMSWBDHVrykmswbdhv0-9 "
LENGTHS = [0, 1, 2, 5, 13, 64, 777, 3000]


def random_seq(n: int, seed: int, alphabet: bytes = ALPHABET) -> bytes:
    rng = np.random.default_rng(seed)
    pool = np.frombuffer(alphabet, dtype=np.uint8)
    return pool[rng.integers(0, pool.size, n)].tobytes()


def mostly_acgt(n: int, seed: int) -> bytes:
    """Long ACGT stretches (so long k-mers occur) with lowercase, N and IUPAC sprinkled in."""
    rng = np.random.default_rng(seed)
    seq = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, n)].copy()
    lower = rng.random(n) < 0.1
    seq[lower] += 32
    for bad, p in ((b"N", 0.004), (b"R", 0.001), (b"n", 0.001), (b"Y", 0.001)):
        seq[rng.random(n) < p] = bad[0]
    return seq.tobytes()


SEQS = [random_seq(n, i) for i, n in enumerate(LENGTHS)] + [mostly_acgt(n, 100 + n) for n in (40, 2500)]


def as_types(seq: bytes):
    """The same sequence as every accepted input type."""
    return [seq, bytearray(seq), seq.decode("ascii"), np.frombuffer(seq, dtype=np.uint8).copy()]


# -- against the references ------------------------------------------------------------


@pytest.mark.parametrize("seq", SEQS, ids=range(len(SEQS)))
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 11])
@pytest.mark.parametrize("canonical", [False, True])
def test_kmer_counts_vs_reference(seq, k, canonical):
    got = K.kmer_counts(seq, k, canonical=canonical)
    assert got.shape == (4**k,) and got.dtype in (np.uint32, np.uint64)
    np.testing.assert_array_equal(got, R.kmer_counts(seq, k, canonical))


@pytest.mark.parametrize("seq", SEQS, ids=range(len(SEQS)))
@pytest.mark.parametrize("k", [1, 3, 7, 13, 16, 21, 31])
@pytest.mark.parametrize("canonical", [False, True])
def test_kmer_counts_sparse_vs_reference(seq, k, canonical):
    codes, counts = K.kmer_counts_sparse(seq, k, canonical=canonical)
    ref_codes, ref_counts = R.kmer_counts_sparse(seq, k, canonical)
    assert codes.dtype == np.uint64 and counts.dtype in (np.uint32, np.uint64)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(counts, ref_counts)


@pytest.mark.parametrize("n", [100_000, 600_000])
def test_large_tables_with_wraps_and_fold(n):
    """k = 9 (a 4**9 table): the uint8 counters with counts past 255, canonical by min() at
    100 kb and by folding forward counts (sums past 255 too) at 600 kb."""
    rng = np.random.default_rng(7)
    seq = bytearray(mostly_acgt(n, 7))
    seq[1000:4000] = b"A" * 3000  # AAAAAAAAA about 2992 times: 11 wraps past 255, remainder 176
    seq[5000:6000] = b"T" * 1000  # TTTTTTTTT 992 times: remainder 224, 176 + 224 > 255 when folded
    seq[9000:12000] = b"ACGTTGCA" * 375  # a tandem repeat of a palindromic 8-mer
    seq[20000:23000] = b"tttttc" * 500  # lowercase repeat whose reverse complement is gAAAAA
    for pos in rng.integers(25_000, len(seq), 50):
        seq[pos] = ord("N")
    seq = bytes(seq)
    for canonical in (False, True):
        got = K.kmer_counts(seq, 9, canonical=canonical)
        ref = R.kmer_counts(seq, 9, canonical)
        assert ref.max() > 255
        np.testing.assert_array_equal(got, ref)
    codes, counts = K.kmer_counts_sparse(seq, 9, canonical=True)
    np.testing.assert_array_equal(codes, np.flatnonzero(ref))
    np.testing.assert_array_equal(counts, ref[ref > 0])


def test_sparse_radix_sort_on_long_input():
    """Enough k-mers for the radix sort (with shared high digits from a repeat) at k = 21 and 31."""
    seq = mostly_acgt(20_000, 3) + b"ACGTACGTAC" * 300 + mostly_acgt(5_000, 4)
    for k in (21, 31):
        for canonical in (False, True):
            codes, counts = K.kmer_counts_sparse(seq, k, canonical=canonical)
            ref_codes, ref_counts = R.kmer_counts_sparse(seq, k, canonical)
            np.testing.assert_array_equal(codes, ref_codes)
            np.testing.assert_array_equal(counts, ref_counts)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_canonical_kmer_indices(k):
    idx = K.canonical_kmer_indices(k)
    np.testing.assert_array_equal(idx, R.canonical_kmer_indices(k))
    expected = 4**k // 2 + (2**k // 2 if k % 2 == 0 else 0)
    assert idx.size == expected and np.all(np.diff(idx) > 0)


@pytest.mark.parametrize("seq", SEQS, ids=range(len(SEQS)))
@pytest.mark.parametrize("k", [1, 3, 4])
def test_kmer_spectrum_vs_reference(seq, k):
    got = K.kmer_spectrum(seq, k)
    assert got.dtype == np.float32 and got.shape == (K.canonical_kmer_indices(k).size,)
    np.testing.assert_allclose(got, R.kmer_spectrum(seq, k), rtol=1e-6, atol=1e-7)
    norm = np.linalg.norm(got.astype(np.float64))
    if R.valid_kmers(seq, k):
        assert norm == pytest.approx(1.0, abs=1e-6)
    else:
        assert norm == 0.0


@pytest.mark.parametrize("seq", SEQS, ids=range(len(SEQS)))
def test_per_base_kernels_vs_reference(seq):
    np.testing.assert_array_equal(K.encode_bases(seq), R.encode_bases(seq))
    for layout in ("LC", "CL"):
        np.testing.assert_array_equal(K.onehot(seq, layout=layout), R.onehot(seq, layout=layout))
        got = K.onehot(seq, layout=layout, dtype=np.float32, n_value=0.25)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, R.onehot(seq, layout, np.float32, 0.25))
    packed, mask = K.pack_2bit(seq)
    ref_packed, ref_mask = R.pack_2bit(seq)
    np.testing.assert_array_equal(packed, ref_packed)
    np.testing.assert_array_equal(mask, ref_mask)
    assert K.unpack_2bit(packed, len(seq), mask) == R.unpack_2bit(packed, len(seq), mask)
    assert K.unpack_2bit(packed, len(seq)) == R.unpack_2bit(packed, len(seq))
    assert K.reverse_complement(seq) == R.reverse_complement(seq)


@pytest.mark.parametrize("seq", SEQS, ids=range(len(SEQS)))
@pytest.mark.parametrize("stride", [1, 3])
def test_tokenize_vs_reference(seq, stride):
    for k in (1, 3, 6):
        for special in (True, False):
            got = K.tokenize(seq, "kmer", k=k, stride=stride, add_special=special)
            assert got.dtype == np.int32
            np.testing.assert_array_equal(got, R.tokenize(seq, "kmer", k, stride, special))
    np.testing.assert_array_equal(K.tokenize(seq, "char", stride=stride), R.tokenize(seq, "char", stride=stride))


@pytest.mark.parametrize("seq", SEQS, ids=range(len(SEQS)))
@pytest.mark.parametrize("k", [2, 3, 5, 12, 21, 32])
def test_debruijn_vs_reference(seq, k):
    nodes, src, dst, counts = K.debruijn_graph(seq, k)
    ref = R.debruijn_graph(seq, k)
    assert (nodes.dtype, src.dtype, dst.dtype, counts.dtype) == (np.uint64, np.int32, np.int32, np.uint32)
    for got, want in zip((nodes, src, dst, counts), ref):
        np.testing.assert_array_equal(got, want)
    # Edges sum to the number of valid k-mers, sorted by (src, dst), each a k-1 overlap.
    assert int(counts.sum()) == len(R.valid_kmers(seq, k))
    order = np.lexsort((dst, src))
    np.testing.assert_array_equal(order, np.arange(src.size))
    mask = np.uint64(4 ** (k - 2) - 1)
    np.testing.assert_array_equal(nodes[src] & mask, nodes[dst] >> np.uint64(2))


def test_input_types_agree():
    seq = mostly_acgt(300, 11)
    first, *others = [
        (
            K.kmer_counts(s, 4),
            K.kmer_counts_sparse(s, 17, True)[0],
            K.onehot(s),
            K.tokenize(s),
            K.debruijn_graph(s, 5)[0],
        )
        for s in as_types(seq)
    ]
    for other in others:
        for a, b in zip(first, other):
            np.testing.assert_array_equal(a, b)
    assert {K.reverse_complement(s) for s in as_types(seq)} == {R.reverse_complement(seq)}


# -- hand-made cases -------------------------------------------------------------------


def test_encode_bases_by_hand():
    np.testing.assert_array_equal(K.encode_bases("ACGTacgtNnR-5"), [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4, 4])


def test_kmer_counts_by_hand():
    def dense(k, pairs):
        out = np.zeros(4**k, dtype=np.int64)
        for code, n in pairs:
            out[code] = n
        return out

    # AC=1, CG=6, GT=11; "Tn" is skipped.
    np.testing.assert_array_equal(K.kmer_counts(b"ACGTn", 2), dense(2, [(1, 1), (6, 1), (11, 1)]))
    np.testing.assert_array_equal(K.kmer_counts(b"acgT", 2), dense(2, [(1, 1), (6, 1), (11, 1)]))
    # IUPAC R breaks k-mers like N: only AC and GT.
    np.testing.assert_array_equal(K.kmer_counts(b"ACRGT", 2), dense(2, [(1, 1), (11, 1)]))
    # A k-mer ending exactly at the sequence end: ACG = 0*16 + 1*4 + 2 = 6.
    np.testing.assert_array_equal(K.kmer_counts(b"NNACG", 3), dense(3, [(6, 1)]))
    np.testing.assert_array_equal(K.kmer_counts(b"TTTTTT", 3), dense(3, [(63, 4)]))
    # Shorter than k, empty, nothing valid.
    for seq in (b"ACG", b"", b"NNNNNN", b"ACGNACG"):
        assert not K.kmer_counts(seq, 4).any()
        codes, counts = K.kmer_counts_sparse(seq, 4)
        assert codes.size == counts.size == 0
    # Canonical: AC (1) and its reverse complement GT (11) both count at 1; CG is a palindrome.
    np.testing.assert_array_equal(K.kmer_counts(b"ACGT", 2, canonical=True), dense(2, [(1, 2), (6, 1)]))
    np.testing.assert_array_equal(K.kmer_counts(b"ttt", 2, canonical=True), dense(2, [(0, 2)]))
    codes, counts = K.kmer_counts_sparse(b"ACGTxACGT", 2, canonical=True)
    np.testing.assert_array_equal(codes, [1, 6])
    np.testing.assert_array_equal(counts, [4, 2])
    codes, counts = K.kmer_counts_sparse(b"GATTACA", 4)  # GATT TTAC ATTA TACA
    np.testing.assert_array_equal(codes, sorted([0b10001111, 0b00111100, 0b11110001, 0b11000100]))
    np.testing.assert_array_equal(counts, [1, 1, 1, 1])


@pytest.mark.parametrize("k", [1, 2, 4, 9, 13, 21, 31])
def test_canonical_counts_symmetric_under_reverse_complement(k):
    seq = mostly_acgt(5000, 21)
    rc = K.reverse_complement(seq)
    a_codes, a_counts = K.kmer_counts_sparse(seq, k, canonical=True)
    b_codes, b_counts = K.kmer_counts_sparse(rc, k, canonical=True)
    np.testing.assert_array_equal(a_codes, b_codes)
    np.testing.assert_array_equal(a_counts, b_counts)
    if k <= 13:
        np.testing.assert_array_equal(K.kmer_counts(seq, k, True), K.kmer_counts(rc, k, True))
        # Canonical = forward counts of the sequence and of its reverse complement, folded.
        both = K.kmer_counts(seq, k) + K.kmer_counts(rc, k)
        canon = K.kmer_counts(seq, k, True)
        idx = K.canonical_kmer_indices(k)
        expected = np.zeros_like(both)
        expected[idx] = both[idx]
        if k % 2 == 0 and k <= 4:  # palindromes (only for even k) were counted twice in `both`
            pal = [i for i in idx if R.revcomp_kmer(R.code_to_kmer(int(i), k)) == R.code_to_kmer(int(i), k)]
            expected[pal] //= 2
        if k % 2 == 1 or k <= 4:
            np.testing.assert_array_equal(canon, expected)


def test_kmer_spectrum_by_hand():
    idx = K.canonical_kmer_indices(1)
    np.testing.assert_array_equal(idx, [0, 1])  # A (=T), C (=G)
    np.testing.assert_allclose(K.kmer_spectrum(b"AATG", 1), np.array([3, 1]) / np.sqrt(10), rtol=1e-6)
    spec = K.kmer_spectrum(b"NNNN", 2)
    assert spec.shape == (10,) and not spec.any()


def test_onehot_by_hand():
    seq = b"AcgTNr"
    lc = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], np.uint8)
    got = K.onehot(seq)
    assert got.dtype == np.uint8 and got.shape == (6, 4)
    np.testing.assert_array_equal(got, lc)
    np.testing.assert_array_equal(K.onehot(seq, layout="CL"), lc.T)
    f = K.onehot(seq, dtype=np.float32, n_value=0.25)
    np.testing.assert_array_equal(f[4:], np.full((2, 4), 0.25, np.float32))
    np.testing.assert_array_equal(f[:4], lc[:4])
    assert K.onehot(b"", layout="CL").shape == (4, 0)
    with pytest.raises(ValueError):
        K.onehot(seq, n_value=0.25)  # not representable in uint8
    with pytest.raises(ValueError):
        K.onehot(seq, layout="LCX")


def test_pack_2bit_by_hand():
    packed, mask = K.pack_2bit(b"ACGTNa")
    np.testing.assert_array_equal(packed, [0b00011011, 0b00000000])
    np.testing.assert_array_equal(mask, [False, False, False, False, True, False])
    assert K.unpack_2bit(packed, 6, mask) == b"ACGTNA"
    assert K.unpack_2bit(packed, 6) == b"ACGTAA"
    packed, mask = K.pack_2bit(b"ACGTTGCAg")
    np.testing.assert_array_equal(packed, [0b00011011, 0b11100100, 0b10000000])
    assert not mask.any()
    packed, mask = K.pack_2bit(b"")
    assert packed.size == 0 and mask.size == 0 and K.unpack_2bit(packed, 0, mask) == b""
    with pytest.raises(ValueError):
        K.unpack_2bit(packed, 1)


@pytest.mark.parametrize("seq", SEQS, ids=range(len(SEQS)))
def test_pack_unpack_round_trip(seq):
    packed, mask = K.pack_2bit(seq)
    assert packed.size == (len(seq) + 3) // 4
    out = K.unpack_2bit(packed, len(seq), mask)
    expected = bytes(b if b in b"ACGT" else ord("N") for b in seq.upper())
    assert out == expected


def test_reverse_complement_by_hand():
    assert K.reverse_complement(b"ACGTacgt") == b"acgtACGT"
    assert K.reverse_complement(b"AAcN") == b"NgTT"
    # Complement R>Y Y>R K>M M>K S W B>V D>H H>D V>B N r>y y>r k>m, then reverse.
    assert K.reverse_complement(b"RYKMSWBDHVNryk") == b"mryNBDHVWSKMRY"
    assert K.reverse_complement(b"A-1 x") == b"x 1-T"
    assert K.reverse_complement(b"") == b""
    seq = mostly_acgt(500, 5)
    assert K.reverse_complement(K.reverse_complement(seq)) == seq


def test_tokenize_by_hand():
    seq = "ACgTNaCGR"
    # k = 3 windows: ACG=6 -> 11, CGT=27 -> 32, GTN, TNa, NaC -> [UNK]=1, aCG -> 11, CGR -> 1.
    np.testing.assert_array_equal(K.tokenize(seq, "kmer", k=3), [2, 11, 32, 1, 1, 1, 11, 1, 3])
    np.testing.assert_array_equal(K.tokenize(seq, "kmer", k=3, add_special=False), [11, 32, 1, 1, 1, 11, 1])
    # stride 3: windows at 0, 3, 6 (ACG, TNa, CGR).
    np.testing.assert_array_equal(K.tokenize(seq, "kmer", k=3, stride=3), [2, 11, 1, 1, 3])
    # char: A C G T N -> 5..9 in either case, R -> [UNK].
    np.testing.assert_array_equal(K.tokenize(seq, "char"), [2, 5, 6, 7, 8, 9, 5, 6, 7, 1, 3])
    np.testing.assert_array_equal(K.tokenize(seq, "char", stride=3), [2, 5, 8, 6, 3])
    # Too short for one k-mer, and empty.
    np.testing.assert_array_equal(K.tokenize("AC", "kmer", k=3), [2, 3])
    np.testing.assert_array_equal(K.tokenize("", "char", add_special=False), np.zeros(0, np.int32))
    # k = 6 ids: 5 + code.
    np.testing.assert_array_equal(K.tokenize("AAAAAATTTTTT", k=6, stride=6, add_special=False), [5, 5 + 4**6 - 1])


def test_vocabulary():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    v3 = K.vocabulary("kmer", k=3)
    assert len(v3) == 5 + 64 and v3[:5] == specials
    assert v3[5] == "AAA" and v3[11] == "ACG" and v3[32] == "CGT" and v3[-1] == "TTT"
    assert len(K.vocabulary("kmer")) == 5 + 4**6
    assert K.vocabulary("char") == [*specials, "A", "C", "G", "T", "N"]
    # Every token id of a sequence names the k-mer at its position.
    seq = mostly_acgt(200, 9).upper()
    ids = K.tokenize(seq, k=5, add_special=False)
    v5 = K.vocabulary("kmer", 5)
    text = seq.decode()
    for i, t in enumerate(ids):
        assert v5[t] == (text[i : i + 5] if t != 1 else "[UNK]")
    with pytest.raises(ValueError):
        K.vocabulary("bpe")


def test_debruijn_by_hand():
    nodes, src, dst, counts = K.debruijn_graph(b"ACGTN", 3)
    np.testing.assert_array_equal(nodes, [1, 6, 11])  # AC, CG, GT
    np.testing.assert_array_equal(src, [0, 1])  # ACG: AC -> CG, CGT: CG -> GT
    np.testing.assert_array_equal(dst, [1, 2])
    np.testing.assert_array_equal(counts, [1, 1])
    nodes, src, dst, counts = K.debruijn_graph(b"aaaa", 3)
    np.testing.assert_array_equal(nodes, [0])
    np.testing.assert_array_equal(src, [0])
    np.testing.assert_array_equal(dst, [0])
    np.testing.assert_array_equal(counts, [2])
    # Not canonical: TT and AA are distinct nodes. TTAA: TTA (TT -> TA), TAA (TA -> AA).
    nodes, src, dst, counts = K.debruijn_graph(b"TTAA", 3)
    np.testing.assert_array_equal(nodes, [0, 12, 15])  # AA, TA, TT
    np.testing.assert_array_equal(src, [1, 2])  # edges by (src, dst): TAA = TA -> AA, TTA = TT -> TA
    np.testing.assert_array_equal(dst, [0, 1])
    np.testing.assert_array_equal(counts, [1, 1])
    for seq in (b"", b"A", b"ANA"):
        out = K.debruijn_graph(seq, 2)
        assert all(a.size == 0 for a in out)
    # k = 32: full 64-bit codes.
    seq = b"T" * 33
    nodes, src, dst, counts = K.debruijn_graph(seq, 32)
    np.testing.assert_array_equal(nodes, [4**31 - 1])
    np.testing.assert_array_equal(counts, [2])


def test_k_out_of_range():
    for fn, bad in (
        (K.kmer_counts, (0, 14, -1)),
        (K.kmer_counts_sparse, (0, 32)),
        (K.debruijn_graph, (1, 33)),
        (K.canonical_kmer_indices, (0, 14)),
        (K.kmer_spectrum, (0, 14)),
    ):
        for k in bad:
            with pytest.raises(ValueError):
                fn(b"ACGT", k) if fn is not K.canonical_kmer_indices else fn(k)
    with pytest.raises(ValueError):
        K.tokenize(b"ACGT", "kmer", k=14)
    with pytest.raises(ValueError):
        K.tokenize(b"ACGT", "kmer", k=3, stride=0)
    with pytest.raises(ValueError):
        K.tokenize(b"ACGT", "bpe")
    with pytest.raises(TypeError):
        K.kmer_counts(b"ACGT", 2.0)


def test_bad_inputs():
    with pytest.raises(TypeError):
        K.kmer_counts(np.zeros(4, dtype=np.int64), 2)
    with pytest.raises(ValueError):
        K.onehot("ACGTé")
    with pytest.raises(ValueError):
        K.encode_bases(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(TypeError):
        K.reverse_complement(12)


# -- the batch kernel ------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 4, 8, 9, 11])
@pytest.mark.parametrize("canonical", [False, True])
def test_kmer_counts_batch_rows_equal_the_single_record_kernel(k, canonical):
    """Every row equals kmer_counts of its record, whichever path the table size takes
    (one compiled loop up to k = 8, the cache-aware single-record path beyond); records
    never share a k-mer across their boundary."""
    got = K.kmer_counts_batch(SEQS, k, canonical=canonical)
    assert got.dtype == np.uint32 and got.shape == (len(SEQS), 4**k)
    for row, seq in zip(got, SEQS, strict=True):
        np.testing.assert_array_equal(row, R.kmer_counts(seq, k, canonical))
    joined = K.kmer_counts(b"".join(SEQS), k, canonical=canonical)
    if k > 1:  # k-mers spanning two records are counted in the joined sequence only
        assert got.sum() < joined.sum()


def test_kmer_counts_batch_takes_records_and_every_input_type():
    seqs = SEQS[3:6]
    expected = np.stack([K.kmer_counts(s, 4) for s in seqs])
    records = K.join_records(seqs)
    assert records.starts.tolist() == [0, *np.cumsum([len(s) for s in seqs]).tolist()]
    np.testing.assert_array_equal(K.kmer_counts_batch(records, 4), expected)
    for i in range(4):
        np.testing.assert_array_equal(K.kmer_counts_batch([as_types(s)[i] for s in seqs], 4), expected)
    assert K.kmer_counts_batch([], 3).shape == (0, 64)
    empty = K.kmer_counts_batch([b"", b"AC", b""], 3)
    assert empty.shape == (3, 64) and not empty.any()
    with pytest.raises(ValueError, match="between 1 and 13"):
        K.kmer_counts_batch(seqs, 14)
    with pytest.raises(ValueError, match="counts need uint64"):
        K.kmer_counts_batch(K.Records(np.zeros(1, np.uint8), np.array([0, 2**32])), 2)


@pytest.mark.parametrize("layout", ["LC", "CL"])
@pytest.mark.parametrize(("dtype", "n_value"), [(np.uint8, 0), (np.float32, 0.25)])
def test_onehot_batch_equals_the_single_record_kernel(layout, dtype, n_value):
    flat, starts = K.onehot_joined(K.join_records(SEQS), layout=layout, dtype=dtype, n_value=n_value)
    assert flat.dtype == dtype and flat.size == 4 * starts[-1]
    views = K.onehot_batch(SEQS, layout=layout, dtype=dtype, n_value=n_value)
    for r, seq in enumerate(SEQS):
        expected = K.onehot(seq, layout=layout, dtype=dtype, n_value=n_value)
        np.testing.assert_array_equal(flat[4 * starts[r] : 4 * starts[r + 1]], expected.reshape(-1))
        assert views[r].shape == expected.shape and np.array_equal(views[r], expected)


@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_kmer_spectrum_batch_bit_for_bit(k):
    got = K.kmer_spectrum_batch(SEQS, k)
    assert got.dtype == np.float32
    for row, seq in zip(got, SEQS, strict=True):
        assert row.tobytes() == K.kmer_spectrum(seq, k).tobytes()
