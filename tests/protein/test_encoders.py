"""The protein encoders: tables against Biopython, hand-made cases, the plugin test kit."""

from __future__ import annotations

import numpy as np
import pytest
from hpcprep.testing import assert_plugin_ok
from hpcprep_protein import encoders as E
from hpcprep_protein import plugin
from hpcprep_protein.tables import ALPHABET, BLOSUM62, SCALES


def batch_of(seqs, **cols):
    b = E._seq_batch(seqs)
    for k, v in cols.items():
        b[k] = np.array(v, dtype=object)
    return b


def rows(column, width):
    return [np.asarray(r).reshape(-1, width) for r in column.to_pylist()]


def test_plugin_passes_the_kit(tmp_path):
    assert_plugin_ok(plugin, tmp_path)


def test_tables_match_biopython():
    substitution_matrices = pytest.importorskip("Bio.Align.substitution_matrices")
    from Bio.SeqUtils import ProtParamData

    m = substitution_matrices.load("BLOSUM62")
    for a in ALPHABET:
        assert BLOSUM62[a] == tuple(int(m[a][b]) for b in ALPHABET)
    for name, theirs in [("kyte_doolittle", ProtParamData.kd), ("hopp_woods", ProtParamData.hw),
                         ("flexibility", ProtParamData.Flex), ("emini_surface", ProtParamData.em)]:
        assert SCALES[name] == {a: theirs[a] for a in ALPHABET}, name


def test_onehot_blosum_physchem_by_hand():
    out = E.Onehot().encode(batch_of(["ACX", "y"]))
    first, second = rows(out["onehot"], 21)
    assert first.tolist()[0][0] == 1 and first[1, 1] == 1 and first[2, 20] == 1 and first.sum() == 3
    assert second[0, ALPHABET.index("Y")] == 1, "lowercase counts"
    blosum = rows(E.Blosum62().encode(batch_of(["WB"]))["blosum62"], 20)[0]
    assert blosum[0, ALPHABET.index("W")] == 11 and not blosum[1].any(), "unknown residues get zeros"
    phys = rows(E.Physchem({"scales": ["kyte_doolittle", "charge_ph7"]}).encode(batch_of(["IDK"]))["physchem"], 2)[0]
    np.testing.assert_array_equal(phys, np.array([[4.5, 0.0], [-3.5, -1.0], [-3.9, 1.0]], np.float32))


def test_windows_are_centred_and_padded():
    out = rows(E.Windows({"width": 5}).encode(batch_of(["ACDE"]))["windows"], 5)[0]
    pad, a, c, d, e = 21, 0, 1, 2, 3
    assert out.tolist() == [[pad, pad, a, c, d], [pad, a, c, d, e], [a, c, d, e, pad], [c, d, e, pad, pad]]


def test_composition_sums_and_dipeptides():
    vec = np.asarray(E.Composition().encode(batch_of(["AAC"]))["composition"].to_pylist()[0])
    assert vec.shape == (420,)
    assert np.isclose(vec[0], 2 / 3) and np.isclose(vec[1], 1 / 3)
    aa, ac = 20 + 0 * 20 + 0, 20 + 0 * 20 + 1
    assert np.isclose(vec[aa], 0.5) and np.isclose(vec[ac], 0.5) and np.isclose(vec[20:].sum(), 1)


@pytest.mark.parametrize(
    "target, before, after", [("none", 0, 0), ("esm", 1, 1), ("prott5", 0, 1)]
)
def test_ss_labels_offsets_and_mask(target, before, after):
    out = E.SsLabels({"target": target, "mask_column": "mask"}).encode(
        batch_of(["ACDEFGH"], ss8=["HGIEBT-"], mask=[np.array([1, 1, 1, 1, 1, 0, 1], bool)])
    )
    y8, y3, m = out["labels_ss8"].to_pylist()[0], out["labels_ss3"].to_pylist()[0], out["label_mask"].to_pylist()[0]
    assert len(y8) == len(y3) == len(m) == 7 + before + after
    assert y8[:before] == [-100] * before and y8[len(y8) - after :] == [-100] * after
    core8, core3 = y8[before : before + 7], y3[before : before + 7]
    assert core8 == [0, 1, 2, 3, 4, -100, 7]
    assert core3 == [0, 0, 0, 1, 1, -100, 2]
    assert m[before : before + 7] == [True] * 5 + [False, True]


def test_ss_labels_reject_unknown_letters():
    with pytest.raises(Exception, match="not a DSSP state"):
        E.SsLabels().encode(batch_of(["AC"], ss8=["HQ"]))
