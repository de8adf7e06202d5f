"""Near-identical sequences, exactly: k-mer sets, their Jaccard similarity, MinHash LSH
candidates and an inverted-index search (``ss_dataset`` merges what they find with the core's
``hpcprep.unionfind``). The rule
and the probabilities are in ``ss_dataset``'s docstring, which uses them for its splits
and its leakage check."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from hpcprep.hashing import splitmix64

MAX_HASHES = 256
MISS_TARGET = 1e-12


# -- k-mer sets and similarity -----------------------------------------------------------


def kmer_set(sequence: str, k: int) -> np.ndarray:
    """Sorted unique uint64 codes of the k-mers of the upper-cased ``sequence`` (exact, ``k <= 8``).

    A sequence shorter than ``k`` gives one code for the whole sequence (never equal to a k-mer's
    code: a real k-mer has a non-zero byte at position ``k-1``); the empty sequence gives ``[0]``.
    """
    if not 1 <= k <= 8:
        raise ValueError(f"k must be in 1..8, got {k}")
    raw = np.frombuffer(sequence.upper().encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    if raw.size == 0:
        return np.zeros(1, dtype=np.uint64)
    w = min(k, raw.size)
    n = raw.size - w + 1
    codes = np.zeros(n, dtype=np.uint64)
    for j in range(w):
        codes = (codes << np.uint64(8)) | raw[j : j + n]
    return np.unique(codes)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique code arrays."""
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


# -- MinHash LSH -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Banding:
    bands: int
    rows: int

    @property
    def num_hashes(self) -> int:
        return self.bands * self.rows

    def miss_probability(self, similarity: float) -> float:
        """Probability that a pair with this Jaccard similarity shares no band (is not a candidate)."""
        return (1.0 - similarity**self.rows) ** self.bands


def choose_banding(identity: float, max_hashes: int = MAX_HASHES, target: float = MISS_TARGET) -> Banding:
    """The largest ``rows`` whose miss probability at ``identity`` is <= ``target`` within ``max_hashes``."""
    if identity >= 1.0:
        return Banding(bands=1, rows=16)  # equal k-mer sets have equal signatures: never missed
    for rows in range(16, 0, -1):
        p = identity**rows
        bands = max(1, math.ceil(math.log(target) / math.log1p(-p)))
        if bands * rows <= max_hashes:
            return Banding(bands=max(bands, max_hashes // rows), rows=rows)  # spare hashes: more bands
    return Banding(bands=max(1, math.ceil(math.log(target) / math.log1p(-identity))), rows=1)


def _hash_seeds(seed: int, n: int, salt: str) -> np.ndarray:
    """``n`` uint64 seeds derived from ``(salt, seed)`` with blake2b (platform-independent)."""
    out = bytearray()
    block = 0
    while len(out) < 8 * n:
        out += hashlib.blake2b(f"{salt}:{seed}:{block}".encode(), digest_size=64).digest()
        block += 1
    return np.frombuffer(bytes(out[: 8 * n]), dtype=np.uint64).copy()


def minhash_signature(kmers: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    return splitmix64(kmers[:, None] ^ seeds[None, :]).min(axis=0)


def lsh_candidates(kmer_sets: list[np.ndarray], banding: Banding, seed: int, salt: str) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, that share at least one LSH band."""
    seeds = _hash_seeds(seed, banding.num_hashes, salt)
    sigs = np.stack([minhash_signature(s, seeds) for s in kmer_sets]) if kmer_sets else np.zeros((0, 1), np.uint64)
    pairs: set[tuple[int, int]] = set()
    for b in range(banding.bands):
        buckets: dict[bytes, list[int]] = {}
        block = np.ascontiguousarray(sigs[:, b * banding.rows : (b + 1) * banding.rows])
        for i in range(block.shape[0]):
            buckets.setdefault(block[i].tobytes(), []).append(i)
        for members in buckets.values():
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    pairs.add((members[x], members[y]))
    return pairs


# -- clustering and assignment ---------------------------------------------------------------


def exhaustive_pairs(sets: list[np.ndarray], identity: float) -> list[tuple[int, int, float]]:
    """Every pair with Jaccard >= identity, exactly, from an inverted k-mer index."""
    n = len(sets)
    if n < 2:
        return []
    codes = np.concatenate(sets)
    idx = np.concatenate([np.full(s.size, i, dtype=np.int64) for i, s in enumerate(sets)])
    order = np.lexsort((idx, codes))
    codes, idx = codes[order], idx[order]
    cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, codes.size]
    chunks = []
    for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
        g = idx[s:e]
        a, b = np.triu_indices(g.size, 1)
        chunks.append(g[a] * n + g[b])
    if not chunks:
        return []
    keys, inter = np.unique(np.concatenate(chunks), return_counts=True)
    sizes = np.array([s.size for s in sets], dtype=np.int64)
    i, j = keys // n, keys % n
    sim = inter / (sizes[i] + sizes[j] - inter)
    keep = sim >= identity
    return list(zip(i[keep].tolist(), j[keep].tolist(), sim[keep].tolist()))
