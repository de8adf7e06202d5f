"""What the mesh file parsers share: the error and record types, the part builder, ``weld`` and the scanners.

Every parser hands a :class:`_Raw` (vertices, triangles, the part of each triangle, and how to locate a
vertex or face in the file for a message) to :func:`_make_parts`, which range-checks indices, checks the
used coordinates are finite, welds STL corners or drops unreferenced vertices, and builds the records.

The ASCII scanners are Numba kernels that find the number tokens; the numbers themselves are converted by
Arrow's correctly rounded parser (:func:`_numbers`), so the coordinates are the exact values the text denotes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from . import FORMATS

#: Leading bytes of formats that turn up under a mesh suffix by mistake (a JPEG renamed
#: ``.stl``), so that the message says what the file is, not only what it is not.
SIGNATURES = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"(\xb5/\xfd", "zstd-compressed data"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
)


def known_format(data: bytes) -> str | None:
    """What ``data`` is when it starts with one of ``SIGNATURES``."""
    return next((name for magic, name in SIGNATURES if data.startswith(magic)), None)


class MeshFileError(ValueError):
    """A mesh file (or part of one) that cannot be read; the message names the source and the problem."""


@dataclass(frozen=True)
class MeshPart:
    """One record: a whole file, or one STL solid / OBJ group with ``split="parts"``."""

    index: int
    name: str
    vertices: np.ndarray
    faces: np.ndarray
    error: str | None = None


@dataclass(frozen=True)
class MeshFile:
    source: str
    #: ``stl-ascii``, ``stl-binary``, ``obj`` or ``ply``
    format: str
    parts: list[MeshPart]


def _stem(source: str) -> str:
    base = re.split(r"[/\\]", source.rstrip("/"))[-1]
    lower = base.lower()
    if lower.endswith(".gz"):
        base, lower = base[:-3], lower[:-3]
    for fmt in FORMATS:
        if lower.endswith("." + fmt):
            return base[: -len(fmt) - 1]
    return base


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


# -- what every parser hands to the part builder --------------------------------------


@dataclass
class _Raw:
    format: str
    vertices: np.ndarray  # (N, 3) float64: STL corners, or the file's vertex list
    faces: np.ndarray  # (T, 3) int64 into vertices, not yet range-checked
    face_part: np.ndarray | None  # (T,) part of each face; None: one part
    part_names: list[str]
    where_vertex: Callable[[int, int], str]  # location of coordinate `axis` of vertex k, for messages
    bad_index: Callable[[int, int], str] | None = None  # message for corner c of face t out of range
    weld: bool = False
    #: whether a part without faces is a problem (an empty STL solid) or simply not a part (an OBJ group)
    empty_parts_are_errors: bool = False
    #: name the file's content gives a merged record (one solid or group), else the file stem
    single_name: str = ""


def _make_parts(raw: _Raw, source: str, split: str) -> list[MeshPart]:
    if len(raw.faces) == 0:
        raise MeshFileError(f"{source}: no faces (the file holds no triangles or polygons)")
    stem = _stem(source)
    if split == "none" or raw.face_part is None or len(raw.part_names) < 2:
        return [_make_part(raw, source, 0, raw.single_name or stem, None, labelled=False)]
    order = np.argsort(raw.face_part, kind="stable")
    bounds = np.searchsorted(raw.face_part[order], np.arange(len(raw.part_names) + 1))
    return [
        _make_part(raw, source, p, name or stem, order[bounds[p] : bounds[p + 1]], labelled=True)
        for p, name in enumerate(raw.part_names)
    ]


def _make_part(raw: _Raw, source: str, index: int, name: str, ids, labelled: bool) -> MeshPart:
    label = f"{source}: "
    if labelled:
        label += f"{'solid' if raw.format.startswith('stl') else 'group'} {name!r}: "
    faces = raw.faces if ids is None else raw.faces[ids]
    empty_v, empty_f = np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    if len(faces) == 0:
        return MeshPart(index, name, empty_v, empty_f, f"{label}no facets")
    n = len(raw.vertices)
    bad = (faces < 0) | (faces >= n)
    if bad.any():
        t, c = np.argwhere(bad)[0]
        face = int(t if ids is None else ids[t])
        return MeshPart(index, name, empty_v, empty_f, label + raw.bad_index(face, int(c)))
    if raw.weld:
        used = faces.reshape(-1)
    else:
        mask = np.zeros(n, dtype=bool)
        mask[faces.reshape(-1)] = True
        used = np.flatnonzero(mask)
    coords = raw.vertices[used]
    finite = np.isfinite(coords)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        value = coords[row, col]
        return MeshPart(
            index,
            name,
            empty_v,
            empty_f,
            f"{label}non-finite vertex coordinate {value} ({raw.where_vertex(int(used[row]), int(col))})",
        )
    if raw.weld:
        vertices, inverse = weld(coords)
        new_faces = inverse.reshape(-1, 3)
    else:
        vertices = coords
        new_faces = (np.cumsum(mask) - 1)[faces]
    return MeshPart(index, name, np.ascontiguousarray(vertices, np.float64), np.ascontiguousarray(new_faces))


def weld(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge exactly equal positions: ``(vertices, inverse)`` with ``corners == vertices[inverse]``.

    Vertices come in first-seen order. -0.0 and 0.0 are one position (adding 0.0 turns -0.0 into 0.0);
    other values are compared by their bits, so the corners should be finite.
    """
    corners = np.asarray(corners, dtype=np.float64)
    if corners.ndim != 2 or corners.shape[1] != 3:
        raise ValueError(f"corners must be an (N, 3) array, got shape {corners.shape}")
    v = np.ascontiguousarray(corners + 0.0)
    first, inverse = _weld_kernel(v.reshape(-1).view(np.uint64))
    return v[first], inverse


@njit(cache=True, nogil=True)
def _weld_kernel(bits):
    """Open-addressing hash of the (x, y, z) bit patterns; one pass in corner order, so the ids are
    first-seen by construction. Returns (first corner of each vertex, vertex of each corner)."""
    n = bits.shape[0] // 3
    size = 16
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    table = np.full(size, -1, np.int64)
    first = np.empty(n, np.int64)
    inverse = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        x = bits[3 * i]
        y = bits[3 * i + 1]
        z = bits[3 * i + 2]
        h = x * np.uint64(0x9E3779B97F4A7C15)
        h = (h ^ (h >> np.uint64(32))) + y * np.uint64(0xC2B2AE3D27D4EB4F)
        h = (h ^ (h >> np.uint64(29))) + z * np.uint64(0x165667B19E3779F9)
        h = h ^ (h >> np.uint64(32))
        slot = h & mask
        while True:
            g = table[slot]
            if g < 0:
                table[slot] = count
                first[count] = i
                inverse[i] = count
                count += 1
                break
            r = first[g]
            if bits[3 * r] == x and bits[3 * r + 1] == y and bits[3 * r + 2] == z:
                inverse[i] = g
                break
            slot = (slot + np.uint64(1)) & mask
    return first[:count], inverse


def _numbers(source: str, text: np.ndarray, ends: np.ndarray, locate: Callable[[int], str]) -> np.ndarray:
    """The tokens ``text[ends[i - 1]:ends[i]]`` as float64; a bad token is reported at ``locate(i)``.

    Arrow's string-to-double cast is correctly rounded (the same bits as Python's ``float``) and an order
    of magnitude faster than ``np.fromstring``.
    """
    offsets = np.zeros(len(ends) + 1, np.int64)
    offsets[1:] = ends
    strings = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(text))
    try:
        return pc.cast(strings, pa.float64()).to_numpy()
    except pa.ArrowInvalid:
        ok = pc.match_substring_regex(strings, _NUMBER_RE2).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(~ok)
        k = int(bad[0]) if len(bad) else 0
        # the token's bytes, not as_py(): a token need not be valid UTF-8
        token = bytes(text[offsets[k] : offsets[k + 1]][:40]).decode("latin-1")
        raise MeshFileError(f"{source}: {token!r} is not a number ({locate(k)})") from None


_NUMBER_RE2 = r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:nan|inf|infinity))$"


# -- polygons ---------------------------------------------------------------------------


def _fan(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Fan triangles (c0, ci, ci+1) of polygons whose corners are first[p] .. first[p] + count[p] - 1.

    Returns the (T, 3) corner positions and the polygon of each triangle; polygon p gives count[p] - 2
    triangles, in order.
    """
    per = count - 2
    total = int(per.sum())
    poly = np.repeat(np.arange(len(first)), per)
    start = np.cumsum(per) - per
    j = np.arange(total) - np.repeat(start, per)
    base = first[poly]
    return np.stack([base, base + j + 1, base + j + 2], axis=1), poly


# -- Numba helpers ----------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _is_space(c):
    return c == 32 or c == 9 or c == 13 or c == 10 or c == 11 or c == 12


# The scanners call _grow and _grow2 only when an array is full: a call per element, with the reference counting
# of the array it returns, made the ASCII STL scans of the tutorial meshes take a third to half as long again.
@njit(cache=True, nogil=True)
def _grow(a, need):
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _grow2(a, need):
    if need <= a.shape[0]:
        return a
    b = np.empty((max(need, 2 * a.shape[0]), a.shape[1]), a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _word_is(buf, start, end, word):
    """Whether buf[start:end] is ``word`` (lower-case ASCII), ignoring case."""
    if end - start != word.shape[0]:
        return False
    for j in range(word.shape[0]):
        if (buf[start + j] | 32) != word[j]:
            return False
    return True


@njit(cache=True, nogil=True)
def _copy_tokens(buf, start, end, text, m, ends, nt, limit):
    """Append up to ``limit`` whitespace-separated tokens of buf[start:end] to ``text`` (back to back)
    and their end positions to ``ends``, which must have room for them; returns (text length, token count,
    tokens seen in the span)."""
    i = start
    seen = 0
    while i < end:
        while i < end and _is_space(buf[i]):
            i += 1
        if i >= end:
            break
        j = i
        while j < end and not _is_space(buf[j]):
            j += 1
        if seen < limit:
            for q in range(i, j):
                text[m] = buf[q]
                m += 1
            ends[nt] = m
            nt += 1
        seen += 1
        i = j
    return m, nt, seen


@njit(cache=True, nogil=True)
def _all_tokens(buf):
    """Every whitespace-separated token of ``buf``: (text, its length, end of each token, token count)."""
    n = buf.shape[0]
    text = np.empty(n, np.uint8)
    ends = np.empty(n // 2 + 1, np.int64)  # each token but the last is followed by a separator
    m, nt, _ = _copy_tokens(buf, 0, n, text, 0, ends, 0, n + 1)
    return text, m, ends, nt
