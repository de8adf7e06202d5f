"""Stages that cannot work together are refused when the spec is resolved, before Ray starts."""

from __future__ import annotations

import pytest
from hpcprep.plugins import PluginRegistry
from hpcprep.spec import SpecError, resolve
from hpcprep.stages import FLOAT_VECTOR_TYPES, TEXT_TYPES, Input

from . import sample_plugin


@pytest.fixture(scope="module")
def registry():
    return PluginRegistry(extra_plugins=[sample_plugin], load_entry_points=False)


def spec(tmp_path, reader, encoders, sinks=None):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("hello\n")
    if reader == "files":
        reader = {"stage": "files", "paths": [str(data)]}
    return {
        "run": {"output": str(tmp_path / "out")},
        "reader": reader,
        "encoders": encoders,
        "sinks": sinks or [{"stage": "parquet", "path": str(tmp_path / "out" / "t")}],
    }


def registry_with(encoder) -> PluginRegistry:
    """The sample plugin's stages and ``encoder``, registered as a plugin registers its own."""
    import hpcprep

    class Plugin:
        @staticmethod
        @hpcprep.hookimpl
        def hpcprep_register_encoders(register):
            register(encoder)

    return PluginRegistry(extra_plugins=[sample_plugin, Plugin], load_entry_points=False)


def problems(registry, data) -> list[str]:
    with pytest.raises(SpecError) as exc:
        resolve(data, registry)
    return exc.value.problems


def test_input_patterns():
    assert Input("v", FLOAT_VECTOR_TYPES).accepts("fixed_size_list<float32>[256]")
    assert Input("v", FLOAT_VECTOR_TYPES).accepts("list<float64>")
    assert not Input("v", FLOAT_VECTOR_TYPES).accepts("fixed_size_list<uint32>[256]")
    assert Input("s", TEXT_TYPES).accepts("string") and not Input("s", TEXT_TYPES).accepts("int64")
    assert Input("any").accepts("whatever<x>")


def test_a_text_column_encoder_reads_the_column_its_parameter_names(tmp_path):
    import hpcprep
    from pydantic import Field

    class SmilesParams(hpcprep.TextColumnParams):
        column: str = Field("smiles", description="column with the SMILES string")

    class Atoms(hpcprep.TextColumnEncoder):
        name = "test.atoms"
        Params = SmilesParams
        text_doc = "a SMILES string"
        outputs = (hpcprep.Column("atoms", "int64"),)

    assert [(i.name, i.types, i.doc) for i in Atoms.inputs] == [("smiles", TEXT_TYPES, "a SMILES string")]
    assert [i.name for i in Atoms({"column": "line"}).inputs] == ["line"]

    reg = registry_with(Atoms)
    resolve(spec(tmp_path, "files", [{"stage": "test.atoms", "column": "bytes"}]), reg)
    got = problems(reg, spec(tmp_path, "files", [{"stage": "test.atoms", "column": "size"}]))
    assert len(got) == 1 and got[0].startswith("encoders[0] (test.atoms) reads column 'size' as string|"), got
    got = problems(reg, spec(tmp_path, "files", [{"stage": "test.atoms"}]))  # no smiles column
    assert got[0].startswith("encoders[0] (test.atoms) reads column 'smiles', which no stage before it makes")


def test_a_column_no_earlier_stage_makes_names_the_stage_that_does(tmp_path, registry):
    got = problems(registry, spec(tmp_path, "files", [{"stage": "test.odd"}]))
    assert got == [
        "encoders[0] (test.odd) reads column 'x', which no stage before it makes; test.numbers (reader) makes it"
    ]


def test_a_column_of_a_type_the_stage_cannot_read(tmp_path, registry):
    data = spec(
        tmp_path,
        "files",
        [{"stage": "test.count"}, {"stage": "test.embed"}],
        [{"stage": "lancedb", "uri": str(tmp_path / "db"), "table": "t", "vector_column": "n"}],
    )
    got = problems(registry, data)
    assert len(got) == 1
    assert got[0].startswith("sinks[0] (lancedb) reads column 'n' as fixed_size_list<float*>*")
    assert got[0].endswith("but encoders[0] (test.count) makes it int64")


def test_fan_out_drops_the_columns_before_it(tmp_path, registry):
    got = problems(registry, spec(tmp_path, "files", [{"stage": "test.lines"}, {"stage": "test.count"}]))
    assert got == [
        "encoders[1] (test.count) reads column 'bytes', which no stage before it makes; files (reader) makes it"
    ]


def test_order_matters(tmp_path, registry):
    # test.slow makes y; a stage reading y placed first is told where its maker is.
    import hpcprep

    class NeedsY(sample_plugin.Odd):
        name = "test.needs_y"
        inputs = (Input("y", "int64"),)
        outputs = (hpcprep.Column("z", "int64"),)

    reg = registry_with(NeedsY)
    reader = {"stage": "test.numbers"}
    got = problems(reg, spec(tmp_path, reader, [{"stage": "test.needs_y"}, {"stage": "test.slow"}]))
    assert got == [
        "encoders[0] (test.needs_y) reads column 'y', which no stage before it makes; "
        "encoders[1] (test.slow) makes it: put that stage before encoders[0]"
    ]
    resolve(spec(tmp_path, reader, [{"stage": "test.slow"}, {"stage": "test.needs_y"}]), reg)


def test_a_good_pipeline_and_an_open_reader_pass(tmp_path, registry):
    resolve(spec(tmp_path, {"stage": "test.numbers"}, [{"stage": "test.odd"}, {"stage": "test.slow"}]), registry)
    # A Parquet reader's records carry the files' own columns: nothing to refuse before reading.
    (tmp_path / "p").mkdir()
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "p" / "a.parquet")
    resolve(spec(tmp_path, {"stage": "parquet", "paths": [str(tmp_path / "p")]}, [{"stage": "test.odd"}]), registry)


def test_placement_the_cluster_cannot_give_is_refused(tmp_path, registry):
    from hpcprep.placement import ClusterInfo, decide_placements

    def refused(placement, cluster):
        data = spec(tmp_path, "files", [{"stage": "test.count", "placement": placement}])
        with pytest.raises(SpecError) as exc:
            decide_placements(resolve(data, registry), registry, cluster)
        return exc.value.problems

    cpu_only = ClusterInfo.local(num_cpus=2)
    assert refused({"num_gpus": 1}, cpu_only) == [
        "encoders[0] (test.count): placement asks for 1 GPU(s) per task, but the cluster has no GPU"
    ]
    assert refused({"num_cpus": 3, "compute": "actors"}, cpu_only) == [
        "encoders[0] (test.count): placement asks for 3 CPU(s) per actor, but the cluster has at most 2 CPU(s) on a node"
    ]
    assert refused({"compute": "actors", "concurrency": 4}, cpu_only) == [
        "encoders[0] (test.count): placement asks for 4 actors of 1 CPU(s) each, but the cluster has 2 CPU(s) in all"
    ]
    two_nodes = ClusterInfo(
        cpus=8,
        gpus=2,
        nodes=2,
        node_list=({"cpus": 4, "gpus": 1}, {"cpus": 4, "gpus": 1}),
    )
    assert refused({"num_gpus": 2}, two_nodes) == [
        "encoders[0] (test.count): placement asks for 2 GPU(s) per task, but the cluster has at most 1 GPU(s) on a node"
    ]
    fits = resolve(spec(tmp_path, "files", [{"stage": "test.count", "placement": {"num_gpus": 0.25}}]), registry)
    assert decide_placements(fits, registry, two_nodes)[0].num_gpus == 0.25


def test_a_record_error_names_its_place_in_the_data():
    from hpcprep import RecordError

    exc = RecordError("a residue letter that is not one", at="line 3, column 17")
    assert str(exc) == "a residue letter that is not one (line 3, column 17)" and exc.at == "line 3, column 17"
    assert str(RecordError("empty file")) == "empty file" and RecordError("x").at is None
