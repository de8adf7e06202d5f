"""Stage base classes: what a reader, an encoder and a sink look like to the runner.

A stage class carries its contract as class attributes (name, parameter model,
declared outputs, resources) so the driver can validate a spec and print a plan
without running anything. An instance holds validated parameters and is what travels
to Ray workers, so it must stay picklable: no open files, locks or plugin managers
in ``__init__``; open them in ``setup`` (encoders) or ``open_writer`` (sinks).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

Batch = dict[str, np.ndarray]


class StrictScalars(BaseModel):
    """A model of spec values in which a number, a flag or a text is never silently turned
    into another: ``window = "1000"`` or ``canonical = "yes"`` in a spec is a mistake to
    report, not to guess at. (An integer may still stand for a float.)"""

    @field_validator("*", mode="before")
    @classmethod
    def _no_silent_conversion(cls, value, info):
        why = _conversion(cls.model_fields[info.field_name].annotation, value)
        if why:
            raise PydanticCustomError("no_conversion", why)
        return value


class Params(StrictScalars):
    """Base for stage parameter models: unknown fields are errors, every field has a doc."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_SCALARS = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


def _scalar_types(annotation) -> set | None:
    """The scalar types a field takes (``int | None`` -> {int}), or None when it takes
    anything else too (lists, models, paths), which pydantic alone then checks."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_types(get_args(annotation)[0])
    if origin is Literal:
        return {type(v) for v in get_args(annotation)}
    if origin in (Union, UnionType):
        kinds: set = set()
        for arg in get_args(annotation):
            if arg is type(None):
                continue
            sub = _scalar_types(arg)
            if sub is None:
                return None
            kinds |= sub
        return kinds
    return {annotation} if annotation in _SCALARS else None


def _conversion(annotation, value) -> str | None:
    """Why ``value`` would have to be converted to fit a field of type ``annotation``."""
    kinds = _scalar_types(annotation)
    if not kinds or value is None:
        return None
    given = type(value)
    if given is bool and bool not in kinds:
        pass
    elif isinstance(value, str) and str not in kinds:
        pass
    elif given in (int, float) and not kinds & {int, float}:
        pass
    else:
        return None
    wanted = " or ".join(_SCALARS[k] for k in (bool, int, float, str) if k in kinds)
    what = {bool: "a flag", str: "text"}.get(given, "a number")
    hint = " (write it without quotes)" if isinstance(value, str) and _reads_as(value, kinds) else ""
    return f"expects {wanted}, got {what}{hint}"


def _reads_as(text: str, kinds: set) -> bool:
    """Whether ``text`` without its quotes would be a value of one of ``kinds`` ("5", "true")."""
    t = text.strip()
    if bool in kinds and t in ("true", "false"):
        return True
    for kind in (int, float):
        if kind in kinds:
            try:
                kind(t)
                return True
            except ValueError:
                pass
    return False


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
    """A column a stage adds to the records, with its Arrow-style type and a one-line doc.

    ``type`` is what later stages' ``Input.types`` patterns are matched against, and what
    ``hpcprep describe`` shows: a scalar (``string``, ``binary``, ``bool``, ``int8`` …
    ``int64``, ``uint8`` … ``uint64``, ``float32``, ``float64``), ``list<T>`` or
    ``large_list<T>`` of a scalar, or ``fixed_size_list<T>[N]`` for a vector of ``N``
    values per row, ``N`` a number or, when it depends on the parameters and the class
    declares it, the parameter's name (``[d]``). The arrays a stage returns must have
    that type.
    """

    name: str
    type: str
    doc: str = ""


@dataclass(frozen=True)
class Input:
    """A column a stage reads, with the types it takes.

    ``types`` matches the ``type`` that earlier stages declare for the column: shell-style
    patterns separated by ``|`` (``"string|binary"``, ``"fixed_size_list<float*>*"``);
    ``"*"`` takes any type. The driver checks every stage's inputs against what the
    reader and the earlier encoders declare, before Ray starts. An ``optional`` input is
    read when it is there; its type is checked when an earlier stage declares it.
    """

    name: str
    types: str = "*"
    doc: str = ""
    optional: bool = False

    def accepts(self, declared: str) -> bool:
        """Whether a column declared with type ``declared`` is one this stage can read."""
        return any(fnmatch.fnmatchcase(declared, p.strip()) for p in self.types.split("|"))


#: ``Input.types`` of a text column that ``columns.ascii_texts`` reads.
TEXT_TYPES = "string|large_string|binary|large_binary|list<uint8>"
#: ``Input.types`` of a float vector column (one vector per row).
FLOAT_VECTOR_TYPES = "fixed_size_list<float*>*|list<float*>|large_list<float*>"


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
    def input_bytes(self) -> int:
        """The bytes of input the item covers (its span of the file), 0 when unknown."""
        size = self.length if self.length is not None else self.size
        return size or 0

    @property
    def weight(self) -> int:
        """The item's share of a run's work, in bytes, for sizing read tasks and commit
        groups; an item of unknown size weighs its overhead alone."""
        return self.input_bytes + self.OVERHEAD_BYTES


class RecordError(Exception):
    """A record that a stage cannot process; it goes to the errors table, the run goes on.

    Raise it from ``Encoder.encode`` (for a single bad record the runner re-runs the
    batch row by row and isolates it) or from ``Reader.read`` (the whole input item is
    recorded as failed). ``at`` points a person at the problem in the data: a line, a
    byte offset, a field. (``where``, in the manifest and the plan, is a stage's place
    in the spec: ``reader``, ``encoders[0]``.)
    """

    def __init__(self, message: str, *, at: str | None = None):
        super().__init__(message if at is None else f"{message} ({at})")
        self.at = at


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
    #: Columns the stage reads (besides ``source`` and ``record_id``, which every record
    #: has). A stage whose inputs depend on its parameters sets ``self.inputs`` in
    #: ``__init__``, as it does ``self.outputs``.
    inputs: ClassVar[tuple[Input, ...]] = ()
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

    def problems(self) -> list[str]:
        """What stops this configured stage from running that its parameters' types do not
        catch (a path that cannot be written, parameters that contradict each other), one
        sentence each. Called on the driver when a spec is resolved, before Ray starts; the
        spec is refused with every problem of every stage."""
        return []

    def notes(self) -> list[str]:
        """What a reader of the manifest must know about this configured stage that the
        parameters alone do not make plain (e.g. "embeddings from untrained weights").
        Called on the driver after the reader's ``plan()`` (a reader's notes may say what
        the plan found); the runner copies them into ``manifest.json`` and the run summary."""
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
    #: True for a reader whose records carry columns it cannot declare in advance (a
    #: Parquet file's own); stages after it are then not refused for reading a column
    #: nobody declared.
    open_columns: ClassVar[bool] = False

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
    #: Share of one GPU an actor of the CUDA variant needs. A model (ESM, a GNN) fills a
    #: GPU; a kernel that copies a batch over, runs in milliseconds and copies back leaves
    #: most of it idle, so several of its actors share one (``0.25``: four per GPU).
    gpu_share: ClassVar[float] = 1.0
    #: Rows per batch for the CUDA variant (None: ``batch_size``): a GPU wants batches
    #: large enough to hide the launch and the copies.
    gpu_batch_size: ClassVar[int | None] = None
    #: Rows per batch unless placement or the spec says otherwise.
    batch_size: ClassVar[int] = 1024
    fanout: ClassVar[bool] = False
    #: The variant chosen by placement; set on the worker's copy before ``setup``.
    variant: str = "cpu"

    def setup(self) -> None:
        """Load models, warm JIT kernels; called once per worker before any batch."""

    def encode(self, batch: Batch) -> Batch:
        raise NotImplementedError


class TextColumnParams(Params):
    column: str = Field("sequence", description="column holding the text the encoder reads")


class TextColumnEncoder(Encoder):
    """An encoder that reads one text column (DNA, a protein sequence, SMILES), named by its ``column``
    parameter. A subclass gives ``Params`` (a ``TextColumnParams`` whose ``column`` says what the text is) and
    ``text_doc``; its ``inputs`` follow, for the class and for each configured stage."""

    Params = TextColumnParams
    text_doc: ClassVar[str] = "text"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "inputs" not in cls.__dict__:
            cls.inputs = (Input(cls.Params.model_fields["column"].default, TEXT_TYPES, cls.text_doc),)

    def __init__(self, params: Params | dict | None = None):
        super().__init__(params)
        self.inputs = (Input(self.params.column, TEXT_TYPES, self.text_doc),)


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

    The resume protocol: whatever a writer puts down must say which group and which
    attempt wrote it (``ctx.group``, ``ctx.attempt``), so that ``discard_group`` can drop
    other attempts' work and ``commit`` can drop this attempt's work that no writer
    reported (a write Ray retried after its worker died). A sink that writes files gets
    this from ``hpcprep.sink_files.GroupFiles``; a table store tags its rows instead (the
    ``lancedb`` sink). ``prepare`` claims the target with ``hpcprep.storage.claim_sink_dir``
    so that ``--overwrite`` only ever clears what an hpcprep sink wrote.
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
