"""Stage base classes: what a reader, an encoder and a sink look like to the runner.

A stage class carries its contract as class attributes (name, parameter model,
declared outputs, resources) so the driver can validate a spec and print a plan
without running anything. An instance holds validated parameters and is what travels
to Ray workers, so it must stay picklable: no open files, locks or plugin managers
in ``__init__``; open them in ``setup`` (encoders) or ``open_writer`` (sinks).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict

Batch = dict[str, np.ndarray]


class Params(BaseModel):
    """Base for stage parameter models: unknown fields are errors, every field has a doc."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _absolute_local(value: str) -> str:
    if not value or "://" in value:
        return value
    return os.path.abspath(os.path.expanduser(value))


#: A parameter naming a local file, directory or glob (or a URI, left as it is). It is
#: made absolute against the working directory of the process that validates the spec,
#: so that Ray workers, whose working directory may differ, see the same file.
LocalPath = Annotated[str, AfterValidator(_absolute_local)]


class NoParams(Params):
    """A stage without parameters."""


@dataclass(frozen=True)
class Column:
    """A column a stage adds to the records, with its Arrow-style type and a one-line doc."""

    name: str
    type: str
    doc: str = ""


@dataclass(frozen=True)
class InputItem:
    """One unit of reader input: a file, a byte range of a file, or any URI.

    ``index`` is the position in the run's input plan; with ``source`` and ``offset``
    it makes record ids stable across re-runs.
    """

    source: str
    index: int
    size: int | None = None
    offset: int = 0
    length: int | None = None
    meta: dict = field(default_factory=dict)

    #: What an item costs besides its bytes (opening, planning, a first batch).
    OVERHEAD_BYTES: ClassVar[int] = 64 << 10

    @property
    def weight(self) -> int:
        """The item's share of a run's work, in bytes, for sizing read tasks and commit
        groups; an item of unknown size weighs its overhead alone."""
        size = self.length if self.length is not None else self.size
        return (size or 0) + self.OVERHEAD_BYTES


class RecordError(Exception):
    """A record that a stage cannot process; it goes to the errors table, the run goes on.

    Raise it from ``Encoder.encode`` (for a single bad record the runner re-runs the
    batch row by row and isolates it) or from ``Reader.read`` (the whole input item is
    recorded as failed). ``where`` points a person at the problem: a line, a byte
    offset, a field.
    """

    def __init__(self, message: str, *, where: str | None = None):
        super().__init__(message if where is None else f"{message} ({where})")
        self.where = where


@dataclass(frozen=True)
class ErrorRecord:
    """A reader's report of one bad record inside an input that is otherwise fine."""

    source: str
    record_id: str
    message: str
    error_type: str = "RecordError"


def record_id(source: str, *position: Any) -> str:
    """A stable id for a record: a short hash of its source and its position in it.

    The same source and position give the same id on every run and every machine.
    """
    digest = hashlib.blake2b(source.encode(), digest_size=6).hexdigest()
    if not position:
        return digest
    return digest + ":" + ":".join(str(p) for p in position)


class Stage:
    """Common contract of every stage kind."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = NoParams
    outputs: ClassVar[tuple[Column, ...]] = ()

    def __init__(self, params: Params | dict | None = None):
        if params is None:
            params = {}
        if isinstance(params, dict):
            params = self.Params(**params)
        self.params = params

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def examples(cls, workdir) -> StageExamples | None:
        """Inputs for the plugin test kit; see ``hpcprep.testing``."""
        return None

    def notes(self) -> list[str]:
        """What a reader of the manifest must know about this configured stage that the
        parameters alone do not make plain (e.g. "embeddings from untrained weights").
        The runner copies them into ``manifest.json`` and the run summary."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.params!r}>"


@dataclass
class StageExamples:
    """What the plugin test kit feeds a stage.

    For encoders ``good`` and ``bad`` are batches; for readers they are parameter
    dicts whose ``paths`` point at files in the kit's working directory. ``bad`` must
    make the stage raise ``RecordError`` (encoders) or produce error records (readers).
    """

    params: dict = field(default_factory=dict)
    good: Any = None
    bad: Any = None


class Reader(Stage):
    """Turns paths or URIs into records.

    ``plan`` runs on the driver and lists the input items (expanding globs and
    directories, splitting large files where the format allows); ``read`` runs in a
    Ray read task per item and yields batches (``dict`` of equal-length arrays) and
    ``ErrorRecord``s. Every batch carries ``source`` and ``record_id``.
    """

    kind: ClassVar[str] = "reader"

    def plan(self) -> list[InputItem]:
        raise NotImplementedError

    def read(self, item: InputItem) -> Iterator[Batch | ErrorRecord]:
        raise NotImplementedError


class Encoder(Stage):
    """A batch of records in, the same records with new columns out.

    ``encode`` receives a read-only mapping of column name to NumPy array (a column is
    converted from Arrow only when read; copy an array before writing to it) and returns
    the new columns (input columns it does not return are carried through). A stage whose output rows are not its input rows one for one (windows,
    chunks, merges) sets ``fanout = True`` and returns whole rows, each with
    ``source`` and ``record_id``.
    """

    kind: ClassVar[str] = "encoder"
    #: True when the stage loads something once per worker (a model, compiled kernels,
    #: files); the default placement then runs it in actors and calls ``setup`` once.
    needs_setup: ClassVar[bool] = False
    #: Kernel variants the stage has; "cuda" runs on GPUs when the cluster has them.
    variants: ClassVar[tuple[str, ...]] = ("cpu",)
    #: Rows per batch unless placement or the spec says otherwise.
    batch_size: ClassVar[int] = 1024
    fanout: ClassVar[bool] = False
    #: The variant chosen by placement; set on the worker's copy before ``setup``.
    variant: str = "cpu"

    def setup(self) -> None:
        """Load models, warm JIT kernels; called once per worker before any batch."""

    def encode(self, batch: Batch) -> Batch:
        raise NotImplementedError


@dataclass
class SinkContext:
    """What a sink knows about the run it writes for."""

    run_dir: str
    run_name: str
    group: int = 0
    mode: str = "new"  # new | overwrite | resume
    #: Unique per run() call; writers put it in what they write so that the driver can
    #: tell the committed attempt of a group from leftovers of an interrupted one.
    attempt: str = ""


class SinkWriter:
    """Writes blocks inside one Ray write task; ``close`` returns a small picklable result."""

    def write(self, table) -> None:
        raise NotImplementedError

    def close(self) -> Any:
        return None


class Sink(Stage):
    """Writes the records somewhere.

    Driver side: ``prepare`` once per run (create or clear the target); ``commit``
    after each commit group with the writers' results; ``discard_group`` removes what
    was written for ``ctx.group`` by any attempt other than ``ctx.attempt`` (called
    before a group runs, after it commits, and for every group at the end, so leftovers
    of an interrupted run never survive a resume); ``finish`` once at the end (build
    indexes). Worker side: ``open_writer`` per write task.
    """

    kind: ClassVar[str] = "sink"

    def target(self) -> str:
        """Where the data lands, for plans and manifests (no credentials)."""
        return ""

    def prepare(self, ctx: SinkContext) -> None:
        pass

    def discard_group(self, ctx: SinkContext, sources: list[str]) -> None:
        pass

    def open_writer(self, ctx: SinkContext) -> SinkWriter:
        raise NotImplementedError

    def commit(self, ctx: SinkContext, results: list[Any]) -> dict:
        return {}

    def finish(self, ctx: SinkContext) -> dict:
        return {}


STAGE_KINDS = {"reader": Reader, "encoder": Encoder, "sink": Sink}
