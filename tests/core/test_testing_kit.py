"""The plugin test kit: it passes a good stage, and names each kind of defect it exists to catch.

One module because the defective stages defined here are the fixtures of the
parametrised check table below, each built by changing the good stage once.
"""

from __future__ import annotations

import threading

import hpcprep
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hpcprep import Column, Encoder, ErrorRecord, Input, InputItem, Params, Reader, RecordError, StageExamples
from hpcprep.testing import PLUGIN, Problem, assert_plugin_ok, assert_stage_ok, check_plugin, check_stage
from pydantic import Field


def batch(records: list[bytes]) -> dict[str, np.ndarray]:
    sources = [f"mem://{i}" for i in range(len(records))]
    data = np.empty(len(records), dtype=object)
    data[:] = records
    return {
        "source": np.array(sources, dtype=object),
        "record_id": np.array([hpcprep.record_id(s) for s in sources], dtype=object),
        "bytes": data,
    }


# -- a good encoder and one defect each ------------------------------------------------


class LengthParams(Params):
    scale: int = Field(1, ge=1, description="multiplier for the length")


class Lengths(Encoder):
    """Length of each record times ``scale``, and a toy 2-d vector; empty records are bad."""

    name = "kit.lengths"
    Params = LengthParams
    inputs = (Input("bytes", "binary", "the record"),)
    outputs = (
        Column("n", "int64", "record length times scale"),
        Column("vec", "fixed_size_list<float32>[2]", "length and its square"),
    )

    def lengths(self, batch) -> np.ndarray:
        n = np.array([len(b) for b in batch["bytes"]], dtype=np.int64)
        if (n == 0).any():
            raise RecordError("empty record")
        return n

    def encode(self, batch):
        n = self.lengths(batch)
        vec = np.stack([n, n * n], axis=1).astype(np.float32).reshape(-1, 2)
        return {"n": n * self.params.scale, "vec": vec}

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={"scale": 2}, good=batch([b"ab", b"cde", b"f"]), bad=batch([b"x", b""]))


class HoldsLock(Lengths):
    """Keeps a lock from __init__, so it cannot travel to a worker."""

    name = "kit.holds_lock"

    def __init__(self, params=None):
        super().__init__(params)
        self._lock = threading.Lock()


class UndocumentedParams(Params):
    scale: int = 1


class Undocumented(Lengths):
    """A parameter without a description."""

    name = "kit.undocumented"
    Params = UndocumentedParams

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params={}, good=batch([b"ab"]), bad=batch([b""]))


class BadDefaultParams(Params):
    scale: int = Field(0, ge=1, description="multiplier; the default breaks its own bound")


class BadDefault(Lengths):
    """A default that does not validate."""

    name = "kit.bad_default"
    Params = BadDefaultParams


class Noisy(Lengths):
    """Adds noise: two runs never agree."""

    name = "kit.noisy"

    def encode(self, batch):
        out = super().encode(batch)
        out["vec"] = out["vec"] + np.random.default_rng().random(out["vec"].shape, dtype=np.float32)
        return out


class EmptyCrash(Lengths):
    """Divides by the longest record, which an empty batch does not have."""

    name = "kit.empty_crash"

    def encode(self, batch):
        out = super().encode(batch)
        out["n"] = out["n"] // self.lengths(batch).max()
        return out


class MissingColumn(Lengths):
    """Forgets one of its declared columns."""

    name = "kit.missing_column"

    def encode(self, batch):
        return {"n": super().encode(batch)["n"]}


class WrongError(Lengths):
    """Raises ValueError for bad input instead of RecordError."""

    name = "kit.wrong_error"

    def lengths(self, batch):
        n = np.array([len(b) for b in batch["bytes"]], dtype=np.int64)
        if (n == 0).any():
            raise ValueError("empty record")
        return n


class NoExamples(Lengths):
    """Gives the kit nothing to run."""

    name = "kit.no_examples"

    @classmethod
    def examples(cls, workdir):
        return None


class WrongType(Lengths):
    """Declares int64 but hands back text, and a vector of the wrong length."""

    name = "kit.wrong_type"

    def encode(self, batch):
        out = super().encode(batch)
        return {"n": out["n"].astype(str).astype(object), "vec": np.zeros((len(out["n"]), 3), np.float32)}


class DropsRows(Lengths):
    """Returns fewer rows than it got without saying it fans out."""

    name = "kit.drops_rows"

    def encode(self, batch):
        return {k: v[:1] for k, v in super().encode(batch).items()}


class Blob:
    """A Python object that Arrow has no type for."""

    def __eq__(self, other):
        return isinstance(other, Blob)


class PicklesObjects(Lengths):
    """Puts Python objects in a column: Arrow can only pickle them."""

    name = "kit.pickles_objects"
    outputs = (Column("n", "int64", "length"), Column("vec", "blob", "a Python object per row"))

    def encode(self, batch):
        n = self.lengths(batch)
        vec = np.empty(len(n), dtype=object)
        vec[:] = [Blob() for _ in n]
        return {"n": n, "vec": vec}


class UndeclaredInput(Lengths):
    """Reads a column it does not declare among its inputs."""

    name = "kit.undeclared_input"
    inputs = ()


class InputThatChangesNothing(Lengths):
    """Declares an input its good batch lacks, as a misspelt name would."""

    name = "kit.misnamed_input"
    inputs = (Input("bytez", "binary"),)


def checks(problems: list[Problem]) -> set[str]:
    return {p.check for p in problems}


def test_a_good_encoder_passes(tmp_path):
    assert check_stage(Lengths, tmp_path) == []
    assert_stage_ok(Lengths, tmp_path / "again")


@pytest.mark.parametrize(
    "stage, check, fragments",
    [
        (HoldsLock, "pickle", ["does not survive pickle", "lock", "does not survive cloudpickle", "setup()"]),
        (Undocumented, "params", ["'scale' has no description"]),
        (BadDefault, "params", ["default of parameter 'scale' is not valid", "greater than or equal to 1"]),
        (Noisy, "determinism", ["encoded twice", "column 'vec' differs in row(s) [0, 1, 2]"]),
        (EmptyCrash, "empty_batch", ["an empty batch (0 rows) raised ValueError", "zero-size array"]),
        (MissingColumn, "columns", ["declared column(s) ['vec'] missing"]),
        (WrongError, "bad_input", ["raised ValueError: empty record", "instead of hpcprep.RecordError"]),
        (NoExamples, "examples", ["gives no examples"]),
        (WrongType, "types", ["'n' is declared int64 but holds objects of type str"]),
        (DropsRows, "encode", ["3 rows in but", "fanout = True"]),
        (PicklesObjects, "arrow", ["['vec'] only convert to Arrow as pickled Python objects"]),
        (UndeclaredInput, "inputs", ["cut down to its declared inputs [] raised KeyError", "declare every column"]),
        (InputThatChangesNothing, "inputs", ["declares input column(s) ['bytez'] that its good batch does not have"]),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_each_defect_is_reported_by_its_check(tmp_path, stage, check, fragments):
    problems = check_stage(stage, tmp_path)
    assert checks(problems) == {check}, problems
    text = " | ".join(p.message for p in problems)
    for fragment in fragments:
        assert fragment in text, (fragment, problems)
    assert all(p.stage == stage.name for p in problems)


def test_wrong_vector_length_is_reported(tmp_path):
    problems = check_stage(WrongType, tmp_path)
    assert any(
        "'vec' is declared fixed_size_list<float32>[2] but its rows have length [3]" in p.message for p in problems
    ), problems


def test_assert_stage_ok_lists_every_problem(tmp_path):
    with pytest.raises(AssertionError) as info:
        assert_stage_ok(HoldsLock, tmp_path)
    message = str(info.value)
    assert "stage 'kit.holds_lock': 2 problem(s)" in message
    assert "[pickle]" in message


def test_skip_turns_a_check_off_and_unknown_checks_are_refused(tmp_path):
    assert check_stage(WrongError, tmp_path, skip=["bad_input"]) == []
    with pytest.raises(ValueError, match="unknown check"):
        check_stage(Lengths, tmp_path, skip=["speed"])


def test_missing_bad_example_is_a_problem_not_a_silent_pass(tmp_path):
    good_only = StageExamples(params={}, good=batch([b"ab"]))
    problems = check_stage(Lengths, tmp_path, examples=good_only)
    assert [(p.check, "gives no bad batch" in p.message) for p in problems] == [("bad_input", True)]


def test_examples_must_carry_provenance(tmp_path):
    no_ids = StageExamples(params={}, good={"bytes": batch([b"ab"])["bytes"]}, bad=batch([b""]))
    problems = check_stage(Lengths, tmp_path, examples=no_ids)
    assert [p.check for p in problems] == ["examples"]
    assert "lacks ['source', 'record_id']" in problems[0].message


def test_encoders_get_read_only_arrays_as_ray_gives_them(tmp_path):
    class InPlace(Lengths):
        """Overwrites its input."""

        name = "kit.in_place"

        def encode(self, batch):
            batch["record_id"][:] = "x"
            return super().encode(batch)

    problems = check_stage(InPlace, tmp_path, skip=["pickle"])  # a local class pickles by value only
    assert "encode" in checks(problems)
    assert "read-only" in problems[0].message and "copy before writing" in problems[0].message


# -- readers --------------------------------------------------------------------------


class LineParams(Params):
    paths: list[str] = Field(description="text files")


class Lines(Reader):
    """One record per line of each text file; a line that is not UTF-8 is an error record."""

    name = "kit.lines"
    Params = LineParams
    outputs = (
        Column("source", "string", "the file"),
        Column("record_id", "string", "file and line number"),
        Column("text", "string", "the line"),
    )

    def plan(self):
        return [InputItem(p, i) for i, p in enumerate(self.params.paths)]

    def read(self, item):
        texts, ids = [], []
        with open(item.source, "rb") as f:
            for number, raw in enumerate(f, 1):
                rid = hpcprep.record_id(item.source, number)
                try:
                    texts.append(raw.decode().rstrip("\n"))
                except UnicodeDecodeError as exc:
                    yield ErrorRecord(item.source, rid, f"line {number}: not UTF-8 ({exc.reason})")
                    continue
                ids.append(rid)
        yield {
            "source": np.full(len(texts), item.source, dtype=object),
            "record_id": np.array(ids, dtype=object),
            "text": np.array(texts, dtype=object),
        }

    @classmethod
    def examples(cls, workdir):
        good, bad = workdir / "good.txt", workdir / "bad.txt"
        good.write_text("one\ntwo\n")
        bad.write_bytes(b"fine\n\xff\xfe\n")
        return StageExamples(params={"paths": [str(good)]}, good={"paths": [str(good)]}, bad={"paths": [str(bad)]})


class SameIds(Lines):
    """Gives every line the same record_id."""

    name = "kit.same_ids"

    def read(self, item):
        for out in super().read(item):
            if isinstance(out, dict):
                out["record_id"] = np.full(len(out["text"]), hpcprep.record_id(item.source), dtype=object)
            yield out


class CrashesOnBadBytes(Lines):
    """Lets UnicodeDecodeError escape."""

    name = "kit.crashes_on_bad_bytes"

    def read(self, item):
        with open(item.source, "rb") as f:
            texts = [raw.decode() for raw in f]
        yield {
            "source": np.full(len(texts), item.source, dtype=object),
            "record_id": np.array([hpcprep.record_id(item.source, i) for i in range(len(texts))], dtype=object),
            "text": np.array(texts, dtype=object),
        }


def test_a_good_reader_passes(tmp_path):
    assert check_stage(Lines, tmp_path) == []


def test_reader_defects_are_reported(tmp_path):
    same = check_stage(SameIds, tmp_path / "same")
    assert checks(same) == {"read"} and "is given to two records" in same[0].message
    crash = check_stage(CrashesOnBadBytes, tmp_path / "crash")
    assert checks(crash) == {"bad_input"}
    assert "raised UnicodeDecodeError" in crash[0].message and "ErrorRecord" in crash[0].message


# -- plugins --------------------------------------------------------------------------


class GoodPlugin:
    @hpcprep.hookimpl
    def hpcprep_register_encoders(self, register):
        register(Lengths)

    @hpcprep.hookimpl
    def hpcprep_register_readers(self, register):
        register(Lines)


class MixedPlugin:
    @hpcprep.hookimpl
    def hpcprep_register_encoders(self, register):
        register(Lengths)
        register(Noisy)
        register(WrongError)


class UndecoratedPlugin:
    def hpcprep_register_encoders(self, register):
        register(Lengths)


class MisspeltPlugin:
    @hpcprep.hookimpl
    def hpcprep_register_encoder(self, register):
        register(Lengths)


class BareNamePlugin:
    @hpcprep.hookimpl
    def hpcprep_register_encoders(self, register):
        class Bare(Lengths):
            """No domain prefix."""

            name = "bare"

        register(Bare)


def test_check_plugin_checks_every_stage_it_registers(tmp_path):
    results = check_plugin(GoodPlugin(), tmp_path)
    assert results == {"kit.lengths": [], "kit.lines": []}
    assert_plugin_ok(GoodPlugin(), tmp_path / "again")


def test_assert_plugin_ok_lists_the_problems_of_all_stages(tmp_path):
    with pytest.raises(AssertionError) as info:
        assert_plugin_ok(MixedPlugin(), tmp_path)
    message = str(info.value)
    assert "plugin 'MixedPlugin': 2 problem(s)" in message
    assert "kit.noisy [determinism]" in message and "kit.wrong_error [bad_input]" in message
    assert "kit.lengths" not in message


@pytest.mark.parametrize(
    "plugin, fragment",
    [
        (UndecoratedPlugin(), "hpcprep_register_encoders is not decorated with @hpcprep.hookimpl"),
        (MisspeltPlugin(), "hpcprep_register_encoder"),
        (BareNamePlugin(), "needs a domain prefix"),
        ("no_such_plugin", "no installed plugin 'no_such_plugin'"),
    ],
    ids=["undecorated", "misspelt", "bare-name", "not-installed"],
)
def test_plugin_level_problems(tmp_path, plugin, fragment):
    results = check_plugin(plugin, tmp_path)
    assert PLUGIN in results
    assert any(fragment in p.message for p in results[PLUGIN]), results[PLUGIN]


def test_the_pytest_fixture_is_bound_to_tmp_path(hpcprep_kit, tmp_path):
    assert hpcprep_kit.workdir.is_relative_to(tmp_path)
    hpcprep_kit.assert_stage_ok(Lengths)
    hpcprep_kit.assert_plugin_ok(GoodPlugin())
    assert checks(hpcprep_kit.check_stage(Noisy)) == {"determinism"}


# -- the core's own stages ------------------------------------------------------------


def parquet_reader_examples(workdir):
    path = workdir / "table.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3], "name": ["a", "b", "c"]}), path)
    return StageExamples(params={"paths": [str(path)]}, good={"paths": [str(path)]})


def parquet_sink_examples(workdir):
    return StageExamples(params={"path": str(workdir / "table")}, good=batch([b"ab", b"c"]))


# Used while a built-in stage has no examples() of its own.
FALLBACK_EXAMPLES = {
    ("reader", "parquet"): (parquet_reader_examples, ["bad_input"]),
    ("sink", "parquet"): (parquet_sink_examples, []),
}


def builtin_stages():
    from hpcprep.plugins import PluginRegistry

    registry = PluginRegistry(load_entry_points=False)
    return [e.cls for e in registry.stages.values() if e.plugin == "hpcprep"]


@pytest.mark.parametrize("cls", builtin_stages(), ids=lambda c: f"{c.kind}:{c.name}")
def test_builtin_stages_pass_the_kit(tmp_path, cls):
    from hpcprep.stages import Stage

    own = cls.examples.__func__ is not Stage.examples.__func__
    fallback = FALLBACK_EXAMPLES.get((cls.kind, cls.name))
    if own or fallback is None:
        problems = check_stage(cls, tmp_path)
        if not own:  # until it has examples(), everything else about it still has to hold
            assert [p.check for p in problems] == ["examples"], problems
            return
    else:
        make, skip = fallback
        problems = check_stage(cls, tmp_path, examples=make(tmp_path), skip=skip)
    assert problems == []


def test_files_reader_turns_an_oversized_file_into_a_record_error(tmp_path):
    from hpcprep.builtins.files_reader import FilesReader

    ex = FilesReader.examples(tmp_path)
    reader = FilesReader(ex.bad)
    with pytest.raises(RecordError, match="over max_bytes=1"):
        list(reader.read(reader.plan()[0]))
