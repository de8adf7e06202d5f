"""Genomics example, last step: how often does the nearest indexed fragment of a
held-out fragment come from the same organism? Once per vector kind (k-mer spectrum,
GNN embedding), with the same search `hpcprep search` runs.

    python examples/genomics_eval.py [out/genomics]

Prints a table, writes ``<out>/eval.json``, and saves the first query's GNN embedding as
``<out>/query0.npy`` for ``hpcprep search --vector-file``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from hpcprep.search import nearest

KINDS = {"spectrum": "spectrum", "gnn": "embedding"}  # LanceDB table -> query column


def evaluate(out: Path) -> dict:
    queries = pq.read_table(out / "queries" / "table").sort_by("record_id")
    labels = queries["label"].to_pylist()
    report = {"queries": len(labels), "per_label": dict(sorted(Counter(labels).items())), "accuracy": {}}
    for table, column in KINDS.items():
        vectors = np.asarray(queries[column].to_pylist(), dtype=np.float32)
        hits, per_label = 0, Counter()
        for vec, label in zip(vectors, labels):
            top = nearest(str(out / "vectors"), table, vector=vec, k=1)[0]
            if top["label"] == label:
                hits += 1
                per_label[label] += 1
        report["accuracy"][table] = {
            "top1": round(hits / len(labels), 4),
            "per_label": {lab: round(per_label[lab] / n, 4) for lab, n in report["per_label"].items()},
        }
    np.save(out / "query0.npy", np.asarray(queries["embedding"][0].as_py(), dtype=np.float32))
    report["query0"] = {"record_id": queries["record_id"][0].as_py(), "label": labels[0]}
    return report


def main(out: Path) -> None:
    report = evaluate(out)
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    labels = list(report["per_label"])
    print(f"nearest-neighbour organism accuracy over {report['queries']} held-out 2 kb fragments")
    print(f"{'vectors':<10} {'top-1':>7}  " + "  ".join(f"{lab:>15}" for lab in labels))
    print(f"{'(queries)':<10} {'':>7}  " + "  ".join(f"{report['per_label'][lab]:>15}" for lab in labels))
    for table, acc in report["accuracy"].items():
        cells = "  ".join(f"{acc['per_label'][lab]:>15.3f}" for lab in labels)
        print(f"{table:<10} {acc['top1']:>7.3f}  {cells}")
    print(f"wrote {out / 'eval.json'}; first query ({report['query0']['label']}) in {out / 'query0.npy'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/genomics"))
