"""The stage checks: one stage class against the contract the runner relies on (the checks
are listed in ``hpcprep.testing``). One class, ``_StageChecker``, because every check reads
and writes the same state (the stage's declared columns, what it produced, the problems
found) and they run in an order where a later check trusts an earlier one; it is longer than
the other modules for that reason."""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..stages import Encoder, ErrorRecord, InputItem, Reader, RecordError, Sink, SinkContext, StageExamples
from .problems import CHECKS, REQUIRED_COLUMNS, Problem, format_problems
from .values import (
    arrow_problem,
    describe,
    difference,
    difference_reads,
    is_arrow,
    picklers,
    quiet_plan,
    read_only,
    to_arrow,
    type_mismatch,
)


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
                cols = {k: v.to_pylist() if is_arrow(v) else v for k, v in out.items()}
                rows.extend({k: v[i] for k, v in cols.items()} for i in range(len(cols["record_id"])))
        except RecordError as exc:
            messages.append(str(exc))
    return rows, messages


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
                self.add("examples", f"examples() raised {describe(exc)}")
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
                    f'parameter {fname!r} has no description; use Field(..., description="one line")',
                )
            if not f.is_required():
                try:
                    defaults[fname] = f.get_default(call_default_factory=True)
                except Exception as exc:
                    self.add("params", f"the default of parameter {fname!r} cannot be built: {describe(exc)}")
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
                self.add(
                    "params", f"the default of parameter {loc!r} is not valid: {err['msg']} (got {err.get('input')!r})"
                )
        except Exception as exc:
            self.add("params", f"Params(**defaults) raised {describe(exc)}")

    # -- shared ---------------------------------------------------------------------------

    def configure(self, params: Any, what: str):
        if params is not None and not isinstance(params, dict):
            self.add("examples", f"{what} must be a dict of parameters, got {type(params).__name__}")
            raise _Stop
        try:
            return self.cls(dict(params or {}))
        except Exception as exc:
            self.add("examples", f"the stage cannot be configured with the {what} {params!r}: {describe(exc)}")
            raise _Stop from None

    def check_pickle(self, stage) -> None:
        if not self.wants("pickle"):
            return
        for label, dumps, loads in picklers():
            try:
                clone = loads(dumps(stage))
            except Exception as exc:
                self.add(
                    "pickle",
                    f"a configured instance does not survive {label} ({describe(exc)}); stages travel to "
                    "Ray workers, so open files, locks and clients in setup(), not __init__",
                )
                continue
            if type(clone) is not type(stage) or getattr(clone, "params", None) != stage.params:
                self.add("pickle", f"a {label} round trip changed the stage: {stage!r} became {clone!r}")

    def worker_copy(self, stage):
        """What a Ray worker gets: an unpickled copy (a fresh instance if pickling fails)."""
        for _, dumps, loads in reversed(picklers()):
            try:
                return loads(dumps(stage))
            except Exception:
                continue
        return self.cls(stage.params)

    def check_batch(self, batch: Any, what: str, allow_empty: bool = False) -> int:
        """Rows in an example batch; a malformed one stops the checks that need it."""
        if not isinstance(batch, dict) or not batch:
            self.add(
                "examples", f"the {what} batch must be a non-empty dict of numpy arrays, got {type(batch).__name__}"
            )
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
            if is_arrow(v):
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
                why = type_mismatch(col.type, out[name])
                if why:
                    self.add("types", f"{what}: column {name!r} is declared {col.type} but {why}")
        if self.wants("arrow") and n_in != 0:
            why = arrow_problem({k: v for k, v in out.items() if k in declared and k not in self.arrow_columns})
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
            self.add("setup", f"setup() raised {describe(exc)}")
            raise _Stop from None
        return worker

    def encode(self, worker, batch: dict, what: str, check: str = "encode") -> dict | None:
        """The stage's output for ``batch`` as the runner sees it, or None after a problem."""
        n = len(next(iter(batch.values())))
        try:
            out = worker.encode(read_only(batch))
        except Exception as exc:
            hint = ""
            if "read-only" in str(exc):
                hint = "; Ray hands encoders read-only (zero-copy) arrays: copy before writing to one"
            self.add(check, f"{what} ({n} rows) raised {describe(exc)}{hint}")
            return None
        if not isinstance(out, dict):
            self.add(check, f"encode returned {type(out).__name__} for {what}, not a dict of columns")
            return None
        for k, v in out.items():
            if not (is_arrow(v) or isinstance(v, np.ndarray)):
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
                again = w.encode(read_only(batch))
            except Exception as exc:
                self.add("determinism", f"encoding the good batch again on {label} raised {describe(exc)}")
                return
            if isinstance(again, dict):
                again = {k: v.to_numpy(zero_copy_only=False) if is_arrow(v) else v for k, v in again.items()}
                diff = difference(first, again)
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
            again = worker.encode(read_only(kept))
        except Exception as exc:
            self.add("inputs", f"the good batch cut down to its declared inputs {declared} raised {describe(exc)}{fix}")
            return
        if not isinstance(again, dict):
            return  # reported by the encode check
        again = self.as_numpy(again)
        names = [c.name for c in self.outputs] + (list(REQUIRED_COLUMNS) if self.fanout else [])
        diff = difference({k: first[k] for k in names if k in first}, {k: again[k] for k in names if k in again})
        if diff:
            self.add(
                "inputs", f"the good batch cut down to its declared inputs {declared} gave other output: {diff}{fix}"
            )

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
            worker.encode(read_only(bad))
        except RecordError as exc:
            if not str(exc).strip():
                self.add("bad_input", "RecordError without a message; say what is wrong and where")
        except Exception as exc:
            self.add(
                "bad_input",
                f"the bad batch raised {describe(exc)} instead of hpcprep.RecordError; bad data must "
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
                worker.encode(read_only(row))
            except RecordError:
                caught += 1
            except Exception as exc:
                self.add(
                    "bad_input",
                    f"row {i} of the bad batch alone raised {describe(exc)} instead of hpcprep.RecordError",
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
                diff = difference_reads(first, again)
                if diff:
                    self.add("determinism", f"reading the good parameters twice gave different output: {diff}")
        if self.wants("bad_input"):
            self.check_reader_bad(ex.bad)

    def plan(self, reader, what: str) -> list[InputItem] | None:
        try:
            items = reader.plan()
        except Exception as exc:
            self.add("plan", f"plan() on {what} raised {describe(exc)}")
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
            self.add("plan", f"the input items of {what} do not pickle ({describe(exc)}); they travel to read tasks")
        return items

    def read_all(self, reader, what: str, report: bool = True):
        """[(item key, [batch or ErrorRecord, ...]), ...] for every planned item, or None."""
        items = self.plan(reader, what) if report else quiet_plan(reader)
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
                    self.add("read", f"read() of {item.source} ({what}) raised {describe(exc)}")
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
                    f"read() of {item.source} with the bad parameters raised {describe(exc)} instead of "
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
            writer.write(to_arrow(ex.good))
            step = "close"
            result = writer.close()
            step = "pickling the writer's result"
            pickle.dumps(result)
            step = "commit"
            sink.commit(ctx, [result])
            step = "finish"
            sink.finish(ctx)
        except Exception as exc:
            self.add("sink", f"writing the good batch: {step} raised {describe(exc)}")
