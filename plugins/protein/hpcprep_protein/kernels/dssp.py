"""DSSP secondary-structure assignment (Kabsch & Sander 1983), following mkdssp 4.x.

``assign_secondary_structure(n, ca, c, o)`` takes a backbone in residue order and returns one letter per residue:
H (alpha helix), G (3-10 helix), I (pi helix), E (strand), B (isolated bridge), T (turn), S (bend),
P (polyproline II), '-' (coil). mkdssp assigns a whole model at once, so that H-bonds and sheets between chains
count; :func:`assign_model_secondary_structure` does that for a model's chains and hands back each chain's states.

What it does, step by step, as mkdssp 4.2 does:

1. Chain breaks: residue ``i`` starts a new segment when C(i-1)-N(i) > 2.5 Angstrom (or per the ``breaks``
   argument). Nothing (H-bond donor hydrogen, turn, bridge, helix, bend) is defined across a break.
2. Amide hydrogen: ``H = N + (C_prev - O_prev) / |C_prev - O_prev|``; none for a segment's first residue and for
   proline (no donor).
3. Candidate pairs: CA-CA < 9 Angstrom, found with a uniform grid (O(L log L)).
   Energy ``E = 0.084 * 332 * (1/r_ON + 1/r_CH - 1/r_OH - 1/r_CN)`` kcal/mol, rounded to 3 decimals and
   clamped at -9.9 (also -9.9 when any of the four distances is < 0.5 Angstrom). For a pair ``i < j`` both
   directions are evaluated except donor ``i+1`` -> acceptor ``i`` (as mkdssp). Each residue keeps its two
   lowest-energy acceptors; "NH(a) -> O(b) H-bond" means ``b`` is one of ``a``'s two best acceptors with
   ``E < -0.5``.
4. Bridges (parallel / antiparallel, mkdssp's patterns), ladders (consecutive bridges), ladders joined across
   beta bulges (gap < 6 on one strand and < 3 on the other); E for residues of ladders with more than one
   bridge (bulge residues included), B for isolated bridges.
5. n-turns (n = 3, 4, 5) with start/middle/end flags; H where two consecutive 4-turns start (overwrites E/B);
   G where two consecutive 3-turns start and all its residues are still coil or G; I where two consecutive
   5-turns start and all its residues are coil, I or H (mkdssp 4's "prefer pi helices" default, so I can
   overwrite H); T for remaining coil residues inside an n-turn; S for remaining coil with
   kappa(CA i-2, i, i+2) > 70 degrees.
6. Polyproline II (mkdssp 4.x, ``--min-pp-stretch``, default 3): P on residues still coil in a run of 3 (or 2)
   consecutive residues whose phi and psi are both within 29 degrees of (-75, 145).

Differences from mkdssp's output:

- Given one chain, H-bonds to other chains (inter-chain sheets) are not seen, and an acceptor on another chain
  cannot displace an intra-chain one from a residue's best two: pass the whole model for mkdssp's answer.
- Residues mkdssp reads but that the caller drops (non-standard residues, incomplete backbone) become breaks
  here; mkdssp drops residues with incomplete backbone too, so those agree.

One module because the steps above are one pipeline over the same per-residue arrays, each
step reading what the one before wrote, in mkdssp's order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .geometry import MAX_PEPTIDE_BOND, _as_coords, _breaks_arg, _dihedral, _pairs_within, chain_breaks

COUPLING = -27.888  # -0.084 * 332 (mkdssp's kCouplingConstant)
MIN_HBOND_ENERGY = -9.9
MAX_HBOND_ENERGY = -0.5
MIN_DISTANCE = 0.5
MAX_CA_DISTANCE = 9.0

# Polyproline II: phi and psi both within 29 degrees of (-75, 145) on a stretch of residues (mkdssp 4.x).
PP_PHI = -75.0
PP_PSI = 145.0
PP_EPSILON = 29.0
#: mkdssp 4.x's default --min-pp-stretch; 0 turns polyproline II off.
DEFAULT_PP_STRETCH = 3

# state codes
LOOP, ALPHA, BRIDGE, STRAND, HELIX3, HELIX5, TURN, BEND, PPII = 0, 1, 2, 3, 4, 5, 6, 7, 8
_LETTERS = np.frombuffer(b"-HBEGITSP", dtype=np.uint8)
# helix flags
F_NONE, F_START, F_END, F_STARTEND, F_MIDDLE = 0, 1, 2, 3, 4

__all__ = [
    "DEFAULT_PP_STRETCH",
    "MAX_PEPTIDE_BOND",
    "assign_model_secondary_structure",
    "assign_secondary_structure",
    "assign_secondary_structure_codes",
]


@njit(cache=True, nogil=True)
def _dist(a, i, b, j):
    dx = a[i, 0] - b[j, 0]
    dy = a[i, 1] - b[j, 1]
    dz = a[i, 2] - b[j, 2]
    return math.sqrt(dx * dx + dy * dy + dz * dz)


@njit(cache=True, nogil=True)
def _round3(x):
    # std::round: half away from zero
    if x >= 0.0:
        return math.floor(x * 1000.0 + 0.5) / 1000.0
    return -math.floor(-x * 1000.0 + 0.5) / 1000.0


@njit(cache=True, nogil=True)
def _hbond(d, a, n, c, o, h, has_h, acc_i, acc_e):
    """mkdssp CalculateHBondEnergy(donor d, acceptor a): updates d's two best acceptors."""
    if not has_h[d]:
        return
    dho = _dist(h, d, o, a)
    dhc = _dist(h, d, c, a)
    dnc = _dist(n, d, c, a)
    dno = _dist(n, d, o, a)
    if dho < MIN_DISTANCE or dhc < MIN_DISTANCE or dnc < MIN_DISTANCE or dno < MIN_DISTANCE:
        e = MIN_HBOND_ENERGY
    else:
        e = COUPLING / dho - COUPLING / dhc + COUPLING / dnc - COUPLING / dno
    e = _round3(e)
    if e < MIN_HBOND_ENERGY:
        e = MIN_HBOND_ENERGY
    if e < acc_e[d, 0]:
        acc_e[d, 1] = acc_e[d, 0]
        acc_i[d, 1] = acc_i[d, 0]
        acc_e[d, 0] = e
        acc_i[d, 0] = a
    elif e < acc_e[d, 1]:
        acc_e[d, 1] = e
        acc_i[d, 1] = a


@njit(cache=True, nogil=True)
def _test_bond(a, b, acc_i, acc_e):
    """NH of residue a is H-bonded to CO of residue b."""
    return (acc_i[a, 0] == b and acc_e[a, 0] < MAX_HBOND_ENERGY) or (
        acc_i[a, 1] == b and acc_e[a, 1] < MAX_HBOND_ENERGY
    )


@njit(cache=True, nogil=True)
def _test_bridge(i, j, seg, acc_i, acc_e):
    """0 none, 1 parallel, 2 antiparallel (mkdssp TestBridge); requires 1 <= i, j <= L-2."""
    a, b, c = i - 1, i, i + 1
    d, e, f = j - 1, j, j + 1
    if seg[a] != seg[c] or seg[d] != seg[f]:
        return 0
    if (_test_bond(c, e, acc_i, acc_e) and _test_bond(e, a, acc_i, acc_e)) or (
        _test_bond(f, b, acc_i, acc_e) and _test_bond(b, d, acc_i, acc_e)
    ):
        return 1
    if (_test_bond(c, d, acc_i, acc_e) and _test_bond(f, a, acc_i, acc_e)) or (
        _test_bond(e, b, acc_i, acc_e) and _test_bond(b, e, acc_i, acc_e)
    ):
        return 2
    return 0


@njit(cache=True, nogil=True)
def _dssp(n, ca, c, o, brk, pro, pp_stretch):
    L = n.shape[0]
    ss = np.zeros(L, dtype=np.uint8)
    if L == 0:
        return ss
    # segments
    seg = np.empty(L, dtype=np.int64)
    s = -1
    for i in range(L):
        if i == 0 or brk[i]:
            s += 1
        seg[i] = s
    # hydrogens
    h = n.copy()
    has_h = np.zeros(L, dtype=np.bool_)
    for i in range(1, L):
        if seg[i] == seg[i - 1] and not pro[i]:
            co = _dist(c, i - 1, o, i - 1)
            if co > 0.0:
                for k in range(3):
                    h[i, k] = n[i, k] + (c[i - 1, k] - o[i - 1, k]) / co
                has_h[i] = True
    # H-bond energies over CA-CA < 9 pairs
    acc_i = np.full((L, 2), -1, dtype=np.int64)
    acc_e = np.zeros((L, 2), dtype=np.float64)
    pi, pj, _ = _pairs_within(ca, MAX_CA_DISTANCE, 1, True)
    for t in range(pi.shape[0]):
        i = pi[t]
        j = pj[t]
        _hbond(i, j, n, c, o, h, has_h, acc_i, acc_e)
        if j != i + 1:
            _hbond(j, i, n, c, o, h, has_h, acc_i, acc_e)

    # ---- bridges and ladders -------------------------------------------------
    # a ladder: type, i-range [ib, ie], j-range [jb, je], number of bridges (i members)
    nb_max = pi.shape[0] + 1
    l_type = np.zeros(nb_max, dtype=np.int64)
    l_ib = np.zeros(nb_max, dtype=np.int64)
    l_ie = np.zeros(nb_max, dtype=np.int64)
    l_jb = np.zeros(nb_max, dtype=np.int64)
    l_je = np.zeros(nb_max, dtype=np.int64)
    l_cnt = np.zeros(nb_max, dtype=np.int64)
    nl = 0
    for t in range(pi.shape[0]):
        i = pi[t]
        j = pj[t]
        if i < 1 or i + 4 >= L or j < i + 3 or j + 1 >= L:
            continue
        typ = _test_bridge(i, j, seg, acc_i, acc_e)
        if typ == 0:
            continue
        found = False
        for q in range(nl):
            if l_type[q] != typ or i != l_ie[q] + 1:
                continue
            if typ == 1 and l_je[q] + 1 == j:
                l_ie[q] = i
                l_je[q] = j
                l_cnt[q] += 1
                found = True
                break
            if typ == 2 and l_jb[q] - 1 == j:
                l_ie[q] = i
                l_jb[q] = j
                l_cnt[q] += 1
                found = True
                break
        if not found:
            l_type[nl] = typ
            l_ib[nl] = i
            l_ie[nl] = i
            l_jb[nl] = j
            l_je[nl] = j
            l_cnt[nl] = 1
            nl += 1
    # sort ladders by i-begin (stable)
    order = np.argsort(l_ib[:nl], kind="mergesort")
    l_type = l_type[:nl][order].copy()
    l_ib = l_ib[:nl][order].copy()
    l_ie = l_ie[:nl][order].copy()
    l_jb = l_jb[:nl][order].copy()
    l_je = l_je[:nl][order].copy()
    l_cnt = l_cnt[:nl][order].copy()
    alive = np.ones(nl, dtype=np.bool_)
    for a in range(nl):
        if not alive[a]:
            continue
        for b in range(a + 1, nl):
            if not alive[b]:
                continue
            ibi, iei, jbi, jei = l_ib[a], l_ie[a], l_jb[a], l_je[a]
            ibj, iej, jbj, jej = l_ib[b], l_ie[b], l_jb[b], l_je[b]
            if l_type[a] != l_type[b]:
                continue
            if seg[min(ibi, ibj)] != seg[max(iei, iej)] or seg[min(jbi, jbj)] != seg[max(jei, jej)]:
                continue
            # unsigned arithmetic in mkdssp: negative differences are huge
            dij = ibj - iei
            if dij < 0 or dij >= 6 or (iei >= ibj and ibi <= iej):
                continue
            if l_type[a] == 1:
                dj = jbj - jei
            else:
                dj = jbi - jej
            bulge = dj >= 0 and ((dj < 6 and dij < 3) or dj < 3)
            if bulge:
                l_ie[a] = iej
                if l_type[a] == 1:
                    l_je[a] = jej
                else:
                    l_jb[a] = jbj
                l_cnt[a] += l_cnt[b]
                alive[b] = False
    for a in range(nl):
        if not alive[a]:
            continue
        st = STRAND if l_cnt[a] > 1 else BRIDGE
        for r in range(l_ib[a], l_ie[a] + 1):
            if ss[r] != STRAND:
                ss[r] = st
        for r in range(l_jb[a], l_je[a] + 1):
            if ss[r] != STRAND:
                ss[r] = st

    # ---- turns and helices ----------------------------------------------------
    flags = np.zeros((3, L), dtype=np.uint8)
    for si in range(3):
        stride = si + 3
        for i in range(L - stride):
            if seg[i] == seg[i + stride] and _test_bond(i + stride, i, acc_i, acc_e):
                flags[si, i + stride] = F_END
                for j in range(i + 1, i + stride):
                    if flags[si, j] == F_NONE:
                        flags[si, j] = F_MIDDLE
                if flags[si, i] == F_END:
                    flags[si, i] = F_STARTEND
                else:
                    flags[si, i] = F_START
    for i in range(1, L - 4):
        if _is_start(flags, 1, i) and _is_start(flags, 1, i - 1):
            for j in range(i, i + 4):
                ss[j] = ALPHA
    for i in range(1, L - 3):
        if _is_start(flags, 0, i) and _is_start(flags, 0, i - 1):
            empty = True
            for j in range(i, i + 3):
                if ss[j] != LOOP and ss[j] != HELIX3:
                    empty = False
            if empty:
                for j in range(i, i + 3):
                    ss[j] = HELIX3
    for i in range(1, L - 5):
        if _is_start(flags, 2, i) and _is_start(flags, 2, i - 1):
            empty = True
            for j in range(i, i + 5):
                if ss[j] != LOOP and ss[j] != HELIX5 and ss[j] != ALPHA:
                    empty = False
            if empty:
                for j in range(i, i + 5):
                    ss[j] = HELIX5
    for i in range(1, L - 1):
        if ss[i] != LOOP:
            continue
        is_turn = False
        for si in range(3):
            stride = si + 3
            for k in range(1, stride):
                if i >= k and _is_start(flags, si, i - k):
                    is_turn = True
        if is_turn:
            ss[i] = TURN
        elif i >= 2 and i + 2 < L and seg[i - 2] == seg[i + 2]:
            # kappa: angle between CA(i)-CA(i-2) and CA(i+2)-CA(i)
            ux = ca[i, 0] - ca[i - 2, 0]
            uy = ca[i, 1] - ca[i - 2, 1]
            uz = ca[i, 2] - ca[i - 2, 2]
            vx = ca[i + 2, 0] - ca[i, 0]
            vy = ca[i + 2, 1] - ca[i, 1]
            vz = ca[i + 2, 2] - ca[i, 2]
            nu = math.sqrt(ux * ux + uy * uy + uz * uz)
            nv = math.sqrt(vx * vx + vy * vy + vz * vz)
            if nu > 0.0 and nv > 0.0:
                ck = (ux * vx + uy * vy + uz * vz) / (nu * nv)
                ck = min(1.0, max(-1.0, ck))
                sk = math.sqrt(1.0 - ck * ck)
                kappa = math.degrees(math.atan2(sk, ck))
                if kappa > 70.0:
                    ss[i] = BEND
    if pp_stretch >= 2:
        _polyproline(n, ca, c, seg, ss, pp_stretch)
    return ss


@njit(cache=True, nogil=True)
def _in_pp_range(phi, psi):
    # mkdssp compares single-precision angles
    f = np.float32(phi)
    s = np.float32(psi)
    return np.float32(PP_PHI - PP_EPSILON) <= f <= np.float32(PP_PHI + PP_EPSILON) and np.float32(
        PP_PSI - PP_EPSILON
    ) <= s <= np.float32(PP_PSI + PP_EPSILON)


@njit(cache=True, nogil=True)
def _polyproline(n, ca, c, seg, ss, stretch):
    """P on loop residues (after T and S) of each run of ``stretch`` consecutive residues in the PPII region.

    phi and psi are undefined (never in range) across a break. As mkdssp, a stretch starts at 1 <= i < L - 3,
    so the last residues of the input never begin one.
    """
    L = n.shape[0]
    ok = np.zeros(L, dtype=np.bool_)
    for i in range(1, L - 1):
        if seg[i] == seg[i - 1] and seg[i + 1] == seg[i]:
            phi = _dihedral(c[i - 1], n[i], ca[i], c[i])
            psi = _dihedral(n[i], ca[i], c[i], n[i + 1])
            ok[i] = _in_pp_range(phi, psi)
    for i in range(1, L - 3):
        run = True
        for k in range(stretch):
            if not ok[i + k]:
                run = False
        if run:
            for k in range(stretch):
                if ss[i + k] == LOOP:
                    ss[i + k] = PPII


@njit(cache=True, nogil=True)
def _is_start(flags, si, i):
    f = flags[si, i]
    return f == F_START or f == F_STARTEND


def assign_secondary_structure_codes(
    n, ca, c, o, residue_names=None, is_proline=None, breaks=None, pp_stretch: int = DEFAULT_PP_STRETCH
) -> np.ndarray:
    """As :func:`assign_secondary_structure`, but returns the letters as a uint8 array (ASCII)."""
    n = _as_coords(n)
    ca = _as_coords(ca)
    c = _as_coords(c)
    o = _as_coords(o)
    L = len(n)
    if not (len(ca) == len(c) == len(o) == L):
        raise ValueError("n, ca, c and o must have the same length")
    if is_proline is not None:
        pro = np.ascontiguousarray(np.asarray(is_proline, dtype=np.bool_))
    elif residue_names is not None:
        pro = np.array([str(r).upper() == "PRO" for r in residue_names], dtype=np.bool_)
    else:
        pro = np.zeros(L, dtype=np.bool_)
    if pro.shape != (L,):
        raise ValueError(f"proline flags must have shape ({L},)")
    if pp_stretch not in (0, 2, 3):
        raise ValueError(f"pp_stretch must be 0 (no polyproline II), 2 or 3, got {pp_stretch!r}")
    brk = _breaks_arg(breaks, n, c)
    return _LETTERS[_dssp(n, ca, c, o, brk, pro, pp_stretch)]


def assign_secondary_structure(
    n, ca, c, o, residue_names=None, is_proline=None, breaks=None, pp_stretch: int = DEFAULT_PP_STRETCH
) -> str:
    """DSSP state string (H G I E B T S P -) for a backbone: one chain, or every chain of a model with a break
    at each chain's start (what mkdssp assigns: H-bonds and sheets between chains count).

    ``n, ca, c, o``: ``(L, 3)`` coordinates in residue order. Prolines (no amide H) come from ``is_proline`` (bool,
    length L) or ``residue_names`` (three-letter codes); default: none. ``breaks`` (bool, length L, True where
    residue ``i`` starts a new segment) defaults to C(i-1)-N(i) > 2.5 Angstrom, mkdssp's rule. ``pp_stretch``:
    mkdssp's --min-pp-stretch (P on loop residues in runs of 2 or 3 in the polyproline II region), 0 for none.
    """
    codes = assign_secondary_structure_codes(n, ca, c, o, residue_names, is_proline, breaks, pp_stretch)
    return codes.tobytes().decode("ascii")


def assign_model_secondary_structure(chains, pp_stretch: int = DEFAULT_PP_STRETCH) -> list[str]:
    """DSSP states for every chain of one model, assigned together as mkdssp does (sheets and H-bonds between
    chains count), returned per chain.

    ``chains``: a sequence of ``(n, ca, c, o, is_proline)`` per chain, coordinates ``(L, 3)`` with NaN for a
    missing atom. Residues without all four backbone atoms are left out of the assignment (as mkdssp drops
    them) and get '-'; the gap they leave, each chain's start and C(i-1)-N(i) > 2.5 Angstrom are breaks.
    """
    parts, keep, starts = [], [], []
    total = 0
    for n, ca, c, o, pro in chains:
        n, ca, c, o = (np.asarray(x, dtype=np.float64).reshape(-1, 3) for x in (n, ca, c, o))
        complete = np.isfinite(np.concatenate([n, ca, c, o], axis=1)).all(axis=1)
        idx = np.flatnonzero(complete)
        gap = np.zeros(idx.size, dtype=np.bool_)
        gap[1:] = np.diff(idx) > 1
        if idx.size:
            gap[0] = True
        parts.append((n[idx], ca[idx], c[idx], o[idx], np.asarray(pro, dtype=np.bool_)[idx], gap))
        keep.append((complete.size, idx))
        starts.append(total)
        total += idx.size
    out = []
    if total:
        n, ca, c, o, pro, gap = (np.concatenate([p[k] for p in parts]) for k in range(6))
        codes = assign_secondary_structure_codes(
            n, ca, c, o, is_proline=pro, breaks=gap | chain_breaks(n, c), pp_stretch=pp_stretch
        )
    for (length, idx), start in zip(keep, starts):
        full = np.full(length, ord("-"), dtype=np.uint8)
        if idx.size:
            full[idx] = codes[start : start + idx.size]
        out.append(full.tobytes().decode("ascii"))
    return out
