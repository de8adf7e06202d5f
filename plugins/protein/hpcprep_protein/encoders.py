"""Encoder stages: per-residue features, labels, secondary structure, contacts and vectors.

Sequence encoders read the ``sequence`` column (one-letter codes; any reader of this
plugin). Structure encoders read the backbone columns of ``protein.structure``: ``n``,
``ca``, ``c``, ``o`` and ``cb``, each a flattened ``list<float32>`` of L x 3 coordinates
with NaN for a missing atom. Per-residue matrices are flattened row-major into one list
per record: reshape to ``(length, F)`` with the ``F`` given in each column's doc.

One module because each stage is a thin wrapper of parameters and declared columns
over ``kernels`` and ``residues``, sharing the backbone-column helpers at the top.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from hpcprep import (
    Column,
    Encoder,
    Input,
    Params,
    RecordError,
    StageExamples,
    TextColumnEncoder,
    TextColumnParams,
    record_id,
)
from hpcprep.columns import ascii_texts, column_of, list_column, vector_column
from pydantic import Field, field_validator

from . import kernels
from .tables import INDEX, SCALES, UNKNOWN, blosum62_matrix, scale_matrix

N_TOKENS = UNKNOWN + 1  # 20 standard residues + unknown
SS8 = "HGIEBTS-"  # DSSP states for labels; '-' (also 'C', ' ', 'P') is coil
SS3 = "HEC"
IGNORE = -100  # label value a loss ignores (PyTorch's cross_entropy default ignore_index)

# ``Input.types`` of the columns these encoders read. The driver matches them against the
# types earlier stages declare, so they name what ``encode`` really takes.
#: Label strings are read as Python ``str`` (bytes would be refused row by row).
STRING_TYPES = "string|large_string"
#: protein.structure's coordinates: one flattened L x 3 float list per chain.
COORDINATE_TYPES = "list<float*>|large_list<float*>"
#: A per-residue mask such as protein.dssp's ss_mask or the reader's backbone_complete.
MASK_TYPES = "list<bool>|large_list<bool>"


def _coordinate_inputs(*atoms: str) -> tuple[Input, ...]:
    return tuple(Input(a, COORDINATE_TYPES, f"{a.upper()} coordinates from protein.structure") for a in atoms)


class SequenceParams(TextColumnParams):
    column: str = Field("sequence", description="column with the one-letter amino-acid sequence")


def residue_index(seq: bytes) -> np.ndarray:
    """0..19 for the standard residues (ALPHABET order), 20 for anything else."""
    return INDEX[np.frombuffer(seq, dtype=np.uint8)].astype(np.int64)


BLOSUM62_ROWS = blosum62_matrix()


def per_residue_rows(batch, column: str, table: np.ndarray) -> pa.Array:
    """Each residue's row of ``table`` (indexed by :func:`residue_index`), flattened per record."""
    parts = [table[residue_index(s)].reshape(-1) for s in ascii_texts(batch, column)]
    return list_column(parts, pa.from_numpy_dtype(table.dtype))


def _coords(batch, name: str) -> list[np.ndarray]:
    out = []
    for v in column_of(batch, name, "structure encoders need the protein.structure reader"):
        a = np.asarray(v, dtype=np.float64)
        if a.size % 3:
            raise RecordError(f"column {name!r} holds {a.size} values, not x, y, z per residue")
        out.append(a.reshape(-1, 3))
    return out


STANDARD = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVDAFQAKLX", "ACDEFGHIKLMNPQRSTVWYBZUO"]


def _seq_batch(seqs: list[str]) -> dict:
    sources = [f"example-{i}.fasta" for i in range(len(seqs))]
    return {
        "source": np.array(sources, dtype=object),
        "record_id": np.array([record_id(s, 0) for s in sources], dtype=object),
        "sequence": np.array(seqs, dtype=object),
    }


def _bad_seq_batch() -> dict:
    batch = _seq_batch(["ACDE", "ACDE"])
    batch["sequence"] = np.array([1, 2], dtype=object)
    return batch


# -- sequence features -----------------------------------------------------------------


class SequenceEncoder(TextColumnEncoder):
    """An encoder that reads one sequence column, named by its ``column`` parameter."""

    Params = SequenceParams
    text_doc = "one-letter amino-acid sequence"


class Onehot(SequenceEncoder):
    """One-hot residues: 20 standard amino acids (alphabetical one-letter order) + unknown."""

    name = "protein.onehot"
    Params = SequenceParams
    batch_size = 512
    outputs = (Column("onehot", "list<uint8>", "L x 21, flattened: A C D E F G H I K L M N P Q R S T V W Y, unknown"),)

    def encode(self, batch):
        return {"onehot": per_residue_rows(batch, self.params.column, np.eye(N_TOKENS, dtype=np.uint8))}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={}, good=_seq_batch(STANDARD), bad=_bad_seq_batch())


class Blosum62(SequenceEncoder):
    """BLOSUM62 row of each residue (20 values; zeros for unknown residues)."""

    name = "protein.blosum62"
    Params = SequenceParams
    batch_size = 512
    outputs = (Column("blosum62", "list<float32>", "L x 20, flattened; columns in A C D ... Y order"),)

    def encode(self, batch):
        return {"blosum62": per_residue_rows(batch, self.params.column, BLOSUM62_ROWS)}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={}, good=_seq_batch(STANDARD), bad=_bad_seq_batch())


class PhyschemParams(SequenceParams):
    scales: list[str] = Field(
        ["kyte_doolittle", "hopp_woods", "flexibility", "emini_surface", "charge_ph7"],
        description="named published scales, one value per residue each: " + ", ".join(SCALES),
    )

    @field_validator("scales")
    @classmethod
    def _known(cls, v):
        unknown = [s for s in v if s not in SCALES]
        if unknown or not v:
            raise ValueError(f"unknown scale(s) {unknown}; choose from {sorted(SCALES)}")
        return v


class Physchem(SequenceEncoder):
    """Physico-chemical scales per residue (Kyte-Doolittle, Hopp-Woods, flexibility, ...)."""

    name = "protein.physchem"
    Params = PhyschemParams
    batch_size = 512
    outputs = (Column("physchem", "list<float32>", "L x len(scales), flattened, in the order of `scales`"),)

    def __init__(self, params=None):
        super().__init__(params)
        self._table = scale_matrix(self.params.scales)  # once per stage, not per batch

    def encode(self, batch):
        return {"physchem": per_residue_rows(batch, self.params.column, self._table)}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={}, good=_seq_batch(STANDARD), bad=_bad_seq_batch())


class WindowsParams(SequenceParams):
    width: int = Field(15, ge=1, le=101, description="window width w (odd: centred on the residue)")

    @field_validator("width")
    @classmethod
    def _odd(cls, v):
        if v % 2 == 0:
            raise ValueError(f"width={v} must be odd so that windows are centred")
        return v


class Windows(SequenceEncoder):
    """Centred per-residue windows of residue ids, padded at the ends (for Q3/Q8 predictors)."""

    name = "protein.windows"
    Params = WindowsParams
    batch_size = 256
    outputs = (
        Column("windows", "list<int8>", "L x width, flattened: residue ids 0-20 (as protein.onehot), 21 = padding"),
    )

    def encode(self, batch):
        w = self.params.width
        half = w // 2
        parts = []
        for s in ascii_texts(batch, self.params.column):
            ids = residue_index(s)
            padded = np.concatenate([np.full(half, N_TOKENS), ids, np.full(half, N_TOKENS)]).astype(np.int8)
            # row i is padded[i : i + w]: a strided view, copied once
            view = np.lib.stride_tricks.sliding_window_view(padded, w)[: len(ids)]
            parts.append(np.ascontiguousarray(view).reshape(-1))
        return {"windows": list_column(parts, pa.int8())}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={"width": 5}, good=_seq_batch(STANDARD), bad=_bad_seq_batch())


class CompositionParams(SequenceParams):
    pass


class Composition(SequenceEncoder):
    """Amino-acid (20) and dipeptide (400) composition: a fixed 420-vector for similarity search."""

    name = "protein.composition"
    Params = CompositionParams
    batch_size = 1024
    outputs = (
        Column(
            "composition",
            "fixed_size_list<float32>[420]",
            "20 amino-acid shares, then 400 dipeptide shares (first residue major); each part sums to 1",
        ),
    )

    def encode(self, batch):
        seqs = ascii_texts(batch, self.params.column)
        out = np.zeros((len(seqs), 420), dtype=np.float32)
        for r, s in enumerate(seqs):
            ids = residue_index(s)
            std = ids[ids < UNKNOWN]
            if std.size == 0:
                raise RecordError("no standard amino acid in the sequence")
            out[r, :20] = np.bincount(std, minlength=20) / std.size
            pairs = ids[:-1] * 20 + ids[1:]
            ok = (ids[:-1] < UNKNOWN) & (ids[1:] < UNKNOWN)
            if ok.any():
                out[r, 20:] = np.bincount(pairs[ok], minlength=400) / ok.sum()
        return {"composition": vector_column(out)}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={}, good=_seq_batch(STANDARD), bad=_seq_batch(["ACDE", "XXXX"]))


# -- labels ----------------------------------------------------------------------------------


class SsLabelsParams(Params):
    ss8_column: str = Field("ss8", description="column with 8-state labels (DSSP letters; '-', 'C', 'P', ' ' = coil)")
    mask_column: str | None = Field(
        None, description="optional list<bool> column, True where the residue has a label (e.g. backbone_complete)"
    )
    target: Literal["none", "esm", "prott5"] = Field(
        "none",
        description="token layout of the model the labels align to: esm adds 1 token before and 1 after, "
        "prott5 1 after (special positions get -100)",
    )


_SS8_ID = np.full(256, -1, dtype=np.int16)
for _i, _ch in enumerate(SS8):
    _SS8_ID[ord(_ch)] = _i
for _ch in "CP ":
    _SS8_ID[ord(_ch)] = SS8.index("-")
_SS8_TO_SS3 = np.array([0, 0, 0, 1, 1, 2, 2, 2], dtype=np.int16)  # H G I -> H; E B -> E; T S - -> C
_SS8_ID.setflags(write=False)


def ss_label_ids(ss8: str) -> np.ndarray:
    """8-state ids (H G I E B T S - = 0..7) of a label string; -1 for a letter that is not a state."""
    return _SS8_ID[np.frombuffer(ss8.encode("ascii"), dtype=np.uint8)]


class SsLabels(Encoder):
    """Q8 and Q3 label ids per residue, with a mask, aligned to a model's special tokens."""

    name = "protein.ss_labels"
    Params = SsLabelsParams
    batch_size = 1024
    inputs = (Input("ss8", STRING_TYPES, "8-state labels, one letter per residue"),)
    outputs = (
        Column("labels_ss8", "list<int16>", "H G I E B T S coil = 0..7; -100 where masked or a special token"),
        Column("labels_ss3", "list<int16>", "H E C = 0..2 (H,G,I -> H; E,B -> E; rest -> C); -100 likewise"),
        Column("label_mask", "list<bool>", "True where a residue's label counts (aligned like the labels)"),
    )

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        inputs = [Input(p.ss8_column, STRING_TYPES, "8-state labels, one letter per residue")]
        if p.mask_column:
            inputs.append(Input(p.mask_column, MASK_TYPES, "True where the residue has a label"))
        self.inputs = tuple(inputs)

    def encode(self, batch):
        p = self.params
        labels = column_of(batch, p.ss8_column)
        masks = column_of(batch, p.mask_column) if p.mask_column else [None] * len(labels)
        before, after = {"none": (0, 0), "esm": (1, 1), "prott5": (0, 1)}[p.target]
        l8, l3, lm = [], [], []
        for ss8, mask in zip(labels, masks):
            if not isinstance(ss8, str):
                raise RecordError(f"column {p.ss8_column!r} holds {type(ss8).__name__}, not a label string")
            ids = ss_label_ids(ss8)
            bad = np.flatnonzero(ids < 0)
            if bad.size:
                raise RecordError(f"label {ss8[bad[0]]!r} at residue {bad[0]} is not a DSSP state ({SS8}, C, P)")
            keep = np.ones(len(ids), bool) if mask is None else np.asarray(mask, dtype=bool)
            if keep.size != ids.size:
                raise RecordError(f"{p.mask_column!r} has {keep.size} values for {ids.size} labels")
            m = np.concatenate([np.zeros(before, bool), keep, np.zeros(after, bool)])
            y8 = np.full(m.size, IGNORE, dtype=np.int16)
            y8[before : before + ids.size] = ids
            y8[~m] = IGNORE
            y3 = y8.copy()
            y3[m] = _SS8_TO_SS3[y8[m]]
            l8.append(y8)
            l3.append(y3)
            lm.append(m)
        return {
            "labels_ss8": list_column(l8, pa.int16()),
            "labels_ss3": list_column(l3, pa.int16()),
            "label_mask": list_column(lm, pa.bool_()),
        }

    @classmethod
    def examples(cls, workdir):
        good = _seq_batch(["ACDEFG", "MKT"])
        good["ss8"] = np.array(["-HHHE-", "GIT"], dtype=object)
        bad = _seq_batch(["ACD", "ACD"])
        bad["ss8"] = np.array(["HHH", "HQH"], dtype=object)
        return StageExamples(params={"target": "esm"}, good=good, bad=bad)


# -- structure features --------------------------------------------------------------------


class DsspParams(Params):
    ppii: bool = Field(
        True,
        description="P for polyproline II (mkdssp 4.x's default, --min-pp-stretch 3); false: those residues stay '-'",
    )


class Dssp(Encoder):
    """DSSP secondary structure per residue, as mkdssp 4.x assigns it on the whole model.

    DSSP needs every chain of the model (a sheet between chains has partners in both), so
    protein.structure assigns it on the model into ``model_ss8`` and this stage hands that
    on per chain. Records without it (another reader, a Parquet table of chains) are
    assigned one chain at a time, which cannot see sheets and H-bonds between chains.
    """

    name = "protein.dssp"
    Params = DsspParams
    needs_setup = True
    batch_size = 64
    inputs = (
        *_coordinate_inputs("n", "ca", "c", "o"),
        Input("model_ss8", STRING_TYPES, "states assigned on the whole model by protein.structure", optional=True),
        Input(
            "residue_names", "list<string>|list<large_string>", "PRO has no amide H (chain-alone only)", optional=True
        ),
    )
    outputs = (
        Column(
            "ss8",
            "string",
            "DSSP state per residue: H G I E B T S P (polyproline II, unless ppii = false), '-' coil; "
            "'-' where the backbone is incomplete",
        ),
        Column("ss3", "string", "H E C (H,G,I -> H; E,B -> E; rest, P included -> C)"),
        Column("ss_mask", "list<bool>", "True where the residue had a complete backbone (its label is real)"),
    )

    def setup(self) -> None:
        x = np.array([[0.0, 0.0, 0.0], [1.46, 0.0, 0.0], [2.0, 1.4, 0.0], [1.3, 2.4, 0.0]])
        kernels.assign_secondary_structure(x[:1], x[1:2], x[2:3], x[3:4])

    def encode(self, batch):
        coords = [_coords(batch, a) for a in ("n", "ca", "c", "o")]
        rows = len(coords[0])
        assigned = batch["model_ss8"] if "model_ss8" in batch else [None] * rows
        names = batch["residue_names"] if "residue_names" in batch else [None] * rows
        pp_stretch = kernels.DEFAULT_PP_STRETCH if self.params.ppii else 0
        ss8, ss3, masks = [], [], []
        for n, ca, c, o, given, res in zip(*coords, assigned, names, strict=True):
            complete = np.isfinite(np.concatenate([n, ca, c, o], axis=1)).all(axis=1)
            if not complete.any():
                raise RecordError("no residue with a complete backbone (N, CA, C, O)")
            if isinstance(given, str):
                if len(given) != len(complete):
                    raise RecordError(f"model_ss8 has {len(given)} states for {len(complete)} residues")
                s8 = given if self.params.ppii else given.replace("P", "-")
            else:
                pro = np.zeros(len(complete), dtype=bool) if res is None else np.asarray(res) == "PRO"
                if pro.shape != complete.shape:
                    raise RecordError(f"residue_names has {pro.size} names for {len(complete)} residues")
                (s8,) = kernels.assign_model_secondary_structure([(n, ca, c, o, pro)], pp_stretch=pp_stretch)
            ss8.append(s8)
            ss3.append(kernels.q8_to_q3(s8))
            masks.append(complete)
        return {
            "ss8": np.array(ss8, dtype=object),
            "ss3": np.array(ss3, dtype=object),
            "ss_mask": list_column(masks, pa.bool_()),
        }

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={}, good=_helix_batch(), bad=_helix_batch(broken=True))


class ContactsParams(Params):
    cutoff: float = Field(8.0, gt=0, description="distance cutoff in angstrom")
    atom: Literal["ca", "cb"] = Field("ca", description="residue position: CA, or CB (CA for glycine)")
    min_seq_sep: int = Field(1, ge=1, description="smallest |i - j| that counts as a contact")


class Contacts(Encoder):
    """Residue contact graph: pairs i < j closer than the cutoff, sorted, with distances."""

    name = "protein.contacts"
    Params = ContactsParams
    batch_size = 64
    variants = ("cpu", "cuda")
    # The CUDA kernel copies a batch over and runs in milliseconds, leaving most of a GPU idle.
    gpu_share = 0.25
    # One GPU thread per residue: ~1024 chains of a few hundred residues make a few hundred
    # thousand threads, about what a large GPU holds at once, so one launch keeps it busy.
    gpu_batch_size = 1024
    inputs = _coordinate_inputs("ca")
    outputs = (
        Column("contact_src", "list<int32>", "residue index i (i < j)"),
        Column("contact_dst", "list<int32>", "residue index j"),
        Column("contact_dist", "list<float32>", "distance in angstrom"),
    )

    def __init__(self, params=None):
        super().__init__(params)
        # CB positions are read only when contacts are between CBs (CA stands in for glycine).
        self.inputs = _coordinate_inputs("ca", "cb") if self.params.atom == "cb" else _coordinate_inputs("ca")

    @staticmethod
    def _cuda_kernels():
        # imported here, not with the module: only workers of the CUDA variant have numba-cuda
        from .kernels import cuda

        return cuda

    def setup(self) -> None:
        if self.variant == "cuda":  # compile the kernels once per actor, not inside its first batch
            self._cuda_kernels().contact_edges(ideal_helix(4)["ca"], 10.0)  # has edges: both passes run

    def encode(self, batch):
        p = self.params
        cas = _coords(batch, "ca")
        pos = (
            cas if p.atom == "ca" else [np.where(np.isfinite(cb), cb, ca) for cb, ca in zip(_coords(batch, "cb"), cas)]
        )
        if self.variant == "cuda":
            edges = self._cuda_kernels().contact_edges_batch(pos, p.cutoff, p.min_seq_sep)
        else:
            edges = (kernels.contact_edges(xyz, p.cutoff, p.min_seq_sep) for xyz in pos)
        src, dst, dist = [], [], []
        for s, d, r in edges:
            src.append(np.asarray(s, np.int32))
            dst.append(np.asarray(d, np.int32))
            dist.append(np.asarray(r, np.float32))
        return {
            "contact_src": list_column(src, pa.int32()),
            "contact_dst": list_column(dst, pa.int32()),
            "contact_dist": list_column(dist, pa.float32()),
        }

    @classmethod
    def examples(cls, workdir):
        bad = _helix_batch()
        bad["ca"] = np.array([np.zeros(4, np.float32)] * len(bad["ca"]), dtype=object)
        return StageExamples(params={"cutoff": 6.0}, good=_helix_batch(), bad=bad)


class DihedralsParams(Params):
    pass


class Dihedrals(Encoder):
    """Backbone dihedrals phi, psi, omega per residue, degrees (NaN where undefined)."""

    name = "protein.dihedrals"
    Params = DihedralsParams
    batch_size = 256
    inputs = _coordinate_inputs("n", "ca", "c")
    outputs = (
        Column("phi", "list<float32>", "C(i-1)-N-CA-C, degrees; NaN for the first residue or after a gap"),
        Column("psi", "list<float32>", "N-CA-C-N(i+1), degrees; NaN for the last residue or before a gap"),
        Column("omega", "list<float32>", "CA-C-N(i+1)-CA(i+1), degrees; NaN likewise"),
    )

    def encode(self, batch):
        phi, psi, omega = [], [], []
        for n, ca, c in zip(*(_coords(batch, a) for a in ("n", "ca", "c"))):
            a, b, w = kernels.backbone_dihedrals(n, ca, c)
            phi.append(np.asarray(a, np.float32))
            psi.append(np.asarray(b, np.float32))
            omega.append(np.asarray(w, np.float32))
        return {
            "phi": list_column(phi, pa.float32()),
            "psi": list_column(psi, pa.float32()),
            "omega": list_column(omega, pa.float32()),
        }

    @classmethod
    def examples(cls, workdir):
        bad = _helix_batch()
        bad["n"] = np.array([np.zeros(5, np.float32)] * len(bad["n"]), dtype=object)
        return StageExamples(params={}, good=_helix_batch(), bad=bad)


def ideal_helix(length: int) -> dict[str, np.ndarray]:
    """Backbone atoms of an ideal alpha helix (3.6 residues/turn, 1.5 A rise), for examples."""
    out = {}
    # per-atom cylinder radius, phase offset (deg) and axial offset (A) of an ideal alpha helix
    geometry = {"n": (1.55, -28.0, -0.9), "ca": (2.3, 0.0, 0.0), "c": (1.6, 25.0, 0.9), "o": (1.95, 40.0, 2.1)}
    for atom, (radius, phase, rise) in geometry.items():
        t = np.radians(np.arange(length) * 100.0 + phase)
        out[atom] = np.stack([radius * np.cos(t), radius * np.sin(t), np.arange(length) * 1.5 + rise], axis=1)
    out["cb"] = out["ca"] + np.array([0.0, 0.0, -1.0])
    return out


def _helix_batch(broken: bool = False) -> dict:
    batch = _seq_batch(["A" * 12, "A" * 8])
    for atom in ("n", "ca", "c", "o", "cb"):
        rows = []
        for length in (12, 8):
            xyz = ideal_helix(length)[atom].astype(np.float32)
            if broken:
                xyz[:] = np.nan
            rows.append(xyz.reshape(-1))
        batch[atom] = np.array(rows + [None], dtype=object)[:2]
    return batch


ENCODERS = (Onehot, Blosum62, Physchem, Windows, Composition, SsLabels, Dssp, Contacts, Dihedrals)
