"""A CUDA-capable stage on a cluster with GPUs: `hpcprep plan` places it on GPU actors that share
a GPU, `hpcprep run` runs its CUDA variant there (Ray's logical GPUs, the kernels on Numba's CUDA
simulator: no device needed) streaming with the CPU reader and sink, with the same output as its
CPU variant; without GPUs the same spec runs on CPUs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import require_cuda
from tests.genomics.genome_data import lambda_genome, read_fasta

from .ray_nodes import RayNodes

require_cuda()
HPCPREP = str(Path(sys.executable).with_name("hpcprep"))

SPEC = """
[run]
output = "{out}"
[reader]
stage = "genomics.fasta"
paths = ["{fasta}"]
window = 500
[[encoders]]
stage = "genomics.kmer_counts"
k = 4
{placement}
[[sinks]]
stage = "parquet"
path = "{out}/table"
"""


@pytest.fixture
def gpu_cluster():
    cluster = RayNodes()
    try:
        cluster.start_head(cpus=2, gpus=1)
        yield cluster
    finally:
        cluster.stop()


def write_spec(tmp_path: Path, fasta: Path, name: str, placement: str = "") -> Path:
    spec = tmp_path / f"{name}.toml"
    spec.write_text(SPEC.format(out=tmp_path / name, fasta=fasta, placement=placement))
    return spec


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([HPCPREP, *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def kmer_placement(plan_json: str) -> dict:
    stages = json.loads(plan_json)["stages"]
    return next(s for s in stages if s["stage"] == "genomics.kmer_counts")["placement"]


def test_kmer_counts_runs_on_shared_gpus_and_matches_cpu(tmp_path, gpu_cluster):
    # 6 kb of the lambda phage genome: twelve 500-base windows (the simulator runs a GPU thread per base)
    name, seq = read_fasta(lambda_genome())[0]
    fasta = tmp_path / "lambda.fa"
    fasta.write_text(f">{name}\n{seq[:6000].decode()}\n")
    env = gpu_cluster.env

    on_gpu = write_spec(tmp_path, fasta, "gpu")
    planned = kmer_placement(
        run(["plan", str(on_gpu), "--format", "json", "--address", gpu_cluster.address], env).stdout
    )
    assert (planned["variant"], planned["compute"], planned["num_gpus"]) == ("cuda", "actors", 0.25)
    assert "CUDA variant" in planned["reason"] and "1 GPU(s)" in planned["reason"]

    run(["run", str(on_gpu), "--address", gpu_cluster.address], env)
    manifest = json.loads((tmp_path / "gpu" / "manifest.json").read_text())
    ran = next(s for s in manifest["stages"] if s.get("stage") == "genomics.kmer_counts")["placement"]
    assert (ran["variant"], ran["num_gpus"]) == ("cuda", 0.25)

    forced = write_spec(tmp_path, fasta, "cpu", '[encoders.placement]\nvariant = "cpu"')
    run(["run", str(forced), "--address", gpu_cluster.address], env)
    cpu_manifest = json.loads((tmp_path / "cpu" / "manifest.json").read_text())
    cpu_ran = next(s for s in cpu_manifest["stages"] if s.get("stage") == "genomics.kmer_counts")["placement"]
    assert (cpu_ran["variant"], cpu_ran["num_gpus"]) == ("cpu", 0.0)

    gpu_rows = pq.read_table(tmp_path / "gpu" / "table").sort_by("record_id")
    cpu_rows = pq.read_table(tmp_path / "cpu" / "table").sort_by("record_id")
    assert gpu_rows.num_rows == cpu_rows.num_rows == 12
    assert gpu_rows.column("kmer_counts").equals(cpu_rows.column("kmer_counts"))
    assert sum(sum(row) for row in gpu_rows.column("kmer_counts").to_pylist()) > 0


def test_without_gpus_the_same_spec_plans_on_cpus(tmp_path):
    fasta = tmp_path / "x.fa"
    fasta.write_text(">x\nACGT\n")
    spec = write_spec(tmp_path, fasta, "local")
    placed = kmer_placement(run(["plan", str(spec), "--format", "json"], {**__import__("os").environ}).stdout)
    assert (placed["variant"], placed["num_gpus"]) == ("cpu", 0.0)
    assert "has a CUDA variant but the cluster has no GPU" in placed["reason"]
