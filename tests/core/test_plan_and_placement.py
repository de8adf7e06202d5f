"""Placement decisions (default policy, plugin policies, spec overrides) and `hpcprep plan`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import hpcprep
from click.testing import CliRunner
from hpcprep.cli import cli
from hpcprep.placement import ClusterInfo, decide_placements
from hpcprep.plugins import PluginRegistry
from hpcprep.spec import resolve

from . import sample_plugin

SPEC = """
[run]
output = "{out}"
[reader]
stage = "files"
paths = ["{data}"]
[[encoders]]
stage = "test.count"
k = 3
[[encoders]]
stage = "test.embed"
[[encoders]]
stage = "test.variant"
[encoders.placement]
batch_size = 7
[[sinks]]
stage = "parquet"
path = "{out}/table"
"""


def write_spec(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("abc")
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.format(out=tmp_path / "out", data=data))
    return path


def registry(*extra):
    return PluginRegistry(extra_plugins=[sample_plugin, *extra], load_entry_points=False)


def test_default_policy_by_stage_and_cluster(tmp_path):
    reg = registry()
    resolved = resolve(write_spec(tmp_path), reg)
    cpu_only = decide_placements(resolved, reg, ClusterInfo(cpus=8))
    count, embed, variant = cpu_only
    assert (count.compute, count.variant, count.num_gpus) == ("tasks", "cpu", 0)
    assert "stateless" in count.reason
    assert (embed.compute, embed.concurrency) == ("actors", 8) and "needs setup" in embed.reason
    assert (variant.variant, variant.num_gpus) == ("cpu", 0) and "no GPU" in variant.reason
    assert variant.batch_size == 7 and "overridden by spec: batch_size=7" in variant.reason

    with_gpus = decide_placements(resolved, reg, ClusterInfo(cpus=8, gpus=2))
    v = with_gpus[2]
    assert (v.compute, v.variant, v.num_gpus, v.concurrency) == ("actors", "cuda", 1.0, 2)
    assert "2 GPU(s)" in v.reason
    assert with_gpus[0].variant == "cpu", "a stage without a CUDA variant stays on CPU"


def test_plugin_policy_answers_before_the_default(tmp_path):
    class Policy:
        @hpcprep.hookimpl
        def hpcprep_place(self, stage, cluster):
            if stage.name == "test.count":
                return hpcprep.Placement(
                    compute="tasks",
                    num_cpus=0.5,
                    batch_size=99,
                    reason="half a CPU is enough",
                    decided_by="site policy",
                )
            return None

    reg = registry(Policy())
    resolved = resolve(write_spec(tmp_path), reg, ["encoders.0.placement.num_cpus=2"])
    count, embed, _ = decide_placements(resolved, reg, ClusterInfo(cpus=4))
    assert count.decided_by == "site policy" and count.batch_size == 99
    assert count.num_cpus == 2 and "overridden by spec: num_cpus=2" in count.reason
    assert embed.decided_by == "hpcprep (default policy)"


def test_plan_in_all_formats(tmp_path):
    spec = write_spec(tmp_path)
    reg = registry()
    runner = CliRunner()
    text = runner.invoke(cli, ["plan", str(spec)], obj={"registry": reg})
    assert text.exit_code == 0, text.output
    assert "2. encoders[0]: test.count (encoder) from tests.core.sample_plugin 0" in text.output
    assert "k = 3" in text.output
    assert "placement: tasks, num_cpus=1" in text.output and "why: stateless CPU stage" in text.output
    assert "4. encoders[2]: test.variant" in text.output and "batch_size=7" in text.output
    assert "reads bytes (binary) from reader (files) as binary" in text.output

    js = runner.invoke(cli, ["plan", str(spec), "--format", "json"], obj={"registry": reg})
    plan = json.loads(js.output)
    assert [s["stage"] for s in plan["stages"]] == ["files", "test.count", "test.embed", "test.variant", "parquet"]
    assert plan["stages"][0]["plugin"] == "hpcprep" and plan["stages"][0]["version"] == hpcprep.__version__
    assert plan["stages"][2]["placement"]["compute"] == "actors"
    assert plan["stages"][1]["params"]["k"] == 3
    assert plan["inputs"]["count"] == 1
    # each stage's declared inputs, with the stage that makes them
    assert plan["stages"][1]["inputs"] == [{"column": "bytes", "types": "binary", "from": "reader (files) as binary"}]
    assert plan["stages"][0]["inputs"] == []
    # count (tasks), embed (actors) and variant (tasks) are consecutive CPU stages: one actor pool.
    assert [p["encoders"] for p in plan["pools"]] == [["encoders[0]", "encoders[1]", "encoders[2]"]]
    assert plan["pools"][0]["placement"]["compute"] == "actors"
    assert "encoders[0] -> encoders[1] -> encoders[2]: 2 actors" in text.output

    mm = runner.invoke(cli, ["plan", str(spec), "--format", "mermaid"], obj={"registry": reg})
    lines = mm.output.splitlines()
    assert lines[0] == "flowchart LR"
    assert "s0 --> s1" in mm.output and "s3 --> s4" in mm.output
    assert any("test.embed" in ln and "actors" in ln for ln in lines)


def test_plan_reports_spec_errors(tmp_path):
    spec = write_spec(tmp_path)
    result = CliRunner().invoke(cli, ["plan", str(spec), "--set", "encoders.0.k=-1"], obj={"registry": registry()})
    assert result.exit_code == 2
    assert "encoders[0] (test.count): parameter 'k'" in result.output


def test_describe_prints_parameters_and_outputs():
    result = CliRunner().invoke(cli, ["describe", "test.count"], obj={"registry": registry()})
    assert result.exit_code == 0
    assert "k: int (default 1)  multiplier for the count" in result.output
    assert "n: int64  bytes in the record times k" in result.output
    both = CliRunner().invoke(cli, ["describe", "parquet", "--json"], obj={"registry": registry()})
    kinds = sorted(d["kind"] for d in json.loads(both.output))
    assert kinds == ["reader", "sink"]
    missing = CliRunner().invoke(cli, ["describe", "test.cont"], obj={"registry": registry()})
    assert missing.exit_code == 2 and "did you mean 'test.count'" in missing.output


GPU_SCRIPT = """
import sys, json
sys.path.insert(0, {root!r})
import ray, hpcprep, pyarrow.parquet as pq
from tests.core import sample_plugin
ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)  # logical GPU
r = hpcprep.run({spec!r}, plugins=[sample_plugin], progress=False)
print(json.dumps({{"variants": sorted(set(pq.read_table({table!r}).column("variant").to_pylist())),
                  "placement": r.manifest["stages"][1]["placement"]}}))
"""


def test_cuda_variant_runs_on_logical_gpus(tmp_path):
    """Ray's logical GPU resources exercise the GPU path on a machine without one."""
    import os
    from pathlib import Path

    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        (data / f"{i}.txt").write_text(str(i))
    spec = {
        "run": {"output": str(tmp_path / "out")},
        "reader": {"stage": "files", "paths": [str(data)]},
        "encoders": [{"stage": "test.variant"}],
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "out" / "t")}],
    }
    root = str(Path(__file__).resolve().parents[2])
    script = GPU_SCRIPT.format(root=root, spec=spec, table=str(tmp_path / "out" / "t"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["variants"] == ["cuda"]
    assert out["placement"]["num_gpus"] == 1.0 and out["placement"]["compute"] == "actors"


def test_consecutive_cpu_stages_share_one_pool():
    from hpcprep.placement import Placement, fuse_cpu_runs

    task = Placement(compute="tasks", num_cpus=1.0)
    actor = Placement(compute="actors", num_cpus=1.0, concurrency=2)
    gpu = Placement(compute="actors", num_gpus=1.0, concurrency=1, coalesce=True, variant="cuda")
    big = Placement(compute="tasks", num_cpus=2.0, concurrency=3)
    segments = fuse_cpu_runs([task, actor, gpu, big, task])
    assert [idx for idx, _ in segments] == [[0, 1], [2], [3, 4]]
    first, second, third = (pool for _, pool in segments)
    assert (first.compute, first.num_cpus, first.concurrency) == ("actors", 1.0, 2)
    assert second is gpu
    assert (third.compute, third.num_cpus, third.concurrency) == ("tasks", 2.0, 3)
    assert fuse_cpu_runs([]) == []


def test_switching_actors_to_tasks_drops_the_actor_count():
    from hpcprep.placement import Placement, PlacementOverride, apply_override

    actors = Placement(compute="actors", concurrency=2, reason="default")
    stage = type("S", (), {"variants": ("cpu",)})
    tasks = apply_override(actors, PlacementOverride(compute="tasks"), stage)
    assert (tasks.compute, tasks.concurrency) == ("tasks", None)
    capped = apply_override(actors, PlacementOverride(compute="tasks", concurrency=3), stage)
    assert capped.concurrency == 3


def test_kernel_stages_share_a_gpu_and_get_gpu_sized_batches():
    """A stage that declares ``gpu_share`` gets ``1 / share`` actors per GPU (never so many that no CPU
    is left for the reads), its ``gpu_batch_size``, and the reason says so; forcing either variant works."""
    from hpcprep.placement import DefaultPlacementPolicy, PlacementOverride, apply_override

    class Kernel(hpcprep.Encoder):
        name = "test.kernel"
        variants = ("cpu", "cuda")
        gpu_share = 0.25
        batch_size = 512
        gpu_batch_size = 8192

    policy = DefaultPlacementPolicy()
    big = policy.hpcprep_place(Kernel, ClusterInfo(cpus=32, gpus=2))
    assert (big.variant, big.compute, big.num_gpus, big.concurrency, big.batch_size) == (
        "cuda",
        "actors",
        0.25,
        8,
        8192,
    )
    assert big.coalesce and "8 actor(s) of 0.25 GPU each (4 can share a GPU)" in big.reason

    small = policy.hpcprep_place(Kernel, ClusterInfo(cpus=3, gpus=1))
    assert (small.variant, small.num_gpus, small.concurrency) == ("cuda", 0.25, 2)
    assert "4 would fit the GPUs but the cluster's 3 CPUs leave room for 2" in small.reason

    cpu = policy.hpcprep_place(Kernel, ClusterInfo(cpus=4))
    assert (cpu.variant, cpu.num_gpus, cpu.batch_size) == ("cpu", 0.0, 512) and "no GPU" in cpu.reason

    forced_cpu = apply_override(big, PlacementOverride(variant="cpu"), Kernel)
    assert (forced_cpu.variant, forced_cpu.num_gpus) == ("cpu", 0.0), "the CPU variant holds no GPU"
    forced_cuda = apply_override(cpu, PlacementOverride(variant="cuda"), Kernel)
    assert (forced_cuda.variant, forced_cuda.num_gpus) == ("cuda", 0.25)
    assert "overridden by spec: variant=cuda, num_gpus=0.25" in forced_cuda.reason
