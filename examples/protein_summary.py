"""Protein example, last step: what went into the training table.

    python examples/protein_summary.py [out/protein]

Prints one line per chain (residues, share of H/E/C from DSSP, contacts per residue)
and the errors the run set aside, from the Parquet table and the run's manifest, and
writes the record id of ubiquitin's chain (pdb1ubi.pdb) to ``<out>_query_id.txt`` (beside
the run's folder: a run's folder holds only what the run wrote) for
``hpcprep search --id``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq


def main(out: Path) -> None:
    table = pq.read_table(out / "table", columns=["source", "record_id", "chain", "length", "ss3", "contact_src"])
    rows = sorted(table.to_pylist(), key=lambda r: (Path(r["source"]).name, r["chain"]))
    total = Counter()
    print(f"{'file':<22} {'chain':>5} {'residues':>8} {'H':>6} {'E':>6} {'C':>6} {'contacts/res':>12}")
    for r in rows:
        ss = Counter(r["ss3"])
        total.update(ss)
        n = max(r["length"], 1)
        print(
            f"{Path(r['source']).name:<22} {r['chain']:>5} {r['length']:>8} {ss['H'] / n:>6.2f} {ss['E'] / n:>6.2f} "
            f"{ss['C'] / n:>6.2f} {len(r['contact_src']) / n:>12.2f}"
        )
    n = sum(total.values())
    print(f"{len(rows)} chains, {n} residues: H {total['H'] / n:.2f}, E {total['E'] / n:.2f}, C {total['C'] / n:.2f}")
    ubiquitin = [r["record_id"] for r in rows if Path(r["source"]).name == "pdb1ubi.pdb"]
    if ubiquitin:
        query_id_file(out).write_text(ubiquitin[0] + "\n")
    manifest = json.loads((out / "manifest.json").read_text())
    c = manifest["counts"]
    print(f"inputs {c['inputs']} = outputs {c['outputs']} + errors {c['errors']}")
    for err in manifest["errors"]["first"]:
        print(f"  error: {Path(err['source']).name}: {err['message']}")


def query_id_file(out: Path) -> Path:
    """Where the query's record id goes: beside the run's folder, not in it (``hpcprep run
    --overwrite`` refuses to delete files it did not write)."""
    return out.with_name(out.name + "_query_id.txt")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/protein"))
