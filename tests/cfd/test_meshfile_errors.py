"""hpcprep_cfd.meshfiles on bad input: one exact message each (binary and ASCII STL, OBJ, PLY, gzip), and the
good parts of a multi-solid file kept beside a bad one."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hpcprep_cfd.meshfiles import MeshFileError, read_mesh

from .mesh_writers import TET, TRI, ply, stl_ascii, stl_binary


def error_of(data, source, **kwargs) -> str:
    with pytest.raises(MeshFileError) as info:
        read_mesh(data, source=source, **kwargs)
    return str(info.value)


def test_bad_binary_stl():
    good = stl_binary(TRI, TET)
    assert len(good) == 284
    assert error_of(good[:-20], "t.stl") == (
        "t.stl: truncated binary STL: the header declares 4 facets (284 bytes) but the data ends at byte 264, "
        "inside facet 3"
    )
    assert error_of(stl_binary(TRI, TET, count=3), "c.stl") == (
        "c.stl: binary STL facet count does not match the file size: the header declares 3 facets (234 bytes) "
        "but the file has 284 bytes, room for 4 facets"
    )
    assert error_of(good + b"\0" * 7, "l.stl") == (
        "l.stl: binary STL facet count does not match the file size: the header declares 4 facets (284 bytes) "
        "but the file has 291 bytes"
    )
    assert error_of(good[:50], "s.stl") == (
        "s.stl: not an ASCII STL (no 'solid' line) and too short for a binary STL: 50 bytes, the binary header "
        "alone is 84"
    )
    # a binary file whose header starts with "solid" and that is cut short is still binary
    assert "truncated binary STL" in error_of(stl_binary(TRI, TET, b"solid x")[:-1], "h.stl")
    bad = TRI.copy()
    bad[2, 1] = np.inf
    assert (
        error_of(stl_binary(bad, TET), "i.stl") == "i.stl: non-finite vertex coordinate inf (facet 0, byte offset 112)"
    )
    assert error_of(stl_binary(TRI, TET[:0]), "z.stl") == "z.stl: no faces (the file holds no triangles or polygons)"


def test_bad_ascii_stl():
    text = stl_ascii([("a", TRI, TET)]).decode()
    assert error_of(text.replace("vertex 1.0 0.0 0.0", "vertex nan 0.0 0.0", 1).encode(), "n.stl") == (
        "n.stl: non-finite vertex coordinate nan (line 6)"
    )
    assert error_of(text.replace("vertex 1.0 0.0 0.0", "vertex 1.0 0,0 0.0", 1).encode(), "p.stl") == (
        "p.stl: '0,0' is not a number (line 6)"
    )
    assert error_of(text.replace("vertex 1.0 0.0 0.0", "vertex 1.0 0.0", 1).encode(), "q.stl") == (
        "q.stl: 'vertex' needs exactly 3 numbers (line 6)"
    )
    assert error_of(text.replace("endloop", "vertex 1 1 1\n    endloop", 1).encode(), "r.stl") == (
        "r.stl: a facet loop must have exactly 3 vertices (loop at line 3)"
    )
    assert error_of(text.replace("outer loop", "outer lop\n loop", 1).encode(), "u.stl") == (
        "u.stl: unexpected 'loop', expected 'vertex' or 'endloop' (line 4)"
    )
    cut = text[: text.index("endloop")]
    assert (
        error_of(cut.encode(), "e.stl")
        == "e.stl: ASCII STL ends inside a facet (line 7, expected 'vertex' or 'endloop')"
    )
    assert (
        error_of(b"solid empty\nendsolid empty\n", "z.stl")
        == "z.stl: no faces (the file holds no triangles or polygons)"
    )


def test_multi_solid_part_errors_keep_the_rest():
    bad = TRI.copy()
    bad[3, 2] = np.nan
    data = stl_ascii([("good", TRI, TET), ("broken", bad, TET)]) + b"solid hollow\nendsolid hollow\n"
    mesh = read_mesh(data, source="m.stl", split="parts", on_error="keep")
    assert [(p.name, p.error) for p in mesh.parts] == [
        ("good", None),
        ("broken", "m.stl: solid 'broken': non-finite vertex coordinate nan (line 43)"),
        ("hollow", "m.stl: solid 'hollow': no facets"),
    ]
    np.testing.assert_array_equal(mesh.parts[0].vertices[mesh.parts[0].faces], TRI[TET])
    assert error_of(data, "m.stl", split="parts") == "m.stl: solid 'broken': non-finite vertex coordinate nan (line 43)"
    # merged, the NaN spoils the one record; the empty solid does not matter
    assert error_of(data, "m.stl") == "m.stl: non-finite vertex coordinate nan (line 43)"


def test_bad_obj():
    base = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n"
    assert (
        error_of(base + b"f 1 2 9\n", "o.obj")
        == "o.obj: face index 9 is out of range: the file has 4 vertices (line 5)"
    )
    assert error_of(base + b"f 1 2 3\nf 0 2 3\n", "z.obj") == "z.obj: face index 0 (OBJ indices start at 1) (line 6)"
    assert error_of(b"v 0 0 0\nf -1 -2 -3\n" + base, "r.obj") == (
        "r.obj: relative face index -2 reaches before the first vertex (1 vertices are defined before line 2) (line 2)"
    )
    assert error_of(base + b"f 1 2 x\n", "t.obj") == (
        "t.obj: bad face vertex: expected 'i', 'i/t', 'i//n' or 'i/t/n' (line 5)"
    )
    assert error_of(base + b"f 1 2\n", "s.obj") == "s.obj: a face needs at least 3 vertices (line 5)"
    assert error_of(b"v 0 0 0\nv 1 0\n", "v.obj") == "v.obj: 'v' needs 3 coordinates (line 2)"
    assert error_of(base.replace(b"v 0 0 1", b"v 0 0 -inf") + b"f 2 3 4\n", "i.obj") == (
        "i.obj: non-finite vertex coordinate -inf (line 4)"
    )
    assert error_of(base + b"# only points\n", "n.obj") == "n.obj: no faces (the file holds no triangles or polygons)"
    # split into groups, only the group with the bad face is an error
    mesh = read_mesh(base + b"g a\nf 1 2 3\ng b\nf 1 2 7\n", source="g.obj", split="parts", on_error="keep")
    assert [(p.name, p.error) for p in mesh.parts] == [
        ("a", None),
        ("b", "g.obj: group 'b': face index 7 is out of range: the file has 4 vertices (line 8)"),
    ]


def test_bad_ply():
    good = ply(TRI, TET.tolist(), "binary_little_endian")
    cut = good.index(b"end_header")
    assert error_of(good[:cut] + good[cut + 11 :], "h.ply") == "h.ply: broken PLY header: no 'end_header' line"
    assert error_of(good.replace(b"format binary_little_endian 1.0", b"format binary 1.0"), "f.ply") == (
        "f.ply: broken PLY header: expected 'format ascii|binary_little_endian|binary_big_endian 1.0', found "
        "'format binary 1.0' (line 2)"
    )
    assert error_of(good.replace(b"property double x", b"property real x"), "t.ply") == (
        "t.ply: broken PLY header: expected 'property <type> <name>' or 'property list <count type> <item type> "
        "<name>', found 'property real x' (line 9)"
    )
    assert error_of(good.replace(b"vertex_indices", b"corner_ids"), "i.ply") == (
        "i.ply: broken PLY header: the face element needs an integer list property 'vertex_indices' or "
        "'vertex_index' (line 13)"
    )
    assert error_of(b"plx\n" + good[4:], "m.ply") == "m.ply: broken PLY header: the first line must be 'ply' (line 1)"
    size = len(good)
    assert error_of(good[:-12], "s.ply") == (
        f"s.ply: PLY data is short: the file ends at byte {size - 12}, inside element 'face' row 3 of 4"
    )
    text = ply(TRI, TET.tolist(), "ascii")
    assert (
        error_of(text[:-12], "a.ply")
        == "a.ply: PLY data is short: the values end inside element 'face' row 3 of 4 (line 29)"
    )
    assert error_of(text.replace(b"3 0 3 2 1", b"3 0 3 9 1"), "r.ply") == (
        "r.ply: face 2: vertex index 9 is out of range, the file has 4 vertices (line 28)"
    )
    assert (
        error_of(ply(TRI, [[0, 1]], "ascii"), "d.ply")
        == "d.ply: face 0 has 2 vertices, a face needs at least 3 (line 26)"
    )
    bad = TRI.copy()
    bad[1, 0] = np.nan
    data = ply(bad, TET.tolist(), "binary_big_endian")
    # after the header: two camera rows (4 + 1 + 8 and 4 + 1 bytes), vertex row 0 (29 bytes), quality (1)
    offset = data.index(b"end_header\n") + 11 + 13 + 5 + 29 + 1
    assert error_of(data, "n.ply") == (
        f"n.ply: non-finite vertex coordinate nan (element 'vertex' row 1, byte offset {offset})"
    )
    assert error_of(ply(TRI, [], "ascii"), "z.ply") == (
        "z.ply: no faces (the PLY file has no 'face' element or it is empty)"
    )


def test_empty_gzip_and_unknown():
    assert error_of(b"", "e.stl") == "e.stl: the file is empty"
    assert error_of(gzip.compress(b"  \n"), "e.obj.gz") == "e.obj.gz: the file is empty"
    data = gzip.compress(stl_ascii([("a", TRI, TET)]))
    message = error_of(data[:-10], "t.stl.gz")
    assert message.startswith("t.stl.gz: damaged or truncated gzip data: ") and "end-of-stream" in message
    assert error_of(b"hello world\n", "mystery") == (
        "mystery: not an STL, OBJ or PLY file (unknown suffix, and the content matches none)"
    )
    with pytest.raises(ValueError, match="split must be"):
        read_mesh(b"x", split="solid")
