"""Encoder stages: thin wrappers that turn batches of sequences into kernel calls.

Every encoder reads the reader's ``sequence`` column (``column`` changes it), and says so
in ``inputs`` for the wiring check before Ray starts (``genomics.gnn_embed`` with
``graphs_from = "debruijn"`` reads the graph columns of ``genomics.debruijn`` instead), and
adds its own columns. Variable-length results (one-hot, tokens, graphs) are list columns
built straight from flat NumPy buffers and offsets, so no Python object per value is
made; fixed-length vectors (spectra, embeddings) are ``fixed_size_list<float32>[d]``
columns that the LanceDB sink indexes.

One module because each stage is a few lines of parameters and declared columns around
a call into ``kernels``; they share the sequence-column helpers at the top.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from hpcprep import (
    Column,
    Input,
    LocalPath,
    RecordError,
    StageExamples,
    TextColumnEncoder,
    TextColumnParams,
    record_id,
)
from hpcprep.columns import ascii_records, ascii_texts, column_of, flat_list_column, list_column, vector_column
from pydantic import Field, model_validator

from . import kernels


class SequenceParams(TextColumnParams):
    column: str = Field("sequence", description="column holding the DNA sequence (text)")


class SequenceEncoder(TextColumnEncoder):
    """An encoder that reads one text column of DNA, named by its ``column`` parameter."""

    Params = SequenceParams
    text_doc = "the DNA sequence, as text"


def _examples_batch(seqs: list[str]) -> dict:
    sources = [f"example-{i}.fa" for i in range(len(seqs))]
    return {
        "source": np.array(sources, dtype=object),
        "record_id": np.array([record_id(s, "seq", 0) for s in sources], dtype=object),
        "sequence": np.array(seqs, dtype=object),
    }


GOOD = ["ACGTacgtNNACGTTGCA", "GGGGCCCCAAAATTTTACGTRYKM", "acgtacgtacgtacgt"]


def _bad_batch() -> dict:
    """A sequence column that holds numbers, not text (e.g. a mis-mapped column)."""
    batch = _examples_batch(["ACGT", "ACGT"])
    batch["sequence"] = np.array([1, 2], dtype=object)
    return batch


# -- one-hot and 2-bit ------------------------------------------------------------------


class OnehotParams(SequenceParams):
    layout: Literal["LC", "CL"] = Field("LC", description="LC: length x 4 channels per row; CL: 4 x length")
    dtype: Literal["uint8", "float32"] = Field("uint8", description="element type of the one-hot values")
    n_value: float = Field(0.0, ge=0.0, le=1.0, description="value in all 4 channels where the base is not ACGT")

    @model_validator(mode="after")
    def _n_value_fits(self):
        if self.dtype == "uint8" and self.n_value not in (0.0, 1.0):
            raise ValueError(f"n_value={self.n_value} needs dtype='float32' (uint8 holds 0 or 1)")
        return self


def _cuda_kernels():
    # imported on use, not with this module: only workers of a CUDA variant have numba-cuda
    from .kernels import cuda

    return cuda


class Onehot(SequenceEncoder):
    """One-hot DNA (channels A, C, G, T), flattened per record in the chosen layout."""

    name = "genomics.onehot"
    Params = OnehotParams
    batch_size = 256
    variants = ("cpu", "cuda")
    # The kernel writes at memory speed and leaves most of a GPU idle: four actors share one.
    gpu_share = 0.25
    # One thread per base: 4096 windows of 1 kb are four million threads, enough to fill a GPU.
    gpu_batch_size = 4096
    outputs = (
        Column("onehot", "list<uint8>", "flattened one-hot; reshape to (length, 4) for LC or (4, length) for CL"),
    )

    def __init__(self, params=None):
        super().__init__(params)
        if self.params.dtype == "float32":
            self.outputs = (Column("onehot", "list<float32>", self.outputs[0].doc),)

    def setup(self) -> None:
        if self.variant == "cuda":  # compile once per actor, not inside its first batch
            p = self.params
            _cuda_kernels().onehot_batch([b"ACGN"], layout=p.layout, dtype=np.dtype(p.dtype), n_value=p.n_value)

    def encode(self, batch):
        p = self.params
        dtype = np.dtype(p.dtype)
        records = kernels.Records(*ascii_records(batch, p.column))
        kernel = _cuda_kernels() if self.variant == "cuda" else kernels
        flat, starts = kernel.onehot_joined(records, layout=p.layout, dtype=dtype, n_value=dtype.type(p.n_value))
        return {"onehot": flat_list_column(flat, 4 * starts, pa.from_numpy_dtype(dtype))}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={}, good=_examples_batch(GOOD), bad=_bad_batch())


class TwobitParams(SequenceParams):
    pass


class Twobit(SequenceEncoder):
    """2-bit packed DNA, four bases per byte, with a bit mask of the positions that were not ACGT."""

    name = "genomics.twobit"
    Params = TwobitParams
    batch_size = 1024
    outputs = (
        Column("twobit", "binary", "4 bases per byte, first base in the two high bits; A=0 C=1 G=2 T=3"),
        Column("n_mask", "binary", "one bit per base (numpy.packbits order), set where the base was not ACGT"),
    )

    def encode(self, batch):
        packed, masks = [], []
        for s in ascii_texts(batch, self.params.column):
            data, mask = kernels.pack_2bit(s)
            packed.append(data.tobytes())
            masks.append(np.packbits(mask).tobytes())
        return {"twobit": pa.array(packed, pa.binary()), "n_mask": pa.array(masks, pa.binary())}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={}, good=_examples_batch(GOOD), bad=_bad_batch())


# -- k-mers --------------------------------------------------------------------------------


class KmerCountsParams(SequenceParams):
    k: int = Field(4, ge=1, le=31, description="k-mer length (dense counts up to 13, sparse up to 31)")
    canonical: bool = Field(False, description="count each k-mer and its reverse complement together (jellyfish -C)")
    format: Literal["auto", "dense", "sparse"] = Field(
        "auto", description="dense: 4**k counts per record; sparse: sorted codes + counts; auto: dense for k <= 8"
    )

    @model_validator(mode="after")
    def _dense_fits(self):
        if self.format == "dense" and self.k > 13:
            raise ValueError(f"dense counts need k <= 13 (4**{self.k} values per record); use format='sparse'")
        return self

    @property
    def sparse(self) -> bool:
        return self.format == "sparse" or (self.format == "auto" and self.k > 8)


class KmerCounts(SequenceEncoder):
    """k-mer counts per record: dense 4**k vectors, or sparse sorted codes and counts."""

    name = "genomics.kmer_counts"
    Params = KmerCountsParams
    batch_size = 256
    # Dense counts only: with sparse counts (k > 8 unless format = "dense") the CUDA variant
    # runs the CPU kernel, as sorting each record's codes is not worth a trip to the GPU.
    variants = ("cpu", "cuda")
    # One launch counts a batch in milliseconds, leaving most of a GPU idle: four actors share one.
    gpu_share = 0.25
    # One thread per base: 4096 windows of 1 kb are four million threads, enough to fill a GPU.
    gpu_batch_size = 4096
    outputs = (
        Column(
            "kmer_counts", "fixed_size_list<uint32>[4**k]", "count of each k-mer, index = base-4 code (A=0 C=1 G=2 T=3)"
        ),
    )

    def __init__(self, params=None):
        super().__init__(params)
        if not self.params.sparse:
            size = 4**self.params.k
            self.outputs = (Column("kmer_counts", f"fixed_size_list<uint32>[{size}]", self.outputs[0].doc),)
            # a batch's counts stay under 256 MiB however large 4**k is (k = 8: 1024 windows)
            self.gpu_batch_size = max(1, min(KmerCounts.gpu_batch_size, (256 << 20) // (size * 4)))
        else:
            self.outputs = (
                Column("kmer_codes", "list<uint64>", "k-mer codes present, ascending (base-4, first base high)"),
                Column("kmer_counts", "list<uint32>", "count of each code in kmer_codes"),
            )

    def setup(self) -> None:
        if self.variant == "cuda" and not self.params.sparse:  # compile once per actor, not in its first batch
            _cuda_kernels().kmer_counts_batch([b"ACGT"], self.params.k, canonical=self.params.canonical)

    def encode(self, batch):
        p = self.params
        if not p.sparse:
            # the whole batch in one kernel call, read from the column's own buffer
            records = kernels.Records(*ascii_records(batch, p.column))
            kernel = _cuda_kernels() if self.variant == "cuda" else kernels
            out = kernel.kmer_counts_batch(records, p.k, canonical=p.canonical)
            return {"kmer_counts": pa.FixedSizeListArray.from_arrays(pa.array(out.reshape(-1)), 4**p.k)}
        codes, counts = [], []
        for s in ascii_texts(batch, p.column):
            c, n = kernels.kmer_counts_sparse(s, p.k, canonical=p.canonical)
            codes.append(c.astype(np.uint64))
            counts.append(n.astype(np.uint32))
        return {"kmer_codes": list_column(codes, pa.uint64()), "kmer_counts": list_column(counts, pa.uint32())}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={"k": 3}, good=_examples_batch(GOOD), bad=_bad_batch())


class KmerSpectrumParams(SequenceParams):
    k: int = Field(5, ge=1, le=10, description="k-mer length; the vector has one entry per canonical k-mer")


class KmerSpectrum(SequenceEncoder):
    """Normalised canonical k-mer spectrum: a fixed-length vector for similarity search."""

    name = "genomics.kmer_spectrum"
    Params = KmerSpectrumParams
    batch_size = 256
    outputs = (Column("spectrum", "fixed_size_list<float32>[512]", "L2-normalised canonical k-mer counts"),)

    def __init__(self, params=None):
        super().__init__(params)
        self._dim = len(kernels.canonical_kmer_indices(self.params.k))
        self.outputs = (Column("spectrum", f"fixed_size_list<float32>[{self._dim}]", self.outputs[0].doc),)

    def encode(self, batch):
        k = self.params.k
        records = kernels.Records(*ascii_records(batch, self.params.column))
        out = kernels.kmer_spectrum_batch(records, k)
        empty = np.flatnonzero(~out.any(axis=1))
        if empty.size:
            # A zero vector has no direction: cosine search would be meaningless.
            length = int(records.starts[empty[0] + 1] - records.starts[empty[0]])
            raise RecordError(f"no valid {k}-mer (length {length}, only ACGT k-mers count)")
        return {"spectrum": vector_column(out)}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={"k": 3}, good=_examples_batch(GOOD), bad=_examples_batch(["ACGT", "NNNNNN"]))


# -- tokens and augmentation -----------------------------------------------------------------


class TokenizeParams(SequenceParams):
    scheme: Literal["kmer", "char"] = Field("kmer", description="kmer: overlapping k-mers (DNABERT); char: one base")
    k: int = Field(6, ge=1, le=8, description="k-mer length for scheme='kmer'")
    stride: int = Field(1, ge=1, description="step between k-mer starts for scheme='kmer'")
    add_special: bool = Field(True, description="wrap each record in [CLS] ... [SEP]")
    max_length: int | None = Field(None, ge=2, description="truncate to this many tokens (the [SEP] is kept)")


class Tokenize(SequenceEncoder):
    """Token ids for DNA language models; `hpcprep_genomics.kernels.vocabulary` lists the tokens."""

    name = "genomics.tokenize"
    Params = TokenizeParams
    batch_size = 512
    outputs = (
        Column("input_ids", "list<int32>", "token ids: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then the vocabulary"),
    )

    def encode(self, batch):
        p = self.params
        parts = []
        for s in ascii_texts(batch, p.column):
            ids = kernels.tokenize(s, scheme=p.scheme, k=p.k, stride=p.stride, add_special=p.add_special)
            if p.max_length is not None and len(ids) > p.max_length:
                keep_sep = p.add_special
                ids = np.concatenate([ids[: p.max_length - 1], ids[-1:]]) if keep_sep else ids[: p.max_length]
            parts.append(ids.astype(np.int32))
        return {"input_ids": list_column(parts, pa.int32())}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={"k": 3}, good=_examples_batch(GOOD), bad=_bad_batch())


class ReverseComplementParams(SequenceParams):
    mode: Literal["column", "augment"] = Field(
        "column", description="column: add sequence_rc; augment: emit each record twice, forward and reverse strand"
    )


class ReverseComplement(SequenceEncoder):
    """Reverse complement (case and IUPAC codes kept), as a column or as augmented records."""

    name = "genomics.reverse_complement"
    Params = ReverseComplementParams
    batch_size = 1024
    outputs = (Column("sequence_rc", "string", "reverse complement of the sequence"),)

    def __init__(self, params=None):
        super().__init__(params)
        if self.params.mode == "augment":
            # One record in, two out: the runner books it as a fan-out stage.
            self.fanout = True
            self.outputs = (Column("strand", "string", "'+' as read, '-' reverse complement"),)

    def encode(self, batch):
        col = self.params.column
        rc = [kernels.reverse_complement(s).decode("ascii") for s in ascii_texts(batch, col)]
        if self.params.mode == "column":
            return {"sequence_rc": np.array(rc, dtype=object)}
        n = len(rc)
        out = {}
        for name in batch:
            values = np.asarray(batch[name])
            out[name] = np.concatenate([values, values]) if n else values
        out[col] = np.concatenate([np.asarray(batch[col], dtype=object), np.array(rc, dtype=object)])
        ids = np.asarray(batch["record_id"], dtype=object)
        out["record_id"] = np.concatenate([ids, np.array([f"{r}-rc" for r in ids], dtype=object)])
        out["strand"] = np.array(["+"] * n + ["-"] * n, dtype=object)
        return out

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={}, good=_examples_batch(GOOD), bad=_bad_batch())


# -- graphs and embeddings --------------------------------------------------------------


class DebruijnParams(SequenceParams):
    k: int = Field(5, ge=2, le=32, description="k-mer length: nodes are (k-1)-mers, edges k-mers")


GRAPH_COLUMNS = (
    Column("node_codes", "list<uint64>", "distinct (k-1)-mers, ascending base-4 codes"),
    Column("edge_src", "list<int32>", "edge source: index into node_codes (the k-mer's prefix)"),
    Column("edge_dst", "list<int32>", "edge target: index into node_codes (the k-mer's suffix)"),
    Column("edge_counts", "list<uint32>", "how often each k-mer occurs"),
    Column("n_nodes", "int32", "number of nodes"),
    Column("n_edges", "int32", "number of edges"),
)


class Debruijn(SequenceEncoder):
    """De Bruijn graph of each record: (k-1)-mer nodes, k-mer edges with counts, as list columns."""

    name = "genomics.debruijn"
    Params = DebruijnParams
    batch_size = 256
    outputs = GRAPH_COLUMNS

    def encode(self, batch):
        graphs = [kernels.debruijn_graph(s, self.params.k) for s in ascii_texts(batch, self.params.column)]
        return graph_columns(graphs)

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={"k": 3}, good=_examples_batch(GOOD), bad=_bad_batch())


#: What ``genomics.gnn_embed`` reads with ``graphs_from = "debruijn"``: ``GRAPH_COLUMNS``' lists.
GRAPH_INPUTS = tuple(
    Input(c.name, f"{c.type}|large_{c.type}", c.doc) for c in GRAPH_COLUMNS if c.type.startswith("list<")
)


def graph_columns(graphs) -> dict:
    return {
        "node_codes": list_column([np.asarray(g[0], np.uint64) for g in graphs], pa.uint64()),
        "edge_src": list_column([np.asarray(g[1], np.int32) for g in graphs], pa.int32()),
        "edge_dst": list_column([np.asarray(g[2], np.int32) for g in graphs], pa.int32()),
        "edge_counts": list_column([np.asarray(g[3], np.uint32) for g in graphs], pa.uint32()),
        "n_nodes": np.array([len(g[0]) for g in graphs], dtype=np.int32),
        "n_edges": np.array([len(g[1]) for g in graphs], dtype=np.int32),
    }


class GnnEmbedParams(SequenceParams):
    weights: LocalPath | None = Field(None, description="weights file (.npz) from `hpcprep genomics train-gnn`")
    random_init_seed: int | None = Field(
        None, description="without weights: untrained random weights from this seed (the manifest says so)"
    )
    backend: Literal["pyg", "dgl"] = Field("pyg", description="pyg (PyTorch Geometric) or dgl (its own environment)")
    k: int = Field(5, ge=3, le=16, description="de Bruijn k when no weights file fixes it")
    batch_graphs: int = Field(256, ge=1, description="graphs per forward pass")
    graphs_from: Literal["sequence", "debruijn"] = Field(
        "sequence",
        description="sequence: build each record's graph with the weights' k; debruijn: read the graph columns of "
        "an earlier genomics.debruijn stage, which must use the same k",
    )

    @model_validator(mode="after")
    def _weights_or_seed(self):
        if self.weights is None and self.random_init_seed is None:
            raise ValueError(
                "needs a weights file (`hpcprep genomics train-gnn ... --out W.npz`) or, for untrained "
                "embeddings, random_init_seed"
            )
        return self


class GnnEmbed(SequenceEncoder):
    """Graph neural network embedding of each record's de Bruijn graph (PyG or DGL backend)."""

    name = "genomics.gnn_embed"
    Params = GnnEmbedParams
    needs_setup = True
    # cuda: the PyG backend on a GPU; the default placement picks it where the cluster has GPUs.
    variants = ("cpu", "cuda")
    batch_size = 256
    outputs = (Column("embedding", "fixed_size_list<float32>[64]", "L2-normalised graph embedding"),)

    def __init__(self, params=None):
        super().__init__(params)
        from . import gnn

        self._config = None
        if self.params.weights is not None:
            config, _ = gnn.load_weights(self.params.weights)
        else:
            config = gnn.GnnConfig(k=self.params.k)
        self.outputs = (Column("embedding", f"fixed_size_list<float32>[{config.embed_dim}]", self.outputs[0].doc),)
        self._k = config.k
        if self.params.graphs_from == "debruijn":
            # the graph columns and nothing else: the wiring check then finds a missing
            # genomics.debruijn stage before Ray starts
            self.inputs = GRAPH_INPUTS

    def notes(self) -> list[str]:
        if self.params.weights is None:
            return [f"embeddings from untrained random weights (random_init_seed={self.params.random_init_seed})"]
        return []

    def _device(self) -> str:
        if self.variant != "cuda":
            return "cpu"
        if self.params.backend != "pyg":
            raise RuntimeError(f"the cuda variant runs the pyg backend, not {self.params.backend!r}")
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("placement chose the cuda variant, but torch sees no CUDA device on this worker")
        return "cuda"

    def setup(self) -> None:
        from . import gnn

        self._dev = self._device()
        if self.params.weights is not None:
            self._config, self._arrays = gnn.load_weights(self.params.weights)
        else:
            self._config = gnn.GnnConfig(k=self.params.k)
            self._arrays = gnn.random_weights(self._config, self.params.random_init_seed)
        gnn.embed_graphs(
            [kernels.debruijn_graph(b"ACGTACGTAC", self._k)],
            self._config,
            self._arrays,
            backend=self.params.backend,
            device=self._dev,
        )

    def encode(self, batch):
        from . import gnn

        if self._config is None:
            self.setup()
        if self.params.graphs_from == "debruijn":
            graphs = list(
                zip(*(column_of(batch, c.name, "add a genomics.debruijn stage before") for c in GRAPH_INPUTS))
            )
        else:
            graphs = [kernels.debruijn_graph(s, self._k) for s in ascii_texts(batch, self.params.column)]
        for g in graphs:
            if len(g[1]) == 0:
                raise RecordError(f"empty de Bruijn graph: no valid {self._k}-mer in the record")
        emb = gnn.embed_graphs(
            graphs,
            self._config,
            self._arrays,
            backend=self.params.backend,
            batch_graphs=self.params.batch_graphs,
            device=self._dev,
        )
        return {"embedding": vector_column(emb)}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(
            params={"random_init_seed": 0, "k": 4},
            good=_examples_batch(GOOD),
            bad=_examples_batch(["ACGTACGT", "NNN"]),
        )


ENCODERS = (Onehot, Twobit, KmerCounts, KmerSpectrum, Tokenize, ReverseComplement, Debruijn, GnnEmbed)
