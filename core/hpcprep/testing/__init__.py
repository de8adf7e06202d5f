"""The plugin test kit: does a stage keep the contract the runner relies on?

Third-party plugin authors run it from their own tests, the way pytest plugins use
``pytester``::

    def test_my_plugin(hpcprep_kit):          # fixture from hpcprep's pytest plugin
        from hpcprep_mine import plugin
        hpcprep_kit.assert_plugin_ok(plugin)  # or the entry-point name, "mine"

Without pytest: ``check_stage(StageClass, workdir)`` and ``check_plugin(plugin, workdir)``
return the problems found; ``assert_stage_ok``/``assert_plugin_ok`` raise one
``AssertionError`` that lists them all.

The kit feeds each stage the inputs its ``examples(workdir)`` classmethod gives (a
``StageExamples``). It checks, by name (``skip=`` turns a check off):

``examples``     the stage gives examples, and they configure it
``docs``         the class has a docstring (``hpcprep describe`` shows its first line)
``params``       ``Params`` is a pydantic model, every field has a description, defaults validate
``outputs``      encoders and readers declare their output columns
``inputs``       encoders: the good batch cut down to the declared ``inputs`` (plus
                 ``source`` and ``record_id``) encodes to the same output, so the driver's
                 column check before a run can trust them
``pickle``       a configured instance survives pickle and cloudpickle (it travels to workers)
``setup``        ``Encoder.setup`` runs
``encode``       the good batch encodes: a dict, one row per input row (the kit hands
                 encoders read-only arrays, as Ray's zero-copy batches are)
``columns``      every declared column is produced; encoders produce nothing undeclared
``types``        produced columns match their declared types (numbers, strings, bytes, vectors)
``arrow``        produced columns convert to Arrow without pickled Python objects
``determinism``  the same input twice (and on a second worker copy) gives the same output
``empty_batch``  zero rows in, zero rows out, declared columns present
``bad_input``    bad input raises ``hpcprep.RecordError`` (encoders) or gives ``ErrorRecord``s
                 or ``RecordError`` (readers), never another exception
``plan``, ``read``  readers: ``plan()`` lists items, ``read()`` yields batches with
                 ``source`` and unique ``record_id``s and no errors for good input
``sink``         sinks whose examples give a ``good`` batch: prepare, write, commit, finish

The modules: ``stage_checks`` (the checks above, and ``read_records``), ``plugin_checks``
(a plugin's hooks, then the stage checks over its stages), ``kit`` (both bound to a working
directory), ``problems`` (the check names and ``Problem``), ``values`` (how outputs are
compared, typed and converted), ``runs`` (``interrupted_run``, a run cut off after some
commit groups, for tests of a sink's resume) and ``pytest_plugin`` (the fixture). What plugin authors
use is what this package exports.
"""

from .kit import Kit
from .plugin_checks import assert_plugin_ok, check_plugin
from .problems import CHECKS, PLUGIN, Problem, format_problems
from .runs import interrupted_run
from .stage_checks import assert_stage_ok, check_stage, read_records

__all__ = [
    "CHECKS",
    "PLUGIN",
    "Kit",
    "Problem",
    "assert_plugin_ok",
    "assert_stage_ok",
    "check_plugin",
    "check_stage",
    "format_problems",
    "interrupted_run",
    "read_records",
]
