"""Live progress lines of ``hpcprep run`` on a terminal: the frame, the redraw, a real run."""

from __future__ import annotations

import io
import json
import re
import threading

import hpcprep
from hpcprep import progress
from hpcprep.progress import LiveProgress, frame, wanted
from hpcprep.stages import InputItem

from . import sample_plugin

UP = re.compile(r"\x1b\[(\d+)F\x1b\[J")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def screen(text: str) -> list[str]:
    """What a terminal shows after ``text``: each cursor-up-and-clear erases the lines above."""
    lines: list[str] = []
    pos = 0
    for m in UP.finditer(text):
        lines += text[pos : m.start()].splitlines()
        del lines[len(lines) - int(m.group(1)) :]
        pos = m.end()
    return lines + text[pos:].splitlines()


def test_the_frame_gives_share_eta_and_each_stage_in_order():
    stages = {
        "sinks": {"rows_in": 7},
        "encoders[10]:late.one": {"rows_in": 300, "rows_out": 290, "errors": 10},
        "encoders[2]:mid.one": {"rows_in": 400, "rows_out": 300, "errors": 100},
        "reader:my.reader": {"items": 3, "bytes": 123, "rows_out": 500, "errors": 2},
    }
    lines = frame(stages, 0.25, 2_500_000, 10.0)
    # a quarter read in 10 s: three quarters left take 30 s
    assert lines[0] == "25% of 2.50 MB read, 0:10 elapsed, ETA 0:30"
    assert [ln.split()[0] for ln in lines[1:]] == ["my.reader", "mid.one", "late.one"]  # no sinks line
    assert lines[1].split()[1:] == ["(reader)", "500", "rows", "50", "rows/s", "2", "errors"]
    assert lines[2].split()[1:] == ["300", "rows", "30", "rows/s", "100", "errors"]
    assert frame({}, 0.0, 0, 3.0)[0] == "0% of 0 B read, 0:03 elapsed, ETA --"
    assert frame({}, 1.0, 5e9, 3725.0)[0] == "100% of 5.00 GB read, 1:02:05 elapsed"


def test_live_lines_only_on_a_terminal_and_not_quiet_or_verbose(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    assert wanted(Terminal(), True, False)
    assert not wanted(io.StringIO(), True, False)  # a batch job's log
    assert not wanted(Terminal(), False, False)  # --quiet
    assert not wanted(Terminal(), True, True)  # --verbose: Ray's lines would tear the block
    monkeypatch.setenv("TERM", "dumb")
    assert not wanted(Terminal(), True, False)


def test_the_block_is_redrawn_under_messages_and_left_when_done(monkeypatch):
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.01)
    items = [InputItem(f"f{i}", i, size=1000) for i in range(4)]
    term = Terminal()
    live = LiveProgress(term, True, items)
    polled = threading.Event()
    books = {"reader:r.x": {"items": 1, "bytes": 1000, "rows_out": 10, "errors": 0}}

    def peek():
        polled.set()
        return books

    live.say("starting")
    live.group_started(peek)
    assert polled.wait(5)
    live.group_done({"reader:r.x": {"items": 4, "bytes": 4000, "rows_out": 40, "errors": 1}})
    live.say("group 1 committed")
    live.close()
    shown = screen(term.getvalue())
    assert shown[:2] == ["[hpcprep] starting", "[hpcprep] group 1 committed"]
    assert shown[2].startswith("[hpcprep] 100% of 4.00 kB read")
    assert shown[3].split()[1:4] == ["r.x", "(reader)", "40"] and shown[3].endswith("1 errors")
    assert len(shown) == 4  # every earlier block was erased
    # while the group ran, the block said a quarter was read (one input of four)
    assert "[hpcprep] 25% of 4.00 kB read" in term.getvalue()


def test_quiet_prints_nothing():
    term = Terminal()
    live = LiveProgress(term, True, [], quiet=True)
    live.say("hello")
    live.group_started(lambda: {})
    live.group_done({"reader:r.x": {"rows_out": 1}})
    live.close()
    assert term.getvalue() == ""


def test_a_real_run_shows_its_books_as_the_manifest_has_them(tmp_path, ray_local, monkeypatch):
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.05)
    monkeypatch.setenv("TERM", "xterm")
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    out = tmp_path / "run"
    spec = {
        "run": {"output": str(out)},
        "reader": {"stage": "test.numbers", "items": 6, "rows": 500, "batch_rows": 250},
        "encoders": [{"stage": "test.odd", "every": 331}, {"stage": "test.slow", "seconds": 0.2}],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }
    result = hpcprep.run(spec, plugins=[sample_plugin])
    manifest = json.loads((out / "manifest.json").read_text())
    shown = [ln.removeprefix("[hpcprep] ") for ln in screen(term.getvalue())]
    head = next(i for i, ln in enumerate(shown) if ln.startswith("100% of"))
    assert shown[head].startswith(f"100% of {6 * 500 * 8 / 1000:.2f} kB read")
    block = {ln.split()[0]: ln.split() for ln in shown[head + 1 : head + 4]}
    by_stage = {s["stage"]: s for s in manifest["stages"]}
    for name in ("test.numbers", "test.odd", "test.slow"):
        words = block[name]
        rows = int(words[words.index("rows") - 1].replace(",", ""))
        errors = int(words[words.index("errors") - 1].replace(",", ""))
        assert (rows, errors) == (by_stage[name]["rows_out"], by_stage[name]["errors"]), name
    assert by_stage["test.odd"]["errors"] > 0 and result.counts["balanced"]
    assert any(ln.startswith("done: inputs") for ln in shown[head + 4 :])


def test_no_block_before_there_are_books():
    term = Terminal()
    live = LiveProgress(term, True, [InputItem("f", 0, size=10)])
    live.say("planned")
    live.group_done(None)  # a group that committed nothing
    live.close()
    assert term.getvalue() == "[hpcprep] planned\n"
