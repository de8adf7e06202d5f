"""A small STL writer (binary or ASCII, gzipped when the path ends in ``.gz``).

Binary STL stores float32; ASCII keeps float64 exactly (shortest round-trip decimal). Facet
normals are the unit normals of the triangles as given (right-hand rule), zero for a
degenerate triangle. The binary header never starts with ``solid``, which readers take as
the mark of an ASCII file.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np

_BINARY_FACET = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])


def facet_normals(triangles: np.ndarray) -> np.ndarray:
    """Unit normals of (F, 3, 3) triangles; zero where the cross product vanishes."""
    n = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def _triangles(path, vertices, faces) -> np.ndarray:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"{path}: vertices must have shape (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or (f.size and not np.issubdtype(f.dtype, np.integer)):
        raise ValueError(f"{path}: faces must be integers of shape (F, 3), got {f.dtype} {f.shape}")
    f = f.astype(np.int64)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"{path}: faces index vertices outside [0, {len(v)})")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{path}: vertices contain NaN or infinity")
    return v[f]


def _ascii(name: str, tri: np.ndarray, normals: np.ndarray) -> bytes:
    out = io.StringIO()
    out.write(f"solid {name}\n")
    for n, t in zip(normals.tolist(), tri.tolist(), strict=True):
        out.write("  facet normal {!r} {!r} {!r}\n    outer loop\n".format(*n))
        for p in t:
            out.write("      vertex {!r} {!r} {!r}\n".format(*p))
        out.write("    endloop\n  endfacet\n")
    out.write(f"endsolid {name}\n")
    return out.getvalue().encode("ascii")


def _binary(name: str, tri: np.ndarray, normals: np.ndarray) -> bytes:
    header = f"hpcprep-cfd STL {name}".encode("ascii", "replace")[:80].ljust(80, b" ")
    records = np.zeros(len(tri), dtype=_BINARY_FACET)
    records["normal"] = normals
    records["vertices"] = tri
    return header + np.uint32(len(tri)).tobytes() + records.tobytes()


def write_stl(path, vertices, faces, name: str = "mesh", binary: bool = True) -> Path:
    """Write the triangles ``vertices[faces]`` to ``path``; returns the path."""
    path = Path(path)
    tri = _triangles(path, vertices, faces)
    # One token without control characters: ASCII readers split the solid line on whitespace.
    name = re.sub(r"\s+", "_", str(name).strip()) or "mesh"
    name = name.encode("ascii", "replace").decode("ascii")
    normals = facet_normals(tri)
    data = _binary(name, tri, normals) if binary else _ascii(name, tri, normals)
    if path.suffix == ".gz":
        # mtime=0 so the same mesh always gives the same bytes.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)
    return path
