"""A Feast feature view (offline Parquet files, Redis online store) driven as its users drive it: rows are
written offline and materialised online, read back by id with ``get_online_features``. Feast has no vector
search, and its offline store is Parquet files (measured as the Parquet rows), so only ingest, size, lookups,
append and update are measured here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..builtins.feast_sink import ENTITY, JOIN_KEY, TIMESTAMP, feast_type, quiet
from .stores import Place, Setting

VIEW = "bench"


class FeastStore:
    """Feast with a Redis online store at ``redis`` (``host:port``); the repository in the local ``repo``."""

    max_queries = None  # no search

    def __init__(self, repo: Path, redis: str, vector: str, label: str = "feast (Redis online)"):
        self.repo, self.redis, self.vector, self.name = Path(repo), redis, vector, label
        self.place = Place(str(self.repo))
        self.data = self.repo / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        # A project of its own: the Redis may hold other data, which the benchmark never touches.
        self.project = f"hpcprep_bench_{uuid.uuid4().hex[:12]}"
        (self.repo / "feature_store.yaml").write_text(
            f"project: {self.project}\nregistry: registry.db\nprovider: local\noffline_store:\n  type: file\n"
            f'online_store:\n  type: redis\n  connection_string: "{redis}"\nentity_key_serialization_version: 3\n'
        )
        self.store = None
        self.view = None
        self.features: list[str] = []
        self.parts = 0
        host, port = redis.rsplit(":", 1)
        import redis as redis_client

        self.client = redis_client.Redis(host=host, port=int(port))
        self.memory_before = int(self.client.info("memory")["used_memory"])

    def _offline(self, table: pa.Table) -> None:
        stamp = pa.array([datetime.now(UTC)] * table.num_rows, pa.timestamp("us", tz="UTC"))
        pq.write_table(table.append_column(TIMESTAMP, stamp), self.data / f"part-{self.parts:05d}.parquet")
        self.parts += 1

    def _materialise(self) -> None:
        # Up to now: every row written so far is older, and the next rows will be newer than this end.
        with quiet():
            self.store.materialize_incremental(datetime.now(UTC), feature_views=[VIEW])

    def ingest(self, table: pa.Table) -> None:
        from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType

        self._offline(table)
        types = {f.name: feast_type(f.type) for f in table.schema if f.name != JOIN_KEY}
        self.features = [n for n, t in types.items() if t is not None]
        entity = Entity(name=ENTITY, join_keys=[JOIN_KEY], value_type=ValueType.STRING)
        self.view = view = FeatureView(
            name=VIEW,
            entities=[entity],
            schema=[Field(name=n, dtype=types[n]) for n in self.features],
            source=FileSource(name="bench_files", path=str(self.data), timestamp_field=TIMESTAMP),
            online=True,
        )
        self.store = FeatureStore(repo_path=str(self.repo))
        with quiet():
            self.store.apply([entity, view])
        self._materialise()

    def size_bytes(self) -> int:
        """Redis' memory for the view (``used_memory`` now less before the ingest: on a Redis that others use
        meanwhile, theirs counts too) plus the offline files."""
        offline = sum(f.stat().st_size for f in self.data.glob("*.parquet"))
        return int(self.client.info("memory")["used_memory"]) - self.memory_before + offline

    def close(self) -> None:
        """Delete the view's rows from Redis (its own project's keys only)."""
        if self.view is not None:
            self.store.provider.online_store.delete_table(self.store.config, self.view)

    def lookup(self, ids: list[str]) -> dict:
        return self.store.get_online_features(
            features=[f"{VIEW}:{n}" for n in self.features], entity_rows=[{JOIN_KEY: i} for i in ids]
        ).to_dict()

    def settings(self) -> list[Setting]:
        return []  # no vector search

    def append(self, table: pa.Table) -> None:
        self._offline(table)
        self._materialise()

    def update(self, changed: pa.Table, column: str) -> None:
        """Write the changed rows (whole rows: a feature view is written a row at a time) online."""
        rows = changed.append_column(
            TIMESTAMP, pa.array([datetime.now(UTC)] * changed.num_rows, pa.timestamp("us", tz="UTC"))
        )
        self.store.write_to_online_store(VIEW, rows.to_pandas())
