"""PLY: ascii, binary_little_endian, binary_big_endian.

Vertex x, y, z of any numeric type (ASCII values are cast to the declared type, so both encodings of a
file agree), face ``vertex_indices``/``vertex_index`` lists fan-triangulated, other properties and
elements skipped. The header is parsed in Python; Numba kernels walk the rows for the byte (binary) or
value (ASCII) offset of every property, since list lengths vary, and the values are gathered from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numba import njit

from .common import MeshFileError, _all_tokens, _fan, _is_space, _line_of, _numbers, _Raw

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
    lines = data[: end.start()].decode("utf-8", "replace").splitlines()  # ASCII when valid; shown in messages
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
            if len(words) != 3 or not (words[2].isascii() and words[2].isdigit()):  # not '¹': int() refuses it
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
        if not props:
            continue  # rows without properties take no bytes
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
            _check_room(source, el, _min_row_bytes(props), len(data) - pos, "bytes", f"from byte {pos}")
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
        if not el.properties:
            continue  # rows without properties hold no values
        # a row holds at least one value per property (a list: its length)
        _check_room(source, el, len(el.properties), len(values) - pos, "values", f"at line {first_lines[el.name]}")
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
        raw_axis = values[v_offs[:, p]]
        _check_fits(source, raw_axis, vertex.properties[p], lambda k: f"line {first_lines['vertex'] + k}")
        cols.append(raw_axis.astype(vertex.properties[p].dtype))
    vertices = np.stack(cols, axis=1).astype(np.float64)
    f_offs, f_lens = found["face"]
    p = face.properties.index(index_prop)
    counts = f_lens[:, p]
    raw = values[np.repeat(f_offs[:, p] + 1, counts) + _ranks(counts)]
    # inf equals its floor, and a cast of inf or 1e30 gives an arbitrary integer: check the size too
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(raw) & (raw == np.floor(raw)) & (np.abs(raw) < 2.0**62)
    if not whole.all():
        bad = int(np.argmin(whole))
        row = int(np.searchsorted(np.cumsum(counts), bad, side="right"))
        raise MeshFileError(
            f"{source}: face vertex index {float(raw[bad])!r} is not a whole number (element 'face' row {row}, "
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


def _min_row_bytes(props: list[_PlyProperty]) -> int:
    """Bytes of the shortest possible row: every scalar, and every list's length with no items."""
    return sum(p.dtype.itemsize if p.count_dtype is None else p.count_dtype.itemsize for p in props)


def _check_room(source: str, el: _PlyElement, per_row: int, room: int, unit: str, where: str) -> None:
    """The header's row count against what the rest of the data can hold, before anything is
    allocated per row: a header claiming 9e12 vertices is a damaged file, not a memory error."""
    if el.count * per_row > room:
        raise MeshFileError(
            f"{source}: PLY data is short: the header declares {el.count} {el.name!r} rows (line {el.line}), but "
            f"the {room} {unit} left {where} hold at most {room // per_row} (a row needs at least {per_row})"
        )


def _check_fits(source: str, values: np.ndarray, prop: _PlyProperty, where) -> None:
    """An ASCII value of an integer property must be a whole number in the type's range: a cast
    would turn 300 into 44 for a uchar, and NaN into an arbitrary integer."""
    if prop.dtype.kind not in "iu" or len(values) == 0:
        return
    info = np.iinfo(prop.dtype)
    with np.errstate(invalid="ignore"):
        ok = (values == np.floor(values)) & (values >= info.min) & (values <= info.max)
    if not ok.all():
        k = int(np.argmin(ok))
        raise MeshFileError(
            f"{source}: vertex {prop.name} {float(values[k])!r} does not fit the declared type {prop.dtype.name} "
            f"(element 'vertex' row {k}, {where(k)})"
        )
