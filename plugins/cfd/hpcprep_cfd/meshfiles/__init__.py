"""Surface mesh files (STL, OBJ, PLY, and gzip of each) as indexed triangle meshes, without Ray.

``read_mesh(path_or_bytes)`` returns a :class:`MeshFile` whose parts hold ``vertices`` (V, 3) float64 and
``faces`` (F, 3) int64 (0-based). The modules:

- ``read``: ``read_mesh``: gzip, the format (argument, suffix or content), the parser, the parts.
- ``stl``: ASCII (one or many solids) and binary STL; per-facet corners welded into an indexed mesh.
- ``obj``: Wavefront OBJ vertices, polygons and ``o``/``g`` parts.
- ``ply``: PLY in all three encodings, vertex positions and face index lists.
- ``common``: the error and record types, the part builder every parser feeds, ``weld``, and the Numba
  token scanners and number conversion the ASCII parsers share.

A record keeps only the vertices its faces use: unreferenced OBJ/PLY vertices are dropped, the others keep
their file order. With ``split="parts"`` every STL solid or OBJ group is its own part; otherwise the file
is one part. A file that cannot be read at all raises :class:`MeshFileError`; a bad part (a NaN
coordinate, a face index out of range, a solid without facets) raises it too, or with
``on_error="keep"`` comes back as a part with ``error`` set so that the other parts can still be used.
Every message names the source and where the problem is (line, byte offset, facet or row).
"""

from hpcprep.lazy import lazy_attributes

FORMATS = ("stl", "obj", "ply")
#: File name suffixes the reader expands directories to.
SUFFIXES = (".stl", ".obj", ".ply", ".stl.gz", ".obj.gz", ".ply.gz")

# The parsers hold Numba code: imported on first use, as the reader's class needs only SUFFIXES (hpcprep.lazy).
_PARSERS = {
    "MeshFile": ".common",
    "MeshFileError": ".common",
    "MeshPart": ".common",
    "weld": ".common",
    "read_mesh": ".read",
}
__getattr__, __dir__ = lazy_attributes(__name__, _PARSERS)

__all__ = ["FORMATS", "SUFFIXES", *sorted(_PARSERS)]
