"""The whole extension surface of hpcprep.

A plugin is any module or object with functions decorated by ``hpcprep.hookimpl``
whose names match the specifications below. Installed packages announce plugins
through the ``hpcprep`` entry-point group; the core's own readers, sinks and
placement policy are registered through these same hooks.

Hooks are called on the driver only. Workers receive the plain, picklable stage
objects that the registration hooks handed over, never the plugin manager.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("hpcprep")
hookimpl = pluggy.HookimplMarker("hpcprep")


@hookspec
def hpcprep_register_readers(register):
    """Register reader stages: they turn paths or URIs into records.

    Call ``register(ReaderClass)`` once per reader. The class subclasses
    ``hpcprep.Reader`` and names itself ``domain.name``.
    """


@hookspec
def hpcprep_register_encoders(register):
    """Register encoder stages: a batch of records in, the batch with new columns out.

    Call ``register(EncoderClass)`` once per encoder. The class subclasses
    ``hpcprep.Encoder``.
    """


@hookspec
def hpcprep_register_sinks(register):
    """Register sink stages: they write the dataset somewhere.

    Call ``register(SinkClass)`` once per sink. The class subclasses ``hpcprep.Sink``.
    """


@hookspec(firstresult=True)
def hpcprep_place(stage, cluster):
    """Decide where and how an encoder stage runs.

    ``stage`` is the configured encoder (its parameters are in ``stage.params``);
    ``cluster`` is a ``hpcprep.ClusterInfo`` with the resources Ray reports.
    Return a ``hpcprep.Placement`` to decide, or ``None`` to let the next policy
    answer. The first non-None answer wins; the core's default policy answers last.
    """


@hookspec
def hpcprep_report_sections(run):
    """Add previews of a finished run's outputs to ``hpcprep report``.

    ``run`` is a ``hpcprep.report.RunOutputs``: ``run.run_dir``, ``run.manifest`` and
    ``run.sample(columns)``, a few thousand rows of the run's Parquet output (None
    without one). Return a list of ``hpcprep.report.ReportSection`` (a title and HTML;
    ``hpcprep.report.figure`` and ``table`` draw figures and tables), or None when the
    run holds nothing of the plugin's domain.
    """


@hookspec
def hpcprep_register_commands(cli):
    """Add subcommands to the ``hpcprep`` command line.

    ``cli`` is the top-level ``click.Group``; use ``@cli.command()`` or
    ``@cli.group()`` to add to it.
    """
