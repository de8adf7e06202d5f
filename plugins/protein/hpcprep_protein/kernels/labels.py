"""Secondary-structure label conversions."""

from __future__ import annotations

_Q8_TO_Q3 = str.maketrans({"H": "H", "G": "H", "I": "H", "E": "E", "B": "E"})


def q8_to_q3(ss8: str) -> str:
    """Reduce DSSP 8-state labels to 3 states: H, G, I -> H; E, B -> E; everything else (T, S, P, '-', ' ', C,
    unknown letters) -> C. Lowercase letters are not DSSP states and map to C."""
    return "".join(ch if ch in "HE" else "C" for ch in ss8.translate(_Q8_TO_Q3))
