"""Protein kernels against brute-force NumPy references, gemmi, and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from hpcprep_protein.kernels import (
    assign_secondary_structure,
    backbone_dihedrals,
    chain_breaks,
    contact_edges,
    distance_map,
    geometry,
    knn_edges,
    q8_to_q3,
)
from hpcprep_protein.kernels.reference import (
    backbone_dihedrals_ref,
    contact_edges_ref,
    distance_map_ref,
    knn_edges_ref,
    q8_to_q3_ref,
)

from tests.protein.corpus import backbone, corpus


def _random_coords(seed, n, nan_rows=0, lattice=False):
    rng = np.random.default_rng(seed)
    if lattice:  # integer grid: many exact distance ties and distances exactly at the cutoff
        x = rng.integers(0, 6, size=(n, 3)).astype(np.float64) * 2.0
    else:
        x = rng.uniform(0, 30, size=(n, 3))
    if nan_rows:
        x[rng.choice(n, nan_rows, replace=False)] = np.nan
    return x


def _real_cas():
    out = []
    for path in corpus()[:6]:
        for _, _, _, _, ca, _, _ in backbone(path):
            out.append(ca)
    return out


def _assert_edges_equal(got, want):
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    assert got[0].dtype == np.int32 and got[1].dtype == np.int32 and got[2].dtype == np.float32


CASES = [(0, 1, 0, False), (1, 40, 0, False), (2, 300, 25, False), (3, 200, 10, True), (4, 500, 0, True)]


@pytest.mark.parametrize("seed,n,nan_rows,lattice", CASES)
@pytest.mark.parametrize("cutoff,sep", [(8.0, 1), (6.0, 3), (4.0, 6), (0.5, 1), (100.0, 1)])
def test_contact_edges_random(seed, n, nan_rows, lattice, cutoff, sep):
    x = _random_coords(seed, n, nan_rows, lattice)
    _assert_edges_equal(contact_edges(x, cutoff, sep), contact_edges_ref(x, cutoff, sep))


def test_contact_edges_real():
    for ca in _real_cas():
        for cutoff, sep in [(8.0, 1), (10.0, 6), (12.0, 24)]:
            got = contact_edges(ca, cutoff, sep)
            _assert_edges_equal(got, contact_edges_ref(ca, cutoff, sep))
            assert np.all(got[0] < got[1]) and np.all(got[1] - got[0] >= sep)


@pytest.mark.parametrize("seed,n,nan_rows,lattice", [*CASES, (5, 100, 0, None)])
@pytest.mark.parametrize("strict", [False, True])
def test_block_scan_and_grid_find_the_same_pairs(seed, n, nan_rows, lattice, strict):
    """Both ways of _pairs_within against the reference; lattice=None: 100 copies of one point, more pairs than
    the block scan's first arrays hold."""
    x = np.zeros((n, 3)) if lattice is None else _random_coords(seed, n, nan_rows, lattice)
    for cutoff, sep in [(8.0, 1), (4.0, 3)]:
        by_blocks = geometry._pairs_by_blocks(x, cutoff, sep, strict)
        by_grid = geometry._pairs_by_grid(x, cutoff, sep, strict)
        for a, b in zip(by_blocks, by_grid):
            np.testing.assert_array_equal(a, b)
        if not strict:
            want = contact_edges_ref(x, cutoff, sep)
            _assert_edges_equal((*by_blocks[:2], by_blocks[2].astype(np.float32)), want)
    if lattice is None:
        assert len(by_blocks[0]) == n * (n - 1) // 2 - (n - 1) - (n - 2) > 32 * n + 64


def test_block_scan_and_grid_agree_on_a_large_model():
    """Above BLOCK_SCAN_MAX residues _pairs_within takes the grid: 125 real chains packed 40 A apart."""
    cas = _real_cas()
    parts = [
        cas[k % len(cas)] - np.nanmean(cas[k % len(cas)], axis=0) + 40.0 * np.array([k % 5, k // 5 % 5, k // 25])
        for k in range(125)
    ]
    x = np.ascontiguousarray(np.concatenate(parts))
    assert len(x) > geometry.BLOCK_SCAN_MAX
    got = geometry._pairs_within(x, 9.0, 1, True)
    for a, b in zip(got, geometry._pairs_by_blocks(x, 9.0, 1, True)):
        np.testing.assert_array_equal(a, b)


def test_contact_edges_exact_cutoff_and_empty():
    x = np.array([[0, 0, 0], [3, 4, 0], [np.nan, 0, 0], [0, 0, 5.0000001]], dtype=float)
    src, dst, dist = contact_edges(x, 5.0)
    assert list(zip(src, dst)) == [(0, 1)] and dist[0] == np.float32(5.0)
    for arr in contact_edges(np.zeros((0, 3)), 8.0):
        assert len(arr) == 0


@pytest.mark.parametrize("seed,n,nan_rows,lattice", CASES)
@pytest.mark.parametrize("k", [1, 5, 16, 1000])
def test_knn_edges_random(seed, n, nan_rows, lattice, k):
    x = _random_coords(seed, n, nan_rows, lattice)
    got = knn_edges(x, k)
    _assert_edges_equal(got, knn_edges_ref(x, k))


def test_knn_ties_broken_by_index():
    x = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 0, 2.0]])
    src, dst, dist = knn_edges(x, 2)
    assert list(dst[src == 0]) == [1, 2]  # three at distance 1: the two lowest indices
    src, dst, dist = knn_edges(x, 3)
    assert list(dst[src == 0]) == [1, 2, 3]


def test_knn_edges_real():
    for ca in _real_cas():
        _assert_edges_equal(knn_edges(ca, 10), knn_edges_ref(ca, 10))


@pytest.mark.parametrize("seed,n,nan_rows", [(0, 1, 0), (1, 50, 5), (2, 257, 0)])
def test_distance_map(seed, n, nan_rows):
    x = _random_coords(seed, n, nan_rows)
    got = distance_map(x)
    want = distance_map_ref(x)
    assert got.dtype == np.float32 and got.shape == (n, n)
    np.testing.assert_array_equal(got, want)


def _angle_diff(a, b):
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


def test_dihedrals_vs_independent_formulas():
    import gemmi

    checked = 0
    for path in corpus():
        for _, _, _, n, ca, c, _ in backbone(path):
            brk = chain_breaks(n, c)
            phi, psi, omega = backbone_dihedrals(n, ca, c)
            rphi, rpsi, romega = backbone_dihedrals_ref(n, ca, c, brk)
            for got, want in [(phi, rphi), (psi, rpsi), (omega, romega)]:
                np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
                m = ~np.isnan(want)
                assert np.all(_angle_diff(got[m], want[m]) < 1e-6)
                assert np.all((got[m] > -180.0) & (got[m] <= 180.0))
            assert np.isnan(phi[0]) and np.isnan(psi[-1]) and np.isnan(omega[-1])
            # gemmi's own dihedral
            for i in range(1, len(n) - 1):
                if brk[i] or brk[i + 1]:
                    continue
                P = [gemmi.Position(*p) for p in (c[i - 1], n[i], ca[i], c[i], n[i + 1], ca[i + 1])]
                gphi = np.degrees(gemmi.calculate_dihedral(P[0], P[1], P[2], P[3]))
                gpsi = np.degrees(gemmi.calculate_dihedral(P[1], P[2], P[3], P[4]))
                gom = np.degrees(gemmi.calculate_dihedral(P[2], P[3], P[4], P[5]))
                assert _angle_diff(phi[i], gphi) < 1e-6
                assert _angle_diff(psi[i], gpsi) < 1e-6
                assert _angle_diff(omega[i], gom) < 1e-6
                checked += 1
    assert checked > 1000


def test_dihedral_sign_convention():
    # right-handed alpha helix residue: phi ~ -57, psi ~ -47 in ubiquitin's helix (residues 23-34)
    path = next(p for p in corpus() if p.name == "1ubq.pdb")
    _, nums, _, n, ca, c, _ = backbone(path)[0]
    phi, psi, _ = backbone_dihedrals(n, ca, c)
    i = nums.index("28")
    assert -90 < phi[i] < -40 and -70 < psi[i] < -20


def test_dihedrals_breaks():
    path = next(p for p in corpus() if p.name == "1ubq.pdb")
    _, _, _, n, ca, c, _ = backbone(path)[0]
    brk = np.zeros(len(n), bool)
    brk[10] = True
    phi, psi, omega = backbone_dihedrals(n, ca, c, breaks=brk)
    assert np.isnan(phi[10]) and np.isnan(psi[9]) and np.isnan(omega[9])
    assert not np.isnan(phi[11]) and not np.isnan(psi[10])
    # a real gap: drop residue 40, the C-N distance makes a break
    keep = np.r_[0:40, 41 : len(n)]
    phi2, psi2, _ = backbone_dihedrals(n[keep], ca[keep], c[keep])
    assert np.isnan(phi2[40]) and np.isnan(psi2[39])
    assert np.sum(np.isnan(phi2)) == 2


def test_q8_to_q3_all_letters():
    assert q8_to_q3("HGIEBTSP- C") == "HHHEECCCCCC"
    letters = "".join(chr(i) for i in range(32, 127))
    assert q8_to_q3(letters) == q8_to_q3_ref(letters)
    assert q8_to_q3("") == ""


def test_dssp_breaks_and_prolines():
    path = next(p for p in corpus() if p.name == "1ubq.pdb")
    _, _, names, n, ca, c, o = backbone(path)[0]
    ss = assign_secondary_structure(n, ca, c, o, residue_names=names)
    assert ss == assign_secondary_structure(n, ca, c, o, is_proline=[r == "PRO" for r in names])
    assert len(ss) == len(n) and set(ss) <= set("HGIEBTSP-")
    # a break in the middle of the alpha helix (23-34) stops helix H-bonds across it
    brk = np.zeros(len(n), bool)
    brk[28] = True
    ss2 = assign_secondary_structure(n, ca, c, o, residue_names=names, breaks=brk)
    assert ss[22:34] == "H" * 12 and ss2[22:34] != ss[22:34]
    assert assign_secondary_structure(n[:0], ca[:0], c[:0], o[:0]) == ""
    assert assign_secondary_structure(n[:3], ca[:3], c[:3], o[:3]) == "---"
