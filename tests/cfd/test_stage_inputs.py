"""The columns cfd stages declare they read (``inputs``) are exactly the columns they read,
with types that match what the cfd stages before them declare: the driver checks a
pipeline's wiring from these declarations before Ray starts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hpcprep import RecordError
from hpcprep_cfd.cell_features import CellFeatures
from hpcprep_cfd.encoders import MESH_ENCODERS, Normalize, Repair
from hpcprep_cfd.mesh_reader import MeshReader
from hpcprep_cfd.openfoam.reader import OpenFoamReader
from hpcprep_cfd.vtk_sink import KINDS, VtkSink

ENCODERS = (*MESH_ENCODERS, CellFeatures)
ALWAYS = ("source", "record_id")  # every record has them; no stage declares them


def plain(value):
    """An encoder's output column as plain Python values, whatever container it came in."""
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return value.to_pylist()
    return [np.asarray(v).tolist() for v in value] if np.asarray(value).dtype == object else np.asarray(value).tolist()


def example(cls, tmp_path):
    """The stage with its example parameters, and its example batch with every other column
    its reader makes added (with values that would change the result, were they read)."""
    ex = cls.examples(tmp_path)
    reader = OpenFoamReader if cls is CellFeatures else MeshReader
    batch = dict(ex.good)
    n = len(batch["record_id"])
    filler = {"string": lambda: np.array(["decoy"] * n, dtype=object), "int64": lambda: np.zeros(n, np.int64)}
    for column in reader.outputs:
        if column.name not in batch:
            batch[column.name] = filler.get(
                column.type, lambda: np.array([np.zeros(0)] * n + [None], dtype=object)[:-1]
            )()
    return cls(ex.params), batch


@pytest.mark.parametrize("cls", ENCODERS, ids=lambda c: c.name)
def test_encode_on_the_declared_inputs_alone_gives_the_same_result(cls, tmp_path):
    stage, full = example(cls, tmp_path)
    names = [i.name for i in stage.inputs]
    assert names and len(set(names)) == len(names)
    reduced = {k: full[k] for k in (*names, *ALWAYS)}
    assert len(reduced) < len(full)
    want = stage.encode(full)
    got = stage.encode(reduced)
    assert sorted(got) == sorted(want)
    for column in want:
        np.testing.assert_equal(plain(got[column]), plain(want[column]), err_msg=column)


@pytest.mark.parametrize("cls", ENCODERS, ids=lambda c: c.name)
def test_every_declared_input_is_read(cls, tmp_path):
    """No input is declared for nothing: without any one of them, encode cannot run."""
    stage, full = example(cls, tmp_path)
    for i in stage.inputs:
        batch = {k: v for k, v in full.items() if k != i.name}
        with pytest.raises(RecordError, match=f"no column '{i.name}'"):
            stage.encode(batch)


def declared_outputs() -> dict[str, set[str]]:
    """column -> the types cfd readers and encoders declare for it (default parameters, and the
    parameters that add columns)."""
    stages = [
        MeshReader({"paths": ["x.stl"]}),
        OpenFoamReader({"paths": ["case"], "polyhedra": True, "fields": ["U", "p"]}),
        *(cls() for cls in MESH_ENCODERS),
        CellFeatures({"fields": ["U", "p"]}),
    ]
    out: dict[str, set[str]] = {}
    for stage in stages:
        for column in stage.outputs:
            out.setdefault(column.name, set()).add(column.type)
    return out


def assert_accepts(stage, producers) -> None:
    for i in stage.inputs:
        types = producers.get(i.name)
        assert types, f"{stage.name}: no cfd stage makes {i.name!r}"
        assert all(i.accepts(t) for t in types), (stage.name, i.name, i.types, types)


def test_mesh_encoders_accept_what_the_mesh_stages_make():
    reader = {c.name: {c.type} for c in MeshReader.outputs}
    for cls in MESH_ENCODERS:
        stage = cls()
        assert_accepts(stage, reader)
        for maker in (Repair(), Normalize()):  # they rewrite vertices (and faces) for the stages after them
            for column in maker.outputs:
                i = next((i for i in stage.inputs if i.name == column.name), None)
                assert i is None or i.accepts(column.type), (stage.name, maker.name, column)


def test_cell_features_accepts_what_the_openfoam_reader_makes():
    reader = OpenFoamReader({"paths": ["case"], "fields": ["U", "p", "nut"]})
    stage = CellFeatures({"fields": ["U", "p", "nut"]})
    assert {i.name for i in stage.inputs} == {"centres", "volumes", "kind", "field_U", "field_p", "field_nut"}
    assert_accepts(stage, {c.name: {c.type} for c in reader.outputs})


def test_vtk_sink_inputs_follow_what_and_point_data(tmp_path):
    def required(**params):
        return [i.name for i in VtkSink({"path": str(tmp_path), **params}).inputs if not i.optional]

    assert required() == []  # auto: whatever kinds a record's columns make
    assert required(what=["mesh"]) == ["vertices", "faces"]
    assert required(what=["voxels", "cells"], point_data=["sdf"]) == [
        "sdf", "voxels", "voxel_shape", "voxel_origin", "voxel_spacing", "centres",
    ]  # fmt: skip
    auto = {i.name: i for i in VtkSink({"path": str(tmp_path)}).inputs}
    assert {"vertices", "sdf_grid_shape", "centres", "cell_faces", "name", "time"} <= set(auto)
    assert all(i.optional for i in auto.values())
    # a kind not asked for is not read, so not declared
    assert "vertices" not in {i.name for i in VtkSink({"path": str(tmp_path), "what": ["cells"]}).inputs}
    every = VtkSink({"path": str(tmp_path), "what": list(KINDS), "point_data": ["sdf"]})
    assert_accepts(every, declared_outputs())
    # voxels may be occupancy (uint8) or fractions (float32); a grid's shape has 3 numbers
    voxels, shape = (next(i for i in every.inputs if i.name == n) for n in ("voxels", "voxel_shape"))
    assert voxels.accepts("list<uint8>") and voxels.accepts("list<float32>") and not voxels.accepts("string")
    assert shape.accepts("fixed_size_list<int64>[3]") and not shape.accepts("fixed_size_list<int64>[4]")


def test_openfoam_reader_without_named_fields_has_open_columns():
    """With fields unnamed, each case adds its own field_<name> columns: the wiring check must
    let cfd.cell_features read them, and cannot check their names."""
    assert OpenFoamReader({"paths": ["case"]}).open_columns
    assert not OpenFoamReader({"paths": ["case"], "fields": ["U"]}).open_columns
    assert not OpenFoamReader({"paths": ["case"], "time": "none"}).open_columns
