"""``run.output`` and ``--overwrite``: hpcprep deletes only what it wrote, in a directory it marked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hpcprep
import pyarrow.parquet as pq
import pytest
from hpcprep.run_dir import RUN_MARKER, RunDirError, output_mode, prepare, record_created
from hpcprep.spec import SpecError

from .test_runner import make_files, spec_for


def project_folder(path):
    """The issue's case: somebody's project that happens to hold a manifest.json."""
    (path / "src").mkdir(parents=True)
    (path / "manifest.json").write_text('{"manifest_version": 3, "name": "my extension"}')
    (path / "important.txt").write_text("do not lose me")
    (path / "src" / "app.js").write_text("console.log('hi')")
    return path


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_overwrite_refuses_a_folder_hpcprep_did_not_mark(tmp_path):
    folder = project_folder(tmp_path / "project")
    before = listing(folder)
    with pytest.raises(RunDirError, match=f"no {RUN_MARKER}.*refusing to delete anything"):
        output_mode(folder, overwrite=True, resume=False)
    assert listing(folder) == before


def test_overwrite_through_the_cli_exits_nonzero_and_keeps_every_file(tmp_path):
    folder = project_folder(tmp_path / "project")
    before = listing(folder)
    data = make_files(tmp_path / "data", 2)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[run]\noutput = "{folder}"\n[reader]\nstage = "files"\npaths = ["{data}"]\n'
        f'[[sinks]]\nstage = "parquet"\npath = "{folder / "table"}"\n'
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "hpcprep"), "run", str(spec), "--overwrite", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "refusing to delete" in proc.stderr and "Traceback" not in proc.stderr
    assert listing(folder) == before
    assert (folder / "important.txt").read_text() == "do not lose me"


def test_a_marked_run_directory_with_a_users_file_is_refused_too(tmp_path):
    out = tmp_path / "out"
    prepare(out, output_mode(out, overwrite=False, resume=False))
    (out / "manifest.json").write_text("{}")
    (out / "my-notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"files hpcprep did not write \(my-notes.txt\)"):
        output_mode(out, overwrite=True, resume=False)
    assert (out / "my-notes.txt").exists()


def test_overwrite_clears_only_what_the_run_recorded(tmp_path):
    out = tmp_path / "out"
    prepare(out, "new")
    (out / "_state").mkdir()
    (out / "_state" / "plan.json").write_text("{}")
    (out / "tables" / "parquet").mkdir(parents=True)
    (out / "tables" / "parquet" / "part-0.parquet").write_bytes(b"x")
    record_created(out)
    assert json.loads((out / RUN_MARKER).read_text())["created"] == ["tables"]
    assert output_mode(out, overwrite=True, resume=False) == "overwrite"
    (out / "late.txt").write_text("arrived after the check")  # not ours: must survive
    prepare(out, "overwrite")
    assert sorted(p.name for p in out.iterdir()) == [RUN_MARKER, "late.txt"]
    assert json.loads((out / RUN_MARKER).read_text())["created"] == []


def test_dangling_symlink_and_file_are_clear_errors(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(RunDirError, match="symbolic link .* does not exist"):
        output_mode(link, overwrite=True, resume=False)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(RunDirError, match="is a file, not a directory"):
        output_mode(afile, overwrite=False, resume=False)


def test_unwritable_output_is_a_clear_error(tmp_path):
    with pytest.raises(RunDirError, match="/proc/hpcprep-test: cannot prepare it"):
        prepare(Path("/proc/hpcprep-test"), "new")


def test_overwrite_through_a_symlinked_run_directory(tmp_path, ray_local):
    data = make_files(tmp_path / "data", 3)
    real = tmp_path / "real-out"
    real.mkdir()
    link = tmp_path / "out"
    link.symlink_to(real, target_is_directory=True)
    spec = spec_for(tmp_path, data, [])
    first = hpcprep.run(spec, progress=False)
    assert first.counts["outputs"] == 3
    second = hpcprep.run(spec, progress=False, overwrite=True)
    assert second.counts == first.counts
    assert link.is_symlink() and (real / RUN_MARKER).exists()
    assert pq.read_table(real / "table").num_rows == 3
    # The sink's directory is this run's own: a third run may overwrite it again.
    assert "table" in json.loads((real / RUN_MARKER).read_text())["created"]


def test_a_run_refused_by_placement_leaves_no_directory(tmp_path, ray_local):
    data = make_files(tmp_path / "data", 2)
    spec = spec_for(tmp_path, data, [{"stage": "test.count", "placement": {"num_gpus": 1}}])
    from . import sample_plugin

    with pytest.raises(SpecError, match="the cluster has no GPU"):
        hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    assert not (tmp_path / "out").exists()


def test_a_sink_path_holding_someone_elses_files_is_refused_even_with_overwrite(tmp_path):
    import pyarrow.fs as pafs
    from hpcprep.stages import SinkContext
    from hpcprep.storage import claim_sink_dir

    target = project_folder(tmp_path / "table")
    before = listing(target)
    ctx = SinkContext(run_dir=str(tmp_path / "out"), run_name="t", mode="overwrite")
    with pytest.raises(FileExistsError, match="not empty and was not written by hpcprep"):
        claim_sink_dir(pafs.LocalFileSystem(), str(target), ctx, "parquet sink")
    assert listing(target) == before
