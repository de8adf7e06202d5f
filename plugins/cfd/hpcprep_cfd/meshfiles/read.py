"""``read_mesh``: the one entry point of the mesh file parsers.

It reads the path (or takes the bytes), undoes gzip, picks the format (the ``format`` argument, else the
suffix of ``source``, else the content), runs that format's parser and builds the parts; see the package
docstring for what a record holds.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from hpcprep.compressed import DamagedGzip, gunzip

from . import FORMATS
from .common import MeshFile, MeshFileError, _make_parts, known_format
from .obj import _parse_obj
from .ply import _parse_ply
from .stl import _binary_stl_size_matches, _looks_like_ascii_stl, _parse_stl


def read_mesh(
    path_or_bytes: str | os.PathLike | bytes,
    *,
    source: str | None = None,
    format: Literal["stl", "obj", "ply"] | None = None,
    split: Literal["none", "parts"] = "none",
    on_error: Literal["raise", "keep"] = "raise",
) -> MeshFile:
    """Read an STL, OBJ or PLY file (plain or gzip) into indexed triangle meshes.

    ``source`` names the data in messages and decides the format by its suffix (default: the path, or
    ``"<bytes>"``); ``format`` overrides the suffix, which otherwise falls back to sniffing the content.
    """
    if split not in ("none", "parts"):
        raise ValueError(f"split must be 'none' or 'parts', not {split!r}")
    if on_error not in ("raise", "keep"):
        raise ValueError(f"on_error must be 'raise' or 'keep', not {on_error!r}")
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        source = source or "<bytes>"
    else:
        source = source or os.fspath(path_or_bytes)
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    data = _gunzip(source, data)
    if not data or data.isspace():
        raise MeshFileError(f"{source}: the file is empty")
    fmt = format or _format_from_name(source) or _sniff(data)
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    known = known_format(data)
    if known is not None:
        expected = _WHAT_IT_SHOULD_BE[fmt] if fmt else "the content matches none of them"
        what = fmt.upper() if fmt else "STL, OBJ or PLY"
        raise MeshFileError(f"{source}: not an {what} file: it is {known} ({expected})")
    if fmt is None:
        raise MeshFileError(f"{source}: not an STL, OBJ or PLY file (unknown suffix, and the content matches none)")
    if fmt == "stl":
        raw = _parse_stl(source, data)
    elif fmt == "obj":
        raw = _parse_obj(source, data)
    else:
        raw = _parse_ply(source, data)
    parts = _make_parts(raw, source, split)
    if on_error == "raise":
        for part in parts:
            if part.error is not None:
                raise MeshFileError(part.error)
    return MeshFile(source, raw.format, parts)


#: What a file of each format looks like, for the message about a file that is something else.
_WHAT_IT_SHOULD_BE = {
    "stl": "an STL is text starting with 'solid', or binary data of 84 + 50 n bytes for n facets",
    "obj": "an OBJ is text of 'v' and 'f' lines",
    "ply": "a PLY starts with a 'ply' line and a header",
}


def _gunzip(source: str, data: bytes) -> bytes:
    try:
        return gunzip(data, source)
    except DamagedGzip as exc:
        raise MeshFileError(str(exc)) from None


def _format_from_name(source: str) -> str | None:
    name = source.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for fmt in FORMATS:
        if name.endswith("." + fmt):
            return fmt
    return None


def _sniff(data: bytes) -> str | None:
    if data[:3] == b"ply" and data[3:4] in (b"\n", b"\r"):
        return "ply"
    if _binary_stl_size_matches(data) or _looks_like_ascii_stl(data):
        return "stl"
    if re.search(rb"(?m)^[ \t]*v[ \t]", data[:65536]) and re.search(rb"(?m)^[ \t]*f[ \t]", data):
        return "obj"
    return None
