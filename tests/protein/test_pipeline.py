"""A whole protein run: real structures -> every structure encoder -> Parquet, checked
against mkdssp and against the kernels called directly."""

from __future__ import annotations

from pathlib import Path

import hpcprep
import numpy as np
import pyarrow.parquet as pq
from hpcprep_protein import kernels

from tests.conftest import require_tool
from tests.protein.corpus import MULTI_CHAIN, corpus, split_ubiquitin
from tests.protein.test_vs_mkdssp import parse_dssp, run_mkdssp

# single chains, and multi-chain files with sheets between chains (2BEG, 6YFY) or a bound peptide (4ZHL)
NAMES = ("1ubq.pdb", "2OFG.cif.gz", "4CUP.cif.gz", "4ZHL.cif.gz", "1a0q.pdb", "7DDO.pdb.gz")


def test_structures_through_the_runner_match_mkdssp(tmp_path, ray_local):
    exe = require_tool("mkdssp")
    dimer = split_ubiquitin(tmp_path / "ubq_split.pdb")
    files = [p for p in corpus() if p.name in NAMES] + corpus(MULTI_CHAIN) + [dimer]
    assert len(files) == len(NAMES) + len(MULTI_CHAIN) + 1
    spec = {
        "run": {"name": "protein-pipeline", "output": str(tmp_path / "out")},
        "reader": {"stage": "protein.structure", "paths": [str(p) for p in files]},
        "encoders": [
            {"stage": "protein.dssp"},
            {"stage": "protein.ss_labels", "ss8_column": "ss8", "mask_column": "ss_mask", "target": "esm"},
            {"stage": "protein.contacts", "cutoff": 8.0, "min_seq_sep": 3},
            {"stage": "protein.dihedrals"},
            {"stage": "protein.composition"},
        ],
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "out" / "table")}],
    }
    result = hpcprep.run(spec, progress=False)
    assert result.counts["balanced"] and result.counts["errors"] == 0
    rows = pq.read_table(tmp_path / "out" / "table").to_pylist()
    assert rows
    per_file: dict[str, list[int]] = {}
    refs = {p.name: parse_dssp(run_mkdssp(exe, p, tmp_path)) for p in files}
    for r in rows:
        ref = refs[Path(r["source"]).name]
        icodes = r["insertion_codes"]
        counts = per_file.setdefault(Path(r["source"]).name, [0, 0, 0])
        for i, (num, ss) in enumerate(zip(r["residue_numbers"], r["ss8"])):
            key = (r["chain"], f"{num}{icodes[i].strip()}")
            if r["ss_mask"][i] and key in ref:
                counts[0] += 1
                counts[1] += ref[key] == ss
                counts[2] += ref[key] == ss == "E"
        # labels: ESM layout, one ignored position each side, residues masked where the backbone is incomplete
        assert len(r["labels_ss8"]) == r["length"] + 2 and r["labels_ss8"][0] == r["labels_ss8"][-1] == -100
        ca = np.asarray(r["ca"], dtype=np.float64).reshape(-1, 3)
        src, dst, dist = kernels.contact_edges(ca, 8.0, 3)
        assert r["contact_src"] == src.tolist() and r["contact_dst"] == dst.tolist()
        n, c = (np.asarray(r[a], dtype=np.float64).reshape(-1, 3) for a in ("n", "c"))
        phi, psi, omega = kernels.backbone_dihedrals(n, ca, c)
        np.testing.assert_allclose(np.asarray(r["phi"], dtype=np.float64), phi, atol=1e-3, equal_nan=True)
        assert abs(sum(r["composition"][:20]) - 1) < 1e-5
    total = sum(c[0] for c in per_file.values())
    agree = sum(c[1] for c in per_file.values())
    print(f"\nrunner vs mkdssp, nine states: {agree}/{total} residues agree; per file (residues, agree, E both):")
    for name, c in per_file.items():
        print(f"  {name:<18} {c}")
    assert set(per_file) == {p.name for p in files}
    assert total > 1500
    assert agree / total >= 0.995
    # the fibril's strands pair across chains: all five chains carry them
    fibril = [r for r in rows if Path(r["source"]).name == "2BEG.cif.gz"]
    assert len(fibril) == 5 and all(r["ss8"].count("E") >= 15 for r in fibril)
    assert per_file["2BEG.cif.gz"][2] >= 0.7 * per_file["2BEG.cif.gz"][0]
    # the two-chain ubiquitin: chain A's strand pairs only with chain B
    (first,) = [r for r in rows if Path(r["source"]).name == "ubq_split.pdb" and r["chain"] == "A"]
    assert first["ss8"] == "-EEEEEE-"
