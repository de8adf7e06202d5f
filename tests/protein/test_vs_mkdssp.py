"""DSSP against Debian's mkdssp (4.x) on real structures, in all nine states (P, polyproline II, included).

Comparison rules: residues are matched by (chain, residue number + insertion code) between the classic DSSP
output of ``mkdssp --output-format dssp`` and :func:`tests.protein.corpus.backbone`; mkdssp's break lines ('!')
are skipped and its blank state reads as '-'. Like mkdssp, the kernel is given every chain of the first model at
once (:func:`assign_model_secondary_structure`), so sheets between chains count.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hpcprep_protein.kernels import assign_model_secondary_structure, assign_secondary_structure, q8_to_q3

from tests.conftest import require_tool
from tests.protein.corpus import FILES, MORE_STRUCTURES, MULTI_CHAIN, backbone, corpus, read_structure

MIN_TOTAL_Q9 = 0.995
MIN_PER_STRUCTURE_Q9 = 0.95
MIN_PPII_AGREEMENT = 0.95


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
    """{(chain, residue number + icode): state letter} from a classic DSSP file; blank reads as '-'."""
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
        states[key] = "-" if ss == " " else ss
    return states


def whole_model(path: Path) -> list[tuple[str, str, str]]:
    """(chain, residue number, state) for every residue of the first model, chains assigned together."""
    chains = backbone(path, modified=True)
    states = assign_model_secondary_structure(
        [(n, ca, c, o, [r == "PRO" for r in names]) for _, _, names, n, ca, c, o in chains]
    )
    return [(ch[0], num, s) for ch, ss in zip(chains, states) for num, s in zip(ch[1], ss)]


def agreement(ref: dict, ours) -> dict:
    """Matched residues, agreeing ones in nine and three states, and P in mkdssp / ours / both."""
    out = dict.fromkeys(("total", "q9", "q3", "p_ref", "p_ours", "p_both"), 0)
    for chain, num, s in ours:
        r = ref.get((chain, num))
        if r is None:
            continue
        out["total"] += 1
        out["q9"] += r == s
        out["q3"] += q8_to_q3(r) == q8_to_q3(s)
        out["p_ref"] += r == "P"
        out["p_ours"] += s == "P"
        out["p_both"] += r == s == "P"
    return out


def print_table(rows: list[tuple[str, dict]]) -> dict:
    total = {k: sum(r[k] for _, r in rows) for k in rows[0][1]}
    print()
    print(
        f"{'structure':<16} {'residues':>8} {'Q9 agree':>9} {'Q3 agree':>9} {'P mkdssp':>9} {'P ours':>7} {'P both':>7}"
    )
    for name, r in [*rows, ("TOTAL", total)]:
        t = r["total"]
        print(
            f"{name:<16} {t:>8} {r['q9'] / t:>9.2%} {r['q3'] / t:>9.2%} {r['p_ref']:>9} {r['p_ours']:>7} {r['p_both']:>7}"
        )
    return total


def test_agreement_with_mkdssp_in_nine_states(tmp_path):
    exe = require_tool("mkdssp")
    rows = []
    for path in corpus() + corpus(MORE_STRUCTURES) + corpus(MULTI_CHAIN[:1]):
        r = agreement(parse_dssp(run_mkdssp(exe, path, tmp_path)), whole_model(path))
        assert r["total"] > 0, f"no residues matched between mkdssp and gemmi for {path}"
        rows.append((path.name, r))
    total = print_table(rows)
    bad = [(name, r["q9"] / r["total"]) for name, r in rows if r["q9"] / r["total"] < MIN_PER_STRUCTURE_Q9]
    assert not bad, f"structures below {MIN_PER_STRUCTURE_Q9:.0%} nine-state agreement: {bad}"
    assert total["q9"] / total["total"] >= MIN_TOTAL_Q9
    assert total["p_ref"] >= 100, "the corpus should hold enough polyproline II to test it"
    assert total["p_both"] >= MIN_PPII_AGREEMENT * max(total["p_ref"], total["p_ours"])


def test_inter_chain_sheets_need_the_whole_model(tmp_path):
    """The amyloid fibril 2BEG: mkdssp puts most residues in strands that pair with the neighbouring chains;
    chain by chain there is no partner and no strand."""
    exe = require_tool("mkdssp")
    (path,) = corpus(MULTI_CHAIN[:1])
    ref = parse_dssp(run_mkdssp(exe, path, tmp_path))
    strands = sum(s == "E" for s in ref.values())
    assert strands >= 0.7 * len(ref)
    together = agreement(ref, whole_model(path))
    assert together["q9"] == together["total"] == len(ref)
    alone = [
        (chain, num, s)
        for chain, nums, names, n, ca, c, o in backbone(path, modified=True)
        for num, s in zip(nums, assign_secondary_structure(n, ca, c, o, residue_names=names))
    ]
    assert sum(s == "E" for _, _, s in alone) < strands / 4


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
    assert parse_dssp(p) == {("A", "1"): "-", ("A", "5A"): "H", ("A", "6"): "P"}


def test_files_and_multi_chain_lists_do_not_overlap():
    lists = [{p for _, p in files} for files in (FILES, MORE_STRUCTURES, MULTI_CHAIN)]
    assert sum(map(len, lists)) == len(set().union(*lists))


@pytest.mark.parametrize("name", ["1ubq.pdb"])
def test_ubiquitin_has_helix_and_sheet(name):
    path = next((p for p in corpus() if p.name == name), None)
    assert path is not None
    (chain, nums, names, n, ca, c, o) = backbone(path)[0]
    ss = assign_secondary_structure(n, ca, c, o, residue_names=names)
    assert len(ss) == 76
    assert "HHHHHHHHHH" in ss and "EEEEE" in ss
