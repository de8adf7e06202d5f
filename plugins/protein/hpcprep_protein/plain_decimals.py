"""Which of many values are plain decimals, tested all at once.

A plain decimal is what ``PATTERN`` matches: spaces, an optional sign, digits with at most one point and a digit
on at least one side of it, spaces (``12.345``, ``-0.5``, ``.5``, ``5.``). Such a value is a finite number that fits
float32 as long as it is short (a PDB field holds 8 characters), which is what nearly every coordinate in a
structure file is, so :mod:`.integrity` tests every value of a file this way and gives only the others its full
check, one by one.

The values come as rows of character codes (:func:`codes` for a list of strings; the PDB check cuts its fixed
columns out of the lines itself), 0 past a value's end read as a space, and the test is a small automaton run
down the columns of all rows together.
"""

from __future__ import annotations

import re

import numpy as np

#: What the automaton accepts, as a regular expression (the tests check the two agree on every short string).
PATTERN = re.compile(r" *[+-]?(?:\d+\.?\d*|\.\d+) *")

#: Strings longer than this are never taken as plain decimals (they get the full check).
WIDTH = 24

SPACE, DIGIT, SIGN, POINT, OTHER = range(5)
"""The character classes the pattern tells apart; 0 (past a value's end) is a space."""

CHAR_CLASS = np.full(256, OTHER, dtype=np.int8)
CHAR_CLASS[[0, ord(" ")]] = SPACE
CHAR_CLASS[ord("0") : ord("9") + 1] = DIGIT
CHAR_CLASS[[ord("+"), ord("-")]] = SIGN
CHAR_CLASS[ord(".")] = POINT


def plain(codes: np.ndarray) -> np.ndarray:
    """Whether each row of character codes (the last axis) is a plain decimal."""
    state = np.zeros(codes.shape[:-1], dtype=np.uint8)
    # One character position at a time over all rows: each a contiguous row of the transposed codes.
    for column in np.ascontiguousarray(np.moveaxis(codes, -1, 0)):
        state = _STEP[state, CHAR_CLASS[column]]
    return _ACCEPT[state]


def blank(codes: np.ndarray) -> np.ndarray:
    """Whether each row of character codes holds nothing but spaces (and padding)."""
    return (CHAR_CLASS[codes] == SPACE).all(axis=-1)


# States: 0 leading spaces, 1 sign, 2 digits, 3 digits and a point, 4 digits after that point, 5 a point with no
# digit before it, 6 digits after that point, 7 trailing spaces, 8 not a plain decimal.
_STEP = np.full((9, 5), 8, dtype=np.uint8)
for _state, _moves in {
    0: {SPACE: 0, DIGIT: 2, SIGN: 1, POINT: 5},
    1: {DIGIT: 2, POINT: 5},
    2: {DIGIT: 2, POINT: 3, SPACE: 7},
    3: {DIGIT: 4, SPACE: 7},
    4: {DIGIT: 4, SPACE: 7},
    5: {DIGIT: 6},
    6: {DIGIT: 6, SPACE: 7},
    7: {SPACE: 7},
}.items():
    for _cls, _next in _moves.items():
        _STEP[_state, _cls] = _next
_ACCEPT = np.zeros(9, dtype=bool)
_ACCEPT[[2, 3, 4, 6, 7]] = True


def codes(values: list[str], rows: np.ndarray) -> np.ndarray:
    """``values[rows]`` as ASCII codes, one row each, padded with 0 to the longest (at most ``WIDTH``); a value
    longer than ``WIDTH`` is replaced by one that is not a number. (A NUL inside a value would read as padding:
    callers whose text may hold one check it apart.)"""
    picked = values if len(rows) == len(values) else [values[r] for r in rows]
    lengths = np.fromiter(map(len, picked), dtype=np.int64, count=len(picked))
    width = int(min(lengths.max(initial=1), WIDTH))  # the automaton takes one step per character position
    try:
        tokens = np.array(picked, dtype=f"S{width}")
    except UnicodeEncodeError:  # a backslash escape keeps non-ASCII text apart from '?', '.' and digits
        tokens = np.array([v.encode("ascii", "backslashreplace") for v in picked], dtype=f"S{width}")
    out = tokens.view(np.uint8).reshape(len(picked), width)
    out[lengths > width] = ord("x")
    return out


def equals(codes: np.ndarray, text: str) -> np.ndarray:
    """Which rows of :func:`codes` hold exactly ``text``."""
    padded = np.zeros(codes.shape[1], dtype=np.uint8)
    padded[: len(text)] = np.frombuffer(text.encode(), dtype=np.uint8)
    return (codes == padded).all(axis=1)
