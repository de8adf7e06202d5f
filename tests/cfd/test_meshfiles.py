"""hpcprep_cfd.meshfiles: real OpenFOAM tutorial geometry against trimesh, round trips through every
encoding (our own writers here, and trimesh's as an independent one), and the message of each bad input."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
import trimesh
from hpcprep_cfd.meshfiles import MeshFileError, read_mesh, weld

from .data import geometry

STL_FACET = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])


# -- writers (test fixtures; independent of the reader's code) ------------------------------


def stl_ascii(parts) -> bytes:
    """parts: [(name, vertices, faces)] -> one ASCII STL with a solid per part."""
    out = []
    for name, v, f in parts:
        out.append(f"solid {name}")
        for tri in v[f].tolist():
            out += ["  facet normal 0 0 1", "    outer loop"]
            out += [f"      vertex {x!r} {y!r} {z!r}" for x, y, z in tri]
            out += ["    endloop", "  endfacet"]
        out.append(f"endsolid {name}")
    return ("\n".join(out) + "\n").encode()


def stl_binary(v, f, header=b"written by test_meshfiles", count=None) -> bytes:
    rec = np.zeros(len(f), STL_FACET)
    rec["v"] = v[f]
    rec["normal"] = (0.0, 0.0, 1.0)
    n = len(f) if count is None else count
    return header.ljust(80, b" ")[:80] + np.uint32(n).tobytes() + rec.tobytes()


def obj_groups(parts) -> bytes:
    """Each part as a 'g' group with its own vertices, faces by negative (relative) indices in the
    forms i, i/t/n and i//n, with comments and normals/texture lines the reader must skip."""
    out = ["# written by test_meshfiles", "mtllib none.mtl"]
    for name, v, f in parts:
        out.append(f"g {name}")
        out += [f"v {x!r} {y!r} {z!r}" for x, y, z in v.tolist()]
        out += ["vt 0 0", "vn 0 0 1", "s off"]
        n = len(v)
        for k, tri in enumerate(f.tolist()):
            rel = [i - n for i in tri]
            forms = ("{}", "{}/1/1", "{}//1")[k % 3]
            out.append("f " + " ".join(forms.format(i) for i in rel))
    return ("\n".join(out) + "\n").encode()


def ply(v, polys, encoding, vtype="double", itype="int", ctype="uchar") -> bytes:
    """A PLY with an element before the vertices (with a list), extra vertex and face properties, and an
    element after the faces, so that skipping is exercised."""
    codes = {"double": "f8", "float": "f4", "int": "i4", "uint": "u4", "uchar": "u1", "ushort": "u2", "short": "i2"}
    head = [
        "ply",
        f"format {encoding} 1.0",
        "comment written by test_meshfiles",
        "element camera 2",
        "property float a",
        "property list uchar int ids",
        f"element vertex {len(v)}",
        "property uchar quality",
        f"property {vtype} x",
        f"property {vtype} y",
        f"property {vtype} z",
        "property float nx",
        f"element face {len(polys)}",
        f"property list {ctype} {itype} vertex_indices",
        "property uchar flags",
        "element edge 1",
        "property int v1",
        "property int v2",
        "end_header",
    ]
    header = ("\n".join(head) + "\n").encode()
    vals = np.asarray(v).astype(codes[vtype])
    if encoding == "ascii":
        rows = ["1.5 2 7 8", "2.5 0"]
        rows += [f"3 {x!r} {y!r} {z!r} 0.25" for x, y, z in vals.astype(np.float64).tolist()]
        rows += [f"{len(p)} " + " ".join(str(i) for i in p) + " 1" for p in polys]
        rows.append("0 1")
        return header + ("\n".join(rows) + "\n").encode()
    o = "<" if encoding == "binary_little_endian" else ">"
    out = [
        np.array(1.5, o + "f4").tobytes(),
        np.array(2, "u1").tobytes(),
        np.array([7, 8], o + "i4").tobytes(),
        np.array(2.5, o + "f4").tobytes(),
        np.array(0, "u1").tobytes(),
    ]
    vrec = np.zeros(len(v), [("q", "u1"), ("xyz", o + codes[vtype], (3,)), ("nx", o + "f4")])
    vrec["q"], vrec["xyz"], vrec["nx"] = 3, vals, 0.25
    out.append(vrec.tobytes())
    for p in polys:
        out.append(np.array(len(p), o + codes[ctype]).tobytes() + np.array(p, o + codes[itype]).tobytes() + b"\x01")
    out.append(np.array([0, 1], o + "i4").tobytes())
    return header + b"".join(out)


# -- real geometry against trimesh ------------------------------------------------------------


def trimesh_parts(path, kind, **kwargs):
    """trimesh's reading of a (gzipped) file, one (name, Trimesh) per part."""
    data = gzip.decompress(path.read_bytes())
    loaded = trimesh.load(io.BytesIO(data), file_type=kind, process=False, **kwargs)
    if isinstance(loaded, trimesh.Scene):
        return list(loaded.geometry.items())
    return [("", loaded)]


def assert_same_as_trimesh(part, ref):
    tri_ours = part.vertices[part.faces]
    tri_ref = np.asarray(ref.vertices)[np.asarray(ref.faces)]
    assert len(part.faces) == len(ref.faces)
    # the triangles as coordinates, face by face and corner by corner: exact
    np.testing.assert_array_equal(tri_ours, tri_ref)
    # vertex positions: each distinct position trimesh's faces use, once
    ref_positions = np.unique(tri_ref.reshape(-1, 3) + 0.0, axis=0)
    assert len(part.vertices) == len(ref_positions)
    np.testing.assert_array_equal(np.unique(part.vertices, axis=0), ref_positions)
    # an indexed mesh: every vertex used, none twice
    assert np.array_equal(np.unique(part.faces), np.arange(len(part.vertices)))


@pytest.mark.parametrize("filename", ["flange.stl.gz", "bullet.stl.gz", "wigley.stl.gz"])
def test_stl_matches_trimesh(filename):
    path = geometry(filename)
    mesh = read_mesh(path, split="parts")
    assert mesh.format == "stl-ascii"
    ref = trimesh_parts(path, "stl")
    assert len(mesh.parts) == len(ref)
    if len(ref) > 1:  # trimesh names the solids of a multi-solid file
        assert [p.name for p in mesh.parts] == [name for name, _ in ref]
    else:  # one solid: the record takes the solid's name
        assert mesh.parts[0].name == {"bullet.stl.gz": "bullet", "wigley.stl.gz": "wall"}[filename]
    for part, (_, r) in zip(mesh.parts, ref):
        assert_same_as_trimesh(part, r)


def test_flange_parts_and_merged():
    path = geometry("flange.stl.gz")
    parts = read_mesh(path, split="parts").parts
    assert [(p.name, len(p.faces)) for p in parts] == [
        ("patch1", 4838),
        ("patch2", 678),
        ("patch3", 192),
        ("patch4", 760),
    ]
    merged = read_mesh(path).parts
    assert len(merged) == 1 and merged[0].name == "flange" and len(merged[0].faces) == 6468
    tri = np.concatenate([p.vertices[p.faces] for p in parts])
    np.testing.assert_array_equal(merged[0].vertices[merged[0].faces], tri)
    # the solids share their boundary positions; the merged record welds them once
    assert len(merged[0].vertices) == len(np.unique(tri.reshape(-1, 3), axis=0)) < sum(len(p.vertices) for p in parts)


def test_obj_matches_trimesh():
    path = geometry("propellerTip.obj.gz")
    mesh = read_mesh(path)
    assert mesh.format == "obj" and mesh.parts[0].name == "ascii"
    ((_, ref),) = trimesh_parts(path, "obj", maintain_order=True, skip_materials=True)
    assert_same_as_trimesh(mesh.parts[0], ref)
    np.testing.assert_array_equal(mesh.parts[0].vertices, ref.vertices)  # OBJ keeps the file's vertex order


def test_motorbike_groups_match_trimesh():
    path = geometry("motorBike.obj.gz")
    parts = read_mesh(path, split="parts").parts
    ref = dict(trimesh_parts(path, "obj", maintain_order=True, skip_materials=True, split_groups=True))
    assert len(parts) == len(ref) == 67
    assert parts[0].name == "frt-fairing:001%1"
    for part in parts:
        np.testing.assert_array_equal(part.vertices[part.faces], ref[part.name].vertices[ref[part.name].faces])
    merged = read_mesh(path).parts[0]
    assert len(merged.faces) == 331653 == sum(len(p.faces) for p in parts)


# -- round trips ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flange_parts():
    """The flange solids with float32-exact coordinates, so that every encoding can hold them exactly."""
    parts = []
    for p in read_mesh(geometry("flange.stl.gz"), split="parts").parts:
        v = p.vertices.astype(np.float32).astype(np.float64)
        assert len(np.unique(v, axis=0)) == len(v)  # rounding merged nothing
        parts.append((p.name, v, p.faces))
    return parts


def merged_weld(parts):
    tri = np.concatenate([v[f] for _, v, f in parts])
    vertices, inverse = weld(tri.reshape(-1, 3))
    return vertices, inverse.reshape(-1, 3)


def assert_mesh(part, vertices, faces):
    np.testing.assert_array_equal(part.vertices, vertices)
    np.testing.assert_array_equal(part.faces, faces)
    assert part.vertices.dtype == np.float64 and part.faces.dtype == np.int64 and part.error is None


def test_roundtrip_stl_ascii(flange_parts):
    data = stl_ascii(flange_parts)
    mesh = read_mesh(data, source="x.stl", split="parts")
    assert mesh.format == "stl-ascii"
    for part, (name, v, f) in zip(mesh.parts, flange_parts, strict=True):
        assert part.name == name
        assert_mesh(part, v, f)
    v, f = merged_weld(flange_parts)
    assert_mesh(read_mesh(gzip.compress(data), source="x.stl.gz").parts[0], v, f)


@pytest.mark.parametrize("header", [b"plain binary header", b"solid flange (a binary file whose header says solid)"])
def test_roundtrip_stl_binary(flange_parts, header):
    v, f = merged_weld(flange_parts)
    data = stl_binary(v, f, header)
    for src in ("x.stl", "noext"):  # by suffix, and by content
        mesh = read_mesh(data, source=src)
        assert mesh.format == "stl-binary"
        assert_mesh(mesh.parts[0], v, f)
        assert mesh.parts[0].name == src.split(".")[0]
    assert read_mesh(gzip.compress(data), source="x.stl.gz").format == "stl-binary"


def test_roundtrip_obj_groups_negative_indices(flange_parts):
    data = obj_groups(flange_parts)
    mesh = read_mesh(data, source="g.obj", split="parts")
    assert mesh.format == "obj"
    for part, (name, v, f) in zip(mesh.parts, flange_parts, strict=True):
        assert part.name == name
        assert_mesh(part, v, f)
    # merged: the groups' vertices one after another, nothing welded (OBJ is indexed already)
    offsets = np.cumsum([0] + [len(v) for _, v, _ in flange_parts[:-1]])
    merged = read_mesh(gzip.compress(data), source="g.obj.gz").parts[0]
    assert_mesh(
        merged,
        np.concatenate([v for _, v, _ in flange_parts]),
        np.concatenate([f + o for (_, _, f), o in zip(flange_parts, offsets)]),
    )
    assert merged.name == "g"


@pytest.mark.parametrize("encoding", ["ascii", "binary_little_endian", "binary_big_endian"])
@pytest.mark.parametrize("vtype,itype,ctype", [("double", "int", "uchar"), ("float", "uint", "ushort")])
def test_roundtrip_ply(flange_parts, encoding, vtype, itype, ctype):
    name, v, f = flange_parts[0]
    data = ply(v, f.tolist(), encoding, vtype, itype, ctype)
    mesh = read_mesh(data, source="p.ply")
    assert mesh.format == "ply" and mesh.parts[0].name == "p"
    assert_mesh(mesh.parts[0], v, f)
    assert_mesh(read_mesh(gzip.compress(data), source="noext").parts[0], v, f)  # gzip and PLY by content


def test_ply_ascii_and_binary_agree_on_float_values():
    # "0.1" declared float is float32(0.1), as in a binary file with the same header
    v = np.array([[0.1, 0.2, 0.3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    a = read_mesh(ply(v, [[0, 1, 2]], "ascii", "float"), source="a.ply").parts[0]
    b = read_mesh(ply(v, [[0, 1, 2]], "binary_big_endian", "float"), source="b.ply").parts[0]
    np.testing.assert_array_equal(a.vertices, v.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(a.vertices, b.vertices)


@pytest.mark.parametrize("file_type", ["stl", "stl_ascii", "obj", "ply"])
def test_trimesh_as_independent_writer(flange_parts, file_type):
    _, v, f = flange_parts[1]
    data = trimesh.Trimesh(v, f, process=False).export(file_type=file_type)
    data = data.encode() if isinstance(data, str) else data
    kind = file_type.split("_")[0]
    ref = trimesh.load(io.BytesIO(data), file_type=kind, process=False)
    ours = read_mesh(data, source="t." + kind).parts[0]
    np.testing.assert_array_equal(ours.vertices[ours.faces], ref.vertices[ref.faces])
    if kind == "stl":
        np.testing.assert_array_equal(ours.faces, f)  # welding gives back the original indexing


def test_polygons_fan_and_continuations():
    obj = (
        b"v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0.5 1.5 0 1.0\n"
        b"f 1 2 3 4\nf 4 3 \\\n 5\n# comment\nf 1/1 2/2 3/3 4/4 5/5\n"
    )
    part = read_mesh(obj, source="poly.obj").parts[0]
    assert part.faces.tolist() == [[0, 1, 2], [0, 2, 3], [3, 2, 4], [0, 1, 2], [0, 2, 3], [0, 3, 4]]
    polys = [[0, 1, 2, 3], [3, 2, 4], [0, 1, 2, 3, 4]]
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 1.5, 0]], float)
    for encoding in ("ascii", "binary_little_endian"):
        p = read_mesh(ply(v, polys, encoding), source="poly.ply").parts[0]
        assert p.faces.tolist() == part.faces.tolist()


def test_unreferenced_vertices_dropped_and_order_kept():
    obj = b"v 9 9 9\nv 0 0 0\nv 1 0 0\nv 8 8 8\nv 0 1 0\nf 5 2 3\n"
    part = read_mesh(obj, source="u.obj").parts[0]
    assert part.vertices.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
    assert part.faces.tolist() == [[2, 0, 1]]


def weld_reference(corners):
    """Plain NumPy: sort the positions, group equal neighbours, number the groups by first appearance."""
    v = corners + 0.0
    order = np.lexsort((v[:, 2], v[:, 1], v[:, 0]))  # stable: a group's first entry is its first corner
    s = v[order]
    starts = np.ones(len(s), dtype=bool)
    starts[1:] = np.any(s[1:] != s[:-1], axis=1)
    first = order[starts]
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    inverse = np.empty(len(v), np.int64)
    inverse[order] = rank[np.cumsum(starts) - 1]
    return v[np.sort(first)], inverse


def test_weld_matches_reference():
    rng = np.random.default_rng(7)
    grid = rng.integers(0, 6, size=(20000, 3)).astype(np.float64) * 0.25 - 0.5  # many exact repeats, some -0.0
    grid[::7] *= -1.0
    for corners in (grid, read_mesh(geometry("bullet.stl.gz")).parts[0].vertices.repeat(2, axis=0)):
        vertices, inverse = weld(corners)
        ref_vertices, ref_inverse = weld_reference(corners)
        np.testing.assert_array_equal(vertices, ref_vertices)
        np.testing.assert_array_equal(inverse, ref_inverse)
        np.testing.assert_array_equal(vertices[inverse], corners)


def test_weld_first_seen_and_signed_zero():
    corners = np.array([[1, 0, 0], [0, 0, 0], [-0.0, 0, 0], [1, 0, 0], [0, 0, 2]], float)
    vertices, inverse = weld(corners)
    assert vertices.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 2]] and inverse.tolist() == [0, 1, 1, 0, 2]
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        weld(np.zeros((4, 2)))


# -- bad input: one exact message each ---------------------------------------------------------

TRI = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
TET = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


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
