"""A small in-process plugin the core tests run pipelines with."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Literal

import hpcprep
import numpy as np
from pydantic import Field


class CountParams(hpcprep.Params):
    poison: str = Field("POISON", description="records containing this text are bad input")
    k: int = Field(1, ge=1, description="multiplier for the count")
    sleep: float = Field(0.0, ge=0, description="seconds to sleep per batch (to test interruption)")


class ByteCount(hpcprep.Encoder):
    """Number of bytes of each record times k; records containing the poison fail."""

    name = "test.count"
    Params = CountParams
    inputs = (hpcprep.Input("bytes", "binary", "the record"),)
    outputs = (hpcprep.Column("n", "int64", "bytes in the record times k"),)
    batch_size = 4

    def encode(self, batch):
        if self.params.sleep:
            time.sleep(self.params.sleep)
        out = []
        for b in batch["bytes"]:
            if self.params.poison.encode() in b:
                raise hpcprep.RecordError(f"contains {self.params.poison!r}")
            out.append(len(b) * self.params.k)
        return {"n": np.array(out, dtype=np.int64)}


class VariantParams(hpcprep.Params):
    pass


class Variant(hpcprep.Encoder):
    """Reports which kernel variant ran; has a CUDA variant."""

    name = "test.variant"
    Params = VariantParams
    variants = ("cpu", "cuda")
    outputs = (hpcprep.Column("variant", "string", "the variant that ran"),)

    def encode(self, batch):
        n = len(batch["record_id"])
        return {"variant": np.array([self.variant] * n, dtype=object)}


class Embed(hpcprep.Encoder):
    """A 4-d vector from the bytes, set up once per actor."""

    name = "test.embed"
    needs_setup = True
    inputs = (hpcprep.Input("bytes", "binary", "the record"),)
    outputs = (hpcprep.Column("vector", "fixed_size_list<float32>[4]", "toy embedding"),)

    def setup(self):
        self.weights = np.arange(1, 5, dtype=np.float32)

    def notes(self):
        return ["toy weights, not trained"]

    def encode(self, batch):
        vecs = (
            np.stack([self.weights * len(b) for b in batch["bytes"]])
            if len(batch["bytes"])
            else np.zeros((0, 4), np.float32)
        )
        return {"vector": vecs.astype(np.float32)}


class Windows(hpcprep.Encoder):
    """Splits each record into lines: one output row per line (fan-out)."""

    name = "test.lines"
    fanout = True
    inputs = (hpcprep.Input("bytes", "binary", "the record"),)
    outputs = (hpcprep.Column("line", "string", "one line of the record"),)

    def encode(self, batch):
        src, rid, lines = [], [], []
        for s, r, b in zip(batch["source"], batch["record_id"], batch["bytes"]):
            for i, line in enumerate(b.decode().splitlines()):
                src.append(s)
                rid.append(f"{r}/{i}")
                lines.append(line)
        return {
            "source": np.array(src, dtype=object),
            "record_id": np.array(rid, dtype=object),
            "line": np.array(lines, dtype=object),
        }


class NumbersParams(hpcprep.Params):
    items: int = Field(3, ge=1, description="input items")
    rows: int = Field(10_000, ge=1, description="rows per item")
    batch_rows: int = Field(2_000, ge=1, description="rows per batch the reader yields")


class Numbers(hpcprep.Reader):
    """Items of consecutive integers, several blocks each (many rows per read task)."""

    name = "test.numbers"
    Params = NumbersParams
    outputs = (hpcprep.Column("x", "int64", "the number"),)

    def plan(self):
        p = self.params
        return [hpcprep.InputItem(source=f"numbers://{i}", index=i, size=8 * p.rows) for i in range(p.items)]

    def read(self, item):
        p = self.params
        for lo in range(0, p.rows, p.batch_rows):
            x = np.arange(lo, min(lo + p.batch_rows, p.rows), dtype=np.int64) + item.index * p.rows
            yield {
                "source": np.array([item.source] * len(x), dtype=object),
                "record_id": np.array([f"{item.source}#{v}" for v in x], dtype=object),
                "x": x,
            }


class OddParams(hpcprep.Params):
    every: int = Field(997, ge=1, description="rows with x % every == 0 are bad records")


class Odd(hpcprep.Encoder):
    """x squared; every n-th x is a bad record."""

    name = "test.odd"
    Params = OddParams
    batch_size = 256  # a bad record costs its batch a row-by-row pass
    inputs = (hpcprep.Input("x", "int*", "the number"),)
    outputs = (hpcprep.Column("y", "int64", "x squared"),)

    def encode(self, batch):
        x = batch["x"]
        if np.any(x % self.params.every == 0):
            raise hpcprep.RecordError(f"x is a multiple of {self.params.every}")
        return {"y": x * x}


class SlowParams(hpcprep.Params):
    seconds: float = Field(0.1, ge=0, description="seconds per batch")


class Slow(hpcprep.Encoder):
    """Takes its time over every batch (a stand-in for a heavy kernel); y = x + 1."""

    name = "test.slow"
    Params = SlowParams
    inputs = (hpcprep.Input("x", "int*", "the number"),)
    outputs = (
        hpcprep.Column("y", "int64", "x plus one"),
        hpcprep.Column("vector", "fixed_size_list<float32>[2]", "(x, y)"),
    )
    batch_size = 500

    def encode(self, batch):
        time.sleep(self.params.seconds)
        y = batch["x"] + 1
        return {"y": y, "vector": np.stack([batch["x"], y], axis=1).astype(np.float32)}


class CrashParams(hpcprep.Params):
    at: int = Field(description="the worker holding the row with this x dies (SIGKILL)")
    marker: str = Field(description="a file made before the kill: only the first attempt dies")
    victim: Literal["worker", "books"] = Field(
        "worker", description="whose process dies: this worker's, or hpcprep's RunStats actor's"
    )


def _books_process() -> int:
    """The pid of the running run's RunStats actor: of the siblings under this worker's
    raylet whose title Ray set to ``ray::RunStats``, the youngest (an earlier run's actor
    on the same Ray may not be gone yet)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes()
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            ppid, started = int(fields[1]), int(fields[19])
        except (OSError, ValueError, IndexError):
            continue
        if title.startswith(b"ray::RunStats") and ppid == os.getppid():
            found.append((started, int(proc.name)))
    if not found:
        raise RuntimeError("no RunStats actor beside this worker")
    return max(found)[1]


class Crash(hpcprep.Encoder):
    """Kills its own worker process once, as a lost worker would (or the run's RunStats
    actor, with ``victim = "books"``); passes rows on unchanged."""

    name = "test.crash"
    Params = CrashParams
    inputs = (hpcprep.Input("x", "int*", "the number"),)
    outputs = ()

    def encode(self, batch):
        marker = Path(self.params.marker)
        if not marker.exists() and np.any(batch["x"] == self.params.at):
            pid = os.getpid() if self.params.victim == "worker" else _books_process()
            marker.write_text(str(pid))
            os.kill(pid, signal.SIGKILL)
        return {}


@hpcprep.hookimpl
def hpcprep_register_readers(register):
    register(Numbers)


@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    register(Odd)
    register(Slow)
    register(Crash)
    register(ByteCount)
    register(Variant)
    register(Embed)
    register(Windows)
