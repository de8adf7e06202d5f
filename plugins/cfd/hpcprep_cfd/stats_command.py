"""``hpcprep cfd stats TABLE``: merge the per-chunk field statistics of ``cfd.cell_features``.

The chunks of one case are spread over records (and workers); their partials merge
exactly (``hpcprep_cfd.fieldstats``), so this prints each case's statistics as a single
pass over all its cells would.
"""

from __future__ import annotations

import json

import click


def case_statistics(table) -> dict:
    """``{case: {field: [per-component summary]}}`` from a table with ``stats_<field>`` columns.

    Cell chunks are grouped by ``source``; patch rows (``kind == "patch"``) by source and
    patch name, under the key ``"<source>#<patch>"``.
    """
    from . import fieldstats

    names = [c for c in table.column_names if c.startswith("stats_")]
    if not names:
        raise click.ClickException(
            f"no stats_<field> columns (columns: {table.column_names}); run cfd.cell_features first"
        )
    cols = {c: table.column(c).to_pylist() for c in names}
    sources = table.column("source").to_pylist()
    kinds = table.column("kind").to_pylist() if "kind" in table.column_names else ["cells"] * len(sources)
    patches = table.column("patch").to_pylist() if "patch" in table.column_names else [""] * len(sources)
    groups: dict[str, dict[str, list]] = {}
    for i, src in enumerate(sources):
        key = src if kinds[i] != "patch" else f"{src}#{patches[i]}"
        for c in names:
            if cols[c][i] is not None:
                groups.setdefault(key, {}).setdefault(c[len("stats_") :], []).append(cols[c][i])
    return {
        key: {field: fieldstats.summary(fieldstats.merge_all(parts)) for field, parts in sorted(fields.items())}
        for key, fields in sorted(groups.items())
    }


@click.command("stats")
@click.argument("table", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def stats(table, as_json):
    """Per-case field statistics merged from the chunk partials in TABLE (Parquet file or directory)."""
    import pyarrow.parquet as pq

    result = case_statistics(pq.read_table(table))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from .cell_features import FEATURE_NAMES

    for case, fields in result.items():
        click.echo(case)
        for field, comps in fields.items():
            # what the statistics are of: Cp for p, U/U_ref for U (a field without a rule keeps its name)
            name = f"{FEATURE_NAMES[field]} ({field})" if field in FEATURE_NAMES else field
            for c, s in enumerate(comps):
                label = name if len(comps) == 1 else f"{name}[{c}]"
                click.echo(
                    f"  {label:<20} n={s['n']:<9} mean={s['mean']:<12.6g} std={s['std']:<12.6g} "
                    f"min={s['min']:<12.6g} max={s['max']:.6g}"
                )
