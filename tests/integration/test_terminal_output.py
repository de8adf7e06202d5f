"""What `hpcprep run` leaves on the terminal when its pipeline has actor pools: hpcprep's lines, not Ray's C++
log lines (they go to the run's ray.log, with the rest of Ray's)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from hpcprep.run_log import LOG_FILE

from tests.cfd.data import geometry

#: Ray's C++ log line: "[2026-12-05 04:50:22,886 E 28511 28511] core_worker.cc:2465: ...".
NATIVE_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [IWEF] \d+ \d+\] ", re.M)


def test_an_actor_pipeline_s_terminal_holds_no_native_ray_lines(tmp_path):
    (tmp_path / "spec.toml").write_text(
        f'[run]\noutput = "out"\n[reader]\nstage = "cfd.mesh"\npaths = ["{geometry("bullet.stl.gz")}"]\n'
        '[[encoders]]\nstage = "cfd.health"\n[[sinks]]\nstage = "parquet"\npath = "out/table"\n'
    )
    exe = str(Path(sys.executable).parent / "hpcprep")
    res = subprocess.run(
        [exe, "run", "spec.toml", "--keep-ray", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "[hpcprep] done: inputs 1 = outputs 1 + errors 0" in res.stderr
    assert not NATIVE_LINE.search(res.stderr + res.stdout), res.stderr
    # Ray Data's actor pool made the driver's C++ logger write its notice; it is in the run's log instead.
    logged = (tmp_path / "out" / LOG_FILE).read_text()
    assert "has constructor arguments in the object store" in logged
