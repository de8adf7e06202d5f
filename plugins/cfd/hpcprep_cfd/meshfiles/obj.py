"""Wavefront OBJ.

``v`` (a fourth value or vertex colours are ignored), ``f`` with ``a``, ``a/b``, ``a//c``, ``a/b/c`` and
negative (relative) indices, polygons fan-triangulated, ``o``/``g`` lines name parts (a name seen again
adds to the same part), ``\\`` line continuations. Other statements are skipped.
"""

from __future__ import annotations

import re

import numpy as np
from numba import njit

from .common import MeshFileError, _copy_tokens, _fan, _grow, _grow2, _is_space, _line_of, _numbers, _Raw

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
            if nt + 3 > ends.shape[0]:
                ends = _grow(ends, nt + 3)
            m, nt, seen = _copy_tokens(buf, k, e, text, m, ends, nt, 3)
            if seen < 3:
                return _OBJ_VERTEX, line, text, ends[:nt], voff, nv, raw, nc, polys, npoly, groups, ng
            if nv == voff.shape[0]:
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
                if nc == raw.shape[0]:
                    raw = _grow(raw, nc + 1)
                raw[nc] = sign * value
                nc += 1
            if nc - first < 3:
                return _OBJ_FACE_SHORT, line, text, ends[:nt], voff, nv, raw, nc, polys, npoly, groups, ng
            if npoly == polys.shape[0]:
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
            if ng == groups.shape[0]:
                groups = _grow2(groups, ng + 1)
            groups[ng, 0] = a
            groups[ng, 1] = b
            group = ng
            ng += 1
        i = e + 1
    return _OBJ_OK, n, text, ends[:nt], voff, nv, raw, nc, polys, npoly, groups, ng


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
