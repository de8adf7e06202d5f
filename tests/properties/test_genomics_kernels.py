"""Genomics kernels on generated sequences against the plainest Python that states what they compute.

The references here are written from the kernels' documented conventions (A=0, C=1, G=2,
T=3, first base most significant, either case, any other byte breaks a k-mer), not from
their code: a ``Counter`` over the k-mer strings, a dict lookup per base, ``bytes.translate``.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from hpcprep_genomics.kernels import (
    encode_bases,
    kmer_counts,
    kmer_counts_sparse,
    kmer_spectrum,
    onehot,
    pack_2bit,
    reverse_complement,
    tokenize,
    unpack_2bit,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# No example database: the tests must not write into the repository.
FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=6, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

CODE = {b: i for i, b in enumerate(b"ACGT")} | {b: i for i, b in enumerate(b"acgt")}
ACGT_RUN = re.compile(rb"[ACGTacgt]+")
COMPLEMENT_TEXT = bytes.maketrans(b"ACGTRYKMBVDHSWNacgtrykmbvdhswn", b"TGCAYRMKVBHDSWNtgcayrmkvbhdswn")

#: Mostly DNA, with the IUPAC codes, gaps and soft-masking a real FASTA holds; and now
#: and then any byte at all, which every kernel must treat as "not ACGT".
dna = st.text(alphabet="ACGTACGTACGTacgtNnRYKM-.", max_size=400).map(str.encode)
sequences = st.one_of(dna, dna, dna, st.binary(max_size=200))


@st.composite
def repetitive(draw, min_len: int, max_len: int) -> bytes:
    """A long sequence made of a short motif repeated, with scattered changes: k-mer
    counts far above 255, which the large-table counters keep in bytes and widen."""
    motif = draw(st.text(alphabet="ACGT", min_size=1, max_size=24)).encode()
    n = draw(st.integers(min_len, max_len))
    seq = bytearray((motif * (n // len(motif) + 1))[:n])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    changes = rng.integers(0, n, size=draw(st.integers(0, n // 50)))
    seq_arr = np.frombuffer(seq, dtype=np.uint8).copy()
    seq_arr[changes] = rng.choice(np.frombuffer(b"ACGTNacgt", dtype=np.uint8), size=len(changes))
    return seq_arr.tobytes()


def kmer_code(kmer: bytes) -> int:
    code = 0
    for b in kmer:
        code = 4 * code + CODE[b]
    return code


def kmers(seq: bytes, k: int) -> list[bytes]:
    """Every k-mer made only of ACGT (either case), in order."""
    out = []
    for run in ACGT_RUN.findall(seq):
        out.extend(run[i : i + k] for i in range(len(run) - k + 1))
    return out


def canonical(kmer: bytes) -> int:
    return min(kmer_code(kmer), kmer_code(kmer.translate(COMPLEMENT_TEXT)[::-1]))


def reference_counts(seq: bytes, k: int, canonical_codes: bool) -> Counter:
    return Counter(canonical(m) if canonical_codes else kmer_code(m) for m in kmers(seq, k))


def assert_dense_equal(dense: np.ndarray, expected: Counter, k: int) -> None:
    assert dense.shape == (4**k,)
    nonzero = np.flatnonzero(dense)
    assert {int(i): int(dense[i]) for i in nonzero} == dict(expected)


@FAST
@given(sequences, st.integers(1, 8), st.booleans())
def test_dense_kmer_counts_equal_a_counter(seq, k, canonical_codes):
    assert_dense_equal(kmer_counts(seq, k, canonical=canonical_codes), reference_counts(seq, k, canonical_codes), k)


@SLOW
@given(sequences, st.sampled_from([11]), st.booleans())
def test_dense_counts_with_a_table_past_the_cache(seq, k, canonical_codes):
    # 4**11 uint32 counters (16 MB) take the prefetching counter even for a short sequence
    assert_dense_equal(kmer_counts(seq, k, canonical=canonical_codes), reference_counts(seq, k, canonical_codes), k)


@SLOW
@given(repetitive(70_000, 140_000), st.sampled_from([9]), st.booleans())
def test_dense_counts_of_long_repetitive_sequences(seq, k, canonical_codes):
    # k = 9 with >= 4**9 / 4 k-mers counts in bytes, logs each wrap past 255 and widens;
    # canonical with >= 4**9 / 2 k-mers also folds codes onto their reverse complements
    assert_dense_equal(kmer_counts(seq, k, canonical=canonical_codes), reference_counts(seq, k, canonical_codes), k)


@FAST
@given(sequences, st.integers(1, 31), st.booleans())
def test_sparse_kmer_counts_equal_a_counter(seq, k, canonical_codes):
    codes, counts = kmer_counts_sparse(seq, k, canonical=canonical_codes)
    expected = reference_counts(seq, k, canonical_codes)
    assert codes.dtype == np.uint64
    assert list(codes) == sorted(expected)  # distinct and ascending
    assert dict(zip(codes.tolist(), counts.tolist())) == dict(expected)


@FAST
@given(sequences, st.integers(1, 6))
def test_kmer_spectrum_is_the_normalised_canonical_count(seq, k):
    spectrum = kmer_spectrum(seq, k)
    counts = reference_counts(seq, k, True)
    # the spectrum's positions are the canonical codes in ascending order
    space = sorted({canonical(_decode(c, k)) for c in range(4**k)})
    assert spectrum.shape == (len(space),) and spectrum.dtype == np.float32
    dense = np.array([counts.get(c, 0) for c in space], dtype=np.float64)
    norm = np.linalg.norm(dense)
    expected = dense / norm if norm else dense
    assert np.allclose(spectrum, expected, rtol=1e-6, atol=1e-7)


def _decode(code: int, k: int) -> bytes:
    out = []
    for _ in range(k):
        out.append(b"ACGT"[code % 4])
        code //= 4
    return bytes(reversed(out))


@FAST
@given(sequences)
def test_base_codes_are_a_table_lookup(seq):
    assert encode_bases(seq).tolist() == [CODE.get(b, 4) for b in seq]


@FAST
@given(sequences, st.sampled_from(["LC", "CL"]), st.sampled_from([(np.uint8, 0), (np.float32, 0.25), (np.bool_, 0)]))
def test_onehot_is_a_table_lookup(seq, layout, kind):
    dtype, n_value = kind
    table = {b: [1 if j == CODE[b] else 0 for j in range(4)] for b in CODE}
    expected = np.array([table.get(b, [n_value] * 4) for b in seq], dtype=dtype).reshape(len(seq), 4)
    got = onehot(seq, layout=layout, dtype=dtype, n_value=n_value)
    assert got.dtype == np.dtype(dtype)
    assert np.array_equal(got, expected if layout == "LC" else expected.T)


@FAST
@given(sequences)
def test_two_bit_packing_is_a_table_lookup(seq):
    packed, n_mask = pack_2bit(seq)
    codes = [CODE.get(b, 0) for b in seq] + [0] * (-len(seq) % 4)  # not-ACGT stored as A, low bits zero
    expected = bytes(
        (codes[i] << 6) | (codes[i + 1] << 4) | (codes[i + 2] << 2) | codes[i + 3] for i in range(0, len(codes), 4)
    )
    assert packed.tobytes() == expected
    assert n_mask.tolist() == [b not in CODE for b in seq]


@FAST
@given(sequences)
def test_two_bit_round_trip_keeps_acgt_and_masks_the_rest(seq):
    packed, n_mask = pack_2bit(seq)
    assert unpack_2bit(packed, len(seq), n_mask) == bytes(b"ACGT"[CODE[b]] if b in CODE else ord("N") for b in seq)
    # without the mask every not-ACGT base comes back as the A it was stored as
    assert unpack_2bit(packed, len(seq)) == bytes(b"ACGT"[CODE.get(b, 0)] for b in seq)


@FAST
@given(sequences)
def test_reverse_complement_is_a_reversed_translation(seq):
    assert reverse_complement(seq) == seq.translate(COMPLEMENT_TEXT)[::-1]


@FAST
@given(sequences)
def test_reverse_complement_twice_is_the_identity(seq):
    assert reverse_complement(reverse_complement(seq)) == seq


@FAST
@given(sequences, st.integers(1, 8), st.integers(1, 5), st.booleans())
def test_kmer_tokens_are_codes_or_unknown(seq, k, stride, add_special):
    tokens = tokenize(seq, "kmer", k=k, stride=stride, add_special=add_special).tolist()
    body = []
    for start in range(0, len(seq) - k + 1, stride):
        kmer = seq[start : start + k]
        body.append(5 + kmer_code(kmer) if all(b in CODE for b in kmer) else 1)
    assert tokens == ([2, *body, 3] if add_special else body)


@FAST
@given(sequences, st.integers(1, 5), st.booleans())
def test_char_tokens_are_a_table_lookup(seq, stride, add_special):
    ids = {b: 5 + i for i, b in enumerate(b"ACGTN")} | {b: 5 + i for i, b in enumerate(b"acgtn")}
    body = [ids.get(b, 1) for b in seq[::stride]]
    tokens = tokenize(seq, "char", stride=stride, add_special=add_special).tolist()
    assert tokens == ([2, *body, 3] if add_special else body)
