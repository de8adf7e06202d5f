"""Slow, obviously-correct pure-Python references of the kernels, for tests.

Each function follows the definition in the kernel docstrings literally (strings, dicts,
loops over positions), sharing no code with the Numba kernels.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

BASES = "ACGT"
_COMPLEMENT = dict(zip("ACGTRYKMBVDHSWN", "TGCAYRMKVBHDSWN"))


def to_str(seq) -> str:
    if isinstance(seq, np.ndarray):
        seq = seq.tobytes()
    if isinstance(seq, bytes | bytearray):
        seq = seq.decode("latin-1")
    return seq


def is_acgt(ch: str) -> bool:
    return ch.upper() in BASES


def kmer_code(kmer: str) -> int:
    code = 0
    for ch in kmer.upper():
        code = code * 4 + BASES.index(ch)
    return code


def code_to_kmer(code: int, k: int) -> str:
    return "".join(BASES[(code // 4 ** (k - 1 - i)) % 4] for i in range(k))


def revcomp_kmer(kmer: str) -> str:
    return "".join({"A": "T", "C": "G", "G": "C", "T": "A"}[ch] for ch in reversed(kmer.upper()))


def valid_kmers(seq, k: int) -> list[str]:
    """Uppercase k-mers of ``seq`` at every start position, skipping any with a not-ACGT byte."""
    s = to_str(seq)
    return [s[i : i + k].upper() for i in range(len(s) - k + 1) if all(is_acgt(ch) for ch in s[i : i + k])]


def canonical_code(kmer: str) -> int:
    return min(kmer_code(kmer), kmer_code(revcomp_kmer(kmer)))


def kmer_count_dict(seq, k: int, canonical: bool = False) -> dict[int, int]:
    counts: dict[int, int] = {}
    for kmer in valid_kmers(seq, k):
        code = canonical_code(kmer) if canonical else kmer_code(kmer)
        counts[code] = counts.get(code, 0) + 1
    return counts


def kmer_counts(seq, k: int, canonical: bool = False) -> np.ndarray:
    out = np.zeros(4**k, dtype=np.int64)
    for code, c in kmer_count_dict(seq, k, canonical).items():
        out[code] = c
    return out


def kmer_counts_sparse(seq, k: int, canonical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    items = sorted(kmer_count_dict(seq, k, canonical).items())
    return (np.array([c for c, _ in items], dtype=np.uint64), np.array([n for _, n in items], dtype=np.int64))


def canonical_kmer_indices(k: int) -> np.ndarray:
    kmers = ("".join(p) for p in itertools.product(BASES, repeat=k))
    return np.array([kmer_code(m) for m in kmers if kmer_code(m) <= kmer_code(revcomp_kmer(m))], dtype=np.int64)


def kmer_spectrum(seq, k: int) -> np.ndarray:
    counts = kmer_count_dict(seq, k, canonical=True)
    vec = [float(counts.get(int(i), 0)) for i in canonical_kmer_indices(k)]
    norm = math.sqrt(sum(v * v for v in vec))
    return np.array([v / norm if norm else 0.0 for v in vec], dtype=np.float64)


def encode_bases(seq) -> np.ndarray:
    return np.array([BASES.index(ch.upper()) if is_acgt(ch) else 4 for ch in to_str(seq)], dtype=np.uint8)


def onehot(seq, layout: str = "LC", dtype=np.uint8, n_value=0) -> np.ndarray:
    rows = []
    for ch in to_str(seq):
        if is_acgt(ch):
            rows.append([1 if BASES[c] == ch.upper() else 0 for c in range(4)])
        else:
            rows.append([n_value] * 4)
    out = np.array(rows, dtype=dtype).reshape(-1, 4)
    return out if layout == "LC" else np.ascontiguousarray(out.T)


def pack_2bit(seq) -> tuple[np.ndarray, np.ndarray]:
    s = to_str(seq)
    bits = "".join(format(BASES.index(ch.upper()), "02b") if is_acgt(ch) else "00" for ch in s)
    bits += "0" * (-len(bits) % 8)
    packed = np.array([int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)], dtype=np.uint8)
    return packed, np.array([not is_acgt(ch) for ch in s], dtype=bool)


def unpack_2bit(packed, length: int, n_mask=None) -> bytes:
    bits = "".join(format(int(b), "08b") for b in packed)
    out = [BASES[int(bits[2 * i : 2 * i + 2], 2)] for i in range(length)]
    if n_mask is not None:
        out = ["N" if m else ch for ch, m in zip(out, n_mask)]
    return "".join(out).encode()


def reverse_complement(seq) -> bytes:
    out = []
    for ch in reversed(to_str(seq)):
        comp = _COMPLEMENT.get(ch.upper())
        if comp is None:
            out.append(ch)
        else:
            out.append(comp if ch.isupper() else comp.lower())
    return "".join(out).encode("latin-1")


def tokenize(seq, scheme: str = "kmer", k: int = 6, stride: int = 1, add_special: bool = True) -> np.ndarray:
    s = to_str(seq)
    ids = []
    if scheme == "kmer":
        for i in range(0, len(s) - k + 1, stride):
            kmer = s[i : i + k]
            ids.append(5 + kmer_code(kmer) if all(is_acgt(ch) for ch in kmer) else 1)
    else:
        for i in range(0, len(s), stride):
            ch = s[i].upper()
            ids.append(5 + "ACGTN".index(ch) if ch in "ACGTN" else 1)
    if add_special:
        ids = [2, *ids, 3]
    return np.array(ids, dtype=np.int32)


def debruijn_graph(seq, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    counts = kmer_count_dict(seq, k)
    nodes = sorted({code // 4 for code in counts} | {code % 4 ** (k - 1) for code in counts})
    index = {n: i for i, n in enumerate(nodes)}
    edges = sorted((index[code // 4], index[code % 4 ** (k - 1)], n) for code, n in counts.items())
    return (
        np.array(nodes, dtype=np.uint64),
        np.array([e[0] for e in edges], dtype=np.int64),
        np.array([e[1] for e in edges], dtype=np.int64),
        np.array([e[2] for e in edges], dtype=np.int64),
    )
