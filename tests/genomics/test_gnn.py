"""The de Bruijn GNN: weights files, the math against NumPy, batching, PyG vs DGL, train-gnn.

One module because its tests share the same fixtures and helpers (labelled fragments,
trained weights, the DGL environment's embedder): training is checked by loading its
weights in both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_module, unavailable

require_module("torch")
require_module("torch_geometric")

import click  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from hpcprep_genomics import commands, gnn  # noqa: E402
from hpcprep_genomics.gnn import GnnConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "plugins" / "genomics"
DGL_PYTHON = Path(os.environ.get("HPCPREP_DGL_PYTHON", ROOT / ".venv-dgl" / "bin" / "python"))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small graphs: one thread is as fast and keeps the 2-core CI machine calm."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- a pure-NumPy de Bruijn builder with the kernel's conventions -------------------------


def np_debruijn(seq: str, k: int):
    """Nodes = distinct (k-1)-mers (base-4, A=0 C=1 G=2 T=3, first base most significant),
    edges = distinct k-mers prefix -> suffix with counts; k-mers touching non-ACGT skipped."""
    s = seq.upper()
    codes = [
        int("".join(str("ACGT".index(c)) for c in s[i : i + k]), 4)
        for i in range(len(s) - k + 1)
        if all(c in "ACGT" for c in s[i : i + k])
    ]
    codes, counts = np.unique(np.array(codes, dtype=np.uint64), return_counts=True)
    prefix, suffix = codes >> np.uint64(2), codes & np.uint64(4 ** (k - 1) - 1)
    nodes = np.unique(np.concatenate([prefix, suffix])).astype(np.uint64)
    return (
        nodes,
        np.searchsorted(nodes, prefix).astype(np.int32),
        np.searchsorted(nodes, suffix).astype(np.int32),
        counts.astype(np.uint32),
    )


def build_graph(seq: str, k: int):
    """The plugin's kernel (checked against the NumPy builder above)."""
    from hpcprep_genomics.kernels import debruijn_graph

    return debruijn_graph(seq, k)


def random_fragments(n: int, seed: int, lo: int = 30, hi: int = 900) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = rng.choice(list("ACGT"), int(rng.integers(lo, hi)))
        s[rng.random(s.size) < 0.01] = "N"
        s = "".join(s)
        out.append(s.lower() if rng.random() < 0.2 else s)
    return out


EMPTY = (np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.uint32))


# -- an independent NumPy forward pass, straight from the documented formula -------------


def np_features(code: int, m: int) -> np.ndarray:
    s = "".join("ACGT"[(code >> (2 * (m - 1 - i))) & 3] for i in range(m))
    comp = [s.count(b) / m for b in "ACGT"]
    pairs = [s[i : i + 2] for i in range(m - 1)]
    di = [pairs.count(a + b) / (m - 1) if m > 1 else 0.0 for a in "ACGT" for b in "ACGT"]
    return np.array(comp + [comp[1] + comp[2]] + di)


def np_embed(graph, config: GnnConfig, arrays: dict) -> np.ndarray:
    nodes, src, dst, counts = graph
    if len(nodes) == 0:
        return np.zeros(config.embed_dim)
    p = {name: a.astype(np.float64) for name, a in arrays.items()}
    x = np.stack([np_features(int(c), config.k - 1) for c in nodes])
    adj = np.zeros((len(nodes), len(nodes)))  # adj[i, j]: weight of j's message to i, both directions
    for s, d, c in zip(src, dst, counts, strict=True):
        adj[d, s] += np.log1p(c)
        adj[s, d] += np.log1p(c)
    h = np.maximum(x @ p["input.weight"].T + p["input.bias"], 0)
    for i in range(config.layers):
        deg = adj.sum(1, keepdims=True)
        agg = np.divide(adj @ h, deg, out=np.zeros_like(h), where=deg > 0)
        pre = h @ p[f"layers.{i}.self.weight"].T + p[f"layers.{i}.self.bias"] + agg @ p[f"layers.{i}.neighbor.weight"].T
        h = np.maximum(pre, 0)
    z = np.concatenate([h.mean(0), h.max(0)]) @ p["readout.weight"].T + p["readout.bias"]
    return z / np.linalg.norm(z)


# -- tests ------------------------------------------------------------------------------


def test_builder_and_kernel_follow_the_convention():
    # AAAAT, k=3: k-mers AAA (twice) and AAT; nodes AA (code 0) and AT (code 3).
    want = ([0, 3], [0, 0], [0, 1], [2, 1])
    for graph in (np_debruijn("AAAAT", 3), build_graph("AAAAT", 3)):
        for got, w in zip(graph, want, strict=True):
            assert np.array_equal(np.asarray(got, dtype=np.int64), w)
    for seq in random_fragments(5, seed=1):
        a, b = np_debruijn(seq, 5), build_graph(seq, 5)
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(np.asarray(x, np.int64), np.asarray(y, np.int64))


def test_node_features_match_their_definition():
    codes = np.arange(4**4, dtype=np.uint64)
    feats = gnn.node_features(codes, 4)
    assert feats.shape == (256, gnn.N_FEATURES) and feats.dtype == np.float32
    want = np.stack([np_features(int(c), 4) for c in codes])
    np.testing.assert_allclose(feats, want, atol=1e-7)
    # Beyond the table size the direct path must agree with the definition too.
    big = np.array([0, 723456, 4**10 - 1], dtype=np.uint64)
    np.testing.assert_allclose(gnn.node_features(big, 10), np.stack([np_features(int(c), 10) for c in big]), atol=1e-7)
    with pytest.raises(ValueError, match="not a 3-mer"):
        gnn.node_features(np.array([64], np.uint64), 3)


def test_weights_round_trip(tmp_path):
    config = GnnConfig(k=4, hidden_dim=8, embed_dim=6, layers=3, n_classes=3, classes=("a", "b", "c"))
    arrays = gnn.random_weights(config, seed=7)
    assert set(arrays) == set(gnn.param_shapes(config))
    path = tmp_path / "w.npz"
    gnn.save_weights(path, config, arrays, meta={"note": "x"})
    config2, arrays2 = gnn.load_weights(path)
    assert config2 == config
    assert set(arrays2) == set(arrays)
    for name in arrays:
        assert arrays2[name].dtype == np.float32
        assert np.array_equal(arrays2[name], arrays[name])
    assert gnn.weights_meta(path) == {"note": "x"}

    bad = dict(arrays)
    bad["readout.weight"] = bad["readout.weight"][:, :3]
    with pytest.raises(ValueError, match="readout.weight"):
        gnn.save_weights(tmp_path / "bad.npz", config, bad)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a GNN weights file"):
        gnn.load_weights(tmp_path / "other.npz")


def test_embeddings_deterministic_normalised_and_sized():
    config = GnnConfig(k=5, hidden_dim=32, embed_dim=24)
    graphs = [build_graph(s, 5) for s in random_fragments(12, seed=2)] + [EMPTY]
    a = gnn.embed_graphs(graphs, config, gnn.random_weights(config, 3))
    b = gnn.embed_graphs(graphs, config, gnn.random_weights(config, 3))
    c = gnn.embed_graphs(graphs, config, gnn.random_weights(config, 4))
    assert a.shape == (13, 24) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.allclose(a[:-1], c[:-1])
    np.testing.assert_allclose(np.linalg.norm(a[:-1], axis=1), 1.0, atol=1e-6)
    assert not a[-1].any(), "an empty graph embeds as the zero vector"
    assert gnn.embed_graphs([], config, gnn.random_weights(config, 3)).shape == (0, 24)


def test_pyg_matches_a_numpy_forward_pass():
    config = GnnConfig(k=3, hidden_dim=5, embed_dim=4, layers=2)
    arrays = gnn.random_weights(config, seed=11)
    # Hand-built: AAAAT (a self-loop AA->AA counted twice), and a small cycle-rich graph.
    hand = (
        np.array([0, 3], np.uint64),
        np.array([0, 0], np.int32),
        np.array([0, 1], np.int32),
        np.array([2, 1], np.uint32),
    )
    graphs = [hand, np_debruijn("ACGTACGGATTACAGGA", 3), np_debruijn("GGGGCCCCGG", 3)]
    got = gnn.embed_graphs(graphs, config, arrays)
    want = np.stack([np_embed(g, config, arrays) for g in graphs])
    np.testing.assert_allclose(got, want, atol=1e-5)

    deep = GnnConfig(k=5, hidden_dim=16, embed_dim=8, layers=3)
    deep_arrays = gnn.random_weights(deep, seed=12)
    graphs = [np_debruijn(s, 5) for s in random_fragments(3, seed=3, hi=200)]
    np.testing.assert_allclose(
        gnn.embed_graphs(graphs, deep, deep_arrays),
        np.stack([np_embed(g, deep, deep_arrays) for g in graphs]),
        atol=1e-5,
    )


def shuffled_edges(graph, seed: int):
    """The same graph with its edges listed in another order."""
    nodes, src, dst, counts = graph
    order = np.random.default_rng(seed).permutation(len(src))
    return nodes, src[order], dst[order], counts[order]


#: A node without edges (code 5, index 2) aggregates to zero; a zero-count edge weighs zero.
ISOLATED = (
    np.array([0, 3, 5], np.uint64),
    np.array([0, 1], np.int32),
    np.array([1, 1], np.int32),
    np.array([3, 0], np.uint32),
)


@pytest.mark.parametrize(
    "config",
    [
        GnnConfig(),
        GnnConfig(k=9, hidden_dim=16, embed_dim=8),
        GnnConfig(k=4, layers=0, hidden_dim=8, embed_dim=4),
        GnnConfig(k=5, layers=3, hidden_dim=16, embed_dim=8),
    ],
    ids=["default", "k9-no-code-table", "no-layers", "three-layers"],
)
def test_inference_path_matches_training_path_and_numpy(config):
    # PygEmbedder (per-code tables up to k-1 = 7, W_nbr before the mean, normalised CSR) against
    # GraphEncoder.forward (the training path) and the NumPy forward pass.
    from hpcprep_genomics.gnn.model_pyg import PygEmbedder, to_batch

    arrays = gnn.random_weights(config, seed=13)
    seqs = random_fragments(6, seed=14, hi=300)
    graphs = [build_graph(s, config.k) for s in seqs] + [shuffled_edges(build_graph(seqs[0], config.k), 1)]
    if config.k == 4:
        graphs.append(ISOLATED)
    embedder = PygEmbedder(config, arrays)
    assert (embedder.tables is None) == (config.node_k > 7)
    fast = embedder.embed(graphs)
    with torch.no_grad():
        slow = embedder.module(to_batch(graphs, config.node_k)).numpy()
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    np.testing.assert_allclose(fast, np.stack([np_embed(g, config, arrays) for g in graphs]), atol=1e-5)
    np.testing.assert_allclose(fast[0], fast[len(seqs)], atol=1e-6)  # edge order does not matter


def test_pass_splitting_and_weight_cache(monkeypatch):
    from hpcprep_genomics.gnn import model_pyg

    config = GnnConfig()
    arrays = gnn.random_weights(config, 15)
    graphs = [build_graph(s, 5) for s in random_fragments(30, seed=16)]
    whole = gnn.embed_graphs(graphs, config, arrays)
    monkeypatch.setattr(model_pyg, "PASS_NODES", 100)  # smaller than most graphs: one graph per pass
    np.testing.assert_allclose(gnn.embed_graphs(graphs, config, arrays), whole, atol=1e-6)
    assert model_pyg.pass_bounds(np.array([0, 5, 5, 300, 310, 320]), 100) == [(0, 2), (2, 3), (3, 5)]
    # Embedders are cached by the weights' values, not by the dict: changing a weight changes the result.
    arrays["readout.bias"] += 0.5
    changed = gnn.embed_graphs(graphs, config, arrays)
    assert not np.allclose(changed, whole, atol=1e-3)
    fresh = gnn.backend_embedder("pyg", config, {k: v.copy() for k, v in arrays.items()}).embed(graphs)
    np.testing.assert_allclose(changed, fresh, atol=1e-6)


def test_pack_graphs_checks_and_layout():
    graphs = [build_graph("ACGTACGGATTACAGGA", 4), EMPTY, ISOLATED]
    packed = gnn.pack_graphs(graphs)
    assert packed.node_ptr.tolist() == [0, 12, 12, 15] and packed.edge_ptr.tolist() == [0, 14, 14, 16]
    assert packed.src.dtype == packed.dst.dtype == np.int64 and packed.node_codes.dtype == np.uint64
    assert packed.src[-2:].tolist() == [12, 13] and packed.dst[-2:].tolist() == [13, 13]
    np.testing.assert_allclose(packed.weights[-2:], [np.log1p(3), 0.0], rtol=1e-7)
    # Lists and 2-D arrays are flattened as check_graph does.
    as_lists = [tuple(np.asarray(a).tolist() for a in g) for g in graphs]
    as_lists[0] = (np.asarray(graphs[0][0])[None, :],) + tuple(graphs[0][1:])
    again = gnn.pack_graphs(as_lists)
    for name in ("node_codes", "src", "dst", "weights", "node_ptr", "edge_ptr"):
        assert np.array_equal(getattr(again, name), getattr(packed, name)), name
    # The row-normalised adjacency: each row with edges sums to 1, the isolated node's row is empty.
    row_ptr, col, value = packed.mean_adjacency()
    sums = np.add.reduceat(value, row_ptr[:-1][np.diff(row_ptr) > 0])
    np.testing.assert_allclose(sums[:-1], 1.0, rtol=1e-6)
    assert np.diff(row_ptr)[14] == 0 and row_ptr[-1] == 2 * 16
    # Undirected edges grouped per graph (what DGL's batch_num_edges needs).
    u, v, w = packed.undirected()
    assert sorted(zip(u[:28].tolist(), v[:28].tolist())) == sorted(
        list(zip(packed.src[:14].tolist(), packed.dst[:14].tolist()))
        + list(zip(packed.dst[:14].tolist(), packed.src[:14].tolist()))
    )
    assert u[28:].tolist() == [12, 13, 13, 13] and v[28:].tolist() == [13, 13, 12, 13]
    assert gnn.pack_graphs([]).n_graphs == 0
    sub = packed.slice(2, 3)
    assert sub.src.tolist() == [0, 1] and sub.node_ptr.tolist() == [0, 3]

    bad_edge = (ISOLATED[0], np.array([0, 3]), ISOLATED[2], ISOLATED[3])
    with pytest.raises(ValueError, match="graph 3: an edge points outside the 3 nodes"):
        gnn.pack_graphs([graphs[0], EMPTY, ISOLATED, bad_edge])
    negative = (ISOLATED[0], np.array([0, -1]), ISOLATED[2], ISOLATED[3])
    with pytest.raises(ValueError, match="graph 11: an edge points outside"):
        gnn.pack_graphs([negative], first_index=11)
    with pytest.raises(ValueError, match="graph 1: src, dst and edge_counts differ in length"):
        gnn.pack_graphs([ISOLATED, (ISOLATED[0], ISOLATED[1], ISOLATED[2], ISOLATED[3][:1])])
    with pytest.raises(ValueError, match="graph 0: a graph is"):
        gnn.pack_graphs([ISOLATED[:3]])
    with pytest.raises(ValueError, match="built with k > 3"):
        gnn.embed_graphs([build_graph("ACGTACGTAA", 5)], GnnConfig(k=3), gnn.random_weights(GnnConfig(k=3), 0))


def test_cli_times_a_backend(tmp_path):
    config = GnnConfig()
    gnn.save_weights(tmp_path / "w.npz", config, gnn.random_weights(config, 17))
    graphs = [build_graph(s, 5) for s in random_fragments(5, seed=18)]
    gnn.save_graphs(tmp_path / "g.npz", graphs)
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_DIR)}
    cmd = [
        sys.executable,
        "-m",
        "hpcprep_genomics.gnn.cli_dgl",
        "--weights",
        str(tmp_path / "w.npz"),
        "--graphs",
        str(tmp_path / "g.npz"),
        "--out",
        str(tmp_path / "e.npy"),
        "--backend",
        "pyg",
        "--threads",
        "1",
        "--time",
        "2",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["graphs"] == 5 and len(report["times_s"]) == 2 and report["threads"] == 1
    assert report["best_s"] == min(report["times_s"]) > 0 and "torch_geometric" in report["versions"]
    np.testing.assert_allclose(
        np.load(tmp_path / "e.npy"),
        gnn.embed_graphs(graphs, config, gnn.load_weights(tmp_path / "w.npz")[1]),
        atol=1e-6,
    )


def test_batching_does_not_change_embeddings():
    config = GnnConfig()
    arrays = gnn.random_weights(config, 5)
    graphs = [build_graph(s, 5) for s in random_fragments(20, seed=4)]
    graphs.insert(7, EMPTY)
    one = gnn.embed_graphs(graphs, config, arrays, batch_graphs=1)
    many = gnn.embed_graphs(graphs, config, arrays, batch_graphs=256)
    odd = gnn.embed_graphs(graphs, config, arrays, batch_graphs=6)
    np.testing.assert_allclose(one, many, atol=1e-6)
    np.testing.assert_allclose(odd, many, atol=1e-6)


def test_gnn_package_imports_stay_light():
    # The DGL environment imports this package: nothing beyond numpy (and torch in the models).
    code = (
        "import sys, hpcprep_genomics.gnn, hpcprep_genomics.gnn.cli_dgl, hpcprep_genomics.gnn.weights;"
        "heavy = [m for m in ('torch', 'torch_geometric', 'dgl', 'pyarrow', 'ray', 'hpcprep', 'numba') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_DIR)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dgl_backend_without_dgl_says_where_it_lives():
    try:
        import dgl  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("dgl imports in this environment")
    config = GnnConfig()
    with pytest.raises(RuntimeError, match="make dgl-env"):
        gnn.embed_graphs([build_graph("ACGTACGTAA", 5)], config, gnn.random_weights(config, 0), backend="dgl")
    with pytest.raises(ValueError, match="unknown GNN backend"):
        gnn.embed_graphs([build_graph("ACGTACGTAA", 5)], config, gnn.random_weights(config, 0), backend="jax")


def dgl_embed(tmp_path, weights: Path, graphs) -> np.ndarray:
    """Embeddings from the DGL environment, run as a subprocess."""
    if not DGL_PYTHON.exists():
        unavailable(f"no DGL environment at {DGL_PYTHON} (`make dgl-env` builds it)")
    graphs_path, out = tmp_path / "graphs.npz", tmp_path / "emb_dgl.npy"
    gnn.save_graphs(graphs_path, graphs)
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_DIR), "DGLBACKEND": "pytorch", "OMP_NUM_THREADS": "1"}
    cmd = [
        str(DGL_PYTHON),
        "-m",
        "hpcprep_genomics.gnn.cli_dgl",
        "--weights",
        str(weights),
        "--graphs",
        str(graphs_path),
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, f"DGL subprocess failed:\n{done.stdout}\n{done.stderr}"
    return np.load(out)


def test_pyg_and_dgl_agree(tmp_path):
    config = GnnConfig(k=5, hidden_dim=64, embed_dim=64, layers=2)
    weights = tmp_path / "w.npz"
    gnn.save_weights(weights, config, gnn.random_weights(config, seed=21))
    graphs = [build_graph(s, 5) for s in random_fragments(50, seed=6)]
    # Edges in another order, a node without edges and a zero count, an empty graph in the middle of a batch.
    graphs += [shuffled_edges(graphs[0], 2), shuffled_edges(graphs[1], 3), (ISOLATED[0] + 60,) + ISOLATED[1:]]
    graphs.insert(20, EMPTY)
    graphs.append(EMPTY)
    config2, arrays = gnn.load_weights(weights)
    pyg = gnn.embed_graphs(graphs, config2, arrays, backend="pyg", batch_graphs=16)
    dgl = dgl_embed(tmp_path, weights, graphs)
    assert dgl.shape == pyg.shape == (55, 64)
    np.testing.assert_allclose(dgl, pyg, atol=1e-5, rtol=0)
    assert not dgl[20].any() and not dgl[-1].any()
    np.testing.assert_allclose(np.stack([np_embed(g, config, arrays) for g in graphs[-4:-1]]), pyg[-4:-1], atol=1e-5)


# -- train-gnn --------------------------------------------------------------------------


def labelled_fragments(n_per_class: int, seed: int, length: int = 400):
    """GC-rich vs AT-rich random fragments."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for label, gc in (("gc_rich", 0.65), ("at_rich", 0.35)):
        p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        for _ in range(n_per_class):
            seqs.append("".join(rng.choice(list("ACGT"), length, p=p)))
            labels.append(label)
    return seqs, labels


def cli_group() -> click.Group:
    @click.group()
    def root():
        pass

    commands.register(root)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train_gnn")
    seqs, labels = labelled_fragments(50, seed=8)
    order = np.random.default_rng(9).permutation(len(seqs))
    table = pa.table({"sequence": [seqs[i] for i in order], "label": [labels[i] for i in order]})
    pq.write_table(table, tmp / "fragments.parquet")
    out = tmp / "w.npz"
    result = CliRunner().invoke(
        cli_group(),
        [
            "genomics",
            "train-gnn",
            str(tmp / "fragments.parquet"),
            "--label-column",
            "label",
            "--out",
            str(out),
            "--k",
            "5",
            "--epochs",
            "20",
            "--seed",
            "0",
        ],
    )
    return tmp, out, result


def test_train_gnn_learns_gc_content(trained):
    _, out, result = trained
    assert result.exit_code == 0, result.output + repr(result.exception)
    line = next(x for x in result.output.splitlines() if x.startswith("held-out accuracy:"))
    accuracy = float(line.split()[2])
    assert accuracy >= 0.9, result.output
    assert "gc_rich" in result.output and "at_rich" in result.output
    # progress on stderr: the first and the last epoch always, with the loss and the time left
    progress = [x for x in result.stderr.splitlines() if x.startswith("epoch ")]
    assert progress[0].startswith("epoch 1/20: loss ") and progress[-1].startswith("epoch 20/20: loss ")
    assert "about 0 s left" in progress[-1]
    meta = gnn.weights_meta(out)
    assert meta["held_out_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert meta["held_out_counts"] == {"at_rich": 10, "gc_rich": 10}
    config, _ = gnn.load_weights(out)
    assert config.k == 5 and config.classes == ("at_rich", "gc_rich")
    json.dumps(meta)  # plain JSON, no NaN objects


def test_trained_weights_load_in_both_backends(trained, tmp_path):
    _, out, result = trained
    assert result.exit_code == 0, result.output
    config, arrays = gnn.load_weights(out)
    seqs, labels = labelled_fragments(6, seed=99)
    graphs = [build_graph(s, config.k) for s in seqs]
    pyg = gnn.embed_graphs(graphs, config, arrays)
    np.testing.assert_allclose(np.linalg.norm(pyg, axis=1), 1.0, atol=1e-6)
    # The head on top of the embedding classifies fresh fragments.
    from hpcprep_genomics.gnn.model_pyg import LOGIT_SCALE

    logits = LOGIT_SCALE * pyg @ arrays["head.weight"].T + arrays["head.bias"]
    predicted = [config.classes[i] for i in logits.argmax(1)]
    assert sum(p == t for p, t in zip(predicted, labels, strict=True)) >= 10
    dgl = dgl_embed(tmp_path, out, graphs)
    np.testing.assert_allclose(dgl, pyg, atol=1e-5, rtol=0)


def test_train_gnn_reads_graph_columns(tmp_path):
    seqs, labels = labelled_fragments(8, seed=10, length=200)
    graphs = [np_debruijn(s, 4) for s in seqs]
    table = pa.table(
        {
            "label": labels,
            "node_codes": pa.array([g[0] for g in graphs], pa.list_(pa.uint64())),
            "edge_src": pa.array([g[1] for g in graphs], pa.list_(pa.int32())),
            "edge_dst": pa.array([g[2] for g in graphs], pa.list_(pa.int32())),
            "edge_counts": pa.array([g[3] for g in graphs], pa.list_(pa.uint32())),
        }
    )
    (tmp_path / "graphs").mkdir()
    pq.write_table(table.slice(0, 9), tmp_path / "graphs" / "part-0.parquet")
    pq.write_table(table.slice(9), tmp_path / "graphs" / "part-1.parquet")
    out = tmp_path / "w.npz"
    runner = CliRunner()
    result = runner.invoke(
        cli_group(),
        [
            "genomics",
            "train-gnn",
            str(tmp_path / "graphs"),
            "--out",
            str(out),
            "--k",
            "4",
            "--epochs",
            "2",
            "--embed-dim",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    config, arrays = gnn.load_weights(out)
    assert (config.k, config.embed_dim, config.n_classes) == (4, 16, 2)
    assert gnn.weights_meta(out)["graphs_from"] == "graphs"

    # Graphs built with a larger k than claimed fail with a message that says so.
    result = runner.invoke(
        cli_group(), ["genomics", "train-gnn", str(tmp_path / "graphs"), "--out", str(out), "--k", "3", "--epochs", "1"]
    )
    assert result.exit_code != 0 and "built with k > 3" in result.output
    result = runner.invoke(
        cli_group(),
        ["genomics", "train-gnn", str(tmp_path / "graphs"), "--out", str(out), "--label-column", "organism"],
    )
    assert result.exit_code != 0 and "no label column 'organism'" in result.output


def test_train_gnn_runs_a_spec_and_reads_its_parquet_sink(tmp_path, ray_local, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(12)
    for name, gc in (("gc_rich", 0.65), ("at_rich", 0.35)):
        p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        with open(f"{name}.fa", "w") as f:
            for i in range(2):
                f.write(f">{name}_{i}\n" + "".join(rng.choice(list("ACGT"), 2000, p=p)) + "\n")
    # Absolute paths: the session's Ray workers did not start in tmp_path.
    Path("spec.toml").write_text(
        f'[run]\nname = "gnn-train"\noutput = "{tmp_path}/out/run"\n\n'
        f'[reader]\nstage = "genomics.fasta"\npaths = ["{tmp_path}/gc_rich.fa", "{tmp_path}/at_rich.fa"]\n'
        'window = 400\nstride = 400\nlabel_from = "file_stem"\n\n'
        '[[encoders]]\nstage = "genomics.debruijn"\nk = 4\n\n'
        f'[[sinks]]\nstage = "parquet"\npath = "{tmp_path}/out/graphs"\npartition_cols = ["label"]\n'
    )
    runner = CliRunner()
    result = runner.invoke(cli_group(), ["genomics", "train-gnn", "spec.toml", "--out", "w.npz", "--epochs", "3"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"training from {tmp_path}/out/graphs" in result.output
    config, _ = gnn.load_weights("w.npz")
    assert config.k == 4, "k comes from the spec's genomics.debruijn stage"
    assert config.classes == ("at_rich", "gc_rich")
    meta = gnn.weights_meta("w.npz")
    assert sum(meta["train_counts"].values()) + sum(meta["held_out_counts"].values()) == 20
    assert meta["graphs_from"] == "graphs"

    result = runner.invoke(
        cli_group(), ["genomics", "train-gnn", "spec.toml", "--out", "w.npz", "--overwrite", "--k", "5"]
    )
    assert result.exit_code != 0 and "built its graphs with k = 4" in result.output


def test_training_table_order_does_not_depend_on_file_names(tmp_path):
    """A run's Parquet files are named by attempt id, so their read order changes between
    runs; train-gnn sorts by record_id so that training sees the same order every time."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from hpcprep_genomics.commands import read_training_table

    ids = [f"r{i:03d}" for i in range(10)]
    table = pa.table({"record_id": ids, "label": ["a", "b"] * 5, "sequence": ["ACGTACGTAC"] * 10})
    for name, (first, second) in {"one": ("x", "y"), "two": ("y", "x")}.items():
        (tmp_path / name).mkdir()
        pq.write_table(table.slice(0, 5), tmp_path / name / f"part-{first}.parquet")
        pq.write_table(table.slice(5), tmp_path / name / f"part-{second}.parquet")
    one, _ = read_training_table(str(tmp_path / "one"), "label", "sequence")
    two, _ = read_training_table(str(tmp_path / "two"), "label", "sequence")
    assert one["record_id"].to_pylist() == two["record_id"].to_pylist() == ids
