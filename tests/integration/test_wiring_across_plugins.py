"""The issue's wiring mistakes with the real plugins: refused when the spec is resolved,
before Ray starts and before run.output exists, with the stage that makes the column."""

from __future__ import annotations

import pytest
from hpcprep.plugins import PluginRegistry
from hpcprep.spec import SpecError, resolve

from tests.genomics.genome_data import lambda_genome


@pytest.fixture(scope="module")
def registry():
    return PluginRegistry()


def fasta_spec(tmp_path, encoders, sinks=None):
    return {
        "run": {"output": str(tmp_path / "out")},
        "reader": {"stage": "genomics.fasta", "paths": [str(lambda_genome())], "window": 1000},
        "encoders": encoders,
        "sinks": sinks or [{"stage": "parquet", "path": str(tmp_path / "out" / "t")}],
    }


def refused(spec, registry) -> list[str]:
    with pytest.raises(SpecError) as info:
        resolve(spec, registry)
    return info.value.problems


def test_a_mesh_stage_after_a_fasta_reader(tmp_path, registry):
    problems = refused(fasta_spec(tmp_path, [{"stage": "cfd.health"}]), registry)
    assert any(
        p.startswith("encoders[0] (cfd.health) reads column 'vertices', which no stage before it makes")
        and "cfd.mesh (reader)" in p
        for p in problems
    ), problems
    assert not (tmp_path / "out").exists()


def test_integer_counts_as_a_lancedb_vector(tmp_path, registry):
    sink = {"stage": "lancedb", "uri": str(tmp_path / "db"), "table": "t", "vector_column": "kmer_counts"}
    problems = refused(fasta_spec(tmp_path, [{"stage": "genomics.kmer_counts", "k": 4}], [sink]), registry)
    assert problems == [
        "sinks[0] (lancedb) reads column 'kmer_counts' as fixed_size_list<float*>*|list<float*>|large_list<float*>, "
        "but encoders[0] (genomics.kmer_counts) makes it fixed_size_list<uint32>[256]"
    ]
    # The same table fed the float spectrum resolves.
    sink["vector_column"] = "spectrum"
    resolve(fasta_spec(tmp_path, [{"stage": "genomics.kmer_spectrum"}], [sink]), registry)
