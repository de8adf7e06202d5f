"""VTK XML files (.vtp, .vti, .vtu, .pvd) written directly, without the ``vtk`` package.

Every data array goes into one ``<AppendedData encoding="raw">`` section: each array is
a little-endian UInt64 byte count followed by the values' bytes, and its ``DataArray``
element points at it with ``offset`` (counted from the byte after the ``_`` marker). Raw
binary keeps floats bit for bit (NaN stays NaN) and costs no encoding time; the dtype of
each array is kept (float32 stays Float32).

Files say ``version="1.0"``. For polyhedra (VTK_POLYHEDRON, type 42) they carry the
``faces``/``faceoffsets`` cell arrays: VTK 9.4+ writes a newer layout (version 2.3,
``face_connectivity``/``polyhedron_to_faces``...) that ParaView 5.11 (VTK 9.2) reads
without faces, while both read this older layout. ``faces`` holds, per cell, the number
of faces and then each face as its point count and point ids; ``faceoffsets`` holds the
*end* of each cell's part of ``faces``.

Array conventions: per-point and per-cell arrays are ``(n,)`` or ``(n, components)``.
Image arrays are NumPy ``(nx, ny, nz)`` or ``(nx, ny, nz, components)`` indexed
``[i, j, k]`` = x, y, z; VTK stores images with x varying fastest, so they are written
in that order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

VTK_VERTEX = 1
VTK_TRIANGLE = 5
VTK_POLYHEDRON = 42

#: NumPy dtype -> VTK XML type name; other dtypes are converted (bool -> UInt8, float16 -> Float32).
_VTK_TYPES = {
    np.dtype(np.int8): "Int8",
    np.dtype(np.uint8): "UInt8",
    np.dtype(np.int16): "Int16",
    np.dtype(np.uint16): "UInt16",
    np.dtype(np.int32): "Int32",
    np.dtype(np.uint32): "UInt32",
    np.dtype(np.int64): "Int64",
    np.dtype(np.uint64): "UInt64",
    np.dtype(np.float32): "Float32",
    np.dtype(np.float64): "Float64",
}

ArrayMap = Mapping[str, np.ndarray] | None


# -- arrays and the appended section -----------------------------------------------------


def _numeric(name: str, values) -> np.ndarray:
    """``values`` as a little-endian array of a type VTK knows, or a ValueError naming it."""
    a = np.asarray(values)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    elif a.dtype == np.float16:
        a = a.astype(np.float32)
    key = a.dtype.newbyteorder("=")
    if key not in _VTK_TYPES:
        raise ValueError(f"array {name!r}: dtype {a.dtype} is not numeric (VTK takes ints, uints and floats)")
    return a.astype(key.newbyteorder("<"), copy=False)


def _tuples(name: str, values, n: int, what: str) -> np.ndarray:
    """A per-point or per-cell array as (n, components)."""
    a = _numeric(name, values)
    if a.ndim == 1 and a.shape[0] == n:
        return a.reshape(n, 1)
    if a.ndim == 2 and a.shape[0] == n and a.shape[1] >= 1:
        return a
    raise ValueError(f"array {name!r} has shape {a.shape}; expected ({n},) or ({n}, components) for the {n} {what}")


def _ids(name: str, values, upper: int) -> np.ndarray:
    """Point ids as int64, all in [0, upper)."""
    a = np.asarray(values)
    if a.size and a.dtype.kind not in "iu":
        raise ValueError(f"{name}: point ids must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and (a.min() < 0 or a.max() >= upper):
        raise ValueError(f"{name}: point ids must lie in [0, {upper}), got {a.min()}..{a.max()}")
    return a


def _points(points) -> np.ndarray:
    p = np.asarray(points)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"points must have shape (n, 3), got {p.shape}")
    if p.dtype.kind not in "f" or p.dtype == np.float16:
        p = p.astype(np.float64)
    return _numeric("Points", p)


class _Appended:
    """Collects array blocks for the appended section and the XML that points at them."""

    def __init__(self):
        self.blocks: list[np.ndarray] = []
        self.offset = 0

    def array(self, name: str | None, a: np.ndarray, indent: str, *, tuples: int | None = None) -> str:
        """A ``<DataArray>`` element for ``a`` (shape (n, components) or (n,)), queued for writing."""
        a = np.ascontiguousarray(a)
        comps = a.shape[1] if a.ndim == 2 else 1
        attrs = f'type="{_VTK_TYPES[a.dtype.newbyteorder("=")]}"'
        if name is not None:
            attrs += f" Name={quoteattr(name)}"
        if comps != 1:
            attrs += f' NumberOfComponents="{comps}"'
        if tuples is not None:
            attrs += f' NumberOfTuples="{tuples}"'
        attrs += f' format="appended" offset="{self.offset}"'
        self.blocks.append(a)
        self.offset += 8 + a.nbytes
        return f"{indent}<DataArray {attrs}/>\n"

    def write(self, f) -> None:
        f.write(b'  <AppendedData encoding="raw">\n   _')
        for a in self.blocks:
            f.write(np.uint64(a.nbytes).astype("<u8").tobytes())
            if a.nbytes:
                f.write(memoryview(a).cast("B"))
        f.write(b"\n  </AppendedData>\n</VTKFile>\n")


def _write(path, kind: str, body: str, data: _Appended) -> Path:
    path = Path(path)
    head = (
        '<?xml version="1.0"?>\n'
        f'<VTKFile type="{kind}" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
        f"{body}"
    )
    with open(path, "wb") as f:
        f.write(head.encode())
        data.write(f)
    return path


def _attribute_data(tag: str, arrays: ArrayMap, n: int, what: str, data: _Appended, indent: str, **roles) -> str:
    """``<PointData>``/``<CellData>`` with one array per entry; ``roles`` marks e.g. Normals."""
    if not arrays:
        return ""
    marks = "".join(f" {role}={quoteattr(name)}" for role, name in roles.items() if name in arrays)
    out = f"{indent}<{tag}{marks}>\n"
    for name, values in arrays.items():
        out += data.array(name, _tuples(name, values, n, what), indent + "  ")
    return out + f"{indent}</{tag}>\n"


def _field_data(arrays: ArrayMap, data: _Appended, indent: str) -> str:
    if not arrays:
        return ""
    out = f"{indent}<FieldData>\n"
    for name, values in arrays.items():
        a = _numeric(name, values)
        if a.ndim == 0:
            a = a.reshape(1)
        if a.ndim > 2:
            raise ValueError(f"field array {name!r} has shape {a.shape}; expected (n,) or (n, components)")
        out += data.array(name, a, indent + "  ", tuples=a.shape[0])
    return out + f"{indent}</FieldData>\n"


def _normals_role(point_data: ArrayMap) -> dict:
    """Mark a 3-component array named like normals as the Normals attribute (shading, glyphs)."""
    for name, values in (point_data or {}).items():
        if name.lower() in ("normals", "normal") and np.ndim(values) == 2 and np.shape(values)[1] == 3:
            return {"Normals": name}
    return {}


# -- poly data ---------------------------------------------------------------------------


def write_polydata(
    path,
    points,
    triangles=None,
    vertices_as_cells: bool = False,
    point_data: ArrayMap = None,
    cell_data: ArrayMap = None,
    field_data: ArrayMap = None,
) -> Path:
    """A ``.vtp`` surface (``triangles`` (F, 3) point ids) and/or point cloud.

    With ``vertices_as_cells`` every point also gets a vertex cell, so ParaView draws a
    point cloud. Cell data covers the vertex cells first, then the triangles (VTK's
    order for poly data). Returns the path written.
    """
    pts = _points(points)
    n = pts.shape[0]
    tris = np.zeros((0, 3), dtype=np.int64)
    if triangles is not None:
        t = np.asarray(triangles)
        if t.ndim != 2 or t.shape[1] != 3:
            raise ValueError(f"triangles must have shape (F, 3), got {t.shape}")
        tris = _ids("triangles", t, n)
    n_verts = n if vertices_as_cells else 0
    n_polys = tris.shape[0]
    data = _Appended()
    i3 = "      "
    body = "  <PolyData>\n" + _field_data(field_data, data, "    ")
    body += (
        f'    <Piece NumberOfPoints="{n}" NumberOfVerts="{n_verts}" NumberOfLines="0" '
        f'NumberOfStrips="0" NumberOfPolys="{n_polys}">\n'
    )
    body += _attribute_data("PointData", point_data, n, "points", data, i3, **_normals_role(point_data))
    body += _attribute_data("CellData", cell_data, n_verts + n_polys, "cells", data, i3)
    body += f"{i3}<Points>\n" + data.array("Points", pts, i3 + "  ") + f"{i3}</Points>\n"
    if n_verts:
        body += f"{i3}<Verts>\n"
        body += data.array("connectivity", np.arange(n, dtype=np.int64), i3 + "  ")
        body += data.array("offsets", np.arange(1, n + 1, dtype=np.int64), i3 + "  ")
        body += f"{i3}</Verts>\n"
    if n_polys:
        body += f"{i3}<Polys>\n"
        body += data.array("connectivity", tris.reshape(-1), i3 + "  ")
        body += data.array("offsets", 3 * np.arange(1, n_polys + 1, dtype=np.int64), i3 + "  ")
        body += f"{i3}</Polys>\n"
    body += "    </Piece>\n  </PolyData>\n"
    return _write(path, "PolyData", body, data)


# -- image data --------------------------------------------------------------------------


def _image_shape(arrays: ArrayMap, what: str) -> tuple[int, int, int] | None:
    shapes = {np.shape(v)[:3] for v in (arrays or {}).values()}
    for name, v in (arrays or {}).items():
        if np.ndim(v) not in (3, 4):
            raise ValueError(f"{what} array {name!r} has shape {np.shape(v)}; expected (nx, ny, nz[, components])")
    if len(shapes) > 1:
        raise ValueError(f"{what} arrays have different grid shapes {sorted(shapes)}")
    return shapes.pop() if shapes else None


def _x_fastest(name: str, values) -> np.ndarray:
    """(nx, ny, nz[, c]) indexed [i, j, k] -> (nx*ny*nz, c) with i varying fastest."""
    a = _numeric(name, values)
    if a.ndim == 3:
        a = a[..., None]
    return np.ascontiguousarray(a.transpose(2, 1, 0, 3)).reshape(-1, a.shape[3])


def write_image(path, origin, spacing, point_data: ArrayMap = None, cell_data: ArrayMap = None) -> Path:
    """A ``.vti`` regular grid. Point data arrays (nx, ny, nz[, c]) sit on the nodes
    ``origin + (i, j, k) * spacing``; cell data arrays (nx, ny, nz[, c]) fill the cells
    between them (the grid then has nx + 1 nodes along x). Returns the path written."""
    origin = np.asarray(origin, dtype=np.float64).reshape(-1)
    spacing = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if origin.shape != (3,) or spacing.shape != (3,):
        raise ValueError(f"origin and spacing need 3 values each, got {origin.tolist()} and {spacing.tolist()}")
    pshape = _image_shape(point_data, "point")
    cshape = _image_shape(cell_data, "cell")
    if pshape is None and cshape is None:
        raise ValueError("write_image needs at least one point or cell array (it sets the grid's size)")
    nodes = pshape if pshape is not None else tuple(c + 1 for c in cshape)
    if pshape is not None and cshape is not None and tuple(c + 1 for c in cshape) != pshape:
        raise ValueError(f"cell arrays {cshape} must have one less value per axis than point arrays {pshape}")
    if min(nodes) < 1:
        raise ValueError(f"empty grid {nodes}")
    extent = " ".join(f"0 {n - 1}" for n in nodes)
    data = _Appended()
    i3 = "      "
    body = (
        f'  <ImageData WholeExtent="{extent}" Origin="{" ".join(repr(float(x)) for x in origin)}" '
        f'Spacing="{" ".join(repr(float(x)) for x in spacing)}">\n'
        f'    <Piece Extent="{extent}">\n'
    )
    n_points = int(np.prod(nodes))
    n_cells = int(np.prod([max(n - 1, 1) for n in nodes]))
    ordered_p = {k: _x_fastest(k, v) for k, v in (point_data or {}).items()}
    ordered_c = {k: _x_fastest(k, v) for k, v in (cell_data or {}).items()}
    body += _attribute_data("PointData", ordered_p, n_points, "grid nodes", data, i3)
    body += _attribute_data("CellData", ordered_c, n_cells, "grid cells", data, i3)
    body += "    </Piece>\n  </ImageData>\n"
    return _write(path, "ImageData", body, data)


# -- unstructured grids ------------------------------------------------------------------


def polyhedron_cells(cell_faces, cell_face_offsets, n_points: int):
    """Parse per-cell face streams into what a ``.vtu`` needs.

    ``cell_faces`` holds, for each cell starting at ``cell_face_offsets[c]``: the number
    of faces, then per face its point count and point ids. Returns ``(connectivity,
    offsets, faces, faceoffsets)``: each cell's distinct point ids (ascending) with end
    offsets, and the cells' face streams one after another with end offsets.
    """
    stream = _ids("cell_faces", cell_faces, np.iinfo(np.int64).max)
    starts = np.asarray(cell_face_offsets)
    if starts.ndim != 1 or (starts.size and starts.dtype.kind not in "iu"):
        raise ValueError(f"cell_face_offsets must be a 1-D integer array, got {starts.dtype} {starts.shape}")
    starts = starts.astype(np.int64)
    n = starts.shape[0]
    size = stream.shape[0]
    if n and (starts.min() < 0 or starts.max() >= size):
        raise ValueError(f"cell_face_offsets must lie in [0, {size}) (the length of cell_faces)")
    n_faces = stream[starts] if n else np.zeros(0, np.int64)
    if n and n_faces.min() < 1:
        bad = int(np.argmax(n_faces < 1))
        raise ValueError(f"cell {bad}: face count {n_faces[bad]} at cell_faces[{starts[bad]}]")
    # Walk all cells together, one face per step: the face streams are sequential inside
    # a cell but independent across cells, and cells have few faces.
    pos = starts + 1
    face_cell, face_start, face_len = [], [], []
    for f in range(int(n_faces.max()) if n else 0):
        live = np.flatnonzero(n_faces > f)
        p = pos[live]
        if p.max() >= size:
            bad = live[np.argmax(p >= size)]
            raise ValueError(f"cell {bad}: its face stream runs past the end of cell_faces ({size} values)")
        k = stream[p]
        if k.min() < 3:
            bad = live[np.argmax(k < 3)]
            raise ValueError(f"cell {bad}: face {f} has {stream[pos[bad]]} points (a face needs at least 3)")
        if (p + k).max() >= size:
            bad = live[np.argmax(p + k >= size)]
            raise ValueError(f"cell {bad}: its face stream runs past the end of cell_faces ({size} values)")
        face_cell.append(live)
        face_start.append(p + 1)
        face_len.append(k)
        pos[live] = p + 1 + k
    stream_len = pos - starts  # values of each cell's stream, its face count included
    faceoffsets = np.cumsum(stream_len)
    faces = stream[_ranges(starts, stream_len)]

    # Each cell's distinct points: every (cell, point id) pair of its faces, sorted, deduplicated.
    if face_cell:
        fc = np.concatenate(face_cell)
        fs = np.concatenate(face_start)
        fl = np.concatenate(face_len)
        pid = stream[_ranges(fs, fl)]
        cid = np.repeat(fc, fl)
    else:
        pid = cid = np.zeros(0, np.int64)
    if pid.size and pid.max() >= n_points:
        raise ValueError(f"cell_faces: point ids must lie in [0, {n_points}), got up to {pid.max()}")
    order = np.lexsort((pid, cid))
    cid, pid = cid[order], pid[order]
    keep = np.ones(cid.shape[0], dtype=bool)
    keep[1:] = (cid[1:] != cid[:-1]) | (pid[1:] != pid[:-1])
    connectivity = pid[keep]
    offsets = np.cumsum(np.bincount(cid[keep], minlength=n)).astype(np.int64)
    return connectivity, offsets, faces, faceoffsets.astype(np.int64)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    step = np.ones(total, dtype=np.int64)
    nonempty = lengths > 0
    first = (ends - lengths)[nonempty]
    s = starts[nonempty]
    step[first[0]] = s[0]
    # At the first element of each run, jump from the previous run's last value to s.
    prev_last = (s + lengths[nonempty] - 1)[:-1]
    step[first[1:]] = s[1:] - prev_last
    return np.cumsum(step)


def write_unstructured(
    path,
    points,
    polyhedra=None,
    cell_points=None,
    point_data: ArrayMap = None,
    cell_data: ArrayMap = None,
) -> Path:
    """A ``.vtu`` unstructured grid.

    ``polyhedra = (cell_faces, cell_face_offsets)`` makes one VTK_POLYHEDRON per cell
    from its face stream (see :func:`polyhedron_cells`). Without it every point in
    ``cell_points`` (default: all points, e.g. cell centres) gets a VTK_VERTEX cell.
    Returns the path written.
    """
    pts = _points(points)
    n_points = pts.shape[0]
    data = _Appended()
    if polyhedra is not None:
        cell_faces, cell_face_offsets = polyhedra
        connectivity, offsets, faces, faceoffsets = polyhedron_cells(cell_faces, cell_face_offsets, n_points)
        n_cells = offsets.shape[0]
        types = np.full(n_cells, VTK_POLYHEDRON, dtype=np.uint8)
    else:
        ids = np.arange(n_points) if cell_points is None else np.asarray(cell_points).reshape(-1)
        connectivity = _ids("cell_points", ids, n_points)
        n_cells = connectivity.shape[0]
        offsets = np.arange(1, n_cells + 1, dtype=np.int64)
        types = np.full(n_cells, VTK_VERTEX, dtype=np.uint8)
        faces = faceoffsets = None
    i3 = "      "
    body = f'  <UnstructuredGrid>\n    <Piece NumberOfPoints="{n_points}" NumberOfCells="{n_cells}">\n'
    body += _attribute_data("PointData", point_data, n_points, "points", data, i3, **_normals_role(point_data))
    body += _attribute_data("CellData", cell_data, n_cells, "cells", data, i3)
    body += f"{i3}<Points>\n" + data.array("Points", pts, i3 + "  ") + f"{i3}</Points>\n"
    body += f"{i3}<Cells>\n"
    body += data.array("connectivity", connectivity, i3 + "  ")
    body += data.array("offsets", offsets, i3 + "  ")
    body += data.array("types", types, i3 + "  ")
    if faces is not None:
        body += data.array("faces", faces, i3 + "  ")
        body += data.array("faceoffsets", faceoffsets, i3 + "  ")
    body += f"{i3}</Cells>\n    </Piece>\n  </UnstructuredGrid>\n"
    return _write(path, "UnstructuredGrid", body, data)


# -- collections -------------------------------------------------------------------------


def write_collection(path, entries: Iterable) -> Path:
    """A ``.pvd`` listing datasets. Each entry is a mapping (or a path) with ``file``
    and optional ``timestep`` (default 0), ``part`` (default: its position) and
    ``name``; files are written relative to the .pvd's folder. Returns the path."""
    path = Path(path)
    folder = path.parent.absolute()
    lines = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            entry = {"file": entry}
        file = Path(entry["file"])
        if file.is_absolute():
            file = Path(os.path.relpath(file, folder))
        attrs = (
            f"timestep={quoteattr(repr(float(entry.get('timestep', 0.0))))} "
            f"part={quoteattr(str(int(entry.get('part', index))))} "
            f"file={quoteattr(file.as_posix())}"
        )
        if entry.get("name"):
            attrs += f" name={quoteattr(str(entry['name']))}"
        lines.append(f"    <DataSet {attrs}/>\n")
    text = (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="Collection" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
        "  <Collection>\n" + "".join(lines) + "  </Collection>\n</VTKFile>\n"
    )
    path.write_text(text)
    return path
