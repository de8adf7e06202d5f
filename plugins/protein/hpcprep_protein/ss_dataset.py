"""``hpcprep protein ss-dataset``: a secondary-structure training table with leak-free splits.

Input: a Parquet file or directory with a sequence column and DSSP labels (the output of a run with
``protein.ss_table``, or ``protein.structure`` + ``protein.dssp``). Output, in ``--out DIR``:
``train.parquet``, ``validation.parquet``, ``test.parquet`` with the columns ``record_id`` (when the
input has one), ``sequence``, ``ss3``, ``ss8``, ``mask`` (list<bool>), ``split``; and ``splits.json``
with the counts, the clustering rule and its parameters, and the result of the leakage check.

Similarity rule (used for clustering and for the check)
-------------------------------------------------------
Two sequences are *identical* when they are equal after upper-casing. They are *near-identical*
when the Jaccard similarity of their k-mer **sets** (all overlapping substrings of length ``k`` of
the upper-cased sequence; a sequence shorter than ``k`` contributes itself as its only "k-mer") is
``>= identity``: ``|A & B| / |A | B| >= identity``. This does not need equal lengths and has no
alignment. k-mers are encoded exactly as integers (``k <= 8`` bytes in a uint64), so the similarity
is computed exactly, without hash collisions.
Scale: ``m`` point substitutions in a length-``L`` sequence remove up to ``k*m`` of its ``L-k+1``
k-mers, so ``J ~ (L-k+1-k*m) / (L-k+1+k*m)``; with ``k = 5``, ``L = 150``: 1 -> 0.93, 2 -> 0.87,
3 -> 0.81. The default 0.9 therefore merges only near-duplicates (~99 % identity), not 90 % identity.

Split assignment (without ``--split-column``)
---------------------------------------------
1. Identical sequences are merged (one node per distinct upper-cased sequence).
2. Candidate near-identical pairs come from MinHash LSH (``num_hashes = bands * rows`` min-wise
   hashes from a seeded splitmix64 mixer, ``seed`` fixed by ``--seed``). A pair with similarity
   ``J`` becomes a candidate with probability ``1 - (1 - J**rows) ** bands``, so it is *missed*
   with probability ``(1 - J**rows) ** bands``, which only falls as ``J`` grows above the
   threshold. ``rows`` is the largest value for which the miss probability at ``J = identity`` is
   at most 1e-12 with ``bands * rows <= 256``, then ``bands = 256 // rows`` (identity 0.9 -> rows 6, bands 42, 252 hashes,
   miss probability 1.5e-14 per pair); below that, ``rows = 1`` and as many bands as needed. The
   probabilities assume ideal min-wise hashing, which the mixer approximates.
3. Every candidate is verified with the exact Jaccard, so no pair is merged wrongly; verified
   pairs are merged with union-find (single linkage: clusters are connected components).
4. Clusters are ordered by ``blake2b(seed, cluster key)`` (key: the smallest ``record_id`` in the
   cluster, or its smallest sequence without record ids) and laid end to end by row count; a
   cluster goes to the split whose cumulative fraction interval contains the middle of its span.
   Whole clusters move together, so the row fractions are honoured up to about one cluster's size.
   The result does not depend on the input's row order.

Leakage check (always, also with ``--split-column``)
----------------------------------------------------
Independent of the clustering: identical sequences are found with a dictionary; near-identical
pairs exhaustively with an inverted k-mer index (every pair sharing at least one k-mer gets its
exact intersection count) when there are fewer than 5000 distinct sequences, otherwise by a second
MinHash LSH with a different seed and its own banding, again verified exactly. Any identical or
near-identical pair in two different splits fails the command (``DatasetError``, listing the
first pairs with record ids, splits and similarity); **nothing is written** to ``DIR`` then.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hpcprep.unionfind import find, union

from .similarity import Banding, choose_banding, exhaustive_pairs, jaccard, kmer_set, lsh_candidates

SPLITS = ("train", "validation", "test")
EXHAUSTIVE_BELOW = 5000


@dataclass
class Assignment:
    splits: list[str]  # per row
    clusters: int
    largest_cluster: int
    candidate_pairs: int
    merged_pairs: int
    banding: Banding
    cluster_of_row: list[int] = field(repr=False)


def _distinct(sequences: list[str]) -> tuple[list[str], list[int]]:
    """Distinct upper-cased sequences (in first-seen order) and each row's index into them."""
    index: dict[str, int] = {}
    of_row = [index.setdefault(s.upper(), len(index)) for s in sequences]
    return list(index), of_row


def _unit_hash(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest(), "big")


def assign_splits(
    sequences: list[str],
    keys: list[str],
    fractions: tuple[float, float, float],
    identity: float,
    k: int,
    seed: int,
) -> Assignment:
    """Split per row so that identical / near-identical sequences share a split (see the module doc).

    ``keys`` are per-row tie-breakers (record ids, or the sequences): a cluster is named by its
    smallest key, which is what is hashed, so the result does not depend on row order.
    """
    distinct, of_row = _distinct(sequences)
    sets = [kmer_set(s, k) for s in distinct]
    banding = choose_banding(identity)
    candidates = lsh_candidates(sets, banding, seed, "cluster")
    parent = np.arange(len(distinct))
    merged = 0
    for i, j in sorted(candidates):
        if find(parent, i) != find(parent, j) and jaccard(sets[i], sets[j]) >= identity:
            union(parent, i, j)
            merged += 1
    roots = [int(find(parent, d)) for d in of_row]
    members: dict[int, list[int]] = {}
    for row, r in enumerate(roots):
        members.setdefault(r, []).append(row)
    name = {r: min(keys[x] for x in rows) for r, rows in members.items()}
    order = sorted(members, key=lambda r: (_unit_hash(seed, name[r]), name[r]))
    total = len(sequences)
    bounds = np.cumsum(fractions)
    split_of_root: dict[int, str] = {}
    start = 0
    for r in order:
        size = len(members[r])
        middle = (start + size / 2) / total
        split_of_root[r] = SPLITS[min(int(np.searchsorted(bounds, middle, side="right")), 2)]
        start += size
    return Assignment(
        splits=[split_of_root[r] for r in roots],
        clusters=len(members),
        largest_cluster=max((len(m) for m in members.values()), default=0),
        candidate_pairs=len(candidates),
        merged_pairs=merged,
        banding=banding,
        cluster_of_row=roots,
    )


# -- the leakage check -----------------------------------------------------------------------


@dataclass
class LeakReport:
    method: str
    offending_pairs: int
    examples: list[dict]
    banding: Banding | None = None

    @property
    def passed(self) -> bool:
        return self.offending_pairs == 0

    def as_dict(self) -> dict:
        out = {"passed": self.passed, "method": self.method, "offending_pairs": self.offending_pairs}
        if self.banding is not None:
            out["lsh"] = {
                "bands": self.banding.bands,
                "rows_per_band": self.banding.rows,
                "num_hashes": self.banding.num_hashes,
            }
        out["examples"] = self.examples
        return out


def check_leakage(
    sequences: list[str],
    splits: list[str],
    ids: list[str],
    identity: float,
    k: int,
    seed: int = 0,
    max_examples: int = 10,
    exhaustive_below: int = EXHAUSTIVE_BELOW,
) -> LeakReport:
    """Identical or near-identical (k-mer Jaccard >= identity) sequences in different splits."""
    distinct, of_row = _distinct(sequences)
    # per distinct sequence: split -> smallest record id in that split
    where: list[dict[str, str]] = [{} for _ in distinct]
    for row, d in enumerate(of_row):
        cur = where[d].get(splits[row])
        if cur is None or ids[row] < cur:
            where[d][splits[row]] = ids[row]
    found: list[dict] = []
    for by_split in where:
        names = sorted(by_split)
        for x in range(len(names)):
            for y in range(x + 1, len(names)):
                found.append(_leak(by_split, names[x], by_split, names[y], 1.0, "identical"))
    sets = [kmer_set(s, k) for s in distinct]
    banding = None
    if len(distinct) < exhaustive_below:
        method = "exhaustive (inverted k-mer index, exact Jaccard for every pair sharing a k-mer)"
        pairs = exhaustive_pairs(sets, identity)
    else:
        banding = choose_banding(identity)
        method = "MinHash LSH (independent seed) + exact Jaccard verification"
        pairs = []
        for i, j in sorted(lsh_candidates(sets, banding, seed, "leakage-check")):
            sim = jaccard(sets[i], sets[j])
            if sim >= identity:
                pairs.append((i, j, sim))
    for i, j, sim in sorted(pairs):
        for si in sorted(where[i]):
            for sj in sorted(where[j]):
                if si != sj:
                    found.append(_leak(where[i], si, where[j], sj, sim, "near-identical"))
    return LeakReport(method=method, offending_pairs=len(found), examples=found[:max_examples], banding=banding)


def _leak(a: dict, sa: str, b: dict, sb: str, sim: float, kind: str) -> dict:
    return {"kind": kind, "record_a": a[sa], "split_a": sa, "record_b": b[sb], "split_b": sb, "similarity": sim}


def format_leaks(report: LeakReport) -> str:
    lines = [
        f"split leakage: {report.offending_pairs} identical/near-identical pair(s) across splits ({report.method})"
    ]
    for e in report.examples:
        lines.append(
            f"  {e['record_a']} ({e['split_a']}) ~ {e['record_b']} ({e['split_b']}): "
            f"{e['kind']}, k-mer Jaccard {e['similarity']:.4f}"
        )
    if report.offending_pairs > len(report.examples):
        lines.append(f"  ... and {report.offending_pairs - len(report.examples)} more")
    return "\n".join(lines)


class DatasetError(ValueError):
    """The table cannot make a dataset (unreadable, columns missing, no usable rows, bad splits), or the
    splits leak; the message says which, and nothing has been written."""


# -- table in, tables out --------------------------------------------------------------------


def read_table(path: str, columns: dict[str, str | None]):
    """The input as a pyarrow Table sorted by ``record_id`` (else by sequence) for determinism."""
    from hpcprep.storage import parquet_dataset

    try:
        dataset = parquet_dataset(path)
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc
    names = dataset.schema.names
    wanted = [c for c in columns.values() if c is not None and c in names]
    for role in ("sequence", "ss8", "mask", "split"):
        name = columns.get(role)
        if name is not None and name not in names:
            raise DatasetError(f"{path}: no {role} column {name!r}; columns are {names}")
    if "record_id" in names:
        wanted.append("record_id")
    table = dataset.to_table(columns=list(dict.fromkeys(wanted)))
    return table.sort_by("record_id" if "record_id" in names else columns["sequence"])


def build_dataset(
    table_path: str,
    out: str,
    sequence_column: str = "sequence",
    ss8_column: str = "ss8",
    ss3_column: str | None = "ss3",
    mask_column: str | None = None,
    split_column: str | None = None,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    identity: float = 0.9,
    k: int = 5,
    seed: int = 0,
    say: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Build the dataset; returns the ``splits.json`` content. Raises ``DatasetError``
    for a table it cannot use or splits that leak, before writing anything. ``say`` is told each phase as it ends (with its counts and seconds)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .readers import ss8_to_ss3

    columns = {
        "sequence": sequence_column,
        "ss8": ss8_column,
        "ss3": ss3_column,
        "mask": mask_column,
        "split": split_column,
    }
    t = time.perf_counter()
    table = read_table(table_path, columns)
    has_ids = "record_id" in table.column_names
    n_in = table.num_rows
    seqs = table.column(sequence_column).to_pylist()
    ss8s = table.column(ss8_column).to_pylist()
    ss3s = table.column(ss3_column).to_pylist() if ss3_column and ss3_column in table.column_names else None
    masks = table.column(mask_column).to_pylist() if mask_column else None
    given = table.column(split_column).to_pylist() if split_column else None
    ids = table.column("record_id").to_pylist() if has_ids else None

    rows, skipped = [], {"missing_sequence_or_ss8": [], "length_mismatch": []}
    for i in range(n_in):
        rid = str(ids[i]) if has_ids else f"row{i}"
        seq, ss8 = seqs[i], ss8s[i]
        if not seq or not ss8:
            skipped["missing_sequence_or_ss8"].append(rid)
            continue
        ss8 = ss8.upper()
        ss3 = ss3s[i] if ss3s is not None and ss3s[i] is not None else ss8_to_ss3(ss8)
        mask = [bool(m) for m in masks[i]] if masks is not None and masks[i] is not None else [True] * len(seq)
        if not (len(seq) == len(ss8) == len(ss3) == len(mask)):
            skipped["length_mismatch"].append(rid)
            continue
        rows.append((i, rid, seq, ss3, ss8, mask))
    if not rows:
        raise DatasetError(f"{table_path}: no usable rows (of {n_in})")
    keys = [r[1] if has_ids else r[2].upper() for r in rows]
    sequences = [r[2] for r in rows]
    dropped = n_in - len(rows)
    say(f"read {n_in} rows from {table_path}: {len(rows)} usable, {dropped} skipped ({time.perf_counter() - t:.1f} s)")

    if given is not None:
        bad = sorted({str(given[r[0]]) for r in rows if given[r[0]] not in SPLITS})
        if bad:
            raise DatasetError(f"--split-column {split_column!r} holds {bad}; allowed: {list(SPLITS)}")
        splits = [given[r[0]] for r in rows]
        clustering = {"mode": "given", "split_column": split_column}
    else:
        t = time.perf_counter()
        a = assign_splits(sequences, keys, fractions, identity, k, seed)
        say(
            f"clustered {len(rows)} sequences at identity {identity:g}: {a.clusters} clusters (largest "
            f"{a.largest_cluster}), {a.candidate_pairs} candidate pairs, {a.merged_pairs} merged "
            f"({time.perf_counter() - t:.1f} s)"
        )
        splits = a.splits
        clustering = {
            "mode": "assigned",
            "rule": "union-find over pairs that are identical (after upper-casing) or whose k-mer set Jaccard "
            "similarity is >= identity; candidates from MinHash LSH, every candidate verified exactly; "
            "whole clusters go to one split, ordered by blake2b(seed, smallest record id or sequence) and "
            "laid end to end by row count against the cumulative fractions",
            "clusters": a.clusters,
            "largest_cluster": a.largest_cluster,
            "lsh": {
                "num_hashes": a.banding.num_hashes,
                "bands": a.banding.bands,
                "rows_per_band": a.banding.rows,
                "miss_probability_at_threshold": a.banding.miss_probability(identity),
                "hash": "splitmix64(kmer_code XOR blake2b-derived seed_i), min over the k-mer set",
            },
            "candidate_pairs": a.candidate_pairs,
            "merged_pairs": a.merged_pairs,
        }

    t = time.perf_counter()
    report = check_leakage(sequences, splits, [r[1] for r in rows], identity, k, seed)
    say(f"leakage check {'passed' if report.passed else 'FAILED'} ({time.perf_counter() - t:.1f} s)")
    if not report.passed:
        raise DatasetError(format_leaks(report) + "\nnothing was written to " + str(out))

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    id_type = table.schema.field("record_id").type if has_ids else None
    counts = {}
    for name in SPLITS:
        chosen = [r for r, s in zip(rows, splits) if s == name]
        data = {}
        if has_ids:
            data["record_id"] = pa.array([ids[r[0]] for r in chosen], type=id_type)
        data["sequence"] = pa.array([r[2] for r in chosen], type=pa.string())
        data["ss3"] = pa.array([r[3] for r in chosen], type=pa.string())
        data["ss8"] = pa.array([r[4] for r in chosen], type=pa.string())
        data["mask"] = pa.array([r[5] for r in chosen], type=pa.list_(pa.bool_()))
        data["split"] = pa.array([name] * len(chosen), type=pa.string())
        pq.write_table(pa.table(data), out_dir / f"{name}.parquet")
        counts[name] = {"rows": len(chosen), "residues": sum(len(r[2]) for r in chosen)}
    total = len(rows)
    summary = {
        "source": str(table_path),
        "rows_in": n_in,
        "rows_out": total,
        "skipped": {kind: {"count": len(v), "first": v[:10]} for kind, v in skipped.items()},
        "counts": counts,
        "fractions_requested": dict(zip(SPLITS, fractions)) if given is None else None,
        "fractions_actual": {name: counts[name]["rows"] / total for name in SPLITS},
        "similarity": {
            "definition": "Jaccard similarity of the sets of overlapping k-mers of the upper-cased sequences "
            "(length-insensitive, no alignment); identical = equal after upper-casing",
            "k": k,
            "identity": identity,
            "seed": seed,
        },
        "clustering": clustering,
        "leakage_check": report.as_dict(),
        "columns": {
            "record_id": "from the input" if has_ids else None,
            "sequence": f"from {sequence_column!r}",
            "ss3": f"from {ss3_column!r}" if ss3s is not None else f"derived from {ss8_column!r}",
            "ss8": f"from {ss8_column!r} (upper-cased)",
            "mask": f"from {mask_column!r}" if mask_column else "all True",
            "split": "train / validation / test",
        },
    }
    (out_dir / "splits.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
