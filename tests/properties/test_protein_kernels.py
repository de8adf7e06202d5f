"""Protein geometry kernels on generated coordinates against NumPy brute force.

Coordinates are drawn on a few-Angstrom grid jittered by hypothesis (so that many pairs
sit near a cutoff and many residues are close), with some rows NaN for missing residues.
The brute-force references compute every pair; the dihedral reference uses the
Blondel-Karplus formula, a different one from the kernel's projection form.
"""

from __future__ import annotations

import numpy as np
from hpcprep_protein.kernels import backbone_dihedrals, chain_breaks, contact_edges, distance_map, knn_edges
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

coordinate = st.floats(-30.0, 30.0, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def residues(draw, max_len: int = 60, missing: bool = True) -> np.ndarray:
    """(L, 3) float64 coordinates; with ``missing`` some rows are NaN."""
    n = draw(st.integers(0, max_len))
    x = draw(arrays(np.float64, (n, 3), elements=coordinate))
    if missing and n:
        gone = draw(st.lists(st.integers(0, n - 1), max_size=max(1, n // 5)))
        x[gone] = np.nan
    return x


def squared_distances(x: np.ndarray) -> np.ndarray:
    """Every pair's squared distance as dx*dx + dy*dy + dz*dz (the kernels' documented formula)."""
    d = x[:, None, :] - x[None, :, :]
    return d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]


@FAST
@given(residues(), st.floats(0.5, 25.0), st.integers(1, 6))
def test_contact_edges_are_every_close_pair(x, cutoff, min_sep):
    src, dst, dist = contact_edges(x, cutoff, min_sep)
    d2 = squared_distances(x)
    ok = ~np.isnan(x).any(axis=1)
    expected = [
        (i, j)
        for i in range(len(x))
        for j in range(i + min_sep, len(x))
        if ok[i] and ok[j] and np.sqrt(d2[i, j]) <= cutoff
    ]
    assert list(zip(src.tolist(), dst.tolist())) == expected  # the same pairs, sorted by (src, dst)
    if expected:
        i, j = np.array(expected).T
        assert np.array_equal(dist, np.sqrt(d2[i, j]).astype(np.float32))


@FAST
@given(residues(), st.integers(0, 8))
def test_knn_edges_are_the_nearest_valid_others(x, k):
    src, dst, dist = knn_edges(x, k)
    d2 = squared_distances(x)
    ok = np.flatnonzero(~np.isnan(x).any(axis=1))
    expected = []
    for i in ok:
        others = sorted((d2[i, j], j) for j in ok if j != i)[:k]  # ties broken by the lower index
        expected += [(int(i), int(j)) for _, j in others]
    assert list(zip(src.tolist(), dst.tolist())) == expected
    if expected:
        i, j = np.array(expected).T
        assert np.array_equal(dist, np.sqrt(d2[i, j]).astype(np.float32))


@FAST
@given(residues())
def test_distance_map_is_every_pair_distance(x):
    got = distance_map(x)
    expected = np.sqrt(squared_distances(x)).astype(np.float32)
    missing = np.isnan(x).any(axis=1)
    expected[missing, :] = np.nan
    expected[:, missing] = np.nan
    assert got.shape == (len(x), len(x)) and got.dtype == np.float32
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(got, got.T, equal_nan=True)


def dihedral_reference(p0, p1, p2, p3) -> np.ndarray:
    """Blondel-Karplus: atan2(|b2| b1 . (b2 x b3), (b1 x b2) . (b2 x b3)), in degrees, row-wise."""
    b1, b2, b3 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    y = np.linalg.norm(b2, axis=-1) * np.einsum("ij,ij->i", b1, n2)
    x = np.einsum("ij,ij->i", n1, n2)
    return np.degrees(np.arctan2(y, x))


def well_conditioned(p0, p1, p2, p3) -> np.ndarray:
    """Rows whose dihedral is defined with room to spare: no two consecutive bonds nearly
    parallel (there the angle is ill-conditioned and two correct formulas may disagree)."""
    b1, b2, b3 = p1 - p0, p2 - p1, p3 - p2
    lengths = [np.linalg.norm(b, axis=-1) for b in (b1, b2, b3)]
    sin12 = np.linalg.norm(np.cross(b1, b2), axis=-1) / (lengths[0] * lengths[1] + 1e-300)
    sin23 = np.linalg.norm(np.cross(b2, b3), axis=-1) / (lengths[1] * lengths[2] + 1e-300)
    return (np.minimum.reduce(lengths) > 1e-3) & (sin12 > 1e-3) & (sin23 > 1e-3)


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180.0) % 360.0 - 180.0)  # -180 and 180 are the same angle


@FAST
@given(st.integers(2, 40).flatmap(lambda n: st.tuples(*[arrays(np.float64, (n, 3), elements=coordinate)] * 3)))
def test_dihedrals_equal_the_blondel_karplus_formula(backbone):
    n, ca, c = backbone
    phi, psi, omega = backbone_dihedrals(n, ca, c, breaks=np.zeros(len(n), bool))
    assert np.isnan(phi[0]) and np.isnan(psi[-1]) and np.isnan(omega[-1])  # undefined at the chain's ends
    checks = (
        (phi[1:], (c[:-1], n[1:], ca[1:], c[1:])),
        (psi[:-1], (n[:-1], ca[:-1], c[:-1], n[1:])),
        (omega[:-1], (ca[:-1], c[:-1], n[1:], ca[1:])),
    )
    for got, points in checks:
        good = well_conditioned(*points)
        assert np.all(angle_difference(got[good], dihedral_reference(*points)[good]) < 1e-6)
        assert np.all((got[good] >= -180.0) & (got[good] <= 180.0))  # -180 and 180 are the same angle


@FAST
@given(st.integers(1, 30).flatmap(lambda n: st.tuples(*[arrays(np.float64, (n, 3), elements=st.floats(-3, 3))] * 3)))
def test_breaks_follow_the_peptide_bond_length(backbone):
    n, ca, c = backbone
    breaks = chain_breaks(n, c)
    gap = np.linalg.norm(c[:-1] - n[1:], axis=1)
    assert breaks[0]
    assert np.array_equal(breaks[1:], ~(gap <= 2.5))
    phi, psi, omega = backbone_dihedrals(n, ca, c)
    # a residue that starts a segment has no phi; one that ends a segment no psi or omega
    assert np.isnan(phi[breaks]).all()
    ends = np.append(breaks[1:], True)
    assert np.isnan(psi[ends]).all() and np.isnan(omega[ends]).all()
