"""Specs that cannot run are refused before Ray starts, with a message naming the place."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hpcprep.plugins import PluginRegistry
from hpcprep.spec import SpecError, resolve

from . import sample_plugin


@pytest.fixture(scope="module")
def registry():
    return PluginRegistry(extra_plugins=[sample_plugin], load_entry_points=False)


@pytest.fixture
def good(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello\n")
    return {
        "run": {"output": str(tmp_path / "out")},
        "reader": {"stage": "files", "paths": [str(data)]},
        "encoders": [{"stage": "test.count", "k": 2}],
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "out" / "table")}],
    }


def problems_of(spec, registry, overrides=None) -> list[str]:
    with pytest.raises(SpecError) as info:
        resolve(spec, registry, overrides)
    return info.value.problems


def test_good_spec_resolves_with_defaults(good, registry):
    r = resolve(good, registry)
    assert [cs.name for cs in r.stages()] == ["files", "test.count", "parquet"]
    d = r.to_dict()
    assert d["encoders"][0] == {"stage": "test.count", "poison": "POISON", "k": 2, "sleep": 0.0}
    assert d["sinks"][0]["row_group_size"] == 65536
    assert len(r.inputs) == 1 and r.inputs[0].size == 6


def _mutate(good, fn):
    spec = copy.deepcopy(good)
    fn(spec)
    return spec


INVALID = [
    # (id, mutation, expected fragments of one problem)
    (
        "unknown-stage-close-match",
        lambda s: s["encoders"][0].update(stage="test.cont"),
        ["encoders[0]", "unknown encoder 'test.cont'", "did you mean 'test.count'"],
    ),
    (
        "stage-of-a-plugin-not-installed",
        lambda s: s["encoders"][0].update(stage="bytes.byte_histogram"),
        ["unknown encoder 'bytes.byte_histogram'; known encoders: ", "no installed plugin has stages named bytes.*"],
    ),
    (
        "unknown-parameter",
        lambda s: s["encoders"][0].update(kk=3),
        ["encoders[0] (test.count)", "unknown parameter 'kk'"],
    ),
    (
        "mistyped-parameter",
        lambda s: s["encoders"][0].update(k="five"),
        # no "write it without quotes": five without quotes is no number either
        ["encoders[0] (test.count): parameter 'k': expects an integer, got text (got 'five')"],
    ),
    (
        "number-in-quotes-is-not-converted",
        lambda s: s["encoders"][0].update(k="5"),
        ["parameter 'k': expects an integer, got text (write it without quotes) (got '5')"],
    ),
    ("flag-for-a-number", lambda s: s["encoders"][0].update(k=True), ["parameter 'k': expects an integer, got a flag"]),
    (
        "run-key-in-quotes",
        lambda s: s["run"].update(commit_seconds="60"),
        ["run: key 'commit_seconds': expects a number, got text"],
    ),
    (
        "misspelt-parameter-gets-a-suggestion",
        lambda s: s["encoders"][0].update(poisn="X"),
        ["encoders[0] (test.count): unknown parameter 'poisn'; did you mean 'poison'?"],
    ),
    (
        "three-missing-paths-all-named",
        lambda s: s["reader"].update(paths=["/no/a", "/no/b*", "/no/c"]),
        ["reader (files)", "nothing matches '/no/a', '/no/b*', '/no/c'"],
    ),
    ("out-of-range-parameter", lambda s: s["encoders"][0].update(k=0), ["parameter 'k'", "greater than or equal to 1"]),
    (
        "missing-inputs",
        lambda s: s["reader"].update(paths=["/nonexistent/dir/*.fa"]),
        ["reader (files)", "nothing matches '/nonexistent/dir/*.fa'"],
    ),
    (
        "output-under-proc",
        lambda s: s["run"].update(output="/proc/sys/hpcprep-out"),
        ["run.output", "/proc/sys/hpcprep-out is under /proc, the kernel's own files"],
    ),
    ("output-under-sys", lambda s: s["run"].update(output="/sys/hpcprep-out"), ["run.output", "is under /sys"]),
    (
        "output-under-a-file",
        lambda s: s["run"].update(output="/etc/hostname/out"),
        ["run.output", "/etc/hostname is a file"],
    ),
    ("missing-output", lambda s: s["run"].pop("output"), ["run", "'output' is required"]),
    ("unknown-run-key", lambda s: s["run"].update(ouptut="x"), ["run", "unknown key 'ouptut'"]),
    (
        "unknown-top-level-table",
        lambda s: s.update(encoder=[]),
        ["unknown top-level table [encoder]", "did you mean 'encoders'"],
    ),
    (
        "wrong-kind",
        lambda s: s["reader"].update(stage="lancedb"),
        ["reader", "stage 'lancedb' is a sink, not a reader"],
    ),
    ("no-sinks", lambda s: s.pop("sinks"), ["no [[sinks]]"]),
    ("missing-stage-key", lambda s: s["encoders"][0].pop("stage"), ["encoders[0]", "missing 'stage'"]),
    (
        "bad-placement-field",
        lambda s: s["encoders"][0].update(placement={"num_gpu": 1}),
        ["encoders[0] (test.count)", "placement field 'num_gpu'"],
    ),
    (
        "unsupported-variant",
        lambda s: s["encoders"][0].update(placement={"variant": "cuda"}),
        ["encoders[0] (test.count)", "variant 'cuda' is not one of ['cpu']"],
    ),
    (
        "sink-path-not-writable",
        lambda s: s["sinks"][0].update(path="/proc/sys/table"),
        ["sinks[0] (parquet)", "path:", "under /proc"],
    ),
    (
        "placement-on-sink",
        lambda s: s["sinks"][0].update(placement={"num_cpus": 2}),
        ["sinks[0] (parquet)", "'placement' applies to encoders only"],
    ),
]


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_is_refused_with_a_clear_message(case, good, registry):
    _, mutate, fragments = case
    problems = problems_of(_mutate(good, mutate), registry)
    matching = [p for p in problems if all(f in p for f in fragments)]
    assert matching, f"no problem mentions all of {fragments}; got {problems}"


def test_all_problems_are_reported_at_once(good, registry):
    spec = _mutate(good, lambda s: (s["encoders"][0].update(k="x"), s["sinks"][0].update(stage="parqet")))
    problems = problems_of(spec, registry)
    assert any("parameter 'k'" in p for p in problems)
    assert any("unknown sink 'parqet'" in p and "did you mean 'parquet'" in p for p in problems)


def test_set_override_changes_a_value(good, registry):
    r = resolve(good, registry, ["encoders.0.k=5", "run.name='renamed'"])
    assert r.encoders[0].stage.params.k == 5
    assert r.run.name == "renamed"


def test_set_override_is_validated(good, registry):
    problems = problems_of(good, registry, ["encoders.3.k=5"])
    assert any("--set encoders.3.k" in p and "no such place" in p for p in problems)
    problems = problems_of(good, registry, ["encoders.0.k=abc"])
    assert any("parameter 'k'" in p and "'abc'" in p for p in problems)
    problems = problems_of(good, registry, ["encoders.0.k"])
    assert any("expected KEY=VALUE" in p for p in problems)


def test_spec_file_errors_name_the_file(tmp_path, registry):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\noutput = 'x\n")
    with pytest.raises(SpecError) as info:
        resolve(bad, registry)
    assert str(bad) in str(info.value) and "not valid TOML" in str(info.value)
    with pytest.raises(SpecError, match="spec file not found"):
        resolve(tmp_path / "missing.toml", registry)


def test_toml_file_and_dict_resolve_the_same(tmp_path, good, registry):
    import json

    path = tmp_path / "spec.toml"
    lines = [
        "[run]",
        f"output = {json.dumps(good['run']['output'])}",
        "[reader]",
        'stage = "files"',
        f"paths = {json.dumps(good['reader']['paths'])}",
        "[[encoders]]",
        'stage = "test.count"',
        "k = 2",
        "[[sinks]]",
        'stage = "parquet"',
        f"path = {json.dumps(good['sinks'][0]['path'])}",
    ]
    path.write_text("\n".join(lines) + "\n")
    assert resolve(path, registry).to_dict() == resolve(good, registry).to_dict()


def test_secrets_never_appear_in_errors(good, registry):
    spec = _mutate(good, lambda s: s["sinks"][0].update(secret_key=["sEcReT-value"], access_key=12345))
    problems = problems_of(spec, registry)
    assert any("parameter 'secret_key'" in p and "(got ***)" in p for p in problems), problems
    assert not any("sEcReT" in p or "12345" in p for p in problems), problems


def test_credentials_in_a_uri_never_appear_in_errors(good, registry):
    spec = _mutate(good, lambda s: s["reader"].update(paths=["s3://alice:hunter2@bucket/reads/*.fa"]))
    problems = problems_of(spec, registry)
    assert problems and all("hunter2" not in p and "alice" not in p for p in problems), problems
    assert any("s3://***@bucket/reads/*.fa: credentials inside a URI are refused" in p for p in problems), problems


def test_glob_matching_nothing_is_reported_beside_other_problems(good, registry):
    spec = _mutate(good, lambda s: (s["reader"].update(paths=["/no/where/*.txt"]), s["encoders"][0].update(k="x")))
    problems = problems_of(spec, registry)
    assert any("nothing matches '/no/where/*.txt'" in p for p in problems), problems
    assert any("parameter 'k'" in p for p in problems), problems


def test_a_local_path_naming_nothing_is_refused_before_the_inputs_are_listed(good, registry, tmp_path):
    # the runner resolves without planning (the reader lists its inputs while Ray starts):
    # a misspelt local path is still among the spec's problems, said once, with the others
    spec = _mutate(
        good,
        lambda s: (
            s["reader"].update(
                paths=[str(tmp_path / "data"), "/no/such.fa", "/no/where/*.fa", "/no/*/**/*.fa", f"{tmp_path}/**/*.fa"]
            ),
            s["encoders"][0].update(k="x"),
        ),
    )
    for plan_inputs in (False, True):
        with pytest.raises(SpecError) as info:
            resolve(spec, registry, plan_inputs=plan_inputs)
        problems = info.value.problems
        assert [p for p in problems if "nothing matches" in p] == [
            "reader (files): nothing matches '/no/such.fa', '/no/where/*.fa', '/no/*/**/*.fa'"
        ], problems
        assert any("parameter 'k'" in p for p in problems), problems
    # an existing folder without a file of the wanted kind is found when the reader plans
    (tmp_path / "empty").mkdir()
    spec = _mutate(good, lambda s: s["reader"].update(paths=[str(tmp_path / "empty")]))
    assert resolve(spec, registry, plan_inputs=False).reader is not None
    assert any("nothing matches" in p for p in problems_of(spec, registry))


def test_hpcprep_run_refuses_a_misspelt_path_without_starting_ray(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[run]\noutput = "{tmp_path / "out"}"\n[reader]\nstage = "files"\npaths = ["{tmp_path / "dta"}"]\n'
        f'[[sinks]]\nstage = "parquet"\npath = "{tmp_path / "out" / "table"}"\n'
    )
    # as a user's command runs: a local Ray started would be kept, in a folder of this test's
    env = {**os.environ, "HPCPREP_RUNTIME_DIR": str(tmp_path / "runtime"), "HPCPREP_KEEP_RAY": "300"}
    script = Path(sys.executable).parent / "hpcprep"
    try:
        done = subprocess.run([str(script), "run", str(spec)], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert f"reader (files): nothing matches '{tmp_path / 'dta'}'" in done.stderr
        assert "Ray" not in done.stderr + done.stdout  # neither started nor kept
        assert not (tmp_path / "runtime").exists() and not (tmp_path / "out").exists()
    finally:
        if (tmp_path / "runtime").exists():
            subprocess.run([str(script), "local-ray", "stop"], env=env, capture_output=True, timeout=120)


def test_an_unknown_stage_of_an_installed_plugin_gets_no_install_hint(good, registry):
    (problem,) = problems_of(_mutate(good, lambda s: s["encoders"][0].update(stage="test.zzzzzzzz")), registry)
    assert "unknown encoder 'test.zzzzzzzz'; known encoders: " in problem and "installed" not in problem
