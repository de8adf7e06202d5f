"""Write the malformed mesh files of ``tests/data/malformed/{stl,obj,ply}`` and the real
OpenFOAM case that ``tests/data/malformed/openfoam`` edits.

The files are committed; this script says how each was made, and makes them again (fixed
seeds, gzip without a timestamp) after a change of mind. What each must give is in the
``expected.toml`` beside it, checked by ``tests/cfd/test_malformed.py``. The OpenFOAM base
case is the 36-cell mesh ``blockMesh`` (OpenFOAM v1912, Debian package ``openfoam``) makes
from ``openfoam/base/system/blockMeshDict``; the malformed cases are edits of it listed in
``openfoam/expected.toml``.

    python tests/cfd/make_malformed_corpus.py
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).resolve().parents[1] / "data" / "malformed"
#: a unit tetrahedron: corners and outward triangles
CORNERS = [(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]
TRIANGLES = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
OPENFOAM_DIR = "/usr/share/openfoam"  # Debian's WM_PROJECT_DIR


def stl_text(name: str = "tet") -> str:
    lines = [f"solid {name}"]
    for tri in TRIANGLES:
        lines += ["  facet normal 0 0 0", "    outer loop"]
        lines += ["      vertex {} {} {}".format(*CORNERS[i]) for i in tri]
        lines += ["    endloop", "  endfacet"]
    return "\n".join([*lines, f"endsolid {name}"]) + "\n"


def stl_binary(corners=CORNERS, count: int | None = None) -> bytes:
    head = b"written by make_malformed_corpus".ljust(80, b" ")
    facets = b"".join(struct.pack("<12fH", 0, 0, 0, *(c for i in tri for c in corners[i]), 0) for tri in TRIANGLES)
    return head + struct.pack("<I", len(TRIANGLES) if count is None else count) + facets


def ply_header(encoding: str, n_vertices, n_faces, vtype: str = "float", ctype: str = "uchar") -> str:
    return (
        f"ply\nformat {encoding} 1.0\nelement vertex {n_vertices}\n"
        + "".join(f"property {vtype} {axis}\n" for axis in "xyz")
        + f"element face {n_faces}\nproperty list {ctype} int vertex_indices\nend_header\n"
    )


def ply_ascii(vertices: str = "0 0 0\n1 0 0\n0 1 0\n", faces: str = "3 0 1 2\n", **header) -> str:
    n_v = header.pop("n_vertices", vertices.count("\n"))
    n_f = header.pop("n_faces", faces.count("\n"))
    return ply_header("ascii", n_v, n_f, **header) + vertices + faces


def ply_binary_tet() -> bytes:
    body = b"".join(struct.pack("<3f", *c) for c in CORNERS)
    body += b"".join(struct.pack("<B3i", 3, *tri) for tri in TRIANGLES)
    return ply_header("binary_little_endian", 4, 4).encode() + body


def jpeg() -> bytes:
    """A real (small) JPEG photo-like image; Pillow makes it only when the corpus is rewritten."""
    from PIL import Image

    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=85)
    return out.getvalue()


def stl_files() -> dict[str, bytes | str]:
    text = stl_text()
    lines = text.splitlines(keepends=True)
    first_vertex = next(i for i, line in enumerate(lines) if "vertex" in line)
    inf_corners = list(CORNERS)
    inf_corners[2] = (0.0, float("inf"), 0.0)
    return {
        "jpeg_renamed.stl": jpeg(),
        "pdf_renamed.stl": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b"\n" * 40,
        "random_bytes.stl": np.random.default_rng(13).integers(0, 256, 1000, dtype=np.uint8).tobytes(),
        "truncated_binary.stl": stl_binary()[:-20],
        "count_too_large.stl": stl_binary(count=5),
        "empty.stl": b"",
        "shorter_than_header.stl": b"\x00\x01" * 25,
        "nan_vertex.stl": text.replace("vertex 1.0 0.0 0.0", "vertex nan 0.0 0.0", 1),
        "inf_vertex_binary.stl": stl_binary(inf_corners),
        "two_vertex_loop.stl": "".join(lines[:first_vertex] + lines[first_vertex + 1 :]),
        "ends_inside_facet.stl": "".join(lines[: first_vertex + 2]),
        "word_for_number.stl": text.replace("vertex 0.0 0.0 1.0", "vertex 0.0 0.0 one", 1),
        "four_numbers.stl": text.replace("vertex 0.0 0.0 1.0", "vertex 0.0 0.0 1.0 2.0", 1),
        "no_facets.stl": "solid nothing\nendsolid nothing\n",
        "cut_gzip.stl.gz": gzip.compress(text.encode(), mtime=0)[:-12],
    }


def obj_files() -> dict[str, bytes | str]:
    tri = "v 0 0 0\nv 1 0 0\nv 0 1 0\n"
    return {
        "empty.obj": "",
        "index_out_of_range.obj": tri + "f 1 2 4\n",
        "index_zero.obj": tri + "f 0 1 2\n",
        "relative_before_first.obj": tri + "f -1 -2 -5\n",
        "two_vertex_face.obj": tri + "f 1 2\n",
        "two_coordinates.obj": "v 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
        "nan_vertex.obj": "v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
        "comma_decimal.obj": "v 0 0 0\nv 1,5 0 0\nv 0 1 0\nf 1 2 3\n",
        "word_in_face.obj": tri + "f 1 2 x\n",
        "vertices_only.obj": tri,
        "huge_index.obj": tri + "f 1 2 99999999999999999999\n",
        "jpeg_renamed.obj": jpeg(),
        "inf_in_group.obj": "o good\n" + tri + "f 1 2 3\no bad\nv 0 0 inf\nf 1 2 4\n",
    }


def ply_files() -> dict[str, bytes | str]:
    good = ply_ascii("0 0 0\n1 0 0\n0 1 0\n0 0 1\n", "".join("3 {} {} {}\n".format(*t) for t in TRIANGLES))
    vertices = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)
    return {
        "nine_trillion_vertices.ply": ply_ascii(n_vertices=9_000_000_000_000),
        "nine_trillion_faces_binary.ply": ply_header("binary_little_endian", 3, 9_000_000_000_000).encode()
        + vertices
        + struct.pack("<B3i", 3, 0, 1, 2),
        "no_end_header.ply": good.replace("end_header", "end_heder"),
        "bad_format.ply": good.replace("format ascii 1.0", "format text 1.0"),
        "unknown_keyword.ply": good.replace("element face", "elephant face"),
        "no_z.ply": good.replace("property float z\n", ""),
        "short_binary.ply": ply_binary_tet()[:-30],
        "short_ascii.ply": good.rstrip("\n").rsplit("\n", 1)[0] + "\n",
        "index_out_of_range.ply": ply_ascii(faces="3 0 1 7\n"),
        "two_vertex_face.ply": ply_ascii(faces="2 0 1\n"),
        "nan_vertex.ply": ply_ascii("0 0 0\nnan 0 0\n0 1 0\n"),
        "uchar_300.ply": ply_ascii("0 0 0\n300 0 0\n0 1 0\n", vtype="uchar"),
        "fractional_index.ply": ply_ascii(faces="3 0 1.5 2\n"),
        "inf_index.ply": ply_ascii(faces="3 0 1 inf\n"),
        "negative_list_length.ply": ply_header("binary_little_endian", 3, 1, ctype="char").encode()
        + vertices
        + struct.pack("<b3i", -1, 0, 1, 2),
        "not_ply_first_line.ply": "plx\n" + good[4:],
        "superscript_count.ply": good.replace("element vertex 4", "element vertex \u00b9"),
    }


def openfoam_base() -> None:
    """Run blockMesh on the committed blockMeshDict and keep its polyMesh (36 cells)."""
    base = CORPUS / "openfoam" / "base"
    with tempfile.TemporaryDirectory() as tmp:
        case = Path(tmp) / "base"
        shutil.copytree(base / "system", case / "system")
        env = {**os.environ, "WM_PROJECT_DIR": os.environ.get("WM_PROJECT_DIR", OPENFOAM_DIR)}
        subprocess.run(["blockMesh", "-case", str(case)], env=env, check=True, capture_output=True)
        shutil.rmtree(base / "constant", ignore_errors=True)
        shutil.copytree(case / "constant", base / "constant")


def write(folder: str, files: dict[str, bytes | str]) -> None:
    out = CORPUS / folder
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data.encode() if isinstance(data, str) else data)


if __name__ == "__main__":
    write("stl", stl_files())
    write("obj", obj_files())
    write("ply", ply_files())
    openfoam_base()
