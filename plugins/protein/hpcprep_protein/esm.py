"""``protein.esm_embed``: embeddings from a local ESM-2 checkpoint (Hugging Face format).

Optional: needs ``pip install "hpcprep-protein[esm]"`` (``transformers``, on the torch
that lies on the machine). The stage never downloads: ``model`` is a checkpoint
directory on disk (``config.json``, ``model.safetensors``, ``vocab.txt``), loaded with
``local_files_only=True``, ``use_safetensors=True`` and ``HF_HUB_OFFLINE=1``: a checkpoint
with only pickle weights (``pytorch_model.bin``) is refused when the spec is validated.

Tokens. ESM-2's vocabulary (``vocab.txt``, 33 tokens, ids in this order) is::

    0 <cls>  1 <pad>  2 <eos>  3 <unk>  4.. L A G V S E R T I D P K Q N F Y M H W C X B U Z O . -
    31 <null_1>  32 <mask>

Each residue is one token: ``<cls>`` + residues + ``<eos>``, so residue i sits at
token i + 1 (``protein.ss_labels`` with ``target = "esm"`` aligns labels the same way).
The stage tokenises each character itself instead of calling the tokenizer on the
string, because the Hugging Face ``EsmTokenizer`` turns a run of unknown letters
("JJ", or lower case "mkt") into a single ``<unk>``, which would shift every later
residue. Sequences are upper-cased (soft-masked FASTA); a character that is not a
one-letter token of the vocabulary (J, '*', digits, ...) becomes ``<unk>``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from hpcprep import Column, Encoder, Input, LocalPath, Params, RecordError, StageExamples, record_id
from hpcprep.columns import column_of, list_column, vector_column
from pydantic import Field

ESM2_VOCAB = (
    "<cls>",
    "<pad>",
    "<eos>",
    "<unk>",
    "L",
    "A",
    "G",
    "V",
    "S",
    "E",
    "R",
    "T",
    "I",
    "D",
    "P",
    "K",
    "Q",
    "N",
    "F",
    "Y",
    "M",
    "H",
    "W",
    "C",
    "X",
    "B",
    "U",
    "Z",
    "O",
    ".",
    "-",
    "<null_1>",
    "<mask>",
)


class EsmEmbedParams(Params):
    model: LocalPath = Field(description="local ESM-2 checkpoint directory (Hugging Face format, with config.json)")
    column: str = Field("sequence", description="column with the one-letter amino-acid sequence")
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="mean over the residue tokens (<cls> and <eos> left out), or the <cls> token"
    )
    per_residue: bool = Field(False, description="also output esm_residues: L x hidden, special tokens removed")
    max_length: int = Field(
        1022, ge=1, description="longest sequence in residues; longer ones are errors (never truncated)"
    )
    batch_tokens: int = Field(
        8192, ge=1, description="tokens per forward pass, padding included (sequences are grouped by length)"
    )


def _read_config(model: str) -> dict:
    path = Path(model)
    if not path.is_dir():
        raise ValueError(f"model {model!r}: no such checkpoint directory (the stage never downloads)")
    config = path / "config.json"
    if not config.is_file():
        raise ValueError(f"model {model!r}: no config.json; expected a Hugging Face ESM-2 checkpoint directory")
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"model {model!r}: config.json is not readable JSON ({exc})") from None
    if data.get("model_type") != "esm" or not isinstance(data.get("hidden_size"), int):
        raise ValueError(f"model {model!r}: config.json is not an ESM config (model_type={data.get('model_type')!r})")
    return data


#: Weight files that are Python pickles: loading one runs whatever code it holds.
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "pytorch_model.bin.index.json")


def _check_weights(model: str) -> None:
    """Refuse a checkpoint without safetensors weights: the stage never unpickles, since a
    pickled checkpoint (pytorch_model.bin) can run arbitrary code when it is loaded."""
    path = Path(model)
    if (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file():
        return
    pickles = sorted({p.name for pattern in PICKLE_WEIGHTS for p in path.glob(pattern)})
    if not pickles:
        raise ValueError(f"model {model!r}: no model.safetensors (the stage loads safetensors weights only)")
    raise ValueError(
        f"model {model!r}: only pickle weights ({', '.join(pickles)}), and the stage loads safetensors only, "
        "because unpickling a checkpoint can run code hidden in it. Convert it once, where you trust the file: "
        "EsmModel.from_pretrained(DIR).save_pretrained(DIR) writes model.safetensors"
    )


class EsmEmbed(Encoder):
    """ESM-2 protein embeddings from a local checkpoint: one pooled vector per sequence (optional)."""

    name = "protein.esm_embed"
    Params = EsmEmbedParams
    needs_setup = True
    variants = ("cpu", "cuda")
    batch_size = 64
    #: Sequences are read as Python ``str``; bytes would be refused row by row.
    inputs = (Input("sequence", "string|large_string", "one-letter amino-acid sequence"),)
    outputs = (
        Column("esm_embedding", "fixed_size_list<float32>[hidden]", "pooled last hidden state (hidden from config)"),
    )

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        config = _read_config(p.model)
        _check_weights(p.model)
        self._hidden = config["hidden_size"]
        limit = config.get("max_position_embeddings")
        if config.get("position_embedding_type", "absolute") == "absolute" and limit and p.max_length + 2 > limit:
            raise ValueError(
                f"max_length={p.max_length} + 2 special tokens exceeds the model's max_position_embeddings={limit}"
            )
        how = "mean over residue tokens" if p.pooling == "mean" else "the <cls> token"
        outputs = [Column("esm_embedding", f"fixed_size_list<float32>[{self._hidden}]", f"last hidden state, {how}")]
        if p.per_residue:
            outputs.append(
                Column(
                    "esm_residues",
                    "list<float32>",
                    f"L x {self._hidden}, flattened: last hidden state per residue, <cls>/<eos> removed",
                )
            )
        self.outputs = tuple(outputs)
        self.inputs = (Input(p.column, "string|large_string", "one-letter amino-acid sequence"),)
        self._model = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_model"] = None  # a loaded model never travels; workers load it in setup
        state.pop("_torch", None)
        return state

    def _device(self):
        import torch

        if self.variant != "cuda":
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise RuntimeError("placement chose the cuda variant, but torch sees no CUDA device on this worker")
        return torch.device("cuda")

    def setup(self) -> None:
        # Offline before transformers/huggingface_hub are imported: they read these at import time.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from transformers import EsmModel, EsmTokenizer
        from transformers.utils import logging as hf_logging

        device = self._device()
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # an EsmForMaskedLM checkpoint has lm_head weights EsmModel leaves out
        hf_logging.disable_progress_bar()
        try:
            tokenizer = EsmTokenizer.from_pretrained(self.params.model, local_files_only=True)
            # use_safetensors: never fall back to a pickle, even if the directory changed since validation.
            model = EsmModel.from_pretrained(
                self.params.model, local_files_only=True, use_safetensors=True, add_pooling_layer=False
            )
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        model = model.float().to(device).eval()
        lookup = np.full(256, tokenizer.unk_token_id, dtype=np.int64)
        for code in range(256):
            ch = chr(code).upper()
            if len(ch) == 1 and ch in tokenizer.get_vocab():
                lookup[code] = tokenizer.get_vocab()[ch]
        self._lookup = lookup
        self._special = (tokenizer.cls_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
        self._torch = torch
        self._device_ = device
        self._model = model

    def _tokens(self, batch) -> list[np.ndarray]:
        p = self.params
        values = column_of(batch, p.column)
        cls_id, eos_id, _ = self._special
        out = []
        for v in values:
            if not isinstance(v, str):
                raise RecordError(f"column {p.column!r} holds {type(v).__name__}, not a sequence")
            if len(v) > p.max_length:
                raise RecordError(f"sequence of {len(v)} residues is longer than max_length={p.max_length}")
            if not v:
                raise RecordError("empty sequence")
            codes = np.frombuffer(v.encode("latin-1", errors="replace"), dtype=np.uint8)
            out.append(np.concatenate([[cls_id], self._lookup[codes], [eos_id]]))
        return out

    def encode(self, batch):
        if self._model is None:
            self.setup()
        torch = self._torch
        tokens = self._tokens(batch)
        pooled = np.zeros((len(tokens), self._hidden), dtype=np.float32)
        residues: list[np.ndarray | None] = [None] * len(tokens)
        pad_id = self._special[2]
        # Longest first, then greedy groups under batch_tokens: little padding, and a
        # sequence's result does not depend on its neighbours (attention mask).
        order = sorted(range(len(tokens)), key=lambda i: -len(tokens[i]))
        start = 0
        with torch.inference_mode():
            while start < len(order):
                width = len(tokens[order[start]])
                stop = start + max(1, self.params.batch_tokens // width)
                group = order[start:stop]
                ids = np.full((len(group), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(group), width), dtype=np.int64)
                for row, i in enumerate(group):
                    ids[row, : len(tokens[i])] = tokens[i]
                    mask[row, : len(tokens[i])] = 1
                out = self._model(
                    input_ids=torch.from_numpy(ids).to(self._device_),
                    attention_mask=torch.from_numpy(mask).to(self._device_),
                )
                hidden = out.last_hidden_state.float().cpu().numpy()
                for row, i in enumerate(group):
                    res = hidden[row, 1 : len(tokens[i]) - 1]
                    pooled[i] = res.mean(axis=0) if self.params.pooling == "mean" else hidden[row, 0]
                    residues[i] = np.ascontiguousarray(res, dtype=np.float32).reshape(-1)
                start = stop
        result = {"esm_embedding": vector_column(pooled)}
        if self.params.per_residue:
            result["esm_residues"] = list_column(residues, pa.float32())
        return result

    @classmethod
    def examples(cls, workdir):
        model = make_tiny_esm(Path(workdir) / "tiny-esm2")
        good = _seq_batch(["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVDAFQAKLX", "ACDEFGHIKLMNPQRSTVWYBZUOJ", "mkt"])
        bad = _seq_batch(["ACDE", "A" * 40])
        return StageExamples(
            params={"model": str(model), "per_residue": True, "max_length": 30, "batch_tokens": 40},
            good=good,
            bad=bad,
        )


def _seq_batch(seqs: list[str]) -> dict:
    sources = [f"example-{i}.fasta" for i in range(len(seqs))]
    return {
        "source": np.array(sources, dtype=object),
        "record_id": np.array([record_id(s, 0) for s in sources], dtype=object),
        "sequence": np.array(seqs, dtype=object),
    }


def make_tiny_esm(path: str | Path, seed: int = 0, hidden: int = 32) -> Path:
    """Save a tiny randomly initialised ESM-2 (2 layers, real vocabulary) to ``path``:
    for tests and examples only; its embeddings mean nothing."""
    import torch
    from transformers import EsmConfig, EsmForMaskedLM, EsmTokenizer

    path = Path(path)
    if (path / "config.json").is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(ESM2_VOCAB) + "\n")
    # The fields an ESM-2 config has (rotary positions, token dropout scaling), scaled down.
    config = EsmConfig(
        vocab_size=len(ESM2_VOCAB),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=1026,
        position_embedding_type="rotary",
        token_dropout=True,
        emb_layer_norm_before=False,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        mask_token_id=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    EsmForMaskedLM(config).save_pretrained(path)
    EsmTokenizer(str(vocab)).save_pretrained(path)
    return path
