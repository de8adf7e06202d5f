"""Writers of STL (ASCII, binary), OBJ and PLY (every encoding and type) for the mesh reader tests: written here,
independently of the reader's code, so a round trip checks the reader against another implementation."""

from __future__ import annotations

import numpy as np

STL_FACET = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])
#: A unit tetrahedron: its corners and outward faces.
TRI = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
TET = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


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
