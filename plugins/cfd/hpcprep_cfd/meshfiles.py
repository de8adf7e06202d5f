"""Surface mesh files (STL, OBJ, PLY, and gzip of each) as indexed triangle meshes, without Ray.

``read_mesh(path_or_bytes)`` returns a :class:`MeshFile` whose parts hold ``vertices`` (V, 3) float64 and
``faces`` (F, 3) int64 (0-based). What every format gives:

- STL (ASCII, multi-solid ASCII, binary, binary whose header starts with "solid"): per-facet corners are
  welded into an indexed mesh by exact position (first-seen order, -0.0 equals 0.0); stored normals are
  ignored. Binary vs ASCII is decided by the size (84 + 50 n bytes) and the content, not the first word.
- OBJ: ``v`` (a fourth value or vertex colours are ignored), ``f`` with ``a``, ``a/b``, ``a//c``, ``a/b/c``
  and negative (relative) indices, polygons fan-triangulated, ``o``/``g`` lines name parts (a name seen again
  adds to the same part), ``\\`` line continuations.
- PLY: ascii, binary_little_endian, binary_big_endian; vertex x, y, z of any numeric type (ASCII values are
  cast to the declared type, so both encodings of a file agree), face ``vertex_indices``/``vertex_index``
  lists fan-triangulated, other properties and elements skipped.

A record keeps only the vertices its faces use: unreferenced OBJ/PLY vertices are dropped, the others keep
their file order. With ``split="parts"`` every STL solid or OBJ group is its own part; otherwise the file
is one part. A file that cannot be read at all raises :class:`MeshFileError`; a bad part (a NaN
coordinate, a face index out of range, a solid without facets) raises it too, or with
``on_error="keep"`` comes back as a part with ``error`` set so that the other parts can still be used.
Every message names the source and where the problem is (line, byte offset, facet or row).

The ASCII scanners are Numba kernels that find the number tokens; the numbers themselves are converted by
Arrow's correctly rounded parser, so the coordinates are the exact values the text denotes.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

FORMATS = ("stl", "obj", "ply")
#: File name suffixes the reader expands directories to.
SUFFIXES = (".stl", ".obj", ".ply", ".stl.gz", ".obj.gz", ".ply.gz")

BINARY_STL_HEADER = 84
BINARY_STL_FACET = 50
_STL_FACET = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])


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


def read_mesh(
    path_or_bytes: str | os.PathLike | bytes,
    *,
    source: str | None = None,
    format: Literal["stl", "obj", "ply"] | None = None,
    split: Literal["none", "parts"] = "none",
    on_error: Literal["raise", "keep"] = "raise",
) -> MeshFile:
    """Read an STL, OBJ or PLY file (plain or gzip) into indexed triangle meshes.

    ``source`` names the data in messages and decides the format by its suffix (default: the path, or
    ``"<bytes>"``); ``format`` overrides the suffix, which otherwise falls back to sniffing the content.
    """
    if split not in ("none", "parts"):
        raise ValueError(f"split must be 'none' or 'parts', not {split!r}")
    if on_error not in ("raise", "keep"):
        raise ValueError(f"on_error must be 'raise' or 'keep', not {on_error!r}")
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        source = source or "<bytes>"
    else:
        source = source or os.fspath(path_or_bytes)
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    data = _gunzip(source, data)
    if not data or data.isspace():
        raise MeshFileError(f"{source}: the file is empty")
    fmt = format or _format_from_name(source) or _sniff(data)
    if fmt is None:
        raise MeshFileError(f"{source}: not an STL, OBJ or PLY file (unknown suffix, and the content matches none)")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    if fmt == "stl":
        raw = _parse_stl(source, data)
    elif fmt == "obj":
        raw = _parse_obj(source, data)
    else:
        raw = _parse_ply(source, data)
    parts = _make_parts(raw, source, split)
    if on_error == "raise":
        for part in parts:
            if part.error is not None:
                raise MeshFileError(part.error)
    return MeshFile(source, raw.format, parts)


def _gunzip(source: str, data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise MeshFileError(f"{source}: damaged or truncated gzip data ({exc})") from None


def _format_from_name(source: str) -> str | None:
    name = source.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for fmt in FORMATS:
        if name.endswith("." + fmt):
            return fmt
    return None


def _sniff(data: bytes) -> str | None:
    if data[:3] == b"ply" and data[3:4] in (b"\n", b"\r"):
        return "ply"
    if _binary_stl_size_matches(data) or _looks_like_ascii_stl(data):
        return "stl"
    if re.search(rb"(?m)^[ \t]*v[ \t]", data[:65536]) and re.search(rb"(?m)^[ \t]*f[ \t]", data):
        return "obj"
    return None


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
        token = strings[k].as_py()[:40]
        raise MeshFileError(f"{source}: {token!r} is not a number ({locate(k)})") from None


_NUMBER_RE2 = r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:nan|inf|infinity))$"


# -- Numba helpers ----------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _is_space(c):
    return c == 32 or c == 9 or c == 13 or c == 10 or c == 11 or c == 12


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
    and their end positions to ``ends``; returns (text length, token count, tokens seen in the span, ends)."""
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
            ends = _grow(ends, nt + 1)
            ends[nt] = m
            nt += 1
        seen += 1
        i = j
    return m, nt, seen, ends


@njit(cache=True, nogil=True)
def _all_tokens(buf):
    """Every whitespace-separated token of ``buf``: (text, its length, end of each token, token count)."""
    n = buf.shape[0]
    text = np.empty(n, np.uint8)
    ends = np.empty(max(16, n // 4), np.int64)
    m, nt, _, ends = _copy_tokens(buf, 0, n, text, 0, ends, 0, n + 1)
    return text, m, ends, nt


# -- STL --------------------------------------------------------------------------------

_W_SOLID = np.frombuffer(b"solid", np.uint8).copy()
_W_FACET = np.frombuffer(b"facet", np.uint8).copy()
_W_OUTER = np.frombuffer(b"outer", np.uint8).copy()
_W_VERTEX = np.frombuffer(b"vertex", np.uint8).copy()
_W_ENDLOOP = np.frombuffer(b"endloop", np.uint8).copy()
_W_ENDFACET = np.frombuffer(b"endfacet", np.uint8).copy()
_W_ENDSOLID = np.frombuffer(b"endsolid", np.uint8).copy()

# Scanner states; also what the message says was expected in each.
_STL_EXPECTED = ("'solid'", "'facet' or 'endsolid'", "'outer loop'", "'vertex' or 'endloop'", "'endfacet'")
_STL_OK, _STL_UNEXPECTED, _STL_TOKENS, _STL_CORNERS, _STL_EOF = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def _scan_stl_ascii(buf):
    """One pass over an ASCII STL.

    Returns (status, state, error offset, number text, end of each number in it, byte offset of each
    vertex line, vertex count, solids as rows [line offset, name start, name end, first vertex], solid
    count).
    """
    n = buf.shape[0]
    text = np.empty(n, np.uint8)
    m = 0
    ends = np.empty(1024, np.int64)
    nt = 0
    voff = np.empty(1024, np.int64)
    nv = 0
    solids = np.empty((8, 4), np.int64)
    ns = 0
    state = 0  # 0 outside a solid, 1 between facets, 2 in a facet, 3 in a loop, 4 after the loop
    corners = 0
    loop_line = 0
    i = 0
    while i < n:
        line = i
        e = i
        while e < n and buf[e] != 10:
            e += 1
        while i < e and _is_space(buf[i]):
            i += 1
        k = i
        while k < e and not _is_space(buf[k]):
            k += 1
        if k == i:
            i = e + 1
            continue
        if _word_is(buf, i, k, _W_VERTEX):
            if state != 3:
                return _STL_UNEXPECTED, state, line, text, ends[:nt], voff, nv, solids, ns
            if corners == 3:
                return _STL_CORNERS, state, loop_line, text, ends[:nt], voff, nv, solids, ns
            m, nt, seen, ends = _copy_tokens(buf, k, e, text, m, ends, nt, 3)
            if seen != 3:
                return _STL_TOKENS, state, line, text, ends[:nt], voff, nv, solids, ns
            voff = _grow(voff, nv + 1)
            voff[nv] = line
            nv += 1
            corners += 1
        elif _word_is(buf, i, k, _W_FACET):
            if state != 1:
                return _STL_UNEXPECTED, state, line, text, ends[:nt], voff, nv, solids, ns
            state = 2
        elif _word_is(buf, i, k, _W_OUTER):
            if state != 2:
                return _STL_UNEXPECTED, state, line, text, ends[:nt], voff, nv, solids, ns
            state = 3
            corners = 0
            loop_line = line
        elif _word_is(buf, i, k, _W_ENDLOOP):
            if state != 3:
                return _STL_UNEXPECTED, state, line, text, ends[:nt], voff, nv, solids, ns
            if corners != 3:
                return _STL_CORNERS, state, loop_line, text, ends[:nt], voff, nv, solids, ns
            state = 4
        elif _word_is(buf, i, k, _W_ENDFACET):
            if state != 4:
                return _STL_UNEXPECTED, state, line, text, ends[:nt], voff, nv, solids, ns
            state = 1
        elif _word_is(buf, i, k, _W_SOLID):
            if state != 0:
                return _STL_UNEXPECTED, state, line, text, ends[:nt], voff, nv, solids, ns
            a = k
            while a < e and _is_space(buf[a]):
                a += 1
            b = e
            while b > a and _is_space(buf[b - 1]):
                b -= 1
            solids = _grow2(solids, ns + 1)
            solids[ns, 0] = line
            solids[ns, 1] = a
            solids[ns, 2] = b
            solids[ns, 3] = nv
            ns += 1
            state = 1
        elif _word_is(buf, i, k, _W_ENDSOLID):
            if state != 1:
                return _STL_UNEXPECTED, state, line, text, ends[:nt], voff, nv, solids, ns
            state = 0
        else:
            return _STL_UNEXPECTED, state, line, text, ends[:nt], voff, nv, solids, ns
        i = e + 1
    if state != 0:
        return _STL_EOF, state, n, text, ends[:nt], voff, nv, solids, ns
    return _STL_OK, state, n, text, ends[:nt], voff, nv, solids, ns


def _binary_stl_size_matches(data: bytes) -> bool:
    if len(data) < BINARY_STL_HEADER:
        return False
    count = int(np.frombuffer(data, "<u4", 1, 80)[0])
    return len(data) == BINARY_STL_HEADER + BINARY_STL_FACET * count


def _looks_like_ascii_stl(data: bytes) -> bool:
    head = data[:4096]
    if not head.lstrip()[:5].lower() == b"solid" or b"\x00" in head:
        return False
    return re.search(rb"(?i)\b(facet|endsolid)\b", head) is not None or len(data) < 4096


def _parse_stl(source: str, data: bytes) -> _Raw:
    # A binary file's size is exactly 84 + 50 n; an ASCII file that happens to have that size would still
    # read as text with facets, which a binary header starting with "solid" followed by floats does not.
    if _binary_stl_size_matches(data) and not (
        _looks_like_ascii_stl(data) and re.search(rb"(?i)\bendsolid\b", data[-512:])
    ):
        return _parse_stl_binary(source, data)
    if _looks_like_ascii_stl(data):
        return _parse_stl_ascii(source, data)
    return _parse_stl_binary(source, data)


def _parse_stl_binary(source: str, data: bytes) -> _Raw:
    size = len(data)
    if size < BINARY_STL_HEADER:
        raise MeshFileError(
            f"{source}: not an ASCII STL (no 'solid' line) and too short for a binary STL: {size} bytes, "
            f"the binary header alone is {BINARY_STL_HEADER}"
        )
    count = int(np.frombuffer(data, "<u4", 1, 80)[0])
    need = BINARY_STL_HEADER + BINARY_STL_FACET * count
    whole, rest = divmod(size - BINARY_STL_HEADER, BINARY_STL_FACET)
    if size < need and rest:
        raise MeshFileError(
            f"{source}: truncated binary STL: the header declares {count} facets ({need} bytes) but the data "
            f"ends at byte {size}, inside facet {whole}"
        )
    if size != need:
        room = f", room for {whole} facets" if not rest else ""
        raise MeshFileError(
            f"{source}: binary STL facet count does not match the file size: the header declares {count} "
            f"facets ({need} bytes) but the file has {size} bytes{room}"
        )
    rec = np.frombuffer(data, _STL_FACET, count, BINARY_STL_HEADER)
    corners = rec["v"].reshape(-1, 3).astype(np.float64)

    def where(k: int, axis: int) -> str:
        offset = BINARY_STL_HEADER + BINARY_STL_FACET * (k // 3) + 12 + 12 * (k % 3) + 4 * axis
        return f"facet {k // 3}, byte offset {offset}"

    faces = np.arange(3 * count, dtype=np.int64).reshape(-1, 3)
    return _Raw("stl-binary", corners, faces, None, [""], where, weld=True)


def _parse_stl_ascii(source: str, data: bytes) -> _Raw:
    buf = np.frombuffer(data, np.uint8)
    status, state, at, text, ends, voff, nv, solids, ns = _scan_stl_ascii(buf)
    if status != _STL_OK:
        line = _line_of(data, at)
        if status == _STL_EOF:
            what = "ends inside a facet" if state > 1 else "ends before 'endsolid'"
            raise MeshFileError(f"{source}: ASCII STL {what} (line {line}, expected {_STL_EXPECTED[state]})")
        if status == _STL_TOKENS:
            raise MeshFileError(f"{source}: 'vertex' needs exactly 3 numbers (line {line})")
        if status == _STL_CORNERS:
            raise MeshFileError(f"{source}: a facet loop must have exactly 3 vertices (loop at line {line})")
        end = data.find(b"\n", at)
        word = data[at : end if end >= 0 else len(data)].split()[0].decode("utf-8", "replace")[:40]
        raise MeshFileError(f"{source}: unexpected {word!r}, expected {_STL_EXPECTED[state]} (line {line})")
    voff = voff[:nv]
    coords = _numbers(source, text, ends, lambda k: f"line {_line_of(data, int(voff[k // 3]))}")
    corners = coords.reshape(-1, 3)
    names = [data[a:b].decode("utf-8", "replace") for a, b in solids[:ns, 1:3]]
    first_face = solids[:ns, 3] // 3
    face_part = np.repeat(np.arange(ns), np.diff(np.append(first_face, nv // 3)))
    faces = np.arange(nv, dtype=np.int64).reshape(-1, 3)

    def where(k: int, axis: int) -> str:
        return f"line {_line_of(data, int(voff[k]))}"

    single = names[0] if ns == 1 else ""
    return _Raw(
        "stl-ascii", corners, faces, face_part, names, where, weld=True, empty_parts_are_errors=True, single_name=single
    )


# -- OBJ --------------------------------------------------------------------------------

_OBJ_OK, _OBJ_VERTEX, _OBJ_FACE_TOKEN, _OBJ_FACE_SHORT = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def _scan_obj(buf):
    """One pass over an OBJ (continuations already blanked out).

    Returns (status, error offset, vertex number text, end of each number in it, byte offset of each
    ``v`` line, vertex count, corner indices as written, corner count, polygons as rows [first corner, corners, vertices
    defined before the line, line offset, group], polygon count, groups as rows [name start, name end],
    group count).
    """
    n = buf.shape[0]
    text = np.empty(n, np.uint8)
    m = 0
    ends = np.empty(1024, np.int64)
    nt = 0
    voff = np.empty(1024, np.int64)
    nv = 0
    raw = np.empty(4096, np.int64)
    nc = 0
    polys = np.empty((1024, 5), np.int64)
    npoly = 0
    groups = np.empty((8, 2), np.int64)
    ng = 0
    group = -1
    i = 0
    while i < n:
        line = i
        e = i
        while e < n and buf[e] != 10:
            e += 1
        while i < e and _is_space(buf[i]):
            i += 1
        k = i
        while k < e and not _is_space(buf[k]):
            k += 1
        if k - i == 1 and buf[i] == 118:  # v
            m, nt, seen, ends = _copy_tokens(buf, k, e, text, m, ends, nt, 3)
            if seen < 3:
                return _OBJ_VERTEX, line, text, ends[:nt], voff, nv, raw, nc, polys, npoly, groups, ng
            voff = _grow(voff, nv + 1)
            voff[nv] = line
            nv += 1
        elif k - i == 1 and buf[i] == 102:  # f
            first = nc
            j = k
            while j < e:
                while j < e and _is_space(buf[j]):
                    j += 1
                if j >= e:
                    break
                sign = 1
                if buf[j] == 45 or buf[j] == 43:
                    if buf[j] == 45:
                        sign = -1
                    j += 1
                value = 0
                digits = 0
                while j < e and 48 <= buf[j] <= 57:
                    if digits < 18:
                        value = value * 10 + (buf[j] - 48)
                    digits += 1
                    j += 1
                if digits == 0 or digits > 18 or (j < e and buf[j] != 47 and not _is_space(buf[j])):
                    return _OBJ_FACE_TOKEN, line, text, ends[:nt], voff, nv, raw, nc, polys, npoly, groups, ng
                while j < e and not _is_space(buf[j]):  # /vt/vn: not needed
                    j += 1
                raw = _grow(raw, nc + 1)
                raw[nc] = sign * value
                nc += 1
            if nc - first < 3:
                return _OBJ_FACE_SHORT, line, text, ends[:nt], voff, nv, raw, nc, polys, npoly, groups, ng
            polys = _grow2(polys, npoly + 1)
            polys[npoly, 0] = first
            polys[npoly, 1] = nc - first
            polys[npoly, 2] = nv
            polys[npoly, 3] = line
            polys[npoly, 4] = group
            npoly += 1
        elif k - i == 1 and (buf[i] == 103 or buf[i] == 111):  # g, o
            a = k
            while a < e and _is_space(buf[a]):
                a += 1
            b = e
            while b > a and _is_space(buf[b - 1]):
                b -= 1
            groups = _grow2(groups, ng + 1)
            groups[ng, 0] = a
            groups[ng, 1] = b
            group = ng
            ng += 1
        i = e + 1
    return _OBJ_OK, n, text, ends[:nt], voff, nv, raw, nc, polys, npoly, groups, ng


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


def _parse_obj(source: str, data: bytes) -> _Raw:
    if b"\\" in data:
        # A continuation becomes blanks of the same length, so byte offsets (and line numbers from the
        # original data) stay right.
        work = re.sub(rb"\\\r?\n", lambda mt: b" " * len(mt.group()), data)
    else:
        work = data
    buf = np.frombuffer(work, np.uint8)
    status, at, text, ends, voff, nv, raw, nc, polys, npoly, groups, ng = _scan_obj(buf)
    if status != _OBJ_OK:
        line = _line_of(data, at)
        if status == _OBJ_VERTEX:
            raise MeshFileError(f"{source}: 'v' needs 3 coordinates (line {line})")
        if status == _OBJ_FACE_SHORT:
            raise MeshFileError(f"{source}: a face needs at least 3 vertices (line {line})")
        raise MeshFileError(f"{source}: bad face vertex: expected 'i', 'i/t', 'i//n' or 'i/t/n' (line {line})")
    voff, raw, polys = voff[:nv], raw[:nc], polys[:npoly]
    coords = _numbers(source, text, ends, lambda k: f"line {_line_of(data, int(voff[k // 3]))}")
    vertices = coords.reshape(-1, 3)
    # OBJ counts from 1; negative indices count back from the last vertex defined before the face line.
    resolved = np.where(raw > 0, raw - 1, np.repeat(polys[:, 2], polys[:, 1]) + raw)
    resolved[raw == 0] = -1
    corner_ids, tri_poly = _fan(polys[:, 0], polys[:, 1])
    faces = resolved[corner_ids]
    # Parts: the names of the o/g lines; faces before any of them belong to the file stem.
    names = [data[a:b].decode("utf-8", "replace") for a, b in groups[:ng]]
    part_of_name: dict[str, int] = {}
    part_names: list[str] = []
    part_of_group = np.empty(ng + 1, np.int64)
    for g, name in enumerate([""] + names):
        if name not in part_of_name:
            part_of_name[name] = len(part_names)
            part_names.append(name)
        part_of_group[g] = part_of_name[name]
    face_part = part_of_group[polys[tri_poly, 4] + 1]

    def where(k: int, axis: int) -> str:
        return f"line {_line_of(data, int(voff[k]))}"

    def bad_index(t: int, c: int) -> str:
        p = tri_poly[t]
        value = int(raw[corner_ids[t, c]])
        line = _line_of(data, int(polys[p, 3]))
        if value == 0:
            return f"face index 0 (OBJ indices start at 1) (line {line})"
        if value < 0:
            return (
                f"relative face index {value} reaches before the first vertex ({int(polys[p, 2])} vertices are "
                f"defined before line {line}) (line {line})"
            )
        return f"face index {value} is out of range: the file has {nv} vertices (line {line})"

    # Names without faces (a bare 'o' line before its groups, say) are no parts; the others are numbered in
    # order of their first face.
    used, first_face = np.unique(face_part, return_index=True)
    ordered = used[np.argsort(first_face)]
    remap = np.full(len(part_names), -1, np.int64)
    remap[ordered] = np.arange(len(ordered))
    face_part = remap[face_part]
    part_names = [part_names[p] for p in ordered]
    single = part_names[0] if len(part_names) == 1 else ""
    return _Raw("obj", vertices, faces.astype(np.int64), face_part, part_names, where, bad_index, single_name=single)


# -- PLY --------------------------------------------------------------------------------

_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
    "int64": "i8",
    "uint64": "u8",
}


@dataclass
class _PlyProperty:
    name: str
    dtype: np.dtype  # of the value, or of the list items
    count_dtype: np.dtype | None = None  # set for a list property


@dataclass
class _PlyElement:
    name: str
    count: int
    line: int
    properties: list[_PlyProperty]


def _ply_header(source: str, data: bytes) -> tuple[str, list[_PlyElement], int, int]:
    """(encoding, elements, byte offset of the data, number of header lines)."""
    if not (data[:3] == b"ply" and data[3:4] in (b"\n", b"\r")):
        raise MeshFileError(f"{source}: broken PLY header: the first line must be 'ply' (line 1)")
    end = re.search(rb"(?m)^end_header[ \t]*\r?$", data)
    if end is None:
        raise MeshFileError(f"{source}: broken PLY header: no 'end_header' line")
    nl = data.find(b"\n", end.end())
    start = len(data) if nl < 0 else nl + 1
    lines = data[: end.start()].decode("latin-1").splitlines()
    encoding = None
    elements: list[_PlyElement] = []
    for no, text in enumerate(lines[1:], start=2):
        words = text.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        key = words[0]
        if key == "format":
            if len(words) != 3 or words[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise MeshFileError(
                    f"{source}: broken PLY header: expected 'format ascii|binary_little_endian|binary_big_endian "
                    f"1.0', found {text.strip()!r} (line {no})"
                )
            encoding = words[1]
        elif key == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise MeshFileError(
                    f"{source}: broken PLY header: expected 'element <name> <count>', found {text.strip()!r} "
                    f"(line {no})"
                )
            elements.append(_PlyElement(words[1], int(words[2]), no, []))
        elif key == "property":
            if not elements:
                raise MeshFileError(f"{source}: broken PLY header: 'property' before any 'element' (line {no})")
            if len(words) == 5 and words[1] == "list":
                if words[2] not in _PLY_TYPES or words[3] not in _PLY_TYPES or _PLY_TYPES[words[2]][0] == "f":
                    raise MeshFileError(f"{source}: broken PLY header: bad list types in {text.strip()!r} (line {no})")
                prop = _PlyProperty(words[4], np.dtype(_PLY_TYPES[words[3]]), np.dtype(_PLY_TYPES[words[2]]))
            elif len(words) == 3 and words[1] in _PLY_TYPES:
                prop = _PlyProperty(words[2], np.dtype(_PLY_TYPES[words[1]]))
            else:
                raise MeshFileError(
                    f"{source}: broken PLY header: expected 'property <type> <name>' or 'property list "
                    f"<count type> <item type> <name>', found {text.strip()!r} (line {no})"
                )
            elements[-1].properties.append(prop)
        else:
            raise MeshFileError(f"{source}: broken PLY header: unknown keyword {key!r} (line {no})")
    if encoding is None:
        raise MeshFileError(f"{source}: broken PLY header: no 'format' line")
    return encoding, elements, start, len(lines) + 1


@njit(cache=True, nogil=True)
def _walk_binary(buf, pos, count, is_list, size, count_size, big):
    """Byte offset of every property of every row of one element, and list lengths.

    Returns (status, position after the element, offsets (count, props), lengths (count, props), row of
    the failure); status 1 means the data ends inside the element, 2 a negative list length.
    """
    n = buf.shape[0]
    nprops = is_list.shape[0]
    offs = np.empty((count, nprops), np.int64)
    lens = np.zeros((count, nprops), np.int64)
    for r in range(count):
        for p in range(nprops):
            offs[r, p] = pos
            if is_list[p]:
                cs = count_size[p]
                if pos + cs > n:
                    return 1, pos, offs, lens, r
                c = 0
                for q in range(cs):
                    byte = np.int64(buf[pos + (q if big else cs - 1 - q)])
                    c = c * 256 + byte
                if is_list[p] == 2 and c >= (np.int64(1) << (8 * cs - 1)):  # signed count, negative
                    return 2, pos, offs, lens, r
                lens[r, p] = c
                pos += cs + c * size[p]
            else:
                pos += size[p]
            if pos > n:
                return 1, pos, offs, lens, r
    return 0, pos, offs, lens, count


@njit(cache=True, nogil=True)
def _walk_ascii(values, pos, count, is_list):
    """As ``_walk_binary`` over ASCII values (one value per position); status 2: a list length that is
    not a non-negative whole number."""
    n = values.shape[0]
    nprops = is_list.shape[0]
    offs = np.empty((count, nprops), np.int64)
    lens = np.zeros((count, nprops), np.int64)
    for r in range(count):
        for p in range(nprops):
            offs[r, p] = pos
            if is_list[p]:
                if pos >= n:
                    return 1, pos, offs, lens, r
                v = values[pos]
                if not (v >= 0 and v == np.floor(v) and v < 2.0**62):
                    return 2, pos, offs, lens, r
                c = np.int64(v)
                lens[r, p] = c
                pos += 1 + c
            else:
                pos += 1
            if pos > n:
                return 1, pos, offs, lens, r
    return 0, pos, offs, lens, count


def _parse_ply(source: str, data: bytes) -> _Raw:
    encoding, elements, start, header_lines = _ply_header(source, data)
    vertex = next((e for e in elements if e.name == "vertex"), None)
    face = next((e for e in elements if e.name == "face"), None)
    if vertex is None:
        raise MeshFileError(f"{source}: broken PLY header: no 'vertex' element")
    names = {p.name: p for p in vertex.properties}
    for axis in "xyz":
        prop = names.get(axis)
        if prop is None or prop.count_dtype is not None:
            raise MeshFileError(
                f"{source}: broken PLY header: the vertex element has no scalar property {axis!r} (line {vertex.line})"
            )
    if face is None or face.count == 0:
        raise MeshFileError(f"{source}: no faces (the PLY file has no 'face' element or it is empty)")
    index_prop = next((p for p in face.properties if p.name in ("vertex_indices", "vertex_index")), None)
    if index_prop is None or index_prop.count_dtype is None or index_prop.dtype.kind == "f":
        raise MeshFileError(
            f"{source}: broken PLY header: the face element needs an integer list property 'vertex_indices' or "
            f"'vertex_index' (line {face.line})"
        )
    if encoding == "ascii":
        return _ply_ascii(source, data, elements, start, header_lines, vertex, face, index_prop)
    return _ply_binary(source, data, elements, start, encoding == "binary_big_endian", vertex, face, index_prop)


def _ply_binary(source, data, elements, start, big, vertex, face, index_prop) -> _Raw:
    order = ">" if big else "<"
    buf = np.frombuffer(data, np.uint8)
    pos = start
    found: dict[str, tuple] = {}
    for el in elements:
        props = el.properties
        if all(p.count_dtype is None for p in props):
            row = sum(p.dtype.itemsize for p in props)
            if pos + row * el.count > len(data):
                r = (len(data) - pos) // row if row else 0
                raise MeshFileError(
                    f"{source}: PLY data is short: element {el.name!r} needs {row * el.count} bytes from byte "
                    f"{pos}, the file ends at byte {len(data)}, inside row {r}"
                )
            offs = (
                pos
                + np.arange(el.count, dtype=np.int64)[:, None] * row
                + np.cumsum([0] + [p.dtype.itemsize for p in props[:-1]])
            )
            lens = np.zeros((el.count, len(props)), np.int64)
            pos += row * el.count
        else:
            is_list = np.array(
                [0 if p.count_dtype is None else 2 if p.count_dtype.kind == "i" else 1 for p in props], np.int64
            )
            size = np.array([p.dtype.itemsize for p in props], np.int64)
            count_size = np.array([0 if p.count_dtype is None else p.count_dtype.itemsize for p in props], np.int64)
            status, pos, offs, lens, r = _walk_binary(buf, pos, el.count, is_list, size, count_size, big)
            if status == 1:
                raise MeshFileError(
                    f"{source}: PLY data is short: the file ends at byte {len(data)}, inside element {el.name!r} "
                    f"row {r} of {el.count}"
                )
            if status == 2:
                raise MeshFileError(
                    f"{source}: negative list length in element {el.name!r} row {r} (byte offset {pos})"
                )
        if el is vertex or el is face:
            found[el.name] = (offs, lens)
        if "vertex" in found and "face" in found:
            break
    v_offs, _ = found["vertex"]
    axis_props = [next(i for i, q in enumerate(vertex.properties) if q.name == axis) for axis in "xyz"]
    cols = []
    for p in axis_props:
        cols.append(_gather(buf, v_offs[:, p], vertex.properties[p].dtype.newbyteorder(order)))
    vertices = np.stack(cols, axis=1).astype(np.float64)
    f_offs, f_lens = found["face"]
    p = face.properties.index(index_prop)
    counts = f_lens[:, p]
    item = index_prop.dtype.newbyteorder(order)
    first_item = f_offs[:, p] + index_prop.count_dtype.itemsize
    flat_pos = np.repeat(first_item, counts) + _ranks(counts) * item.itemsize
    indices = _gather(buf, flat_pos, item).astype(np.int64)

    def where_vertex(k: int, axis: int) -> str:
        return f"element 'vertex' row {k}, byte offset {int(v_offs[k, axis_props[axis]])}"

    def where_face(row: int, pos_in_row: int) -> str:
        return f"byte offset {int(first_item[row] + pos_in_row * item.itemsize)}"

    return _ply_raw(source, vertices, indices, counts, where_vertex, where_face)


def _ply_ascii(source, data, elements, start, header_lines, vertex, face, index_prop) -> _Raw:
    body = np.frombuffer(data, np.uint8, offset=start)
    first_lines = {}
    line = header_lines + 1
    for el in elements:
        first_lines[el.name] = line
        line += el.count

    text, _, ends, nt = _all_tokens(body)
    ends = ends[:nt]

    def locate(k: int) -> str:
        return f"line {_line_of(data, start + _token_start(body, k))} of the PLY data"

    values = _numbers(source, text, ends, locate)
    pos = 0
    found: dict[str, tuple] = {}
    for el in elements:
        is_list = np.array([0 if p.count_dtype is None else 1 for p in el.properties], np.int64)
        status, pos, offs, lens, r = _walk_ascii(values, pos, el.count, is_list)
        if status == 1:
            raise MeshFileError(
                f"{source}: PLY data is short: the values end inside element {el.name!r} row {r} of {el.count} "
                f"(line {first_lines[el.name] + r})"
            )
        if status == 2:
            raise MeshFileError(
                f"{source}: bad list length in element {el.name!r} row {r} (line {first_lines[el.name] + r})"
            )
        if el is vertex or el is face:
            found[el.name] = (offs, lens)
        if "vertex" in found and "face" in found:
            break
    v_offs, _ = found["vertex"]
    cols = []
    for axis in "xyz":
        p = next(i for i, q in enumerate(vertex.properties) if q.name == axis)
        # Cast to the declared type, as a binary file with the same header would hold it.
        cols.append(values[v_offs[:, p]].astype(vertex.properties[p].dtype))
    vertices = np.stack(cols, axis=1).astype(np.float64)
    f_offs, f_lens = found["face"]
    p = face.properties.index(index_prop)
    counts = f_lens[:, p]
    raw = values[np.repeat(f_offs[:, p] + 1, counts) + _ranks(counts)]
    if len(raw) and not np.all(raw == np.floor(raw)):
        bad = int(np.argmax(raw != np.floor(raw)))
        row = int(np.searchsorted(np.cumsum(counts), bad, side="right"))
        raise MeshFileError(
            f"{source}: face vertex index {raw[bad]} is not a whole number (element 'face' row {row}, "
            f"line {first_lines['face'] + row})"
        )
    indices = raw.astype(np.int64)

    def where_vertex(k: int, axis: int) -> str:
        return f"element 'vertex' row {k}, line {first_lines['vertex'] + k}"

    def where_face(row: int, pos_in_row: int) -> str:
        return f"line {first_lines['face'] + row}"

    return _ply_raw(source, vertices, indices, counts, where_vertex, where_face)


def _ply_raw(source, vertices, indices, counts, where_vertex, where_face) -> _Raw:
    short = np.flatnonzero(counts < 3)
    if len(short):
        row = int(short[0])
        raise MeshFileError(
            f"{source}: face {row} has {int(counts[row])} vertices, a face needs at least 3 ({where_face(row, 0)})"
        )
    first = np.cumsum(counts) - counts
    corner_ids, tri_row = _fan(first, counts)
    faces = indices[corner_ids]
    n = len(vertices)

    def bad_index(t: int, c: int) -> str:
        row = int(tri_row[t])
        k = int(corner_ids[t, c] - first[row])
        value = int(indices[corner_ids[t, c]])
        return f"face {row}: vertex index {value} is out of range, the file has {n} vertices ({where_face(row, k)})"

    return _Raw("ply", vertices, faces, None, [""], where_vertex, bad_index)


@njit(cache=True, nogil=True)
def _token_start(buf, k):
    """Byte offset in ``buf`` of whitespace-separated token k (counted again, only for a message)."""
    n = buf.shape[0]
    i = 0
    seen = -1
    while i < n:
        while i < n and _is_space(buf[i]):
            i += 1
        if i >= n:
            break
        seen += 1
        if seen == k:
            return i
        while i < n and not _is_space(buf[i]):
            i += 1
    return n


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., counts[0] - 1, 0, 1, ..., counts[1] - 1, ..."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def _gather(buf: np.ndarray, offsets: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Values of ``dtype`` stored at the byte ``offsets`` of ``buf`` (unaligned, any byte order)."""
    size = dtype.itemsize
    raw = buf[offsets[:, None] + np.arange(size)]
    return np.ascontiguousarray(raw).view(dtype).reshape(-1)
