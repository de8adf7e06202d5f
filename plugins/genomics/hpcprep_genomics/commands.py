"""``hpcprep genomics ...``: the plugin's command group (added through ``hpcprep_register_commands``).

Imports of torch, pyarrow and hpcprep happen inside the commands, so ``hpcprep --help`` stays fast.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import click

GRAPH_COLUMNS = ("node_codes", "edge_src", "edge_dst", "edge_counts")


def register(cli: click.Group) -> None:
    """Add the ``genomics`` group to ``cli``."""
    cli.add_command(genomics)


@click.group("genomics")
def genomics():
    """DNA tools from hpcprep-genomics (GNN training)."""


# -- reading the training table ---------------------------------------------------------


def _list_column(table, name: str, dtype) -> list:
    """A list column as one NumPy array per row (``None`` for a null row)."""
    import pyarrow as pa

    col = table.column(name)
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        raise click.ClickException(f"column {name!r} is {col.type}, expected a list column (from genomics.debruijn)")
    offsets = col.offsets.to_numpy()
    values = col.values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    return [values[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(col))]


def read_training_table(path: str, label_column: str, sequence_column: str):
    """``(table, mode)`` from a Parquet file or directory; mode is ``"graphs"`` or ``"sequences"``."""
    from hpcprep.storage import parquet_dataset

    try:
        dataset = parquet_dataset(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    names = dataset.schema.names
    if label_column not in names:
        raise click.ClickException(f"{path}: no label column {label_column!r}; columns are {names}")
    if all(c in names for c in GRAPH_COLUMNS):
        mode, columns = "graphs", [label_column, *GRAPH_COLUMNS]
    elif sequence_column in names:
        mode, columns = "sequences", [label_column, sequence_column]
    else:
        raise click.ClickException(
            f"{path}: needs the graph columns {list(GRAPH_COLUMNS)} (from genomics.debruijn) or a sequence "
            f"column {sequence_column!r} (--sequence-column); columns are {names}"
        )
    # Sorted by record_id when there is one: a run's Parquet files are named by attempt, so
    # the order they are read in varies between runs, and training must not depend on it.
    if "record_id" in names:
        return dataset.to_table(columns=[*columns, "record_id"]).sort_by("record_id"), mode
    return dataset.to_table(columns=columns), mode


def graphs_and_labels(table, mode: str, label_column: str, sequence_column: str, k: int):
    """``(graphs, labels, skipped)``: rows without a label or graph/sequence are skipped and counted."""
    import numpy as np

    labels = table.column(label_column).to_pylist()
    if mode == "graphs":
        cols = [
            _list_column(table, name, dt)
            for name, dt in zip(GRAPH_COLUMNS, (np.uint64, np.int32, np.int32, np.uint32), strict=True)
        ]
        rows = list(zip(*cols, strict=True))
    else:
        from .kernels import debruijn_graph

        rows = [None if s is None else debruijn_graph(s, k) for s in table.column(sequence_column).to_pylist()]
    graphs, kept, skipped = [], [], 0
    for label, graph in zip(labels, rows, strict=True):
        if label is None or graph is None or any(part is None for part in graph) or len(graph[0]) == 0:
            skipped += 1
            continue
        graphs.append(graph)
        kept.append(str(label))
    return graphs, kept, skipped


def _spec_output(spec_path: str, overrides, overwrite: bool):
    """Run a pipeline spec; returns ``(first parquet sink's path, the spec's genomics.debruijn k or None)``."""
    import hpcprep
    from hpcprep import RunError, SpecError

    try:
        result = hpcprep.run(spec_path, overrides=list(overrides), overwrite=overwrite)
    except (SpecError, RunError) as exc:
        raise click.ClickException(f"{spec_path}: {exc}") from exc
    spec = result.manifest["spec"]
    sinks = [s for s in spec.get("sinks", []) if s.get("stage") == "parquet"]
    if not sinks:
        raise click.ClickException(f"{spec_path}: the spec has no parquet sink to train from")
    ks = [e["k"] for e in spec.get("encoders", []) if e.get("stage") == "genomics.debruijn"]
    return sinks[0]["path"], (ks[-1] if ks else None)


# -- the command ------------------------------------------------------------------------


class _EpochProgress:
    """One line per epoch on stderr, at most every few seconds (and always the first and last), with
    the loss, the time so far and an estimate of the time left: training is minutes of silence otherwise."""

    EVERY_SECONDS = 5.0

    def __init__(self, n_graphs: int):
        self.n_graphs = n_graphs
        self.started = time.perf_counter()
        self.shown = -math.inf

    def __call__(self, epoch: int, epochs: int, loss: float) -> None:
        now = time.perf_counter()
        if epoch not in (1, epochs) and now - self.shown < self.EVERY_SECONDS:
            return
        self.shown = now
        spent = now - self.started
        left = spent / epoch * (epochs - epoch)
        click.echo(
            f"epoch {epoch}/{epochs}: loss {loss:.4f} ({self.n_graphs} graphs; {spent:.0f} s, about {left:.0f} s left)",
            err=True,
        )


@genomics.command("train-gnn")
@click.argument("spec_or_table", type=click.Path(exists=True))
@click.option("--label-column", default="label", show_default=True, help="column with the class label")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="weights file to write (.npz)")
@click.option(
    "--k",
    type=click.IntRange(3, 32),
    default=None,
    help="de Bruijn k of the graphs (default: the spec's genomics.debruijn k, else 5)",
)
@click.option(
    "--sequence-column",
    default="sequence",
    show_default=True,
    help="sequence column, used when the table has no graph columns",
)
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="fixes initial weights, split and shuffling")
@click.option(
    "--val-fraction",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.2,
    show_default=True,
    help="held-out share of each class",
)
@click.option(
    "--lr", type=click.FloatRange(0.0, min_open=True), default=0.002, show_default=True, help="Adam learning rate"
)
@click.option("--batch-graphs", type=click.IntRange(1), default=16, show_default=True, help="graphs per training step")
@click.option("--hidden-dim", type=click.IntRange(1), default=64, show_default=True)
@click.option("--embed-dim", type=click.IntRange(1), default=64, show_default=True)
@click.option("--layers", type=click.IntRange(0), default=2, show_default=True, help="message-passing layers")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="spec override (TOML input only)")
@click.option("--overwrite", is_flag=True, help="rerun the spec over an earlier run's outputs (TOML input only)")
def train_gnn(
    spec_or_table,
    label_column,
    out,
    k,
    sequence_column,
    epochs,
    seed,
    val_fraction,
    lr,
    batch_graphs,
    hidden_dim,
    embed_dim,
    layers,
    overrides,
    overwrite,
):
    """Train the de Bruijn GNN as a classifier and write weights both backends load.

    SPEC_OR_TABLE is a Parquet file or directory with the label column and either the graph
    columns of genomics.debruijn (node_codes, edge_src, edge_dst, edge_counts) or a sequence
    column, or a .toml pipeline spec: it is run and its first parquet sink is read.
    """
    from .gnn import GnnConfig, save_weights
    from .gnn.train import TrainReport, train_classifier

    source = spec_or_table
    spec_k = None
    if str(spec_or_table).endswith(".toml"):
        source, spec_k = _spec_output(spec_or_table, overrides, overwrite)
        click.echo(f"spec ran; training from {source}")
    elif overrides or overwrite:
        raise click.UsageError("--set and --overwrite apply to a .toml spec only")
    table, mode = read_training_table(source, label_column, sequence_column)
    if mode == "graphs" and k is not None and spec_k is not None and k != spec_k:
        raise click.UsageError(f"--k {k}, but the spec built its graphs with k = {spec_k}")
    k = k or spec_k or 5
    graphs, labels, skipped = graphs_and_labels(table, mode, label_column, sequence_column, k)
    if skipped:
        click.echo(f"skipped {skipped} row(s) without a label or without a valid {k}-mer", err=True)
    if len(set(labels)) < 2:
        raise click.ClickException(
            f"{source}: need at least two labels in {label_column!r}, found {sorted(set(labels))}"
        )

    config = GnnConfig(k=k, hidden_dim=hidden_dim, embed_dim=embed_dim, layers=layers)
    report = TrainReport(on_epoch=_EpochProgress(len(graphs)))
    try:
        arrays, classes, accuracy = train_classifier(
            graphs,
            labels,
            config,
            seed=seed,
            epochs=epochs,
            val_fraction=val_fraction,
            lr=lr,
            batch_graphs=batch_graphs,
            report=report,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    meta = {
        "trained_on": str(spec_or_table),
        "table": str(source),
        "label_column": label_column,
        "graphs_from": mode,
        "epochs": epochs,
        "seed": seed,
        "lr": lr,
        "batch_graphs": batch_graphs,
        "val_fraction": val_fraction,
        "train_counts": report.train_counts,
        "held_out_counts": report.held_out_counts,
        "train_accuracy": None if math.isnan(report.train_accuracy) else report.train_accuracy,
        "held_out_accuracy": None if math.isnan(accuracy) else accuracy,
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_weights(out, config.with_classes(classes), arrays, meta=meta)

    width = max(len(c) for c in [*classes, "class"])
    click.echo(f"{'class':<{width}}  train  held-out")
    for c in classes:
        click.echo(f"{c:<{width}}  {report.train_counts.get(c, 0):>5}  {report.held_out_counts.get(c, 0):>8}")
    n_held = sum(report.held_out_counts.values())
    shown = "n/a (nothing held out)" if math.isnan(accuracy) else f"{accuracy:.4f}"
    click.echo(f"held-out accuracy: {shown} on {n_held} graph(s); train accuracy {report.train_accuracy:.4f}")
    click.echo(f"weights: {out} (k={k}, embedding dim {embed_dim}; loads with backend pyg or dgl)")
