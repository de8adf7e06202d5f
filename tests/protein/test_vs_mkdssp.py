"""`assign_secondary_structure` against Debian's mkdssp (4.x) on real structures.

Comparison rules: residues are matched by (chain, residue number + insertion code) between the classic DSSP
output of ``mkdssp --output-format dssp`` and :func:`tests.protein.corpus.backbone`; mkdssp's break lines ('!')
are skipped; its blank state and P (polyproline II, which mkdssp 4.x adds on coil) read as '-' coil. Our kernel
runs one chain at a time, so H-bonds to other chains (inter-chain sheets) are not seen; that is part of the
measured disagreement.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hpcprep_protein.kernels import assign_secondary_structure, q8_to_q3

from tests.conftest import require_tool
from tests.protein.corpus import backbone, corpus, read_structure

MIN_TOTAL_Q8 = 0.95
MIN_TOTAL_Q3 = 0.97
MIN_PER_STRUCTURE_Q8 = 0.90


def run_mkdssp(exe: str, path: Path, workdir: Path) -> Path:
    """Classic DSSP output for ``path``; falls back to a gemmi-written mmCIF when mkdssp rejects the file."""
    out = workdir / (path.name + ".dssp")
    proc = subprocess.run([exe, "--output-format", "dssp", str(path), str(out)], capture_output=True, text=True)
    if proc.returncode == 0 and out.exists() and out.stat().st_size > 0:
        return out
    cif = workdir / (path.name + ".cif")
    read_structure(path).make_mmcif_document().write_file(str(cif))
    proc = subprocess.run([exe, "--output-format", "dssp", str(cif), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0 and out.exists(), f"mkdssp failed on {path}: {proc.stderr[-2000:]}"
    return out


def parse_dssp(path: Path) -> dict[tuple[str, str], str]:
    """{(chain, residue number + icode): 8-state letter} from a classic DSSP file."""
    states = {}
    started = False
    for line in path.read_text().splitlines():
        if line.startswith("  #  RESIDUE"):
            started = True
            continue
        if not started or len(line) < 17 or line[13] == "!":
            continue
        key = (line[11], line[5:10].strip() + line[10].strip())
        ss = line[16]
        states[key] = "-" if ss in " P" else ss
    return states


def compare(exe: str, path: Path, workdir: Path):
    ref = parse_dssp(run_mkdssp(exe, path, workdir))
    n8 = n3 = total = 0
    for chain, nums, names, n, ca, c, o in backbone(path, modified=True):
        ss = assign_secondary_structure(n, ca, c, o, residue_names=names)
        for num, s in zip(nums, ss):
            r = ref.get((chain, num))
            if r is None:
                continue
            total += 1
            n8 += r == s
            n3 += q8_to_q3(r) == q8_to_q3(s)
    return total, n8, n3


def test_agreement_with_mkdssp(tmp_path):
    exe = require_tool("mkdssp")
    rows = []
    for path in corpus():
        total, n8, n3 = compare(exe, path, tmp_path)
        assert total > 0, f"no residues matched between mkdssp and gemmi for {path}"
        rows.append((path.name, total, n8, n3))
    t = sum(r[1] for r in rows)
    a8 = sum(r[2] for r in rows)
    a3 = sum(r[3] for r in rows)
    print()
    print(f"{'structure':<14} {'residues':>8} {'Q8 agree':>9} {'Q3 agree':>9}")
    for name, total, n8, n3 in rows:
        print(f"{name:<14} {total:>8} {n8 / total:>9.2%} {n3 / total:>9.2%}")
    print(f"{'TOTAL':<14} {t:>8} {a8 / t:>9.2%} {a3 / t:>9.2%}")
    bad = [(name, n8 / total) for name, total, n8, _ in rows if n8 / total < MIN_PER_STRUCTURE_Q8]
    assert not bad, f"structures below {MIN_PER_STRUCTURE_Q8:.0%} 8-state agreement: {bad}"
    assert a8 / t >= MIN_TOTAL_Q8
    assert a3 / t >= MIN_TOTAL_Q3


def test_parse_dssp_skips_breaks(tmp_path):
    header = "  #  RESIDUE AA STRUCTURE BP1 BP2  ACC\n"
    body = (
        "    1    1 A M              0   0   53\n"
        "    2        !              0   0    0\n"
        "    3    5AA Q  H           0   0   77\n"
        "    4    6 A P  P           0   0   77\n"
    )
    p = tmp_path / "x.dssp"
    p.write_text("junk\n" + header + body)
    assert parse_dssp(p) == {("A", "1"): "-", ("A", "5A"): "H", ("A", "6"): "-"}


@pytest.mark.parametrize("name", ["1ubq.pdb"])
def test_ubiquitin_has_helix_and_sheet(name):
    path = next((p for p in corpus() if p.name == name), None)
    assert path is not None
    (chain, nums, names, n, ca, c, o) = backbone(path)[0]
    ss = assign_secondary_structure(n, ca, c, o, residue_names=names)
    assert len(ss) == 76
    assert "HHHHHHHHHH" in ss and "EEEEE" in ss
