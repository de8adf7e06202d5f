"""Where should embeddings and sequences live? One table measured in several stores.

``hpcprep bench storage`` and ``benchmarks/storage.py`` hand the same Arrow table (an id,
metadata columns and a float32 vector column, or DNA windows) to each store in
:mod:`.stores` and :mod:`.feast_store` (Parquet with pyarrow's default row groups and
with tuned ones, LanceDB with each index setting, a Feast feature view with a Redis online
store; Parquet and LanceDB on local disk and on an S3 endpoint) and time, the way a user
of that store would do it:

- ingest (rows/s, MB/s) and the size at rest;
- a full scan and a projection of the small columns;
- lookups of rows by ``record_id``, batches of 1, 100 and 10 000 ids (p50/p95);
- top-10 vector search (p50/p95) and its recall@10 against exact search
  (:func:`.measure.recall_at_k`, ground truth by brute force over the vectors in NumPy),
  for each index setting; exact search where a store has no index (a Parquet scan);
- the same search with a metadata filter;
- appending rows and updating rows in place.

Every figure is measured in the run that writes it; :mod:`.document` turns a results file
into ``docs/storage.md``.
"""

from .run import bench_table, embeddings_table, table_from_source

__all__ = ["bench_table", "embeddings_table", "table_from_source"]
