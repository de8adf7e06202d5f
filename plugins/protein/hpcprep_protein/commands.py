"""``hpcprep protein ...``: the plugin's command group (added through ``hpcprep_register_commands``).

The dataset code (pyarrow, the similarity search) loads only when a command runs.
"""

from __future__ import annotations

import click


@click.command("ss-dataset")
@click.argument("table", type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(), help="output directory")
@click.option("--sequence-column", default="sequence", show_default=True)
@click.option("--ss8-column", default="ss8", show_default=True)
@click.option("--ss3-column", default="ss3", show_default=True, help="derived from ss8 when the column is absent")
@click.option("--mask-column", default=None, help="list<bool> per residue (e.g. ss_mask); default all True")
@click.option("--split-column", default=None, help="keep these splits (train/validation/test) and only check them")
@click.option("--fractions", default="0.8,0.1,0.1", show_default=True, help="train,validation,test")
@click.option(
    "--identity",
    default=0.9,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True),
    help="k-mer Jaccard threshold for near-identical",
)
@click.option("--k", "k", default=5, show_default=True, type=click.IntRange(1, 8), help="k-mer length")
@click.option("--seed", default=0, show_default=True, type=int)
def ss_dataset(
    table, out, sequence_column, ss8_column, ss3_column, mask_column, split_column, fractions, identity, k, seed
):
    """Secondary-structure training table with splits free of identical / near-identical sequences."""
    from .ss_dataset import DatasetError, build_dataset

    try:
        summary = build_dataset(
            table,
            out,
            sequence_column=sequence_column,
            ss8_column=ss8_column,
            ss3_column=ss3_column,
            mask_column=mask_column,
            split_column=split_column,
            fractions=parse_fractions(fractions),
            identity=identity,
            k=k,
            seed=seed,
            say=lambda msg: click.echo(msg, err=True),
        )
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    c = summary["counts"]
    click.echo(
        f"wrote {out}: train {c['train']['rows']}, validation {c['validation']['rows']}, test {c['test']['rows']} "
        f"rows; leakage check passed ({summary['leakage_check']['method']})"
    )


def parse_fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected three numbers such as 0.8,0.1,0.1") from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise click.BadParameter(f"{text!r}: expected three non-negative fractions summing to 1")
    return values  # type: ignore[return-value]


@click.group("protein")
def protein():
    """Protein tools from hpcprep-protein."""


def register(cli: click.Group) -> None:
    """Add ``ss-dataset`` to the ``protein`` group of ``cli`` (creating the group if needed)."""
    group = cli.commands.get("protein")
    if not isinstance(group, click.Group):
        group = protein
        cli.add_command(group)
    group.add_command(ss_dataset)
