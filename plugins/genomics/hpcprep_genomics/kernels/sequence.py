"""Per-base kernels: base codes, one-hot, 2-bit packing, reverse complement.

Conventions shared by every kernel in :mod:`hpcprep_genomics.kernels`:

* ``seq`` is ``bytes``, ``bytearray``, ``memoryview``, an ASCII ``str`` or a 1-D ``uint8``
  array. It is never copied when it already is bytes-like or a contiguous ``uint8`` array.
* Base codes: ``A=0, C=1, G=2, T=3``; lowercase counts as uppercase. Every other byte
  (``N``, IUPAC codes, digits, ``-`` …) is "not ACGT" and has code 4.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

#: Code of every byte: 0..3 for ACGT/acgt, 4 for anything else.
BASE_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    BASE_CODE[_b] = _i
    BASE_CODE[_b + 32] = _i
BASE_CODE.setflags(write=False)

#: Complement of every byte: ACGT and IUPAC codes, case preserving; other bytes unchanged.
COMPLEMENT = np.arange(256, dtype=np.uint8)
for _a, _b in (b"AT", b"CG", b"RY", b"KM", b"BV", b"DH", b"SS", b"WW", b"NN"):
    for _shift in (0, 32):
        COMPLEMENT[_a + _shift] = _b + _shift
        COMPLEMENT[_b + _shift] = _a + _shift
COMPLEMENT.setflags(write=False)


def as_u8(seq) -> np.ndarray:
    """``seq`` as a read-only, contiguous 1-D uint8 array (a view when possible).

    Every kernel takes this one array type, so Numba compiles one signature per kernel.
    """
    if isinstance(seq, np.ndarray):
        if seq.dtype != np.uint8:
            raise TypeError(f"sequence arrays must be uint8, not {seq.dtype}")
        if seq.ndim != 1:
            raise ValueError(f"sequence arrays must be 1-D, not {seq.ndim}-D")
        arr = np.ascontiguousarray(seq).view()
    elif isinstance(seq, bytes | bytearray | memoryview):
        arr = np.frombuffer(seq, dtype=np.uint8)
    elif isinstance(seq, str):
        arr = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
    else:
        raise TypeError(f"sequence must be bytes, bytearray, str or a uint8 array, not {type(seq).__name__}")
    if arr.flags.writeable:
        arr = arr.view()
        arr.setflags(write=False)
    return arr


class Records(NamedTuple):
    """A batch of records as one byte buffer: record ``r`` is ``data[starts[r]:starts[r + 1]]``.

    What the ``*_batch`` kernels work on: one array for a whole batch, so a kernel call costs
    nothing per record. ``hpcprep.columns.ascii_records`` reads a text column this way
    straight from its Arrow buffers; :func:`join_records` builds it from separate records.
    """

    data: np.ndarray  # uint8, 1-D, the records end to end
    starts: np.ndarray  # int64, N + 1 non-decreasing offsets: 0 first, data.size last


def join_records(seqs) -> Records:
    """``seqs`` (a :class:`Records`, or records of any type :func:`as_u8` takes) as :class:`Records`."""
    if isinstance(seqs, Records):
        return seqs
    arrays = [as_u8(s) for s in seqs]
    starts = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([a.size for a in arrays], out=starts[1:])
    data = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint8)
    return Records(data, starts)


@njit(cache=True, nogil=True)
def _encode(seq, lut):
    out = np.empty(seq.size, dtype=np.uint8)
    for i in range(seq.size):
        out[i] = lut[seq[i]]
    return out


def encode_bases(seq) -> np.ndarray:
    """Base codes of ``seq``: uint8 array, 0..3 for ACGT (any case), 4 for anything else."""
    return _encode(as_u8(seq), BASE_CODE)


# -- one-hot ---------------------------------------------------------------------------


# The one-hot kernels test each byte against the four letters (``b & 0xDF`` folds lowercase
# onto uppercase and maps no other byte to A, C, G or T) instead of looking rows up in a
# table: compares and selects vectorise, table lookups do not, and this runs at the speed
# of writing the output.


@njit(cache=True, nogil=True)
def _onehot_lc(seq, one, zero, nv, out):
    """``out`` is the (L, 4) output, flattened."""
    for i in range(seq.size):
        u = seq[i] & np.uint8(0xDF)
        a = u == 65
        c = u == 67
        g = u == 71
        t = u == 84
        other = zero if (a | c | g | t) else nv
        out[4 * i] = one if a else other
        out[4 * i + 1] = one if c else other
        out[4 * i + 2] = one if g else other
        out[4 * i + 3] = one if t else other


@njit(cache=True, nogil=True)
def _onehot_cl(seq, one, zero, nv, out):
    for i in range(seq.size):
        u = seq[i] & np.uint8(0xDF)
        a = u == 65
        c = u == 67
        g = u == 71
        t = u == 84
        other = zero if (a | c | g | t) else nv
        out[0, i] = one if a else other
        out[1, i] = one if c else other
        out[2, i] = one if g else other
        out[3, i] = one if t else other


def onehot_arguments(layout: str, dtype, n_value):
    """``(dtype, n_value as a dtype scalar)`` for :func:`onehot` (and its CUDA variant), checked."""
    dtype = np.dtype(dtype)
    if layout not in ("LC", "CL"):
        raise ValueError(f"layout must be 'LC' or 'CL', not {layout!r}")
    if dtype.kind not in "biuf":
        raise TypeError(f"onehot dtype must be bool, integer or float, not {dtype}")
    nv = np.asarray(n_value).astype(dtype)
    if nv != n_value:
        raise ValueError(f"n_value {n_value!r} is not representable in {dtype}")
    return dtype, nv[()]


def onehot(seq, layout: str = "LC", dtype=np.uint8, n_value=0) -> np.ndarray:
    """One-hot encoding with channels in ACGT order.

    ``layout="LC"`` gives shape ``(L, 4)``, ``"CL"`` shape ``(4, L)`` (C-contiguous both).
    Lowercase counts as uppercase; a not-ACGT position gets ``n_value`` in all four channels
    (0, or e.g. 0.25 for float dtypes; it must be exactly representable in ``dtype``).
    """
    arr = as_u8(seq)
    dtype, nv = onehot_arguments(layout, dtype, n_value)
    n = arr.size
    one, zero = dtype.type(1), dtype.type(0)
    if layout == "LC":
        out = np.empty((n, 4), dtype=dtype)
        _onehot_lc(arr, one, zero, nv, out.reshape(-1))
    else:
        out = np.empty((4, n), dtype=dtype)
        _onehot_cl(arr, one, zero, nv, out)
    return out


@njit(cache=True, nogil=True)
def _onehot_cl_rows(data, starts, one, zero, nv, flat):
    for r in range(starts.size - 1):
        a, b = starts[r], starts[r + 1]
        _onehot_cl(data[a:b], one, zero, nv, flat[4 * a : 4 * b].reshape((4, b - a)))


def onehot_joined(seqs, layout: str = "LC", dtype=np.uint8, n_value=0) -> tuple[np.ndarray, np.ndarray]:
    """One-hot of every record in one flat array: ``(flat, starts)``, where
    ``flat[4 * starts[r]:4 * starts[r + 1]]`` is ``onehot(seqs[r], ...)`` flattened, in one
    compiled loop. ``seqs``: a :class:`Records` batch or separate records."""
    data, starts = join_records(seqs)
    dtype, nv = onehot_arguments(layout, dtype, n_value)
    one, zero = dtype.type(1), dtype.type(0)
    flat = np.empty(4 * data.size, dtype=dtype)
    if layout == "LC":  # record after record, position-major: one pass over the joined bases
        _onehot_lc(data, one, zero, nv, flat)
    else:
        _onehot_cl_rows(data, starts, one, zero, nv, flat)
    return flat, starts


def onehot_batch(seqs, layout: str = "LC", dtype=np.uint8, n_value=0) -> list[np.ndarray]:
    """:func:`onehot` of each record (views into one array filled by :func:`onehot_joined`)."""
    flat, starts = onehot_joined(seqs, layout, dtype, n_value)
    return onehot_views(flat, starts, layout)


def onehot_views(flat: np.ndarray, starts: np.ndarray, layout: str) -> list[np.ndarray]:
    """Each record's ``(L, 4)`` (LC) or ``(4, L)`` (CL) one-hot as a view of ``flat``."""
    out = []
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
        out.append(flat[4 * a : 4 * b].reshape((b - a, 4) if layout == "LC" else (4, b - a)))
    return out


# -- 2-bit packing ---------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _pack_2bit(seq, lut, packed, n_mask):
    n = seq.size
    full = n // 4
    for j in range(full):
        byte = 0
        for t in range(4):
            c = lut[seq[4 * j + t]]
            if c > 3:
                n_mask[4 * j + t] = True
                c = 0
            byte = (byte << 2) | c
        packed[j] = byte
    rest = n - 4 * full
    if rest:
        byte = 0
        for t in range(4):
            c = 0
            if t < rest:
                c = lut[seq[4 * full + t]]
                if c > 3:
                    n_mask[4 * full + t] = True
                    c = 0
            byte = (byte << 2) | c
        packed[full] = byte


def pack_2bit(seq) -> tuple[np.ndarray, np.ndarray]:
    """Pack ``seq`` 4 bases per byte, first base in the two most significant bits.

    Returns ``(packed, n_mask)``: ``packed`` is uint8 of length ``ceil(L / 4)`` (unused low
    bits of the last byte are 0); ``n_mask`` is bool of length ``L``, True where the base is
    not ACGT (stored as A = 0). Case is not kept.
    """
    arr = as_u8(seq)
    packed = np.empty((arr.size + 3) // 4, dtype=np.uint8)
    n_mask = np.zeros(arr.size, dtype=np.bool_)
    _pack_2bit(arr, BASE_CODE, packed, n_mask)
    return packed, n_mask


@njit(cache=True, nogil=True)
def _unpack_2bit(packed, length, n_mask, has_mask, out):
    letters = np.array([65, 67, 71, 84], dtype=np.uint8)  # A C G T
    for i in range(length):
        c = (packed[i >> 2] >> (6 - 2 * (i & 3))) & 3
        out[i] = letters[c]
        if has_mask and n_mask[i]:
            out[i] = 78  # N


def unpack_2bit(packed, length: int, n_mask=None) -> bytes:
    """Inverse of :func:`pack_2bit`: uppercase ``bytes`` of ``length`` bases, ``N`` where masked."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8).reshape(-1)
    length = int(length)
    if length < 0 or packed.size < (length + 3) // 4:
        raise ValueError(f"{packed.size} packed bytes cannot hold {length} bases")
    if n_mask is None:
        mask = np.zeros(0, dtype=np.bool_)
    else:
        mask = np.ascontiguousarray(n_mask, dtype=np.bool_).reshape(-1)
        if mask.size != length:
            raise ValueError(f"n_mask has {mask.size} entries for {length} bases")
    out = np.empty(length, dtype=np.uint8)
    _unpack_2bit(packed, length, mask, n_mask is not None, out)
    return out.tobytes()


# -- reverse complement ----------------------------------------------------------------


@njit(cache=True, nogil=True)
def _reverse_complement(seq, lut, out):
    n = seq.size
    for i in range(n):
        out[n - 1 - i] = lut[seq[i]]


def reverse_complement(seq) -> bytes:
    """Reverse complement as ``bytes``: ACGT and IUPAC codes complemented, case kept.

    ``A<->T, C<->G, R<->Y, K<->M, B<->V, D<->H``; ``S, W, N`` map to themselves; any other
    byte is kept as it is. The order is reversed.
    """
    arr = as_u8(seq)
    out = np.empty(arr.size, dtype=np.uint8)
    _reverse_complement(arr, COMPLEMENT, out)
    return out.tobytes()
