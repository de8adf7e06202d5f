"""OpenFOAM files: the FoamFile header, dictionary entries and (large) lists, ASCII or binary.

A file is read whole into memory (gunzipped when it is gzip data), then parsed from byte
offsets. Small things (the header, the boundary file, a field's boundaryField) go
through a plain tokenizer; large lists of labels, scalars, vectors and faces go through
NumPy (binary) or Numba (ASCII), so a million-cell mesh parses in well under a second
in binary.

Binary lists are ``N(`` + raw bytes + ``)``, with label and scalar widths and byte
order from the header's ``arch "LSB;label=32;scalar=64"`` (32-bit labels and 64-bit
scalars when it is absent); an empty one may be a bare ``0``. A uniform list may be
written ``N{value}``. A list may come without its size, ``( ... )``, as older OpenFOAM
versions and people write them; OpenFOAM reads such a list as text even in a binary
file, and so do we. Comments may stand anywhere, inside large lists too.

Every problem raises ``FoamFileError`` whose message names the file and the byte offset.
A list never makes more items than its caller allows (``limit``): a uniform list
``N{v}`` costs a few bytes for any ``N``, so a hostile or damaged size must be refused
before it is expanded, not after the allocation fails.

One module because the header, the dictionary tokenizer and the list parsers share one
position in one buffer and one error type that names file and offset: a list parser is
called from inside a dictionary entry, and the header decides how lists are read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
from hpcprep.compressed import DamagedGzip, gunzip
from numba import njit

SEPARATORS = b"{}()[];"
_WS = b" \t\r\n\f\v"
#: Deepest nesting of ( ) and { } in the dictionary parts; real files nest a few levels, and
#: the parser recurses once per level.
MAX_DEPTH = 64
#: Items a uniform list ``N{v}`` may expand to when the caller knows no bound (a mesh or
#: field size); callers that know one pass it as ``limit``.
UNIFORM_LIMIT = 1 << 24
#: (most items, why): the bound a caller puts on a list's size, and the reason a message gives.
Limit = tuple[int, str]
#: List types read as arrays (binary in a binary file): numbers per item.
LIST_KINDS = {"label": 1, "scalar": 1, "vector": 3, "sphericalTensor": 1, "symmTensor": 6, "tensor": 9}
#: List types that are text in ASCII and binary files alike (OpenFOAM writes them token by token).
TEXT_KINDS = ("word", "string", "fileName", "keyType", "wordRe")


class FoamFileError(ValueError):
    """A malformed OpenFOAM file; the message names the file and where."""


def find_file(directory: str, name: str) -> str | None:
    """``directory/name`` or ``directory/name.gz``, whichever exists (plain first)."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


@dataclass
class FoamFile:
    """A whole OpenFOAM file in memory with its parsed header."""

    path: str
    data: bytes
    header: dict
    body: int  # offset just after the FoamFile { ... } header
    binary: bool
    label_dtype: np.dtype
    scalar_dtype: np.dtype

    @property
    def cls(self) -> str:
        return str(self.header.get("class", ""))

    def error(self, message: str, pos: int | None = None) -> FoamFileError:
        where = "" if pos is None else f" at byte {pos}"
        return FoamFileError(f"{self.path}{where}: {message}")


def _parse_arch(path: str, arch: str) -> tuple[np.dtype, np.dtype]:
    order = ">" if "MSB" in arch else "<"
    label, scalar = 32, 64
    m = re.search(r"label\s*=\s*(\d+)", arch)
    if m:
        label = int(m.group(1))
    m = re.search(r"scalar\s*=\s*(\d+)", arch)
    if m:
        scalar = int(m.group(1))
    if label not in (32, 64) or scalar not in (32, 64):
        raise FoamFileError(f"{path}: unsupported arch {arch!r} (labels 32/64, scalars 32/64 bits)")
    return np.dtype(f"{order}i{label // 8}"), np.dtype(f"{order}f{scalar // 8}")


def read_foam_file(path: str) -> FoamFile:
    """Read ``path`` (plain or gzip) and parse its FoamFile header."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise FoamFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = gunzip(data, path)
    except DamagedGzip as exc:
        raise FoamFileError(str(exc)) from None
    if re.search(rb"\S", data) is None:  # not data.strip(): that copies the whole file
        raise FoamFileError(f"{path}: the file is empty")
    probe = FoamFile(path, data, {}, 0, False, np.dtype("<i4"), np.dtype("<f8"))
    tok = Tokenizer(probe, 0)
    pos = tok.skip()
    header: dict = {}
    if data.startswith(b"FoamFile", pos):
        tok.pos = pos + len(b"FoamFile")
        if tok.next() != "{":
            raise probe.error("expected '{' after FoamFile", tok.pos)
        entries = tok.dictionary(top=False)
        header = {
            k: " ".join(t.strip('"') for t in v if isinstance(t, str))
            for k, v in entries.items()
            if isinstance(v, list)
        }
    fmt = str(header.get("format", "ascii"))
    if fmt not in ("ascii", "binary"):
        raise probe.error(f"unknown format {fmt!r} in the FoamFile header (ascii or binary)")
    label_dtype, scalar_dtype = _parse_arch(path, str(header.get("arch", "")))
    return FoamFile(path, data, header, tok.pos, fmt == "binary", label_dtype, scalar_dtype)


# -- tokens and dictionaries ---------------------------------------------------------------


class Tokenizer:
    """Tokens of the dictionary parts of a file: words, strings, numbers and separators.

    ``dictionary()`` returns nested dicts; an entry's value is the list of its tokens,
    where a nested ``( ... )`` is a Python list and a ``List<T> N(...)`` compound (the
    fields' ``nonuniform`` values) is a NumPy array read by ``read_list``.
    """

    def __init__(self, f: FoamFile, pos: int, limit: Limit | None = None):
        self.f = f
        self.data = f.data
        self.pos = pos
        #: bound on the size of ``List<T>`` compounds (a field's values: at most its cells)
        self.limit = limit
        self.depth = 0
        #: the dictionaries being read, outermost first: where a ``$name`` entry is looked up
        self.scopes: list[dict] = []

    def _enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.f.error(f"lists or dictionaries nested more than {MAX_DEPTH} levels deep", pos)

    def skip(self) -> int:
        """Move past whitespace and comments; returns the new position."""
        data, n, pos = self.data, len(self.data), self.pos
        while pos < n:
            c = data[pos]
            if c in _WS:
                pos += 1
            elif data.startswith(b"//", pos):
                end = data.find(b"\n", pos)
                pos = n if end < 0 else end + 1
            elif data.startswith(b"/*", pos):
                end = data.find(b"*/", pos + 2)
                if end < 0:
                    raise self.f.error("unterminated /* comment", pos)
                pos = end + 2
            else:
                break
        self.pos = pos
        return pos

    def peek(self) -> str:
        pos = self.skip()
        return chr(self.data[pos]) if pos < len(self.data) else ""

    def next(self) -> str | None:
        """The next token as text; None at the end of the data."""
        pos = self.skip()
        data = self.data
        if pos >= len(data):
            return None
        c = data[pos]
        if c in SEPARATORS:
            self.pos = pos + 1
            return chr(c)
        if c == 0x23 and data.startswith(b"#{", pos):  # a verbatim block (coded boundary conditions)
            end = data.find(b"#}", pos + 2)
            if end < 0:
                raise self.f.error("unterminated #{ verbatim block (no '#}')", pos)
            self.pos = end + 2
            return data[pos : end + 2].decode("utf-8", "replace")
        if c == 0x22:  # a "string" (kept with its quotes, so it is not mistaken for a word)
            end = pos + 1
            while True:
                end = data.find(b'"', end)
                if end < 0:
                    raise self.f.error("unterminated string", pos)
                if data[end - 1] != 0x5C:
                    break
                end += 1
            self.pos = end + 1
            return data[pos : end + 1].decode("utf-8", "replace")
        end = pos
        n = len(data)
        depth = 0  # '<' ... '>' inside List<scalar> may hold no separators anyway
        while end < n:
            ch = data[end]
            if ch in _WS or (ch in SEPARATORS and depth == 0):
                break
            # '/' is no part of a word or number in OpenFOAM: "20// note" is 20 and a comment
            if ch == 0x2F and end + 1 < n and data[end + 1] in b"/*":
                break
            if ch == 0x3C:
                depth += 1
            elif ch == 0x3E:
                depth = max(0, depth - 1)
            end += 1
        self.pos = end
        return data[pos:end].decode("utf-8", "replace")

    def dictionary(self, top: bool) -> dict:
        """Entries up to the closing '}' (or the end of the data when ``top``)."""
        self._enter(self.pos)
        try:
            return self._entries(top)
        finally:
            self.depth -= 1

    def _entries(self, top: bool) -> dict:
        out: dict = {}
        self.scopes.append(out)
        try:
            return self._fill(out, top)
        finally:
            self.scopes.pop()

    def _fill(self, out: dict, top: bool) -> dict:
        while True:
            start = self.skip()
            key = self.next()
            if key is None:
                if top:
                    return out
                raise self.f.error("unexpected end of file inside a { } block", start)
            if key == "}":
                if top:
                    raise self.f.error("unmatched '}'", start)
                return out
            if key == ";":
                continue
            if key in SEPARATORS.decode():
                raise self.f.error(f"expected an entry name, found {key!r}", start)
            if key.startswith("#"):
                # #include "file", #inputMode merge, ...: a directive and one argument, no ';'
                if key not in ("#remove",) and self.peek() not in ("", "}", ";"):
                    self.next()
                continue
            if key.startswith("$"):
                # ``$name`` where an entry name goes: the named dictionary's entries, merged
                # (e.g. a patch that repeats another's settings). Shared, not copied, so that
                # references to references cannot multiply the memory a file costs.
                found = next((d[key[1:]] for d in reversed(self.scopes) if key[1:] in d), None)
                if isinstance(found, dict):
                    out.update(found)
                continue
            if self.peek() == "{":
                self.next()
                out[key.strip('"')] = self.dictionary(top=False)
            else:
                out[key.strip('"')] = self.value(start)
        return out

    def value(self, start: int) -> list:
        """Tokens up to the ';' that ends an entry."""
        tokens: list = []
        while True:
            pos = self.skip()
            tok = self.next()
            if tok is None:
                raise self.f.error("unexpected end of file: an entry is missing its ';'", start)
            if tok == ";":
                return tokens
            if tok in ("}", ")"):
                raise self.f.error(f"unexpected {tok!r}: an entry is missing its ';'", pos)
            if tok.startswith("List<") and tok.endswith(">"):
                kind = tok[5:-1]
                if kind in LIST_KINDS:
                    arr, self.pos = read_list(self.f, self.pos, kind, self.limit)
                    tokens.append(arr)
                elif kind in TEXT_KINDS or not self.f.binary:
                    # words and strings are text even in a binary file (``inGroups List<word> 1(wall);``)
                    tokens.append(self.sized_list(self.skip()))
                else:
                    raise self.f.error(f"unsupported binary list type {tok!r} ({', '.join(LIST_KINDS)} or words)", pos)
            elif tok == "(":
                tokens.append(self.plain_list(pos))
            elif tok == "[":
                tokens.append(self.plain_list(pos, close="]"))
            elif is_int(tok) and self.peek() in ("(", "{"):
                # ``1(wall)``: a small ASCII list with its size in front
                opener = self.next()
                tokens.append(self.plain_list(pos, close=")" if opener == "(" else "}"))
            else:
                tokens.append(tok)

    def sized_list(self, start: int) -> list:
        """A text list with or without its size in front: ``2(a b)``, ``(a b)``, ``2{a}``."""
        tok = self.next()
        if tok is not None and is_int(tok) and self.peek() in ("(", "{"):
            opener = self.next()
            return self.plain_list(start, close=")" if opener == "(" else "}")
        if tok == "(":
            return self.plain_list(start)
        raise self.f.error(f"expected a list, found {str(tok)[:40]!r}", start)

    def plain_list(self, start: int, close: str = ")") -> list:
        self._enter(start)
        try:
            return self._items(start, close)
        finally:
            self.depth -= 1

    def _items(self, start: int, close: str) -> list:
        items: list = []
        while True:
            pos = self.skip()
            tok = self.next()
            if tok is None:
                raise self.f.error(f"unexpected end of file: a list is missing its {close!r}", start)
            if tok == close:
                return items
            if tok == "(":
                items.append(self.plain_list(pos))
            elif tok == "{":
                items.append(self.dictionary(top=False))
            elif tok in (")", "]", "}", ";"):
                raise self.f.error(f"unexpected {tok!r} inside a list", pos)
            else:
                items.append(tok)


def is_int(tok: str) -> bool:
    return tok.isascii() and tok.isdigit()  # str.isdigit() accepts '¹' and '٣', which int() refuses


def top_dictionary(f: FoamFile, limit: Limit | None = None) -> dict:
    """Every entry after the header (e.g. a field's dimensions, internalField, boundaryField);
    ``limit`` bounds the size of the ``List<T>`` values in it."""
    tok = Tokenizer(f, f.body, limit)
    return tok.dictionary(top=True)


# -- large lists ------------------------------------------------------------------------


def _read_count(f: FoamFile, pos: int, what: str) -> tuple[int | None, int]:
    """The size in front of a list and the position after it; (None, position of the '(')
    for a list written without its size, which OpenFOAM reads as well (as text)."""
    tok = Tokenizer(f, pos)
    start = tok.skip()
    if f.data[start : start + 1] == b"(":
        return None, start
    word = tok.next()
    if word is None:
        raise f.error(f"unexpected end of file: expected the size of the {what}", start)
    if not is_int(word):
        raise f.error(f"expected the size of the {what} (an integer) or '(', found {word[:40]!r}", start)
    return int(word), tok.pos


def _opener(f: FoamFile, pos: int, what: str, count: int) -> tuple[str, int]:
    """'(' or '{' after a list's size and the position after it; ('', pos) for the bare ``0``
    that OpenFOAM writes for an empty list in a binary file (it writes no brackets there)."""
    tok = Tokenizer(f, pos)
    start = tok.skip()
    c = tok.next()
    if c not in ("(", "{"):
        if count == 0 and f.binary:
            return "", pos
        raise f.error(f"expected '(' after the size of the {what}, found {str(c)[:40]!r}", start)
    return c, tok.pos


def _item(f: FoamFile, kind: str) -> tuple[np.dtype, int]:
    """dtype of one number and numbers per item for a list ``kind``."""
    if kind not in LIST_KINDS:
        raise ValueError(f"unknown list kind {kind!r}")
    return (f.label_dtype if kind == "label" else f.scalar_dtype), LIST_KINDS[kind]


def _check_count(f: FoamFile, pos: int, what: str, count: int, limit: Limit | None, uniform: bool) -> None:
    if limit is not None and count > limit[0]:
        raise f.error(f"the {what} says {count} items, but {limit[1]}", pos)
    if uniform and limit is None and count > UNIFORM_LIMIT:
        raise f.error(
            f"a uniform {what} of {count} items: more than {UNIFORM_LIMIT} where the mesh size does not bound it",
            pos,
        )


def read_list(f: FoamFile, pos: int, kind: str, limit: Limit | None = None) -> tuple[np.ndarray, int]:
    """The list of ``kind`` (a key of ``LIST_KINDS``) starting at ``pos`` (its size, or its '(').

    Returns (array, position after the closing bracket): int64 (N,) for labels,
    float64 (N,) for scalars, float64 (N, width) for vectors and tensors. A list of more
    than ``limit[0]`` items is an error that gives ``limit[1]`` as the reason. Accepted:
    ``N(...)``, ``(...)`` (text, in any file), ``N{value}``, and in a binary file
    ``N(raw bytes)`` and a bare ``0``.
    """
    what = f"{kind} list"
    dtype, width = _item(f, kind)
    integer = kind == "label"
    out_dtype = np.int64 if integer else np.float64
    count, pos = _read_count(f, pos, what)
    if count is None:
        return _unsized_list(f, pos, kind, limit)
    opener, pos = _opener(f, pos, what, count)
    if opener == "":
        return np.zeros((0, width) if width > 1 else 0, out_dtype), pos
    if opener == "{":  # checked before expanding; a list written out is checked against its contents first
        _check_count(f, pos, what, count, limit, uniform=True)
        if f.binary:
            nbytes = dtype.itemsize * width
            if pos + nbytes + 1 > len(f.data):
                raise f.error(f"truncated binary uniform {what}", pos)
            value = np.frombuffer(f.data, dtype=dtype, count=width, offset=pos)
            end = pos + nbytes
        else:
            close = f.data.find(b"}", pos)
            if close < 0:
                raise f.error(f"unterminated uniform {what}", pos)
            buf = _text(f, pos, close)
            value = _ascii_numbers(f, buf, pos, close, integer, width)
            if len(value) != width:
                raise f.error(f"a uniform {what} holds {len(value)} numbers, expected {width}", pos)
            end = close
        if f.data[end : end + 1] != b"}":
            raise f.error(f"expected '}}' after the uniform value of the {what}", end)
        arr = np.broadcast_to(value.astype(out_dtype), (count, width)).copy()
        return (arr[:, 0] if width == 1 else arr), end + 1
    if f.binary:
        nbytes = count * width * dtype.itemsize
        if pos + nbytes > len(f.data):
            have = (len(f.data) - pos) // (width * dtype.itemsize)
            raise f.error(f"truncated binary {what}: the header says {count} items but the file ends after {have}", pos)
        arr = np.frombuffer(f.data, dtype=dtype, count=count * width, offset=pos).astype(out_dtype)
        end = pos + nbytes
        if f.data[end : end + 1] != b")":
            raise f.error(
                f"binary {what} of {count} items is not followed by ')' (the size does not match the data,"
                " or the file is not in the declared format)",
                end,
            )
        end += 1
    else:
        end = _match_close(f, pos - 1)
        buf = _text(f, pos, end)
        arr = _ascii_numbers(f, buf, pos, end, integer, width)
        if len(arr) != count * width:
            got = len(arr) / width
            raise f.error(
                f"the {what} says {count} items but holds {got:g}"
                + (" numbers" if width == 1 else f" (counting {width} numbers per item)"),
                pos,
            )
        _check_items(f, buf, pos, end, kind)
        end += 1
    _check_count(f, pos, what, count, limit, uniform=False)
    return (arr.reshape(count, width) if width > 1 else arr), end


def _unsized_list(f: FoamFile, open_pos: int, kind: str, limit: Limit | None) -> tuple[np.ndarray, int]:
    """``( ... )`` without a size: text in any file, its size is what it holds."""
    what = f"{kind} list"
    width = LIST_KINDS[kind]
    end = _match_close(f, open_pos)
    buf = _text(f, open_pos + 1, end)
    arr = _ascii_numbers(f, buf, open_pos + 1, end, kind == "label", width)
    _check_items(f, buf, open_pos + 1, end, kind)  # after it, every item holds ``width`` numbers
    count = len(arr) // width
    _check_count(f, open_pos, what, count, limit, uniform=False)
    return (arr.reshape(count, width) if width > 1 else arr), end + 1


def _check_items(f: FoamFile, buf: np.ndarray, start: int, end: int, kind: str) -> None:
    """Labels and scalars are bare numbers; vectors, tensors and sphericalTensors are
    ``(a b c)`` with exactly their number of components: what the brackets say must agree
    with the count, not just the total of numbers."""
    grouped = kind not in ("label", "scalar")
    bad = _first_bad_item(buf, start, end, LIST_KINDS[kind], grouped)
    if bad >= 0:
        if grouped:
            raise f.error(f"an item of the {kind} list is not ({LIST_KINDS[kind]} numbers) in brackets", bad)
        raise f.error(f"unexpected {chr(buf[bad])!r} inside a {kind} list (its items are plain numbers)", bad)


def read_face_list(f: FoamFile, pos: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A ``faceList`` (``N( n(a b c ...) ...)``, ASCII or binary, sizes optional in text) or a
    ``faceCompactList`` (two label lists).

    Returns (offsets (F+1,), point labels, end position), both int64.
    """
    if f.cls == "faceCompactList":
        # Written out, a label takes at least two bytes (ASCII) or four (binary), so neither list
        # can hold more items than the file has bytes; only a uniform list could claim more.
        room = (len(f.data), f"the file has only {len(f.data)} bytes")
        offsets, pos = read_list(f, pos, "label", room)
        labels, pos = read_list(f, pos, "label", room)
        if len(offsets) == 0:
            return np.zeros(1, np.int64), labels, pos
        if offsets[0] != 0 or offsets[-1] != len(labels) or np.any(np.diff(offsets) < 0):
            raise f.error(
                f"faceCompactList offsets do not describe its {len(labels)} point labels "
                f"(first {offsets[0]}, last {offsets[-1]}, or decreasing)"
            )
        return offsets, labels, pos
    count, pos = _read_count(f, pos, "face list")
    if count is None:
        open_pos = pos
    else:
        opener, pos = _opener(f, pos, "face list", count)
        if opener == "{":
            raise f.error("a uniform face list is not a mesh", pos)
        if opener == "":
            return np.zeros(1, np.int64), np.zeros(0, np.int64), pos
        if f.binary:
            return _binary_faces(f, pos, count)
        open_pos = pos - 1
    end = _match_close(f, open_pos)
    start = open_pos + 1
    buf = _text(f, start, end)
    numbers = _count_tokens(buf, start, end)
    if count is not None and count * 3 > numbers:  # each face lists at least 3 labels; checked before allocating
        raise f.error(
            f"the face list says {count} faces but holds {numbers} numbers (a face needs at least 3 point labels)",
            start,
        )
    # Each face has its '(': one more than those leaves room for the parser to meet (and name)
    # a malformed face, not just "more data".
    most = count if count is not None else _count_byte(buf, start, end, 40) + 1
    offsets = np.empty(most + 1, np.int64)
    labels = np.empty(numbers, np.int64)
    n_faces, n_labels, status, where = _parse_faces(buf, start, end, offsets, labels)
    said = "" if count is None else f"the face list says {count} faces; "
    if status == 1:
        raise f.error(f"{said}more data follows face {n_faces - 1}", where)
    if status == 2:
        raise f.error(f"{said}face {n_faces} is malformed (expected its size and point labels, n(a b c ...))", where)
    if status == 3:
        raise f.error(f"{said}face {n_faces} does not hold the number of point labels its size states", where)
    if count is not None and n_faces != count:
        raise f.error(f"the face list says {count} faces but holds {n_faces}", start)
    return offsets[: n_faces + 1], labels[:n_labels], end + 1


def _binary_faces(f: FoamFile, pos: int, count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A binary ``faceList`` (older OpenFOAM writes faces so): ``N(`` then ``n(raw labels)``
    per face, then ``)``."""
    size = f.label_dtype.itemsize
    room = (len(f.data) - pos) // (3 * size + 3)  # the smallest face: "3(" + 3 labels + ")"
    if count > room:
        raise f.error(f"the binary face list says {count} faces, but the rest of the file holds at most {room}", pos)
    buf = np.frombuffer(f.data, dtype=np.uint8)
    sizes = np.empty(count, np.int64)
    starts = np.empty(count, np.int64)
    status, where = _scan_binary_faces(buf, pos, size, sizes, starts)
    if status == 1:
        raise f.error(f"binary face {where[0]} is malformed (expected its size and '(')", where[1])
    if status == 2:
        raise f.error(f"binary face {where[0]} is truncated or not followed by ')'", where[1])
    if status == 3:
        raise f.error(f"the binary face list of {count} faces is not followed by ')'", where[1])
    offsets = np.zeros(count + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    raw = np.empty(int(offsets[-1]) * size, np.uint8)
    _gather(buf, starts, starts + sizes * size, offsets * size, raw)
    return offsets, np.frombuffer(raw.tobytes(), dtype=f.label_dtype).astype(np.int64), where[1]


@njit(cache=True, nogil=True)
def _skip_ws(buf, i):
    while i < buf.shape[0] and _is_ws(buf[i]):
        i += 1
    return i


@njit(cache=True, nogil=True)
def _is_ws(c):
    return c == 32 or c == 9 or c == 10 or c == 13 or c == 12 or c == 11


@njit(cache=True, nogil=True)
def _scan_binary_faces(buf, pos, size, sizes, starts):
    """Walk ``n(raw)`` items: (status, (face, position)); status 0 with the position after ')'."""
    n_bytes = buf.shape[0]
    i = pos
    for face in range(sizes.shape[0]):
        i = _skip_ws(buf, i)
        n = 0
        digits = 0
        while i < n_bytes and buf[i] >= 48 and buf[i] <= 57 and digits < 19:
            n = n * 10 + (buf[i] - 48)
            digits += 1
            i += 1
        i = _skip_ws(buf, i)
        if digits == 0 or digits > 18 or i >= n_bytes or buf[i] != 40:
            return 1, (face, i)
        i += 1
        if n > (n_bytes - i) // size:
            return 2, (face, i)
        sizes[face] = n
        starts[face] = i
        i += n * size
        if i >= n_bytes or buf[i] != 41:
            return 2, (face, i)
        i += 1
    i = _skip_ws(buf, i)
    if i >= n_bytes or buf[i] != 41:
        return 3, (sizes.shape[0], i)
    return 0, (sizes.shape[0], i + 1)


@njit(cache=True, nogil=True)
def _parse_faces(buf, start, end, offsets, labels):
    """Faces ``n(a b c)`` or ``(a b c)`` in buf[start:end] into CSR.

    Returns (faces, labels, status, position): status 0 done, 1 more faces than ``offsets``
    has room for, 2 a malformed face, 3 a face whose size does not match its labels.
    """
    most = offsets.shape[0] - 1
    offsets[0] = 0
    face = 0
    k = 0
    i = start
    while True:
        while i < end and _is_ws(buf[i]):
            i += 1
        if i >= end:
            return face, k, 0, -1
        if face >= most:
            return face, k, 1, i
        item = i
        stated = -1
        if buf[i] >= 48 and buf[i] <= 57:
            stated = 0
            digits = 0
            while i < end and buf[i] >= 48 and buf[i] <= 57 and digits < 19:
                stated = stated * 10 + (buf[i] - 48)
                digits += 1
                i += 1
            if digits > 18:
                return face, k, 2, item
            while i < end and _is_ws(buf[i]):
                i += 1
        if i >= end or buf[i] != 40:
            return face, k, 2, item
        i += 1
        m = 0
        while True:
            while i < end and _is_ws(buf[i]):
                i += 1
            if i >= end:
                return face, k, 2, item
            c = buf[i]
            if c == 41:
                i += 1
                break
            neg = c == 45
            if c == 45 or c == 43:
                i += 1
            v = 0
            digits = 0
            while i < end and buf[i] >= 48 and buf[i] <= 57 and digits < 19:
                v = v * 10 + (buf[i] - 48)
                digits += 1
                i += 1
            if digits == 0 or digits > 18 or (i < end and not _is_sep(buf[i])) or k >= labels.shape[0]:
                return face, k, 2, item
            labels[k] = -v if neg else v
            k += 1
            m += 1
        if stated >= 0 and stated != m:
            return face, k, 3, item
        face += 1
        offsets[face] = k


@njit(cache=True, nogil=True)
def _count_byte(buf, start, end, byte):
    n = 0
    for i in range(start, end):
        if buf[i] == byte:
            n += 1
    return n


@njit(cache=True, nogil=True)
def _first_bad_item(buf, start, end, width, grouped):
    """Position of the first item that is not ``width`` numbers in brackets (``grouped``) or
    not a bare number; -1 if all are."""
    i = start
    while i < end:
        c = buf[i]
        if c == 40:
            if not grouped:
                return i
            j = i + 1
            n = 0
            inside = False
            while j < end and buf[j] != 41:
                if buf[j] == 40:
                    return j
                sep = _is_sep(buf[j])
                if not sep and not inside:
                    n += 1
                inside = not sep
                j += 1
            if j >= end or n != width:
                return i
            i = j + 1
        elif c == 41:
            return i
        elif _is_sep(c):
            i += 1
        else:
            if grouped:
                return i
            while i < end and not _is_sep(buf[i]):
                i += 1
    return -1


def _match_close(f: FoamFile, open_pos: int) -> int:
    """Position of the ')' that closes the '(' at ``open_pos`` (brackets in comments do not count)."""
    buf = np.frombuffer(f.data, dtype=np.uint8)
    end = _match_paren(buf, open_pos)
    if end < 0:
        raise f.error("unterminated list: no closing ')' (the file is truncated?)", open_pos)
    return end


@njit(cache=True, nogil=True)
def _match_paren(buf, start):
    depth = 0
    n = buf.shape[0]
    i = start
    while i < n:
        c = buf[i]
        if c == 40:  # (
            depth += 1
        elif c == 41:  # )
            depth -= 1
            if depth == 0:
                return i
        elif c == 47 and i + 1 < n and buf[i + 1] == 47:  # // to the end of the line
            while i < n and buf[i] != 10:
                i += 1
        elif c == 47 and i + 1 < n and buf[i + 1] == 42:  # /* to */
            i += 2
            while i + 1 < n and not (buf[i] == 42 and buf[i + 1] == 47):
                i += 1
            if i + 1 >= n:
                return -1
            i += 1
        i += 1
    return -1


def _text(f: FoamFile, start: int, end: int) -> np.ndarray:
    """The file's bytes for scanning data[start:end], with any comments in that range blanked
    (a copy, made only where a '/' occurs; positions are kept, so messages still point into
    the file)."""
    buf = np.frombuffer(f.data, dtype=np.uint8)
    if f.data.find(b"/", start, end) < 0:
        return buf
    buf = buf.copy()
    bad = _blank_comments(buf, start, end)
    if bad >= 0:
        raise f.error("unterminated /* comment", bad)
    return buf


@njit(cache=True, nogil=True)
def _blank_comments(buf, start, end):
    i = start
    while i + 1 < end:
        if buf[i] == 47 and buf[i + 1] == 47:
            while i < end and buf[i] != 10:
                buf[i] = 32
                i += 1
        elif buf[i] == 47 and buf[i + 1] == 42:
            j = i + 2
            while j + 1 < end and not (buf[j] == 42 and buf[j + 1] == 47):
                j += 1
            if j + 1 >= end:
                return i
            for k in range(i, j + 2):
                buf[k] = 32
            i = j + 2
        else:
            i += 1
    return -1


def _ascii_numbers(f: FoamFile, buf: np.ndarray, start: int, end: int, integer: bool, width: int) -> np.ndarray:
    """Every number in buf[start:end] (brackets count as separators)."""
    cap = _count_tokens(buf, start, end)
    if integer:
        out = np.empty(cap, np.int64)
        n, bad = _scan_ints(buf, start, end, out)
        if bad >= 0:
            raise f.error(f"expected an integer, found {_token_at(f.data, bad)!r}", bad)
        return out[:n]
    out = np.empty(cap, np.float64)
    slow = np.empty(cap, np.int64)
    n, n_slow = _scan_floats(buf, start, end, out, slow)
    if n_slow:
        _slow_floats(f, buf, start, end, out, slow[:n_slow])
    return out[:n]


def _slow_floats(f: FoamFile, buf: np.ndarray, start: int, end: int, out: np.ndarray, slow: np.ndarray) -> None:
    """Tokens outside the exact fast path (17-digit mantissas, large exponents, nan/inf):
    Arrow's correctly rounded string-to-double cast, all at once, so that an ASCII and a
    binary copy of a mesh read the same doubles; a token it rejects is reported."""
    import pyarrow as pa

    starts = np.empty(len(slow), np.int64)
    ends = np.empty(len(slow), np.int64)
    _token_bounds(buf, start, end, slow, starts, ends)
    lengths = ends - starts
    offsets = np.zeros(len(slow) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    text = np.empty(int(offsets[-1]), np.uint8)
    _gather(buf, starts, ends, offsets, text)
    strings = pa.Array.from_buffers(pa.large_string(), len(slow), [None, pa.py_buffer(offsets), pa.py_buffer(text)])
    try:
        out[slow] = strings.cast(pa.float64()).to_numpy()
        return
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    for j in range(len(slow)):
        token = f.data[starts[j] : ends[j]]
        try:
            out[slow[j]] = float(token)
        except ValueError:
            raise f.error(f"expected a number, found {token[:40].decode('latin-1')!r}", int(starts[j])) from None


@njit(cache=True, nogil=True)
def _count_tokens(buf, start, end):
    n = 0
    inside = False
    for i in range(start, end):
        sep = _is_sep(buf[i])
        if not sep and not inside:
            n += 1
        inside = not sep
    return n


@njit(cache=True, nogil=True)
def _gather(buf, starts, ends, offsets, text):
    for j in range(starts.shape[0]):
        o = offsets[j]
        for i in range(starts[j], ends[j]):
            text[o] = buf[i]
            o += 1


def _token_at(data: bytes, pos: int) -> str:
    m = re.match(rb"[^\s()\[\]{};]*", data[pos : pos + 60])
    text = m.group(0) if m and m.group(0) else data[pos : pos + 1]
    return text[:40].decode("latin-1")


@njit(cache=True, nogil=True)
def _is_sep(c):
    return c == 32 or c == 9 or c == 10 or c == 13 or c == 12 or c == 11 or c == 40 or c == 41


@njit(cache=True, nogil=True)
def _scan_ints(buf, start, end, out):
    """Signed decimal integers separated by whitespace or brackets; (count, bad position or -1)."""
    n = 0
    i = start
    while i < end:
        c = buf[i]
        if _is_sep(c):
            i += 1
            continue
        tok = i
        neg = False
        if c == 45 or c == 43:
            neg = c == 45
            i += 1
        v = 0
        digits = 0
        while i < end and buf[i] >= 48 and buf[i] <= 57:
            v = v * 10 + (buf[i] - 48)
            digits += 1
            i += 1
        if digits == 0 or digits > 18 or (i < end and not _is_sep(buf[i])):
            return n, tok
        out[n] = -v if neg else v
        n += 1
    return n, -1


_POW10 = np.array([10.0**k for k in range(23)])


@njit(cache=True, nogil=True)
def _scan_floats(buf, start, end, out, slow):
    """Decimal numbers; exact (Clinger's fast path) where the mantissa fits 53 bits and the
    power of ten is at most 22, else marked in ``slow`` (anything not a plain decimal
    number too: the slow path says what is wrong with it). Returns (count, slow count)."""
    pow10 = _POW10
    n = 0
    n_slow = 0
    i = start
    while i < end:
        c = buf[i]
        if _is_sep(c):
            i += 1
            continue
        neg = False
        if c == 45 or c == 43:
            neg = c == 45
            i += 1
        mant = 0
        digits = 0
        exp10 = 0
        seen = 0
        while i < end and buf[i] >= 48 and buf[i] <= 57:
            if digits < 19:
                mant = mant * 10 + (buf[i] - 48)
                if mant != 0:
                    digits += 1
            else:
                exp10 += 1
            seen += 1
            i += 1
        if i < end and buf[i] == 46:  # .
            i += 1
            while i < end and buf[i] >= 48 and buf[i] <= 57:
                if digits < 19:
                    mant = mant * 10 + (buf[i] - 48)
                    if mant != 0:
                        digits += 1
                    exp10 -= 1
                seen += 1
                i += 1
        ok = seen > 0
        if ok and i < end and (buf[i] == 101 or buf[i] == 69):  # e E
            i += 1
            eneg = False
            if i < end and (buf[i] == 45 or buf[i] == 43):
                eneg = buf[i] == 45
                i += 1
            e = 0
            edigits = 0
            while i < end and buf[i] >= 48 and buf[i] <= 57:
                if e < 100000:
                    e = e * 10 + (buf[i] - 48)
                edigits += 1
                i += 1
            if edigits == 0:
                ok = False
            exp10 += -e if eneg else e
        if not ok or (i < end and not _is_sep(buf[i])):
            # nan, inf and other words: let float() decide (or fail) on the slow path
            while i < end and not _is_sep(buf[i]):
                i += 1
            slow[n_slow] = n
            n_slow += 1
            out[n] = 0.0
            n += 1
            continue
        if mant == 0:
            out[n] = -0.0 if neg else 0.0
        elif mant < 9007199254740992 and -22 <= exp10 <= 22:
            v = float(mant)
            if exp10 >= 0:
                v = v * pow10[exp10]
            else:
                v = v / pow10[-exp10]
            out[n] = -v if neg else v
        else:
            slow[n_slow] = n
            n_slow += 1
            out[n] = 0.0
        n += 1
    return n, n_slow


@njit(cache=True, nogil=True)
def _token_bounds(buf, start, end, wanted, starts, ends):
    """Start and end of the tokens numbered ``wanted`` (sorted) in data[start:end]."""
    n = 0
    w = 0
    i = start
    while i < end and w < wanted.shape[0]:
        if _is_sep(buf[i]):
            i += 1
            continue
        tok = i
        while i < end and not _is_sep(buf[i]):
            i += 1
        if n == wanted[w]:
            starts[w] = tok
            ends[w] = i
            w += 1
        n += 1
