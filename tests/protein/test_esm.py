"""protein.esm_embed against a tiny randomly initialised ESM-2 the tests build: the same
numbers as a direct transformers forward pass, independent of batching, offline."""

from __future__ import annotations

import pickle
import socket
import sys

import hpcprep
import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import require_module

require_module("transformers")

import torch  # noqa: E402
from hpcprep.spec import SpecError  # noqa: E402
from hpcprep.testing import assert_stage_ok  # noqa: E402
from hpcprep_protein.esm import ESM2_VOCAB, EsmEmbed, make_tiny_esm  # noqa: E402
from transformers import EsmModel, EsmTokenizer  # noqa: E402

SEQS = ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "GSHMLEDPVD", "ACDEFGHIKLMNPQRSTVWY", "MK"]


@pytest.fixture(scope="module")
def tiny_esm(tmp_path_factory):
    return make_tiny_esm(tmp_path_factory.mktemp("esm") / "tiny-esm2", seed=1)


def _batch(seqs):
    return {
        "source": np.array(["x.fasta"] * len(seqs), dtype=object),
        "record_id": np.array([str(i) for i in range(len(seqs))], dtype=object),
        "sequence": np.array(seqs, dtype=object),
    }


def _embed(model_dir, seqs, **params):
    stage = EsmEmbed({"model": str(model_dir), **params})
    stage.setup()
    out = stage.encode(_batch(seqs))
    return {k: v.to_pylist() if hasattr(v, "to_pylist") else v for k, v in out.items()}


def test_vocabulary_is_esm2_order(tiny_esm):
    tok = EsmTokenizer.from_pretrained(str(tiny_esm), local_files_only=True)
    assert [tok.convert_ids_to_tokens(i) for i in range(33)] == list(ESM2_VOCAB)
    assert (tok.cls_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok("LAG")["input_ids"] == [0, 4, 5, 6, 2]


def test_matches_direct_forward_pass(tiny_esm):
    tok = EsmTokenizer.from_pretrained(str(tiny_esm), local_files_only=True)
    model = EsmModel.from_pretrained(str(tiny_esm), local_files_only=True, add_pooling_layer=False).eval()
    mean = _embed(tiny_esm, SEQS, per_residue=True)
    cls = _embed(tiny_esm, SEQS, pooling="cls")
    hidden = model.config.hidden_size
    for i, s in enumerate(SEQS):
        with torch.no_grad():
            h = model(**tok(s, return_tensors="pt")).last_hidden_state[0].numpy()
        assert h.shape == (len(s) + 2, hidden)
        np.testing.assert_allclose(mean["esm_embedding"][i], h[1 : len(s) + 1].mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(cls["esm_embedding"][i], h[0], atol=1e-5)
        residues = np.asarray(mean["esm_residues"][i], dtype=np.float32).reshape(len(s), hidden)
        np.testing.assert_allclose(residues, h[1 : len(s) + 1], atol=1e-5)


def test_batching_and_padding_do_not_change_results(tiny_esm):
    together = _embed(tiny_esm, SEQS, per_residue=True)["esm_embedding"]
    small_batches = _embed(tiny_esm, SEQS, batch_tokens=40)["esm_embedding"]  # groups of 1-3, padded
    for i, s in enumerate(SEQS):
        alone = _embed(tiny_esm, [s])["esm_embedding"][0]
        np.testing.assert_allclose(together[i], alone, atol=1e-5)
        np.testing.assert_allclose(small_batches[i], alone, atol=1e-5)
    assert _embed(tiny_esm, SEQS)["esm_embedding"] == together  # deterministic


def test_unknown_letters_are_one_unk_token_each(tiny_esm):
    out = _embed(tiny_esm, ["MKJJT", "MKXXT", "mkjjt"], per_residue=True)
    hidden = 32
    assert [len(r) for r in out["esm_residues"]] == [5 * hidden] * 3
    np.testing.assert_allclose(out["esm_embedding"][0], out["esm_embedding"][2], atol=1e-6)  # upper-cased
    assert not np.allclose(out["esm_embedding"][0], out["esm_embedding"][1])  # J -> <unk>, not X


def test_declared_outputs_from_config(tiny_esm):
    stage = EsmEmbed({"model": str(tiny_esm), "per_residue": True})
    assert [(c.name, c.type) for c in stage.outputs] == [
        ("esm_embedding", "fixed_size_list<float32>[32]"),
        ("esm_residues", "list<float32>"),
    ]
    assert [c.name for c in EsmEmbed({"model": str(tiny_esm)}).outputs] == ["esm_embedding"]


def test_kit(tmp_path):
    assert_stage_ok(EsmEmbed, tmp_path)


def test_loads_without_network(tiny_esm, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    out = _embed(tiny_esm, ["MKT"])
    assert len(out["esm_embedding"][0]) == 32


def test_cuda_variant_without_cuda_is_a_clear_error(tiny_esm):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    stage = EsmEmbed({"model": str(tiny_esm)})
    stage.variant = "cuda"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        stage.setup()


def _spec(tmp_path, model, fasta, **params):
    return {
        "run": {"name": "esm", "output": str(tmp_path / "out")},
        "reader": {"stage": "protein.fasta", "paths": [str(fasta)]},
        "encoders": [{"stage": "protein.esm_embed", "model": str(model), **params}],
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "out" / "table")}],
    }


def test_missing_model_is_a_spec_error(tmp_path):
    fasta = tmp_path / "x.fasta"
    fasta.write_text(">sp|P1|A one\nMKT\n")
    with pytest.raises(SpecError, match=r"protein\.esm_embed.*no such checkpoint directory"):
        hpcprep.run(_spec(tmp_path, tmp_path / "nope", fasta), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match=r"protein\.esm_embed.*no config\.json"):
        hpcprep.run(_spec(tmp_path, tmp_path / "empty", fasta), progress=False)


def test_too_long_sequence_goes_to_the_errors_table(tmp_path, tiny_esm, ray_local):
    fasta = tmp_path / "x.fasta"
    fasta.write_text(
        ">sp|P00001|A_HUMAN short one\nMKTAYIAKQR\n"
        ">sp|P00002|B_HUMAN too long\n" + "A" * 30 + "\n"
        ">sp|P00003|C_HUMAN short two\nGSHMLEDPVD\n"
    )
    result = hpcprep.run(_spec(tmp_path, tiny_esm, fasta, max_length=20), progress=False)
    errors = result.errors().to_pylist()
    assert len(errors) == 1 and "30 residues" in errors[0]["message"] and "max_length=20" in errors[0]["message"]
    rows = pq.read_table(tmp_path / "out" / "table").to_pylist()
    assert sorted(r["sequence"] for r in rows) == ["GSHMLEDPVD", "MKTAYIAKQR"]
    direct = _embed(tiny_esm, [r["sequence"] for r in rows])["esm_embedding"]
    np.testing.assert_allclose([r["esm_embedding"] for r in rows], direct, atol=1e-5)


class _RunsCodeWhenUnpickled:
    """A pickle payload: unpickling it creates the file ``path`` (as hostile code could do anything)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _pickle_only_checkpoint(tiny_esm, folder):
    folder.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny_esm / name).read_bytes())
    marker = folder.parent / "unpickled"
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"payload": _RunsCodeWhenUnpickled(marker)}, f)
    return folder, marker


def test_pickle_only_checkpoint_is_refused(tmp_path, tiny_esm):
    model, marker = _pickle_only_checkpoint(tiny_esm, tmp_path / "bin-only")
    with pytest.raises(ValueError, match=r"only pickle weights \(pytorch_model\.bin\).*loads safetensors only"):
        EsmEmbed({"model": str(model)})
    fasta = tmp_path / "x.fasta"
    fasta.write_text(">sp|P1|A one\nMKT\n")
    with pytest.raises(SpecError, match=r"protein\.esm_embed.*only pickle weights"):  # before Ray starts
        hpcprep.run(_spec(tmp_path, model, fasta), progress=False)
    assert not marker.exists()


def test_weights_swapped_after_validation_are_not_unpickled(tmp_path, tiny_esm):
    """setup() loads with use_safetensors=True: a directory that lost its safetensors
    file after the spec was validated is an error there too, not a pickle load."""
    model = tmp_path / "swapped"
    model.mkdir()
    for path in tiny_esm.iterdir():
        (model / path.name).write_bytes(path.read_bytes())
    stage = EsmEmbed({"model": str(model)})
    (model / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    with open(model / "pytorch_model.bin", "wb") as f:
        pickle.dump({"payload": _RunsCodeWhenUnpickled(marker)}, f)
    with pytest.raises(OSError, match="model.safetensors"):
        stage.setup()
    assert not marker.exists()


def test_declared_input_is_the_sequence_column(tiny_esm):
    stage = EsmEmbed({"model": str(tiny_esm), "column": "seq", "per_residue": True})
    assert [(i.name, i.types) for i in stage.inputs] == [("seq", "string|large_string")]
    stage.setup()
    batch = _batch(SEQS)
    batch["seq"] = batch.pop("sequence")
    batch["other"] = np.arange(len(SEQS))
    reduced = {k: batch[k] for k in ("source", "record_id", "seq")}
    full, only = stage.encode(batch), stage.encode(reduced)
    assert {k: v.to_pylist() for k, v in full.items()} == {k: v.to_pylist() for k, v in only.items()}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (CI has none; run on a GPU)")
def test_cuda_variant_equals_cpu(tiny_esm):
    """Seen on an NVIDIA H200: max |cuda - cpu| 4.2e-7 for pooled and 1.2e-6 for per-residue values."""
    rng = np.random.default_rng(0)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWYX"))
    seqs = ["".join(rng.choice(letters, size=int(n))) for n in rng.integers(20, 300, 32)]
    batch = {
        "source": np.array(["s"] * len(seqs), dtype=object),
        "record_id": np.array([hpcprep.record_id("s", i) for i in range(len(seqs))], dtype=object),
        "sequence": np.array(seqs, dtype=object),
    }
    out = {}
    for variant in ("cpu", "cuda"):
        stage = EsmEmbed({"model": str(tiny_esm), "per_residue": True})
        stage.variant = variant
        stage.setup()
        result = stage.encode(batch)
        out[variant] = (np.asarray(result["esm_embedding"].to_pylist()), result["esm_residues"].to_pylist())
    assert np.abs(out["cpu"][0] - out["cuda"][0]).max() < 1e-4
    for a, b in zip(out["cpu"][1], out["cuda"][1]):
        assert np.abs(np.asarray(a) - np.asarray(b)).max() < 1e-4
