"""The protein encoders: tables against Biopython, hand-made cases, the plugin test kit."""

from __future__ import annotations

import numpy as np
import pytest
from hpcprep.stages import RecordError
from hpcprep.testing import assert_plugin_ok
from hpcprep_protein import encoders as E
from hpcprep_protein import plugin
from hpcprep_protein.readers import _EXAMPLE_PDB, ProteinFastaReader, SsTableReader, StructureReader
from hpcprep_protein.tables import ALPHABET, BLOSUM62, SCALES

from tests.conftest import require_module


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
    substitution_matrices = require_module("Bio.Align.substitution_matrices")
    from Bio.SeqUtils import ProtParamData

    m = substitution_matrices.load("BLOSUM62")
    for a in ALPHABET:
        assert BLOSUM62[a] == tuple(int(m[a][b]) for b in ALPHABET)
    for name, theirs in [
        ("kyte_doolittle", ProtParamData.kd),
        ("hopp_woods", ProtParamData.hw),
        ("flexibility", ProtParamData.Flex),
        ("emini_surface", ProtParamData.em),
    ]:
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


@pytest.mark.parametrize("target, before, after", [("none", 0, 0), ("esm", 1, 1), ("prott5", 0, 1)])
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


# -- declared inputs --------------------------------------------------------------------------


def _plain(value):
    """An encoder output as plain Python, NaN kept comparable by np.testing.assert_equal."""
    return value.to_pylist() if hasattr(value, "to_pylist") else np.asarray(value).tolist()


def _input_cases(tmp_path):
    """(stage, good batch) for every encoder's example, and the parameters that change its inputs."""
    cases = []
    for cls in E.ENCODERS:
        ex = cls.examples(tmp_path)
        cases.append((cls(ex.params), ex.good))
    seq = batch_of(["ACDEFG", "MKT"])
    seq["seq"] = seq.pop("sequence")
    cases.append((E.Onehot({"column": "seq"}), seq))
    labelled = batch_of(["ACDEFG", "MKT"], q8=["-HHHE-", "GIT"], mask=[np.ones(6, bool), np.array([1, 0, 1], bool)])
    cases.append((E.SsLabels({"ss8_column": "q8", "mask_column": "mask"}), labelled))
    cases.append((E.Contacts({"atom": "cb", "cutoff": 6.0}), E._helix_batch()))
    return cases


def test_encoders_read_exactly_their_declared_inputs(tmp_path):
    """The same result from the declared input columns (plus source and record_id) as from
    the whole batch, and a RecordError naming the column when a required input is missing
    (an optional one may be absent)."""
    for stage, batch in _input_cases(tmp_path):
        declared = [i.name for i in stage.inputs]
        required = [i.name for i in stage.inputs if not i.optional]
        assert required and set(required) <= set(batch), (stage.name, required)
        keep = set(declared) | {"source", "record_id"}
        reduced = {k: v for k, v in batch.items() if k in keep}
        full = {k: _plain(v) for k, v in stage.encode(batch).items()}
        np.testing.assert_equal({k: _plain(v) for k, v in stage.encode(reduced).items()}, full, err_msg=stage.name)
        for name in required:
            without = {k: v for k, v in reduced.items() if k != name}
            with pytest.raises(RecordError, match=f"no column '{name}'"):
                stage.encode(without)


def test_ss_labels_inputs_follow_the_parameters():
    assert [(i.name, i.types) for i in E.SsLabels().inputs] == [("ss8", E.STRING_TYPES)]
    stage = E.SsLabels({"ss8_column": "sst8", "mask_column": "ss_mask"})
    assert [(i.name, i.types) for i in stage.inputs] == [("sst8", E.STRING_TYPES), ("ss_mask", E.MASK_TYPES)]
    assert [i.name for i in E.Contacts().inputs] == ["ca"]
    assert [i.name for i in E.Contacts({"atom": "cb"}).inputs] == ["ca", "cb"]
    assert [i.name for i in E.Windows({"column": "seq"}).inputs] == ["seq"]


def _unmet(stages) -> list[tuple[str, str]]:
    """(stage, column) for every input no earlier stage declares with a type it accepts."""
    declared = {c.name: c.type for c in stages[0].outputs}
    unmet = []
    for stage in stages[1:]:
        unmet += [
            (stage.name, i.name) for i in stage.inputs if i.name not in declared or not i.accepts(declared[i.name])
        ]
        declared.update({c.name: c.type for c in stage.outputs})
    return unmet


def test_declared_inputs_match_what_the_protein_stages_declare():
    structure, fasta, table = (R({"paths": ["x"]}) for R in (StructureReader, ProteinFastaReader, SsTableReader))
    dssp, labels = E.Dssp(), E.SsLabels({"mask_column": "ss_mask"})
    structure_encoders = [E.Dssp(), E.Contacts({"atom": "cb"}), E.Dihedrals()]
    sequence_encoders = [E.Onehot(), E.Blosum62(), E.Physchem(), E.Windows(), E.Composition()]
    assert _unmet([structure, *structure_encoders, *sequence_encoders, labels]) == []
    assert _unmet([fasta, *sequence_encoders]) == []
    assert _unmet([table, *sequence_encoders, E.SsLabels()]) == []
    # wiring mistakes a user makes: labels before DSSP made them, structure encoders on sequences
    assert _unmet([structure, labels, dssp]) == [("protein.ss_labels", "ss8"), ("protein.ss_labels", "ss_mask")]
    assert _unmet([fasta, E.Dihedrals()]) == [("protein.dihedrals", n) for n in ("n", "ca", "c")]
    # a mask of the wrong type is refused, not only a missing one
    assert _unmet([structure, dssp, E.SsLabels({"mask_column": "residue_numbers"})]) == [
        ("protein.ss_labels", "residue_numbers")
    ]


def test_labels_before_dssp_is_refused_before_ray_starts(tmp_path):
    """The issue's case: it failed after Ray started, with a 95-line traceback."""
    import hpcprep
    from hpcprep.spec import SpecError

    pdb = tmp_path / "tri.pdb"
    pdb.write_text(_EXAMPLE_PDB)
    spec = {
        "run": {"name": "wiring", "output": str(tmp_path / "out")},
        "reader": {"stage": "protein.structure", "paths": [str(pdb)]},
        "encoders": [{"stage": "protein.ss_labels", "mask_column": "ss_mask"}, {"stage": "protein.dssp"}],
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "out" / "table")}],
    }
    with pytest.raises(SpecError, match=r"protein\.ss_labels\) reads column 'ss8'.*protein\.dssp") as err:
        hpcprep.run(spec, progress=False)
    assert "'ss_mask'" in str(err.value)
    assert not (tmp_path / "out").exists()


# -- protein.dssp: the model's states from the reader, or one chain alone ----------------------


def _chain_batch(rows: list[dict], *columns: str) -> dict:
    return {c: np.array([r[c] for r in rows] + [None], dtype=object)[:-1] for c in columns}


def test_dssp_hands_on_the_models_states_and_assigns_a_chain_alone_without_them():
    from tests.protein.corpus import MULTI_CHAIN, corpus
    from tests.protein.test_readers import read_all

    ubq = next(p for p in corpus() if p.name == "1ubq.pdb")
    (row,), _ = read_all(StructureReader, paths=[str(ubq)])
    assert len(row["model_ss8"]) == row["length"] and "P" in row["model_ss8"]
    backbone = ("n", "ca", "c", "o")
    given = E.Dssp().encode(_chain_batch([row], *backbone, "model_ss8"))
    assert given["ss8"][0] == row["model_ss8"]
    # one chain: assigning it alone (prolines from the residue names) is the model's answer
    alone = E.Dssp().encode(_chain_batch([row], *backbone, "residue_names"))
    assert alone["ss8"][0] == row["model_ss8"]
    no_ppii = E.Dssp({"ppii": False})
    assert no_ppii.encode(_chain_batch([row], *backbone, "model_ss8"))["ss8"][0] == row["model_ss8"].replace("P", "-")
    assert no_ppii.encode(_chain_batch([row], *backbone, "residue_names"))["ss8"][0] == row["model_ss8"].replace(
        "P", "-"
    )

    # the fibril: its chains alone have no strand partner; the reader's model states do
    fibril, _ = read_all(StructureReader, paths=[str(corpus(MULTI_CHAIN[:1])[0])])
    model = E.Dssp().encode(_chain_batch(fibril, *backbone, "model_ss8"))["ss8"]
    chains = E.Dssp().encode(_chain_batch(fibril, *backbone, "residue_names"))["ss8"]
    assert sum(s.count("E") for s in model) >= 90 > 4 * sum(s.count("E") for s in chains)

    short = dict(_chain_batch([row], *backbone), model_ss8=np.array(["HHH"], dtype=object))
    with pytest.raises(RecordError, match="model_ss8 has 3 states for 76 residues"):
        E.Dssp().encode(short)
