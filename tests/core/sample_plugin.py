"""A small in-process plugin the core tests run pipelines with."""

from __future__ import annotations

import time

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
    outputs = (hpcprep.Column("vector", "fixed_size_list<float32>[4]", "toy embedding"),)

    def setup(self):
        self.weights = np.arange(1, 5, dtype=np.float32)

    def notes(self):
        return ["toy weights, not trained"]

    def encode(self, batch):
        vecs = np.stack([self.weights * len(b) for b in batch["bytes"]]) if len(batch["bytes"]) else np.zeros((0, 4), np.float32)
        return {"vector": vecs.astype(np.float32)}


class Windows(hpcprep.Encoder):
    """Splits each record into lines: one output row per line (fan-out)."""

    name = "test.lines"
    fanout = True
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


@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    register(ByteCount)
    register(Variant)
    register(Embed)
    register(Windows)
