"""Protein kernels vs mkdssp, single thread, in one script run.

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/protein.py

- ``contact_edges`` (CA, 8 A cutoff) chains/s on ~350-residue chains.
- ``assign_secondary_structure`` chains/s on ~300-residue chains, vs ``mkdssp --output-format dssp`` run once per
  file (a one-chain mmCIF of the same chain, written by gemmi), best of ``--repeat``; ratio = ours / mkdssp.

Chains are cut from the test corpus (Debian ``python-biopython-doc``: 2XHE, 7DDO). Writes
``benchmarks/results/protein.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import gemmi  # noqa: E402
import numpy as np  # noqa: E402
from hpcprep_protein.kernels import assign_secondary_structure, contact_edges  # noqa: E402

from tests.protein.corpus import FILES, backbone, read_structure  # noqa: E402

RESULTS = HERE / "results" / "protein.json"


def best(fn, repeat):
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def alphafold_like_files(path: Path, chain: str, workdir: Path, count: int, length: int = 400) -> list[Path]:
    """``count`` single-chain PDB files of ``length`` residues named and shaped like AlphaFold
    models (one chain, no waters, B-factor column holding a pLDDT-like value)."""
    st = read_structure(path)
    st.remove_ligands_and_waters()
    model = st[0]
    for ch in list(model):
        if ch.name != chain:
            model.remove_chain(ch.name)
    ch = model[chain]
    for i in range(len(ch) - 1, length - 1, -1):
        del ch[i]
    for k, res in enumerate(ch):
        for atom in res:
            atom.b_iso = 50.0 + 45.0 * np.sin(k / 9.0) ** 2
    st.setup_entities()
    files = []
    for i in range(count):
        out = workdir / f"AF-Q{i:05d}-F1-model_v4.pdb"
        st.write_pdb(str(out))
        files.append(out)
    return files


def structure_reading(path: Path, chain: str, repeat: int, count: int = 200) -> dict:
    """protein.structure (plan + read + Arrow) on AlphaFold-sized files vs Biopython's PDBParser
    reading the same files and collecting the backbone, one thread each."""
    from hpcprep.execution import to_arrow_table
    from hpcprep_protein.readers import StructureReader

    with tempfile.TemporaryDirectory() as td:
        files = alphafold_like_files(path, chain, Path(td), count)

        def ours():
            reader = StructureReader({"paths": [td]})
            chains = 0
            for item in reader.plan():
                for batch in reader.read(item):
                    chains += to_arrow_table(batch).num_rows
            assert chains == count, chains
        ours()
        t_ours = best(ours, repeat)
        row = {"chains_per_s": count / t_ours, "residues_per_chain": 400, "files": count}
        try:
            from Bio.PDB import PDBParser
        except ImportError:
            return row
        parser = PDBParser(QUIET=True)

        def biopython():
            for f in files:
                s = parser.get_structure(f.stem, str(f))
                for ch in s[0]:
                    np.array([[r[a].coord for a in ("N", "CA", "C", "O")] for r in ch if all(a in r for a in "N CA C O".split())])
        t_bio = best(biopython, repeat)
    row.update({"peer": "Biopython PDBParser + backbone arrays", "peer_chains_per_s": count / t_bio,
                "ratio": t_bio / t_ours})
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mkdssp-files", type=int, default=10)
    args = ap.parse_args()
    path = next(Path(p) for _, p in FILES if p.endswith("2XHE.cif.gz"))
    chains = [ch for ch in backbone(path) if len(ch[1]) >= 350]
    chain = chains[0]
    name, nums, names, n, ca, c, o = chain
    ca350 = ca[:350]
    n300, ca300, c300, o300, names300 = n[:300], ca[:300], c[:300], o[:300], names[:300]
    contact_edges(ca350, 8.0)
    assign_secondary_structure(n300, ca300, c300, o300, residue_names=names300)
    reps = 2000
    t_ce = best(lambda: [contact_edges(ca350, 8.0) for _ in range(reps)], args.repeat) / reps
    def numpy_contacts(xyz, cutoff=8.0):
        d = np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1))
        i, j = np.nonzero(np.triu(d <= cutoff, 1))
        return i, j, d[i, j]

    ref_src, ref_dst, _ = numpy_contacts(ca350)
    src, dst, _ = contact_edges(ca350, 8.0)
    assert np.array_equal(src, ref_src) and np.array_equal(dst, ref_dst), "peer and kernel disagree"
    t_np = best(lambda: [numpy_contacts(ca350) for _ in range(200)], args.repeat) / 200
    reps = 500
    t_ss = best(
        lambda: [assign_secondary_structure(n300, ca300, c300, o300, residue_names=names300) for _ in range(reps)],
        args.repeat,
    )
    t_ss /= reps
    rows = {
        "contact_edges_350": {
            "chains_per_s": 1.0 / t_ce,
            "peer": "NumPy all-pairs distances + np.nonzero (vectorised brute force)",
            "peer_chains_per_s": 1.0 / t_np,
            "ratio": t_np / t_ce,
        },
        "assign_secondary_structure_300": {"chains_per_s": 1.0 / t_ss},
    }
    exe = shutil.which("mkdssp")
    if exe:
        with tempfile.TemporaryDirectory() as td:
            st = read_structure(path)
            model = st[0]
            for ch in list(model):
                if ch.name != name:
                    model.remove_chain(ch.name)
            ch = model[name]
            keep = set(nums[:300])
            for i in range(len(ch) - 1, -1, -1):
                r = ch[i]
                if f"{r.seqid.num}{r.seqid.icode.strip()}" not in keep:
                    del ch[i]
            st.setup_entities()
            cif = Path(td) / "chain.cif"
            st.make_mmcif_document().write_file(str(cif))
            out = Path(td) / "chain.dssp"

            def run():
                for _ in range(args.mkdssp_files):
                    subprocess.run(
                        [exe, "--output-format", "dssp", str(cif), str(out)], check=True, capture_output=True
                    )

            t_mk = best(run, args.repeat) / args.mkdssp_files
        rows["assign_secondary_structure_300"].update(
            {"peer": "mkdssp per file", "peer_chains_per_s": 1.0 / t_mk, "ratio": t_mk / t_ss}
        )
    rows["structure_reading"] = structure_reading(path, name, args.repeat)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "gemmi": gemmi.__version__,
        "threads": 1,
        "rows": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for k, v in rows.items():
        print(k, {kk: (round(vv, 1) if isinstance(vv, float) else vv) for kk, vv in v.items()})


if __name__ == "__main__":
    main()
