"""The genomics stages through the plugin test kit and through a real run."""

from __future__ import annotations

import re

import hpcprep
import numpy as np
import pyarrow.parquet as pq
import pytest
from hpcprep.spec import SpecError
from hpcprep.testing import assert_plugin_ok
from hpcprep_genomics import kernels, plugin  # noqa: E402
from hpcprep_genomics.encoders import ENCODERS, GRAPH_INPUTS, Debruijn, GnnEmbed, ReverseComplement  # noqa: E402
from hpcprep_genomics.fastx import GAP_MIN  # noqa: E402
from hpcprep_genomics.readers import FastaReader, FastqReader  # noqa: E402

from tests.conftest import require_module

RECORDS = {
    "chr1": "ACGTACGTTTGACCAnnnnACGTTAGCTAGGCATCGATCGGATCGATCGTAGCTAGCTAGCATGCATCGA",
    "chr2": "ggccttaaGGCCTTAAACGTRYACGTACGTTTTTGGGGCCCCAAAA",
    "chr3": "ATATATATGCGCGCGCATATNNNNNNNNNNATATGCGC",
    "chr4": "ACGTTGCAAC" * 2 + "N" * 60 + "ACGTAC",  # an assembly gap, then a 6-base tail
}


def kept_windows(seq: str, window: int) -> list[int]:
    """Window starts genomics.fasta keeps by default: not a tail shorter than half a window,
    not a window lying wholly in a run of GAP_MIN or more N."""
    gaps = [m.span() for m in re.finditer(f"[Nn]{{{GAP_MIN},}}", seq)]
    out = []
    for start in range(0, len(seq), window):
        end = min(start + window, len(seq))
        if start and end - start < window // 2:
            continue
        if any(a <= start and end <= b for a, b in gaps):
            continue
        out.append(start)
    return out


def write_fasta(path, records, width=17):
    with open(path, "w") as f:
        for name, seq in records.items():
            f.write(f">{name} test record\n")
            for i in range(0, len(seq), width):
                f.write(seq[i : i + width] + "\n")
    return path


def test_plugin_passes_the_kit(tmp_path):
    assert_plugin_ok(plugin, tmp_path)


def spec(tmp_path, fasta, encoders, window=20):
    return {
        "run": {"name": "genomics-stages", "output": str(tmp_path / "out")},
        "reader": {"stage": "genomics.fasta", "paths": [str(fasta)], "window": window, "label": "toy"},
        "encoders": encoders,
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "out" / "table")}],
    }


def test_encoders_in_a_run_match_the_kernels(tmp_path, ray_local):
    fasta = write_fasta(tmp_path / "toy.fa", RECORDS)
    encoders = [
        {"stage": "genomics.onehot"},
        {"stage": "genomics.twobit"},
        {"stage": "genomics.kmer_counts", "k": 3, "canonical": True},
        {"stage": "genomics.kmer_counts", "k": 11, "column": "sequence"},
        {"stage": "genomics.kmer_spectrum", "k": 3},
        {"stage": "genomics.tokenize", "k": 3, "stride": 2},
        {"stage": "genomics.debruijn", "k": 4},
        {"stage": "genomics.gnn_embed", "random_init_seed": 3, "k": 4},
    ]
    result = hpcprep.run(spec(tmp_path, fasta, encoders), progress=False)
    table = pq.read_table(tmp_path / "out" / "table").sort_by([("name", "ascending"), ("offset", "ascending")])
    rows = table.to_pylist()
    windows = [(n, o) for n, s in RECORDS.items() for o in kept_windows(s, 20)]
    expected_windows = len(windows)
    # the reader skips the gap and the short tails, which the spectrum stage would refuse
    assert (len(windows), sum(-(-len(s) // 20) for s in RECORDS.values())) == (9, 14)
    bad = [(n, o) for n, o in windows if not kernels.kmer_spectrum(RECORDS[n][o : o + 20].encode(), 3).any()]
    assert len(rows) == expected_windows - len(bad)
    c = result.counts
    assert (c["inputs"], c["outputs"], c["errors"], c["balanced"]) == (expected_windows, len(rows), len(bad), True)
    for row in rows:
        seq = RECORDS[row["name"]][row["offset"] : row["offset"] + row["length"]]
        assert row["sequence"] == seq
        b = seq.encode()
        assert np.array_equal(np.array(row["onehot"], np.uint8).reshape(-1, 4), kernels.onehot(b))
        packed, mask = kernels.pack_2bit(b)
        assert row["twobit"] == packed.tobytes()
        assert np.array_equal(np.unpackbits(np.frombuffer(row["n_mask"], np.uint8))[: len(b)].astype(bool), mask)
        codes, counts = kernels.kmer_counts_sparse(b, 11)
        assert row["kmer_codes"] == codes.tolist()
        assert np.array_equal(np.array(row["spectrum"], np.float32), kernels.kmer_spectrum(b, 3))
        assert row["input_ids"] == kernels.tokenize(b, scheme="kmer", k=3, stride=2).tolist()
        nodes, src, dst, ecounts = kernels.debruijn_graph(b, 4)
        assert row["node_codes"] == nodes.tolist() and row["edge_src"] == src.tolist()
        assert row["n_edges"] == len(src) and sum(row["edge_counts"]) == int(ecounts.sum())
        assert len(row["embedding"]) == 64
        assert abs(np.linalg.norm(row["embedding"]) - 1) < 1e-5
    # The later kmer_counts (k=11, sparse) replaced the dense k=3 counts of the same name:
    # the canonical dense counts of the first stage are gone, the sparse ones are there.
    assert table.schema.field("kmer_counts").type.value_type.bit_width == 32
    notes = result.manifest["notes"]
    assert "encoders[7] (genomics.gnn_embed): embeddings from untrained random weights (random_init_seed=3)" in notes
    assert any("(genomics.fasta): 3 window(s) lying wholly in an assembly gap" in n for n in notes), notes
    assert any("(genomics.fasta): 2 tail window(s) shorter than min_tail = 10 bases skipped" in n for n in notes)


def test_reverse_complement_augment_fans_out(tmp_path, ray_local):
    fasta = write_fasta(tmp_path / "toy.fa", RECORDS)
    encoders = [{"stage": "genomics.reverse_complement", "mode": "augment"}]
    result = hpcprep.run(spec(tmp_path, fasta, encoders, window=1000), progress=False)
    rows = pq.read_table(tmp_path / "out" / "table").to_pylist()
    assert len(rows) == 2 * len(RECORDS)
    by_id = {r["record_id"]: r for r in rows}
    assert len(by_id) == len(rows), "augmented records get their own ids"
    for r in rows:
        if r["strand"] == "-":
            fwd = by_id[r["record_id"].removesuffix("-rc")]
            assert r["sequence"] == kernels.reverse_complement(fwd["sequence"].encode()).decode()
    stages = {s["where"]: s for s in result.manifest["stages"]}
    assert stages["encoders[0]"]["rows_in"] == len(RECORDS) and stages["encoders[0]"]["rows_out"] == 2 * len(RECORDS)
    assert result.counts["balanced"]


def test_gnn_embed_needs_weights_or_a_seed(tmp_path):
    fasta = write_fasta(tmp_path / "toy.fa", RECORDS)
    with pytest.raises(SpecError) as err:
        hpcprep.run(spec(tmp_path, fasta, [{"stage": "genomics.gnn_embed"}]), progress=False)
    assert "genomics.gnn_embed" in str(err.value) and "random_init_seed" in str(err.value)
    with pytest.raises(SpecError) as err:
        hpcprep.run(
            spec(tmp_path, fasta, [{"stage": "genomics.gnn_embed", "weights": str(tmp_path / "nope.npz")}]),
            progress=False,
        )
    assert "nope.npz" in str(err.value)


def test_kmer_counts_rejects_dense_k_too_large(tmp_path):
    fasta = write_fasta(tmp_path / "toy.fa", RECORDS)
    with pytest.raises(SpecError) as err:
        hpcprep.run(
            spec(tmp_path, fasta, [{"stage": "genomics.kmer_counts", "k": 14, "format": "dense"}]), progress=False
        )
    assert "encoders[0] (genomics.kmer_counts)" in str(err.value) and "k <= 13" in str(err.value)


def test_gnn_embed_goes_to_gpus_where_the_cluster_has_them(tmp_path):
    from hpcprep.placement import ClusterInfo
    from hpcprep.plugins import PluginRegistry
    from hpcprep.runner import decide_placements
    from hpcprep.spec import resolve

    fasta = write_fasta(tmp_path / "toy.fa", RECORDS)
    encoders = [{"stage": "genomics.kmer_spectrum", "k": 3}, {"stage": "genomics.gnn_embed", "random_init_seed": 1}]
    reg = PluginRegistry(extra_plugins=[plugin], load_entry_points=False)
    resolved = resolve(spec(tmp_path, fasta, encoders), reg)
    spectrum, embed = decide_placements(resolved, reg, ClusterInfo(cpus=8, gpus=2))
    assert spectrum.variant == "cpu" and spectrum.num_gpus == 0
    assert (embed.variant, embed.num_gpus, embed.concurrency) == ("cuda", 1.0, 2)
    _, embed_cpu = decide_placements(resolved, reg, ClusterInfo(cpus=8))
    assert (embed_cpu.variant, embed_cpu.num_gpus) == ("cpu", 0)


def test_cuda_variant_without_a_gpu_says_so():
    torch = require_module("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from hpcprep_genomics.encoders import GnnEmbed

    stage = GnnEmbed({"random_init_seed": 1})
    stage.variant = "cuda"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        stage.setup()


# -- declared inputs -----------------------------------------------------------------------


def _plain(values) -> list:
    return values.to_pylist() if hasattr(values, "to_pylist") else np.asarray(values).tolist()


def _decoy(batch: dict) -> dict:
    """``batch`` with columns an encoder must not read: other text, a wrong-k graph."""
    n = len(batch["record_id"])
    other = np.array(["TTTTGGGGCCCCAAAATTGCA"[: 8 + i] for i in range(n)], dtype=object)
    wrong = Debruijn({"k": 3}).encode({**batch, "sequence": other})
    return {**batch, "name": np.array([f"n{i}" for i in range(n)], dtype=object), "quality": other, **wrong}


def _variants(cls, ex) -> list[dict]:
    out = [ex.params, {**ex.params, "column": "dna"}]
    if cls is GnnEmbed:
        out.append({**ex.params, "graphs_from": "debruijn"})
    if cls is ReverseComplement:
        out.append({**ex.params, "mode": "augment"})
    return out


@pytest.mark.parametrize("cls", ENCODERS, ids=lambda c: c.name)
def test_each_encoder_reads_only_its_declared_inputs(tmp_path, cls):
    """``encode`` on a batch cut down to the declared inputs (with source and record_id)
    gives what it gives on a batch full of other columns: the inputs are all it reads."""
    ex = cls.examples(tmp_path)
    for params in _variants(cls, ex):
        stage = cls(params)
        full = _decoy(dict(ex.good))
        if stage.params.column != "sequence":  # the sequence moves; a decoy takes its old name
            full["dna"], full["sequence"] = full["sequence"], full["quality"]
        if getattr(stage.params, "graphs_from", "sequence") == "debruijn":
            truth = Debruijn({"k": stage._k, "column": stage.params.column}).encode(full)
            full = {**full, **truth, stage.params.column: full["quality"]}
        names = {"source", "record_id", *(i.name for i in stage.inputs)}
        reduced = {k: v for k, v in full.items() if k in names}
        assert len(reduced) == len(names), f"{cls.name} {params}: the example lacks a declared input"
        got, want = stage.encode(reduced), stage.encode(full)
        assert set(got) <= set(want) and {c.name for c in stage.outputs} <= set(got), (cls.name, params)
        for name in got:
            assert _plain(got[name]) == _plain(want[name]), (cls.name, params, name)


def test_declared_input_types_match_what_genomics_stages_declare():
    declared = {c.name: c.type for reader in (FastaReader, FastqReader) for c in reader.outputs}
    graphs = {c.name: c.type for c in Debruijn.outputs}
    for cls in ENCODERS:
        for inp in cls.inputs:
            assert inp.accepts(declared[inp.name]), (cls.name, inp)
    assert all(i.accepts(graphs[i.name]) for i in GRAPH_INPUTS)
    assert not any(i.accepts("string") for i in GRAPH_INPUTS)
    # a reverse complement is text the sequence encoders take
    assert all(cls.inputs[0].accepts(ReverseComplement.outputs[0].type) for cls in ENCODERS)
    embed = GnnEmbed({"random_init_seed": 0, "graphs_from": "debruijn"})
    assert [i.name for i in embed.inputs] == ["node_codes", "edge_src", "edge_dst", "edge_counts"]
    assert [i.name for i in GnnEmbed({"random_init_seed": 0, "column": "dna"}).inputs] == ["dna"]
