"""The CUDA variants of the protein kernels against the CPU kernels, bit for bit, and protein.contacts on both.

Runs on Numba's CUDA simulator (one Python thread per GPU thread, so the chains are cut short) unless
HPCPREP_TEST_CUDA=device puts it on a real GPU.
"""

from __future__ import annotations

import math
import subprocess
import sys
from functools import cache

import numpy as np
import pyarrow as pa
import pytest

from tests.conftest import require_cuda

cuda = require_cuda()

from hpcprep_protein import encoders as E  # noqa: E402
from hpcprep_protein.kernels import contact_edges, distance_map  # noqa: E402
from hpcprep_protein.kernels import cuda as gpu  # noqa: E402

from tests.protein.corpus import backbone, corpus  # noqa: E402


@cache
def _cas() -> dict[str, np.ndarray]:
    """CA coordinates of a few real chains, at most 110 residues each (the simulator is slow)."""
    out = {}
    for path in corpus():
        if path.name in ("1ubq.pdb", "1a0q.pdb", "1A8O.cif.gz", "2OFG.cif.gz"):
            out[path.name] = backbone(path)[0][4][:110]
    return out


def _with_nan_rows(x, rows):
    x = x.copy()
    x[rows] = np.nan
    return x


def _batch() -> list[np.ndarray]:
    """Real chains, one with missing residues, an empty and a one-residue chain, and a chain twice:
    identical coordinates in one batch, so an edge between chains would show."""
    c = _cas()
    ubq = c["1ubq.pdb"]
    return [ubq, c["1a0q.pdb"], np.zeros((0, 3)), _with_nan_rows(c["1A8O.cif.gz"], [0, 7, 8, 40]), ubq[:1], ubq]


def _assert_edges_identical(got, want):
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        assert type(g) is np.ndarray and g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    assert got[0].dtype == np.int32 and got[1].dtype == np.int32 and got[2].dtype == np.float32


@pytest.mark.parametrize("cutoff,sep", [(8.0, 1), (10.0, 6), (12.0, 24)])
def test_contact_edges_batch_on_real_chains(cutoff, sep):
    chains = _batch()
    got = gpu.contact_edges_batch(chains, cutoff, sep)
    assert len(got) == len(chains)
    for x, edges in zip(chains, got):
        _assert_edges_identical(edges, contact_edges(x, cutoff, sep))
    assert len(got[0][0]) > 0 and len(got[3][0]) > 0, "the real chains have contacts"


def test_contact_edges_single_chain():
    x = _cas()["2OFG.cif.gz"]
    got = gpu.contact_edges(x, 8.0)
    _assert_edges_identical(got, contact_edges(x, 8.0))
    assert np.all(np.diff(got[0]) >= 0) and len(got[0]) > len(x), "sorted by src, with contacts"


def test_a_pair_at_exactly_the_cutoff():
    """The cutoff set to one pair's distance as the CPU computes it: in; one ulp less: out."""
    x = _cas()["1ubq.pdb"][:30]
    dx, dy, dz = x[0] - x[9]
    d = math.sqrt(dx * dx + dy * dy + dz * dz)
    for cutoff, present in [(d, True), (np.nextafter(d, 0.0), False)]:
        got = gpu.contact_edges(x, cutoff, 9)
        _assert_edges_identical(got, contact_edges(x, cutoff, 9))
        assert ((got[0] == 0) & (got[1] == 9)).any() == present


@pytest.mark.parametrize(
    "x",
    [
        np.zeros((0, 3)),
        np.ones((1, 3)),
        np.full((6, 3), np.nan),
        np.array([[0, 0, 0], [3, 4, 0], [np.nan, 0, 0], [0, 0, 5.0000001], [0, 0, 0], [np.inf, 0, 0]]),
        np.zeros((7, 3)),  # all at one point: every pair, at distance 0
    ],
    ids=["empty", "one", "all-nan", "hand-made", "one-point"],
)
@pytest.mark.parametrize("cutoff,sep", [(5.0, 1), (5.0, 0), (5.0, -3), (5.0, 2), (5.0, 100), (0.0, 1),
                                        (-1.0, 1), (math.nan, 1), (math.inf, 1)])  # fmt: skip
def test_contact_edges_edge_cases(x, cutoff, sep):
    _assert_edges_identical(gpu.contact_edges(x, cutoff, sep), contact_edges(x, cutoff, sep))


def test_contact_edges_hand_made_answer():
    x = np.array([[0, 0, 0], [3, 4, 0], [np.nan, 0, 0], [0, 0, 5.0000001]])
    src, dst, dist = gpu.contact_edges(x, 5.0)
    assert list(zip(src, dst)) == [(0, 1)] and dist[0] == np.float32(5.0)


def test_distance_map_batch_on_real_chains():
    c = _cas()
    chains = [_with_nan_rows(c["1ubq.pdb"][:30], [2, 29]), np.zeros((0, 3)), c["1ubq.pdb"][:1], c["1a0q.pdb"][:20]]
    got = gpu.distance_map_batch(chains)
    assert len(got) == len(chains)
    for x, m in zip(chains, got):
        want = distance_map(x)
        assert type(m) is np.ndarray and m.dtype == np.float32 and m.shape == want.shape
        np.testing.assert_array_equal(m.view(np.uint32), want.view(np.uint32))  # NaNs included
    assert np.isnan(got[0][2]).all() and np.isnan(got[0][:, 29]).all() and got[3][0, 1] > 3.0


def test_distance_map_single_chain():
    x = _cas()["2OFG.cif.gz"][:24]
    got = gpu.distance_map(x)
    assert got.shape == (24, 24) and got.dtype == np.float32 and not np.isnan(got).any()
    np.testing.assert_array_equal(got.view(np.uint32), distance_map(x).view(np.uint32))
    assert gpu.distance_map(np.zeros((0, 3))).shape == (0, 0) and gpu.distance_map_batch([]) == []


@pytest.mark.parametrize("bad", [np.zeros((4, 2)), np.zeros(6), [[1.0, 2.0, "x"]]])
def test_bad_coordinates_raise_as_on_the_cpu(bad):
    for cpu_fn, gpu_fn in [(lambda a: contact_edges(a, 8.0), lambda a: gpu.contact_edges(a, 8.0)),
                           (distance_map, gpu.distance_map)]:  # fmt: skip
        with pytest.raises(Exception) as want:
            cpu_fn(bad)
        with pytest.raises(type(want.value)) as got:
            gpu_fn(bad)
        assert str(got.value) == str(want.value)
    with pytest.raises(type(want.value)):
        gpu.contact_edges_batch([np.zeros((3, 3)), bad], 8.0)


def _structure_batch(chains: list[np.ndarray]) -> dict:
    """protein.structure-like records: CA and CB as flattened float32, CB missing (glycine) in places."""
    batch = E._seq_batch(["A" * len(x) for x in chains])
    cbs = [_with_nan_rows(x + np.array([0.9, -0.7, 1.1]), slice(None, None, 5)) for x in chains]
    for name, column in (("ca", chains), ("cb", cbs)):
        batch[name] = np.array([x.astype(np.float32).reshape(-1) for x in column] + [None], dtype=object)[:-1]
    return batch


@pytest.mark.parametrize("params", [{}, {"atom": "cb", "cutoff": 6.0, "min_seq_sep": 3}])
def test_contacts_stage_gives_the_same_columns_on_both_variants(params):
    c = _cas()
    batch = _structure_batch([c["1ubq.pdb"], c["1A8O.cif.gz"][:50], np.zeros((0, 3))])
    assert "cuda" in E.Contacts.variants and E.Contacts.gpu_share == 0.25 and E.Contacts.gpu_batch_size
    on_cpu = E.Contacts(params)
    on_gpu = E.Contacts(params)
    on_gpu.variant = "cuda"
    on_gpu.setup()
    want = on_cpu.encode(batch)
    got = on_gpu.encode(batch)
    assert set(got) == set(want) == {"contact_src", "contact_dst", "contact_dist"}
    for name in want:
        assert isinstance(got[name], pa.Array) and got[name].type == want[name].type
        assert got[name].equals(want[name]), name
    assert len(want["contact_src"][0]) > 0 and len(want["contact_src"][2]) == 0


def test_kernels_package_does_not_import_the_cuda_module():
    """CPU machines have no numba-cuda: importing the kernels and the encoders must not pull it in."""
    code = (
        "import sys, hpcprep_protein.kernels, hpcprep_protein.encoders as E\n"
        "E.Contacts().encode(E._helix_batch())\n"
        "print(sorted(m for m in sys.modules if m.endswith(('kernels.cuda', 'cuda_device'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
