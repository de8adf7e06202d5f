"""OpenFOAM files: the FoamFile header, dictionary entries and (large) lists, ASCII or binary.

A file is read whole into memory (gunzipped when it is gzip data), then parsed from byte
offsets. Small things (the header, the boundary file, a field's boundaryField) go
through a plain tokenizer; large lists of labels, scalars, vectors and faces go through
NumPy (binary) or Numba (ASCII), so a million-cell mesh parses in well under a second
in binary.

Binary lists are ``N(`` + raw bytes + ``)``, with label and scalar widths and byte
order from the header's ``arch "LSB;label=32;scalar=64"`` (32-bit labels and 64-bit
scalars when it is absent). A uniform list may be written ``N{value}``.

Every problem raises ``FoamFileError`` whose message names the file and the byte offset.
A list never makes more items than its caller allows (``limit``): a uniform list
``N{v}`` costs a few bytes for any ``N``, so a hostile or damaged size must be refused
before it is expanded, not after the allocation fails.

One module because the header, the dictionary tokenizer and the list parsers share one
position in one buffer and one error type that names file and offset: a list parser is
called from inside a dictionary entry, and the header decides how lists are read.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from dataclasses import dataclass

import numpy as np
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
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FoamFileError(f"{path}: damaged or truncated gzip data: {exc}") from None
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
                kind = {"scalar": "scalar", "vector": "vector", "label": "label"}.get(tok[5:-1])
                if kind is None:
                    raise self.f.error(f"unsupported list type {tok!r} (scalar, vector or label)", pos)
                arr, self.pos = read_list(self.f, self.pos, kind, self.limit)
                tokens.append(arr)
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


def _read_count(f: FoamFile, pos: int, what: str) -> tuple[int, int]:
    tok = Tokenizer(f, pos)
    start = tok.skip()
    word = tok.next()
    if word is None:
        raise f.error(f"unexpected end of file: expected the size of the {what}", start)
    if not is_int(word):
        raise f.error(f"expected the size of the {what} (an integer), found {word[:40]!r}", start)
    return int(word), tok.pos


def _opener(f: FoamFile, pos: int, what: str) -> tuple[str, int]:
    tok = Tokenizer(f, pos)
    start = tok.skip()
    c = tok.next()
    if c not in ("(", "{"):
        raise f.error(f"expected '(' after the size of the {what}, found {str(c)[:40]!r}", start)
    return c, tok.pos


def _item(f: FoamFile, kind: str) -> tuple[np.dtype, int]:
    """dtype of one number and numbers per item for a list ``kind``."""
    if kind == "label":
        return f.label_dtype, 1
    if kind == "scalar":
        return f.scalar_dtype, 1
    if kind == "vector":
        return f.scalar_dtype, 3
    raise ValueError(f"unknown list kind {kind!r}")


def _check_count(f: FoamFile, pos: int, what: str, count: int, limit: Limit | None, uniform: bool) -> None:
    if limit is not None and count > limit[0]:
        raise f.error(f"the {what} says {count} items, but {limit[1]}", pos)
    if uniform and limit is None and count > UNIFORM_LIMIT:
        raise f.error(
            f"a uniform {what} of {count} items: more than {UNIFORM_LIMIT} where the mesh size does not bound it",
            pos,
        )


def read_list(f: FoamFile, pos: int, kind: str, limit: Limit | None = None) -> tuple[np.ndarray, int]:
    """The list of ``kind`` (label, scalar, vector) starting at ``pos`` (its size).

    Returns (array, position after the closing bracket): int64 (N,) for labels,
    float64 (N,) for scalars, float64 (N, 3) for vectors. A list of more than
    ``limit[0]`` items is an error that gives ``limit[1]`` as the reason.
    """
    what = f"{kind} list"
    count, pos = _read_count(f, pos, what)
    opener, pos = _opener(f, pos, what)
    if opener == "{":  # checked before expanding; a list written out is checked against its contents first
        _check_count(f, pos, what, count, limit, uniform=True)
    dtype, width = _item(f, kind)
    out_dtype = np.int64 if kind == "label" else np.float64
    if opener == "{":
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
            value = _ascii_numbers(f, pos, close, kind == "label", width)
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
        arr = _ascii_numbers(f, pos, end, kind == "label", width)
        if len(arr) != count * width:
            got = len(arr) / width
            raise f.error(
                f"the {what} says {count} items but holds {got:g}"
                + (" numbers" if width == 1 else f" (counting {width} numbers per item)"),
                pos,
            )
        end += 1
    _check_count(f, pos, what, count, limit, uniform=False)
    return (arr.reshape(count, width) if width > 1 else arr), end


def read_face_list(f: FoamFile, pos: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A ``faceList`` (``N( n(a b c ...) ...)``, ASCII) or a ``faceCompactList`` (two label lists).

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
    opener, pos = _opener(f, pos, "face list")
    if opener != "(":
        raise f.error("a uniform face list is not a mesh", pos)
    if f.binary:
        raise f.error("binary faceList is not supported; OpenFOAM writes binary faces as faceCompactList", pos)
    end = _match_close(f, pos - 1)
    stream = _ascii_numbers(f, pos, end, True, 1)
    if count * 4 > len(stream):  # each face is n and at least 3 labels; checked before allocating
        raise f.error(
            f"the face list says {count} faces but holds {len(stream)} numbers (a face needs at least 4: "
            "its size and 3 point labels)",
            pos,
        )
    offsets = np.empty(count + 1, np.int64)
    labels = np.empty(max(len(stream) - count, 0), np.int64)
    used, bad = _faces_from_stream(stream, offsets, labels)
    if bad >= 0 or used != len(stream):
        done = bad if bad >= 0 else count
        raise f.error(
            f"the face list says {count} faces but its contents do not match (face {done} "
            f"{'is malformed' if bad >= 0 else 'is followed by more data'})",
            pos,
        )
    return offsets, labels, end + 1


@njit(cache=True, nogil=True)
def _faces_from_stream(stream, offsets, labels):
    """Split ``n a b c n a b ...`` into CSR; returns (numbers used, first bad face or -1)."""
    count = offsets.shape[0] - 1
    i = 0
    k = 0
    offsets[0] = 0
    for face in range(count):
        if i >= stream.shape[0]:
            return i, face
        n = stream[i]
        i += 1
        if n < 3 or i + n > stream.shape[0] or k + n > labels.shape[0]:
            return i, face
        for j in range(n):
            labels[k + j] = stream[i + j]
        i += n
        k += n
        offsets[face + 1] = k
    return i, -1


def _match_close(f: FoamFile, open_pos: int) -> int:
    """Position of the ')' that closes the '(' at ``open_pos``."""
    buf = np.frombuffer(f.data, dtype=np.uint8)
    end = _match_paren(buf, open_pos)
    if end < 0:
        raise f.error("unterminated list: no closing ')' (the file is truncated?)", open_pos)
    return end


@njit(cache=True, nogil=True)
def _match_paren(buf, start):
    depth = 0
    for i in range(start, buf.shape[0]):
        c = buf[i]
        if c == 40:  # (
            depth += 1
        elif c == 41:  # )
            depth -= 1
            if depth == 0:
                return i
    return -1


def _ascii_numbers(f: FoamFile, start: int, end: int, integer: bool, width: int) -> np.ndarray:
    """Every number in data[start:end] (brackets count as separators)."""
    buf = np.frombuffer(f.data, dtype=np.uint8)
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
