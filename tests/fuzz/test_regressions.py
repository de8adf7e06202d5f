"""Every seed and every crash the fuzzer saved, replayed through the fuzz property (without atheris).

A file under ``tests/fuzz/crashes/<target>/`` is an input that once broke the property;
it fails here until the reader it names is fixed, and guards the fix afterwards. The
seeds are real files (``make_seeds.py``), so this also runs each reader over real data of
every encoding it supports. Each input has a time limit: a hang is a failure too.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tests.fuzz import checks
from tests.fuzz.checks import Violation, time_limit
from tests.fuzz.targets import TARGETS, unpack_case

HERE = Path(__file__).parent
#: Seconds one replayed input may take. Generous: the first input of a target also loads
#: (or compiles) its Numba kernels on a busy machine.
INPUT_LIMIT_S = 120


def inputs(kind: str) -> list[tuple[str, Path]]:
    found = []
    for target in TARGETS:
        folder = HERE / kind / target
        if folder.is_dir():
            found += [
                (target, p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith((".", "README"))
            ]
    return found


SEEDS = inputs("seeds")
CRASHES = inputs("crashes")


def replay(target: str, path: Path):
    with time_limit(INPUT_LIMIT_S, f"{target}: {path.name}"):
        return TARGETS[target].run(path.read_bytes())


#: Seeds and crashes in one list, so the test never runs on an empty set (no crash saved yet).
REPLAYED = [("seed", t, p) for t, p in SEEDS] + [("crash", t, p) for t, p in CRASHES]


@pytest.mark.parametrize(("kind", "target", "path"), REPLAYED, ids=[f"{k}:{t}/{p.name}" for k, t, p in REPLAYED])
def test_input_keeps_the_property(kind, target, path):
    replay(target, path)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_has_seeds_that_read(target):
    # A harness that builds the reader wrongly sees only errors; real files must give rows.
    seeds = [p for t, p in SEEDS if t == target]
    assert seeds, f"no seeds in tests/fuzz/seeds/{target}: run tests/fuzz/make_seeds.py"
    rows = sum(replay(target, p).rows for p in seeds[:3])
    assert rows > 0, f"the first seeds of {target} gave no rows"


def test_a_broken_input_is_a_failed_item_not_a_crash():
    # The property's other half: what the reader refuses is counted, not raised.
    outcome = TARGETS["stl"].run(b"solid x\n facet normal 0 0 0\n outer loop\n vertex 1 2\n")
    assert outcome.rows == 0 and outcome.failed_items + outcome.error_records > 0


def test_the_checks_can_fail():
    # A NaN nobody wrote, a batch with ragged columns, a NaN in a column the reader must
    # keep finite: each must be caught, or the fuzzer could never report anything.
    nan_batch = {
        "source": np.array(["a"], dtype=object),
        "record_id": np.array(["a:0"], dtype=object),
        "x": np.array([1.0]),
        "v": np.array([np.array([0.0, np.nan])], dtype=object),
    }
    found = list(checks.nonfinite_values(nan_batch))
    assert [(f.column, f.row) for f in found] == [("v", 0)]
    assert not checks.never(nan_batch, found[0], True)
    assert checks.spelled_only(nan_batch, found[0], checks.spells_nonfinite(b"vertex NaN 0 0"))
    assert not checks.spelled_only(nan_batch, found[0], checks.spells_nonfinite(b"vertex 1 0 0"))
    assert checks.spells_nonfinite(gzip.compress(b"x 1e999"))
    with pytest.raises(Violation):
        checks.check_batch({"source": ["a", "b"], "record_id": ["a:0"]}, "test")
    with pytest.raises(Violation):
        checks.check_batch({"record_id": ["a:0"]}, "test")


def test_a_packed_case_cannot_write_outside_its_directory(tmp_path):
    root = tmp_path / "case"
    root.mkdir()
    data = (
        b"%%FILE ../escape\nx\n%%FILE /etc/evil\nx\n%%FILE constant/polyMesh/points\n3\n(\n)\n"
        b"%%FILE a/b/c/d/e\nx\n%%FILE 0/T\nT"
    )
    assert unpack_case(data, root) == ["constant/polyMesh/points", "0/T"]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "case/0/T",
        "case/constant/polyMesh/points",
    ]
