"""An in-benchmark hpcprep plugin: synthetic records and a CPU-bound Numba encoder.

``bench.synthetic`` makes ``n_records`` records in chunks of ``records_per_item``,
one input item per chunk, each chunk's ``x`` drawn from its own seeded generator, so
every run (and the plain loop in ``runner_scaling.py``) sees the same records.
``bench.kernel`` runs ``bench_kernel.standard_map_mean_cos`` on each ``x``.

The module is registered in process (``hpcprep.run(spec, plugins=[bench_plugin])``),
so the runner ships it to Ray workers by value. The kernel lives in ``bench_kernel``,
which workers import by name (``runner_scaling.py`` puts this folder on their
``PYTHONPATH``), as they would an installed plugin's module: Numba rebuilds a jitted
function that travels by value without its on-disk cache, so every actor would compile
it, while the plain loop compiles nothing inside its clock.
"""

from __future__ import annotations

from collections.abc import Iterator

import bench_kernel
import hpcprep
import numpy as np
from pydantic import Field

SOURCE_PREFIX = "synthetic://bench"

_STR = np.dtypes.StringDType()


# -- records -------------------------------------------------------------------------


def chunk_source(seed: int, index: int) -> str:
    return f"{SOURCE_PREFIX}/{seed}/{index:06d}"


def chunk_bounds(n_records: int, records_per_item: int) -> list[tuple[int, int]]:
    return [(s, min(s + records_per_item, n_records)) for s in range(0, n_records, records_per_item)]


def make_chunk(seed: int, index: int, start: int, stop: int, batch_rows: int) -> Iterator[dict]:
    """The records of one chunk, as numpy batches of at most ``batch_rows`` rows.

    ``record_id`` equals ``hpcprep.record_id(source, position)``, built with numpy
    string ops (one hash per chunk, not one per record).
    """
    source = chunk_source(seed, index)
    n = stop - start
    x = np.random.default_rng([seed, index]).random(n)
    prefix = np.array([hpcprep.record_id(source) + ":"], dtype=_STR)
    for lo in range(0, n, batch_rows):
        hi = min(lo + batch_rows, n)
        m = hi - lo
        positions = np.arange(lo, hi, dtype=np.int64)
        sources = np.empty(m, dtype=_STR)
        sources[:] = source  # ten times faster than np.full for StringDType
        yield {
            "source": sources,
            "record_id": np.strings.add(prefix, positions.astype(_STR)),
            "offset": positions + start,
            "x": x[lo:hi],
        }


class SyntheticParams(hpcprep.Params):
    n_records: int = Field(10_000_000, ge=1, description="records in total")
    records_per_item: int = Field(250_000, ge=1, description="records per input item (one Ray read task each)")
    batch_rows: int = Field(65_536, ge=1, description="rows per batch the reader yields")
    seed: int = Field(0, description="seed; each item draws x from its own generator seeded by (seed, index)")


class SyntheticReader(hpcprep.Reader):
    """Deterministic synthetic records (``offset``, ``x`` in [0, 1)) in fixed-size chunks."""

    name = "bench.synthetic"
    Params = SyntheticParams

    def plan(self) -> list[hpcprep.InputItem]:
        p = self.params
        return [
            hpcprep.InputItem(
                source=chunk_source(p.seed, k),
                index=k,
                size=(stop - start) * 8,
                offset=start,
                length=stop - start,
            )
            for k, (start, stop) in enumerate(chunk_bounds(p.n_records, p.records_per_item))
        ]

    def read(self, item: hpcprep.InputItem) -> Iterator[dict]:
        p = self.params
        yield from make_chunk(p.seed, item.index, item.offset, item.offset + item.length, p.batch_rows)


# -- encoder -------------------------------------------------------------------------


class KernelParams(hpcprep.Params):
    iterations: int = Field(128, ge=1, description="standard-map iterations per record")
    kick: float = Field(1.3, description="kick strength K of the standard map")


class KernelEncoder(hpcprep.Encoder):
    """Mean cos(theta) along a standard-map orbit started at each record's x (Numba)."""

    name = "bench.kernel"
    Params = KernelParams
    needs_setup = True
    batch_size = 65_536
    outputs = (hpcprep.Column("y", "double", "mean of cos(theta) over the orbit"),)

    def setup(self) -> None:
        # load from Numba's cache (or compile) once per worker, not in the first batch;
        # columns arrive as read-only views of Arrow buffers, a signature of its own
        bench_kernel.warm(readonly=True)

    def encode(self, batch: dict) -> dict:
        x = np.ascontiguousarray(batch["x"], dtype=np.float64)
        # called through the module so that the function is found by import, not pickled
        y = bench_kernel.standard_map_mean_cos(x, self.params.iterations, self.params.kick, np.empty_like(x))
        return {"y": y}


@hpcprep.hookimpl
def hpcprep_register_readers(register):
    register(SyntheticReader)


@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    register(KernelEncoder)
