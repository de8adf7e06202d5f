"""The plugin test kit: does a stage keep the contract the runner relies on?

Third-party plugin authors run it from their own tests, the way pytest plugins use
``pytester``::

    def test_my_plugin(hpcprep_kit):          # fixture from hpcprep's pytest plugin
        from hpcprep_mine import plugin
        hpcprep_kit.assert_plugin_ok(plugin)  # or the entry-point name, "mine"

Without pytest: ``check_stage(StageClass, workdir)`` and ``check_plugin(plugin, workdir)``
return the problems found; ``assert_stage_ok``/``assert_plugin_ok`` raise one
``AssertionError`` that lists them all.

The kit feeds each stage the inputs its ``examples(workdir)`` classmethod gives (a
``StageExamples``). It checks, by name (``skip=`` turns a check off):

``examples``     the stage gives examples, and they configure it
``docs``         the class has a docstring (``hpcprep describe`` shows its first line)
``params``       ``Params`` is a pydantic model, every field has a description, defaults validate
``outputs``      encoders and readers declare their output columns
``inputs``       encoders: the good batch cut down to the declared ``inputs`` (plus
                 ``source`` and ``record_id``) encodes to the same output, so the driver's
                 column check before a run can trust them
``pickle``       a configured instance survives pickle and cloudpickle (it travels to workers)
``setup``        ``Encoder.setup`` runs
``encode``       the good batch encodes: a dict, one row per input row (the kit hands
                 encoders read-only arrays, as Ray's zero-copy batches are)
``columns``      every declared column is produced; encoders produce nothing undeclared
``types``        produced columns match their declared types (numbers, strings, bytes, vectors)
``arrow``        produced columns convert to Arrow without pickled Python objects
``determinism``  the same input twice (and on a second worker copy) gives the same output
``empty_batch``  zero rows in, zero rows out, declared columns present
``bad_input``    bad input raises ``hpcprep.RecordError`` (encoders) or gives ``ErrorRecord``s
                 or ``RecordError`` (readers), never another exception
``plan``, ``read``  readers: ``plan()`` lists items, ``read()`` yields batches with
                 ``source`` and unique ``record_id``s and no errors for good input
``sink``         sinks whose examples give a ``good`` batch: prepare, write, commit, finish

One module because every check reads and writes the same ``Kit`` state (the stage's
declared columns, what it produced, the problems found) and runs in an order where a
later check trusts an earlier one (no ``inputs`` check on output that varies); the
helpers at the bottom compare and describe arrays for those checks only; the plugin
checks (``check_plugin``) are those stage checks run over a plugin's registered stages,
and ``Kit`` is the same two calls bound to a pytest ``tmp_path``. The pytest fixture
lives apart, in ``pytest_plugin``. (Issue 15 asks for this module to be split by job;
not done yet.)
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import pickle
import re
import traceback
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..stages import Encoder, ErrorRecord, InputItem, Reader, RecordError, Sink, SinkContext, StageExamples

CHECKS = (
    "examples", "docs", "params", "outputs", "inputs", "pickle", "setup", "encode", "columns", "types",
    "arrow", "determinism", "empty_batch", "bad_input", "plan", "read", "sink",
)
#: Key of ``check_plugin``'s result for problems of the plugin itself (hooks, registration).
PLUGIN = "(plugin)"
REQUIRED_COLUMNS = ("source", "record_id")

__all__ = [
    "CHECKS", "PLUGIN", "Kit", "Problem", "assert_plugin_ok", "assert_stage_ok", "check_plugin",
    "check_stage", "format_problems", "read_records",
]


def read_records(reader: Reader, items: Iterable[InputItem] | None = None) -> tuple[list[dict], list[str]]:
    """The rows (one dict each) and the error messages of reading ``items`` (default: the
    reader's own ``plan()``) the way read tasks do: an ``ErrorRecord`` or a ``RecordError``
    is a message, and any other exception propagates, since that is what a test of bad
    input looks for."""
    rows, messages = [], []
    for item in reader.plan() if items is None else items:
        try:
            for out in reader.read(item):
                if isinstance(out, ErrorRecord):
                    messages.append(out.message)
                    continue
                cols = {k: v.to_pylist() if _is_arrow(v) else v for k, v in out.items()}
                rows.extend({k: v[i] for k, v in cols.items()} for i in range(len(cols["record_id"])))
        except RecordError as exc:
            messages.append(str(exc))
    return rows, messages


@dataclass(frozen=True)
class Problem:
    """One broken promise: which stage, which check, and what a person should fix."""

    stage: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.stage} [{self.check}]: {self.message}"


# -- stages ---------------------------------------------------------------------------


def check_stage(
    stage_cls: type,
    workdir: str | Path,
    *,
    examples: StageExamples | None = None,
    skip: Iterable[str] = (),
) -> list[Problem]:
    """Every problem the kit finds in one stage class; an empty list means it passes.

    ``examples`` replaces the class's own ``examples(workdir)`` (to check a stage
    someone else wrote). ``skip`` names checks to leave out, e.g. ``["bad_input"]`` for
    an encoder that no input can fail.
    """
    skip = set(skip)
    unknown = skip - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown check(s) {sorted(unknown)}; the checks are {', '.join(CHECKS)}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checker = _StageChecker(stage_cls, workdir, skip)
    checker.run(examples)
    return checker.problems


def assert_stage_ok(stage_cls: type, workdir: str | Path, **kwargs) -> None:
    """``check_stage``, raising one AssertionError that lists every problem."""
    problems = check_stage(stage_cls, workdir, **kwargs)
    if problems:
        raise AssertionError(format_problems(problems, f"stage {getattr(stage_cls, 'name', stage_cls)!r}"))


def format_problems(problems: list[Problem], what: str = "") -> str:
    head = f"{what}: " if what else ""
    return f"{head}{len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems)


class _Stop(Exception):
    """A problem that leaves nothing further to check."""


class _StageChecker:
    def __init__(self, cls: type, workdir: Path, skip: set[str]):
        self.cls = cls
        self.workdir = workdir
        self.skip = skip
        self.name = getattr(cls, "name", "") or getattr(cls, "__name__", repr(cls))
        self.problems: list[Problem] = []
        self.missing_columns: set[str] = set()  # reported once, not again by later checks
        # What the configured stage declares: a stage may set its own ``outputs`` and
        # ``fanout`` in ``__init__`` from its parameters (a vector's length from k).
        self.outputs = tuple(getattr(cls, "outputs", ()))
        self.fanout = bool(getattr(cls, "fanout", False))
        self.arrow_columns: set[str] = set()  # returned as Arrow arrays: convertible by construction

    def add(self, check: str, message: str) -> None:
        if check not in self.skip:
            self.problems.append(Problem(self.name, check, message))

    def wants(self, *checks: str) -> bool:
        return any(c not in self.skip for c in checks)

    # The order matters: class-level checks first, so that a stage without examples
    # still gets its parameter docs and declared outputs checked.
    def run(self, examples: StageExamples | None) -> None:
        cls = self.cls
        if not (isinstance(cls, type) and issubclass(cls, (Encoder, Reader, Sink))):
            self.add("examples", f"{cls!r} is not a subclass of hpcprep.Encoder, Reader or Sink")
            return
        if not cls.summary():
            self.add("docs", "the class has no docstring; `hpcprep describe` shows its first line")
        self.check_params_model()
        if cls.kind in ("encoder", "reader") and not cls.outputs:
            self.add("outputs", "declares no output columns (set `outputs = (Column(...), ...)`)")
        if examples is None:
            try:
                examples = cls.examples(self.workdir)
            except Exception as exc:
                self.add("examples", f"examples() raised {_describe(exc)}")
                return
        if examples is None:
            self.add(
                "examples",
                "gives no examples: define the classmethod examples(workdir) returning "
                "hpcprep.StageExamples(params=..., good=..., bad=...)",
            )
            return
        if not isinstance(examples, StageExamples):
            self.add("examples", f"examples() returned {type(examples).__name__}, not hpcprep.StageExamples")
            return
        try:
            if cls.kind == "encoder":
                self.check_encoder(examples)
            elif cls.kind == "reader":
                self.check_reader(examples)
            else:
                self.check_sink(examples)
        except _Stop:
            pass

    # -- class level ------------------------------------------------------------------

    def check_params_model(self) -> None:
        from pydantic import BaseModel

        model = self.cls.Params
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            self.add("params", f"Params is {model!r}, not a pydantic model (subclass hpcprep.Params)")
            return
        defaults = {}
        for fname, f in model.model_fields.items():
            if not (f.description or "").strip():
                self.add(
                    "params",
                    f"parameter {fname!r} has no description; use Field(..., description=\"one line\")",
                )
            if not f.is_required():
                try:
                    defaults[fname] = f.get_default(call_default_factory=True)
                except Exception as exc:
                    self.add("params", f"the default of parameter {fname!r} cannot be built: {_describe(exc)}")
        # pydantic does not validate defaults; feeding them back in does.
        from pydantic import ValidationError

        try:
            model(**defaults)
        except ValidationError as exc:
            for err in exc.errors():
                # A required field, or a rule across fields (one of two must be set), asks the
                # user for configuration; neither makes a default wrong.
                if err["type"] == "missing" or not err["loc"]:
                    continue
                loc = ".".join(str(p) for p in err["loc"])
                self.add("params", f"the default of parameter {loc!r} is not valid: {err['msg']} (got {err.get('input')!r})")
        except Exception as exc:
            self.add("params", f"Params(**defaults) raised {_describe(exc)}")

    # -- shared ---------------------------------------------------------------------------

    def configure(self, params: Any, what: str):
        if params is not None and not isinstance(params, dict):
            self.add("examples", f"{what} must be a dict of parameters, got {type(params).__name__}")
            raise _Stop
        try:
            return self.cls(dict(params or {}))
        except Exception as exc:
            self.add("examples", f"the stage cannot be configured with the {what} {params!r}: {_describe(exc)}")
            raise _Stop from None

    def check_pickle(self, stage) -> None:
        if not self.wants("pickle"):
            return
        for label, dumps, loads in _picklers():
            try:
                clone = loads(dumps(stage))
            except Exception as exc:
                self.add(
                    "pickle",
                    f"a configured instance does not survive {label} ({_describe(exc)}); stages travel to "
                    "Ray workers, so open files, locks and clients in setup(), not __init__",
                )
                continue
            if type(clone) is not type(stage) or getattr(clone, "params", None) != stage.params:
                self.add("pickle", f"a {label} round trip changed the stage: {stage!r} became {clone!r}")

    def worker_copy(self, stage):
        """What a Ray worker gets: an unpickled copy (a fresh instance if pickling fails)."""
        for _, dumps, loads in reversed(_picklers()):
            try:
                return loads(dumps(stage))
            except Exception:
                continue
        return self.cls(stage.params)

    def check_batch(self, batch: Any, what: str, allow_empty: bool = False) -> int:
        """Rows in an example batch; a malformed one stops the checks that need it."""
        if not isinstance(batch, dict) or not batch:
            self.add("examples", f"the {what} batch must be a non-empty dict of numpy arrays, got {type(batch).__name__}")
            raise _Stop
        bad = [k for k, v in batch.items() if not isinstance(v, np.ndarray)]
        if bad:
            self.add("examples", f"the {what} batch has columns that are not numpy arrays: {bad}")
            raise _Stop
        lengths = {k: len(v) for k, v in batch.items()}
        if len(set(lengths.values())) != 1:
            self.add("examples", f"the {what} batch has columns of different lengths: {lengths}")
            raise _Stop
        missing = [c for c in REQUIRED_COLUMNS if c not in batch]
        if missing:
            self.add("examples", f"the {what} batch lacks {missing}; every record carries source and record_id")
            raise _Stop
        n = next(iter(lengths.values()))
        if n == 0 and not allow_empty:
            self.add("examples", f"the {what} batch has no rows")
            raise _Stop
        return n

    def as_numpy(self, out: dict) -> dict:
        """``out`` with Arrow columns as NumPy; the runner takes Arrow arrays as they are, from
        readers and encoders alike, so they are checked as NumPy would see them."""
        out = dict(out)
        for k, v in out.items():
            if _is_arrow(v):
                self.arrow_columns.add(k)
                out[k] = v.to_numpy(zero_copy_only=False)
        return out

    def check_produced(self, out: dict, n_in: int | None, what: str, input_cols: Iterable[str] = ()) -> None:
        """Declared columns present, declared types kept, Arrow-convertible."""
        declared = {c.name: c for c in self.outputs}
        missing = [c for c in declared if c not in out]
        self.missing_columns.update(missing)
        if missing:
            self.add("columns", f"{what}: declared column(s) {missing} missing from the output {sorted(out)}")
        # Readers may pass through columns they cannot know in advance (Parquet files).
        extra = sorted(set(out) - set(declared) - set(input_cols) - set(REQUIRED_COLUMNS))
        if extra and self.cls.kind == "encoder":
            self.add("columns", f"{what}: column(s) {extra} are produced but not declared in outputs")
        for name, col in declared.items():
            if name in out:
                why = _type_mismatch(col.type, out[name])
                if why:
                    self.add("types", f"{what}: column {name!r} is declared {col.type} but {why}")
        if self.wants("arrow") and n_in != 0:
            why = _arrow_problem({k: v for k, v in out.items() if k in declared and k not in self.arrow_columns})
            if why:
                self.add("arrow", f"{what}: {why}")

    # -- encoders ---------------------------------------------------------------------

    def check_encoder(self, ex: StageExamples) -> None:
        stage = self.configure(ex.params, "example params")
        self.outputs, self.fanout = tuple(stage.outputs), bool(stage.fanout)
        self.check_pickle(stage)
        if ex.good is None:
            self.add("examples", "gives no good batch (StageExamples.good)")
            raise _Stop
        n = self.check_batch(ex.good, "good")
        worker = self.setup(stage)

        out = self.encode(worker, ex.good, "the good batch")
        if out is not None:
            self.check_produced(out, n, "the good batch", ex.good.keys())
            before = len(self.problems)
            if self.wants("determinism"):
                self.check_determinism(stage, worker, ex.good, out)
            if self.wants("inputs") and len(self.problems) == before:  # outputs that vary prove nothing
                self.check_inputs(stage, worker, ex.good, out)
        if self.wants("empty_batch"):
            self.check_empty(worker, ex.good)
        if self.wants("bad_input"):
            self.check_encoder_bad(worker, ex.bad)

    def setup(self, stage):
        worker = self.worker_copy(stage)
        try:
            worker.setup()
        except Exception as exc:
            self.add("setup", f"setup() raised {_describe(exc)}")
            raise _Stop from None
        return worker

    def encode(self, worker, batch: dict, what: str, check: str = "encode") -> dict | None:
        """The stage's output for ``batch`` as the runner sees it, or None after a problem."""
        n = len(next(iter(batch.values())))
        try:
            out = worker.encode(_read_only(batch))
        except Exception as exc:
            hint = ""
            if "read-only" in str(exc):
                hint = "; Ray hands encoders read-only (zero-copy) arrays: copy before writing to one"
            self.add(check, f"{what} ({n} rows) raised {_describe(exc)}{hint}")
            return None
        if not isinstance(out, dict):
            self.add(check, f"encode returned {type(out).__name__} for {what}, not a dict of columns")
            return None
        for k, v in out.items():
            if not (_is_arrow(v) or isinstance(v, np.ndarray)):
                self.add(check, f"encode returned column {k!r} as {type(v).__name__}, not a numpy or Arrow array")
                return None
        out = self.as_numpy(out)
        if self.fanout:
            lacking = [c for c in REQUIRED_COLUMNS if c not in out]
            if lacking:
                self.add(check, f"a fan-out stage returns whole rows, but {what} gave no {lacking}")
                return None
            lengths = {k: len(v) for k, v in out.items()}
            if len(set(lengths.values())) > 1:
                self.add(check, f"{what}: returned columns of different lengths {lengths}")
                return None
        else:
            wrong = {k: len(v) for k, v in out.items() if len(v) != n}
            if wrong:
                self.add(
                    check,
                    f"{what}: {n} rows in but {wrong} rows out; a stage that changes the number "
                    "of rows sets fanout = True",
                )
                return None
        return out

    def check_determinism(self, stage, worker, batch: dict, first: dict) -> None:
        runs = [("the same worker", worker)]
        try:
            other = self.worker_copy(stage)
            other.setup()
            runs.append(("a second worker copy", other))
        except Exception:
            pass  # setup problems are reported by the setup check
        for label, w in runs:
            try:
                again = w.encode(_read_only(batch))
            except Exception as exc:
                self.add("determinism", f"encoding the good batch again on {label} raised {_describe(exc)}")
                return
            if isinstance(again, dict):
                again = {k: v.to_numpy(zero_copy_only=False) if _is_arrow(v) else v for k, v in again.items()}
                diff = _difference(first, again)
            else:
                diff = f"returned {type(again).__name__}"
            if diff:
                self.add(
                    "determinism",
                    f"the same good batch encoded twice ({label}) gave different output: {diff}",
                )
                return

    def check_inputs(self, stage, worker, good: dict, first: dict) -> None:
        """The declared inputs are all that ``encode`` reads: the good batch without the
        other columns gives the same output."""
        declared = [c.name for c in stage.inputs]
        absent = [c.name for c in stage.inputs if c.name not in good and not c.optional]
        if absent:
            self.add("inputs", f"declares input column(s) {absent} that its good batch does not have")
            return
        kept = {k: v for k, v in good.items() if k in declared or k in REQUIRED_COLUMNS}
        fix = "; declare every column encode reads in `inputs = (Input(...), ...)`"
        try:
            again = worker.encode(_read_only(kept))
        except Exception as exc:
            self.add("inputs", f"the good batch cut down to its declared inputs {declared} raised {_describe(exc)}{fix}")
            return
        if not isinstance(again, dict):
            return  # reported by the encode check
        again = self.as_numpy(again)
        names = [c.name for c in self.outputs] + (list(REQUIRED_COLUMNS) if self.fanout else [])
        diff = _difference({k: first[k] for k in names if k in first}, {k: again[k] for k in names if k in again})
        if diff:
            self.add("inputs", f"the good batch cut down to its declared inputs {declared} gave other output: {diff}{fix}")

    def check_empty(self, worker, good: dict) -> None:
        empty = {k: v[:0] for k, v in good.items()}
        before = len(self.problems)
        out = self.encode(worker, empty, "an empty batch", check="empty_batch")
        if out is None or len(self.problems) > before:
            return
        missing = [c.name for c in self.outputs if c.name not in out and c.name not in self.missing_columns]
        if missing:
            self.add("empty_batch", f"an empty batch (0 rows) gave no declared column(s) {missing}")
        rows = {k: len(v) for k, v in out.items() if len(v)}
        if rows:
            self.add("empty_batch", f"an empty batch (0 rows) gave rows: {rows}")

    def check_encoder_bad(self, worker, bad: Any) -> None:
        if bad is None:
            self.add(
                "bad_input",
                "gives no bad batch (StageExamples.bad), so the kit cannot check that bad records "
                "raise hpcprep.RecordError; pass skip=['bad_input'] if no input can fail",
            )
            return
        n = self.check_batch(bad, "bad")
        try:
            worker.encode(_read_only(bad))
        except RecordError as exc:
            if not str(exc).strip():
                self.add("bad_input", "RecordError without a message; say what is wrong and where")
        except Exception as exc:
            self.add(
                "bad_input",
                f"the bad batch raised {_describe(exc)} instead of hpcprep.RecordError; bad data must "
                "raise RecordError so the runner records it and goes on",
            )
            return
        else:
            self.add("bad_input", "the bad batch encoded without raising hpcprep.RecordError")
            return
        # The runner re-runs a failed batch row by row to isolate the bad records.
        caught = 0
        for i in range(n):
            row = {k: v[i : i + 1] for k, v in bad.items()}
            try:
                worker.encode(_read_only(row))
            except RecordError:
                caught += 1
            except Exception as exc:
                self.add(
                    "bad_input",
                    f"row {i} of the bad batch alone raised {_describe(exc)} instead of hpcprep.RecordError",
                )
                return
        if not caught:
            self.add(
                "bad_input",
                "the bad batch fails as a whole but none of its rows alone raises RecordError, so the "
                "runner cannot isolate the bad record",
            )

    # -- readers ----------------------------------------------------------------------

    def check_reader(self, ex: StageExamples) -> None:
        base = ex.params or ex.good
        stage = self.configure(base, "example params")
        self.check_pickle(stage)
        if ex.good is None:
            self.add("examples", "gives no good parameters (StageExamples.good)")
            raise _Stop
        reader = self.configure(ex.good, "good parameters")
        first = self.read_all(self.worker_copy(reader), "the good parameters")
        if first is not None and self.wants("determinism"):
            again = self.read_all(self.worker_copy(reader), "the good parameters (second time)", report=False)
            if again is None:
                self.add("determinism", "reading the good parameters a second time failed")
            else:
                diff = _difference_reads(first, again)
                if diff:
                    self.add("determinism", f"reading the good parameters twice gave different output: {diff}")
        if self.wants("bad_input"):
            self.check_reader_bad(ex.bad)

    def plan(self, reader, what: str) -> list[InputItem] | None:
        try:
            items = reader.plan()
        except Exception as exc:
            self.add("plan", f"plan() on {what} raised {_describe(exc)}")
            return None
        if not isinstance(items, list) or not all(isinstance(i, InputItem) for i in items):
            self.add("plan", f"plan() on {what} must return a list of hpcprep.InputItem, got {items!r:.200}")
            return None
        if not items:
            self.add("plan", f"plan() on {what} found no input items")
            return None
        try:
            pickle.dumps(items)
        except Exception as exc:
            self.add("plan", f"the input items of {what} do not pickle ({_describe(exc)}); they travel to read tasks")
        return items

    def read_all(self, reader, what: str, report: bool = True):
        """[(item key, [batch or ErrorRecord, ...]), ...] for every planned item, or None."""
        items = self.plan(reader, what) if report else _quiet_plan(reader)
        if items is None:
            return None
        results, ids = [], {}
        for item in items:
            outs = []
            try:
                for out in reader.read(item):
                    outs.append(out)
            except Exception as exc:
                if report:
                    self.add("read", f"read() of {item.source} ({what}) raised {_describe(exc)}")
                return None
            key = (item.source, item.index, item.size, item.offset, item.length)
            results.append((key, outs))
            if not report:
                continue
            for out in outs:
                if isinstance(out, ErrorRecord):
                    self.add("read", f"{what} gave an error record for {out.source}: {out.message}")
                    continue
                if not isinstance(out, dict):
                    self.add("read", f"read() yielded {type(out).__name__}, not a batch dict or ErrorRecord")
                    return None
                missing = [c for c in REQUIRED_COLUMNS if c not in out]
                if missing:
                    self.add("read", f"read() of {item.source} yielded a batch without {missing}")
                    return None
                lengths = {k: len(v) for k, v in out.items()}
                if len(set(lengths.values())) > 1:
                    self.add("read", f"read() of {item.source} yielded columns of different lengths {lengths}")
                    return None
                for rid in out["record_id"]:
                    if rid in ids:
                        self.add("read", f"record_id {rid!r} is given to two records ({ids[rid]} and {item.source})")
                    ids[rid] = item.source
                self.check_produced(self.as_numpy(out), lengths["source"], f"read() of {item.source}")
        if report and not ids:
            self.add("read", f"{what} read no records")
        return results

    def check_reader_bad(self, bad: Any) -> None:
        if bad is None:
            self.add(
                "bad_input",
                "gives no bad parameters (StageExamples.bad), so the kit cannot check that bad input "
                "becomes error records; pass skip=['bad_input'] if no input can fail",
            )
            return
        reader = self.worker_copy(self.configure(bad, "bad parameters"))
        items = self.plan(reader, "the bad parameters")
        if items is None:
            return
        errors = 0
        for item in items:
            try:
                for out in reader.read(item):
                    if isinstance(out, ErrorRecord):
                        errors += 1
                        if not (out.source and out.record_id and out.message):
                            self.add("bad_input", f"an error record lacks source, record_id or message: {out!r}")
            except RecordError:
                errors += 1
            except Exception as exc:
                self.add(
                    "bad_input",
                    f"read() of {item.source} with the bad parameters raised {_describe(exc)} instead of "
                    "hpcprep.RecordError or an hpcprep.ErrorRecord",
                )
                return
        if not errors:
            self.add("bad_input", "the bad parameters read without any RecordError or ErrorRecord")

    # -- sinks ------------------------------------------------------------------------

    def check_sink(self, ex: StageExamples) -> None:
        sink = self.configure(ex.params, "example params")
        self.check_pickle(sink)
        if ex.good is None or not self.wants("sink"):
            return
        self.check_batch(ex.good, "good")
        ctx = SinkContext(run_dir=str(self.workdir / "run"), run_name="hpcprep-kit", attempt="kit")
        step = "prepare"
        try:
            sink.prepare(ctx)
            step = "open_writer"
            writer = self.worker_copy(sink).open_writer(ctx)
            step = "write"
            writer.write(_to_arrow(ex.good))
            step = "close"
            result = writer.close()
            step = "pickling the writer's result"
            pickle.dumps(result)
            step = "commit"
            sink.commit(ctx, [result])
            step = "finish"
            sink.finish(ctx)
        except Exception as exc:
            self.add("sink", f"writing the good batch: {step} raised {_describe(exc)}")


# -- plugins --------------------------------------------------------------------------


def check_plugin(plugin: Any, workdir: str | Path, *, skip: Iterable[str] = ()) -> dict[str, list[Problem]]:
    """Check a plugin and every stage it registers.

    ``plugin`` is the plugin object (usually its module) or the name of an installed
    plugin (its ``hpcprep`` entry point, or ``"hpcprep"`` for the core's built-ins).
    Returns ``{stage name: problems}`` for every stage, plus ``PLUGIN`` for problems
    of the plugin itself; empty lists everywhere mean it passes.
    """
    import pluggy

    from .. import hookspecs
    from ..plugins import BUILTIN, PluginInfo, PluginRegistry

    skip = list(skip)
    workdir = Path(workdir)
    results: dict[str, list[Problem]] = {}
    plugin_problems: list[Problem] = []
    obj, label = _load_plugin(plugin, plugin_problems)
    if obj is None:
        return {PLUGIN: plugin_problems}

    def problem(msg: str) -> None:
        plugin_problems.append(Problem(label, "plugin", msg))

    marker = f"{hookspecs.hookimpl.project_name}_impl"
    hook_names = [n for n in dir(obj) if n.startswith("hpcprep_") and callable(getattr(obj, n, None))]
    for n in hook_names:
        if not hasattr(getattr(obj, n), marker):
            problem(f"{n} is not decorated with @hpcprep.hookimpl, so pluggy ignores it")
    pm = pluggy.PluginManager("hpcprep")
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(obj, name=label)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        problem(f"hooks do not match hpcprep's hook specifications: {exc}")
        return {PLUGIN: plugin_problems}
    if not any(hasattr(getattr(obj, n), marker) for n in hook_names):
        problem("defines no hooks (functions named like hpcprep.hookspecs, decorated with @hpcprep.hookimpl)")

    info = PluginInfo(name=BUILTIN if obj is _builtin_plugin() else label, version="0", distribution="?")
    found: list[tuple[str, type]] = []
    for hook_name, kind in (
        ("hpcprep_register_readers", "reader"),
        ("hpcprep_register_encoders", "encoder"),
        ("hpcprep_register_sinks", "sink"),
    ):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():

            def register(cls, _kind=kind):
                try:
                    PluginRegistry._check_stage_class(cls, _kind, info)
                except TypeError as exc:
                    problem(str(exc))
                    return
                found.append((_kind, cls))

            try:
                impl.function(register=register)
            except Exception as exc:
                problem(f"{hook_name} raised {_describe(exc)}")

    names = [cls.name for _, cls in found]
    counter = itertools.count()
    for kind, cls in found:
        key = cls.name if names.count(cls.name) == 1 else f"{cls.name} ({kind})"
        if key in results:
            problem(f"{kind} {cls.name!r} is registered twice")
            continue
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        results[key] = check_stage(cls, workdir / f"{next(counter):02d}-{slug}", skip=skip)
    if plugin_problems:
        results[PLUGIN] = plugin_problems
    return results


def assert_plugin_ok(plugin: Any, workdir: str | Path, *, skip: Iterable[str] = ()) -> dict[str, list[Problem]]:
    """``check_plugin``, raising one AssertionError that lists every problem; returns the results."""
    results = check_plugin(plugin, workdir, skip=skip)
    problems = [p for ps in results.values() for p in ps]
    if problems:
        raise AssertionError(format_problems(problems, f"plugin {_plugin_label(plugin)!r}"))
    return results


def _builtin_plugin():
    from ..builtins import plugin

    return plugin


def _plugin_label(plugin: Any) -> str:
    if isinstance(plugin, str):
        return plugin
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def _load_plugin(plugin: Any, problems: list[Problem]) -> tuple[Any, str]:
    from importlib import metadata

    from ..plugins import BUILTIN, ENTRY_POINT_GROUP

    if not isinstance(plugin, str):
        return plugin, _plugin_label(plugin)
    if plugin == BUILTIN:
        return _builtin_plugin(), BUILTIN
    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    wanted = _normalise(plugin)
    matches = [
        ep for ep in eps if ep.name == plugin or (ep.dist is not None and _normalise(ep.dist.name) == wanted)
    ]
    if not matches:
        known = sorted(ep.name for ep in eps)
        problems.append(
            Problem(
                plugin,
                "plugin",
                f"no installed plugin {plugin!r} in the {ENTRY_POINT_GROUP!r} entry-point group "
                f"(installed: {', '.join(known) or 'none'}); is the package installed (pip install -e .)?",
            )
        )
        return None, plugin
    ep = matches[0]
    try:
        return ep.load(), ep.name
    except Exception as exc:
        problems.append(Problem(ep.name, "plugin", f"entry point {ep.value!r} does not load: {_describe(exc)}"))
        return None, ep.name


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- pytest helper --------------------------------------------------------------------


class Kit:
    """The kit bound to a working directory; what the ``hpcprep_kit`` fixture gives.

    Each call works in a fresh subdirectory, so one test can check several things.
    """

    def __init__(self, workdir: str | Path):
        self.workdir = Path(workdir)
        self._calls = itertools.count()

    def _dir(self, label: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:60]
        path = self.workdir / f"{next(self._calls):02d}-{slug}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def check_stage(self, stage_cls: type, **kwargs) -> list[Problem]:
        return check_stage(stage_cls, self._dir(getattr(stage_cls, "name", "stage")), **kwargs)

    def check_plugin(self, plugin: Any, **kwargs) -> dict[str, list[Problem]]:
        return check_plugin(plugin, self._dir(_plugin_label(plugin)), **kwargs)

    def assert_stage_ok(self, stage_cls: type, **kwargs) -> None:
        assert_stage_ok(stage_cls, self._dir(getattr(stage_cls, "name", "stage")), **kwargs)

    def assert_plugin_ok(self, plugin: Any, **kwargs) -> dict[str, list[Problem]]:
        return assert_plugin_ok(plugin, self._dir(_plugin_label(plugin)), **kwargs)


# -- helpers --------------------------------------------------------------------------


def _picklers():
    try:
        import cloudpickle
    except ImportError:  # Ray vendors the cloudpickle it ships stages with
        from ray import cloudpickle
    return [("pickle", pickle.dumps, pickle.loads), ("cloudpickle", cloudpickle.dumps, cloudpickle.loads)]


def _describe(exc: BaseException) -> str:
    """``Type: message (at file:line)``, pointing at the innermost frame."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        text += f" (at {Path(f.filename).name}:{f.lineno})"
    return text


def _read_only(batch: dict) -> dict:
    """A copy with read-only arrays, as Ray's zero-copy batches are."""
    out = {}
    for k, v in batch.items():
        v = v.copy()
        v.setflags(write=False)
        out[k] = v
    return out


def _quiet_plan(reader):
    try:
        items = reader.plan()
    except Exception:
        return None
    return items if isinstance(items, list) and items else None


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        if a.dtype == object or b.dtype == object:
            return all(_equal(x, y) for x, y in zip(a.ravel(), b.ravel()))
        if a.dtype.kind in "fc" and b.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return False


def _difference(a: dict, b: dict) -> str | None:
    if set(a) != set(b):
        return f"columns {sorted(a)} then {sorted(b)}"
    for k in a:
        x, y = a[k], b[k]
        if np.asarray(x).shape != np.asarray(y).shape:
            return f"column {k!r} has shape {np.shape(x)} then {np.shape(y)}"
        if not _equal(x, y):
            rows = [i for i in range(len(x)) if not _equal(x[i], y[i])]
            return f"column {k!r} differs in row(s) {rows[:10]}"
    return None


def _difference_reads(a: list, b: list) -> str | None:
    if [k for k, _ in a] != [k for k, _ in b]:
        return "plan() listed different input items"
    for (key, outs_a), (_, outs_b) in zip(a, b):
        if len(outs_a) != len(outs_b):
            return f"{key[0]}: {len(outs_a)} then {len(outs_b)} batches"
        for x, y in zip(outs_a, outs_b):
            if isinstance(x, dict) and isinstance(y, dict):
                diff = _difference(x, y)
                if diff:
                    return f"{key[0]}: {diff}"
            elif x != y:
                return f"{key[0]}: {x!r} then {y!r}"
    return None


_INT = re.compile(r"^u?int(8|16|32|64)$")
_FLOAT = re.compile(r"^(float(16|32|64)|double|halffloat)$")
_FIXED = re.compile(r"^fixed_size_list<\s*(\w+)\s*>\s*\[\s*(\d+)\s*\]$")
_LIST = re.compile(r"^(large_)?list<\s*(\w+)\s*>$")


def _kind_ok(declared: str, kind: str) -> bool | None:
    """Whether numpy dtype kind ``kind`` fits the declared scalar type; None if unknown."""
    if _INT.match(declared):
        return kind in "iu"
    if _FLOAT.match(declared):
        return kind == "f"
    if declared in ("bool", "boolean"):
        return kind == "b"
    return None


def _elements_kind(values) -> str | None:
    try:
        return np.asarray(list(values)).dtype.kind
    except Exception:
        return None


def _type_mismatch(declared: str, col: np.ndarray) -> str | None:
    """Why ``col`` does not look like ``declared``; None if it does or the type is not checked."""
    declared = declared.strip().lower()
    present = [v for v in col if v is not None] if col.dtype == object else None
    if declared in ("string", "large_string", "utf8", "str"):
        if col.dtype.kind == "U" or (present is not None and all(isinstance(v, str) for v in present)):
            return None
        return f"holds {_show_dtype(col)}, not text"
    if declared in ("binary", "large_binary", "bytes"):
        if col.dtype.kind == "S" or (
            present is not None and all(isinstance(v, (bytes, bytearray, memoryview)) for v in present)
        ):
            return None
        return f"holds {_show_dtype(col)}, not bytes"
    fixed = _FIXED.match(declared)
    listed = _LIST.match(declared)
    if fixed or listed:
        inner = fixed.group(1) if fixed else listed.group(2)
        if col.ndim == 2:
            lengths, kind = {col.shape[1]}, col.dtype.kind
        elif col.dtype == object:
            rows = [np.asarray(v) for v in present]
            if any(r.ndim != 1 for r in rows):
                return "its rows are not 1-d sequences"
            lengths = {len(r) for r in rows}
            kinds = {r.dtype.kind for r in rows}
            kind = kinds.pop() if len(kinds) == 1 else None
        else:
            return f"is a {col.ndim}-d {col.dtype} array, not one sequence per row"
        if fixed and lengths and lengths != {int(fixed.group(2))}:
            return f"its rows have length {sorted(lengths)}"
        ok = _kind_ok(inner, kind) if kind else None
        if ok is False:
            return f"its elements are {kind!r}-kind numbers"
        return None
    if col.ndim != 1:
        if _kind_ok(declared, "f") is not None:
            return f"is a {col.ndim}-d array, not one value per row"
        return None
    kind = _elements_kind(present) if present is not None else col.dtype.kind
    ok = _kind_ok(declared, kind) if kind else None
    if ok is False:
        return f"holds {_show_dtype(col)}"
    return None


def _show_dtype(col: np.ndarray) -> str:
    if col.dtype != object:
        return f"{col.dtype} values"
    types = sorted({type(v).__name__ for v in col})
    return "objects of type " + ", ".join(types)


@contextlib.contextmanager
def _quiet_logging():
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _to_arrow(batch: dict):
    """The Arrow table Ray makes of a batch, as the runner's blocks are made."""
    with warnings.catch_warnings(), _quiet_logging():
        warnings.simplefilter("ignore", DeprecationWarning)  # Ray's own, not the plugin's
        from ray.data.block import BlockAccessor

        return BlockAccessor.batch_to_block(batch)


def _is_arrow(values) -> bool:
    import pyarrow as pa

    return isinstance(values, (pa.Array, pa.ChunkedArray))


def _arrow_problem(columns: dict) -> str | None:
    if not columns:
        return None
    try:
        table = _to_arrow(columns)
    except Exception as exc:
        return f"the output does not convert to Arrow: {_describe(exc)}"
    pickled = [f.name for f in table.schema if "pickled_object" in str(f.type)]
    if pickled:
        return (
            f"column(s) {pickled} only convert to Arrow as pickled Python objects; use numbers, "
            "strings, bytes or equal-shaped arrays"
        )
    return None
