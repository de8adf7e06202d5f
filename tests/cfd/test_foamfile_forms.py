"""Every form OpenFOAM's IOstream reads in polyMesh files and fields, through our parsers.

Each test writes a small file in one form and checks what the parser makes of it against
the same data in the plain form (or against numbers written into the test), plus the
error a broken variant of the form must give. The whole-mesh test at the end writes one
polyMesh in the unusual forms together and compares it with the plain one.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from hpcprep_cfd.openfoam import fields, foamfile, geometry, polymesh
from hpcprep_cfd.openfoam.box_case import write_box_case

BANNER = """/*--------------------------------*- C++ -*----------------------------------*\\
| =========                 |                                                 |
|  \\\\    /   O peration     | Version:  v1912  (a (bracket) in a comment)      |
\\*---------------------------------------------------------------------------*/
"""


def header(cls: str, fmt: str = "ascii", arch: str | None = None) -> str:
    arch_line = f'    arch "{arch}";\n' if arch else ""
    return f"FoamFile\n{{\n    version 2.0;\n    format {fmt};\n{arch_line}    class {cls};\n    object x;\n}}\n"


def write(tmp_path: Path, body: bytes | str, cls: str = "labelList", name: str = "f", **kw) -> foamfile.FoamFile:
    blob = (BANNER + header(cls, **kw)).encode() + (body.encode() if isinstance(body, str) else body)
    path = tmp_path / name
    path.write_bytes(blob)
    return foamfile.read_foam_file(str(path))


def read(f: foamfile.FoamFile, kind: str, limit=None) -> np.ndarray:
    arr, _ = foamfile.read_list(f, f.body, kind, limit)
    return arr


# -- lists ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "4\n(\n0 1 2 3\n)\n",
        "(0 1 2 3)",
        "4(0 1 2 3)",
        "(\n0\n1\n2\n3\n)\n",
        "4 // size\n( 0 /* one */ 1 2 // two\n 3 )",
    ],
)
def test_label_list_with_and_without_size(tmp_path, body):
    assert read(write(tmp_path, body), "label").tolist() == [0, 1, 2, 3]


def test_vector_list_without_size(tmp_path):
    got = read(write(tmp_path, "(\n(0 0 0)\n(1.5 -2 3e-1) // a (comment)\n)\n", "vectorField"), "vector")
    assert got.tolist() == [[0, 0, 0], [1.5, -2, 0.3]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("((0 0) (1 1 1 1))", "an item of the vector list is not (3 numbers) in brackets"),
        ("2((0 0) (1 1 1 1))", "an item of the vector list is not (3 numbers) in brackets"),
        ("((0 0 0) 1 2 3)", "an item of the vector list is not (3 numbers) in brackets"),
        ("((0 0 0) ((1 1 1)))", "an item of the vector list is not (3 numbers) in brackets"),
        ("((0 0 0) (1 1 1)", "unterminated list"),
        ("((0 0 0) /* (1 1 1))", "unterminated list"),
    ],
)
def test_vector_list_structure_is_checked(tmp_path, body, message):
    f = write(tmp_path, body, "vectorField")
    with pytest.raises(foamfile.FoamFileError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        read(f, "vector")
    assert str(tmp_path / "f") in str(exc.value)


def test_scalar_list_items_are_plain_numbers(tmp_path):
    with pytest.raises(foamfile.FoamFileError, match=r"unexpected '\(' inside a scalar list"):
        read(write(tmp_path, "(1 (2) 3)", "scalarField"), "scalar")


def test_unsized_list_is_bounded(tmp_path):
    f = write(tmp_path, "(0 1 2 3 4 5)")
    with pytest.raises(foamfile.FoamFileError, match="the label list says 6 items, but the test allows 5"):
        read(f, "label", (5, "the test allows 5"))


@pytest.mark.parametrize(
    ("body", "kind", "expected"),
    [
        ("5{7}", "label", [7] * 5),
        ("3 { 2.5 }", "scalar", [2.5] * 3),
        ("2{(1 2 3)}", "vector", [[1, 2, 3]] * 2),
        ("2{/* c */ (1 2 3)}", "vector", [[1, 2, 3]] * 2),
    ],
)
def test_uniform_lists(tmp_path, body, kind, expected):
    assert read(write(tmp_path, body), kind).tolist() == expected


def test_tensor_lists(tmp_path):
    f = write(tmp_path, "2((1 2 3 4 5 6) (7 8 9 10 11 12))", "symmTensorField")
    assert read(f, "symmTensor").tolist() == [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]
    f = write(tmp_path, "((1) (2))", "sphericalTensorField")
    assert read(f, "sphericalTensor").tolist() == [1, 2]


def test_comment_errors_name_the_file(tmp_path):
    f = write(tmp_path, "4(0 1 /* never closed 2 3)")
    with pytest.raises(foamfile.FoamFileError, match="unterminated") as exc:
        read(f, "label")
    assert str(exc.value).startswith(str(tmp_path / "f"))
    f = write(tmp_path, "4(0 1 2 / 3)")
    with pytest.raises(foamfile.FoamFileError, match="expected an integer, found '/'"):
        read(f, "label")


# -- binary -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [32, 64])
def test_binary_labels_of_both_widths(tmp_path, bits):
    values = np.array([0, 5, 2**31 - 1 if bits == 32 else 2**40, 3])
    raw = values.astype(f"<i{bits // 8}").tobytes()
    f = write(tmp_path, b"\n4\n(" + raw + b")\n", fmt="binary", arch=f"LSB;label={bits};scalar=64")
    assert f.binary and read(f, "label").tolist() == values.tolist()
    # big-endian files say so in arch
    raw = values.astype(f">i{bits // 8}").tobytes()
    f = write(tmp_path, b"4(" + raw + b")", fmt="binary", arch=f"MSB;label={bits};scalar=64")
    assert read(f, "label").tolist() == values.tolist()


def test_binary_empty_list_is_a_bare_size(tmp_path):
    # OpenFOAM writes an empty list as "0" without brackets in binary (a one-cell mesh's neighbour)
    f = write(tmp_path, b"\n0\n\n// ****\n", fmt="binary", arch="LSB;label=32;scalar=64")
    assert read(f, "label").shape == (0,)
    f = write(tmp_path, b"\n0()\n", fmt="binary", arch="LSB;label=32;scalar=64")
    assert read(f, "label").shape == (0,)
    # in ASCII the brackets are required, as OpenFOAM requires them
    with pytest.raises(foamfile.FoamFileError, match="expected '\\(' after the size of the label list"):
        read(write(tmp_path, "0\n"), "label")


def test_binary_list_needs_its_size(tmp_path):
    # a list without a size is text even in a binary file (OpenFOAM reads it token by token)
    f = write(tmp_path, "(1 2 3)", fmt="binary")
    assert read(f, "label").tolist() == [1, 2, 3]
    # raw bytes without a size cannot be read as text
    f = write(tmp_path, b"(" + np.array([1, 2], "<i4").tobytes() + b")", fmt="binary")
    with pytest.raises(foamfile.FoamFileError, match="expected an integer"):
        read(f, "label")


def test_binary_field_with_empty_patch_value(tmp_path):
    raw = np.array([1.0, 2.0], "<f8").tobytes()
    body = (
        b"dimensions [0 0 0 1 0 0 0];\ninternalField nonuniform List<scalar> 2(" + raw + b");\n"
        b"boundaryField\n{\n    a { type calculated; value nonuniform List<scalar> 0; }\n"
        b"    b { type fixedValue; value uniform 3; }\n}\n"
    )
    path = tmp_path / "T"
    path.write_bytes((header("volScalarField", "binary", "LSB;label=32;scalar=64")).encode() + body)
    patches = [polymesh.Patch("a", "patch", 2, 0), polymesh.Patch("b", "patch", 2, 2)]
    got = fields.read_field(str(path), "T", 2, patches)
    assert got.internal.tolist() == [1.0, 2.0]
    assert got.patches["a"].shape == (0,) and got.patches["b"].tolist() == [3.0, 3.0]


# -- headers ----------------------------------------------------------------------------------

OLD_HEADER = """FoamFile
{
    version 2.0;
    format ascii;

    root "/home/user/OpenFOAM/run";
    case "tank3D";
    instance "constant";
    local "polyMesh";

    class labelList;
    object owner;
}
"""
NEW_HEADER = """FoamFile
{
    object      owner;   // the order of entries does not matter
    note        "nPoints:8 nCells:1 nFaces:6 nInternalFaces:0";
    location    "constant/polyMesh";
    class       labelList;
    arch        "LSB;label=32;scalar=64";
    format      ascii;
    version     2;
}
"""


@pytest.mark.parametrize("head", [OLD_HEADER, NEW_HEADER, "FoamFile{format ascii;class labelList;}", ""])
def test_headers_old_new_any_order_or_none(tmp_path, head):
    path = tmp_path / "owner"
    path.write_text(BANNER + head + "\n// * * * //\n6{0}\n")
    f = foamfile.read_foam_file(str(path))
    assert not f.binary and read(f, "label").tolist() == [0] * 6
    if head:
        assert f.cls == "labelList"


def test_gzip_and_plain_read_the_same(tmp_path):
    body = (BANNER + header("vectorField") + "2((0 1 2) (3 4 5))\n").encode()
    (tmp_path / "plain").write_bytes(body)
    (tmp_path / "zipped").write_bytes(gzip.compress(body))
    a = foamfile.read_foam_file(str(tmp_path / "plain"))
    b = foamfile.read_foam_file(str(tmp_path / "zipped"))
    assert np.array_equal(read(a, "vector"), read(b, "vector"))


def test_words_end_at_comments_and_verbatim_blocks_are_one_token(tmp_path):
    body = """
dimensions [0 0 0 1 0 0 0];
internalField uniform 1;// a comment right after the value's ';'
boundaryField
{
    inlet
    {
        type            codedFixedValue;
        name            ramp;
        code            #{ operator==(min(10, 0.1*this->db().time().value())); // } ; ( #};
        value           uniform 2/* 2 */;
    }
    walls { type zeroGradient; }
}
"""
    path = tmp_path / "T"
    path.write_text(header("volScalarField") + body)
    patches = [polymesh.Patch("inlet", "patch", 1, 1), polymesh.Patch("walls", "wall", 2, 1)]
    got = fields.read_field(str(path), "T", 1, patches)
    assert got.internal.tolist() == [1.0] and got.patches["inlet"].tolist() == [2.0]
    assert got.patches["walls"] is None
    path.write_text(header("volScalarField") + body.replace("#};", ";"))
    with pytest.raises(foamfile.FoamFileError, match="unterminated #{ verbatim block"):
        fields.read_field(str(path), "T", 1, patches)


# -- faces and boundary -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "2\n(\n4(0 1 2 3)\n3(1 2 4)\n)\n",
        "(4(0 1 2 3) 3(1 2 4))",
        "2((0 1 2 3) (1 2 4))",
        "(\n(0 1 2 3) // a face\n/* (9 9 9) */ 3 (1 2 4)\n)",
    ],
)
def test_face_list_forms(tmp_path, body):
    f = write(tmp_path, body, "faceList")
    offsets, labels, _ = foamfile.read_face_list(f, f.body)
    assert offsets.tolist() == [0, 4, 7] and labels.tolist() == [0, 1, 2, 3, 1, 2, 4]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("2(4(0 1 2) 3(1 2 4))", "face 0 does not hold the number of point labels its size states"),
        ("(4(0 1 2 3) 3 1 2 4)", "face 1 is malformed"),
        ("(4(0 1 2 3) 3(1 2 x))", "face 1 is malformed"),
        ("1(4(0 1 2 3) 3(1 2 4))", "more data follows face 0"),
        ("3(4(0 1 2 3) 6(1 2 4 5 6 7))", "the face list says 3 faces but holds 2"),
        ("9(4(0 1 2 3) 6(1 2 4 5 6 7))", "the face list says 9 faces but holds 12 numbers"),
    ],
)
def test_face_list_errors(tmp_path, body, message):
    f = write(tmp_path, body, "faceList")
    with pytest.raises(foamfile.FoamFileError, match=message) as exc:
        foamfile.read_face_list(f, f.body)
    assert str(tmp_path / "f") in str(exc.value)


@pytest.mark.parametrize("bits", [32, 64])
def test_binary_face_list(tmp_path, bits):
    # older OpenFOAM writes binary faces as a faceList: N( n(raw) n(raw) ... )
    dt = f"<i{bits // 8}"
    faces = [[0, 1, 2, 3], [1, 2, 4]]
    body = b"\n2\n(\n" + b"".join(f"{len(x)}(".encode() + np.array(x, dt).tobytes() + b")\n" for x in faces) + b")\n"
    f = write(tmp_path, body, "faceList", fmt="binary", arch=f"LSB;label={bits};scalar=64")
    offsets, labels, _ = foamfile.read_face_list(f, f.body)
    assert offsets.tolist() == [0, 4, 7] and labels.tolist() == [0, 1, 2, 3, 1, 2, 4]
    f = write(tmp_path, body[:-8], "faceList", fmt="binary", arch=f"LSB;label={bits};scalar=64")
    with pytest.raises(foamfile.FoamFileError, match="binary face 1 is truncated|says 2 faces, but the rest"):
        foamfile.read_face_list(f, f.body)


BOUNDARY = """
{size}(
    inlet
    {{
        type            patch;
        nFaces          {n0};
        startFace       {s0};
    }}
    walls // a comment
    {{
        type            wall;
        inGroups        {groups};
        nFaces          {n1};
        startFace       {s1};
    }}
)
"""


@pytest.mark.parametrize("size", ["2\n", ""])
@pytest.mark.parametrize("groups", ["List<word> 1(wall)", "1(wall)", "(wall)"])
def test_boundary_with_and_without_size(tmp_path, size, groups):
    path = tmp_path / "boundary"
    path.write_text(
        BANNER + header("polyBoundaryMesh") + BOUNDARY.format(size=size, groups=groups, n0=3, s0=10, n1=4, s1=13)
    )
    patches = polymesh.read_boundary(str(tmp_path))
    assert patches == [polymesh.Patch("inlet", "patch", 10, 3), polymesh.Patch("walls", "wall", 13, 4)]


def test_boundary_errors(tmp_path):
    path = tmp_path / "boundary"
    path.write_text(header("polyBoundaryMesh") + BOUNDARY.format(size="3", groups="1(wall)", n0=3, s0=10, n1=4, s1=13))
    with pytest.raises(foamfile.FoamFileError, match="the boundary says 3 patches but lists 2"):
        polymesh.read_boundary(str(tmp_path))
    path.write_text(header("polyBoundaryMesh") + "patches ( )")
    with pytest.raises(
        foamfile.FoamFileError, match=r"expected the list of patches \(its size, or '\('\), found 'patches'"
    ):
        polymesh.read_boundary(str(tmp_path))


# -- a whole mesh in the unusual forms ----------------------------------------------------------


def _unusual(text: str) -> str:
    """An ASCII polyMesh file rewritten as a hand or an older OpenFOAM might write it: the
    old header, no list sizes, comments between items."""
    head_end = text.index("}\n", text.index("FoamFile")) + 2
    head, body = text[:head_end], text[head_end:]
    head = head.replace("    version", '    root "/somewhere";\n    case "box";\n    version')
    lines = body.split("\n")
    out = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.isdigit() and i + 1 < len(lines) and lines[i + 1].strip() == "(":
            out.append("// the size was here")  # drop the list size
            continue
        out.append(line)
        if stripped.startswith("(") and stripped.endswith(")") and i % 7 == 0:
            out.append("/* ( an item-long comment ) */")
    return head + "\n".join(out)


@pytest.mark.parametrize("gz", [False, True])
def test_whole_mesh_in_unusual_forms_reads_as_the_plain_one(tmp_path, gz):
    plain = tmp_path / "plain"
    write_box_case(str(plain), (3, 2, 2), (1.0, 2.0, 0.5))
    odd = tmp_path / "odd"
    shutil.copytree(plain, odd)
    mesh_dir = odd / "constant" / "polyMesh"
    for name in polymesh.MESH_FILES:
        text = _unusual((mesh_dir / name).read_text())
        assert "// the size was here" in text, name
        if gz:
            (mesh_dir / name).unlink()
            (mesh_dir / f"{name}.gz").write_bytes(gzip.compress(text.encode()))
        else:
            (mesh_dir / name).write_text(text)
    a = polymesh.read_polymesh(str(plain / "constant" / "polyMesh"))
    b = polymesh.read_polymesh(str(mesh_dir))
    for attr in ("points", "face_offsets", "face_points", "owner", "neighbour"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr
    assert a.patches == b.patches and a.n_cells == b.n_cells == 12
    _, volumes, _, _ = geometry.mesh_geometry(b.points, b.face_offsets, b.face_points, b.owner, b.neighbour, b.n_cells)
    assert np.allclose(volumes, 1.0 / 12)


def test_macro_entries_merge_the_named_dictionary(tmp_path):
    # as in the adjoint motorBike tutorial: a patch that repeats another's settings
    body = """
internalField uniform 1;
boundaryField
{
    lowerWall { type fixedValue; value uniform 4; }
    motorBikeGroup
    {
          $lowerWall
    }
    "(front|back)" { $motorBikeGroup; }
    other { $nothing type zeroGradient; }
}
"""
    path = tmp_path / "T"
    path.write_text(header("volScalarField") + body)
    names = ["lowerWall", "motorBikeGroup", "front", "other"]
    patches = [polymesh.Patch(n, "patch", 1 + i, 1) for i, n in enumerate(names)]
    got = fields.read_field(str(path), "T", 1, patches)
    assert [None if v is None else v.tolist() for v in got.patches.values()] == [[4.0], [4.0], [4.0], None]


@pytest.mark.parametrize(
    "internal",
    [
        "nonuniform List<vector> 2((1 2 3) (4 5 6))",
        "nonuniform List<vector> ((1 2 3) /* ) */ (4 5 6))",
        "nonuniform List<vector>\n2\n(\n(1 2 3)\n(4 5 6)\n)\n",
    ],
)
def test_field_lists_with_and_without_size(tmp_path, internal):
    path = tmp_path / "U"
    path.write_text(header("volVectorField") + f"internalField {internal};\nboundaryField {{ }}\n")
    assert fields.read_field(str(path), "U", 2).internal.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_ascii_face_compact_list(tmp_path):
    f = write(tmp_path, "3(0 4 7)\n(0 1 2 3 1 2 4)\n", "faceCompactList")
    offsets, labels, _ = foamfile.read_face_list(f, f.body)
    assert offsets.tolist() == [0, 4, 7] and labels.tolist() == [0, 1, 2, 3, 1, 2, 4]
    f = write(tmp_path, "3(0 4 8)\n(0 1 2 3 1 2 4)\n", "faceCompactList")
    with pytest.raises(foamfile.FoamFileError, match="faceCompactList offsets do not describe its 7 point labels"):
        foamfile.read_face_list(f, f.body)
