"""``feast``: records as a Feast feature view, offline store Parquet, online store Redis.

The sink makes a Feast repository (``repo``): ``feature_store.yaml`` (project, a local
registry, the file offline store and, with ``online``, a Redis online store), the
offline data as Parquet files under ``data/<feature_view>/`` and, once the run ends, a
registered feature view over them, keyed by the entity ``record`` (join key
``record_id``) and materialised into Redis, so that ``FeatureStore(repo_path=repo)``
answers ``get_online_features`` and ``get_historical_features`` at once.

The offline files are written as the ``parquet`` sink writes (its writer, its file
names and its resume bookkeeping), with one more column, ``event_timestamp``: when the
writer wrote the row (Feast needs a time per row; materialisation loads the latest row
of each ``record_id`` up to the end of the run). The feature view is registered and
materialised in ``finish``, in a Ray task (materialisation reads the whole offline
table), from the committed files only: rows of a commit group that never committed
never reach Redis.

Columns become features when Feast has a type for them: integers, floats, strings,
bytes, booleans and one-level lists of those (vectors of any fixed size included;
a tensor column's values are stored flat, its row shape is in the Parquet files'
metadata). Other columns stay in the offline files only and are listed in the
manifest. ``features`` names the columns to register instead.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from pydantic import Field

from ..stages import Input, LocalPath, Params, Sink, SinkContext, SinkWriter, StageExamples
from ..storage import claim_sink_dir, filesystem_for
from .off_driver import run_off_driver
from .parquet_sink import ParquetSink

ENTITY = "record"
JOIN_KEY = "record_id"
TIMESTAMP = "event_timestamp"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FeastSinkParams(Params):
    repo: LocalPath = Field(
        description="directory of the Feast repository the sink makes (feature_store.yaml, registry, offline Parquet)"
    )
    project: str = Field("hpcprep", description="Feast project name (letters, digits, _)")
    feature_view: str = Field("records", description="name of the feature view (letters, digits, _)")
    features: list[str] | None = Field(
        None, description="columns registered as features (default: every column Feast has a type for)"
    )
    online: bool = Field(True, description="materialise the feature view into the Redis online store")
    redis: str = Field("127.0.0.1:6379", description="Redis host:port of the online store")
    compression: str = Field("zstd", description="Parquet compression codec of the offline files")


class FeastSink(Sink):
    """A Feast feature view: offline Parquet files, Redis online store, entity = record_id."""

    name = "feast"
    Params = FeastSinkParams

    def __init__(self, params=None):
        super().__init__(params)
        named = [Input(n, "*", "a feature the spec names") for n in self.params.features or ()]
        self.inputs = (Input(JOIN_KEY, "string|large_string", "the entity key of every row"), *named)

    def target(self) -> str:
        p = self.params
        online = f", online store redis://{p.redis}" if p.online else ""
        return f"{p.repo} (feature view {p.feature_view}{online})"

    def problems(self) -> list[str]:
        from ..storage import check_writable

        p = self.params
        out = []
        try:
            import feast  # noqa: F401
        except ImportError:
            out.append("the feast sink needs the feast package: pip install 'hpcprep[feast]'")
        for field in ("project", "feature_view"):
            if not NAME.match(getattr(p, field)):
                out.append(f"{field}: {getattr(p, field)!r} is not a Feast name (letters, digits, _)")
        if p.features is not None:
            reserved = {JOIN_KEY, TIMESTAMP} & set(p.features)
            if reserved:
                out.append(f"features: {sorted(reserved)} are the entity key and the row time, not features")
        why = check_writable(Path(p.repo))
        if why:
            out.append(f"repo: {why}")
        if p.online:
            host, port = _host_port(p.redis)
            if port is None:
                out.append(f"redis: {p.redis!r} is not host:port")
            else:
                try:
                    socket.create_connection((host, port), timeout=2).close()
                except OSError as exc:
                    out.append(f"redis: cannot reach the online store at {p.redis} ({exc.strerror or exc})")
        return out

    def _offline(self) -> ParquetSink:
        p = self.params
        return ParquetSink({"path": str(Path(p.repo) / "data" / p.feature_view), "compression": p.compression})

    def prepare(self, ctx: SinkContext) -> None:
        fs, root = filesystem_for(self.params.repo)
        claim_sink_dir(fs, root, ctx, "feast sink", self.params.repo)
        (Path(root) / "feature_store.yaml").write_text(_store_yaml(self.params))
        data = Path(root) / "data" / self.params.feature_view
        data.mkdir(parents=True, exist_ok=True)

    def discard_group(self, ctx: SinkContext, sources: list[str]) -> None:
        self._offline().discard_group(ctx, sources)

    def open_writer(self, ctx: SinkContext) -> SinkWriter:
        return _TimestampedWriter(self._offline().open_writer(ctx))

    def commit(self, ctx: SinkContext, results: list) -> dict:
        return self._offline().commit(ctx, results)

    def finish(self, ctx: SinkContext) -> dict:
        return run_off_driver(_register, self.params)

    @classmethod
    def examples(cls, workdir):
        import numpy as np

        good = {
            "source": np.array(["a.fa", "a.fa", "b.fa"], dtype=object),
            "record_id": np.array(["a:0", "a:1", "b:0"], dtype=object),
            "gc": np.array([0.25, 0.5, 0.75]),
            "vector": np.arange(12, dtype=np.float32).reshape(3, 4),
        }
        return StageExamples(params={"repo": str(Path(workdir) / "feast"), "online": False}, good=good)


class _TimestampedWriter(SinkWriter):
    """The parquet sink's writer, each block given the time it was written (Feast's row time)."""

    def __init__(self, inner: SinkWriter):
        self.inner = inner

    def write(self, table: pa.Table) -> None:
        if TIMESTAMP in table.column_names:
            raise ValueError(f"feast sink: the records already have a column {TIMESTAMP!r}, the sink's own row time")
        now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
        self.inner.write(table.append_column(TIMESTAMP, pa.array([now] * table.num_rows, now.type)))

    def close(self):
        return self.inner.close()


def quiet() -> contextlib.ExitStack:
    """Feast prints coloured progress to stdout and bars to stderr; a run has its own progress."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def _host_port(address: str) -> tuple[str, int | None]:
    host, _, port = address.rpartition(":")
    return (host, int(port)) if host and port.isdigit() else (address, None)


def _store_yaml(p: FeastSinkParams) -> str:
    lines = [
        f"project: {p.project}",
        "registry: registry.db",
        "provider: local",
        "offline_store:",
        "  type: file",
    ]
    if p.online:
        lines += ["online_store:", "  type: redis", f'  connection_string: "{p.redis}"']
    else:
        lines += ["online_store: null"]
    lines.append("entity_key_serialization_version: 3")
    return "\n".join(lines) + "\n"


def feast_type(arrow_type: pa.DataType):
    """The Feast type of an Arrow column, or None where Feast has none."""
    from feast import types as ft

    def scalar(t):
        if pa.types.is_boolean(t):
            return ft.Bool
        if pa.types.is_integer(t):  # Feast has Int32 and Int64; a uint64 fits neither
            wide = t.bit_width > (16 if pa.types.is_unsigned_integer(t) else 32)
            return None if t == pa.uint64() else ft.Int64 if wide else ft.Int32
        if pa.types.is_float32(t):
            return ft.Float32
        if pa.types.is_float64(t):
            return ft.Float64
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return ft.String
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return ft.Bytes
        return None

    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        inner = scalar(arrow_type.value_type)
        return ft.Array(inner) if inner is not None else None
    return scalar(arrow_type)


def _offline_files(data: Path) -> tuple[pa.Schema | None, int]:
    """The schema of the committed offline files and their row count (from the files' footers)."""
    import pyarrow.parquet as pq

    files = sorted(data.rglob("part-*.parquet"))
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    return (pq.read_schema(files[0]) if files else None), rows


def _register(p: FeastSinkParams) -> dict:
    """Register the feature view over the committed offline files and materialise it (``finish``)."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType

    data = Path(p.repo) / "data" / p.feature_view
    schema, rows = _offline_files(data)
    if schema is None:
        return {"repo": p.repo, "feature_view": None, "rows": 0, "reason": "the run wrote no rows"}
    types = {f.name: feast_type(f.type) for f in schema if f.name not in (JOIN_KEY, TIMESTAMP)}
    if p.features is None:
        chosen = [n for n, t in types.items() if t is not None and not n.startswith("_")]
    else:
        unknown = [n for n in p.features if n not in types]
        if unknown:
            raise ValueError(f"feast sink: features {unknown} are not columns of the records ({sorted(types)})")
        untyped = [f"{n} ({schema.field(n).type})" for n in p.features if types[n] is None]
        if untyped:
            raise ValueError(f"feast sink: Feast has no type for the features {untyped}")
        chosen = list(p.features)
    entity = Entity(name=ENTITY, join_keys=[JOIN_KEY], value_type=ValueType.STRING)
    source = FileSource(name=f"{p.feature_view}_files", path=str(data), timestamp_field=TIMESTAMP)
    view = FeatureView(
        name=p.feature_view,
        entities=[entity],
        schema=[Field(name=n, dtype=types[n]) for n in chosen],
        source=source,
        online=p.online,
    )
    store = FeatureStore(repo_path=p.repo)
    with quiet():
        store.apply([entity, view])
        if p.online:
            # Rows an earlier run (--overwrite) put online under this view would outlive its files.
            store.provider.online_store.delete_table(store.config, view)
            end = datetime.now(UTC) + timedelta(seconds=1)
            store.materialize(datetime(1970, 1, 1, tzinfo=UTC), end, feature_views=[p.feature_view])
    return {
        "repo": p.repo,
        "feature_view": p.feature_view,
        "rows": rows,
        "features": chosen,
        "offline_only": sorted(n for n in types if n not in chosen),
        "online_store": f"redis://{p.redis}" if p.online else None,
    }
