"""Coverage-guided fuzzing of the readers (atheris) and the replay of what it found.

- ``checks``: the property every reader must keep on any input, shared by the fuzzer
  and the pytest replay;
- ``targets``: one fuzz target per reader family, each turning bytes into the files the
  reader reads and running the reader as the runner does;
- ``harness``: the atheris entry point, ``python -m tests.fuzz.harness TARGET ...``;
- ``run``: ``python tests/fuzz/run.py --seconds N`` runs every target and writes a summary;
- ``make_seeds``: rebuilds ``seeds/`` from the Debian example files;
- ``test_regressions``: replays ``seeds/`` and ``crashes/`` in the normal test suite.
"""
