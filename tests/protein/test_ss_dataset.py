"""``hpcprep protein ss-dataset``: leak-free splits of a secondary-structure table."""

from __future__ import annotations

import json
import random

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from hpcprep_protein.commands import register
from hpcprep_protein.similarity import choose_banding, kmer_set
from hpcprep_protein.ss_dataset import SPLITS, assign_splits, check_leakage

AA = "ACDEFGHIKLMNPQRSTVWY"
COLUMNS = ["record_id", "sequence", "ss3", "ss8", "mask", "split"]


def _mutate(rng: random.Random, seq: str, n: int) -> str:
    s = list(seq)
    for pos in rng.sample(range(len(s)), n):
        s[pos] = rng.choice([a for a in AA if a != s[pos]])
    return "".join(s)


def synthetic(n_clusters: int = 60, n_unrelated: int = 60, seed: int = 1) -> tuple[list[dict], dict[str, int]]:
    """Rows plus the planted family of each record id (copies with 1-3 point mutations, duplicates)."""
    rng = random.Random(seed)
    rows, family = [], {}
    for c in range(n_clusters):
        base = "".join(rng.choice(AA) for _ in range(150))
        members = [base, base.lower(), base]  # exact duplicates (one in lower case)
        members += [_mutate(rng, base, rng.randint(1, 3)) for _ in range(rng.randint(1, 4))]
        for m, seq in enumerate(members):
            rows.append({"record_id": f"c{c:03d}_{m}", "sequence": seq})
            family[f"c{c:03d}_{m}"] = c
    for u in range(n_unrelated):
        rows.append({"record_id": f"u{u:03d}", "sequence": "".join(rng.choice(AA) for _ in range(150))})
        family[f"u{u:03d}"] = 10_000 + u
    for r in rows:
        r["ss8"] = "".join(rng.choice("HGIEBTS-") for _ in r["sequence"])
        r["ss_mask"] = [rng.random() > 0.05 for _ in r["sequence"]]
    return rows, family


def write(rows: list[dict], path, shuffle_seed: int | None = None) -> str:
    rows = list(rows)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(rows)
    cols = {k: [r.get(k) for r in rows] for k in rows[0]}
    table = pa.table({k: pa.array(v, type=pa.list_(pa.bool_())) if k == "ss_mask" else v for k, v in cols.items()})
    pq.write_table(table, path)
    return str(path)


def cli() -> click.Group:
    group = click.Group("hpcprep")
    register(group)
    return group


def run(args: list[str]):
    return CliRunner().invoke(cli(), ["protein", "ss-dataset", *args])


def brute_force_jaccard(a: str, b: str, k: int = 5) -> float:
    sa = {a.upper()[i : i + k] for i in range(len(a) - k + 1)}
    sb = {b.upper()[i : i + k] for i in range(len(b) - k + 1)}
    return len(sa & sb) / len(sa | sb)


def read_out(out) -> dict[str, pa.Table]:
    return {name: pq.read_table(out / f"{name}.parquet") for name in SPLITS}


def test_kmer_set_matches_python_sets():
    for s in ("ACDEFGHIK", "aaaaaaa", "ACD", ""):
        codes = kmer_set(s, 5)
        expected = {s.upper()[i : i + 5] for i in range(len(s) - 4)} or {s.upper()}
        assert codes.size == len(expected)
    assert np.array_equal(kmer_set("acdefg", 3), kmer_set("ACDEFG", 3))


def test_banding_miss_probability_tiny():
    for t in (0.5, 0.8, 0.9, 0.95):
        b = choose_banding(t)
        assert b.num_hashes <= 256
        assert b.miss_probability(t) <= 1e-12


def test_assigned_splits_keep_clusters_together(tmp_path):
    rows, family = synthetic()
    src = write(rows, tmp_path / "in.parquet")
    out = tmp_path / "out"
    # k=5 on 150 residues: m point mutations remove up to 5m of 146 k-mers, J ~ (146-5m)/(146+5m):
    # 1 -> 0.93, 2 -> 0.87, 3 -> 0.81; so 0.75 is the threshold that joins copies with up to 3 mutations.
    result = run([src, "--out", str(out), "--mask-column", "ss_mask", "--seed", "3", "--identity", "0.75"])
    assert result.exit_code == 0, result.output
    tables = read_out(out)
    for name, t in tables.items():
        assert t.column_names == COLUMNS
        assert t.schema.field("mask").type == pa.list_(pa.bool_())
        assert set(t.column("split").to_pylist()) <= {name}
    split_of = {rid: name for name, t in tables.items() for rid in t.column("record_id").to_pylist()}
    seq_of = {r["record_id"]: r["sequence"] for r in rows}
    assert set(split_of) == set(seq_of)
    # planted families are whole
    by_family: dict[int, set[str]] = {}
    for rid, fam in family.items():
        by_family.setdefault(fam, set()).add(split_of[rid])
    assert all(len(s) == 1 for s in by_family.values())
    # brute force: no pair across splits with Jaccard >= 0.9
    ids = sorted(seq_of)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            if split_of[a] != split_of[b]:
                assert brute_force_jaccard(seq_of[a], seq_of[b]) < 0.75, (a, b)
    # fractions roughly honoured (clusters of up to 7 rows out of ~400)
    n = len(ids)
    frac = {name: t.num_rows / n for name, t in tables.items()}
    assert abs(frac["train"] - 0.8) < 0.05
    assert abs(frac["validation"] - 0.1) < 0.05 and abs(frac["test"] - 0.1) < 0.05
    # labels and masks carried
    t = tables["train"]
    row = t.slice(0, 1).to_pylist()[0]
    src_row = next(r for r in rows if r["record_id"] == row["record_id"])
    assert row["ss8"] == src_row["ss8"] and row["mask"] == src_row["ss_mask"]
    assert row["ss3"] == "".join("H" if c in "HGI" else "E" if c in "EB" else "C" for c in row["ss8"])
    summary = json.loads((out / "splits.json").read_text())
    assert summary["leakage_check"]["passed"] is True
    banding = choose_banding(0.75)
    assert summary["clustering"]["lsh"]["rows_per_band"] == banding.rows
    assert summary["clustering"]["lsh"]["bands"] == banding.bands
    assert summary["clustering"]["clusters"] == len(by_family)
    assert sum(summary["counts"][s]["rows"] for s in SPLITS) == n
    # each phase says what it did, on standard error, the result line on standard output
    said = result.stderr.splitlines()
    assert said[0].startswith(f"read {n} rows from {src}: {n} usable, 0 skipped (")
    c = summary["clustering"]
    assert said[1].startswith(
        f"clustered {n} sequences at identity 0.75: {c['clusters']} clusters (largest {c['largest_cluster']}), "
        f"{c['candidate_pairs']} candidate pairs, {c['merged_pairs']} merged ("
    )
    assert said[2].startswith("leakage check passed (") and len(said) == 3
    assert result.stdout.startswith(f"wrote {out}: train ")


def test_deterministic_across_runs_and_row_order(tmp_path):
    rows, _ = synthetic(n_clusters=30, n_unrelated=30, seed=7)
    results = []
    for i, shuffle in enumerate((None, None, 11, 12)):
        src = write(rows, tmp_path / f"in{i}.parquet", shuffle_seed=shuffle)
        out = tmp_path / f"out{i}"
        result = run([src, "--out", str(out)])
        assert result.exit_code == 0, result.output
        results.append({name: t.to_pylist() for name, t in read_out(out).items()})
    assert all(r == results[0] for r in results[1:])


def test_given_split_column_that_leaks_fails(tmp_path):
    rows, _ = synthetic(n_clusters=5, n_unrelated=5, seed=2)
    for r in rows:
        r["split"] = "train"
    rng = random.Random(0)
    original = next(r for r in rows if r["record_id"] == "u001")
    leaked = dict(original, record_id="zz_leak", sequence=_mutate(rng, original["sequence"], 1), split="test")
    rows.append(leaked)
    other = "".join(rng.choice(AA) for _ in range(150))
    rows.append(dict(rows[-2], record_id="u_other", split="validation", sequence=other))
    src = write(rows, tmp_path / "in.parquet")
    out = tmp_path / "out"
    result = run([src, "--out", str(out), "--split-column", "split"])
    assert result.exit_code != 0
    assert "u001" in result.output and "zz_leak" in result.output
    assert not out.exists()
    # without the leaked copy the given splits pass and are kept
    rows.remove(leaked)
    src = write(rows, tmp_path / "in2.parquet")
    result = run([src, "--out", str(out), "--split-column", "split"])
    assert result.exit_code == 0, result.output
    assert read_out(out)["validation"].column("record_id").to_pylist() == ["u_other"]


def test_identical_sequence_across_splits_is_leak():
    seqs = ["ACDEFGHIKL", "acdefghikl", "MNPQRSTVWY"]
    report = check_leakage(seqs, ["train", "test", "test"], ["a", "b", "c"], 0.9, 5)
    assert not report.passed
    assert report.examples[0]["kind"] == "identical"
    assert {report.examples[0]["record_a"], report.examples[0]["record_b"]} == {"a", "b"}


def test_lsh_check_path_agrees_with_exhaustive():
    rows, _ = synthetic(n_clusters=20, n_unrelated=20, seed=5)
    seqs = [r["sequence"] for r in rows]
    ids = [r["record_id"] for r in rows]
    splits = [SPLITS[i % 3] for i in range(len(rows))]  # deliberately leaky
    a = check_leakage(seqs, splits, ids, 0.9, 5)
    b = check_leakage(seqs, splits, ids, 0.9, 5, exhaustive_below=0)
    assert not a.passed and a.offending_pairs == b.offending_pairs
    assert a.examples == b.examples


def test_assign_splits_handles_transitive_chains():
    rng = random.Random(4)
    base = "".join(rng.choice(AA) for _ in range(150))
    chain = [base]
    for _ in range(6):
        chain.append(_mutate(rng, chain[-1], 1))
    a = assign_splits(chain, [f"r{i}" for i in range(len(chain))], (0.34, 0.33, 0.33), 0.9, 5, 0)
    assert len(set(a.splits)) == 1 and a.clusters == 1


def test_bad_fractions(tmp_path):
    rows, _ = synthetic(n_clusters=2, n_unrelated=2)
    src = write(rows, tmp_path / "in.parquet")
    result = run([src, "--out", str(tmp_path / "o"), "--fractions", "0.5,0.5"])
    assert result.exit_code != 0 and "fractions" in result.output


def test_registered_on_hpcprep_cli():
    from hpcprep.cli import build_cli

    group, _ = build_cli()
    assert "ss-dataset" in group.commands["protein"].commands


def test_a_table_that_is_not_parquet_is_named_and_nothing_is_written(tmp_path):
    src = tmp_path / "table.parquet"
    src.write_text("record_id,sequence\nr1,ACDE\n")  # CSV under a Parquet name
    out = tmp_path / "out"
    result = run([str(src), "--out", str(out)])
    assert result.exit_code == 1
    assert f"{src}: cannot read as Parquet" in result.output
    assert not out.exists()
