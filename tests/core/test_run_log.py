"""Ray's log lines go to RUN_DIR/_logs/ray.log, not onto the terminal (unless --verbose)."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from pathlib import Path

from hpcprep.run_log import LOG_FILE, RayLog

#: A line in Ray's log format: "2026-12-04 22:42:32,111\tINFO worker.py:1841 -- ...".
RAY_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(DEBUG|INFO|WARNING)\b", re.M)


def test_lines_are_held_until_the_run_directory_exists_then_written_there(tmp_path):
    logger = logging.getLogger("ray")
    console_text = io.StringIO()
    console = logging.StreamHandler(console_text)
    logger.addHandler(console)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        log = RayLog(verbose=False)
        log.start()
        logger.info("connecting")  # before the run directory may be touched
        assert not (tmp_path / LOG_FILE).exists()
        log.open(tmp_path)
        logger.warning("object store nearly full")
        logger.error("a task failed")
        logging.getLogger("ray.data.some.module").info("execution plan")
        log.close()
        written = (tmp_path / LOG_FILE).read_text()
        for line in ("connecting", "object store nearly full", "a task failed", "execution plan"):
            assert line in written
        assert console_text.getvalue() == "a task failed\n"  # errors only, on the terminal
        assert console.level == logging.NOTSET and log._target not in logger.handlers  # put back
        logger.info("after the run")
        assert "after the run" not in (tmp_path / LOG_FILE).read_text()

        verbose = RayLog(verbose=True)
        verbose.start()
        logger.info("shown")
        verbose.close()
        assert "shown" in console_text.getvalue()
    finally:
        logger.removeHandler(console)
        logger.setLevel(old_level)


def hpcprep(*args, cwd):
    script = Path(sys.executable).parent / "hpcprep"
    return subprocess.run([str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_run_shows_hpcprep_lines_and_writes_rays_to_its_directory(tmp_path):
    (tmp_path / "data").mkdir()
    for i in range(3):
        (tmp_path / "data" / f"f{i}.txt").write_text("x" * (i + 1))
    (tmp_path / "spec.toml").write_text(
        '[run]\noutput = "out"\n[reader]\nstage = "files"\npaths = ["data"]\n'
        '[[sinks]]\nstage = "parquet"\npath = "out/table"\n'
    )
    quiet = hpcprep("run", "spec.toml", "--keep-ray", "0", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "[hpcprep] done: inputs 3 = outputs 3 + errors 0" in quiet.stderr
    assert not RAY_LINE.search(quiet.stderr + quiet.stdout), quiet.stderr
    written = (tmp_path / "out" / LOG_FILE).read_text()
    assert "Execution plan of Dataset" in written and "Started a local Ray instance" in written

    shown = hpcprep("run", "spec.toml", "--keep-ray", "0", "--overwrite", "--verbose", "--quiet", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert RAY_LINE.search(shown.stderr) and "Execution plan of Dataset" in shown.stderr
    assert "[hpcprep]" not in shown.stderr  # --quiet: no progress lines of ours


def test_native_log_lines_go_to_the_file_and_everything_else_to_the_terminal(tmp_path, capfd):
    import os

    from hpcprep.run_log import NativeStderr

    handler = logging.FileHandler(tmp_path / "ray.log", encoding="utf-8")
    native = NativeStderr(handler)
    native.start()
    try:
        # Ray logs this notice at ERROR (E); it is not an error of the run.
        notice = b"Actor X has constructor arguments in the object store and max_restarts > 0.\n"
        os.write(2, b"[2026-12-05 03:37:33,123 E 4242 4343] core_worker.cc:1: " + notice)
        os.write(2, b"[2026-12-05 03:37:33,123 W 4242 4343] core_worker.cc:1: a warning\n")
        os.write(2, b"[2026-12-05 03:37:33,124 I 4242 4343] core_worker.cc:2: an info line")
        os.write(2, b" written in two parts\n[2026-12-05 03:37:33,125 E 4242 4343] core_worker.cc:3: an error\n")
        os.write(2, b"a line of something else\nprompt> ")
        print("hpcprep's own line", file=sys.stderr)
    finally:
        native.stop()
    handler.close()
    err = capfd.readouterr().err
    logged = (tmp_path / "ray.log").read_text()
    assert "constructor arguments" in logged and "an info line written in two parts" in logged
    assert "a warning" in logged
    assert "constructor arguments" not in err and "an info line" not in err and "a warning" not in err
    assert "core_worker.cc:3: an error" in err and "an error" not in logged  # errors stay on the terminal
    assert "a line of something else\nprompt> " in err and "hpcprep's own line" in err
    os.write(2, b"after stop\n")  # descriptor 2 is the terminal again
    assert capfd.readouterr().err == "after stop\n"
