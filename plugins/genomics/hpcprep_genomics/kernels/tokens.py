"""Tokenizers for DNA language models, and their vocabularies.

Token ids (int32). Both schemes start with the same five special tokens:

====  ==========  =====================================================
id    token       meaning
====  ==========  =====================================================
0     ``[PAD]``   padding (never produced by :func:`tokenize`)
1     ``[UNK]``   a k-mer or character that is not ACGT (N, IUPAC, digits …)
2     ``[CLS]``   start of a sequence (``add_special=True``)
3     ``[SEP]``   end of a sequence (``add_special=True``)
4     ``[MASK]``  masking for masked-language-model training (never produced)
====  ==========  =====================================================

``scheme="kmer"`` (DNABERT style, k from 1 to 13): ids ``5 .. 5 + 4**k - 1`` are all
k-mers in base-4 order (``A=0, C=1, G=2, T=3``, first base most significant), so the id of
a k-mer is ``5 + its code`` (``AAAAAA`` = 5, ``AAAAAC`` = 6, … ``TTTTTT`` = 4100 for
k = 6). Tokens are the overlapping k-mers starting at positions ``0, stride, 2*stride …``
while a whole k-mer fits; one that contains a not-ACGT byte becomes ``[UNK]``. Lowercase
counts as uppercase. The vocabulary has ``5 + 4**k`` entries.

``scheme="char"`` (single nucleotide): ``A, C, G, T, N`` are ids 5, 6, 7, 8, 9 (either
case); any other byte is ``[UNK]``. Positions ``0, stride, 2*stride …``; ``k`` is ignored.
The vocabulary has 10 entries.

With ``add_special=True`` the ids are wrapped as ``[CLS] … [SEP]`` (an empty or too short
sequence gives ``[CLS, SEP]``).
"""

from __future__ import annotations

import itertools

import numpy as np
from numba import njit

from .kmers import MAX_DENSE_K, check_k, kmer_mask
from .sequence import BASE_CODE, as_u8

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
N_SPECIAL = len(SPECIAL_TOKENS)
SCHEMES = ("kmer", "char")

_CHAR_ID = np.full(256, UNK, dtype=np.int32)
for _i, _b in enumerate(b"ACGTN"):
    _CHAR_ID[_b] = _CHAR_ID[_b + 32] = N_SPECIAL + _i
_CHAR_ID.setflags(write=False)


@njit(cache=True, nogil=True)
def _tokenize_kmer(seq, lut, k, stride, add_special, out):
    n = seq.size
    o = 0
    if add_special:
        out[0] = 2
        o = 1
    mask = kmer_mask(k)
    code = np.uint64(0)
    run = 0
    emit_at = k - 1  # end position of the next window to emit (starts 0, stride, ...)
    for i in range(n):
        c = lut[seq[i]]
        if c > 3:
            run = 0
        else:
            code = ((code << np.uint64(2)) | np.uint64(c)) & mask
            run += 1
        if i == emit_at:
            if run >= k:
                out[o] = 5 + np.int32(code)
            else:
                out[o] = 1
            o += 1
            emit_at += stride
    if add_special:
        out[o] = 3
        o += 1
    return o


@njit(cache=True, nogil=True)
def _tokenize_char(seq, lut, stride, add_special, out):
    o = 0
    if add_special:
        out[0] = 2
        o = 1
    for i in range(0, seq.size, stride):
        out[o] = lut[seq[i]]
        o += 1
    if add_special:
        out[o] = 3
        o += 1
    return o


def tokenize(seq, scheme: str = "kmer", k: int = 6, stride: int = 1, add_special: bool = True) -> np.ndarray:
    """Token ids (int32) of ``seq``; see the module docstring for the vocabularies."""
    arr = as_u8(seq)
    stride = check_k(stride, 1, 2**62, "stride")
    n = arr.size
    extra = 2 if add_special else 0
    if scheme == "kmer":
        k = check_k(k, 1, MAX_DENSE_K)
        n_tok = (n - k) // stride + 1 if n >= k else 0
        out = np.empty(n_tok + extra, dtype=np.int32)
        used = _tokenize_kmer(arr, BASE_CODE, k, stride, bool(add_special), out)
    elif scheme == "char":
        n_tok = (n - 1) // stride + 1 if n > 0 else 0
        out = np.empty(n_tok + extra, dtype=np.int32)
        used = _tokenize_char(arr, _CHAR_ID, stride, bool(add_special), out)
    else:
        raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
    assert used == out.size
    return out


def vocabulary(scheme: str = "kmer", k: int = 6) -> list[str]:
    """Token strings by id for ``scheme`` (``"kmer"`` with its ``k``, or ``"char"``)."""
    if scheme == "kmer":
        k = check_k(k, 1, MAX_DENSE_K)
        return SPECIAL_TOKENS + ["".join(p) for p in itertools.product("ACGT", repeat=k)]
    if scheme == "char":
        return SPECIAL_TOKENS + list("ACGTN")
    raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
