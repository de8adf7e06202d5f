"""hpcprep_cfd.meshfiles: real OpenFOAM tutorial geometry against trimesh, round trips through every
encoding (the writers of ``mesh_writers``, and trimesh's as an independent one). The message of each bad input
is ``test_meshfile_errors``."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
import trimesh
from hpcprep_cfd.meshfiles import read_mesh, weld

from .data import geometry
from .mesh_writers import obj_groups, ply, stl_ascii, stl_binary

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
