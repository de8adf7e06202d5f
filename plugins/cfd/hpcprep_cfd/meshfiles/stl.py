"""STL (ASCII, multi-solid ASCII, binary, binary whose header starts with "solid").

Per-facet corners are welded into an indexed mesh by exact position (first-seen order, -0.0 equals 0.0);
stored normals are ignored. Binary vs ASCII is decided by the size (84 + 50 n bytes) and the content, not
the first word. With ``split="parts"`` every solid of an ASCII file is its own part.
"""

from __future__ import annotations

import re

import numpy as np
from numba import njit

from .common import MeshFileError, _copy_tokens, _grow, _grow2, _is_space, _line_of, _numbers, _Raw, _word_is

BINARY_STL_HEADER = 84
BINARY_STL_FACET = 50
_STL_FACET = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])


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
            if nt + 3 > ends.shape[0]:
                ends = _grow(ends, nt + 3)
            m, nt, seen = _copy_tokens(buf, k, e, text, m, ends, nt, 3)
            if seen != 3:
                return _STL_TOKENS, state, line, text, ends[:nt], voff, nv, solids, ns
            if nv == voff.shape[0]:
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
            if ns == solids.shape[0]:
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
    if size != need:
        raise MeshFileError(_size_mismatch(source, data, count))
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


#: Coordinates a real binary STL holds: zero, or magnitudes a float32 geometry uses. Bytes of
#: another format read as float32 land outside this (NaN, huge or tiny) almost at once.
_PLAUSIBLE = (1e-30, 1e30)


def _facets_look_real(data: bytes, whole: int) -> bool:
    """Whether the ``whole`` facets the file holds read as finite coordinates of plausible size."""
    if whole == 0:
        return False
    coords = np.frombuffer(data, _STL_FACET, min(whole, 4096), BINARY_STL_HEADER)["v"].reshape(-1)
    with np.errstate(invalid="ignore"):  # signalling NaNs among the bytes
        mag = np.abs(coords.astype(np.float64))
    return bool(np.all(np.isfinite(mag) & ((mag == 0) | ((mag > _PLAUSIBLE[0]) & (mag < _PLAUSIBLE[1])))))


def _size_mismatch(source: str, data: bytes, count: int) -> str:
    """The message for a file that is neither an ASCII STL nor a binary STL of the size its
    header declares: a truncated or miscounted binary STL when its facets read as geometry,
    else a file that is not an STL at all (random bytes, or a format ``read_mesh`` does not
    recognise by its signature)."""
    size = len(data)
    need = BINARY_STL_HEADER + BINARY_STL_FACET * count
    whole, rest = divmod(size - BINARY_STL_HEADER, BINARY_STL_FACET)
    if not _facets_look_real(data, whole):
        return (
            f"{source}: not an STL file: it does not start with 'solid' (ASCII STL), and it is not a binary STL "
            f"of 84 + 50 n bytes for the n facets its header declares: it has {size} bytes where a header would "
            f"declare {count} facets ({need} bytes), and its bytes do not read as facets"
        )
    if size < need and rest:
        return (
            f"{source}: truncated binary STL: the header declares {count} facets ({need} bytes) but the data "
            f"ends at byte {size}, inside facet {whole}"
        )
    room = f", room for {whole} facets" if not rest else ""
    return (
        f"{source}: binary STL facet count does not match the file size: the header declares {count} "
        f"facets ({need} bytes) but the file has {size} bytes{room}"
    )
